"""Convert idealo's NIMA MobileNet Keras weights (HDF5) into the safetensors file piaa ships (mostly float16).

    python tools/convert_nima.py ../shared/weights/weights_mobilenet_aesthetic_0.07.hdf5

Run once; the output goes to ``src/piaa/backbones/weights/nima_mobilenet_ava.safetensors`` unless
``--out`` says otherwise. The 1x1 pointwise kernels from conv_pw_4 on (96% of the parameters) are
stored as float16, everything else (conv1, depthwise 3x3, conv_pw_1..3, BatchNorm, dense_1) as float32:
13.0 MB -> 6.7 MB. Rounding errors made early are amplified by every later layer: all-float16 moved mean
scores by up to 0.037, float16 from conv_pw_4 on by at most 0.002 (35 photos); ``tests/test_nima.py``
holds it within 0.01. piaa loads every tensor back as float32.
The source file's sha256 is checked against the published one so the shipped weights are idealo's.
"""

from __future__ import annotations

import argparse
import hashlib
from pathlib import Path

from safetensors.torch import save_file

from piaa.backbones.nima import PACKAGED_WEIGHTS, WEIGHTS_SHA256, WEIGHTS_URL, keras_h5_state_dict


def _half(key: str) -> bool:
    """conv_pw_4.weight ... conv_pw_13.weight: the big kernels, late enough not to be amplified much."""
    layer, _, param = key.partition(".")
    return layer.startswith("conv_pw_") and not layer.endswith("_bn") and int(layer[8:]) >= 4


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("hdf5", type=Path, help=f"the Keras weights file ({WEIGHTS_URL})")
    ap.add_argument("--out", type=Path, default=PACKAGED_WEIGHTS)
    ap.add_argument("--float32", action="store_true", help="keep everything float32")
    args = ap.parse_args()
    digest = hashlib.sha256(args.hdf5.read_bytes()).hexdigest()
    if digest != WEIGHTS_SHA256:
        raise SystemExit(f"{args.hdf5}: sha256 {digest} is not idealo's published {WEIGHTS_SHA256}")
    sd = {
        k: v.half().contiguous() if _half(k) and not args.float32 else v
        for k, v in keras_h5_state_dict(args.hdf5).items()
    }
    dtypes = "float32" if args.float32 else "conv_pw_4..13 weight float16, the rest float32"
    meta = {"source": WEIGHTS_URL, "sha256": digest, "license": "Apache-2.0", "dtypes": dtypes}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(args.out), metadata=meta)
    n = sum(v.numel() for v in sd.values())
    print(f"{args.out}: {len(sd)} tensors, {n:,} parameters, {args.out.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()

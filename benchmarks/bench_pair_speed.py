"""Extraction speed of efficientnet-lite0, nima-mobilenet and their pair, interleaved, in one process.

    python benchmarks/bench_pair_speed.py [--para ../shared/data/para] [--photos ../shared/data/photos]
        [--n 200] [--rounds 3]

Each round runs one full :class:`~piaa.features.extract.FeatureExtractor` pass (ONNX Runtime, piaa's
default threads and decoding) of each backbone over the same ``--n`` photos of each folder, warm-up
(ONNX export and load, first decodes) excluded; the median over ``--rounds`` rounds is printed, in
photos per second, and the pair's time over efficientnet-lite0's. The machine is shared, so the rounds
are interleaved and the ratio is the figure to read.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _provenance import Provenance  # noqa: E402
from piaa.backbones import create_backbone  # noqa: E402
from piaa.data.images import iter_image_files  # noqa: E402
from piaa.features.extract import FeatureExtractor  # noqa: E402
from piaa.settings import QUIET

NAMES = ("efficientnet-lite0", "nima-mobilenet", "efficientnet-lite0+nima-mobilenet")
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--para", type=Path, default=SHARED / "para")
    ap.add_argument("--photos", type=Path, default=SHARED / "photos")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--markdown", type=Path, default=None)
    args = ap.parse_args()
    prov = Provenance()
    sets = {
        "PARA (224 x 224)": sorted(iter_image_files([args.para / "images"]))[: args.n],
        "ImageNet photos (~500 x 375)": sorted(iter_image_files([args.photos]))[: args.n],
    }
    extractors = {n: FeatureExtractor(create_backbone(n), QUIET) for n in NAMES}
    for fe in extractors.values():
        for files in sets.values():
            list(fe.files(files[:16]))  # warm-up
    rates: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for label, files in sets.items():
            for name, fe in extractors.items():
                t = time.perf_counter()
                n = sum(len(b.indices) for b in fe.files(files))
                rates.setdefault((label, name), []).append(n / (time.perf_counter() - t))
    lines = [
        f"Median of {args.rounds} interleaved rounds, {args.n} photos each, img/s (higher is faster)",
        "",
        "| photos | " + " | ".join(NAMES) + " | pair time / efficientnet-lite0's |",
        "|---|" + "---|" * (len(NAMES) + 1),
    ]
    for label in sets:
        med = [statistics.median(rates[(label, n)]) for n in NAMES]
        lines.append(f"| {label} | " + " | ".join(f"{r:.1f}" for r in med) + f" | {med[0] / med[2]:.2f}× |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        prov.write(args.markdown, text)


if __name__ == "__main__":
    main()

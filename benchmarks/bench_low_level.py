"""What each feature of the head can tell about a photo's exposure and colour.

    python benchmarks/bench_low_level.py [--markdown FILE]

On the demo's example album (7 scenes x 15 exposure/saturation variants), a ridge regression reads
brightness, colourfulness and contrast (``simulate.photo_attributes``) from each feature, trained on
6 scenes and tested on the 7th, for every scene in turn. The printed R² says how much of the attribute
a linear layer on that feature can recover for scenes it has never seen: why piaa's head reads the
backbone's low-level statistics besides the paper's Z1/Z2 (``piaa.backbones.base.channel_stats``).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold, cross_val_predict

from _provenance import Provenance
from piaa.backbones import create_backbone
from piaa.data.images import iter_image_files
from piaa.demo import make_example
from piaa.evaluation.simulate import ATTRIBUTES, photo_attributes
from piaa.features.extract import FeatureExtractor
from piaa.settings import QUIET


def held_out_r2(x: np.ndarray, y: np.ndarray, groups: list[str]) -> float:
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    p = cross_val_predict(Ridge(alpha=10.0), x, y, groups=groups, cv=GroupKFold(len(set(groups))))
    return 1 - float(((p - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--markdown", type=Path, help="also write the table, with its provenance, to this file")
    args = ap.parse_args()
    prov = Provenance()
    with tempfile.TemporaryDirectory() as tmp:
        ex = make_example(tmp, seed=0)
        files = sorted(iter_image_files([ex.album]))
        imgs = [Image.open(f).convert("RGB") for f in files]
        scenes = [f.name.split("-")[0] for f in files]
    maps = FeatureExtractor(create_backbone("efficientnet-lite0"), QUIET).images(imgs)
    attrs = np.stack([photo_attributes(im) for im in imgs])
    features = {
        "low-level statistics": maps.stats.numpy(),
        "pooled Z1": maps.z1.mean((2, 3)).numpy(),
        "embedding (pooled Z2)": maps.embedding.numpy(),
    }
    lines = [
        f"held-out-scene R², {len(files)} photos of {len(set(scenes))} scenes, efficientnet-lite0\n",
        f"| feature | {' | '.join(ATTRIBUTES[:3])} |\n|---|---|---|---|",
    ]
    for name, x in features.items():
        cells = " | ".join(f"{held_out_r2(x, attrs[:, j], scenes):.2f}" for j in range(3))
        lines.append(f"| {name} | {cells} |")
    print("\n".join(lines))
    prov.write(args.markdown, "\n".join(lines))


if __name__ == "__main__":
    main()

"""Shared fixtures: small generated photo folders and label files, and backbones loaded once."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session", autouse=True)
def _piaa_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Keep exported ONNX graphs out of the user's real cache."""
    os.environ["PIAA_CACHE"] = str(tmp_path_factory.mktemp("piaa-cache"))


def synthetic_photo(rng: np.random.Generator, w: int = 96, h: int = 72) -> Image.Image:
    """A smooth random scene (gradients plus blobs) that JPEG-encodes like a photo."""
    yy, xx = np.mgrid[0:h, 0:w] / max(w, h)
    img = np.zeros((h, w, 3))
    for c in range(3):
        a, b, d = rng.uniform(-1, 1, 3)
        img[..., c] = 0.5 + 0.3 * (a * xx + b * yy) + 0.2 * np.sin(6 * d * xx + 3 * a * yy)
    for _ in range(3):
        cx, cy, r = rng.uniform(0, 1), rng.uniform(0, 0.75), rng.uniform(0.05, 0.2)
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 < r**2
        img[mask] = rng.uniform(0, 1, 3)
    return Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))


def write_ava(path: Path, ids: list[str], rng: np.random.Generator) -> np.ndarray:
    counts = rng.integers(0, 30, size=(len(ids), 10))
    counts[:, 4] += 1
    with open(path, "w") as f:
        for i, (image_id, c) in enumerate(zip(ids, counts, strict=True), 1):
            f.write(f"{i} {image_id} {' '.join(map(str, c))} 0 0 0\n")
    return counts / counts.sum(1, keepdims=True)


@pytest.fixture(scope="session")
def ref_corpus(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """20 labelled images: 17 good, 2 missing, 1 corrupt (a truncated JPEG)."""
    root = tmp_path_factory.mktemp("corpus")
    images = root / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    ids = [f"{1000 + i}" for i in range(20)]
    for image_id in ids[:17]:
        synthetic_photo(rng).save(images / f"{image_id}.jpg", quality=90)
    good = (images / f"{ids[0]}.jpg").read_bytes()
    (images / f"{ids[17]}.jpg").write_bytes(good[: len(good) // 3])
    dists = write_ava(root / "AVA.txt", ids, rng)
    return {"root": root, "images": images, "labels": root / "AVA.txt", "ids": ids, "dists": dists}


@pytest.fixture(scope="session")
def lite0():
    from piaa.backbones import create_backbone

    return create_backbone("efficientnet-lite0")


@pytest.fixture(scope="session")
def demo_world(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The demo's example world, with its reference built once."""
    from piaa.demo import make_example
    from piaa.features.reference import build_reference

    ex = make_example(tmp_path_factory.mktemp("world"), seed=0)
    build_reference(ex.labels, ex.reference_images, ex.root / "reference", progress=False)
    return {"example": ex, "reference": ex.root / "reference"}

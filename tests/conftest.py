"""Shared fixtures: small generated photo folders and label files, and backbones loaded once."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED = Path(__file__).resolve().parents[2] / "shared"

# The quick lane (``pytest -m "not slow"``) leaves these out. They are the tests over ~5 s in the lead's
# full run (``--durations``; docs/contributing.md), listed here rather than decorated in each file so
# that one place says what the quick lane skips; a test may also carry ``@pytest.mark.slow`` itself.
# tests/test_docs.py checks that every name here still exists.
SLOW_MODULES = {"test_ray.py"}  # starts a Ray instance: ~4 s before the first test
SLOW_TESTS = {
    "test_backbone_pair.py::test_a_reference_built_with_it_trains_a_generic_head_and_scores",
    "test_backbone_pair.py::test_the_cache_composer_names_the_file_extract_cached_writes",
    "test_bench.py::test_run_reports_every_method_and_the_oracle",
    "test_bench_para.py::test_bench_para_tiny",
    "test_cli.py::test_personalize_then_score_ranks_and_writes_outputs",
    "test_personalize.py::test_full_fine_tuning_trains_the_backbone_and_saves_it",
    "test_personalize.py::test_reference_without_maps_computes_neighbour_maps",
    "test_pretrained.py::test_personalize_from_nima_ava_without_a_reference",
    "test_reference.py::test_killed_build_resumes_without_corruption",
    "test_retouch.py::test_learned_retoucher_is_trained_once_and_saved_with_the_profile",
    "test_retouch.py::test_collect_page_prepares_the_learned_retoucher_and_then_uses_it",
    "test_web.py::test_train_with_reference_ranks_the_album",
    "test_web_e2e.py::test_after_training_a_ranked_photo_is_shown_retouched_by_both_models",
    "test_web_hardening.py::test_a_busy_store_is_a_one_line_error_for_the_page",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        module = item.path.name
        if module in SLOW_MODULES or f"{module}::{item.originalname}" in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


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

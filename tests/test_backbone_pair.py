"""The pair backbone ``efficientnet-lite0+nima-mobilenet``: both networks' maps side by side."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import synthetic_photo
from piaa.backbones import (
    BackboneError,
    create_backbone,
    describe_backbones,
    get_backbone_config,
    list_backbones,
)
from piaa.settings import QUIET

PAIR = "efficientnet-lite0+nima-mobilenet"


@pytest.fixture(scope="module")
def pair():
    return create_backbone(PAIR)


def _pixels(bb, n: int = 2) -> torch.Tensor:
    rng = np.random.default_rng(3)
    pp = bb.preprocess
    return pp.to_tensor(np.stack([pp.from_pil(synthetic_photo(rng, 40, 30)) for _ in range(n)]))


def test_maps_are_the_parts_maps_side_by_side(pair):
    x = _pixels(pair)
    with torch.no_grad():
        f = pair(x)
        a, b = create_backbone("efficientnet-lite0")(x), create_backbone("nima-mobilenet")(x)
    assert f.z1.shape == (2, 112 + 512, 14, 14)
    assert f.z2.shape == (2, 1280 + 1024, 7, 7) and f.z3.shape == (2, 2304, 1, 1)
    assert f.stats.shape == (2, 224 + 960) and f.embedding.shape == (2, 1280)
    for got, pa, pb in zip(f[:3], a[:3], b[:3], strict=True):
        assert torch.equal(got, torch.cat([pa, pb], dim=1))
    assert torch.equal(f.stats, torch.cat([a.stats, b.stats], dim=1))
    assert torch.equal(f.embedding, a.embedding)  # neighbours by efficientnet-lite0, as documented


def test_other_input_sizes_put_both_parts_on_one_grid(pair):
    with torch.no_grad():
        f = pair(torch.zeros(1, 3, 225, 225))  # odd: the parts' grids differ by one cell
    assert f.z1.shape[-2:] == (14, 14) and f.z2.shape[-2:] == (7, 7)


def test_config_matches_the_network_and_the_preprocessing_is_the_first_parts(pair):
    cfg = get_backbone_config(PAIR)
    assert pair.info.config == cfg
    assert cfg.channels == (624, 2304, 2304) and (cfg.embed_dim, cfg.stats_dim) == (1280, 1184)
    assert cfg.preprocess == get_backbone_config("efficientnet-lite0").preprocess
    assert cfg.license == "Apache-2.0" and cfg.offline
    assert [p["name"] for p in pair.info.to_dict()["extra"]["parts"]] == [
        "efficientnet-lite0",
        "nima-mobilenet",
    ]


def test_weights_hash_names_the_pair_and_is_stable(pair):
    lite, nima = create_backbone("efficientnet-lite0"), create_backbone("nima-mobilenet")
    h = pair.info.weights_hash
    assert len(h) == 16 and h not in (lite.info.weights_hash, nima.info.weights_hash)
    assert create_backbone(PAIR).info.weights_hash == h
    from piaa.backbones.pair import pair_hash

    assert pair_hash(nima.info, lite.info) != h  # the order of the parts is part of the name
    random = create_backbone(PAIR, weights=None)
    assert random.info.weights_hash == "random" and random.info.weights == "random"
    assert pair.info.weights == "imagenet"


def test_a_weights_file_is_refused_in_one_line(tmp_path):
    with pytest.raises(BackboneError, match="pretrained weights or none"):
        create_backbone(PAIR, weights=tmp_path / "w.pth")


def test_listed_with_its_metadata():
    assert PAIR in list_backbones() and PAIR in list_backbones(offline=True)
    assert "concatenated" in describe_backbones()[PAIR]
    from typer.testing import CliRunner

    from piaa.cli.main import app

    out = CliRunner().invoke(app, ["backbones"], env={"COLUMNS": "250"})
    assert out.exit_code == 0 and PAIR in out.output


def test_a_reference_built_with_it_trains_a_generic_head_and_scores(ref_corpus, tmp_path, pair):
    from piaa.features.reference import Reference, build_reference
    from piaa.models.personalize import personalize

    build_reference(
        ref_corpus["labels"], ref_corpus["images"], tmp_path / "ref", backbone=pair, progress=False
    )
    ref = Reference.open(tmp_path / "ref")
    assert ref.backbone_name == PAIR and ref.weights_hash == pair.info.weights_hash
    assert ref.maps(np.arange(2)).z2.shape[1] == 2304
    album = tmp_path / "album"
    album.mkdir()
    rng = np.random.default_rng(1)
    for i in range(6):
        synthetic_photo(rng).save(album / f"a{i}.jpg", quality=90)
    prof = personalize(tmp_path / "ref", album, None, tmp_path / "prof", progress=False, generic_epochs=2)
    assert prof.backbone.info.name == PAIR and prof.head.config.channels == (624, 2304, 2304)
    scores = [r.score for r in prof.score(sorted(album.glob("*.jpg")))]
    assert len(scores) == 6 and all(1 <= s <= 10 for s in scores)
    from piaa.models.profile import load_profile

    again = load_profile(tmp_path / "prof")
    assert np.allclose([r.score for r in again.score(sorted(album.glob("*.jpg")))], scores, atol=1e-4)


def test_the_cache_composer_names_the_file_extract_cached_writes(ref_corpus, tmp_path, pair):
    """``benchmarks/compose_pair_cache.py`` writes the pair's cache under extract_cached's key, and a
    composed file is what the pair's own extraction gives."""
    spec = importlib.util.spec_from_file_location(
        "compose_pair_cache", Path(__file__).resolve().parents[1] / "benchmarks" / "compose_pair_cache.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules["compose_pair_cache"] = mod
    spec.loader.exec_module(mod)
    from piaa.evaluation.worlds import extract_cached

    rng = np.random.default_rng(2)
    paths = []
    for i in range(5):
        p = tmp_path / f"p{i}.jpg"
        synthetic_photo(rng, 224, 224).save(p, quality=90)  # at the input size: no resize, same pixels
        paths.append(p)
    cache = tmp_path / "cache"
    for bb in (pair.first, pair.second):
        extract_cached(paths, bb, cache, run=QUIET)
        assert mod.cache_file(paths, bb, cache).is_file()
    out, worst = mod.compose(paths, cache, check=3)
    assert out == mod.cache_file(paths, pair, cache) and worst < 1e-2
    kept, composed = extract_cached(paths, pair, cache, run=QUIET)  # loads the composed file
    (cache / out.name).unlink()
    kept2, own = extract_cached(paths, pair, cache, run=QUIET)  # extracts
    assert out.is_file() and kept == kept2 == list(range(5))
    for a, b in zip(composed, own, strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-2)

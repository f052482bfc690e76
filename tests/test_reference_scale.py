"""AVA-size references: compact feature maps (chosen by size), cheap opening, the saved index."""

import sqlite3

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from piaa.backbones import FeatureMaps
from piaa.features import store
from piaa.features.reference import DB_NAME, Reference, build_reference
from piaa.models.train import TrainConfig, cached_source, fit_generic, new_head


@pytest.fixture(scope="module")
def full_and_compact(ref_corpus, tmp_path_factory, lite0):
    root = tmp_path_factory.mktemp("scale")
    args = (ref_corpus["labels"], ref_corpus["images"])
    build_reference(*args, root / "FULL", backbone=lite0, batch_size=4, progress=False)
    build_reference(
        *args, root / "COMPACT", backbone=lite0, batch_size=4, store_maps="compact", progress=False
    )
    return Reference.open(root / "FULL"), Reference.open(root / "COMPACT")


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


def test_compact_maps_are_the_pooled_full_maps(full_and_compact):
    full, compact = full_and_compact
    assert compact.has_maps and compact.maps_kind.startswith("compact")
    rows = list(range(len(full)))
    a, b = full.maps(rows), compact.maps(rows)
    assert b.z1.shape[1:] == (112, 7, 7) and b.z2.shape[1:] == (1280, 2, 2)  # coarse grids, as stored
    assert b.z1.dtype == b.z2.dtype == torch.float16
    for x, y in ((a.z1, b.z1), (a.z2, b.z2)):
        pooled = F.adaptive_avg_pool2d(x.float(), y.shape[-1])
        step = (pooled.flatten(1).amax(1) - pooled.flatten(1).amin(1)) / 255  # one uint8 step per image
        assert ((y.float() - pooled).abs().flatten(1).amax(1) <= step * 0.51 + 2e-2).all()
    torch.testing.assert_close(b.z3.float(), a.z3.float(), atol=2e-2, rtol=2e-3)  # from embedding x norm
    torch.testing.assert_close(b.stats, a.stats)
    np.testing.assert_allclose(compact.embeddings, full.embeddings, atol=1e-3)  # stored float16


def test_the_head_trains_on_compact_maps_and_scores_full_ones(full_and_compact, lite0):
    full, compact = full_and_compact
    cfg = TrainConfig(generic_epochs=2)
    head = new_head(lite0.info.channels, cfg, lite0.info.stats_dim)
    rows = list(range(len(compact)))
    loss = fit_generic(head, cached_source(compact.maps(rows)), torch.from_numpy(compact.distributions), cfg)
    assert np.isfinite(loss).all()
    head.eval()
    with torch.no_grad():
        s = head.score(FeatureMaps(*(t.float() for t in full.maps(rows))))
    assert s.shape == (len(rows),) and torch.isfinite(s).all()


def test_compact_store_is_a_tenth_of_the_full_one(full_and_compact):
    full, compact = full_and_compact
    size = {}
    for ref in (full, compact):
        db = sqlite3.connect(ref.path / DB_NAME)
        size[ref.maps_kind] = db.execute(
            "SELECT SUM(LENGTH(z1) + LENGTH(z2) + LENGTH(z3) + LENGTH(stats)) FROM maps"
        ).fetchone()[0]
        db.close()
    per_image = size[compact.maps_kind] / len(compact)
    assert per_image < 12_000 and size[compact.maps_kind] * 10 < size[full.maps_kind]


def test_iter_maps_streams_in_order(full_and_compact):
    _, compact = full_and_compact
    rows = [5, 0, 16, 3, 3]
    parts = list(compact.iter_maps(rows, chunk=2))
    assert [len(p.z1) for p in parts] == [2, 2, 1]
    whole = compact.maps(rows)
    torch.testing.assert_close(torch.cat([p.z2 for p in parts]), whole.z2)
    torch.testing.assert_close(whole.z3[3], whole.z3[4])


def test_large_references_choose_compact_maps(monkeypatch):
    assert store.map_mode(True, 10) == "1" and store.map_mode(False, 10) == "0"
    assert store.map_mode(True, store.COMPACT_FROM + 1) == "compact"
    assert store.map_mode("full", store.COMPACT_FROM + 1) == "1"
    with pytest.raises(ValueError, match="store_maps"):
        store.map_mode("half", 10)


def test_compact_build_resumes_with_the_same_codec(ref_corpus, tmp_path, lite0, monkeypatch):
    out = tmp_path / "R"
    monkeypatch.setattr(store, "CODEC_FIT_IMAGES", 4)
    build_reference(
        ref_corpus["labels"], ref_corpus["images"], out, backbone=lite0, batch_size=4,
        store_maps="compact", limit=8, progress=False,
    )  # fmt: skip
    db = sqlite3.connect(out / DB_NAME)
    codec = db.execute("SELECT value FROM blobs WHERE key = 'map_codec'").fetchone()[0]
    db.execute("UPDATE items SET status = 0 WHERE idx >= 4")  # as if killed after the first batch
    db.execute("DELETE FROM maps WHERE idx >= 4")
    db.execute("UPDATE meta SET value = '0' WHERE key = 'complete'")
    db.commit()
    db.close()
    rep = build_reference(
        ref_corpus["labels"], ref_corpus["images"], out, backbone=lite0, batch_size=4,
        store_maps="compact", limit=8, progress=False,
    )  # fmt: skip
    assert rep.resumed_from == 4 and rep.embedded == 8
    db = sqlite3.connect(out / DB_NAME)
    assert db.execute("SELECT value FROM blobs WHERE key = 'map_codec'").fetchone()[0] == codec
    db.close()
    assert Reference.open(out).maps(list(range(8))).z2.shape == (8, 1280, 2, 2)

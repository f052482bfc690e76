"""Opening a reference reads no row, and a neighbour query runs from the cached ONNX graph without torch,
with the same embeddings and neighbours as the full route (issue 14: open + 1 query)."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from piaa.backbones.cached_onnx import CachedOnnx, onnx_graph_path
from piaa.data.images import FailureLog
from piaa.features.extract import FeatureExtractor, OnnxEngine
from piaa.features.reference import DB_NAME, QUICK_QUERIES, Reference, build_reference
from piaa.features.store import ROW_DIST, ROW_IDX
from piaa.settings import QUIET


@pytest.fixture(scope="module")
def built(ref_corpus, tmp_path_factory, lite0):
    """17 embedded rows of 20 (3 failed): row numbers differ from the store's idx after a failure."""
    out = tmp_path_factory.mktemp("ref-open") / "REF"
    build_reference(ref_corpus["labels"], ref_corpus["images"], out, backbone=lite0, progress=False)
    return out


def _queries(ref_corpus, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    imgs = ref_corpus["images"]
    return [imgs / "1003.jpg", bad, imgs / "1010.jpg", imgs / "1016.jpg"]


def test_the_cached_graph_is_the_one_the_extractor_exports(built, lite0):
    ref = Reference.open(built)
    engine = OnnxEngine(lite0)
    assert engine.path == onnx_graph_path(ref.backbone_name, ref.weights_hash, 224)
    assert CachedOnnx.find(ref.backbone_name, ref.weights_hash).path == engine.path


def test_quick_embeddings_are_the_extractors_to_the_bit(built, ref_corpus, tmp_path):
    ref = Reference.open(built)
    paths = _queries(ref_corpus, tmp_path)
    quick_fail, full_fail = FailureLog(), FailureLog()
    quick = list(ref.embed(paths, failures=quick_fail))
    full = list(FeatureExtractor(ref.create_backbone(), QUIET).files(paths, failures=full_fail))
    assert len(quick) == len(full) == 1
    assert quick[0][0] == full[0].indices == [0, 2, 3]
    assert quick[0][1].dtype == np.float32
    np.testing.assert_array_equal(quick[0][1], full[0].features.embedding.numpy())
    assert list(quick_fail) == list(full_fail) and len(quick_fail) == 1
    # every output, not only the embedding
    kept, maps = CachedOnnx.find(ref.backbone_name, ref.weights_hash).files(paths)
    for a, b in zip(maps, full[0].features, strict=True):
        np.testing.assert_array_equal(a, b.numpy())
    sims, rows = ref.neighbors(quick[0][1], 5)
    sims_full, rows_full = ref.neighbors(full[0].features.embedding.numpy(), 5)
    np.testing.assert_array_equal(rows, rows_full)
    np.testing.assert_array_equal(sims, sims_full)


def test_no_cached_graph_or_more_than_a_batch_runs_the_extractor(built, ref_corpus, tmp_path, monkeypatch):
    ref = Reference.open(built)
    paths = _queries(ref_corpus, tmp_path)
    before = [(i, e.copy()) for i, e in ref.embed(paths)]
    monkeypatch.setenv("PIAA_CACHE", str(tmp_path / "empty-cache"))
    assert CachedOnnx.find(ref.backbone_name, ref.weights_hash) is None
    again = list(ref.embed(paths))  # FeatureExtractor: exports the graph into the new cache
    assert [i for i, _ in again] == [i for i, _ in before]
    np.testing.assert_array_equal(again[0][1], before[0][1])
    many = [ref_corpus["images"] / f"{1000 + i}.jpg" for i in range(QUICK_QUERIES + 1)]
    batches = list(ref.embed(many, progress=False))
    assert sum(len(i) for i, _ in batches) == QUICK_QUERIES + 1
    np.testing.assert_allclose(batches[0][1][3], before[0][1][0], atol=1e-4)  # 1003.jpg, another batch


def test_open_reads_no_row_and_lookup_reads_only_those_asked(built):
    ref = Reference.open(built)
    assert ref._ids is None and ref._distributions is None  # nothing read yet
    assert len(ref) == 17 and list(ref.item_idx) == list(range(17))
    rows = [16, 3, 3, 0]
    ids, paths, dists = ref.lookup(rows)
    assert ref._ids is None
    full = Reference.open(built)
    assert ids == [full.ids[r] for r in rows] and paths == [full.paths[r] for r in rows]
    np.testing.assert_array_equal(dists, full.distributions[rows])
    assert full.lookup(rows)[0] == ids  # from memory once everything was read
    assert ref.lookup([])[0] == [] and ref.lookup([])[2].shape == (0, 10)


def test_distributions_come_from_the_blob_saved_with_the_build(built, ref_corpus, tmp_path):
    ref = Reference.open(built)
    np.testing.assert_allclose(ref.distributions, ref_corpus["dists"][:17], atol=1e-6)
    assert ref._ids is None  # no row was read for them
    old = Reference.open(_without_row_idx(built, tmp_path / "old"))
    np.testing.assert_array_equal(old.distributions, ref.distributions)  # scanned from the rows
    np.testing.assert_array_equal(old.mean_scores(), ref.mean_scores())


def _without_row_idx(src, dst, *, drop_embedded=False):
    """A copy of ``src`` as an older piaa wrote it: no saved row numbers or distributions."""
    shutil.copytree(src, dst)
    db = sqlite3.connect(dst / DB_NAME)
    db.execute("DELETE FROM blobs WHERE key IN (?, ?)", (ROW_IDX, ROW_DIST))
    if drop_embedded:
        db.execute("DELETE FROM meta WHERE key = 'embedded'")
    db.commit()
    db.close()
    return dst


@pytest.mark.parametrize("drop_embedded", [False, True])
def test_older_stores_with_failed_rows_are_numbered_by_reading_them(built, tmp_path, drop_embedded):
    """An older store (no saved row numbers) with failed images, where row r is not idx r."""
    db = sqlite3.connect(built / DB_NAME)
    db_rows = [r[0] for r in db.execute("SELECT idx FROM items WHERE status = 1 ORDER BY idx")]
    db.close()
    old = Reference.open(_without_row_idx(built, tmp_path / "old", drop_embedded=drop_embedded))
    assert list(old.item_idx) == db_rows
    new = Reference.open(built)
    assert old.ids == new.ids and old.lookup([5])[0] == [new.ids[5]]


def test_failed_rows_shift_the_numbering_and_lookup_follows(tmp_path, ref_corpus, lite0):
    labels = tmp_path / "AVA.txt"
    lines = ref_corpus["labels"].read_text().splitlines()
    labels.write_text("\n".join([lines[18], *lines[:5]]) + "\n")  # 1018.jpg is missing: idx 0 fails
    build_reference(labels, ref_corpus["images"], tmp_path / "R", backbone=lite0, progress=False)
    ref = Reference.open(tmp_path / "R")
    assert list(ref.item_idx) == [1, 2, 3, 4, 5] and ref._ids is None
    assert ref.lookup([0, 4])[0] == ["1000", "1004"]
    old = Reference.open(_without_row_idx(tmp_path / "R", tmp_path / "old"))
    assert list(old.item_idx) == [1, 2, 3, 4, 5] and old.ids[0] == "1000"


def test_an_older_store_with_every_image_embedded_opens_without_reading_rows(tmp_path, ref_corpus, lite0):
    labels = tmp_path / "AVA.txt"
    labels.write_text("\n".join(ref_corpus["labels"].read_text().splitlines()[:6]) + "\n")
    build_reference(labels, ref_corpus["images"], tmp_path / "R", backbone=lite0, progress=False)
    old = Reference.open(_without_row_idx(tmp_path / "R", tmp_path / "old"))
    assert list(old.item_idx) == list(range(6)) and old._ids is None
    assert old.lookup([2])[0] == ["1002"]


def _run(args, **kw):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=120, **kw)


def test_the_neighbors_command_runs_without_torch_and_finds_the_same_neighbours(built, ref_corpus, tmp_path):
    query = ref_corpus["images"] / "1003.jpg"
    out = tmp_path / "nn.json"
    code = (
        "import sys\nfrom piaa.cli.main import app\n"
        f"try:\n    app(['reference', 'neighbors', {str(built)!r}, {str(query)!r}, '--k', '4', "
        f"'--output', {str(out)!r}])\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "print('TORCH', 'torch' in sys.modules)\n"
    )
    res = _run(["-c", code])
    assert res.returncode == 0, res.stderr
    assert "TORCH False" in res.stdout
    rows = json.loads(out.read_text())
    ref = Reference.open(built)
    emb = next(FeatureExtractor(ref.create_backbone(), QUIET).files([query])).features.embedding
    sims, nn = ref.neighbors(emb.numpy(), 4)
    means = ref.mean_scores()
    assert [r["image_id"] for r in rows] == [ref.ids[i] for i in nn[0]]
    assert [r["path"] for r in rows] == [str(ref.paths[i]) for i in nn[0]]
    assert [r["similarity"] for r in rows] == [round(float(s), 5) for s in sims[0]]
    assert [r["mean_score"] for r in rows] == [round(float(means[i]), 4) for i in nn[0]]


def test_help_and_import_do_not_import_torch():
    res = _run(["-c", "import sys, piaa, piaa.cli.main; print([m for m in sys.modules if m == 'torch'])"])
    assert res.returncode == 0 and res.stdout.strip() == "[]", res.stderr
    res = _run(["-m", "piaa.cli", "--help"])
    assert res.returncode == 0 and "reference" in res.stdout
    res = _run(["-c", "import piaa; print(piaa.TrainConfig.__name__, piaa.Reference.__name__)"])
    assert res.stdout.split() == ["TrainConfig", "Reference"], res.stderr

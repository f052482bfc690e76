"""The neighbour index: exact for small sets, a saved IVF index beyond, chosen by size and tuned for
recall; opened memory-mapped and never written by opening."""

import json

import numpy as np
import pytest

from piaa.features.index import (
    INDEX_META,
    INDEX_NAME,
    RECALL_TARGET,
    NeighborIndex,
    exact_search,
    normalize,
    probe_queries,
    recall_at,
)


def clustered(n: int, d: int = 64, clusters: int = 60, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d))
    x = centres[rng.integers(0, clusters, n)] + 0.8 * rng.normal(size=(n, d))
    return normalize(x.astype(np.float32))


def test_exact_search_in_chunks_equals_brute_force():
    emb = clustered(3000)
    q = probe_queries(emb, 20)
    d, i = exact_search(emb, q, 10, chunk=700)
    brute = q @ emb.T
    np.testing.assert_array_equal(i, np.argsort(-brute, axis=1)[:, :10])
    np.testing.assert_allclose(d, np.sort(brute, axis=1)[:, ::-1][:, :10], atol=1e-5)


def test_small_sets_are_exact_and_leave_no_saved_index(tmp_path):
    (tmp_path / INDEX_NAME).write_bytes(b"stale")
    (tmp_path / INDEX_META).write_text("{}")
    idx = NeighborIndex.build(clustered(500), tmp_path)
    assert idx.kind.startswith("exact") and "exact search is fast enough" in idx.why
    assert not (tmp_path / INDEX_NAME).exists() and not (tmp_path / INDEX_META).exists()


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ivf")
    emb = clustered(20_000)
    np.save(folder / "emb.npy", emb)
    built = NeighborIndex.build(emb, folder, exact_max=5_000)
    return folder, np.load(folder / "emb.npy", mmap_mode="r"), built


def test_large_sets_get_a_tuned_approximate_index_with_recall_over_the_bar(saved):
    folder, emb, built = saved
    assert built.kind.startswith("approximate (faiss IVF")
    info = json.loads((folder / INDEX_META).read_text())
    assert info["rows"] == 20_000 and info["recall"] >= RECALL_TARGET
    q = probe_queries(emb, 100, seed=7)  # other queries than the tuning ones
    _, truth = exact_search(emb, q, 50)
    _, found = built.search(q, 50)
    assert recall_at(truth, found) >= 0.95


def test_saved_index_opens_memory_mapped_read_only_and_answers_the_same(saved):
    folder, emb, built = saved
    before = sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir())
    folder.chmod(0o555)
    try:
        opened = NeighborIndex.open(emb, folder)
    finally:
        folder.chmod(0o755)
    assert opened.kind == built.kind and "recall@50" in opened.why
    q = probe_queries(emb, 30, seed=3)
    s1, r1 = built.search(q, 50)
    s2, r2 = opened.search(q, 50)
    np.testing.assert_array_equal(r1, r2)
    # similarities are exact cosines (re-ranked against the embeddings), best first
    np.testing.assert_allclose(s2, np.einsum("qd,qkd->qk", q, np.asarray(emb)[r2]), atol=1e-5)
    assert np.all(np.diff(s2, axis=1) <= 1e-6)
    assert sorted((p.name, p.stat().st_mtime_ns) for p in folder.iterdir()) == before


def test_a_saved_index_for_other_rows_is_ignored(saved):
    folder, emb, _ = saved
    small = np.ascontiguousarray(emb[:1000])
    assert NeighborIndex.open(small, folder).kind.startswith("exact")


def test_k_is_capped_and_union_is_distinct(saved):
    _, emb, built = saved
    rows = built.union(np.asarray(emb[:5]), 50)
    assert len(rows) == len(set(rows.tolist())) and set(range(5)) <= set(rows.tolist())
    s, r = NeighborIndex(np.asarray(emb[:10])).search(np.asarray(emb[:2]), 50)
    assert r.shape == (2, 10)

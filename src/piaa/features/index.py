"""The one nearest-neighbour index over L2-normalised embeddings (cosine similarity = inner product).

Every part of piaa that looks up neighbours (the reference corpus, the evaluation worlds) goes through
:class:`NeighborIndex`, so the search is written once. The kind is chosen by size:

- up to :data:`EXACT_MAX` rows: exact search (faiss ``IndexFlatIP``), built in memory when opened;
- beyond: an inverted file with 8-bit scalar-quantized codes (faiss ``IVF{nlist},SQ8``), built once with
  the reference and saved beside it (``index.faiss`` + ``index.json``), opened memory-mapped so that a
  query touches only the lists it probes. The ``2k`` best candidates are re-ranked exactly against the
  (memory-mapped) embeddings, so the similarities returned are exact cosines. ``nprobe`` is tuned at
  build time until recall@50 against exact search reaches :data:`RECALL_TARGET` on queries near the
  corpus; the measured recall is saved and shown by ``piaa reference info``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

EXACT_MAX = 50_000  # rows; above this an approximate index is built with the reference
RECALL_TARGET = 0.97  # recall@50 against exact search, measured at build time (the bar is 0.95)
INDEX_NAME, INDEX_META = "index.faiss", "index.json"
_NPROBES = (8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512)


def normalize(embeddings: np.ndarray) -> np.ndarray:
    """L2-normalise rows (cosine similarity becomes an inner product); zero rows stay zero.
    (N, D) -> (N, D) float32."""
    e = np.asarray(embeddings, dtype=np.float32)
    n = np.linalg.norm(e, axis=1, keepdims=True)
    return e / np.maximum(n, 1e-12)


def exact_search(emb: np.ndarray, queries: np.ndarray, k: int, chunk: int = 32_768) -> tuple[np.ndarray, ...]:
    """Exact top-``k`` inner products of normalised queries over ``emb`` (possibly memory-mapped), read
    in chunks so that memory stays bounded: the ground truth of recall measurements."""
    import faiss

    q = np.ascontiguousarray(queries, dtype=np.float32)
    k = min(k, len(emb))
    heap = faiss.ResultHeap(len(q), k, keep_max=True)
    for start in range(0, len(emb), chunk):
        part = np.ascontiguousarray(emb[start : start + chunk], dtype=np.float32)
        d, i = faiss.knn(q, part, k=min(k, len(part)), metric=faiss.METRIC_INNER_PRODUCT)
        if d.shape[1] < k:  # pad a short last chunk
            d = np.pad(d, ((0, 0), (0, k - d.shape[1])), constant_values=-np.inf)
            i = np.pad(i, ((0, 0), (0, k - i.shape[1])), constant_values=-1)
        heap.add_result(np.ascontiguousarray(d), np.ascontiguousarray(np.where(i >= 0, i + start, -1)))
    heap.finalize()
    return heap.D, heap.I


def recall_at(truth: np.ndarray, found: np.ndarray) -> float:
    """Mean fraction of each row of ``truth`` present in the same row of ``found``."""
    return float(np.mean([len(set(t) & set(f)) / len(t) for t, f in zip(truth, found, strict=True)]))


def probe_queries(emb: np.ndarray, n: int = 200, noise: float = 0.5, seed: int = 0) -> np.ndarray:
    """Queries near the corpus but not in it (a row plus noise of ``noise`` times its norm): how album
    photos sit among reference images."""
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(len(emb), size=min(n, len(emb)), replace=False))
    base = np.asarray(emb[rows], dtype=np.float32)
    jitter = rng.normal(size=base.shape).astype(np.float32)
    return normalize(base + noise * normalize(jitter))


class NeighborIndex:
    """Cosine k-nearest-neighbour search over the rows of ``embeddings`` (N x D, normalised here).

    ``NeighborIndex(emb)`` is exact. :meth:`build` chooses by size and saves an approximate index into
    a folder; :meth:`open` loads what was saved there (never writing)."""

    def __init__(self, embeddings: np.ndarray) -> None:
        import faiss

        emb = np.ascontiguousarray(normalize(np.atleast_2d(embeddings)))
        self.size, self.dim = emb.shape
        self.kind = "exact (faiss IndexFlatIP)"
        self.why = f"{self.size} rows <= {EXACT_MAX}: exact search is fast enough"
        self.info: dict[str, Any] = {"kind": "exact"}
        self._emb: np.ndarray | None = None  # for re-ranking approximate candidates
        self._index = faiss.IndexFlatIP(self.dim)
        if self.size:
            self._index.add(emb)

    @classmethod
    def _approximate(cls, index: Any, emb: np.ndarray, info: dict[str, Any]) -> NeighborIndex:
        self = cls.__new__(cls)
        self.size, self.dim = emb.shape
        self._index, self._emb, self.info = index, emb, info
        index.nprobe = int(info["nprobe"])
        self.kind = f"approximate (faiss IVF{info['nlist']},SQ8, nprobe {info['nprobe']}, exact re-rank)"
        self.why = (
            f"{self.size} rows > {EXACT_MAX}; recall@50 {info['recall']:.3f} against exact search at "
            f"{info['query_ms']:.1f} ms/query (exact: {info['exact_ms']:.1f} ms/query), measured at build"
        )
        return self

    @classmethod
    def build(
        cls, embeddings: np.ndarray, folder: str | Path | None = None, *, exact_max: int = EXACT_MAX
    ) -> NeighborIndex:
        """The index for ``embeddings`` (already normalised, may be memory-mapped): exact up to
        ``exact_max`` rows, else an IVF index tuned for recall and written into ``folder`` (a stale
        saved index there is removed when exact is chosen)."""
        n = len(embeddings)
        if n <= exact_max:
            if folder is not None:
                for name in (INDEX_NAME, INDEX_META):
                    (Path(folder) / name).unlink(missing_ok=True)
            return cls(embeddings)
        index, info = _build_ivf(embeddings)
        if folder is not None:
            _save(index, info, Path(folder))
        return cls._approximate(index, embeddings, info)

    @classmethod
    def open(cls, embeddings: np.ndarray, folder: str | Path) -> NeighborIndex:
        """The index saved in ``folder`` for these embeddings (memory-mapped), or exact search."""
        import faiss

        folder = Path(folder)
        try:
            info = json.loads((folder / INDEX_META).read_text())
        except (OSError, ValueError):
            info = None
        if info and info.get("rows") == len(embeddings) and (folder / INDEX_NAME).is_file():
            index = faiss.read_index(str(folder / INDEX_NAME), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
            return cls._approximate(index, embeddings, info)
        return cls(embeddings)

    def __len__(self) -> int:
        return self.size

    def search(self, queries: np.ndarray, k: int = 50) -> tuple[np.ndarray, np.ndarray]:
        """Cosine similarities (Q x k, in [-1, 1], best first) and row numbers (Q x k) of the ``k``
        nearest rows of each query row (Q x D, normalised here); ``k`` is capped at the index size."""
        q = np.ascontiguousarray(normalize(np.atleast_2d(queries)))
        k = max(1, min(k, self.size))
        if self._emb is None:
            return self._index.search(q, k)
        _, cand = self._index.search(q, min(self.size, 2 * k))
        return _rerank(self._emb, q, cand, k)

    def union(self, queries: np.ndarray, k: int = 50) -> np.ndarray:
        """The sorted, distinct rows among the ``k`` nearest of all queries: the paper's neighbour set
        (section 3.2: the K = 50 nearest reference images of each of a person's photos)."""
        _, rows = self.search(queries, k)
        return np.unique(rows[rows >= 0])


def _rerank(emb: np.ndarray, q: np.ndarray, cand: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact cosines of the candidates (rows read from the memory-mapped embeddings), best ``k`` kept."""
    sims = np.full(cand.shape, -np.inf, np.float32)
    valid = cand >= 0
    uniq, inv = np.unique(cand[valid], return_inverse=True)
    vecs = np.asarray(emb[uniq], dtype=np.float32)  # sorted row reads from the memory map
    qi = np.nonzero(valid)[0]
    sims[valid] = np.einsum("ij,ij->i", q[qi], vecs[inv])
    order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    rows = np.take_along_axis(cand, order, axis=1)
    d = np.take_along_axis(sims, order, axis=1)
    rows[~np.isfinite(d)] = -1
    return d, rows


def _build_ivf(emb: np.ndarray, seed: int = 0) -> tuple[Any, dict[str, Any]]:
    import faiss

    t0 = time.perf_counter()
    n, d = emb.shape
    nlist = int(min(4096, max(64, 2 ** round(np.log2(4 * np.sqrt(n))))))
    rng = np.random.default_rng(seed)
    train = np.ascontiguousarray(emb[np.sort(rng.choice(n, size=min(n, 64 * nlist), replace=False))])
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFScalarQuantizer(
        quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
    )
    index.cp.seed = seed
    index.train(train)
    for start in range(0, n, 65_536):
        index.add(np.ascontiguousarray(emb[start : start + 65_536], dtype=np.float32))
    build_s = time.perf_counter() - t0
    q = probe_queries(emb, 200, seed=seed + 1)
    t = time.perf_counter()
    _, truth = exact_search(emb, q, 50)
    exact_ms = (time.perf_counter() - t) * 1000 / len(q)
    info: dict[str, Any] = {"kind": "ivf-sq8", "rows": n, "nlist": nlist, "build_s": round(build_s, 1)}
    for nprobe in [p for p in _NPROBES if p <= nlist] or [nlist]:
        index.nprobe = nprobe
        t = time.perf_counter()
        _, cand = index.search(q, 100)
        _, found = _rerank(emb, q, cand, 50)
        ms = (time.perf_counter() - t) * 1000 / len(q)
        info.update(nprobe=nprobe, recall=round(recall_at(truth, found), 4), query_ms=round(ms, 2))
        if info["recall"] >= RECALL_TARGET:
            break
    info["exact_ms"] = round(exact_ms, 2)
    info["tune_s"] = round(time.perf_counter() - t0 - build_s, 1)
    return index, info


def _save(index: Any, info: dict[str, Any], folder: Path) -> None:
    import faiss

    from piaa.io import atomic_write_bytes

    (folder / INDEX_META).unlink(missing_ok=True)  # never a description of another index
    atomic_write_bytes(folder / INDEX_NAME, faiss.serialize_index(index).tobytes())
    atomic_write_bytes(folder / INDEX_META, json.dumps(info, indent=1).encode())

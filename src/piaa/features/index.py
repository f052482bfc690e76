"""The one nearest-neighbour index over L2-normalised embeddings (cosine similarity = inner product).

Every part of piaa that looks up neighbours (the reference corpus, the evaluation worlds) goes through
:class:`NeighborIndex`, so the search is written once. It is exact (faiss ``IndexFlatIP``).
"""

from __future__ import annotations

import numpy as np


def normalize(embeddings: np.ndarray) -> np.ndarray:
    """L2-normalise rows (cosine similarity becomes an inner product); zero rows stay zero.
    (N, D) -> (N, D) float32."""
    e = np.asarray(embeddings, dtype=np.float32)
    n = np.linalg.norm(e, axis=1, keepdims=True)
    return e / np.maximum(n, 1e-12)


class NeighborIndex:
    """Cosine k-nearest-neighbour search over the rows of ``embeddings`` (N x D, normalised here)."""

    def __init__(self, embeddings: np.ndarray) -> None:
        import faiss

        emb = np.ascontiguousarray(normalize(np.atleast_2d(embeddings)))
        self.size, self.dim = emb.shape
        self.kind = "exact (faiss IndexFlatIP)"
        self._index = faiss.IndexFlatIP(self.dim)
        if self.size:
            self._index.add(emb)

    def __len__(self) -> int:
        return self.size

    def search(self, queries: np.ndarray, k: int = 50) -> tuple[np.ndarray, np.ndarray]:
        """Cosine similarities (Q x k, in [-1, 1], best first) and row numbers (Q x k) of the ``k``
        nearest rows of each query row (Q x D, normalised here); ``k`` is capped at the index size."""
        q = np.ascontiguousarray(normalize(np.atleast_2d(queries)))
        k = max(1, min(k, self.size))
        return self._index.search(q, k)

    def union(self, queries: np.ndarray, k: int = 50) -> np.ndarray:
        """The sorted, distinct rows among the ``k`` nearest of all queries: the paper's neighbour set
        (section 3.2: the K = 50 nearest reference images of each of a person's photos)."""
        _, rows = self.search(queries, k)
        return np.unique(rows[rows >= 0])

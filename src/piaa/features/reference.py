"""The reference corpus: crowd-rated images (the AVA role), embedded once, with a cosine KNN index.

This module opens a finished reference (built by :mod:`piaa.features.store`; its docstring describes
the folder). Opening is cheap at any size and never writes: the embeddings are memory-mapped from
``embeddings.npy``, a saved approximate index is memory-mapped too, and feature maps are read only for
the rows asked for (full float16 maps, or compact ones decoded to the same shapes).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from piaa.backbones import Backbone, FeatureMaps, create_backbone
from piaa.data.labels import mean_score
from piaa.features.index import NeighborIndex
from piaa.features.mapcodec import MapCodec
from piaa.features.store import (  # noqa: F401 - the public names stay importable from here
    DB_NAME,
    DONE,
    EMB_NAME,
    FORMAT,
    BuildReport,
    ReferenceError,
    build_reference,
    embeddings_from_db,
    open_read_only,
)


@dataclass
class Reference:
    """An opened, complete reference store. Row ``r`` of every array is the same image."""

    path: Path
    meta: dict[str, str]
    ids: list[str]
    paths: list[Path]
    distributions: np.ndarray  # (N, 10) float32
    embeddings: np.ndarray  # (N, D) float32, L2-normalised (memory-mapped from embeddings.npy)
    item_idx: np.ndarray  # (N,) row ids in the SQLite store
    _index: NeighborIndex | None = field(default=None, repr=False)

    @classmethod
    def open(cls, path: str | Path) -> Reference:
        path = Path(path)
        dbp = path / DB_NAME
        if not dbp.is_file():
            raise ReferenceError(
                f"{path}: not a piaa reference (no {DB_NAME}); build one with `piaa reference build`"
            )
        try:
            db = open_read_only(dbp)
            meta = dict(db.execute("SELECT key, value FROM meta"))
            if meta.get("complete") != "1":
                raise ReferenceError(
                    f"{path}: the build is incomplete; run the same `piaa reference build` again"
                )
            rows = db.execute(
                "SELECT idx, image_id, path, dist FROM items WHERE status = ? ORDER BY idx", (DONE,)
            ).fetchall()
            if not rows:
                raise ReferenceError(f"{path}: the reference holds no embedded image; build it again")
            emb_path = path / EMB_NAME
            emb = np.load(emb_path, mmap_mode="r") if emb_path.is_file() else None
            if emb is None or emb.shape[0] != len(rows) or emb.dtype != np.float32:
                emb = embeddings_from_db(db)  # opening never writes: rebuilt in memory
        except sqlite3.DatabaseError as e:
            raise ReferenceError(f"{path}: the reference store is corrupt ({e})") from None
        finally:
            if "db" in locals():
                db.close()
        images = Path(meta.get("images", "."))
        return cls(
            path=path,
            meta=meta,
            ids=[r[1] for r in rows],
            paths=[images / r[2] for r in rows],
            distributions=np.frombuffer(b"".join(r[3] for r in rows), "<f4").reshape(len(rows), 10).copy(),
            embeddings=emb,
            item_idx=np.array([r[0] for r in rows], dtype=np.int64),
        )

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def backbone_name(self) -> str:
        return self.meta["backbone"]

    @property
    def weights_hash(self) -> str:
        return self.meta["weights_hash"]

    @property
    def has_maps(self) -> bool:
        return self.meta.get("store_maps") in ("1", "compact")

    def check_backbone(self, backbone: Backbone) -> None:
        """Refuse a backbone other than the one the reference was embedded with."""
        if (backbone.info.name, backbone.info.weights_hash) != (self.backbone_name, self.weights_hash):
            raise ReferenceError(
                f"{self.path}: built with {self.backbone_name} (weights {self.weights_hash}), "
                f"not {backbone.info.name} (weights {backbone.info.weights_hash})"
            )

    def create_backbone(self, weights: str | Path | None = None) -> Backbone:
        """The backbone this reference was built with (checked against its weights hash)."""
        if weights is None:
            weights = None if self.weights_hash == "random" else "imagenet"
        bb = create_backbone(self.backbone_name, weights)
        self.check_backbone(bb)
        return bb

    def mean_scores(self) -> np.ndarray:
        return mean_score(self.distributions)

    @property
    def index(self) -> NeighborIndex:
        """The neighbour index: saved beside the store (memory-mapped) or exact, see ``index.py``."""
        if self._index is None:
            self._index = NeighborIndex.open(self.embeddings, self.path)
        return self._index

    @property
    def maps_kind(self) -> str:
        return {"1": "full float16", "compact": "compact (mapcodec)"}.get(
            self.meta.get("store_maps", ""), "none"
        )

    def neighbors(self, queries: np.ndarray, k: int = 50) -> tuple[np.ndarray, np.ndarray]:
        """Cosine similarities and row numbers of the ``k`` nearest references of each query row."""
        return self.index.search(queries, k)

    def neighbor_union(self, queries: np.ndarray, k: int = 50) -> np.ndarray:
        """Distinct rows among the ``k`` nearest references of all queries (the paper's neighbour set)."""
        return self.index.union(queries, k)

    def maps(self, rows: np.ndarray | list[int]) -> FeatureMaps:
        """Stored feature maps of the given rows: the spatial maps float16 as stored (what training on
        cached maps holds, see ``features.half_maps``), stats and embedding float32. Compact maps are
        decoded to the same shapes."""
        return _concat(list(self.iter_maps(rows)))

    def iter_maps(self, rows: np.ndarray | list[int], chunk: int = 512) -> Iterator[FeatureMaps]:
        """:meth:`maps` in pieces of ``chunk`` rows, in order: streamed, for memory bounded by a chunk."""
        if not self.has_maps:
            raise ReferenceError(f"{self.path}: built with --no-maps; feature maps must be recomputed")
        if self.meta.get("format") != FORMAT:
            raise ReferenceError(
                f"{self.path}: its stored maps come from an older piaa (format {self.meta.get('format')}) "
                "and lack the low-level statistics; build the reference again into a new folder"
            )
        info = json.loads(self.meta["backbone_info"])
        channels = info["channels"]
        rows = np.asarray(rows, dtype=np.int64)
        db = open_read_only(self.path / DB_NAME)
        try:
            codec = None
            if self.meta.get("store_maps") == "compact":
                blob = db.execute("SELECT value FROM blobs WHERE key = 'map_codec'").fetchone()
                codec = MapCodec.from_bytes(blob[0])
            for start in range(0, len(rows), chunk):
                yield self._read_maps(db, rows[start : start + chunk], channels, codec)
        except sqlite3.DatabaseError as e:
            raise ReferenceError(f"{self.path}: the reference store is corrupt ({e})") from None
        finally:
            db.close()

    def _read_maps(
        self, db: sqlite3.Connection, rows: np.ndarray, channels: list[int], codec: MapCodec | None
    ) -> FeatureMaps:
        idx = [int(i) for i in self.item_idx[rows]]
        found = {}
        for chunk in range(0, len(idx), 500):
            part = sorted(set(idx[chunk : chunk + 500]))
            q = f"SELECT idx, z1, z2, z3, stats FROM maps WHERE idx IN ({','.join('?' * len(part))})"
            for i, *blobs in db.execute(q, part):
                found[i] = blobs
        missing = [i for i in idx if i not in found]
        if missing:
            raise ReferenceError(f"{self.path}: feature maps missing for {len(missing)} images")
        c1, c2, c3 = channels
        blobs = [[found[i][pos] for i in idx] for pos in range(4)]
        if codec is None:
            out = []
            for pos, ch in enumerate((c1, c2)):
                arr = np.stack([np.frombuffer(b, "<f2") for b in blobs[pos]])
                side = int(round((arr.shape[1] / ch) ** 0.5))
                out.append(torch.from_numpy(arr.reshape(len(idx), ch, side, side)))
            z3 = torch.from_numpy(np.stack([np.frombuffer(b, "<f2") for b in blobs[2]]).reshape(-1, c3, 1, 1))
        else:  # compact: the coarse grids as stored (the head runs on any grid)
            out = [codec.decode(blobs[0], 0, c1), codec.decode(blobs[1], 1, c2)]
            z3 = codec.decode_z3(blobs[2], self.embeddings[rows], c3)
        stats = np.stack([np.frombuffer(b, "<f2") for b in blobs[3]]).astype(np.float32)
        return FeatureMaps(out[0], out[1], z3, z3.float().mean(dim=(2, 3)), torch.from_numpy(stats))


def _concat(parts: list[FeatureMaps]) -> FeatureMaps:
    return FeatureMaps(*(torch.cat(t) for t in zip(*parts, strict=True)))

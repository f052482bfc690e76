"""The reference corpus: crowd-rated images (the AVA role), embedded once, with a cosine KNN index.

This module opens a finished reference (built by :mod:`piaa.features.store`; its docstring describes
the folder). Opening is cheap at any size and never writes: the embeddings are memory-mapped from
``embeddings.npy``, a saved approximate index is memory-mapped too, the rows' ids, paths and score
distributions are read only when asked for (all of them, or those of given rows: :meth:`Reference.lookup`),
and feature maps are read only for the rows asked for (full float16 maps, or compact ones decoded to the
same shapes). Nothing here imports torch until feature maps or a backbone are asked for: a neighbour
query embeds its photos from the backbone's cached ONNX graph (:meth:`Reference.embed`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from piaa.data.labels import mean_score
from piaa.features.index import NeighborIndex
from piaa.features.store import (  # noqa: F401 - the public names stay importable from here
    DB_NAME,
    DONE,
    EMB_NAME,
    FORMAT,
    REFERENCE_VERSION,
    ROW_DIST,
    ROW_IDX,
    BuildReport,
    ReferenceCorpusError,
    ReferenceMeta,
    build_reference,
    embeddings_from_db,
    open_read_only,
)
from piaa.settings import RunSettings

if TYPE_CHECKING:
    from piaa.backbones import Backbone, FeatureMaps
    from piaa.data.images import FailureLog
    from piaa.features.mapcodec import MapCodec

QUICK_QUERIES = 8  # query photos embedded from the cached ONNX graph (one batch of FeatureExtractor's)


class Reference:
    """An opened, complete reference store. Row ``r`` of every array is the same image.

    ``embeddings`` ((N, D) float32, L2-normalised, memory-mapped from ``embeddings.npy``) and ``item_idx``
    ((N,) row ids in the SQLite store) are there from the start. ``distributions`` ((N, 10) float32) are
    read on first use, from one blob saved with the build (a scan of the whole table in a store built
    before it: 1.5-4 s at 255,000 rows); ``ids`` and ``paths`` too, from a scan of the whole table;
    :meth:`lookup` reads all three for a few rows only."""

    def __init__(
        self,
        path: Path,
        meta: ReferenceMeta | Mapping[str, str],
        embeddings: np.ndarray,
        item_idx: np.ndarray,
        ids: list[str] | None = None,
        paths: list[Path] | None = None,
        distributions: np.ndarray | None = None,
    ) -> None:
        self.path = path
        self.meta = ReferenceMeta.from_rows(meta, path)
        self.embeddings = embeddings
        self.item_idx = item_idx
        self._ids, self._paths, self._distributions = ids, paths, distributions
        self._index: NeighborIndex | None = None

    def __repr__(self) -> str:
        return f"Reference({str(self.path)!r}, {len(self)} images, backbone {self.meta.backbone})"

    @classmethod
    def open(cls, path: str | Path) -> Reference:
        path = Path(path)
        dbp = path / DB_NAME
        if not dbp.is_file():
            raise ReferenceCorpusError(
                f"{path}: not a piaa reference (no {DB_NAME}); build one with `piaa reference build`"
            )
        try:
            db = open_read_only(dbp)
            meta = ReferenceMeta.from_rows(dict(db.execute("SELECT key, value FROM meta")), path)
            if not meta.complete:
                raise ReferenceCorpusError(
                    f"{path}: the build is incomplete; run the same `piaa reference build` again"
                )
            item_idx = _row_idx(db, meta)
            rows = None
            if item_idx is None:  # an older store with failed images: every row read to number them
                rows = _read_items(db)
                item_idx = np.array([r[0] for r in rows], dtype=np.int64)
            if not len(item_idx):
                raise ReferenceCorpusError(f"{path}: the reference holds no embedded image; build it again")
            emb_path = path / EMB_NAME
            emb = np.load(emb_path, mmap_mode="r") if emb_path.is_file() else None
            if emb is None or emb.shape[0] != len(item_idx) or emb.dtype != np.float32:
                emb = embeddings_from_db(db)  # opening never writes: rebuilt in memory
        except sqlite3.DatabaseError as e:
            raise ReferenceCorpusError(f"{path}: the reference store is corrupt ({e})") from None
        finally:
            if "db" in locals():
                db.close()
        ref = cls(path=path, meta=meta, embeddings=emb, item_idx=item_idx)
        if rows is not None:
            ref._set_items(rows)
        return ref

    @property
    def ids(self) -> list[str]:
        if self._ids is None:
            self._load_names()
        assert self._ids is not None
        return self._ids

    @property
    def paths(self) -> list[Path]:
        if self._paths is None:
            self._load_names()
        assert self._paths is not None
        return self._paths

    @property
    def distributions(self) -> np.ndarray:
        if self._distributions is None:
            self._distributions = self._saved_distributions()
        if self._distributions is None:  # an older store: read from every row
            self._distributions = _dist_array([r[1] for r in self._scan("dist")])
        return self._distributions

    def _saved_distributions(self) -> np.ndarray | None:
        """The distributions saved with the build in row order (one blob), if there and complete."""
        db = open_read_only(self.path / DB_NAME)
        try:
            blob = db.execute("SELECT value FROM blobs WHERE key = ?", (ROW_DIST,)).fetchone()
        except sqlite3.DatabaseError as e:
            raise ReferenceCorpusError(f"{self.path}: the reference store is corrupt ({e})") from None
        finally:
            db.close()
        if blob is None or len(blob[0]) != 40 * len(self):
            return None
        return np.frombuffer(blob[0], "<f4").reshape(len(self), 10).copy()

    def _images(self) -> Path:
        return Path(self.meta.images)

    def _set_items(self, rows: list[tuple]) -> None:
        images = self._images()
        self._ids = [r[1] for r in rows]
        self._paths = [images / r[2] for r in rows]
        self._distributions = _dist_array([r[3] for r in rows])

    def _load_names(self) -> None:
        rows = self._scan("image_id, path")
        images = self._images()
        self._ids = [r[1] for r in rows]
        self._paths = [images / r[2] for r in rows]

    def _scan(self, columns: str) -> list[tuple]:
        """(idx, *columns) of every embedded row, in row order: a scan of the whole table."""
        db = open_read_only(self.path / DB_NAME)
        try:
            rows = _read_items(db, columns)
        except sqlite3.DatabaseError as e:
            raise ReferenceCorpusError(f"{self.path}: the reference store is corrupt ({e})") from None
        finally:
            db.close()
        if [r[0] for r in rows] != self.item_idx.tolist():
            raise ReferenceCorpusError(f"{self.path}: the reference store changed since it was opened")
        return rows

    def lookup(self, rows: Sequence[int] | np.ndarray) -> tuple[list[str], list[Path], np.ndarray]:
        """The ids, image paths and score distributions ((len(rows), 10) float32) of the given rows, in
        their order, read from the store by key (or from memory once everything was read)."""
        rows = np.asarray(rows, dtype=np.int64).reshape(-1)
        if not len(rows):
            return [], [], np.zeros((0, 10), np.float32)
        if self._ids is not None and self._distributions is not None:
            return [self.ids[r] for r in rows], [self.paths[r] for r in rows], self.distributions[rows]
        idx = [int(i) for i in self.item_idx[rows]]
        found: dict[int, tuple] = {}
        db = open_read_only(self.path / DB_NAME)
        try:
            for chunk in range(0, len(idx), 500):
                part = sorted(set(idx[chunk : chunk + 500]))
                q = f"SELECT idx, image_id, path, dist FROM items WHERE idx IN ({','.join('?' * len(part))})"
                for row in db.execute(q, part):
                    found[row[0]] = row
        except sqlite3.DatabaseError as e:
            raise ReferenceCorpusError(f"{self.path}: the reference store is corrupt ({e})") from None
        finally:
            db.close()
        missing = [i for i in idx if i not in found]
        if missing:
            raise ReferenceCorpusError(f"{self.path}: rows missing from the store ({len(missing)})")
        images = self._images()
        dists = _dist_array([found[i][3] for i in idx])
        return [found[i][1] for i in idx], [images / found[i][2] for i in idx], dists

    def __len__(self) -> int:
        return len(self.item_idx)

    @property
    def backbone_name(self) -> str:
        return self.meta.backbone

    @property
    def weights_hash(self) -> str:
        return self.meta.weights_hash

    @property
    def has_maps(self) -> bool:
        return self.meta.has_maps

    def check_backbone(self, backbone: Backbone) -> None:
        """Refuse a backbone other than the one the reference was embedded with."""
        if (backbone.info.name, backbone.info.weights_hash) != (self.backbone_name, self.weights_hash):
            raise ReferenceCorpusError(
                f"{self.path}: built with {self.backbone_name} (weights {self.weights_hash}), "
                f"not {backbone.info.name} (weights {backbone.info.weights_hash})"
            )

    def create_backbone(self, weights: str | Path | None = None) -> Backbone:
        """The backbone this reference was built with (checked against its weights hash)."""
        if weights is None:
            weights = None if self.weights_hash == "random" else "imagenet"
        from piaa.backbones import create_backbone

        bb = create_backbone(self.backbone_name, weights)
        self.check_backbone(bb)
        return bb

    def mean_scores(self) -> np.ndarray:
        return mean_score(self.distributions)

    def embed(
        self,
        paths: Sequence[str | Path],
        *,
        failures: FailureLog | None = None,
        workers: int | None = None,
        progress: bool | None = None,
    ) -> Iterator[tuple[list[int], np.ndarray]]:
        """Embed query photos with this reference's backbone: batches of (positions in ``paths`` that
        decoded, their embeddings (n, D) float32); files that fail go to ``failures``.

        Up to :data:`QUICK_QUERIES` photos (one batch) run through the backbone's cached ONNX graph
        without importing torch or building the network (:mod:`piaa.backbones.cached_onnx`: the same
        numbers); more, or no cached graph, go through :class:`~piaa.features.extract.FeatureExtractor`
        with the backbone checked against the reference's weights (``workers``: its decode processes)."""
        paths = list(paths)
        if not paths:
            return
        if len(paths) <= QUICK_QUERIES:
            from piaa.backbones.cached_onnx import CachedOnnx

            quick = CachedOnnx.find(self.backbone_name, self.weights_hash)
            if quick is not None:
                kept, feats = quick.files(paths, failures=failures)
                if feats is not None:
                    yield kept, feats.embedding
                return
        from piaa.features.extract import FeatureExtractor

        show = len(paths) > QUICK_QUERIES if progress is None else progress
        extractor = FeatureExtractor(self.create_backbone(), RunSettings(workers=workers, progress=show))
        for batch in extractor.files(paths, failures=failures):
            yield batch.indices, batch.features.embedding.numpy()

    @property
    def index(self) -> NeighborIndex:
        """The neighbour index: saved beside the store (memory-mapped) or exact, see ``index.py``."""
        if self._index is None:
            self._index = NeighborIndex.open(self.embeddings, self.path)
        return self._index

    @property
    def maps_kind(self) -> str:
        return {"full": "full float16", "compact": "compact (mapcodec)"}.get(self.meta.maps, "none")

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
            raise ReferenceCorpusError(f"{self.path}: built with --no-maps; feature maps must be recomputed")
        if self.meta.version < REFERENCE_VERSION or self.meta.backbone_info is None:
            raise ReferenceCorpusError(
                f"{self.path}: its stored maps come from an older piaa "
                f"(format piaa-reference-{self.meta.version}) and lack the low-level statistics; "
                "build the reference again into a new folder"
            )
        from piaa.features.mapcodec import MapCodec

        channels = self.meta.backbone_info["channels"]
        rows = np.asarray(rows, dtype=np.int64)
        db = open_read_only(self.path / DB_NAME)
        try:
            codec = None
            if self.meta.maps == "compact":
                blob = db.execute("SELECT value FROM blobs WHERE key = 'map_codec'").fetchone()
                codec = MapCodec.from_bytes(blob[0])
            for start in range(0, len(rows), chunk):
                yield self._read_maps(db, rows[start : start + chunk], channels, codec)
        except sqlite3.DatabaseError as e:
            raise ReferenceCorpusError(f"{self.path}: the reference store is corrupt ({e})") from None
        finally:
            db.close()

    def _read_maps(
        self, db: sqlite3.Connection, rows: np.ndarray, channels: list[int], codec: MapCodec | None
    ) -> FeatureMaps:
        import torch

        from piaa.backbones import FeatureMaps

        idx = [int(i) for i in self.item_idx[rows]]
        found = {}
        for chunk in range(0, len(idx), 500):
            part = sorted(set(idx[chunk : chunk + 500]))
            q = f"SELECT idx, z1, z2, z3, stats FROM maps WHERE idx IN ({','.join('?' * len(part))})"
            for i, *blobs in db.execute(q, part):
                found[i] = blobs
        missing = [i for i in idx if i not in found]
        if missing:
            raise ReferenceCorpusError(f"{self.path}: feature maps missing for {len(missing)} images")
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


def check_reference(path: str | Path) -> Reference:
    """Open a reference at start-up, so a command that uses it only later (``piaa collect --reference``
    trains from it when the person asks) fails before it starts, not at training.

    Returns the opened :class:`Reference` (cheap: nothing but the embeddings' memory map is read).
    Raises ``ReferenceCorpusError`` with one line naming ``path``: not a folder; a folder of photos (with the
    command that would build a reference from them); no reference store; an incomplete or corrupt one."""
    path = Path(path)
    if not path.is_dir():
        what = "no such folder" if not path.exists() else "not a folder"
        raise ReferenceCorpusError(f"{path}: {what}; --reference is a folder made by `piaa reference build`")
    if not (path / DB_NAME).is_file():
        from piaa.data.images import iter_image_files

        photos = next(iter(iter_image_files([path])), None) is not None
        if photos:
            raise ReferenceCorpusError(
                f"{path}: a folder of photos, not a reference corpus; build one from crowd-rated photos with "
                f"`piaa reference build --labels LABELS --images {path} --out REF` and give REF"
            )
    return Reference.open(path)


def _concat(parts: list[FeatureMaps]) -> FeatureMaps:
    import torch

    from piaa.backbones import FeatureMaps

    return FeatureMaps(*(torch.cat(t) for t in zip(*parts, strict=True)))


def _read_items(db: sqlite3.Connection, columns: str = "image_id, path, dist") -> list[tuple]:
    """(idx, *columns) of every embedded row, in row order: a scan of the whole table."""
    return db.execute(f"SELECT idx, {columns} FROM items WHERE status = ? ORDER BY idx", (DONE,)).fetchall()


def _dist_array(blobs: list[bytes]) -> np.ndarray:
    return np.frombuffer(b"".join(blobs), "<f4").reshape(len(blobs), 10).copy()


def _row_idx(db: sqlite3.Connection, meta: ReferenceMeta) -> np.ndarray | None:
    """The store's row ids of the embedded rows, in row order, without reading the rows: saved with the
    build (``blobs.row_idx``), or for an older store in which every image was embedded, 0 .. N-1
    (checked on the table's indexes). None when the rows must be read to know."""
    if meta.embedded is None:
        return None
    n = meta.embedded
    blob = db.execute("SELECT value FROM blobs WHERE key = ?", (ROW_IDX,)).fetchone()
    if blob is not None:
        idx = np.frombuffer(blob[0], "<i8").astype(np.int64)
        return idx if len(idx) == n else None
    total = db.execute("SELECT COUNT(*) FROM items").fetchone()[0]
    lo, hi = db.execute("SELECT MIN(idx), MAX(idx) FROM items").fetchone()
    if total == n and lo == 0 and hi == n - 1:  # complete, so none pending; all embedded: none failed
        return np.arange(n, dtype=np.int64)
    return None

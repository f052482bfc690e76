"""The reference corpus: crowd-rated images (the AVA role), embedded once, with a cosine KNN index.

A reference is a folder::

    REF/reference.sqlite   the durable store: labels, paths, embeddings, optional feature maps, metadata
    REF/embeddings.npy     a derived, contiguous copy of the normalised embeddings (rebuilt if missing)

SQLite makes the build resumable and crash-safe: every batch of images is committed in one
transaction, so a killed build restarts where it stopped and never leaves a half-written row. Storing
the feature maps (on by default, float16) is what lets ``piaa personalize`` train the aesthetic head
without running the backbone over the neighbours again; ``--no-maps`` saves the space for huge corpora.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from piaa.backbones import DEFAULT_BACKBONE, Backbone, FeatureMaps, create_backbone
from piaa.data.images import FailureLog
from piaa.data.labels import mean_score, read_labels
from piaa.features.extract import FeatureExtractor
from piaa.features.index import NeighborIndex, normalize
from piaa.io import atomic_open, remove_stale_temporaries
from piaa.version import __version__

DB_NAME = "reference.sqlite"
FORMAT = "piaa-reference-2"  # 2: stored maps include the low-level statistics
EMB_NAME = "embeddings.npy"
PENDING, DONE, FAILED = 0, 1, 2
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    idx INTEGER PRIMARY KEY,
    image_id TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    dist BLOB NOT NULL,
    status INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    embedding BLOB
);
CREATE TABLE IF NOT EXISTS maps (idx INTEGER PRIMARY KEY, z1 BLOB, z2 BLOB, z3 BLOB, stats BLOB);
"""


class ReferenceError(RuntimeError):
    """A reference store is missing, incomplete, corrupt or made with another backbone."""


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")  # with WAL: durable against a killed process
    return db


@dataclass
class BuildReport:
    total: int
    embedded: int
    failures: FailureLog
    seconds: float
    resumed_from: int = 0
    newly_embedded: int = 0
    labels_skipped: list[str] = field(default_factory=list)  # label rows with no votes, one line each
    retried: int = 0  # images that had failed before and were tried again

    @property
    def images_per_second(self) -> float:
        return self.newly_embedded / self.seconds if self.seconds > 0 else 0.0


def build_reference(
    labels: str | Path,
    images: str | Path,
    out: str | Path,
    *,
    backbone: str | Backbone = DEFAULT_BACKBONE,
    weights: str | Path | None = "imagenet",
    store_maps: bool = True,
    engine: str = "auto",
    batch_size: int = 8,
    workers: int | None = None,
    limit: int | None = None,
    progress: bool = True,
) -> BuildReport:
    """Embed every labelled image under ``images`` into the store ``out`` (resuming a killed build)."""
    t0 = time.perf_counter()
    labelset = read_labels(labels)
    bb = backbone if isinstance(backbone, Backbone) else create_backbone(backbone, weights)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ReferenceError(f"{out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    images = Path(images)
    n = len(labelset) if limit is None else min(limit, len(labelset))
    want = {
        "format": FORMAT,
        "backbone": bb.info.name,
        "weights_hash": bb.info.weights_hash,
        "labels": str(Path(labels).resolve()),
        "images": str(images.resolve()),
        "count": str(n),
        "store_maps": "1" if store_maps else "0",
    }
    remove_stale_temporaries(out / EMB_NAME)
    db = _connect(out / DB_NAME)
    try:
        db.executescript(_SCHEMA)
        meta = dict(db.execute("SELECT key, value FROM meta"))
        if meta:
            diff = [k for k, v in want.items() if meta.get(k) != v]
            if diff:
                k = diff[0]
                raise ReferenceError(
                    f"{out}: a build with different settings is stored there ({k}: {meta.get(k)!r}, "
                    f"now {want[k]!r}); use another --out folder"
                )
        else:
            with db:
                rows = (
                    (i, labelset.ids[i], labelset.files[i], labelset.distributions[i].astype("<f4").tobytes())
                    for i in range(n)
                )
                db.executemany("INSERT INTO items (idx, image_id, path, dist) VALUES (?, ?, ?, ?)", rows)
                meta_rows = {
                    **want,
                    "complete": "0",
                    "piaa_version": __version__,
                    "backbone_info": json.dumps(bb.info.to_dict()),
                    "labels_format": labelset.source_format,
                    "labels_skipped": json.dumps(labelset.skipped),
                }
                db.executemany("INSERT INTO meta VALUES (?, ?)", meta_rows.items())
        with db:  # images that failed before are tried again: the user may have fixed the cause
            retried = db.execute(
                "UPDATE items SET status = ?, error = NULL WHERE status = ?", (PENDING, FAILED)
            ).rowcount
            if retried:
                db.execute("INSERT OR REPLACE INTO meta VALUES ('complete', '0')")
        pending = db.execute(
            "SELECT idx, path FROM items WHERE status = ? ORDER BY idx", (PENDING,)
        ).fetchall()
        done_before = db.execute("SELECT COUNT(*) FROM items WHERE status = ?", (DONE,)).fetchone()[0]
        failures = FailureLog()
        newly = 0
        if pending:
            newly = _embed_pending(
                db, bb, images, pending, failures, store_maps, engine, batch_size, workers, progress
            )
        _finalize(db, out)
        embedded = db.execute("SELECT COUNT(*) FROM items WHERE status = ?", (DONE,)).fetchone()[0]
        skipped = json.loads(dict(db.execute("SELECT key, value FROM meta")).get("labels_skipped", "[]"))
    except sqlite3.DatabaseError as e:  # a full disk, a corrupt or foreign file
        raise ReferenceError(f"{out / DB_NAME}: {e}") from None
    finally:
        with contextlib.suppress(sqlite3.Error):  # a finished store stays readable from read-only folders
            if db.execute("SELECT value FROM meta WHERE key = 'complete'").fetchone() == ("1",):
                db.execute("PRAGMA journal_mode=DELETE")
        db.close()
    return BuildReport(
        total=n,
        embedded=embedded,
        failures=failures,
        seconds=time.perf_counter() - t0,
        resumed_from=done_before,
        newly_embedded=newly,
        labels_skipped=skipped,
        retried=retried,
    )


def _embed_pending(
    db: sqlite3.Connection,
    bb: Backbone,
    images: Path,
    pending: list[tuple[int, str]],
    failures: FailureLog,
    store_maps: bool,
    engine: str,
    batch_size: int,
    workers: int | None,
    progress: bool,
) -> int:
    idxs = [i for i, _ in pending]
    paths = [images / p for _, p in pending]
    pos_of = {str(p): k for k, p in enumerate(paths)}
    extractor = FeatureExtractor(bb, engine=engine, batch_size=batch_size, workers=workers)
    run_failures = FailureLog()
    seen_failures = 0
    newly = 0

    def record_failures() -> None:
        nonlocal seen_failures
        new = list(run_failures)[seen_failures:]
        seen_failures += len(new)
        db.executemany(
            "UPDATE items SET status = ?, error = ? WHERE idx = ?",
            [(FAILED, reason, idxs[pos_of[str(p)]]) for p, reason in new],
        )
        for p, reason in new:
            failures.add(p, reason)

    for batch in extractor.files(paths, failures=run_failures, progress="reference" if progress else False):
        f = batch.features
        emb = normalize(f.embedding.numpy())
        with db:  # one transaction per batch: all of it lands, or none of it
            record_failures()
            db.executemany(
                "UPDATE items SET status = ?, error = NULL, embedding = ? WHERE idx = ?",
                [(DONE, emb[j].astype("<f4").tobytes(), idxs[k]) for j, k in enumerate(batch.indices)],
            )
            if store_maps:
                db.executemany(
                    "INSERT OR REPLACE INTO maps VALUES (?, ?, ?, ?, ?)",
                    [
                        (idxs[k], *(_f16(t[j]) for t in (f.z1, f.z2, f.z3, f.stats)))
                        for j, k in enumerate(batch.indices)
                    ],
                )
        newly += len(batch.indices)
    with db:
        record_failures()
    return newly


def _f16(t: torch.Tensor) -> bytes:
    return t.numpy().astype("<f2").tobytes()


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_open(path) as f:
        np.save(f, array)


def _finalize(db: sqlite3.Connection, out: Path) -> None:
    """Mark a build complete, unless images are pending or none could be embedded (a reference with no
    rows cannot answer a neighbour query: refused here, in one line, instead of failing later)."""
    if db.execute("SELECT COUNT(*) FROM items WHERE status = ?", (PENDING,)).fetchone()[0]:
        return
    emb = _embeddings_from_db(db)
    if len(emb) == 0:
        total = db.execute("SELECT COUNT(*) FROM items").fetchone()[0]
        raise ReferenceError(
            f"{out}: none of the {total} labelled images could be embedded; fix the images (or --images) "
            "and run the same build again"
        )
    _save_npy(out / EMB_NAME, emb)
    with db:
        db.execute("INSERT OR REPLACE INTO meta VALUES ('complete', '1')")
        db.execute("INSERT OR REPLACE INTO meta VALUES ('embedded', ?)", (str(len(emb)),))


def _open_read_only(dbp: Path) -> sqlite3.Connection:
    """Open without taking locks or writing anything, so that a reference in a read-only folder, or
    shared between users, opens too (``immutable`` when even the read-only open needs to write)."""
    db = sqlite3.connect(f"file:{dbp}?mode=ro", uri=True)
    try:
        db.execute("SELECT 1 FROM meta LIMIT 1")
        return db
    except sqlite3.OperationalError:
        db.close()
        return sqlite3.connect(f"file:{dbp}?immutable=1", uri=True)


def _embeddings_from_db(db: sqlite3.Connection) -> np.ndarray:
    rows = db.execute("SELECT embedding FROM items WHERE status = ? ORDER BY idx", (DONE,)).fetchall()
    if not rows:
        return np.zeros((0, 0), np.float32)
    return np.frombuffer(b"".join(r[0] for r in rows), dtype="<f4").reshape(len(rows), -1).copy()


@dataclass
class Reference:
    """An opened, complete reference store. Row ``r`` of every array is the same image."""

    path: Path
    meta: dict[str, str]
    ids: list[str]
    paths: list[Path]
    distributions: np.ndarray  # (N, 10) float32
    embeddings: np.ndarray  # (N, D) float32, L2-normalised
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
            db = _open_read_only(dbp)
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
            emb = np.load(emb_path) if emb_path.is_file() else None
            if emb is None or emb.shape[0] != len(rows):  # opening never writes: rebuilt in memory
                emb = _embeddings_from_db(db)
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
            embeddings=np.ascontiguousarray(emb, dtype=np.float32),
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
        return self.meta.get("store_maps") == "1"

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

    def neighbors(self, queries: np.ndarray, k: int = 50) -> tuple[np.ndarray, np.ndarray]:
        """Cosine similarities and row numbers of the ``k`` nearest references of each query row."""
        if self._index is None:
            self._index = NeighborIndex(self.embeddings)
        return self._index.search(queries, k)

    def neighbor_union(self, queries: np.ndarray, k: int = 50) -> np.ndarray:
        """Distinct rows among the ``k`` nearest references of all queries (the paper's neighbour set)."""
        if self._index is None:
            self._index = NeighborIndex(self.embeddings)
        return self._index.union(queries, k)

    def maps(self, rows: np.ndarray | list[int]) -> FeatureMaps:
        """Stored feature maps of the given rows: the spatial maps float16 as stored (what training on
        cached maps holds, see ``features.half_maps``), stats and embedding float32."""
        if not self.has_maps:
            raise ReferenceError(f"{self.path}: built with --no-maps; feature maps must be recomputed")
        if self.meta.get("format") != FORMAT:
            raise ReferenceError(
                f"{self.path}: its stored maps come from an older piaa (format {self.meta.get('format')}) "
                "and lack the low-level statistics; build the reference again into a new folder"
            )
        info = json.loads(self.meta["backbone_info"])
        c1, c2, c3 = info["channels"]
        idx = [int(self.item_idx[r]) for r in rows]
        db = _open_read_only(self.path / DB_NAME)
        try:
            found = {}
            for chunk in range(0, len(idx), 500):
                part = idx[chunk : chunk + 500]
                q = f"SELECT idx, z1, z2, z3, stats FROM maps WHERE idx IN ({','.join('?' * len(part))})"
                for i, *blobs in db.execute(q, part):
                    found[i] = blobs
        finally:
            db.close()
        missing = [i for i in idx if i not in found]
        if missing:
            raise ReferenceError(f"{self.path}: feature maps missing for {len(missing)} images")
        out = []
        for pos, ch in enumerate((c1, c2, c3)):
            arr = np.stack([np.frombuffer(found[i][pos], "<f2") for i in idx])
            side = int(round((arr.shape[1] / ch) ** 0.5))
            out.append(torch.from_numpy(arr.reshape(len(idx), ch, side, side)))
        stats = np.stack([np.frombuffer(found[i][3], "<f2") for i in idx]).astype(np.float32)
        z3 = out[2]
        return FeatureMaps(out[0], out[1], z3, z3.float().mean(dim=(2, 3)), torch.from_numpy(stats))

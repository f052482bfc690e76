"""Building a reference store: crowd-rated images (the AVA role), embedded once (see ``reference.py``).

A reference is a folder::

    REF/reference.sqlite   the durable store: labels, paths, embeddings, optional feature maps, metadata
    REF/embeddings.npy     a derived, contiguous copy of the normalised embeddings (memory-mapped when
                           opened; read from the store if missing)
    REF/index.faiss/.json  beyond 50,000 rows: the saved approximate neighbour index (``index.py``)

SQLite makes the build resumable and crash-safe: every batch of images is committed in one
transaction, so a killed build restarts where it stopped and never leaves a half-written row. Storing
the feature maps (on by default, float16) is what lets ``piaa personalize`` train the aesthetic head
without running the backbone over the neighbours again; ``--no-maps`` saves the space for huge corpora.
Beyond :data:`COMPACT_FROM` images the maps are stored compact (``mapcodec.py``: ~9 KB instead of
~172 KB an image), so that all of AVA fits a laptop. Everything derived is written here, at build time:
opening a reference never writes.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from piaa.backbones import DEFAULT_BACKBONE
from piaa.data.images import FailureLog
from piaa.errors import ReferenceCorpusError, UsageError
from piaa.features.index import NeighborIndex, normalize
from piaa.io import atomic_open, remove_stale_temporaries
from piaa.settings import RunSettings
from piaa.version import __version__

if TYPE_CHECKING:
    from piaa.backbones import Backbone
    from piaa.features.extract import Batch

# Building imports torch (the backbone, the feature extractor, the map codec) inside the functions that
# need it: ``reference.py`` imports this module, and opening a reference to answer a query must not.

DB_NAME = "reference.sqlite"
FORMAT = "piaa-reference-2"  # 2: stored maps include the low-level statistics
EMB_NAME = "embeddings.npy"
ROW_IDX = "row_idx"  # blobs key: the embedded rows' idx in row order (int64), so opening reads no row
ROW_DIST = "row_dist"  # blobs key: their score distributions (N x 10 float32), read without a table scan
PENDING, DONE, FAILED = 0, 1, 2
COMPACT_FROM = 20_000  # images: larger references store compact maps unless told otherwise
CODEC_FIT_IMAGES = 1  # images whose maps fit the compact codec (it checks Z3 = embedding)
MAP_MODES = {True: "1", False: "0", "full": "1", "none": "0", "compact": "compact"}
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
CREATE TABLE IF NOT EXISTS blobs (key TEXT PRIMARY KEY, value BLOB NOT NULL);
"""


REFERENCE_VERSION = 2  # the layout this piaa writes (FORMAT); 1: stored maps without the statistics
_MAPS = {"1": "full", "0": "none", "compact": "compact"}  # the stored store_maps value -> ReferenceMeta.maps
_META_KEYS = (
    "format", "backbone", "weights_hash", "labels", "images", "count", "store_maps", "complete",
    "embedded", "piaa_version", "backbone_info", "labels_format", "labels_skipped",
)  # fmt: skip


@dataclass(frozen=True)
class ReferenceMeta:
    """A reference store's ``meta`` table, typed: the layout ``version`` (1 or 2, :data:`FORMAT`), the
    backbone and its weights hash, the labels file and image folder it was built from, ``count`` rows to
    embed, ``maps`` ("full" float16, "compact" or "none"), whether the build is ``complete``, how many rows
    were ``embedded`` (None in a store from before it was recorded), the backbone's ``backbone_info``
    (channels, preprocessing), the labels' format and the label rows skipped.

    Every layout older piaa wrote reads (keys it lacked are None or empty); a newer one is refused.
    Unknown keys are kept in ``extra``. Read fields by name; :meth:`to_rows` gives the table's
    ``key -> text`` rows."""

    version: int = REFERENCE_VERSION
    backbone: str = ""
    weights_hash: str = ""
    labels: str = ""
    images: str = "."
    count: int = 0
    maps: str = "full"
    complete: bool = False
    embedded: int | None = None
    piaa_version: str | None = None
    backbone_info: dict[str, Any] | None = None
    labels_format: str | None = None
    labels_skipped: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def has_maps(self) -> bool:
        return self.maps != "none"

    @classmethod
    def from_rows(cls, rows: Mapping[str, str], source: str | Path = "reference") -> ReferenceMeta:
        """Read the ``meta`` table's rows; raises :class:`ReferenceCorpusError` naming ``source`` for a layout
        from a newer piaa or a value that does not parse."""
        if isinstance(rows, ReferenceMeta):
            return rows
        fmt = rows.get("format", "piaa-reference-1")
        prefix, _, number = fmt.rpartition("-")
        if prefix != "piaa-reference" or not number.isdigit():
            raise ReferenceCorpusError(f"{source}: not a piaa reference (format {fmt!r})")
        if int(number) > REFERENCE_VERSION:
            raise ReferenceCorpusError(
                f"{source}: made by a newer piaa (format {fmt}); this piaa reads {FORMAT}"
            )
        try:
            return cls(
                version=int(number),
                backbone=rows.get("backbone", ""),
                weights_hash=rows.get("weights_hash", ""),
                labels=rows.get("labels", ""),
                images=rows.get("images", "."),
                count=int(rows.get("count", "0")),
                maps=_MAPS[rows.get("store_maps", "1")],
                complete=rows.get("complete") == "1",
                embedded=int(rows["embedded"]) if "embedded" in rows else None,
                piaa_version=rows.get("piaa_version"),
                backbone_info=json.loads(rows["backbone_info"]) if "backbone_info" in rows else None,
                labels_format=rows.get("labels_format"),
                labels_skipped=tuple(json.loads(rows.get("labels_skipped", "[]"))),
                extra={k: v for k, v in rows.items() if k not in _META_KEYS},
            )
        except (KeyError, ValueError, TypeError) as e:
            raise ReferenceCorpusError(f"{source}: the reference's metadata is corrupt ({e!r})") from None

    def to_rows(self) -> dict[str, str]:
        """The ``meta`` table's ``key -> text`` rows, as :func:`build_reference` writes them."""
        rows = {
            "format": f"piaa-reference-{self.version}",
            "backbone": self.backbone,
            "weights_hash": self.weights_hash,
            "labels": self.labels,
            "images": self.images,
            "count": str(self.count),
            "store_maps": {v: k for k, v in _MAPS.items()}[self.maps],
            "complete": "1" if self.complete else "0",
            **({"embedded": str(self.embedded)} if self.embedded is not None else {}),
            **({"piaa_version": self.piaa_version} if self.piaa_version is not None else {}),
            **({"backbone_info": json.dumps(self.backbone_info)} if self.backbone_info is not None else {}),
            **({"labels_format": self.labels_format} if self.labels_format is not None else {}),
            "labels_skipped": json.dumps(list(self.labels_skipped)),
            **self.extra,
        }
        return rows


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
    store_maps: bool | str = True,
    engine: str | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
    limit: int | None = None,
    progress: bool | None = None,
    ray: str | bool | None = None,
    settings: RunSettings | None = None,
) -> BuildReport:
    """Embed every labelled image under ``images`` into the store ``out`` (resuming a killed build).

    ``settings``: how to run (default :meth:`RunSettings.resolve`); ``engine``, ``batch_size``,
    ``workers`` and ``progress``, when given, replace its fields.

    ``store_maps``: True (full float16 maps up to :data:`COMPACT_FROM` images, compact beyond),
    ``"full"``, ``"compact"`` or False (none). ``ray``: embed on a Ray cluster (an address, or True for
    ``auto``/a local instance); the rows are written here, by this process, exactly as a local build."""
    from piaa.backbones import create_backbone
    from piaa.data.labels import read_labels

    t0 = time.perf_counter()
    given = {"engine": engine, "batch_size": batch_size, "workers": workers, "progress": progress}
    run = RunSettings.resolve(settings, **given)
    labelset = read_labels(labels)
    bb = create_backbone(backbone, weights) if isinstance(backbone, str) else backbone
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ReferenceCorpusError(f"{out}: exists and is not a folder")
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
        "store_maps": map_mode(store_maps, n),
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
                raise ReferenceCorpusError(
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
                db,
                bb,
                images,
                pending,
                failures,
                want["store_maps"],
                run,
                ray,
            )
        _finalize(db, out)
        embedded = db.execute("SELECT COUNT(*) FROM items WHERE status = ?", (DONE,)).fetchone()[0]
        skipped = json.loads(dict(db.execute("SELECT key, value FROM meta")).get("labels_skipped", "[]"))
    except sqlite3.DatabaseError as e:  # a full disk, a corrupt or foreign file
        raise ReferenceCorpusError(f"{out / DB_NAME}: {e}") from None
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


def map_mode(store_maps: bool | str, n: int) -> str:
    """The stored ``store_maps`` value: "1" full, "compact", "0" none."""
    if store_maps not in MAP_MODES:
        raise UsageError(f"store_maps: {store_maps!r}; choose True, False, 'full', 'compact' or 'none'")
    mode = MAP_MODES[store_maps]
    return "compact" if store_maps is True and n > COMPACT_FROM else mode


def _embed_pending(
    db: sqlite3.Connection,
    bb: Backbone,
    images: Path,
    pending: list[tuple[int, str]],
    failures: FailureLog,
    mode: str,
    run: RunSettings,
    ray: str | bool | None = None,
) -> int:
    from piaa.features.extract import FeatureExtractor
    from piaa.features.mapcodec import fit_codec, load_codec, map_blobs

    idxs = [i for i, _ in pending]
    paths = [images / p for _, p in pending]
    pos_of = {str(p): k for k, p in enumerate(paths)}
    run_failures = FailureLog()
    if ray:
        from piaa.features.distributed import ray_batches

        batches = ray_batches(bb, paths, run, failures=run_failures, desc="reference", address=ray)
    else:
        batches = FeatureExtractor(bb, run).files(paths, failures=run_failures, desc="reference")
    seen_failures = 0
    newly = 0
    codec = load_codec(db) if mode == "compact" else None
    held: list[Batch] = []  # compact: the first batches, until the codec is fitted on them

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

    def write(batch: Batch) -> None:
        f = batch.features
        rows = [idxs[k] for k in batch.indices]
        with db:  # one transaction per batch: all of it lands, or none of it
            record_failures()
            write_rows(db, rows, f.embedding.numpy(), map_blobs(f, mode, codec), mode)

    for batch in batches:
        if mode == "compact" and codec is None:
            held.append(batch)
            if sum(len(b.indices) for b in held) < CODEC_FIT_IMAGES:
                continue
            codec = fit_codec(db, held)
        for b in held or [batch]:
            write(b)
            newly += len(b.indices)
        held = []
    if held:  # fewer images than CODEC_FIT_IMAGES in all
        codec = fit_codec(db, held)
        for b in held:
            write(b)
            newly += len(b.indices)
    with db:
        record_failures()
    return newly


def emb_dtype(mode: str) -> str:
    """Stored embeddings: float32, float16 in a compact store (half the space; cosines move < 1e-3)."""
    return "<f2" if mode == "compact" else "<f4"


def write_rows(
    db: sqlite3.Connection, rows: list[int], embeddings: np.ndarray, maps: list[tuple] | None, mode: str
) -> None:
    """Store one batch (inside the caller's transaction): embeddings normalised here, map blobs as made
    by :func:`map_blobs` for maps ``mode``."""
    emb = normalize(embeddings).astype(emb_dtype(mode))
    db.executemany(
        "UPDATE items SET status = ?, error = NULL, embedding = ? WHERE idx = ?",
        [(DONE, emb[j].tobytes(), i) for j, i in enumerate(rows)],
    )
    if maps is not None:
        db.executemany(
            "INSERT OR REPLACE INTO maps VALUES (?, ?, ?, ?, ?)",
            [(i, *m) for i, m in zip(rows, maps, strict=True)],
        )


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_open(path) as f:
        np.save(f, array)


def _finalize(db: sqlite3.Connection, out: Path) -> None:
    """Mark a build complete, unless images are pending or none could be embedded (a reference with no
    rows cannot answer a neighbour query: refused here, in one line, instead of failing later). Writes
    the derived files: ``embeddings.npy`` and, for a large reference, the saved neighbour index."""
    if db.execute("SELECT COUNT(*) FROM items WHERE status = ?", (PENDING,)).fetchone()[0]:
        return
    emb = embeddings_from_db(db)
    if len(emb) == 0:
        total = db.execute("SELECT COUNT(*) FROM items").fetchone()[0]
        raise ReferenceCorpusError(
            f"{out}: none of the {total} labelled images could be embedded; fix the images (or --images) "
            "and run the same build again"
        )
    _save_npy(out / EMB_NAME, emb)
    del emb
    emb = np.load(out / EMB_NAME, mmap_mode="r")
    NeighborIndex.build(emb, out)  # exact for small references; a saved IVF index beyond
    rows = db.execute("SELECT idx, dist FROM items WHERE status = ? ORDER BY idx", (DONE,)).fetchall()
    idx = np.array([r[0] for r in rows], "<i8")
    dist = b"".join(r[1] for r in rows)
    with db:
        db.execute("INSERT OR REPLACE INTO blobs VALUES (?, ?)", (ROW_IDX, idx.tobytes()))
        db.execute("INSERT OR REPLACE INTO blobs VALUES (?, ?)", (ROW_DIST, dist))
        db.execute("INSERT OR REPLACE INTO meta VALUES ('complete', '1')")
        db.execute("INSERT OR REPLACE INTO meta VALUES ('embedded', ?)", (str(len(emb)),))


def open_read_only(dbp: Path) -> sqlite3.Connection:
    """Open without taking locks or writing anything, so that a reference in a read-only folder, or
    shared between users, opens too (``immutable`` when even the read-only open needs to write)."""
    db = sqlite3.connect(f"file:{dbp}?mode=ro", uri=True)
    try:
        db.execute("SELECT 1 FROM meta LIMIT 1")
        return db
    except sqlite3.OperationalError:
        db.close()
        return sqlite3.connect(f"file:{dbp}?immutable=1", uri=True)


def embeddings_from_db(db: sqlite3.Connection) -> np.ndarray:
    """The normalised embeddings of the embedded rows, in row order, read in pieces (no second copy)."""
    n = db.execute("SELECT COUNT(*) FROM items WHERE status = ?", (DONE,)).fetchone()[0]
    mode = db.execute("SELECT value FROM meta WHERE key = 'store_maps'").fetchone()
    dtype = emb_dtype(mode[0] if mode else "1")
    cur = db.execute("SELECT embedding FROM items WHERE status = ? ORDER BY idx", (DONE,))
    out: np.ndarray | None = None
    pos = 0
    while rows := cur.fetchmany(8192):
        part = np.frombuffer(b"".join(r[0] for r in rows), dtype=dtype).reshape(len(rows), -1)
        if out is None:
            out = np.empty((n, part.shape[1]), np.float32)
        out[pos : pos + len(rows)] = part
        pos += len(rows)
    return np.zeros((0, 0), np.float32) if out is None else out

"""Cull a shoot: group bursts and near-duplicates, rank each group by a profile, flag technical faults.

One decode and one network pass per photo give the score, the embedding used for grouping, and the
measurements behind the flags (:mod:`piaa.cull.measure`). The user guide (``docs/guide/cull.md``) says
what each threshold means and how its default was chosen.
"""

from __future__ import annotations

import contextlib
import math
import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from piaa.cull.measure import Measures, measure, network_pixels
from piaa.cull.times import capture_time
from piaa.data.images import FailureLog, ImageError, iter_image_files, load_image
from piaa.errors import UsageError
from piaa.features.index import NeighborIndex, normalize
from piaa.settings import RunSettings, torch_threads

FLAGS = ("blurred", "clipped", "eyes_closed")
STATUSES = ("pick", "alternate", "reject")


@dataclass(frozen=True)
class CullSettings:
    """Thresholds and choices of :func:`cull` (defaults: see ``docs/guide/cull.md``).

    - ``time_window`` (seconds, >= 0): two photos can share a group only if their capture times are at
      most this far apart (neighbours in time chain: a 20-frame burst at 0.5 s intervals is one group).
    - ``similarity`` (cosine of the backbone's embeddings, in [-1, 1]) and ``layout_similarity``
      (correlation of brightness-normalised 16 x 16 thumbnails, in [-1, 1]): and only if their
      embeddings or their layouts are at least this similar. The embedding knows the scene when the
      frame moves; the layout knows a blurred or darker frame of it, where the embedding changes most.
    - ``keep`` (>= 1): picks per group.
    - ``blur_ratio`` (in (0, 1)): a photo is ``blurred`` when its sharpness is below this fraction of
      the sharpest photo of its group (groups of two or more only).
    - ``clip_share`` (in (0, 1]): a photo is ``clipped`` when more than this share of its pixels has
      luma >= 250 (highlights) or <= 5 (shadows).
    - ``eyes``: check for closed eyes where a face is found (needs ``pip install piaa[eyes]``; ignored,
      with a note, when the model is absent).
    - ``reject_flagged``: flagged photos that are not picks become rejects (else alternates).
    - ``alternate_rating`` (0-5), picks get 1-5 stars by score within the shoot, rejects -1.
    """

    time_window: float = 10.0
    similarity: float = 0.95
    layout_similarity: float = 0.70
    keep: int = 1
    blur_ratio: float = 0.65
    clip_share: float = 0.25
    eyes: bool = True
    reject_flagged: bool = True
    alternate_rating: int = 0
    duplicate_similarity: float = 0.97  # embedding candidates checked for exact duplicates
    thumbnails: bool = False  # keep a thumbnail per photo (for the HTML report)

    def __post_init__(self) -> None:
        checks = {
            "time_window": self.time_window >= 0,
            "similarity": -1.0 <= self.similarity <= 1.0,
            "layout_similarity": -1.0 <= self.layout_similarity <= 1.0,
            "keep": self.keep >= 1,
            "blur_ratio": 0.0 < self.blur_ratio < 1.0,
            "clip_share": 0.0 < self.clip_share <= 1.0,
            "alternate_rating": 0 <= self.alternate_rating <= 5,
        }
        bad = [k for k, ok in checks.items() if not ok]
        if bad:
            raise UsageError(
                f"cull settings out of range: {', '.join(f'{k}={getattr(self, k)}' for k in bad)}"
            )


@dataclass(frozen=True)
class CullRow:
    """One photo's place in the shoot. ``group``: 0-based, groups ordered by capture time; ``rank``:
    1-based within the group (flag rule first, then the profile's score, 1-10, higher is better)."""

    path: Path
    group: int
    rank: int
    status: str  # "pick" | "alternate" | "reject"
    score: float
    flags: tuple[str, ...]
    capture_time: datetime | None
    time_source: str  # "exif" | "file"
    rating: int  # the xmp:Rating written by --xmp: picks 1-5, alternates settings.alternate_rating, -1

    def to_dict(self) -> dict[str, Any]:
        """The CSV/JSON row (``docs/guide/cull.md``); flags as a list (``;``-joined in CSV). The path is
        absolute, so the rows work from any folder (``piaa review`` runs anywhere), not only from where
        the cull ran."""
        return {
            "path": os.path.abspath(self.path),
            "group": self.group,
            "rank": self.rank,
            "status": self.status,
            "score": round(self.score, 4),
            "flags": list(self.flags),
            "capture_time": self.capture_time.isoformat() if self.capture_time else None,
            "time_source": self.time_source,
            "rating": self.rating,
        }


@dataclass
class CullResult:
    """Rows ordered by group then rank; ``failures``: photos that could not be read; ``skipped``: other
    files found in the folders given (not photos); ``notes``: what the user should know (an eye model
    missing, say)."""

    rows: list[CullRow]
    failures: FailureLog = field(default_factory=FailureLog)
    skipped: FailureLog = field(default_factory=FailureLog)
    measures: dict[Path, Measures] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def groups(self) -> list[list[CullRow]]:
        out: dict[int, list[CullRow]] = {}
        for r in self.rows:
            out.setdefault(r.group, []).append(r)
        return [out[g] for g in sorted(out)]


# ------------------------------------------------------------------------------------------- grouping


class _UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def group_photos(
    times: Sequence[datetime | None],
    embeddings: np.ndarray,
    *,
    time_window: float,
    similarity: float,
    duplicates: Sequence[tuple[int, int]] = (),
    layout: np.ndarray | None = None,
    layout_similarity: float = 1.0,
) -> list[int]:
    """A group label per photo: photos i, j are linked when ``|t_i - t_j| <= time_window`` seconds and
    the cosine of their embeddings (N x D) is ``>= similarity`` or that of their ``layout`` vectors
    (N x L, :func:`layout_vectors`) is ``>= layout_similarity``, or when (i, j) is in ``duplicates``;
    groups are the connected components. Each photo is compared only with those inside its time window
    (sorted by time: O(N x photos per window)). Photos without a time link only as duplicates. Labels
    are 0-based, ordered by each group's earliest capture time."""
    n = len(times)
    uf = _UnionFind(n)
    emb = normalize(embeddings) if n else np.zeros((0, 1), np.float32)
    lay = normalize(layout) if layout is not None and n else None
    timed = sorted((t.timestamp() if t.tzinfo else _naive_seconds(t), i) for i, t in enumerate(times) if t)
    secs = np.array([s for s, _ in timed])
    idx = np.array([i for _, i in timed], dtype=np.int64)
    lo = 0
    for k in range(len(timed)):
        while secs[k] - secs[lo] > time_window:
            lo += 1
        if lo < k:
            prev = idx[lo:k]
            linked = emb[prev] @ emb[idx[k]] >= similarity
            if lay is not None:
                linked |= lay[prev] @ lay[idx[k]] >= layout_similarity
            for j in prev[linked]:
                uf.union(int(j), int(idx[k]))
    for a, b in duplicates:
        uf.union(a, b)
    order = {i: k for k, i in enumerate(idx.tolist())}
    first: dict[int, tuple[int, int]] = {}
    for i in range(n):
        root = uf.find(i)
        key = (order.get(i, n + i), i)
        first[root] = min(first.get(root, key), key)
    labels = {root: g for g, (root, _) in enumerate(sorted(first.items(), key=lambda kv: kv[1]))}
    return [labels[uf.find(i)] for i in range(n)]


def layout_vectors(measures: Sequence[Measures]) -> np.ndarray:
    """Each photo's 16 x 16 thumbnail, each channel shifted to mean 0 and scaled to unit variance (an
    exposure change leaves it as it was; blur and noise barely reach that scale): N x 768 float32."""
    if not measures:
        return np.zeros((0, 768), np.float32)
    t = np.stack([m.tiny.reshape(-1, 3) for m in measures]).astype(np.float32)
    t = (t - t.mean(1, keepdims=True)) / (t.std(1, keepdims=True) + 1e-3)
    return t.reshape(len(measures), -1)


def _naive_seconds(t: datetime) -> float:
    return (t - datetime(1970, 1, 1)).total_seconds()


def find_duplicates(
    paths: Sequence[Path], measures: Sequence[Measures], embeddings: np.ndarray, *, similarity: float = 0.97
) -> list[tuple[int, int]]:
    """Pairs (i, j) of photos with the same decoded pixels (another name or format).

    Candidates are photos with equal digests of their analysis image, and nearest neighbours of the
    embeddings (cosine >= ``similarity``, faiss) whose 16 x 16 thumbnails agree (the same pixels decoded
    another way: a big JPEG drafted, its PNG copy in full). Each candidate pair is confirmed as equal
    files, or else by decoding both in full and comparing every pixel."""
    n = len(paths)
    candidates: set[tuple[int, int]] = set()
    by_digest: dict[str, list[int]] = {}
    for i, m in enumerate(measures):
        by_digest.setdefault(m.digest, []).append(i)
    for members in by_digest.values():
        candidates.update((a, b) for k, a in enumerate(members) for b in members[k + 1 :])
    if n >= 2:
        sims, rows = NeighborIndex(embeddings).search(embeddings, k=min(n, 6))
        for i in range(n):
            for s, j in zip(sims[i], rows[i], strict=True):
                j = int(j)
                if j > i and s >= similarity and np.abs(measures[i].tiny - measures[j].tiny).mean() <= 2.0:
                    candidates.add((i, j))
    return sorted(pair for pair in candidates if same_pixels(paths[pair[0]], paths[pair[1]]))


def same_pixels(a: Path, b: Path) -> bool:
    """Whether two files hold the same image: equal bytes, or equal pixels fully decoded."""
    try:
        if a.stat().st_size == b.stat().st_size and a.read_bytes() == b.read_bytes():
            return True
        pa, pb = np.asarray(load_image(a)), np.asarray(load_image(b))
    except (ImageError, OSError):
        return False
    return pa.shape == pb.shape and np.array_equal(pa, pb)


# ------------------------------------------------------------------------------------------ the flags


def flag_photos(
    measures: Sequence[Measures], labels: Sequence[int], settings: CullSettings
) -> list[tuple[str, ...]]:
    """The flags (a subset of :data:`FLAGS`, in that order) of each photo, given its group label."""
    best: dict[int, float] = {}
    size: dict[int, int] = {}
    for m, g in zip(measures, labels, strict=True):
        best[g] = max(best.get(g, 0.0), m.sharpness)
        size[g] = size.get(g, 0) + 1
    out = []
    for m, g in zip(measures, labels, strict=True):
        flags = []
        if size[g] > 1 and m.sharpness < settings.blur_ratio * best[g]:
            flags.append("blurred")
        if max(m.highlights, m.shadows) > settings.clip_share:
            flags.append("clipped")
        if m.eyes_closed:
            flags.append("eyes_closed")
        out.append(tuple(flags))
    return out


def star_ratings(scores: Sequence[float]) -> list[int]:
    """1-5 stars for picks by their score's rank within the shoot (quintiles: the best fifth get 5)."""
    n = len(scores)
    order = np.argsort(np.asarray(scores, np.float64), kind="stable")
    stars = [0] * n
    for r, i in enumerate(order):
        stars[int(i)] = max(1, min(5, math.ceil(5 * (r + 1) / n)))
    return stars


def rank_groups(
    paths: Sequence[Path],
    scores: Sequence[float],
    labels: Sequence[int],
    flags: Sequence[tuple[str, ...]],
    times: Sequence[tuple[datetime | None, str]],
    settings: CullSettings,
    duplicates: Sequence[tuple[int, int]] = (),
) -> list[CullRow]:
    """Rank within each group: unflagged before flagged unless every member is flagged, then by score
    (best first). Equal scores (an exact duplicate in another format or under another name) go to the
    camera's original, the one whose capture time is in its EXIF, then to the name: the pick must not
    depend on what an export happened to be called. The best ``keep`` unflagged are picks (the best
    ``keep`` when all are flagged), never counting an exact duplicate (``duplicates``, index pairs) of a
    photo already picked, which would spend a pick on the same pixels; flagged non-picks are rejects
    when ``settings.reject_flagged``; the rest are alternates."""
    copies: dict[int, int] = {}  # photo -> one photo of its set of exact duplicates (union-find root)

    def root(i: int) -> int:
        while copies.get(i, i) != i:
            i = copies[i]
        return i

    for a, b in duplicates:
        copies[root(a)] = root(b)
    members: dict[int, list[int]] = {}
    for i, g in enumerate(labels):
        members.setdefault(g, []).append(i)
    placed: list[tuple[int, int, int, str]] = []  # (index, group, rank, status)
    for g in sorted(members):
        idx = members[g]
        all_flagged = all(flags[i] for i in idx)
        idx.sort(
            key=lambda i: (
                bool(flags[i]) and not all_flagged,
                -round(float(scores[i]), 6),
                times[i][1] != "exif",
                str(paths[i]),
            )
        )
        picks: set[int] = set()
        for rank, i in enumerate(idx, 1):
            copy = any(root(i) == root(p) for p in picks)
            if len(picks) < settings.keep and (all_flagged or not flags[i]) and not copy:
                status = "pick"
                picks.add(i)
            elif flags[i] and settings.reject_flagged:
                status = "reject"
            else:
                status = "alternate"
            placed.append((i, g, rank, status))
    pick_idx = [i for i, _, _, s in placed if s == "pick"]
    stars = dict(zip(pick_idx, star_ratings([scores[i] for i in pick_idx]), strict=True))
    rating = {"alternate": settings.alternate_rating, "reject": -1}
    return [
        CullRow(
            path=Path(paths[i]),
            group=g,
            rank=rank,
            status=status,
            score=float(scores[i]),
            flags=tuple(flags[i]),
            capture_time=times[i][0],
            time_source=times[i][1],
            rating=stars[i] if status == "pick" else rating[status],
        )
        for i, g, rank, status in placed
    ]


# ------------------------------------------------------------------------------------------- the pass


def _profile_of(scorer: Any) -> Any:
    """A :class:`~piaa.models.profile.Profile` from a Profile, a Scorer, a profile folder or a name."""
    from piaa.models.profile import Profile, load_profile

    if isinstance(scorer, Profile):
        return scorer
    if hasattr(scorer, "profile") and isinstance(scorer.profile, Profile):
        return scorer.profile
    return load_profile(scorer)


def analyse(
    profile: Any,
    paths: Sequence[Path],
    settings: CullSettings,
    failures: FailureLog,
    run: RunSettings,
    eyes: Callable[[np.ndarray], bool | None] | None = None,
) -> tuple[list[int], np.ndarray, np.ndarray, list[Measures]]:
    """Decode each photo once, run the backbone once: (positions that decoded, scores (N,), embeddings
    (N x D), measures). Network threads each decode their own batch, as
    :class:`~piaa.features.extract.FeatureExtractor` does on two cores."""
    extractor = profile.extractor(run)
    pp = extractor.preprocess
    local = threading.local()

    def eye_check(rgb: np.ndarray) -> bool | None:
        if eyes is None:
            return None
        if not hasattr(local, "model"):
            local.model = eyes()  # one model per thread: the eye model is not thread-safe
        return local.model(rgb)

    def job(batch: range) -> tuple[list[int], list[tuple[int, str]], Any, list[Measures]]:
        good, arrays, measured, bad = [], [], [], []
        for i in batch:
            try:
                img = load_image(paths[i], draft_size=(pp.size, pp.size) if pp.draft else None)
                arrays.append(network_pixels(img, pp))
                measured.append(measure(img, thumbnail=settings.thumbnails, eyes=eye_check if eyes else None))
                good.append(i)
            except ImageError as e:
                bad.append((i, e.reason))
            except Exception as e:  # noqa: BLE001 - a batch goes on past any one bad file
                bad.append((i, f"unreadable ({type(e).__name__}: {e})"))
        feats = extractor.forward(np.stack(arrays)) if arrays else None
        return good, bad, feats, measured

    size = extractor.batch_size
    batches = [range(s, min(s + size, len(paths))) for s in range(0, len(paths), size)]
    kept: list[int] = []
    scores, embs, measures = [], [], []
    pool = ThreadPoolExecutor(max(1, extractor.streams))
    held = contextlib.ExitStack()
    try:
        held.enter_context(torch_threads(1))  # the head must not fight ONNX Runtime for the cores
        pending: deque[Future] = deque()
        with tqdm(total=len(paths), desc="culling", unit="img", disable=not run.progress) as bar:
            it = iter(batches)
            for b in it:
                pending.append(pool.submit(job, b))
                if len(pending) > 2 * max(1, extractor.streams):
                    break
            while pending:
                good, bad, feats, measured = pending.popleft().result()
                nxt = next(it, None)
                if nxt is not None:
                    pending.append(pool.submit(job, nxt))
                for i, reason in bad:
                    failures.add(paths[i], reason)
                if feats is not None:
                    s, _ = profile.score_features(feats)
                    scores.append(s)
                    embs.append(feats.embedding.float().numpy())
                    kept += good
                    measures += measured
                bar.update(len(good) + len(bad))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        held.close()
    if not kept:
        return [], np.zeros(0), np.zeros((0, 1), np.float32), []
    return kept, np.concatenate(scores), np.concatenate(embs).astype(np.float32), measures


def cull(
    paths: Sequence[str | os.PathLike[str]],
    scorer: Any,
    settings: CullSettings | None = None,
    *,
    run: RunSettings | None = None,
    progress: bool | None = None,
) -> CullResult:
    """Group, rank and flag the photos at ``paths`` (files, or folders walked recursively) with a profile.

    ``scorer``: a :class:`~piaa.models.profile.Profile`, a :class:`~piaa.models.scorer.Scorer`, a
    profile folder or a built-in name (``nima-ava``). Unreadable photos are recorded in
    ``result.failures`` and left out; the rest are rows ordered by group, then rank. Raises
    ``ProfileError`` for a bad profile, ValueError for bad settings. ``run``: how (default
    :meth:`RunSettings.resolve`: engine "auto", progress bars); ``progress``, when given, replaces its
    field."""
    settings = settings or CullSettings()
    run = RunSettings.resolve(run, progress=progress)
    profile = _profile_of(scorer)
    skipped = FailureLog()
    files = list(iter_image_files([Path(p) for p in paths], skipped=skipped))
    failures = FailureLog()
    notes: list[str] = []
    eyes = None
    if settings.eyes:
        from piaa.cull import eyes as eye_model

        eyes = eye_model.factory()
        if eyes is None:
            notes.append(f"eyes not checked: {eye_model.unavailable_reason()}")
    kept, scores, embs, measures = analyse(profile, files, settings, failures, run, eyes)
    files = [files[i] for i in kept]
    times = [capture_time(p) for p in files]
    dups = find_duplicates(files, measures, embs, similarity=settings.duplicate_similarity) if files else []
    labels = group_photos(
        [t for t, _ in times], embs, time_window=settings.time_window, similarity=settings.similarity,
        duplicates=dups, layout=layout_vectors(measures), layout_similarity=settings.layout_similarity,
    )  # fmt: skip
    flags = flag_photos(measures, labels, settings)
    rows = rank_groups(files, scores.tolist(), labels, flags, times, settings, dups)
    return CullResult(rows, failures, skipped, dict(zip(files, measures, strict=True)), notes)


def with_status(row: CullRow, status: str, settings: CullSettings | None = None) -> CullRow:
    """``row`` with another status (and the rating that status gets; a pick keeps a 1-5 rating)."""
    if status not in STATUSES:
        raise UsageError(f"status must be one of {', '.join(STATUSES)}, got {status!r}")
    settings = settings or CullSettings()
    rating = {"alternate": settings.alternate_rating, "reject": -1}.get(status, max(1, row.rating))
    return replace(row, status=status, rating=rating)


__all__ = [
    "FLAGS",
    "STATUSES",
    "CullResult",
    "CullRow",
    "CullSettings",
    "cull",
    "find_duplicates",
    "flag_photos",
    "group_photos",
    "layout_vectors",
    "rank_groups",
    "star_ratings",
    "with_status",
]

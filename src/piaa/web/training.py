"""Training from the web page: one background job at a time, its progress polled by the page.

With a reference, the job is the real thing: ``personalize`` on the album and the store, then the
album scored by the new profile. Without one, it fits the cheap linear model of
``piaa.sampling.bradley_terry`` on the judgements and ranks the album by it, so the person still sees what
their clicks say (the page tells them that ``--reference`` gives the full personal model).

After a personal model is trained, the page offers each ranked photo retouched toward the person's
taste and the generic model's (:mod:`piaa.web.retouching`); the learned retoucher for both models is
trained in the background right after the ranking is shown and saved with the profile.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from piaa.preferences import Pair
from piaa.web.retouching import BeforeAfter

SCORE_CHUNK = 16


@dataclass
class TrainJob:
    """What the page shows: ``state`` idle/running/done/error, a phase, and a fraction (None: unknown)."""

    state: str = "idle"
    phase: str = ""
    fraction: float | None = None
    message: str = ""
    started: float = 0.0
    finished: float = 0.0
    kind: str = ""  # "personal" (full model) or "linear" (cheap model, no reference)
    profile: str | None = None
    judgements: int = 0
    ranking: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        elapsed = (self.finished or time.time()) - self.started if self.started else 0.0
        return {
            "state": self.state,
            "phase": self.phase,
            "fraction": self.fraction,
            "message": self.message,
            "elapsed": round(elapsed, 1),
            "kind": self.kind,
            "profile": self.profile,
            "judgements": self.judgements,
            "ranking": self.ranking if self.state == "done" else [],
        }


class Trainer:
    """Runs ``personal`` or ``linear`` training in a daemon thread; ``status()`` is safe from any thread."""

    def __init__(
        self,
        *,
        album: Path,
        files: dict[str, Path],
        store_path: Path,
        reference: Path | None,
        profile_dir: Path,
        pairs: Callable[[], list[Pair]],
        features: Callable[[Callable[[int, int], None]], np.ndarray],
        overrides: dict[str, Any] | None = None,
        prepare_retoucher: bool = True,
    ) -> None:
        self.album, self.files, self.store_path = album, files, store_path
        self.names = list(files)
        self.reference, self.profile_dir = reference, profile_dir
        self._pairs, self._features = pairs, features
        self.overrides = dict(overrides or {})
        self._job = TrainJob()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.profile: Any = None  # the latest personal profile trained here (None: none yet)
        self.before_after = BeforeAfter(files)
        self.prepare_retoucher = prepare_retoucher

    def status(self) -> dict[str, Any]:
        with self._lock:
            job = self._job.to_dict()
        job["retouch"] = {"available": self.profile is not None, "retoucher": self.before_after.state}
        return job

    def _set(self, **changes: Any) -> None:
        with self._lock:
            for k, v in changes.items():
                setattr(self._job, k, v)

    def start(self) -> bool:
        """Start a job; False if one is already running."""
        with self._lock:
            if self._job.state == "running":
                return False
            pairs = self._pairs()
            kind = "personal" if self.reference is not None else "linear"
            self._job = TrainJob(
                state="running", phase="starting", started=time.time(), kind=kind, judgements=len(pairs)
            )
            target = self._personal if kind == "personal" else self._linear
            self._thread = threading.Thread(target=self._run, args=(target, pairs), daemon=True)
            self._thread.start()
        return True

    def _run(self, target: Callable[[list[Pair]], list[dict[str, Any]]], pairs: list[Pair]) -> None:
        try:
            ranking = target(pairs)
            self._set(state="done", phase="done", fraction=1.0, ranking=ranking, finished=time.time())
            if self._job.kind == "personal" and self.prepare_retoucher and self.profile is not None:
                self.before_after.prepare(self.profile)  # after the ranking is on the page
        except Exception as exc:  # noqa: BLE001 - shown on the page, not lost in a thread
            traceback.print_exc()
            self._set(state="error", message=f"{type(exc).__name__}: {exc}", finished=time.time())

    def _personal(self, pairs: list[Pair]) -> list[dict[str, Any]]:
        from piaa.models.personalize import personalize

        if not pairs:
            raise ValueError("no judgements yet: choose a few photos first")
        assert self.reference is not None
        self._set(phase="training the personal model", fraction=None)
        profile = personalize(
            self.reference, self.album, prefs=self.store_path, out=self.profile_dir, progress=False,
            **self.overrides,
        )  # fmt: skip
        self.profile = profile
        self._set(phase="scoring the album", fraction=0.0, profile=str(self.profile_dir))
        if profile.report.album_scores is not None:  # scored from the maps personalize computed
            served = profile.report.album_scores
            return _ranking({n: s for n, s in served.items() if n in self.files})  # skipped: not ranked
        paths = [self.files[name] for name in self.names]
        name_of = {str(path): name for name, path in self.files.items()}
        scores: dict[str, float] = {}
        for start in range(0, len(paths), SCORE_CHUNK):
            for r in profile.score_files(paths[start : start + SCORE_CHUNK], progress=False):
                scores[name_of[str(r.path)]] = r.score
            self._set(fraction=min(1.0, (start + SCORE_CHUNK) / len(paths)))
        return _ranking(scores)

    def _linear(self, pairs: list[Pair]) -> list[dict[str, Any]]:
        from piaa.sampling.bradley_terry import fit_ranker

        if not pairs:
            raise ValueError("no judgements yet: choose a few photos first")
        self._set(phase="computing photo features", fraction=0.0)
        x = self._features(lambda done, total: self._set(fraction=0.9 * done / max(total, 1)))
        self._set(phase="fitting the quick model", fraction=0.95)
        model = fit_ranker(x, pairs, {n: i for i, n in enumerate(self.names)})
        s = model.scores(x)
        return _ranking(dict(zip(self.names, s.tolist(), strict=True)))


def _ranking(scores: dict[str, float]) -> list[dict[str, Any]]:
    from piaa.web.album import ServedAlbum

    order = sorted(scores, key=lambda n: (-scores[n], n))
    return [
        {"rank": k, "name": n, "score": round(scores[n], 3), "thumb": ServedAlbum.url(n, thumb=True)}
        for k, n in enumerate(order, 1)
    ]

"""Training from the web page: one background job at a time, its progress polled by the page.

The job is the real thing, with or without a reference corpus: ``personalize`` on the album and the
store, from the shipped generic model (``nima-ava`` unless ``--generic`` names another) or from a
reference's neighbours (``--reference``, the paper's pipeline). The profile it saves is a normal one
(``piaa score --profile``, ``cull``, ``retouch``). As soon as it is trained the album is ranked on 1-10
from the maps already computed; then the held-out agreement with the person and its learning curve are
measured (:mod:`piaa.models.agreement`, the same figure ``piaa personalize`` prints) and saved into the
profile. The model the page shows stays the last finished one while a retrain runs, so the person can
keep clicking; a retrain always uses everything in the store.

After a personal model is trained, the page offers each ranked photo retouched toward the person's
taste and the generic model's (:mod:`piaa.web.retouching`); the learned retoucher for both models is
trained in the background after that and saved with the profile.

A killed server loses nothing: training only reads the store, and ``Profile.save`` replaces the previous
profile atomically (the old one or the new one, never half of either).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from piaa.preferences import Pair
from piaa.settings import RunSettings
from piaa.web.album import ServedAlbum
from piaa.web.retouching import BeforeAfter

SCORE_CHUNK = 16
DEFAULT_GENERIC = "nima-ava"  # ships with piaa: a personal model needs no reference corpus


@dataclass
class TrainJob:
    """What the page shows of the job: ``state`` idle/running/done/error, a phase, a fraction (None:
    unknown), and how many judgements it trains on."""

    state: str = "idle"
    phase: str = ""
    fraction: float | None = None
    message: str = ""
    started: float = 0.0
    finished: float = 0.0
    judgements: int = 0

    def to_dict(self) -> dict[str, Any]:
        elapsed = (self.finished or time.time()) - self.started if self.started else 0.0
        d = asdict(self)
        del d["started"], d["finished"]
        return d | {"elapsed": round(elapsed, 1)}


@dataclass
class TrainedModel:
    """The latest finished personal model: its profile folder, the judgements it has seen, the album
    ranked by it (scores on 1-10), and the held-out agreement (``agreement_state``: measuring, ready,
    too-few, error)."""

    profile: str
    judgements: int
    origin: str
    ranking: list[dict[str, Any]] = field(default_factory=list)
    agreement: dict[str, Any] | None = None
    agreement_state: str = "measuring"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Trainer:
    """Runs training in a daemon thread; ``status()`` is safe from any thread."""

    def __init__(
        self,
        *,
        album: ServedAlbum,
        store_path: Path,
        reference: Path | None,
        generic: str | None,
        profile_dir: Path,
        pairs: Callable[[], list[Pair]],
        overrides: dict[str, Any] | None = None,
        prepare_retoucher: bool = True,
        settings: RunSettings | None = None,
    ) -> None:
        # how to run, resolved once by the app (no progress bars: the page shows its own)
        self.settings = (settings or RunSettings()).replace(progress=False)
        self.album, self.files, self.store_path = album, album.files, store_path
        self.reference, self.profile_dir = reference, profile_dir
        self.generic = None if reference is not None else (generic or DEFAULT_GENERIC)
        self._pairs = pairs
        self.overrides = dict(overrides or {})
        self._job = TrainJob()
        self._model: TrainedModel | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.profile: Any = None  # the latest personal profile trained here (None: none yet)
        self.before_after = BeforeAfter(album, self.settings)
        self.prepare_retoucher = prepare_retoucher

    @property
    def origin(self) -> str:
        """Where the personal model starts, in words."""
        return f"reference {self.reference}" if self.reference else f"generic model {self.generic}"

    @property
    def running(self) -> bool:
        with self._lock:
            return self._job.state == "running"

    def model_judgements(self) -> int | None:
        """Judgements the current model has seen (None: no model yet)."""
        with self._lock:
            return None if self._model is None else self._model.judgements

    def failed(self) -> bool:
        with self._lock:
            return self._job.state == "error"

    def status(self) -> dict[str, Any]:
        with self._lock:
            job = self._job.to_dict()
            job["model"] = None if self._model is None else self._model.to_dict()
        job["origin"] = self.origin
        job["retouch"] = {"available": self.profile is not None, "retoucher": self.before_after.state}
        return job

    def _set(self, **changes: Any) -> None:
        with self._lock:
            for k, v in changes.items():
                setattr(self._job, k, v)

    def start(self) -> bool:
        """Start a job on everything in the store; False if one is already running."""
        with self._lock:
            if self._job.state == "running":
                return False
            pairs = self._pairs()
            self._job = TrainJob("running", "starting", started=time.time(), judgements=len(pairs))
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return True

    def resume(self) -> None:
        """Show the profile a previous session saved in ``profile_dir`` (if any loads) as the current
        model, the album ranked by it: a restarted page starts where the last one ended. Run in the
        background; an unloadable or foreign profile is ignored (the next training replaces it)."""
        from piaa.models.profile import load_profile

        if not (self.profile_dir / "config.json").is_file():
            return
        try:
            profile = load_profile(self.profile_dir)
            ranking = self._ranking(profile, scored_here=True)
        except Exception:  # noqa: BLE001 - a profile we cannot use is one we train again
            traceback.print_exc()
            return
        agreement = profile.agreement
        data = profile.config.data
        generic = data.get("generic")
        origin = f"generic model {generic}" if generic else f"reference {data.get('reference')}"
        model = TrainedModel(
            str(self.profile_dir), len(profile.pairs), origin, ranking, agreement,
            "ready" if agreement else "too-few",
        )  # fmt: skip
        with self._lock:
            if self._model is None:  # a training of this session wins
                self.profile, self._model = profile, model
                if self._job.state != "running":
                    self._job = TrainJob("done", "done", 1.0)

    def join(self, timeout: float | None = None) -> None:
        """Wait for the running job (tests, shutdown)."""
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self._personal()
            self._set(state="done", phase="done", fraction=1.0, finished=time.time())
            if self.prepare_retoucher and self.profile is not None:
                self.before_after.prepare(self.profile)  # after the ranking and agreement are shown
        except Exception as exc:  # noqa: BLE001 - shown on the page, not lost in a thread
            traceback.print_exc()
            self._set(state="error", message=f"{type(exc).__name__}: {exc}", finished=time.time())
            with self._lock:
                if self._model is not None and self._model.agreement_state == "measuring":
                    self._model.agreement_state = "error"

    def _personal(self) -> None:
        from piaa.models.personalize import personalize

        def trained(profile: Any) -> None:  # ranked album first; the agreement is measured after
            ranking = self._ranking(profile)
            seen = profile.report.pairs_stated  # the store as training read it: clicks go on meanwhile
            with self._lock:
                self.profile = profile
                self._model = TrainedModel(str(self.profile_dir), seen, self.origin, ranking)
                self._job.phase, self._job.fraction = "measuring how well it knows you", None

        self._set(phase="training your personal model", fraction=None)
        profile = personalize(
            self.reference, self.album.root, prefs=self.store_path, out=self.profile_dir,
            generic=self.generic, agreement=True, curve=True, trained=trained, settings=self.settings,
            **self.overrides,
        )  # fmt: skip
        with self._lock:
            if self._model is not None:
                self._model.agreement = profile.agreement
                self._model.agreement_state = "ready" if profile.agreement else "too-few"

    def _ranking(self, profile: Any, scored_here: bool = False) -> list[dict[str, Any]]:
        """The album ranked by ``profile``: from the maps personalize computed, else scored here."""
        if not scored_here and profile.report.album_scores is not None:
            served = profile.report.album_scores
            return _ranking({n: s for n, s in served.items() if n in self.files})  # skipped: not ranked
        if not scored_here:
            self._set(phase="scoring the album", fraction=0.0)
        names = list(self.files)
        paths = [self.files[name] for name in names]
        name_of = {str(path): name for name, path in self.files.items()}
        scores: dict[str, float] = {}
        for start in range(0, len(paths), SCORE_CHUNK):
            for r in profile.score_files(paths[start : start + SCORE_CHUNK], settings=self.settings):
                scores[name_of[str(r.path)]] = r.score
            if not scored_here:
                self._set(fraction=min(1.0, (start + SCORE_CHUNK) / len(paths)))
        return _ranking(scores)


def _ranking(scores: dict[str, float]) -> list[dict[str, Any]]:
    order = sorted(scores, key=lambda n: (-scores[n], n))
    return [
        {"rank": k, "name": n, "score": round(scores[n], 3), "thumb": ServedAlbum.url(n, thumb=True)}
        for k, n in enumerate(order, 1)
    ]

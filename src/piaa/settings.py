"""Run settings: how a run computes (engine, decode processes, previews, torch threads, progress bars),
as one frozen object resolved at each entry point and passed down explicitly.

Entry points (the command line, :func:`~piaa.models.personalize.personalize`,
:func:`~piaa.models.scorer.create_scorer` and :class:`~piaa.models.profile.Profile`'s scoring,
:func:`~piaa.features.store.build_reference`, :func:`~piaa.cull.core.cull`, the retouch API,
:func:`~piaa.evaluation.protocol.run`, the collect web app) call :meth:`RunSettings.resolve` once, folding
in their own keywords (``engine=``, ``progress=``); every function below them takes the object (``run``,
or a :func:`dataclasses.replace` variant of it), never a loose ``engine``/``workers``/``progress``
(``tests/test_settings.py`` checks). No module global, context variable or environment variable decides
behaviour below the entry points: :meth:`RunSettings.from_env` is the one reader of
``PIAA_TORCH_THREADS``.

Torch's thread count is set in one place, :func:`torch_threads`: a counted hold under a lock, never an
interleaved save/restore (the web app trains in a background thread while request threads score). The
entry points that train or retouch hold it at ``settings.torch_threads``; the functions below them do
not touch it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from piaa.errors import UsageError

log = logging.getLogger(__name__)

ENGINES = ("auto", "onnx", "torch")
TORCH_THREADS_ENV = "PIAA_TORCH_THREADS"
DEFAULT_TORCH_THREADS = 1
"""Training and scoring heads run torch on one thread unless told otherwise: the head's tensors are
small, so a second thread gains little on an idle machine, and on a busy one each OpenMP barrier waits
for a descheduled thread. Measured on this project's 2 cores with other jobs running (load 5-6):
``bench_personalize.py --para`` 873 s with torch's default 2 threads against 39-40 s with 1; the demo's
two profiles 498 s against 7 s."""


@dataclass(frozen=True)
class RunSettings:
    """How to run, not what to compute (results do not depend on it, except ``previews``).

    ``engine``: "auto", "onnx" or "torch" (the backbone's runtime); ``workers``: decode processes (0: on
    the network threads; None: the extractor's default for this machine); ``streams``: concurrent ONNX
    Runtime calls (None: cores, at most 2); ``batch_size``: images per network call (>= 1);
    ``previews``: decode camera JPEGs from their embedded preview (faster, scores move by ~0.01, see
    :mod:`piaa.data.previews`); ``torch_threads``: torch's intra-op threads while piaa trains or scores
    heads (>= 1); ``progress``: show progress bars. Raises ValueError for a value out of range."""

    engine: str = "auto"
    workers: int | None = None
    streams: int | None = None
    batch_size: int = 8
    previews: bool = False
    torch_threads: int = DEFAULT_TORCH_THREADS
    progress: bool = True

    def __post_init__(self) -> None:
        if self.engine not in ENGINES:
            raise UsageError(f"unknown engine {self.engine!r}; choose one of {', '.join(ENGINES)}")
        if self.workers is not None and self.workers < 0:
            raise UsageError(f"workers must be 0 or more, got {self.workers}")
        if self.streams is not None and self.streams < 1:
            raise UsageError(f"streams must be at least 1, got {self.streams}")
        if self.batch_size < 1:
            raise UsageError(f"batch_size must be at least 1, got {self.batch_size}")
        if self.torch_threads < 1:
            raise UsageError(f"torch_threads must be at least 1, got {self.torch_threads}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **fields: Any) -> RunSettings:
        """The defaults, with ``PIAA_TORCH_THREADS`` from ``environ`` (default ``os.environ``) and then
        ``fields``. Only entry points call this. Raises ValueError naming the variable for a value that
        is not a whole number of 1 or more."""
        env = os.environ if environ is None else environ
        raw = env.get(TORCH_THREADS_ENV, "").strip()
        if raw:
            try:
                threads = int(raw)
            except ValueError:
                threads = 0
            if threads < 1:
                raise UsageError(f"{TORCH_THREADS_ENV}: expected a whole number of 1 or more, got {raw!r}")
            fields = {"torch_threads": threads, **fields}
        return cls(**fields)

    @classmethod
    def resolve(cls, settings: RunSettings | None = None, /, **given: Any) -> RunSettings:
        """An entry point's settings: ``settings`` when given, else :meth:`from_env`, with each keyword of
        ``given`` that is not None replacing its field (a public function's own ``engine=`` or
        ``progress=`` folded in)."""
        base = settings if settings is not None else cls.from_env()
        changes = {k: v for k, v in given.items() if v is not None}
        return dataclasses.replace(base, **changes) if changes else base

    def replace(self, **changes: Any) -> RunSettings:
        """A variant (``dataclasses.replace``): the object itself never changes."""
        return dataclasses.replace(self, **changes)


DEFAULTS = RunSettings()
"""The defaults (progress bars on), for functions below the entry points whose callers give none."""

QUIET = RunSettings(progress=False)
"""What a function below the entry points runs with when its caller gives no settings: the defaults,
without progress bars (a library call, a test)."""


# The one process-wide state of this module, mirroring torch's own process-wide thread count: who holds
# it, at what count, and what to give back when the last holder leaves.
_lock = threading.Lock()
_holders = 0
_held = 0
_before = 0


@contextlib.contextmanager
def torch_threads(n: int | None = None) -> Iterator[int]:
    """Run the block with torch's intra-op thread count held at ``n`` (None: the count already held, or
    :data:`DEFAULT_TORCH_THREADS`); yields the count in force. Also a decorator.

    ``torch.set_num_threads`` sets the calling thread's OpenMP count, the count threads started later
    begin with, and MKL's process-wide count, so holds are counted under a lock instead of each saving
    and restoring it (a save/restore on two threads that end out of order leaves the count of the
    middle of a run behind, for every thread started after). The first hold sets the count; later ones
    (nested, or on other threads, such as the web app's requests while it trains) set the same count on
    their own thread; the last one out restores the count from before the first. A hold asking for a
    different count while another is in force gets the one in force (logged at debug). A thread whose
    hold ends while another thread's goes on keeps the held count until the last one ends."""
    global _holders, _held, _before
    import torch

    with _lock:
        if _holders == 0:
            _before = torch.get_num_threads()
            _held = n or DEFAULT_TORCH_THREADS
            torch.set_num_threads(_held)
        else:
            if n is not None and n != _held:
                log.debug("torch threads: %d asked for, %d already held", n, _held)
            torch.set_num_threads(_held)  # this thread's own count (the same value everywhere else)
        _holders += 1
        held = _held
    try:
        yield held
    finally:
        with _lock:
            _holders -= 1
            if _holders == 0:
                torch.set_num_threads(_before)


def process_torch_threads(n: int) -> None:
    """Set torch's thread count for good in a process piaa runs on its own (a Ray actor, whose process
    holds one extractor for its lifetime): no caller's count to give back. Under the same lock as
    :func:`torch_threads`; a hold in force keeps its count until it ends, then this one applies."""
    global _before
    import torch

    with _lock:
        if _holders:
            _before = n
        else:
            torch.set_num_threads(n)

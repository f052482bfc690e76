"""How well methods agree with people: the paper's protocol (section 4) over simulated or real worlds.

Modules: :mod:`.metrics` (SRCC/Spearman, PLCC, pairwise accuracy), :mod:`.simulate` (simulated
persons), :mod:`.worlds` (albums, reference and features of one benchmark), :mod:`.methods` (piaa, its
ablations, the baselines), :mod:`.protocol` (splits and :func:`run`), :mod:`.report` (the table and
plot). The names below are loaded on first use, so importing the metrics stays light.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from piaa.evaluation.methods import EVALUATION_METHODS
    from piaa.evaluation.protocol import make_split, run
    from piaa.evaluation.report import BenchResult
    from piaa.evaluation.worlds import EvalWorld, PooledAlbum, dataset_world, simulated_world

__all__ = [
    "EVALUATION_METHODS",
    "BenchResult",
    "EvalWorld",
    "PooledAlbum",
    "dataset_world",
    "make_split",
    "run",
    "simulated_world",
]

_HOME = {
    "EVALUATION_METHODS": "methods",
    "BenchResult": "report",
    "EvalWorld": "worlds",
    "PooledAlbum": "worlds",
    "dataset_world": "worlds",
    "simulated_world": "worlds",
    "make_split": "protocol",
    "run": "protocol",
}


def __getattr__(name: str) -> Any:
    if name in _HOME:
        return getattr(import_module(f"piaa.evaluation.{_HOME[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

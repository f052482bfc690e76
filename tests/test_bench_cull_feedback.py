"""benchmarks/bench_cull_feedback.py's pure helpers: the photographer's taste and piaa's pick.

The full benchmark runs the cull and four trainings (minutes); these checks take no model."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]


def _bench():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    path = ROOT / "benchmarks" / "bench_cull_feedback.py"
    spec = importlib.util.spec_from_file_location("bench_cull_feedback", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses resolve their annotations through sys.modules
    spec.loader.exec_module(mod)
    return mod


def test_utility_prefers_sharp_frames_near_the_preferred_exposure() -> None:
    b = _bench()
    F = b.Frame
    sharp = F("a", "s", 0, ev=0.3)
    motion = F("b", "s", 0, ev=0.3, motion=10)
    dark = F("c", "s", 0, ev=-0.5)
    assert b.utility(sharp, 0.3) > b.utility(motion, 0.3)
    assert b.utility(sharp, 0.3) > b.utility(dark, 0.3)
    assert b.utility(dark, -0.5) > b.utility(sharp, -0.5)


def test_pick_puts_unflagged_first_unless_all_flagged() -> None:
    b = _bench()
    scores = {"x": 0.9, "y": 0.1}
    assert b.pick_of(["x", "y"], scores, {"x"}) == "y"
    assert b.pick_of(["x", "y"], scores, {"x", "y"}) == "x"
    best = {("x", "y"): "y", ("p", "q"): "p"}
    assert b.accuracy([["x", "y"], ["p", "q"]], {**scores, "p": 1.0, "q": 0.0}, set(), best) == 0.5

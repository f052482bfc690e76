"""benchmarks/bench_para.py on the first photos of the shared PARA sample (skipped without it)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PARA = ROOT.parent / "shared" / "data" / "para"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_para", ROOT / "benchmarks" / "bench_para.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_bench_para_tiny(tmp_path: Path) -> None:
    if not (PARA / "labels.csv").is_file():
        pytest.skip(f"shared PARA sample {PARA} is missing (expected in ../shared)")
    args = ["--para", str(PARA), "--cache", str(tmp_path), "--limit", "60", "--test", "12",
            "--albums", "1", "--album-size", "10"]  # fmt: skip
    out = _bench().main(args)
    lines = out.splitlines()
    assert lines[0].startswith("| method | backbone | SRCC | PLCC |")
    assert len(lines) == 2 + 1 + 2 * 4  # NIMA zero-shot, then four generic rows per backbone
    assert "NIMA-AVA zero-shot" in lines[2] and "| 48 ref photos; on the album photos SRCC" in out
    assert sum("KNN per album" in line for line in lines) == 2
    assert len(list(tmp_path.glob("*.npz"))) == 2  # features cached per backbone
    again = _bench().main([*args, "--rows", "whole"]).splitlines()
    assert len(again) == 2 + 2 and all("whole reference" in line for line in again[2:])
    assert again[2] == next(line for line in lines if "whole reference" in line)  # seeded, cached
    with pytest.raises(SystemExit, match="unknown"):
        _bench().main([*args, "--rows", "everything"])

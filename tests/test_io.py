"""Atomic writes keep normal file modes, and a killed writer's leftovers are cleaned by the next run."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from piaa.io import atomic_write_text, remove_stale_temporaries, sha256_file


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_atomic_write_gives_the_normal_mode_not_0600(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "out.csv", "a,b\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.csv").stat().st_mode) == 0o644
    os.chmod(tmp_path / "out.csv", 0o640)
    atomic_write_text(tmp_path / "out.csv", "c,d\n")  # an existing file keeps its mode
    assert stat.S_IMODE((tmp_path / "out.csv").stat().st_mode) == 0o640
    assert (tmp_path / "out.csv").read_text() == "c,d\n"


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    from piaa.io import atomic_open

    atomic_write_text(tmp_path / "f.txt", "old")
    with pytest.raises(RuntimeError), atomic_open(tmp_path / "f.txt") as f:
        f.write(b"half")
        raise RuntimeError("disk full")
    assert (tmp_path / "f.txt").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_stale_temporaries_of_dead_writers_are_removed_live_ones_kept(tmp_path):
    dead, live = _dead_pid(), os.getpid()
    target = tmp_path / "embeddings.npy"
    (tmp_path / f".embeddings.npy.{dead}.abc.part").write_bytes(b"x" * 10)
    (tmp_path / f".embeddings.npy.{live}.def.part").write_bytes(b"x")
    (tmp_path / f".embeddings.npy.{dead}.dir.part").mkdir()
    (tmp_path / ".other.npy.1.x.part").write_bytes(b"x")
    removed = remove_stale_temporaries(target)
    assert sorted(p.name for p in removed) == sorted(
        [f".embeddings.npy.{dead}.abc.part", f".embeddings.npy.{dead}.dir.part"]
    )
    assert (tmp_path / f".embeddings.npy.{live}.def.part").exists()
    assert (tmp_path / ".other.npy.1.x.part").exists()


def test_sha256_file(tmp_path):
    (tmp_path / "x").write_bytes(b"abc")
    assert sha256_file(tmp_path / "x") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

"""Where a benchmark's figures come from: date, commit, machine, load and the exact command.

Every benchmark that can write its own table takes ``--markdown FILE``: it prints the table as before and
also writes FILE (atomically) with this header above it, ready to paste into ``docs/benchmarks/``.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def commit() -> str:
    """The checked-out commit, ``+ local changes`` when the work tree differs from it."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return f"{head} + local changes" if dirty else head


def machine() -> str:
    """CPU model and cores, memory, OS, Python: enough to tell two machines apart."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 2**20:.0f} GB RAM"
    except (OSError, ValueError, IndexError):
        pass
    system = f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    return f"{cpu}, {os.cpu_count()} cores{mem}, {system}"


def load() -> str:
    """Load average over 1, 5 and 15 minutes (what else the machine was doing)."""
    try:
        return ", ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


class Provenance:
    """Take it when the benchmark starts; :meth:`header` then reports the load at start and end."""

    def __init__(self, argv: list[str] | None = None) -> None:
        self.argv = list(sys.argv if argv is None else argv)
        self.started = datetime.datetime.now(datetime.UTC)
        self.load_start = load()
        self.commit = commit()  # the code that runs: taken now, not when the table is written

    def command(self) -> str:
        script = Path(self.argv[0])
        with_root = script.resolve().relative_to(ROOT) if script.resolve().is_relative_to(ROOT) else script
        return shlex.join(["python", str(with_root), *self.argv[1:]])

    def header(self) -> str:
        return (
            f"- date: {self.started:%Y-%m-%d %H:%M} UTC\n"
            f"- commit: {self.commit}\n"
            f"- machine: {machine()}\n"
            f"- load average (1, 5, 15 min): {self.load_start} at the start, {load()} at the end\n"
            f"- command: `{self.command()}`\n"
        )

    @contextlib.contextmanager
    def tee(self, path: str | os.PathLike[str] | None) -> Iterator[None]:
        """Print as usual and, with a ``path``, also write what was printed (a benchmark that prints lines
        rather than a table) as a text block under the header."""
        if path is None:
            yield
            return
        buf, out = io.StringIO(), sys.stdout

        class Tee(io.TextIOBase):
            def write(self, text: str) -> int:
                buf.write(text)
                return out.write(text)

            def flush(self) -> None:
                out.flush()

        with contextlib.redirect_stdout(Tee()):
            yield
        self.write(path, "```text\n" + buf.getvalue().rstrip() + "\n```")

    def write(self, path: str | os.PathLike[str] | None, table: str) -> None:
        """Write ``table`` under the header to ``path`` (nothing when ``path`` is None)."""
        if path is None:
            return
        sys.path.insert(0, str(ROOT / "src"))
        from piaa.io import atomic_write_text

        atomic_write_text(Path(path), self.header() + "\n" + table.rstrip() + "\n")

"""Atomic file writes and file digests: what a user gave or asked for is never left half-written.

Every file piaa writes for a user (profiles, CSV/JSON results, preference exports, reference arrays)
goes through :func:`atomic_open`: written to a temporary file in the same folder, fsynced, given the
normal file mode (the old file's, else 0666 less the umask; ``mkstemp`` alone would leave 0600), renamed
over the target, and the rename made durable by fsyncing the folder. Results that must never replace
a file (retouched photos) go through :func:`write_exclusive` instead: the same temporary, mode and
fsync, then claimed under the first free name by a hard link. Both raise ``OSError`` naming the file
asked for; :func:`os_reason` turns one into the words a user reads ("the disk is full").
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO


def fsync_dir(folder: str | os.PathLike[str]) -> None:
    """Make a rename inside ``folder`` durable (POSIX only; Windows cannot open directories)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_prefix(path: str | os.PathLike[str]) -> str:
    """Name prefix of piaa's temporaries for ``path``: hidden, beside it, carrying the writer's pid so a
    later run can tell a killed writer's leftovers from a live one's."""
    return f".{Path(path).name}.{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(path: str | os.PathLike[str]) -> list[Path]:
    """Delete the leftovers of killed writers of ``path`` (``.NAME.PID.*.part`` files or folders and
    ``.NAME.old-PID`` folders whose process is gone); returns what was removed."""
    path = Path(path)
    removed = []
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return removed
    head = f".{path.name}."
    for entry in entries:
        rest = entry.name[len(head) :] if entry.name.startswith(head) else ""
        pid_text = rest[4:] if rest.startswith("old-") else rest.split(".", 1)[0]
        is_temp = rest.endswith(".part") or rest.startswith("old-")
        if not (is_temp and pid_text.isdigit()) or _alive(int(pid_text)):
            continue
        if rest.startswith("old-") and not path.exists():
            continue  # the only copy of a profile whose swap was interrupted: restored by its loader
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
            removed.append(entry)
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def default_mode(path: str | os.PathLike[str]) -> int:
    """The mode a plain ``open(path, "w")`` would give: the existing file's, else 0666 less the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """A binary file that appears at ``path`` only when the block ends without error (see module doc).
    Raises ``OSError`` (a full disk, say) with nothing left at ``path`` but what was there before."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temp_prefix(path), suffix=".part")
    except OSError as e:  # a read-only folder: name the file asked for, not the temporary one
        raise OSError(e.errno, e.strerror or str(e), str(path)) from e
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, default_mode(path))
        os.replace(tmp, path)
    except OSError as e:  # a full disk, a quota: name the file the user asked for
        raise OSError(e.errno, e.strerror or str(e), str(path)) from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    fsync_dir(path.parent)


def write_exclusive(folder: str | os.PathLike[str], names: Iterable[str], data: bytes) -> Path:
    """Write ``data`` under the first of ``names`` (inside ``folder``) that does not exist, never over
    an existing file: written to a temporary beside it, fsynced, given the normal mode
    (:func:`default_mode`), then claimed with a hard link, which fails instead of replacing a file that
    appeared meanwhile (where hard links are not supported: checked, then renamed). Returns the path.
    Raises ``FileExistsError`` when every name is taken and ``OSError`` naming the file (a full disk)."""
    folder = Path(folder)
    names = list(names)
    first = folder / names[0]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=temp_prefix(first), suffix=".part")
    except OSError as e:
        raise OSError(e.errno, e.strerror or str(e), str(first)) from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        for name in names:
            path = folder / name
            if os.path.lexists(path):
                continue
            try:
                os.link(tmp, path)  # atomic and exclusive: fails if the name appeared meanwhile
            except FileExistsError:
                continue
            except OSError:  # no hard links here (some network/FAT file systems): check, then rename
                if os.path.lexists(path):
                    continue
                os.rename(tmp, path)
            fsync_dir(folder)
            return path
    except OSError as e:  # a full disk, a quota: name the file the user asked for
        raise OSError(e.errno, e.strerror or str(e), str(first)) from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    raise FileExistsError(errno.EEXIST, "no free name for the result", str(first))


def os_reason(exc: OSError) -> str:
    """``"<file>: <what went wrong>"`` in a user's words for an ``OSError`` (``"the disk is full"`` for
    ENOSPC and quotas, ``"permission denied"``, else the system's message)."""
    words = {
        errno.ENOSPC: "the disk is full",
        errno.EDQUOT: "the disk quota is exceeded",
        errno.EACCES: "permission denied",
        errno.EROFS: "the disk is read-only",
    }
    text = words.get(exc.errno or 0) or (exc.strerror or str(exc)).strip()
    return f"{exc.filename}: {text}" if exc.filename else text


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_open(path) as f:
        f.write(data)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes (``hashlib.file_digest``, streamed)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def written_by_piaa(path: str | os.PathLike[str]) -> bool:
    """Whether an existing file is one of piaa's own results, which a rerun may replace: rows (a CSV with a
    ``path`` column, a JSON list of rows with a ``path``), a profile explanation (a JSON object
    with a ``profile``) or a page titled ``piaa``. Anything else is the user's, and results never
    replace the user's files. A missing file is nobody's (``True``: nothing to lose)."""
    import json

    p = Path(path)
    if not p.exists():
        return True
    if not p.is_file():
        return False
    try:
        with p.open("rb") as f:
            head = f.read(1024)
        suffix = p.suffix.lower()
        if suffix == ".csv":
            first = head.decode("utf-8-sig", "replace").splitlines()[:1]
            return bool(first) and "path" in [c.strip().strip('"') for c in first[0].split(",")]
        if suffix == ".json":
            data = json.loads(p.read_text(encoding="utf-8"))
            if isinstance(data, list):
                return all(isinstance(r, dict) and "path" in r for r in data[:1])
            return isinstance(data, dict) and "profile" in data
        if suffix in (".html", ".htm"):
            return b"<title>piaa" in head
    except (OSError, ValueError):
        return False
    return False

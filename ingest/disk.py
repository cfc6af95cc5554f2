"""Writing files safely, for every package: `write_atomic` and `fsync`; `is_disk_full` and
`disk_full` turn a full disk, however it shows, into one message.

A reader (another process, or this one after a crash) sees the old file or the whole new
one, never a part: the data goes to a temporary file in the same directory, which then
replaces the target in one rename (or, with `replace=False`, is linked to a name that must
not exist yet, so two writers cannot both claim it). `durable=True` also flushes the file
and its directory to disk, for what must survive a power cut (the library's CURRENT pointer
and manifests). It sits in ingest/, the bottom package, so that every package may use it.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from ingest.errors import DiskFullError

# how a full disk reads where it is not an OSError: SQLite's SQLITE_FULL, FAISS's C++ errors
_FULL_TEXTS = ("database or disk is full", "no space left on device", "disk quota exceeded")


def fsync(path: Path) -> None:
    """Flush a file or directory to disk (directories: so a rename or new entry survives)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(
    path: Path, data: bytes | str, *, durable: bool = False, replace: bool = True
) -> bool:
    """Write `data` (str as UTF-8) to `path` all at once; False only when `replace=False`
    and `path` already exists (nothing is written then)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
        if durable:
            fsync(path.parent)
        return True
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def is_disk_full(exc: BaseException) -> bool:
    """Whether `exc`, or an error it was raised from, says the disk is full."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(text in str(cause).lower() for text in _FULL_TEXTS):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def disk_full(where: Path | str) -> DiskFullError:
    """The one message for a write that ran out of space (never "rebuild the library")."""
    return DiskFullError(
        f"No space left on the device holding {where}; the library is unchanged.",
        hint="free some space there (or set ASKDOCS_HOME to a roomier disk) and run it again",
    )

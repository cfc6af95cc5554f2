"""Writing files safely, for every package: `write_atomic` and `fsync`.

A reader (another process, or this one after a crash) sees the old file or the whole new
one, never a part: the data goes to a temporary file in the same directory, which then
replaces the target in one rename (or, with `replace=False`, is linked to a name that must
not exist yet, so two writers cannot both claim it). `durable=True` also flushes the file
and its directory to disk, for what must survive a power cut (the library's CURRENT pointer
and manifests). It sits in ingest/, the bottom package, so that every package may use it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


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

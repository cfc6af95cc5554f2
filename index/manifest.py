"""The on-disk layout of a library: manifest, generations, the CURRENT pointer and the lock.

    NAME/CURRENT              "gen-000007": the one published generation
    NAME/lock                 fcntl lock held by the one writer
    NAME/gen-000007/          manifest.json, store.sqlite, vectors-LANG.faiss, lexical-LANG/

A writer builds the next generation in its own directory, fsyncs every file, then replaces
CURRENT with os.replace. A crash at any moment leaves CURRENT naming a complete generation
(the old one or the new one); unpublished directories are swept by the next writer.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ingest.disk import fsync, write_atomic
from ingest.errors import LibraryError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CURRENT = "CURRENT"
_GEN = re.compile(r"^gen-(\d{6})$")
_TRASH = ".trash-"  # a stale generation being removed without the lock


def askdocs_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("askdocs")
    except PackageNotFoundError:
        return "0+unknown"


@dataclass(frozen=True)
class Manifest:
    """What built a generation. `files` maps each index file to its size for a cheap check."""

    model: str  # the model as configured (name, directory or hub id)
    embedder: str  # Embedder.name of the model that embedded the vectors
    dim: int
    chunk_size: int
    chunk_overlap: int
    passage_version: int  # version of library.passage_text: what exactly was embedded
    tokenizer_version: int
    generation: int = 0
    langs: dict[str, dict] = field(default_factory=dict)  # lang → {"chunks", "backend"}
    files: dict[str, int] = field(default_factory=dict)  # relative path → size in bytes
    documents: int = 0
    updated_at: float = 0.0
    askdocs_version: str = field(default_factory=askdocs_version)
    format_version: int = FORMAT_VERSION

    def write(self, gen_dir: Path) -> None:
        write_atomic(
            gen_dir / MANIFEST, json.dumps(asdict(self), indent=1, sort_keys=True), durable=True
        )

    @classmethod
    def read(cls, gen_dir: Path) -> Manifest:
        path = gen_dir / MANIFEST
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            known = {f.name for f in fields(cls)}  # older manifests may hold dropped fields
            manifest = cls(**{k: v for k, v in data.items() if k in known})
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise LibraryError(
                f"The library manifest {path} is missing or unreadable ({exc}).",
                hint="rebuild the library: askdocs ingest --rebuild PATH...",
            ) from exc
        if manifest.format_version > FORMAT_VERSION:
            raise LibraryError(
                f"The library at {gen_dir.parent} was written by a newer askdocs "
                f"({manifest.askdocs_version}, format {manifest.format_version}).",
                hint="upgrade askdocs, or rebuild the library: askdocs ingest --rebuild PATH...",
            )
        return manifest

    def check_files(self, gen_dir: Path) -> None:
        """Every index file the manifest lists exists with its recorded size."""
        for rel, size in self.files.items():
            path = gen_dir / rel
            try:
                actual = path.stat().st_size
            except OSError:
                actual = -1
            if actual != size:
                what = "missing" if actual < 0 else f"damaged ({actual} bytes, expected {size})"
                raise LibraryError(
                    f"The library file {path} is {what}.",
                    hint="rebuild the library: askdocs ingest --rebuild PATH...",
                )


def file_sizes(gen_dir: Path, names: list[str]) -> dict[str, int]:
    """Sizes of the given files and of every file inside the given directories."""
    out: dict[str, int] = {}
    for name in names:
        path = gen_dir / name
        if path.is_dir():
            for child in sorted(path.iterdir()):
                out[f"{name}/{child.name}"] = child.stat().st_size
        else:
            out[name] = path.stat().st_size
    return out


def current(lib_dir: Path) -> Path | None:
    """The published generation directory, or None for a library never written."""
    try:
        name = (lib_dir / CURRENT).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    if not _GEN.match(name):
        raise LibraryError(
            f"The library pointer {lib_dir / CURRENT} is corrupt ({name[:40]!r}).",
            hint=f"rebuild the library: askdocs ingest --rebuild PATH..., or rm -r {lib_dir}",
        )
    return lib_dir / name


def next_generation(lib_dir: Path) -> Path:
    """A fresh, empty directory numbered after every generation present (published or not)."""
    numbers = [int(m.group(1)) for p in lib_dir.iterdir() if (m := _GEN.match(p.name))]
    gen_dir = lib_dir / f"gen-{max(numbers, default=0) + 1:06d}"
    gen_dir.mkdir()
    return gen_dir


def publish(lib_dir: Path, gen_dir: Path) -> None:
    """Make `gen_dir` the current generation atomically, then remove every other one."""
    for path in gen_dir.rglob("*"):
        fsync(path)
    fsync(gen_dir)
    fsync(lib_dir)
    write_atomic(lib_dir / CURRENT, gen_dir.name + "\n", durable=True)
    sweep(lib_dir, keep=gen_dir)


def sweep(lib_dir: Path, keep: Path | None) -> None:
    """Remove generations other than `keep` (old ones, or leftovers of a crashed writer)."""
    for path in lib_dir.iterdir():
        if _GEN.match(path.name) and path != keep:
            shutil.rmtree(path, ignore_errors=True)
    (lib_dir / (CURRENT + ".tmp")).unlink(missing_ok=True)


def tidy(lib_dir: Path) -> None:
    """Sweep generations other than the published one, which a writer killed mid-write or
    mid-sweep leaves behind; only when no writer holds the lock (its unpublished generation
    is not litter), and never an error: a reader may lack write access."""

    def stale() -> list[Path]:
        keep = current(lib_dir)
        return [p for p in lib_dir.iterdir() if _GEN.match(p.name) and p != keep]

    try:
        if stale():  # usually there is nothing, and no lock is taken
            with WriteLock(lib_dir, lib_dir.name, wait=0):
                # again under the lock: a writer may have published since the first look
                for path in stale():  # renamed under the lock, removed after: writers wait ms
                    path.rename(lib_dir / f"{_TRASH}{path.name}-{os.getpid()}")
        for path in lib_dir.iterdir():
            if path.name.startswith(_TRASH):
                shutil.rmtree(path, ignore_errors=True)
    except (LibraryError, OSError):
        pass  # a damaged pointer (opening reports it), a writer at work, no write access


class WriteLock:
    """Exclusive writer lock on NAME/lock; released on close or process death.

    A writer waits up to `wait` seconds for it (a reader tidying up holds it for a moment),
    then is refused with the holder's pid."""

    def __init__(self, lib_dir: Path, name: str, wait: float = 2.0) -> None:
        lib_dir.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(lib_dir / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
            holder = os.pread(self._fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(self._fd)
            raise LibraryError(
                f"The library {name!r} is being written by another askdocs process (pid {holder}).",
                hint="wait for that ingest to finish, then run this command again",
            ) from None
        try:
            os.ftruncate(self._fd, 0)
            os.pwrite(self._fd, str(os.getpid()).encode(), 0)
        except OSError:  # a full disk: release the lock, or this process keeps it forever
            os.close(self._fd)
            raise

    def close(self) -> None:
        if self._fd >= 0:
            os.ftruncate(self._fd, 0)
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> WriteLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

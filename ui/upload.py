"""Saving uploaded files under `$ASKDOCS_HOME/uploads/<library>/` with safe, unsurprising names.

A browser-supplied file name is untrusted: directories are stripped, only word characters
(CJK included), dots and dashes are kept, and a different file that happens to share a name gets
a numbered name instead of overwriting the first. Re-uploading identical bytes reuses the file,
so the library sees an unchanged document.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from ingest.disk import disk_full, is_disk_full, write_atomic
from ingest.errors import InputError
from ingest.loading import FORMATS, key_path, path_key

if TYPE_CHECKING:
    from assistant.service import Assistant
    from index.embedded.store import DocumentInfo
    from index.embedded.writer import IngestReport

ALLOWED_SUFFIXES = tuple(FORMATS)  # what ingest reads
MAX_UPLOAD_MB = 20
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
_UNSAFE = re.compile(r"[^\w.\-]+")  # \w is Unicode-aware: keeps CJK and other letters


@dataclass(frozen=True)
class SavedUpload:
    path: Path
    name: str  # the name as uploaded
    reused: bool  # identical bytes were already saved under this path


def safe_name(name: str) -> str:
    """A file name without directories or characters outside [\\w.-]; never hidden or empty."""
    base = re.split(r"[\\/]", name.strip())[-1]
    base = _UNSAFE.sub("_", base).strip("._") or "upload"
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        return base[:120]
    return f"{stem[:110].rstrip('._') or 'upload'}.{suffix[:10]}"


def uploads_dir(home: Path, library: str) -> Path:
    """The library's own uploads folder, never another library's: a name of word characters,
    '.' and '-' is its folder's name; any other name is percent-encoded ('%' included), so
    `team a` (team%20a) and `team_a` never share one. (askdocs before this kept `team a`'s
    uploads in team_a; they stay there, and deleting its documents no longer removes them.)"""
    if re.fullmatch(r"[\w.-]+", library) and not library.startswith("."):
        key = library
    else:
        key = quote(library, safe="")
        if len(key) > 200:  # a file name has 255 bytes at most; the digest keeps it unique
            key = key[:150] + "%~" + hashlib.sha256(library.encode()).hexdigest()[:32]
    return Path(home) / "uploads" / key


def check_upload(name: str, size: int) -> None:
    """Refuse what askdocs cannot read before anything is written."""
    suffix = Path(safe_name(name)).suffix.lower()
    if suffix not in ALLOWED_SUFFIXES:
        raise InputError(
            f"{name}: files of type “{suffix or 'none'}” cannot be added.",
            hint="upload " + ", ".join(ALLOWED_SUFFIXES) + " files",
        )
    if size > MAX_UPLOAD_BYTES:
        raise InputError(
            f"{name} is {size / 1e6:.1f} MB; the limit is {MAX_UPLOAD_MB} MB.",
            hint="split the file, or add it from the command line with `askdocs ingest PATH`",
        )
    if size == 0:
        raise InputError(f"{name} is empty.", hint="upload a file with some text in it")


def save_upload(name: str, data: bytes, folder: Path) -> SavedUpload:
    """Write `data` under `folder` with a safe name; identical content reuses its file."""
    check_upload(name, len(data))
    folder.mkdir(parents=True, exist_ok=True)
    clean = safe_name(name)
    stem, suffix = Path(clean).stem, Path(clean).suffix
    for i in range(1, 1000):
        path = folder / (clean if i == 1 else f"{stem}-{i}{suffix}")
        if path.exists():
            if path.read_bytes() == data:
                return SavedUpload(path, name, reused=True)
            continue
        # The name is claimed atomically (another session may upload the same name at once)
        # and a crash never leaves a half-written file.
        if write_atomic(path, data, replace=False):
            return SavedUpload(path, name, reused=False)
    raise InputError(
        f"Too many uploads named {clean}.",
        hint=f"rename the file or tidy {folder}",
    )


def is_upload(path: str | Path, folder: Path) -> bool:
    """Whether `path` is one of our saved uploads (which deleting a document may remove)."""
    try:
        return Path(path).resolve().parent == folder.resolve()
    except OSError:
        return False


@dataclass(frozen=True)
class Added:
    """What became of one round of uploads."""

    new: tuple[str, ...]  # names added (or updated) in the library
    unchanged: tuple[str, ...]  # identical to a file uploaded before: already there
    refused: tuple[str, ...]  # not taken (same text as another document, or unreadable)
    saved: tuple[SavedUpload, ...]  # the copies under the uploads folder the library holds
    report: IngestReport

    @property
    def warnings(self) -> tuple[str, ...]:
        return tuple(str(w) for w in self.report.warnings)


def add_uploads(
    assistant: Assistant,
    files: Sequence[tuple[str, bytes]],
    folder: Path,
    progress: Callable[[str, int, int], None] | None = None,
) -> Added:
    """Save uploaded (name, bytes) pairs under `folder` and ingest them.

    Every file is checked before any is saved, so one bad file adds nothing. A copy the
    library did not take is removed again, as are all new copies when the ingest fails
    (another process writing, say): the uploads folder holds only what the library holds.
    The app's library page and the HTTP API (`POST /documents`) both add files through here.
    """
    for name, data in files:
        check_upload(name, len(data))
    saved: list[SavedUpload] = []
    try:
        for name, data in files:
            saved.append(save_upload(name, data, folder))
    except OSError as exc:  # a full disk: the copies saved so far go too
        _remove([s for s in saved if not s.reused])
        if is_disk_full(exc):
            raise disk_full(folder.parent.parent) from None
        raise
    fresh = [s for s in saved if not s.reused]
    try:
        from ingest.ocr import reporting

        pages = (lambda done, total: progress("ocr", done, total)) if progress else None
        with reporting(pages):  # OCR'd pages step the same bar
            report = assistant.ingest([s.path for s in saved], progress=progress)
    except BaseException:
        _remove(fresh)
        raise
    stored = {d.path for d in assistant.documents()}
    refused = [s for s in fresh if _key(s.path) not in stored]
    _remove(refused)
    return Added(
        new=tuple(s.name for s in fresh if s not in refused),
        unchanged=tuple(s.name for s in saved if s.reused),
        refused=tuple(s.name for s in refused),
        saved=tuple(s for s in saved if s not in refused),
        report=report,
    )


def _key(path: Path) -> str:
    """How the library knows a saved upload (see ingest.loading.scan)."""
    return path_key(Path(os.path.realpath(path.parent)) / path.name)


def _remove(uploads: Sequence[SavedUpload]) -> None:
    for s in uploads:
        with contextlib.suppress(OSError):
            s.path.unlink()


def sweep_uploads(folder: Path, kept: Collection[str], min_age_s: float) -> list[Path]:
    """Remove saved uploads the library does not hold (`kept`: its document keys), left by a
    server killed between saving a copy and publishing it; a copy younger than `min_age_s`
    may belong to an upload in flight elsewhere and stays. The paths removed."""
    removed = []
    now = time.time()
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed  # no uploads yet
    for path in entries:
        with contextlib.suppress(OSError):
            st = path.lstat()
            old = stat.S_ISREG(st.st_mode) and now - st.st_mtime >= min_age_s
            if old and _key(path) not in kept:
                path.unlink()
                removed.append(path)
    return removed


def delete_document(assistant: Assistant, doc_id: str, folder: Path) -> DocumentInfo | None:
    """Forget one document, and our own copy of it if it was uploaded (or re-adding the
    uploads folder would revive it). Its DocumentInfo, or None if it was not there."""
    info = next((i for i in assistant.documents() if i.doc_id == doc_id), None)
    if info is None:
        return None
    assistant.delete(doc_id)
    path = key_path(info.path)
    if is_upload(path, folder):
        with contextlib.suppress(OSError):
            path.unlink()
    return info

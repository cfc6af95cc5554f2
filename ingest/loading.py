"""Files and folders → Documents. A bad file becomes one warning line, never a failed batch.

`load_paths` is what the index and the CLI call; `discover`, `file_hash` and `load_file` are
its parts, exposed so an incremental ingest can skip unchanged files by hash before parsing.

Why one module of ~380 lines: what may be read (the symlink policy of `scan`), how a file is
known (`path_key`, lossless for names that are not UTF-8) and the checks before any byte is
read are one decision; split apart, the dry run, the writer and prune could disagree on it.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote_from_bytes, unquote_to_bytes

from ingest.cleaning import clean_markdown, decode, fix_mojibake, normalize_newlines
from ingest.errors import InputError
from ingest.markup import html_to_text, rst_to_markdown
from ingest.outline import first_heading
from ingest.records import Document, content_hash
from ingest.text import detect_lang, printable

FORMATS = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".rst": "rst",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    # ingest.office, ingest.ebook: zip containers, checked by ingest.package first
    ".docx": "docx",
    ".pptx": "pptx",
    ".xlsx": "xlsx",
    ".epub": "epub",
    # ingest.ocr (the optional `ocr` extra)
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
    ".webp": "image",
}
DEFAULT_MAX_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True)
class LoadReport:
    """What one load found: documents read, one warning per file that was not, every file seen."""

    documents: tuple[Document, ...]
    warnings: tuple[str, ...]
    files: tuple[str, ...]  # source of every file found, whether read or not
    failed: tuple[str, ...] = ()  # sources that could not be read (keep their old data)


def source_of(path: str | Path, root: str | Path | None = None) -> str:
    """The path as given, made relative to `root` (default: cwd) when it lies inside it.

    This is what people see, so bytes of a file name that are not UTF-8 show as U+FFFD;
    the library knows the file by `path_key`, which keeps them."""
    p = Path(path)
    if p.is_absolute():
        try:
            return printable(p.relative_to(Path(root) if root else Path.cwd()).as_posix())
        except ValueError:
            return printable(p.as_posix())
    return printable(p.as_posix())


_RAW = "fs:"  # prefix of a key that holds a file name's raw bytes, percent-encoded


def path_key(path: str | Path) -> str:
    """The identity of an absolute path as stored in a library: the path itself, or, when
    its name is not valid UTF-8, `fs:` and its bytes percent-encoded (reversible by
    `key_path`; no absolute path starts with `fs:`)."""
    text = str(path)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return _RAW + quote_from_bytes(os.fsencode(text), safe="/")


def key_path(key: str) -> Path:
    """The file a `path_key` names."""
    if key.startswith(_RAW):
        return Path(os.fsdecode(unquote_to_bytes(key[len(_RAW) :])))
    return Path(key)


def _matches(path: Path, rel: str, patterns: Iterable[str]) -> bool:
    names = (path.name, rel, path.as_posix())
    return any(fnmatch.fnmatch(n, pat) for pat in patterns for n in names)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


@dataclass(frozen=True)
class Scan:
    """What `scan` found under the given paths."""

    files: tuple[Path, ...]  # as reached from the given paths (relative where they were)
    keys: tuple[str, ...]  # path_key of each file: where it sits, links not resolved
    roots: tuple[str, ...]  # path_key of each given folder (real path) or file
    # (path_key of what a refused symbolic link points at, source of the link)
    unfollowed: tuple[tuple[str, str], ...]
    warnings: tuple[str, ...]


def scan(
    paths: Iterable[str | Path],
    include: Collection[str] = (),
    exclude: Collection[str] = (),
    follow_symlinks: bool = False,
) -> Scan:
    """Files to load, in a stable order: given files, and supported files under given folders
    (recursively, hidden entries skipped). Globs match the name or the path.

    A symbolic link is taken only when it points at a file of a supported type and, unless
    `follow_symlinks`, inside the folder it was found in (for a file named directly: inside
    its own folder); a refused link is one warning. A folder link is walked only with
    `follow_symlinks`, whether found in a folder or named directly (a shell glob names it). A file's key is the real path of that
    folder joined with the file's path inside it, so a link is known by where it sits."""
    found: list[Path] = []
    keys: list[str] = []
    roots: list[str] = []
    unfollowed: list[tuple[str, str]] = []
    warnings: list[str] = []
    seen: dict[str, int] = {}  # real path → index in found

    def add(path: Path, rel: str, key: Path, folder: Path) -> None:
        if include and not _matches(path, rel, include):
            return
        if exclude and _matches(path, rel, exclude):
            return
        if path.is_symlink() and not _link_ok(path, folder):
            return
        real = os.path.realpath(path)
        if real not in seen:
            seen[real] = len(found)
            found.append(path)
            keys.append(path_key(key))
        elif found[seen[real]].is_symlink() and not path.is_symlink():
            found[seen[real]], keys[seen[real]] = path, path_key(key)  # the file, not a link

    def _link_ok(path: Path, folder: Path) -> bool:
        target = Path(os.path.realpath(path))
        if not target.exists():
            return True  # a broken link: reading it says so
        why = ""
        if target.is_file() and target.suffix.lower() not in FORMATS:
            kind = f"'{target.suffix}'" if target.suffix else "no extension"
            why = f"symbolic link to a file of an unsupported type ({kind}); skipped"
        elif not follow_symlinks and not _inside(target, folder):
            why = "symbolic link to outside the folder; skipped (--follow-symlinks to take it)"
        if why:
            warnings.append(f"{source_of(path)}: {why}")
            unfollowed.append((path_key(target), source_of(path)))
        return not why

    for given in paths:
        root = Path(given)
        if root.is_dir() and root.is_symlink() and not follow_symlinks:
            # as a folder link met inside a folder: `ingest docs/*` hands us docs/link itself
            warnings.append(
                f"{source_of(root)}: symbolic link to a folder ({source_of(os.path.realpath(root))}); "
                "skipped (--follow-symlinks to take it, or name that folder)"
            )
            continue
        if root.is_dir():
            base_real = Path(os.path.realpath(root))
            roots.append(path_key(base_real))
            walked: set[str] = {str(base_real)}  # followed folder links: no loops
            for dirpath, dirnames, filenames in os.walk(root, followlinks=follow_symlinks):
                base = Path(dirpath)
                rel_dir = base.relative_to(root)
                kept = []
                for d in sorted(dirnames):
                    if d.startswith(".") or _matches(base / d, (rel_dir / d).as_posix(), exclude):
                        continue
                    if (base / d).is_symlink():
                        real = os.path.realpath(base / d)
                        if not follow_symlinks:
                            if not _inside(Path(real), base_real):
                                warnings.append(
                                    f"{source_of(base / d)}: symbolic link to a folder outside "
                                    "the folder; skipped (--follow-symlinks to take it)"
                                )
                            continue
                        if real in walked:
                            continue  # a loop
                        walked.add(real)
                    kept.append(d)
                dirnames[:] = kept
                for name in sorted(filenames):
                    path = base / name
                    if not name.startswith(".") and path.suffix.lower() in FORMATS:
                        rel = (rel_dir / name).as_posix()
                        add(path, rel, base_real / rel_dir / name, base_real)
        elif root.exists() or root.is_symlink():
            folder = Path(os.path.realpath(root.parent))
            roots.append(path_key(folder / root.name))
            # named explicitly: unsupported types get a warning later
            add(root, root.name, folder / root.name, folder)
        else:
            warnings.append(f"{source_of(root)}: no such file or directory")
    return Scan(tuple(found), tuple(keys), tuple(roots), tuple(unfollowed), tuple(warnings))


def discover(
    paths: Iterable[str | Path],
    include: Collection[str] = (),
    exclude: Collection[str] = (),
    warn: Callable[[str], None] | None = None,
    follow_symlinks: bool = False,
) -> list[Path]:
    """The files of `scan`; its warnings go to `warn`."""
    found = scan(paths, include, exclude, follow_symlinks)
    for warning in found.warnings:
        if warn:
            warn(warning)
    return list(found.files)


def file_hash(path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """Content hash of a file's bytes: its doc_id, cheap enough to skip unchanged files.

    Only files that could be loaded are read: InputError (with the reason) for an unsupported
    type, a device, a FIFO or a file over the size cap, which are never opened."""
    data, _ = _read(Path(path), max_bytes)
    return content_hash(data)


def _read(path: Path, max_bytes: int) -> tuple[bytes, float]:
    """The file's bytes and mtime, or InputError saying why they cannot be had."""
    if path.suffix.lower() not in FORMATS:
        known = " ".join(sorted(FORMATS))
        raise InputError(f"unsupported file type '{path.suffix}'", hint=f"supported: {known}")
    try:
        st = path.stat()
        if not path.is_file():
            raise InputError("not a regular file", hint="give files or folders")
        if st.st_size > max_bytes:
            raise InputError(
                f"too large ({_size(st.st_size)}, limit {_size(max_bytes)})",
                hint="split the file or raise the size limit",
            )
        data = _read_bytes(path)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if path.is_symlink() and not path.exists():
            reason = "broken symbolic link"
        raise InputError(f"cannot read ({reason})", hint="check the path and permissions") from exc
    if not data:
        raise InputError("empty file", hint="add text to it or leave it out")
    return data, st.st_mtime


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _read_bytes(path: Path) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def load_file(
    path: str | Path, root: str | Path | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> Document:
    """Read and clean one file. Raises InputError with the reason when it cannot be used."""
    p = Path(path)
    data, mtime = _read(p, max_bytes)
    return parse(data, p.name, source_of(p, root), mtime)


def parse(data: bytes, name: str, source: str, mtime: float = 0.0) -> Document:
    """Bytes of a file called `name` → Document (format from the file extension)."""
    fmt = FORMATS.get(Path(name).suffix.lower(), "text")
    page_starts: tuple[int, ...] = ()
    title = ""
    notes: tuple[str, ...] = ()
    if fmt == "pdf":
        from ingest.pdf import read_pdf

        text, title, page_starts, encoding, notes = read_pdf(data)
    elif fmt in _BINARY:
        text, title, page_starts, encoding, notes = _read_binary(fmt, data)
    else:
        text, encoding = decode(data)
        text = fix_mojibake(normalize_newlines(text))
        if fmt == "markdown":
            text = clean_markdown(text)
        elif fmt == "html":
            text, title = html_to_text(text)
        elif fmt == "rst":
            text = rst_to_markdown(text)
    if not text.strip():
        if fmt == "pdf" and notes and "OCR is not installed" in notes[0]:
            raise InputError(f"no text: {notes[0]}", hint="pip install 'askdocs[ocr]'")
        reason = "no text (OCR found none)" if "ocr" in encoding else "no text"
        raise InputError(reason, hint="nothing to index in this file")
    if fmt in ("markdown", "html", "rst"):
        title = first_heading(text) or title
    return Document(
        doc_id=content_hash(data),
        source=source,
        title=printable(title or Path(name).name),
        text=text,
        lang=detect_lang(text),
        mtime=mtime,
        format=fmt,
        encoding=encoding,
        page_starts=page_starts,
        notes=notes,
    )


_BINARY = ("docx", "pptx", "xlsx", "epub", "image")


def _read_binary(fmt: str, data: bytes) -> tuple[str, str, tuple[int, ...], str, tuple[str, ...]]:
    """An office file, e-book or image: (text, title, page starts, encoding, notes)."""
    if fmt == "image":
        from ingest import ocr

        page = ocr.read_image(data)
        notes = () if page.complete else ("OCR stopped at its time cap; partly read",)
        return page.text, "", (0,), ocr.describe("image", [page]), notes
    from ingest import ebook, office

    read = {"docx": office.read_docx, "pptx": office.read_pptx, "xlsx": office.read_xlsx}
    got = ebook.read_epub(data) if fmt == "epub" else read[fmt](data)
    return printable(got.text), got.title, (), fmt, got.notes


def load_or_warn(
    path: Path,
    warnings: list[str],
    root: str | Path | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Document | None:
    """`load_file`, or None and one "SOURCE: reason" warning when the file cannot be used
    (a parser bug included: one bad file must not lose the rest of a batch)."""
    try:
        doc = load_file(path, root, max_bytes=max_bytes)
        warnings.extend(f"{doc.source}: {note}" for note in doc.notes)  # read, partly
        return doc
    except InputError as exc:
        warnings.append(f"{source_of(path, root)}: {exc.message}")
    except Exception as exc:  # noqa: BLE001
        warnings.append(f"{source_of(path, root)}: unexpected error ({type(exc).__name__}: {exc})")
    return None


def load_paths(
    paths: Iterable[str | Path],
    include: Collection[str] = (),
    exclude: Collection[str] = (),
    max_bytes: int = DEFAULT_MAX_BYTES,
    root: str | Path | None = None,
    follow_symlinks: bool = False,
) -> LoadReport:
    """Load every file under `paths`, each content once; a file that cannot be used gives one
    "SOURCE: reason" warning."""
    warnings: list[str] = []
    files = discover(paths, include, exclude, warnings.append, follow_symlinks)
    documents: list[Document] = []
    failed: list[str] = []
    first_with: dict[str, str] = {}
    for path in files:
        doc = load_or_warn(path, warnings, root, max_bytes)
        if doc is None:
            failed.append(source_of(path, root))
        elif doc.doc_id in first_with:
            warnings.append(f"{doc.source}: same content as {first_with[doc.doc_id]}; skipped")
        else:
            first_with[doc.doc_id] = doc.source
            documents.append(doc)
    return LoadReport(
        documents=tuple(documents),
        warnings=tuple(warnings),
        files=tuple(source_of(p, root) for p in files),
        failed=tuple(failed),
    )

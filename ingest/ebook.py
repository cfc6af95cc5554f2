"""EPUB e-books → Markdown-like text: chapters in reading order under the book's contents.

The spine (the reading order) gives the chapters; the table of contents gives each chapter its
heading path, so a citation names the chapter ("Part I > 3. Functions"). A chapter the table of
contents does not list keeps only its own headings. A chapter's own headings sit below its
entry; a chapter that opens with its entry's title does not repeat it. Chapter XHTML
goes through `ingest.markup.html_blocks` (an iterative walk, whole chapter kept: in a book
every block is content, there is no page furniture to drop).
"""

from __future__ import annotations

import io
import posixpath
import warnings
from collections.abc import Iterable

from ingest.errors import InputError
from ingest.markup import html_blocks
from ingest.office import Extract, heading
from ingest.package import open_package


def read_epub(data: bytes) -> Extract:
    open_package(data, "EPUB")
    try:
        from ebooklib import ITEM_DOCUMENT, epub

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ebooklib's notices about its own defaults
            book = epub.read_epub(io.BytesIO(data), {"ignore_ncx": False})
        entries = _toc_paths(book.toc)
        blocks: list[str] = []
        done: set[str] = set()
        for idref, _linear in book.spine:
            item = book.get_item_with_id(idref)
            if item is None or item.get_type() != ITEM_DOCUMENT or item.get_name() in done:
                continue
            done.add(item.get_name())
            blocks.extend(_chapter(item, entries.get(_norm(item.get_name()), ())))
        titles = book.get_metadata("DC", "title")
        title = str(titles[0][0]).strip() if titles else ""
    except InputError:
        raise
    except Exception as exc:  # ebooklib raises many kinds on damaged books
        raise InputError(
            f"broken EPUB file ({type(exc).__name__}: {exc})",
            hint="open it in an e-book editor and save it again",
        ) from exc
    return Extract("\n\n".join(blocks), title)


def _norm(href: str) -> str:
    return posixpath.normpath(href.split("#", 1)[0])


def _toc_paths(toc: Iterable[object]) -> dict[str, tuple[str, ...]]:
    """File name → the titles leading to its first table-of-contents entry (iteratively)."""
    paths: dict[str, tuple[str, ...]] = {}
    stack: list[tuple[object, tuple[str, ...]]] = [(e, ()) for e in reversed(list(toc))]
    while stack:
        entry, above = stack.pop()
        if isinstance(entry, tuple) and len(entry) == 2:  # (Section or Link, children)
            head, children = entry
            title = " ".join(str(getattr(head, "title", "") or "").split())
            here = (*above, title) if title else above
            href = getattr(head, "href", "")
            if href:
                _keep(paths, _norm(href), here)
            stack.extend((c, here) for c in reversed(list(children)))
        else:
            title = " ".join(str(getattr(entry, "title", "") or "").split())
            href = getattr(entry, "href", "")
            if href and title:
                _keep(paths, _norm(href), (*above, title))
    return paths


def _keep(paths: dict[str, tuple[str, ...]], name: str, path: tuple[str, ...]) -> None:
    """The first entry of a file, or a deeper one under it (a part and its first chapter
    pointing at the same file: the chapter names it)."""
    old = paths.get(name)
    if old is None or (len(path) > len(old) and path[: len(old)] == old):
        paths[name] = path


def _chapter(item: object, path: tuple[str, ...]) -> list[str]:
    body = item.get_content()  # type: ignore[attr-defined]
    source = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else str(body)
    blocks = html_blocks(source)
    out = [heading(level, title) for level, title in enumerate(path, 1)]
    depth = len(path)
    for i, (level, text) in enumerate(blocks):
        if not level:
            out.append(text)
            continue
        title = text.lstrip("#").strip()
        if i == 0 and path and title == path[-1]:
            continue  # the chapter's own title, already its entry
        out.append(heading(depth + level, title))
    return out

"""PDF → text, page by page: the text layer where a page has one, OCR where it is a scan.

Pages are joined by a blank line and `page_starts` says where each begins, so a citation knows
its page. A page with under `_TEXT_LAYER` characters of text and a picture on it is a scan and
goes to `ingest.ocr`; its OCR text replaces the layer only when longer. Without the `ocr`
extra such pages stay empty and a note (a warning of the load) says so.
"""

from __future__ import annotations

import io
import logging

from ingest.cleaning import fix_mojibake, normalize_newlines
from ingest.errors import InputError
from ingest.text import printable


def read_pdf(data: bytes) -> tuple[str, str, tuple[int, ...], str, tuple[str, ...]]:
    """Text of every page, pages joined by a blank line; pages without a text layer are
    OCR'd (ingest.ocr). Returns (text, title, page starts, encoding, notes)."""
    from pypdf import PdfReader

    # pypdf logs what it repairs ("EOF marker not found") to stderr; a file it cannot read
    # still raises, and that becomes the one warning line.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not reader.decrypt(""):
            raise InputError("encrypted PDF", hint="save an unencrypted copy")
        pages = [page.extract_text() or "" for page in reader.pages]
        # a page without a text layer but with a picture on it is a scan: OCR reads it
        scanned = [
            n
            for n, page in enumerate(reader.pages, 1)
            if len(pages[n - 1].strip()) < _TEXT_LAYER and _has_images(page)
        ]
        meta = reader.metadata
        title = str(meta.title).strip() if meta and meta.title else ""
    except InputError:
        raise
    except Exception as exc:  # pypdf raises many kinds on damaged files
        raise InputError(
            f"broken PDF ({type(exc).__name__}: {exc})", hint="re-export or repair the PDF"
        ) from exc
    encoding, notes = "pdf", list[str]()
    if scanned:
        from ingest import ocr

        if not ocr.available():
            missing = f"{len(scanned)} of {len(pages)} pages have no text layer (scans?)"
            text, starts = _join(pages)  # (the title came second: mypy found them swapped)
            return text, title, starts, "pdf", (f"{missing} and OCR is not installed",)
        read, notes = ocr.read_pdf_pages(data, scanned)
        for page in read:
            if len(page.text.strip()) > len(pages[page.page - 1].strip()):
                pages[page.page - 1] = page.text
        encoding = ocr.describe("pdf", [p for p in read if pages[p.page - 1] == p.text])
    text, starts = _join(pages)
    return text, title, starts, encoding, tuple(notes)


def _join(pages: list[str]) -> tuple[str, tuple[int, ...]]:
    """Pages joined by a blank line, and where each starts."""
    parts: list[str] = []
    starts: list[int] = []
    pos = 0
    for page in pages:
        body = printable(fix_mojibake(normalize_newlines(page))).strip()
        starts.append(pos)
        parts.append(body)
        pos += len(body) + 2
    return "\n\n".join(parts), tuple(starts)


_TEXT_LAYER = 10  # characters: a page with fewer has no text layer worth the name


def _has_images(page: object) -> bool:
    try:
        return len(page.images) > 0  # type: ignore[attr-defined]  # names only, not decoded
    except Exception:  # noqa: BLE001 - damaged resources: let OCR look at the page
        return True

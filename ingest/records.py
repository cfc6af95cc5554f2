"""The records that flow from ingest to index: a cleaned Document and its Chunks."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field


def content_hash(data: bytes | str) -> str:
    """Short, stable content hash used for doc ids and change detection."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    return hashlib.sha256(data).hexdigest()[:20]


@dataclass(frozen=True)
class Document:
    """One source file after loading and cleaning. `text` is what is stored and shown."""

    doc_id: str  # content hash of the raw file bytes
    source: str  # path as given, relative where possible
    title: str
    text: str
    lang: str  # "zh" | "en" | "other"
    mtime: float
    format: str = "text"  # "markdown" | "text" | "html" | "pdf" | "rst" | OFFICE_FORMATS | "image"
    encoding: str = "utf-8"
    # PDF and OCR'd images: character offset in `text` where each page starts (page n =
    # index n-1). Which pages were OCR'd, and how well, is in `encoding` (ingest.ocr).
    page_starts: tuple[int, ...] = field(default=())
    # What reading left out (rows over a cap, pages past OCR's time cap): warnings of the
    # load, not stored with the document.
    notes: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Chunk:
    """A span of a Document: `text == document.text[start:end]` exactly."""

    chunk_id: int  # stable 63-bit id, also the FAISS id
    doc_id: str
    source: str
    start: int
    end: int
    text: str
    heading: str  # heading path, e.g. "函数 > 定义函数"; "" when none
    lang: str  # one of ingest.text.LANGS (detect_lang); each has its own indexes
    hash: str  # content hash of `text`

    @staticmethod
    def make_id(doc_id: str, start: int, end: int) -> int:
        digest = hashlib.sha256(f"{doc_id}:{start}:{end}".encode()).digest()
        return int.from_bytes(digest[:8], "big") & ((1 << 63) - 1)

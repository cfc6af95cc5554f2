"""Document → Chunks: structure-aware, size-bounded, with exact character offsets.

Per section (see outline.py) the text is cut into units: paragraphs and fenced code blocks.
A unit longer than `size` is split by LangChain's RecursiveCharacterTextSplitter into pieces of
at most `size - overlap`: at lines, then sentence ends (Chinese 。！？； and English ". ", "? ",
"! "), then clauses, words and, last, characters. Units and pieces are then packed greedily into chunks of at most `size` characters,
so a code block that fits in a chunk is never cut. Each next chunk starts up to `overlap`
characters early, at a sentence or word start, so a passage cut by a boundary is still found
whole in one of the two chunks. Offsets are tracked throughout (LangChain's pieces are laid
end to end over the unit), so `chunk.text == document.text[start:end]` holds by construction.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from ingest.errors import InputError
from ingest.outline import Section, outline
from ingest.records import Chunk, Document, content_hash
from ingest.text import FENCE, HAN, Fences, detect_lang

if TYPE_CHECKING:
    from langchain_text_splitters import RecursiveCharacterTextSplitter

# Formats whose stored text marks headings with `#` (office files and e-books: ingest.office)
MARKDOWN_FORMATS = frozenset({"markdown", "html", "rst", "docx", "pptx", "xlsx", "epub"})
HEADING_SEPARATOR = " > "
TITLE_CHARS = 80


@dataclass(frozen=True)
class ChunkSettings:
    """Chunk size and overlap in characters. 400 measured well ahead of 1000 on cross-language
    questions (dense R@5 0.63–0.93 against 0.07–0.35, before any code; docs/results.md); the
    overlap of 80 is a default, not a measurement."""

    size: int = 400
    overlap: int = 80

    def __post_init__(self) -> None:
        if self.size < 20:
            raise InputError(f"chunk size {self.size} is too small", hint="use at least 20")
        if not 0 <= self.overlap < self.size // 2:
            raise InputError(
                f"chunk overlap {self.overlap} must be at least 0 and under half the size",
                hint=f"use an overlap below {self.size // 2}",
            )


# LangChain separators, tried in order; each keeps its text at the end of the piece before it.
_SEPARATORS = [
    r"\n[ \t]*\n",
    r"\n",
    r"(?<=[。！？；])",
    r"(?<=[.?!])[ \t]+",
    r"(?<=[，、：])",
    r"(?<=[,;:])[ \t]+",
    r"[ \t]+",
    "",
]
# Where a chunk may start inside the overlap: after a sentence end, or after a word or clause.
_SENTENCE_START = re.compile(r"(?:[。！？；][”’」』）)]*|[.?!][\"')\]]*(?=\s)|\n)\s*")
_WORD_START = re.compile(r"(?:[，、：,;:]|\s)\s*")
_SENTENCE_END = re.compile(r"[。！？；]|[.?!](?=\s|$)")
_MARKERS = re.compile(r"^(?:[#>*+\-\s]|\d+[.)]\s)+")


@lru_cache(maxsize=8)
def _splitter(size: int) -> RecursiveCharacterTextSplitter:
    from langchain_text_splitters import RecursiveCharacterTextSplitter  # slow import: lazy

    return RecursiveCharacterTextSplitter(
        chunk_size=size,
        chunk_overlap=0,
        separators=_SEPARATORS,
        is_separator_regex=True,
        keep_separator="end",
        strip_whitespace=False,  # pieces must concatenate back to the unit exactly
    )


def chunk_document(doc: Document, settings: ChunkSettings | None = None) -> list[Chunk]:
    """Cut a Document into Chunks with exact offsets, heading paths and per-chunk language."""
    settings = settings or ChunkSettings()
    text = doc.text
    chunks: list[Chunk] = []
    for section in _sections(doc):
        heading = HEADING_SEPARATOR.join(section.path) or first_sentence(
            text[section.start : section.end]
        )
        pieces = _pieces(text, section.start, section.end, settings.size, settings.overlap)
        for start, end in _pack(text, pieces, settings):
            body = text[start:end]
            chunks.append(
                Chunk(
                    chunk_id=Chunk.make_id(doc.doc_id, start, end),
                    doc_id=doc.doc_id,
                    source=doc.source,
                    start=start,
                    end=end,
                    text=body,
                    heading=heading,
                    lang=detect_lang(body, default=doc.lang),
                    hash=content_hash(body),
                )
            )
    return chunks


def _sections(doc: Document) -> list[Section]:
    """The outline's sections, and where pages were OCR'd, cut at those pages' bounds: such
    a page is a section of its own named "page N (OCR)", so every citation of it says so."""
    from bisect import bisect_right

    from ingest.ocr import read_marks

    sections = outline(doc.text, markdown=doc.format in MARKDOWN_FORMATS)
    marks = read_marks(doc.encoding)
    if not marks or not doc.page_starts:
        return sections
    starts = doc.page_starts
    cuts = sorted(
        {starts[p - 1] for p in marks if p <= len(starts)}
        | {starts[p] for p in marks if p < len(starts)}
    )
    out: list[Section] = []
    for section in sections:
        inner = [c for c in cuts if section.start < c < section.end]
        for a, b in zip([section.start, *inner], [*inner, section.end], strict=True):
            page = bisect_right(starts, a)
            if page in marks:
                name = "image (OCR)" if doc.format == "image" else f"page {page} (OCR)"
                out.append(Section(a, b, (name,)))
            else:
                out.append(Section(a, b, section.path))
    return out


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _units(text: str, a: int, b: int) -> list[tuple[int, int]]:
    """Paragraphs (split at blank lines) and whole fenced code blocks of text[a:b]."""
    units: list[tuple[int, int]] = []
    para: int | None = None
    fences, fence_start = Fences(), a
    pos = a
    for line in text[a:b].splitlines(keepends=True):
        ls, pos = pos, pos + len(line)
        role = fences.step(line)
        if role == "close":
            units.append((fence_start, pos))
        elif role == "code":
            continue
        elif role == "open" or not line.strip():
            if para is not None:
                units.append((para, ls))
                para = None
            if role == "open":
                fence_start = ls
        elif para is None:
            para = ls
    if fences.open:
        units.append((fence_start, b))  # an unclosed fence runs to the end of the section
    elif para is not None:
        units.append((para, b))
    stripped = (_strip(text, s, e) for s, e in units)
    return [(s, e) for s, e in stripped if e > s]


def _pieces(text: str, a: int, b: int, size: int, overlap: int) -> list[tuple[int, int, bool]]:
    """Units of text[a:b] as (start, end, whole); a unit longer than `size` is split into
    pieces of at most `size - overlap` (whole=False: these may be cut again when packing)."""
    out: list[tuple[int, int, bool]] = []
    for s, e in _units(text, a, b):
        if e - s <= size:
            out.append((s, e, True))
            continue
        pos = s
        # Pieces leave room for the overlap, as LangChain's own chunks of `size` would.
        for piece in _splitter(size - overlap).split_text(text[s:e]):
            if not text.startswith(piece, pos):  # LangChain dropped something: find it
                pos = text.index(piece, pos)
            ps, pe = _strip(text, pos, pos + len(piece))
            pos += len(piece)
            # Never trust a piece to be short enough: an over-long one is cut hard.
            for cut in range(ps, pe, size):
                cs, ce = _strip(text, cut, min(cut + size, pe))
                if ce > cs:
                    out.append((cs, ce, False))
    return out


def _pack(
    text: str, pieces: list[tuple[int, int, bool]], settings: ChunkSettings
) -> list[tuple[int, int]]:
    """Greedily join consecutive pieces into spans of at most `size`, starting each next span
    up to `overlap` characters inside the previous one."""
    size = settings.size
    spans: list[tuple[int, int]] = []
    queue = deque(pieces)
    if not queue:
        return spans
    cur_start, cur_end, _ = queue.popleft()
    while queue:
        ps, pe, whole = queue.popleft()
        if pe - cur_start <= size:
            cur_end = pe
            continue
        if cur_end - cur_start < size // 4 and not whole:
            # A tiny span (a heading line before a long paragraph) takes the first sentences of
            # a split paragraph instead of becoming a chunk of its own; whole units stay whole.
            cut = _boundary(text, ps + 1, cur_start + size + 1, last=True)
            if cut is not None:
                queue.appendleft((cut, pe, False))
                cur_end = _strip(text, ps, cut)[1]
                continue
        spans.append((cur_start, cur_end))
        lo = max(cur_start + 1, cur_end - settings.overlap, pe - size)
        start = _boundary(text, lo, cur_end, last=False) if settings.overlap else None
        cur_start, cur_end = (ps if start is None else start), pe
    spans.append((cur_start, cur_end))
    return spans


def _boundary(text: str, lo: int, hi: int, last: bool) -> int | None:
    """A position in [lo, hi) where a chunk may start: after a sentence end, else after a word or
    clause, else (Chinese has no spaces) at a Han character. The first or the last one."""
    if lo >= hi:
        return None
    for pattern in (_SENTENCE_START, _WORD_START):
        found = [m.end() for m in pattern.finditer(text, max(0, lo - 2), hi) if lo <= m.end() < hi]
        if found:
            return found[-1] if last else found[0]
    han = [m.start() for m in HAN.finditer(text, lo, hi)]
    if han:
        return han[-1] if last else han[0]
    return None


def first_sentence(text: str, limit: int = TITLE_CHARS) -> str:
    """A title for a section without a heading: its first sentence, cut to `limit` chars."""
    lines: list[str] = []
    for line in text.strip().splitlines():
        if not line.strip() or FENCE.match(line):
            if lines:
                break
            continue
        lines.append(_MARKERS.sub("", line))
    para = " ".join(" ".join(lines).split())
    m = _SENTENCE_END.search(para)
    sentence = para[: m.start()] if m else para
    if len(sentence) <= limit:
        return sentence
    cut = sentence[:limit]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:，、") + "…"

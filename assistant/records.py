"""Records the assistant hands to the CLI and the UI (Hit, Retrieval, Answer, ...), and
`Library`: what the assistant reads from a library (the seam to index/)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Protocol

from ingest.records import Chunk, Document
from ingest.text import text_lang

if TYPE_CHECKING:
    import numpy as np

    from index.config import LibraryConfig
    from index.embedded.store import DocumentInfo
    from index.embedded.writer import IngestReport
    from index.model.embedder import Embedder


class Library(Protocol):
    """The library as the assistant uses it; `index.library.Library` is the one that ships.

    Search primitives return (chunk_id, score) pairs, best first; `lang` picks one chunk
    language's index, None merges them.
    """

    config: LibraryConfig

    @property
    def embedder(self) -> Embedder: ...

    @property
    def stale_tokens(self) -> bool: ...

    def langs(self) -> dict[str, int]: ...

    def dense(
        self, qvec: np.ndarray, k: int, lang: str | None = None
    ) -> list[tuple[int, float]]: ...

    def lexical(self, query: str, k: int, lang: str | None = None) -> list[tuple[int, float]]: ...

    def vectors(self, ids: list[int], lang: str) -> np.ndarray: ...

    def get_chunks(self, ids: Iterable[int]) -> list[Chunk]: ...

    def documents(self) -> list[DocumentInfo]: ...

    def document(self, doc_id: str) -> Document | None: ...

    def chunks(self, doc_id: str) -> list[Chunk]: ...

    def ingest(self, paths, prune: bool = False, progress=None) -> IngestReport: ...

    def delete(self, doc_id: str) -> bool: ...

    def refresh(self) -> bool: ...


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk: its fused score, 1-based rank, and which retrievers found it."""

    chunk: Chunk
    score: float
    rank: int
    found_by: tuple[str, ...] = ()  # e.g. ("dense", "lexical")

    def to_json(self) -> dict:
        c = self.chunk
        return {
            "rank": self.rank,
            "score": round(float(self.score), 6),
            "source": c.source,
            "start": c.start,
            "end": c.end,
            "text": c.text,
            "heading": c.heading,
            "lang": c.lang,
            "doc_id": c.doc_id,
            "chunk_id": c.chunk_id,
            "found_by": list(self.found_by),
        }


@dataclass(frozen=True)
class Retrieval:
    """What a search found for a query, and whether the library can answer it."""

    query: str
    hits: tuple[Hit, ...]
    answerable: bool
    confidence: float  # best cosine between the question (or its expansion) and a passage
    expansion: str = ""
    unknown: tuple[str, ...] = ()  # named terms of the question the library never mentions
    evidence: tuple[dict, ...] = ()  # per hit: why it scored as it did (retrieve.Evidence)

    def to_json(self) -> dict:
        return {
            "query": self.query,
            "answerable": self.answerable,
            "confidence": round(self.confidence, 4),
            "expansion": self.expansion,
            "unknown_terms": list(self.unknown),
            "hits": [
                {**h.to_json(), "evidence": e} if e else h.to_json()
                for h, e in zip(self.hits, self.evidence or [None] * len(self.hits), strict=True)
            ],
        }


@dataclass(frozen=True)
class Citation:
    """Source number n and the exact cited span of the stored document text."""

    n: int
    source: str
    doc_id: str
    start: int
    end: int
    text: str
    heading: str = ""
    lang: str = ""

    @classmethod
    def of(cls, n: int, hit: Hit, span: tuple[int, int, str] | None = None) -> Citation:
        """Citation n of `hit`'s chunk, or of `span` (start, end, text) of its document."""
        c = hit.chunk
        start, end, text = span or (c.start, c.end, c.text)
        return cls(n, c.source, c.doc_id, start, end, text, c.heading, c.lang)

    def to_json(self) -> dict:
        return asdict(self)  # n, source, doc_id, start, end, text, heading, lang


@dataclass(frozen=True)
class Sentence:
    """One answer sentence and the citation numbers that support it."""

    text: str
    citations: tuple[int, ...] = ()
    supported: bool = True  # False when an LLM sentence failed the support check
    code: bool = False  # a code line or block, shown as a code block


@dataclass(frozen=True)
class Answer:
    question: str
    answered: bool
    sentences: tuple[Sentence, ...]
    citations: tuple[Citation, ...]
    hits: tuple[Hit, ...]
    query: str = ""  # the query actually searched (after resolving follow-ups)
    notice: str = ""  # e.g. "以下内容来自英文文档" or why LLM mode fell back
    mode: str = "extractive"  # "extractive" | "llm"
    warnings: tuple[str, ...] = field(default=())
    # Reading aid when sentences come from the other language: (term as cited, translation).
    glossary: tuple[tuple[str, str], ...] = field(default=())
    fallback: bool = False  # LLM mode: the model's answer was not shown (failed or unsupported)
    # LLM mode, once the model answered: (supported and cited, total) of its distinct sentences.
    generated: tuple[int, int] | None = None
    # The library names the topic but not the asked detail: the notice says so (assistant.detail).
    near_miss: bool = False

    @property
    def paragraphs(self) -> tuple[tuple[Sentence, ...], ...]:
        """The sentences in paragraphs: a new one where the language changes from one
        sentence to the next (an answer quoting Chinese and English passages reads as two
        blocks, not one run); code stays with the sentence before it."""
        out: list[list[Sentence]] = []
        lang = None
        for s in self.sentences:
            now = lang if s.code else text_lang(s.text)
            if not out or (lang is not None and now != lang):
                out.append([])
            out[-1].append(s)
            lang = now
        return tuple(tuple(p) for p in out)

    @property
    def text(self) -> str:
        """Plain text: one sentence a line ([n] after each), a blank line between paragraphs."""
        blocks = [self.notice] if self.notice else []
        for paragraph in self.paragraphs:
            lines = []
            for s in paragraph:
                marks = "".join(f"[{n}]" for n in s.citations)
                if s.code:
                    lines.append(f"```\n{s.text}\n```{marks}")
                else:
                    lines.append(
                        f"{s.text}{marks}" if s.supported else f"{s.text}{marks} (unsupported)"
                    )
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks) if len(self.paragraphs) > 1 else "\n".join(blocks)

    @property
    def glossary_text(self) -> str:
        """The reading aid as lines "term — translation" (empty when there is none)."""
        return "\n".join(f"{term} — {tr}" for term, tr in self.glossary)

    def to_json(self) -> dict:
        return {
            "question": self.question,
            "query": self.query,
            "answered": self.answered,
            "answer": self.text,
            "notice": self.notice,
            "mode": self.mode,
            "sentences": [
                {
                    "text": s.text,
                    "citations": list(s.citations),
                    "supported": s.supported,
                    "code": s.code,
                }
                for s in self.sentences
            ],
            "citations": [c.to_json() for c in self.citations],
            "hits": [h.to_json() for h in self.hits],
            "warnings": list(self.warnings),
            "glossary": [{"term": t, "translation": tr} for t, tr in self.glossary],
            "fallback": self.fallback,
            "near_miss": self.near_miss,
            "generated": (
                {"supported": self.generated[0], "sentences": self.generated[1]}
                if self.generated
                else None
            ),
        }

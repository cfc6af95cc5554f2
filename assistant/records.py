"""Records the assistant hands to the CLI and the UI: Hits and Answers."""

from __future__ import annotations

from dataclasses import dataclass, field

from ingest.records import Chunk


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

    def to_json(self) -> dict:
        return {
            "n": self.n,
            "source": self.source,
            "doc_id": self.doc_id,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "heading": self.heading,
            "lang": self.lang,
        }


@dataclass(frozen=True)
class Sentence:
    """One answer sentence and the citation numbers that support it."""

    text: str
    citations: tuple[int, ...] = ()
    supported: bool = True  # False when an LLM sentence failed the support check


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

    @property
    def text(self) -> str:
        parts = [self.notice] if self.notice else []
        for s in self.sentences:
            marks = "".join(f"[{n}]" for n in s.citations)
            parts.append(f"{s.text}{marks}" if s.supported else f"{s.text}{marks} (unsupported)")
        return "\n".join(parts)

    def to_json(self) -> dict:
        return {
            "question": self.question,
            "query": self.query,
            "answered": self.answered,
            "answer": self.text,
            "notice": self.notice,
            "mode": self.mode,
            "sentences": [
                {"text": s.text, "citations": list(s.citations), "supported": s.supported}
                for s in self.sentences
            ],
            "citations": [c.to_json() for c in self.citations],
            "hits": [h.to_json() for h in self.hits],
            "warnings": list(self.warnings),
        }

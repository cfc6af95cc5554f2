"""`Assistant`: the one API the CLI and the Streamlit app both use.

It owns the open library (and so the embedding model) and the retriever; answers and
conversations are built by `assistant.answer`, `assistant.conversation` and `assistant.llm`.
Loading is lazy so that cheap commands stay cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.config import AssistantConfig
from assistant.records import Answer, Library, Retrieval
from ingest.records import Chunk, Document
from ingest.sample import sample_corpus

if TYPE_CHECKING:
    from assistant.answer import ExtractiveAnswerer
    from assistant.conversation import Conversation
    from assistant.retrieve import Retriever
    from index.protocol import DocumentInfo, IngestReport

Progress = Callable[[str, int, int], None]


class Assistant:
    """Opens its library, model and retriever on first use; `with_config` shares them."""

    def __init__(
        self,
        config: AssistantConfig | None = None,
        library: Library | None = None,
        retriever: Retriever | None = None,
    ) -> None:
        self.config = config or AssistantConfig()
        self._library = library
        self._retriever = retriever
        self._extractive: ExtractiveAnswerer | None = None

    # -- library ---------------------------------------------------------------------------
    @property
    def library(self) -> Library:
        if self._library is None:
            from index.library import Library as OpenLibrary

            self._library = OpenLibrary.open(self.config.library, create=True)
        return self._library

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            from assistant.retrieve import Retriever

            self._retriever = Retriever(self.library)
        return self._retriever

    def refresh(self) -> bool:
        """Follow a generation another process published (askdocs ingest in a terminal while
        the app runs); True if there was one. The retriever's statistics are rebuilt."""
        if self._library is None or not self._library.refresh():
            return False
        self._retriever = None
        return True

    def is_empty(self) -> bool:
        return not self.library.documents()

    def ensure_sample_library(self, progress: Progress | None = None) -> IngestReport | None:
        """Ingest the bundled sample library when the library is empty; None if not needed."""
        if not self.is_empty():
            return None
        return self.ingest([sample_corpus()], progress=progress)

    def sample_files(self) -> list[Path]:
        """The bundled sample library's files, smallest first: a first start that ingests
        them one by one has the quick ones answerable soonest (ui.startup)."""
        entries = [p for p in sample_corpus().iterdir() if not p.name.startswith(".")]
        return sorted(entries, key=lambda p: (p.is_dir(), p.stat().st_size, p.name))

    def ingest(
        self, paths: Sequence[str | Path], prune: bool = False, progress: Progress | None = None
    ) -> IngestReport:
        report = self.library.ingest([str(p) for p in paths], prune=prune, progress=progress)
        self._retriever = None  # the retriever caches per-library statistics
        return report

    def delete(self, doc_id: str) -> None:
        self.library.delete(doc_id)
        self._retriever = None

    def documents(self) -> list[DocumentInfo]:
        return self.library.documents()

    def document(self, doc_id: str) -> Document | None:
        return self.library.document(doc_id)

    def chunks(self, doc_id: str) -> list[Chunk]:
        return self.library.chunks(doc_id)

    # -- questions -------------------------------------------------------------------------
    def _bounded(self, text: str) -> str:
        limit = self.config.max_query_chars
        if len(text) > limit:
            from ingest.errors import TooLargeError

            raise TooLargeError(
                f"The question is {len(text):,} characters long; the limit is {limit:,}.",
                hint="ask a shorter question (ASKDOCS_MAX_QUERY_CHARS sets the limit)",
            )
        return text

    def search(self, query: str, k: int = 10, lang: str | None = None) -> Retrieval:
        self._bounded(query)
        return self.retriever.search(
            query, k=k, lang=lang if lang is not None else self.config.lang
        )

    def ask(
        self,
        question: str,
        conversation: Conversation | None = None,
        mode: str | None = None,
        on_token: Callable[[str], None] | None = None,
        k: int | None = None,
        lang: str | None = None,
        on_progress: Callable[[int], None] | None = None,
    ) -> Answer:
        """Answer `question`, resolving follow-ups against `conversation` (which is extended).

        LLM mode: `on_progress` sees how many characters the model has written, `on_token` only
        the sentences that passed the support check (assistant.llm), after it."""
        from assistant.conversation import Conversation

        conversation = conversation if conversation is not None else Conversation()
        query = conversation.resolve(self._bounded(question))
        topic = conversation.topic(query)
        retrieval = self.search(query, k=k or max(self.config.k, 5), lang=lang)
        mode = mode or self.config.mode

        def extractive() -> Answer:
            from assistant.conversation import on_subject
            from assistant.readable import with_antecedents

            chosen = self.extractive.answer(question, retrieval, query=query)
            chosen = with_antecedents(chosen, self._text_of)  # "It …" gets its antecedent
            return on_subject(chosen, topic)  # a follow-up the library has no answer to

        if mode == "llm":
            from assistant.llm import LLMAnswerer

            answerer = LLMAnswerer(self.config.llm, embedder=self.library.embedder)
            answer = answerer.answer(question, retrieval, extractive, on_token, query, on_progress)
        else:
            answer = extractive()
        conversation.add(answer)
        return answer

    def _text_of(self, doc_id: str) -> str | None:
        doc = self.library.document(doc_id)
        return doc.text if doc is not None else None

    @property
    def extractive(self) -> ExtractiveAnswerer:
        if self._extractive is None:
            from assistant.answer import ExtractiveAnswerer

            self._extractive = ExtractiveAnswerer(self.library)
        return self._extractive

    def with_config(self, **changes) -> Assistant:
        """Same library, model and retriever, other answer settings (the UI's sidebar)."""
        return Assistant(replace(self.config, **changes), self.library, self._retriever)

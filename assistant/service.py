"""`Assistant`: the one API the CLI and the Streamlit app both use.

It owns the open library (and so the embedding model) and the retriever; answers and
conversations are built by `assistant.answer`, `assistant.conversation` and `assistant.llm`.
Loading is lazy so that cheap commands stay cheap.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import cached_property
from pathlib import Path

from assistant.config import AssistantConfig
from assistant.records import Answer
from ingest.records import Chunk, Document
from ingest.sample import sample_corpus

Progress = Callable[[str, int, int], None]


class Assistant:
    def __init__(self, config: AssistantConfig | None = None, library=None) -> None:
        self.config = config or AssistantConfig()
        if library is not None:
            self.__dict__["library"] = library

    # -- library ---------------------------------------------------------------------------
    @cached_property
    def library(self):
        from index.library import Library

        return Library.open(self.config.library, create=True)

    @cached_property
    def retriever(self):
        from assistant.retrieve import Retriever

        return Retriever(self.library)

    def is_empty(self) -> bool:
        return not self.library.documents()

    def ensure_sample_library(self, progress: Progress | None = None):
        """Ingest the bundled sample library when the library is empty; None if not needed."""
        if not self.is_empty():
            return None
        return self.ingest([sample_corpus()], progress=progress)

    def ingest(
        self, paths: Sequence[str | Path], prune: bool = False, progress: Progress | None = None
    ):
        report = self.library.ingest([str(p) for p in paths], prune=prune, progress=progress)
        self.__dict__.pop("retriever", None)  # retriever caches per-library statistics
        return report

    def delete(self, doc_id: str) -> None:
        self.library.delete(doc_id)
        self.__dict__.pop("retriever", None)

    def documents(self) -> list:
        return self.library.documents()

    def document(self, doc_id: str) -> Document:
        return self.library.document(doc_id)

    def chunks(self, doc_id: str) -> list[Chunk]:
        return self.library.chunks(doc_id)

    # -- questions -------------------------------------------------------------------------
    def search(self, query: str, k: int = 10, lang: str | None = None):
        return self.retriever.search(
            query, k=k, lang=lang if lang is not None else self.config.lang
        )

    def ask(
        self,
        question: str,
        conversation=None,
        mode: str | None = None,
        on_token: Callable[[str], None] | None = None,
        k: int | None = None,
        lang: str | None = None,
    ) -> Answer:
        """Answer `question`, resolving follow-ups against `conversation` (which is extended)."""
        from assistant.conversation import Conversation

        conversation = conversation if conversation is not None else Conversation()
        query = conversation.resolve(question)
        retrieval = self.search(query, k=k or max(self.config.k, 5), lang=lang)
        mode = mode or self.config.mode

        def extractive() -> Answer:
            return self.extractive.answer(question, retrieval, query=query)

        if mode == "llm":
            from assistant.llm import LLMAnswerer

            answerer = LLMAnswerer(self.config.llm, embedder=self.library.embedder)
            answer = answerer.answer(
                question, retrieval, extractive, on_token=on_token, query=query
            )
        else:
            answer = extractive()
        conversation.add(answer)
        return answer

    @cached_property
    def extractive(self):
        from assistant.answer import ExtractiveAnswerer

        return ExtractiveAnswerer(self.library)

    def with_config(self, **changes) -> Assistant:
        """Same library and model, other answer settings (the UI's sidebar)."""
        other = Assistant(replace(self.config, **changes), library=self.library)
        if "retriever" in self.__dict__:
            other.__dict__["retriever"] = self.retriever
        return other

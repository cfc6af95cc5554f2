"""The assistant's one config object: the library it reads plus answer settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from index.config import LibraryConfig
from ingest import settings


@dataclass(frozen=True)
class LLMSettings:
    """An OpenAI-compatible endpoint; each field falls back to an ASKDOCS_LLM_* variable."""

    base_url: str = field(default_factory=settings.LLM_BASE_URL.get)
    model: str = field(default_factory=settings.LLM_MODEL.get)
    api_key: str = field(default_factory=settings.LLM_API_KEY.get)
    # whole answer; connecting gets a few seconds of it
    timeout: float = field(default_factory=settings.LLM_TIMEOUT.number)
    # Where base_url came from, as messages name it: the variable, or the app's sidebar field.
    origin: str = "ASKDOCS_LLM_BASE_URL"
    # The language of notices and warnings ("en" or "zh"); "" = the question's (the CLI). The
    # app sets its interface language, so a Chinese screen never shows an English notice.
    lang: str = ""

    @property
    def configured(self) -> bool:
        return bool(self.base_url)


@dataclass(frozen=True)
class AssistantConfig:
    library: LibraryConfig = field(default_factory=LibraryConfig)
    k: int = 5  # sources shown under an answer
    mode: str = "extractive"  # "extractive" | "llm"
    llm: LLMSettings = field(default_factory=LLMSettings)
    lang: str | None = None  # restrict sources to "zh" or "en"; None = all
    # the longest question or query taken (characters): the work of a search grows with it
    max_query_chars: int = field(default_factory=settings.MAX_QUERY_CHARS.integer)

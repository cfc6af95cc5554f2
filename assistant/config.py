"""The assistant's one config object: the library it reads plus answer settings."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from index.config import LibraryConfig


@dataclass(frozen=True)
class LLMSettings:
    """An OpenAI-compatible endpoint; each field falls back to an ASKDOCS_LLM_* variable."""

    base_url: str = field(default_factory=lambda: os.environ.get("ASKDOCS_LLM_BASE_URL", ""))
    model: str = field(default_factory=lambda: os.environ.get("ASKDOCS_LLM_MODEL", ""))
    api_key: str = field(default_factory=lambda: os.environ.get("ASKDOCS_LLM_API_KEY", ""))
    # whole answer; connecting gets a few seconds of it
    timeout: float = field(
        default_factory=lambda: float(os.environ.get("ASKDOCS_LLM_TIMEOUT", "") or 30.0)
    )
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
    max_query_chars: int = field(
        default_factory=lambda: int(os.environ.get("ASKDOCS_MAX_QUERY_CHARS", "") or 2000)
    )

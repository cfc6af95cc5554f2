"""Every setting askdocs reads from the environment, in one place (the README's "Settings"
table lists them). Each is read when asked for, not at import: a test or `askdocs serve`
(which hands its options to its worker through the environment) may set one at any time.
An empty variable counts as unset."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Setting:
    name: str
    default: str
    doc: str  # what it sets, as the README says

    def get(self) -> str:
        return os.environ.get(self.name, "").strip() or self.default

    def integer(self) -> int:
        return int(self.get())

    def number(self) -> float:
        return float(self.get())

    def flag(self) -> bool:
        return self.get().lower() in ("1", "true", "yes")

    def items(self) -> list[str]:
        """A comma-separated list, empty items left out."""
        return [v.strip() for v in self.get().split(",") if v.strip()]


HOME = Setting("ASKDOCS_HOME", "", "the data directory (default: the user data directory)")
STORE = Setting("ASKDOCS_STORE", "", "a postgresql:// URL: libraries in PostgreSQL")
LIBRARY = Setting("ASKDOCS_LIBRARY", "default", "the library `askdocs ui` / `serve` open")
MODEL = Setting("ASKDOCS_MODEL", "", "the embedding model `ui` / `serve` use")
THREADS = Setting("ASKDOCS_THREADS", "", "cores the model may use (default: all this process may)")
ORT_SPIN = Setting("ASKDOCS_ORT_SPIN", "1", "0: ONNX Runtime's workers sleep between ops")
PASSAGE_PATH = Setting(
    "ASKDOCS_PASSAGE_PATH",
    "auto",
    "how ingest embeds passages: auto, torch-bf16, torch-fp32, onnx-int8",
)
MAX_CHUNKS = Setting("ASKDOCS_MAX_CHUNKS", "", "chunks indexed per document (default 20,000)")
MAX_QUERY_CHARS = Setting("ASKDOCS_MAX_QUERY_CHARS", "2000", "the longest question taken")
LLM_BASE_URL = Setting("ASKDOCS_LLM_BASE_URL", "", "an OpenAI-compatible endpoint (LLM mode)")
LLM_MODEL = Setting("ASKDOCS_LLM_MODEL", "", "the model name the endpoint knows")
LLM_API_KEY = Setting("ASKDOCS_LLM_API_KEY", "", "a bearer token for the endpoint")
LLM_TIMEOUT = Setting("ASKDOCS_LLM_TIMEOUT", "30", "seconds for a whole LLM answer")
API_TOKEN = Setting("ASKDOCS_API_TOKEN", "", "`askdocs serve`: the bearer token it requires")
# Set by `askdocs serve` for its worker process (from --host, --allowed-host, --cors-origin).
BOUND_HOST = Setting("ASKDOCS_BOUND_HOST", "127.0.0.1", "`serve`: the address it listens on")
ALLOWED_HOSTS = Setting("ASKDOCS_ALLOWED_HOSTS", "", "`serve`: more Host names it answers")
CORS = Setting("ASKDOCS_CORS", "", "`serve`: origins allowed cross-site")
# Hugging Face's own switch, read to load a model by name without the network.
HF_OFFLINE = Setting("HF_HUB_OFFLINE", "0", "1: never download a model")

SETTINGS = (
    HOME,
    STORE,
    LIBRARY,
    MODEL,
    THREADS,
    ORT_SPIN,
    PASSAGE_PATH,
    MAX_CHUNKS,
    MAX_QUERY_CHARS,
    LLM_BASE_URL,
    LLM_MODEL,
    LLM_API_KEY,
    LLM_TIMEOUT,
    API_TOKEN,
    BOUND_HOST,
    ALLOWED_HOSTS,
    CORS,
    HF_OFFLINE,
)

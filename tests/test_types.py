"""The type checker `make test` runs holds both stores to one protocol: a store that lacks a
method, or a writer whose method takes other arguments, is an error before it is a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

MISMATCHES = """
from index.protocol import Generation, LexicalSearch


class NoLexical:  # a store's generation without BM25
    manifest = None
    store = None
    key = 0
    where = ""

    def sizes(self) -> dict[str, int]:
        return {}

    def vectors(self, lang: str) -> None:
        return None

    def close(self) -> None:
        pass


class WrongSearch:  # BM25 that takes a string where both stores take tokens
    def search(self, query: str, k: int) -> list[tuple[int, float]]:
        return []


gen: Generation = NoLexical()
lex: LexicalSearch = WrongSearch()
"""


def _mypy(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_type_checker_rejects_a_store_that_does_not_match_the_protocol(
    tmp_path: Path,
) -> None:
    pytest.importorskip("mypy")
    bad = tmp_path / "bad_store.py"
    bad.write_text(MISMATCHES)
    out = _mypy("--config-file", str(REPO / "pyproject.toml"), str(bad)).stdout
    assert '"NoLexical" is missing following "Generation" protocol member' in out
    assert '(expression has type "WrongSearch", variable has type "LexicalSearch")' in out
    assert "def search(self, query: str, k: int)" in out  # the argument that differs

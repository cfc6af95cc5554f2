"""LLM mode's promise: text the support check refuses never reaches stdout or the API.

Two real endpoints on 127.0.0.1: a scripted OpenAI-compatible server that streams planted
answers (invented sentences beside a supported one, so the outcome is known), and the real
llama.cpp server of the `llm` tests (whose refused sentences are read from what it sent).
Each goes through the CLI's `ask --mode llm`, `chat` and the API's server-sent events over a
library the real model built; what people would see is searched for every refused sentence.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from assistant.endpoint import base_url
from ingest.errors import LLMError
from tests.helpers import link_model

DOCS = {
    "functools.en.md": "# functools\n\n## lru_cache\n\n"
    "The lru_cache decorator memoizes a function, caching up to maxsize recent calls. "
    "Call cache_clear() on the decorated function to empty its cache.\n\n"
    "## partial\n\nThe partial function freezes some arguments of a function.\n",
    "tea.en.md": "# Tea\n\nGreen tea is steeped at 80 degrees for two minutes.\n",
}
QUESTION = "How do I cache a function's results?"
SUPPORTED = "The lru_cache decorator memoizes a function, caching up to maxsize recent calls [1]."
INVENTED = (  # (the "lru_cache.setrlimit()" passes the support check: see the report)
    "The Eiffel Tower was finished in 1889 and is painted every seven years [1].",
    "Bananas grow on tall herbs in the tropics and ripen after picking [1].",
)
# Two of three invented: the bar refuses the whole answer. One of four: it is left out.
REFUSED = " ".join([SUPPORTED, *INVENTED])
PARTLY = " ".join([SUPPORTED, "Call cache_clear() on the decorated function to empty its cache [1].",
                   "The partial function freezes some arguments of a function [1].", INVENTED[0]])  # fmt: skip


class _Scripted(BaseHTTPRequestHandler):
    """OpenAI chat completions, streamed word by word, from `server.answers` in turn."""

    def log_message(self, *args: object) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = json.dumps({"data": [{"id": "scripted"}]}).encode()
        self.send_response(200 if self.path == "/v1/models" else 404)
        self.send_header("content-type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("content-length", 0)))
        if self.path != "/v1/chat/completions":
            self.send_response(404)
            self.end_headers()
            return
        srv = self.server
        text = srv.answers[min(srv.calls, len(srv.answers) - 1)]  # type: ignore[attr-defined]
        srv.calls += 1  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        for word in text.split(" "):
            delta = {"choices": [{"index": 0, "delta": {"content": word + " "}}]}
            self.wfile.write(f"data: {json.dumps(delta)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")


@pytest.fixture
def scripted() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    server.answers, server.calls = [REFUSED], 0  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def lib_home(tmp_path_factory: pytest.TempPathFactory, e5, e5_dir: Path) -> Path:
    """An ASKDOCS_HOME whose default library the real model built from DOCS."""
    from index.config import LibraryConfig
    from index.library import Library

    root = tmp_path_factory.mktemp("promise")
    (root / "docs").mkdir()
    for name, text in DOCS.items():
        (root / "docs" / name).write_text(text, encoding="utf-8")
    home = link_model(root / "home", e5_dir)
    Library.open(LibraryConfig(home=home), e5, create=True).ingest([root / "docs"])
    return home


def _use(monkeypatch: pytest.MonkeyPatch, home: Path, url: str, model: str = "scripted") -> None:
    monkeypatch.setenv("ASKDOCS_HOME", str(home))
    monkeypatch.setenv("ASKDOCS_LLM_BASE_URL", url)
    monkeypatch.setenv("ASKDOCS_LLM_MODEL", model)
    monkeypatch.setenv("ASKDOCS_LLM_TIMEOUT", "240")


def _leaked(shown: str, refused: list[str]) -> list[str]:
    """The refused sentences (without their markers) that appear in `shown`."""
    import re

    flat = " ".join(shown.split())
    return [s for s in refused if " ".join(re.sub(r"\s*\[\d+\]", "", s).split()) in flat]


def _sse(text: str) -> list[tuple[str, dict]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines["event"], json.loads(lines["data"])))
    return out


def test_base_url_with_or_without_v1() -> None:
    for raw in ("http://127.0.0.1:8080", "http://127.0.0.1:8080/", "http://127.0.0.1:8080/v1",
                "http://127.0.0.1:8080/v1/", "http://127.0.0.1:8080/v1/chat/completions"):  # fmt: skip
        assert base_url(raw) == "http://127.0.0.1:8080/v1", raw
    assert base_url("http://localhost:11434") == "http://localhost:11434/v1"  # Ollama
    assert base_url("https://host/openai/v1") == "https://host/openai/v1"  # a proxy's own path
    with pytest.raises(LLMError):
        base_url("localhost:8080")


@pytest.mark.model
def test_refused_sentences_never_reach_stdout_or_the_api(
    scripted, lib_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from fastapi.testclient import TestClient

    from assistant.config import AssistantConfig, LLMSettings
    from index.config import LibraryConfig
    from ui.api import create_app
    from ui.cli import main
    from ui.serving import Served

    port = scripted.server_address[1]
    _use(monkeypatch, lib_home, f"http://127.0.0.1:{port}")  # no /v1: accepted
    # 1. `ask --mode llm`: the whole answer refused, the extractive one shown with the notice.
    assert main(["ask", QUESTION, "--mode", "llm"]) == 0
    out = capsys.readouterr().out
    assert "not supported by the sources (1 of 3 sentences)" in out, out
    assert _leaked(out, list(INVENTED)) == [] and "maxsize" in out
    # 2. one invented sentence of four: the answer is the model's, that sentence left out.
    scripted.answers, scripted.calls = [PARTLY], 0
    assert main(["ask", QUESTION, "--mode", "llm"]) == 0
    out = capsys.readouterr().out
    assert "cache_clear()" in out and "not shown" in out, out
    assert _leaked(out, [INVENTED[0]]) == []
    # 3. `chat`: two turns, both refused.
    scripted.answers, scripted.calls = [REFUSED], 0
    lines = iter([QUESTION, "and how do I limit its size?"])

    def fake_input(_prompt: str = "") -> str:
        try:
            return next(lines)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr("builtins.input", fake_input)
    assert main(["chat", "--mode", "llm"]) == 0
    out = capsys.readouterr().out
    assert scripted.calls == 2 and out.count("not supported by the sources") == 2, out
    assert _leaked(out, list(INVENTED)) == []
    # 4. the API's stream: no token event, no answer field carries a refused sentence.
    from index.model.embedder import load_embedder

    config = AssistantConfig(library=LibraryConfig(home=lib_home), llm=LLMSettings())
    served = Served(config, embedder=load_embedder(config.library))
    for answers in ([REFUSED], [PARTLY]):
        scripted.answers, scripted.calls = answers, 0
        with TestClient(create_app(served), base_url="http://127.0.0.1") as client:
            body = {"question": QUESTION, "stream": True, "mode": "llm"}
            with client.stream("POST", "/ask", json=body) as r:
                raw = r.read().decode()
        events = _sse(raw)
        assert events[-1][0] == "answer" and scripted.calls == 1
        assert _leaked(raw, list(INVENTED)) == [], raw
        tokens = [d["text"] for name, d in events if name == "token"]
        if answers == [REFUSED]:
            assert tokens == [] and events[-1][1]["fallback"]
        else:  # the shown sentences, each once, after the check
            assert len(tokens) == 3 and events[-1][1]["mode"] == "llm", tokens


@pytest.mark.model
@pytest.mark.llm
def test_real_llama_server_refused_sentences_stay_hidden(
    llm_server, lib_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """SmolLM2 mostly writes what the sources do not say: every sentence it wrote that the
    check refused (read from the raw text it sent) is absent from stdout and from the API."""
    from fastapi.testclient import TestClient

    import assistant.llm
    from assistant.config import AssistantConfig, LLMSettings
    from assistant.llm import LLMAnswerer, collapse, parse_citations
    from index.config import LibraryConfig
    from index.model.embedder import load_embedder
    from ui.api import create_app
    from ui.cli import main
    from ui.serving import Served

    monkeypatch.setattr("assistant.endpoint.MAX_TOKENS", 120)
    seen: list[tuple[str, object]] = []  # (raw model text, the answer given)
    real_stream, real_answer = assistant.llm.stream_chat, LLMAnswerer.answer

    def stream(*args, **kwargs):  # noqa: ANN002, ANN003
        seen.append((real_stream(*args, **kwargs), None))
        return seen[-1][0]

    def answer(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        got = real_answer(self, *args, **kwargs)
        seen[-1] = (seen[-1][0], got)
        return got

    monkeypatch.setattr(assistant.llm, "stream_chat", stream)
    monkeypatch.setattr(LLMAnswerer, "answer", answer)

    def refused() -> list[str]:
        text, given = seen[-1]
        shown = {s.text for s in given.sentences}
        claims = collapse(parse_citations(text, 5)[0])
        library = " ".join(" ".join(t.split()) for t in DOCS.values())
        return [  # a refused sentence that copies the library is the library's own words
            c.text
            for c in claims
            if c.text not in shown and len(c.text.split()) >= 3 and c.text not in library
        ]

    # The base URL without /v1, as llama.cpp prints its address.
    _use(monkeypatch, lib_home, llm_server.base_url.removesuffix("/v1"), llm_server.model)
    total = 0
    for question in (QUESTION, "What does cache_clear() do?"):
        assert main(["ask", question, "--mode", "llm"]) == 0
        out = capsys.readouterr().out
        assert seen and seen[-1][1] is not None, "the server was not asked"
        assert _leaked(out, refused()) == [], out
        total += len(refused())
    config = AssistantConfig(library=LibraryConfig(home=lib_home), llm=LLMSettings())
    served = Served(config, embedder=load_embedder(config.library))
    with TestClient(create_app(served), base_url="http://127.0.0.1") as client:
        body = {"question": QUESTION, "stream": True, "mode": "llm"}
        with client.stream("POST", "/ask", json=body) as r:
            raw = r.read().decode()
    assert _sse(raw)[-1][0] == "answer"
    assert _leaked(raw, refused()) == [], raw
    total += len(refused())
    print(f"refused model sentences kept out of stdout/API: {total}")

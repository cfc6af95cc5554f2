"""Sentence splitting and extractive answers: exact offsets, citations, notices, refusals.

Fast tests use hand-made Hits over real corpus text and the FakeEmbedder (identifier and word
overlap still pick the answer); the `model` tests run the real multilingual model so that a
Chinese question finds an English sentence by meaning alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assistant.answer import candidates, choose, compose_extractive, refusal
from assistant.records import Hit
from assistant.sentences import display, split
from ingest.records import Chunk
from tests.helpers import real_library, retrieval

CORPUS = Path(__file__).resolve().parent.parent / "corpus"

EN_DOC = (
    "## Booleans\n"
    "Booleans in the C API are integers underneath. PyBool_FromLong(0) would return Py_False.\n"
    "PyBool_FromLong(1) returns Py_True, e.g. for flags. Version 3.8 kept this behaviour!\n\n"
    "## Lists\n"
    "- `list.append(x)` adds an item to the end of the list.\n"
    "- `list.sort()` sorts the items of the list in place.\n\n"
    "```\n>>> xs = [3, 1]\n>>> xs.sort()\n```\n"
    "Lists are mutable sequences. Tuples are immutable sequences, so they can be dict keys.\n"
)
ZH_DOC = (
    "### 布尔值\n"
    "* 布尔值\n"
    "    > 布尔值和布尔代数的表示完全一致，一个布尔值只有 True、False 两种值，要么是\n"
    "    > True，要么是 False。布尔值可以用 and、or 和 not 运算！\n"
    "* 空值\n"
    "    > 空值是 Python 里一个特殊的值，用 None 表示。None 不能理解为 0，因为 0 是有\n"
    "    > 意义的，而 None 是一个特殊的空值。\n"
)


def hits_over(text: str, source: str, windows: list[tuple[int, int]], lang: str) -> tuple[Hit, ...]:
    out = []
    for rank, (a, b) in enumerate(windows, start=1):
        chunk = Chunk(Chunk.make_id(source, a, b), source, source, a, b, text[a:b], "H", lang, "")
        out.append(Hit(chunk, 1.0 / rank, rank))
    return tuple(out)


def texts_of(*docs: tuple[str, str]):
    table = dict(docs)
    return lambda doc_id: table[doc_id]


# -- sentences ------------------------------------------------------------------------------


def test_english_sentences_respect_identifiers_abbreviations_and_versions():
    spans = [EN_DOC[s.start : s.end] for s in split(EN_DOC) if s.kind == "text"]
    assert spans[:4] == [
        "Booleans in the C API are integers underneath.",
        "PyBool_FromLong(0) would return Py_False.",
        "PyBool_FromLong(1) returns Py_True, e.g. for flags.",
        "Version 3.8 kept this behaviour!",
    ]
    assert "`list.append(x)` adds an item to the end of the list." in spans  # bullet dropped
    kinds = {EN_DOC[s.start : s.end]: s.kind for s in split(EN_DOC)}
    assert kinds["Booleans"] == "heading"
    assert kinds["```\n>>> xs = [3, 1]\n>>> xs.sort()\n```"] == "code"


def test_chinese_sentences_join_wrapped_quote_lines():
    spans = split(ZH_DOC)
    raw = [ZH_DOC[s.start : s.end] for s in spans if s.kind == "text"]
    assert raw[0] == "布尔值"
    assert raw[1].startswith("布尔值和布尔代数") and raw[1].endswith("要么是 False。")
    assert "\n    > True" in raw[1]  # the exact span crosses the wrapped line
    assert display(raw[1]) == (
        "布尔值和布尔代数的表示完全一致，一个布尔值只有 True、False 两种值，要么是 True，要么是 False。"
    )
    assert raw[2] == "布尔值可以用 and、or 和 not 运算！"
    assert display(raw[5]) == "None 不能理解为 0，因为 0 是有意义的，而 None 是一个特殊的空值。"


def test_split_of_a_window_gives_document_offsets():
    doc = (CORPUS / "python-docs-summaries.en.txt").read_text(encoding="utf-8")
    lo, hi = 5000, 6000
    spans = split(doc, lo, hi)
    assert spans and all(lo <= s.start < s.end <= hi for s in spans)
    assert all(doc[s.start : s.end].strip() == doc[s.start : s.end] for s in spans)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="ab 。.!?\n>#*-`1你好", max_size=120))
def test_spans_are_ordered_trimmed_and_inside(text):
    spans = split(text)
    for s in spans:
        assert 0 <= s.start < s.end <= len(text)
        assert text[s.start : s.end] == text[s.start : s.end].strip()
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:], strict=False))


# -- extractive answers ----------------------------------------------------------------------


def test_answer_cites_exact_spans_in_order_of_use():
    hits = hits_over(EN_DOC, "bool.md", [(0, 200), (150, len(EN_DOC))], "en")
    answer = compose_extractive(
        "What does PyBool_FromLong(0) return?",
        retrieval("What does PyBool_FromLong(0) return?", hits),
        texts_of(("bool.md", EN_DOC)),
    )
    assert answer.answered and 1 <= len(answer.sentences) <= 5
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    assert [s.citations for s in answer.sentences] == [(c.n,) for c in answer.citations]
    for c in answer.citations:
        assert c.text == EN_DOC[c.start : c.end] and c.source == "bool.md"
    assert "PyBool_FromLong(0) would return Py_False." in [c.text for c in answer.citations]
    spans = [(c.start, c.end) for c in answer.citations]
    assert len(set(spans)) == len(spans) and spans == sorted(spans)  # no repeats, reading order
    assert not answer.notice  # same language


def test_sentence_cut_by_chunk_boundary_is_made_whole():
    at = EN_DOC.index("Tuples are immutable")
    hits = hits_over(EN_DOC, "bool.md", [(at + 10, len(EN_DOC))], "en")
    q = "Why can tuples be dict keys?"
    with_text = compose_extractive(q, retrieval(q, hits), texts_of(("bool.md", EN_DOC)))
    assert with_text.citations[0].text.startswith("Tuples are immutable sequences")
    assert (
        with_text.citations[0].text
        == EN_DOC[with_text.citations[0].start : with_text.citations[0].end]
    )
    chunk_only = compose_extractive(
        q, retrieval(q, hits)
    )  # no document text: chunk offsets still exact
    for c in chunk_only.citations:
        assert c.text == EN_DOC[c.start : c.end]


def test_chinese_question_over_english_page_gets_notice_and_english_sentence():
    doc = (CORPUS / "python-docs-summaries.en.txt").read_text(encoding="utf-8")
    at = doc.index("PyBool_FromLong(0) would return Py_False")
    hits = hits_over(doc, "en.txt", [(at - 300, at + 200), (1000, 1400)], "en")
    q = "PyBool_FromLong(0) 返回什么？"
    answer = compose_extractive(q, retrieval(q, hits), texts_of(("en.txt", doc)))
    assert answer.notice == "以下内容来自英文文档。"
    first = next(c for c in answer.citations if "PyBool_FromLong(0)" in c.text)
    assert first.text == doc[first.start : first.end]
    assert any("Py_False" in s.text for s in answer.sentences)
    assert answer.text.startswith("以下内容来自英文文档。\n")


def test_english_question_over_chinese_notes_says_so():
    hits = hits_over(ZH_DOC, "zh.md", [(0, len(ZH_DOC))], "zh")
    q = "What is None in Python?"
    answer = compose_extractive(q, retrieval(q, hits), texts_of(("zh.md", ZH_DOC)))
    assert answer.notice == "The following comes from the Chinese documents."
    assert all(c.text == ZH_DOC[c.start : c.end] for c in answer.citations)
    assert "布尔值" not in [s.text for s in answer.sentences]  # bare list labels are not answers


def test_refusal_lists_leads_with_citations():
    hits = hits_over(EN_DOC, "bool.md", [(0, 180), (190, 400)], "en")
    q = "红烧肉怎么做才不油腻？"
    answer = compose_extractive(
        q, retrieval(q, hits, answerable=False), texts_of(("bool.md", EN_DOC))
    )
    assert not answer.answered
    assert answer.sentences[0].text.startswith("文档库中没有找到这个问题的答案。")
    assert [c.n for c in answer.citations] == [1, 2]
    for c, hit in zip(answer.citations, hits, strict=True):
        assert (c.start, c.end, c.text) == (hit.chunk.start, hit.chunk.end, EN_DOC[c.start : c.end])
    assert [s.citations for s in answer.sentences[1:]] == [(1,), (2,)]
    assert [s.text for s in answer.sentences] == [
        "文档库中没有找到这个问题的答案。最接近的章节：",
        "H",
        "H",
    ]
    english = refusal("How do I bake bread?", "How do I bake bread?", ())
    assert english.text == "The library does not cover this question." and not english.citations


NAMES_DOC = (
    "# Builtins\n"
    "['ArithmeticError', 'AssertionError', 'AttributeError', 'BaseException', "
    "'BlockingIOError', 'BrokenPipeError']\n\n"
    "abs() all() any() ascii() bin() bool() breakpoint() bytearray()\n\n"
    "* CPython\n* IPython\n* PyPy\n* Jython\n* IronPython\n\n"
    "# Files\n"
    "Use open() to read a file line by line; close it when done.\n"
)


def test_refusal_skips_leads_that_only_list_names():
    """Sections that are lists of names (exception classes, builtins, interpreters) are no
    leads; a section with a sentence is, and each lead reads as its heading path."""
    cut = NAMES_DOC.index("abs()"), NAMES_DOC.index("* CPython"), NAMES_DOC.index("# Files")
    windows = [(10, cut[0]), (cut[0], cut[1]), (cut[1], cut[2]), (cut[2], len(NAMES_DOC))]
    hits = hits_over(NAMES_DOC, "names.md", windows, "en")
    q = "How do I bake bread?"
    answer = refusal(q, q, hits, texts_of(("names.md", NAMES_DOC)))
    assert [s.text for s in answer.sentences] == [
        "The library does not cover this question. The nearest sections:",
        "H",
    ]
    assert [(c.n, c.start) for c in answer.citations] == [(1, cut[2])]
    only_names = refusal(q, q, hits[:3], texts_of(("names.md", NAMES_DOC)))
    assert only_names.text == "The library does not cover this question."
    assert not only_names.citations


def test_json_shape_of_an_answer():
    hits = hits_over(EN_DOC, "bool.md", [(0, 200)], "en")
    q = "What does PyBool_FromLong(1) return?"
    data = compose_extractive(q, retrieval(q, hits), texts_of(("bool.md", EN_DOC))).to_json()
    assert {"question", "answered", "answer", "citations", "hits", "query"} <= set(data)
    assert {"n", "source", "start", "end", "text"} <= set(data["citations"][0])
    assert data["hits"][0]["rank"] == 1 and data["query"] == q


# -- the real model, a real library, the Assistant and the CLI ------------------------------

LIB_EN = """# uuid — UUID objects

## Versions

uuid1() generates a UUID from a host ID, sequence number, and the current time.
uuid4() generates a completely random UUID. Use uuid4() when you need an identifier
that reveals nothing about the machine.

## Command line

The uuid module can be run as a script to print a new UUID.

# os — file operations

os.lseek(fd, pos, whence) sets the current position of file descriptor fd.
SEEK_END makes the position relative to the end of the file.

# json — encoding

json.dumps() serialises an object to a JSON formatted string; indent pretty-prints it.
"""

LIB_ZH = """# 函数

## 递归函数

在函数内部调用自身的函数叫递归函数。递归调用的次数过多，会导致栈溢出。
解决递归调用栈溢出的方法是尾递归优化，
但 Python 解释器没有做尾递归优化。

## 默认参数

定义默认参数要牢记一点：默认参数必须指向不变对象！

# 列表

列表是一种有序的集合，可以随时添加和删除其中的元素。
"""


@pytest.fixture(scope="module")
def library(tmp_path_factory, e5, e5_dir):
    root = tmp_path_factory.mktemp("answers")
    lib = real_library(root, e5, e5_dir, "qa", {"stdlib.en.md": LIB_EN, "notes.zh.md": LIB_ZH})
    return lib


@pytest.fixture(scope="module")
def assistant(library):
    from assistant.config import AssistantConfig
    from assistant.service import Assistant

    return Assistant(AssistantConfig(library=library.config), library=library)


def exact(answer, library) -> None:
    assert answer.citations
    for c in answer.citations:
        assert c.text == library.document(c.doc_id).text[c.start : c.end]


@pytest.mark.model
def test_chinese_question_answered_from_english_page(assistant, library):
    answer = assistant.ask("哪个函数可以生成完全随机的 UUID？")
    assert answer.answered and answer.notice == "以下内容来自英文文档。"
    exact(answer, library)
    first = answer.citations[answer.sentences[0].citations[0] - 1]
    assert "uuid4() generates a completely random UUID." in [c.text for c in answer.citations]
    assert first.source.endswith("stdlib.en.md")
    assert answer.text.startswith("以下内容来自英文文档。\n")


@pytest.mark.model
def test_english_question_answered_from_chinese_notes(assistant, library):
    answer = assistant.ask("What must default arguments point to?")
    assert answer.answered and answer.notice == "The following comes from the Chinese documents."
    exact(answer, library)
    assert any("默认参数必须指向不变对象" in c.text for c in answer.citations)


@pytest.mark.model
def test_off_topic_question_gets_refusal_with_leads(assistant, library):
    answer = assistant.ask("红烧肉怎么做才不油腻？")
    assert not answer.answered
    assert answer.text.startswith("文档库中没有找到这个问题的答案。")
    exact(answer, library)  # the leads are cited too
    assert all(s.citations for s in answer.sentences[1:])


@pytest.mark.model
def test_follow_up_is_resolved_and_answered(assistant, library):
    from assistant.conversation import Conversation

    conv = Conversation()
    assistant.ask("什么是递归函数？", conversation=conv)
    answer = assistant.ask("它会导致什么问题？", conversation=conv)
    # the pronoun is resolved to the first question's subject, not the questions concatenated
    assert answer.query.startswith("递归函数") and "它" not in answer.query
    assert [t.query for t in conv.turns] == ["什么是递归函数？", answer.query]
    exact(answer, library)
    assert any("栈溢出" in c.text for c in answer.citations)


@pytest.mark.model
def test_cli_ask_json_and_conversation_file(library, monkeypatch, capsys, tmp_path):
    import json

    from ui.cli import main

    monkeypatch.setenv("ASKDOCS_HOME", str(library.config.home))
    conv = tmp_path / "conv.json"
    assert (
        main(["ask", "--library", "qa", "--json", "--conversation", str(conv), "什么是递归函数？"])
        == 0
    )
    first = json.loads(capsys.readouterr().out)
    assert (
        main(
            ["ask", "--library", "qa", "--json", "--conversation", str(conv), "它会导致什么问题？"]
        )
        == 0
    )
    data = json.loads(capsys.readouterr().out)
    assert {"question", "answered", "answer", "citations", "hits", "query"} <= set(data)
    assert first["answered"] and data["query"].startswith("递归函数")
    for c in data["citations"]:
        assert {"n", "source", "start", "end", "text"} <= set(c)
        assert c["text"] == library.document(c["doc_id"]).text[c["start"] : c["end"]]
    assert len(json.loads(conv.read_text(encoding="utf-8"))["turns"]) == 2


@pytest.mark.model
def test_cli_chat_commands(library, monkeypatch, capsys, tmp_path):
    import io

    from assistant.conversation import Conversation
    from ui.cli import main

    monkeypatch.setenv("ASKDOCS_HOME", str(library.config.home))
    saved = tmp_path / "chat.json"
    lines = [
        "哪个函数可以生成完全随机的 UUID？",
        "/sources",
        "/open 1",
        "/open 9",
        "它在哪个模块里？",
    ]
    lines += [f"/save {tmp_path}", f"/save {saved}", "/clear", "/sources", "/quit"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    assert main(["chat", "--library", "qa"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert out.startswith("Loading the library and the model… ready (")  # said before loading
    assert "以下内容来自英文文档。" in out and "[1] " in out
    assert "line " in out and "characters " in out and "«" in out  # /open shows the marked span
    assert "usage: /open N" in out
    assert "(searched: " in out  # the follow-up was resolved
    turns = Conversation.load(saved).turns
    assert len(turns) == 2 and "它" not in turns[1].query and turns[1].query != turns[1].question
    assert "(no sources yet)" in out  # after /clear
    # /save to a folder said so (it was an IsADirectoryError), and the chat went on, kept
    assert f"could not be saved to {tmp_path}" in captured.err


class _Spotlight:
    """Embeds texts mentioning a marked word near the query vector, all others far from it."""

    name = "spotlight"
    dim = 2

    def __init__(self, word: str) -> None:
        self.word = word
        self.calls: list[int] = []

    def embed(self, texts, kind="passage"):
        import numpy as np

        self.calls.append(len(texts))
        near = [kind == "query" or self.word in t for t in texts]
        return np.array([[1.0, 0.0] if n else [0.0, 1.0] for n in near], dtype=np.float32)


def test_embedder_decides_only_when_words_say_little():
    doc = (
        "Alpha beta gamma delta epsilon. Zeta eta theta iota kappa.\n\n"
        "Lambda mu nu xi omicron. Pi rho sigma tau upsilon carrot.\n"
    )
    hits = hits_over(doc, "g.txt", [(0, 58), (60, len(doc))], "en")
    spot = _Spotlight("carrot")

    def similarity(texts):
        return spot.embed(texts) @ spot.embed(["q"], kind="query")[0]

    q = "什么是胡萝卜？"  # shares no word with any sentence
    answer = compose_extractive(q, retrieval(q, hits), texts_of(("g.txt", doc)),
                                similarity=similarity)  # fmt: skip
    assert spot.calls == [4, 1]  # the (few) best candidates in one batch, then the query
    assert answer.citations[0].text == "Pi rho sigma tau upsilon carrot."
    spot.calls.clear()
    q = "Which letter follows lambda and mu?"  # shared words: no embedding needed
    answer = compose_extractive(q, retrieval(q, hits), texts_of(("g.txt", doc)),
                                similarity=similarity)  # fmt: skip
    assert spot.calls == [] and answer.citations[0].text == "Lambda mu nu xi omicron."


@pytest.mark.parametrize(
    ("text", "heading", "first"),
    [
        ("Cleaning\nNever use soap on the pot. Rinse it.\n", "Cleaning", "Never use soap on the pot."),
        ("Water temperature\n\nBrew green tea at 80 degrees.\n", "Water temperature",
         "Brew green tea at 80 degrees."),
        ("Brewing Black Tea\nBlack tea is fully oxidised.\n", "Brewing Black Tea",
         "Black tea is fully oxidised."),
    ],
)  # fmt: skip
def test_plain_text_headings_are_never_glued_to_the_next_sentence(text, heading, first):
    from assistant.sentences import split

    spans = split(text)
    assert (spans[0].kind, text[spans[0].start : spans[0].end]) == ("heading", heading)
    assert text[spans[1].start : spans[1].end] == first


def test_a_wrapped_line_or_a_label_with_a_colon_is_not_a_heading():
    from assistant.sentences import split

    text = "This line wraps\nonto the next one. And ends.\n\nThe main functions are:\nBisect it.\n"
    assert "heading" not in [s.kind for s in split(text)]


def test_stray_escapes_leave_the_displayed_text_not_the_offsets():
    from assistant.sentences import display, split

    text = "> \\ Python 标准的解释器没有针对尾递归做优化。 \\\n\nUse \\*args and \\**kw, not **bold**.\n"
    spans = split(text)
    assert text[spans[0].start : spans[0].end].startswith("\\ Python")  # offsets as stored
    assert (
        display(text[spans[0].start : spans[0].end]) == "Python 标准的解释器没有针对尾递归做优化。"
    )
    assert display(text[spans[-1].start : spans[-1].end]) == "Use *args and **kw, not bold."
    assert display("print('a\\n')") == "print('a\\n')"  # an escape in code stays


def test_the_question_language_leads_when_it_scores_close_enough():
    """An English question is answered from English text first; a Chinese sentence that
    scores higher follows it, and leads only when the English one scores far below it."""
    zh = hits_over(ZH_DOC, "zh.md", [(0, len(ZH_DOC))], "zh")
    en = hits_over(EN_DOC, "bool.md", [(0, len(EN_DOC))], "en")
    cands = (
        candidates(zh, texts_of(("zh.md", ZH_DOC)))[:1]
        + candidates(en, texts_of(("bool.md", EN_DOC)))[:1]
    )
    assert [c.lang for c in cands] == ["zh", "en"]
    probs = np.array([0.6, 0.4])
    assert [c.lang for c in choose(cands, probs, 3)] == ["zh", "en"]  # no language given
    assert [c.lang for c in choose(cands, probs, 3, "en", 0.5)] == ["en", "zh"]
    assert [c.lang for c in choose(cands, probs, 3, "zh", 0.5)] == ["zh", "en"]
    far = np.array([0.9, 0.1])  # the English candidate scores below half the best
    assert [c.lang for c in choose(cands, far, 3, "en", 0.5)] == ["zh", "en"]

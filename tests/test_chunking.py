"""Chunking: exact offsets, heading paths, sections, sentence ends, code blocks, size bounds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest.chunking import ChunkSettings, chunk_document, first_sentence
from ingest.errors import InputError
from ingest.loading import load_paths
from ingest.records import Chunk, Document, content_hash

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
RULE_LINE = re.compile(r"^[ \t]*-{3,}[ \t]*$", re.M)
FENCED = re.compile(r"^([ \t]*)```.*?^[ \t]*```[^\n]*$", re.M | re.S)


@pytest.fixture(scope="session")
def corpus() -> dict[str, Document]:
    return {Path(d.source).name: d for d in load_paths([CORPUS]).documents}


@pytest.fixture(scope="session")
def corpus_chunks(corpus) -> dict[str, list[Chunk]]:
    return {name: chunk_document(doc, ChunkSettings()) for name, doc in corpus.items()}


def _fenced(text: str) -> list[tuple[int, int]]:
    """Spans of fenced code blocks, from the first backtick to the last."""
    return [
        (m.start() + len(m.group(1)), m.start() + len(m.group(0).rstrip()))
        for m in FENCED.finditer(text)
    ]


def _doc(text: str, fmt: str = "markdown") -> Document:
    return Document(content_hash(text), "t.md", "t", text, "en", 0.0, format=fmt)


def _check_invariants(doc: Document, chunks: list[Chunk], cfg: ChunkSettings) -> None:
    """Exact spans, no white space at the edges, within the size, in order, covering the text."""
    covered = bytearray(len(doc.text))
    last_start = last_end = -1
    for c in chunks:
        assert c.text == doc.text[c.start : c.end]
        assert c.text and c.text == c.text.strip()
        assert len(c.text) <= cfg.size
        assert c.start > last_start and c.end > last_end
        assert c.chunk_id == Chunk.make_id(doc.doc_id, c.start, c.end)
        assert c.hash == content_hash(c.text) and c.lang in ("zh", "en", "other")
        last_start, last_end = c.start, c.end
        covered[c.start : c.end] = b"\x01" * (c.end - c.start)
    rules = {i for m in RULE_LINE.finditer(doc.text) for i in range(m.start(), m.end())}
    missed = [
        i for i, ch in enumerate(doc.text) if not ch.isspace() and not covered[i] and i not in rules
    ]
    assert not missed, f"not in any chunk: {doc.text[missed[0] : missed[0] + 40]!r}"


# --- the bundled library ---------------------------------------------------------------------


def test_every_corpus_chunk_is_the_exact_document_span(corpus, corpus_chunks):
    assert len(corpus) == 4
    for name, doc in corpus.items():
        chunks = corpus_chunks[name]
        assert chunks, name
        _check_invariants(doc, chunks, ChunkSettings())
        assert len({c.chunk_id for c in chunks}) == len(chunks)


def test_larger_setting_gives_fewer_bigger_chunks(corpus, corpus_chunks):
    big = ChunkSettings(size=1000, overlap=200)
    for name, doc in corpus.items():
        chunks = chunk_document(doc, big)
        _check_invariants(doc, chunks, big)
        assert len(chunks) <= len(corpus_chunks[name])
    summaries = corpus["python-docs-summaries.en.txt"]
    n_default = len(corpus_chunks["python-docs-summaries.en.txt"])
    assert len(chunk_document(summaries, big)) < n_default / 2


def _heading_of(chunks: list[Chunk], needle: str) -> str:
    found = {c.heading for c in chunks if needle in c.text}
    assert len(found) == 1, (needle, found)
    return found.pop()


def test_heading_paths_of_the_chinese_tutorial(corpus_chunks):
    chunks = corpus_chunks["python-tutorial-notes.zh.md"]
    assert chunks[0].heading == "Python > 解释器" and "IronPython" in chunks[0].text
    assert _heading_of(chunks, "ASCII 编码是 1 个字节") == "Python > 基础"
    assert _heading_of(chunks, "函数名其实就是指向一个函数对象的引用") == "Python > 函数"
    assert _heading_of(chunks, "有了切片操作") == "Python > 高级特性"
    assert _heading_of(chunks, "函数是 python 内建支持的一种封装") == "Python > 函数式编程"
    assert _heading_of(chunks, "一个 .py 文件就称之为一个模块") == "Python > 模块"
    headings = {c.heading for c in chunks}
    assert headings == {
        "Python > " + h
        for h in [
            "解释器",
            "基础",
            "函数",
            "高级特性",
            "函数式编程",
            "模块",
            "面向对象编程",
            "面向对象高级编程",
        ]
    }
    assert {c.lang for c in chunks[1:]} == {"zh"}


def test_heading_paths_of_the_english_notes(corpus_chunks):
    chunks = corpus_chunks["stdlib-notes.en.md"]
    argparse = "Generic Operating System Services > argparse"
    assert _heading_of(chunks, "nargs - The number of command-line arguments") == (
        argparse + " > The add_argument() method"
    )
    assert _heading_of(chunks, "All command-line arguments present are gathered") == (
        argparse + " > The add_argument() method > nargs"
    )
    # `# Create new threads` is a comment inside a code block, not a heading.
    assert _heading_of(chunks, "# Create new threads") == (
        "Optional Operating System Services > threading > Thread Objects"
    )
    zh = corpus_chunks["modules-notes.zh.md"]
    assert _heading_of(zh, "只执行第一步导入时的第三步") == "模块 > 导入模块后发生了什么？"


def test_rules_split_sections_titled_by_their_first_sentence(corpus, corpus_chunks):
    doc = corpus["python-docs-summaries.en.txt"]
    chunks = corpus_chunks["python-docs-summaries.en.txt"]
    assert not any(re.search(r"^---$", c.text, re.M) for c in chunks)
    assert chunks[0].heading == (
        "The abstract objects layer documentation describes functions that interact with…"
    )
    sections = doc.text.split("\n---\n")
    assert len({c.heading for c in chunks}) >= len(sections) * 0.9  # first sentences repeat a bit
    second = doc.text.index("The PyObject_New and PyObject_NewVar functions allocate")
    assert min(c.start for c in chunks if c.start >= second) == second
    assert all(len(c.heading) <= 81 for c in chunks)


def test_fenced_code_blocks_that_fit_are_never_cut(corpus, corpus_chunks):
    for name in ("stdlib-notes.en.md", "modules-notes.zh.md"):
        doc, chunks = corpus[name], corpus_chunks[name]
        blocks = [(s, e) for s, e in _fenced(doc.text) if e - s <= 400]
        assert len(blocks) >= 2
        for s, e in blocks:
            assert any(c.start <= s and e <= c.end for c in chunks), doc.text[s:e]


# --- splitting rules -----------------------------------------------------------------------


def test_chinese_sentence_ends_are_split_points():
    sentences = [
        f"第{i}句话讲的是列表和元组的区别以及它们各自的用法和常见的错误" for i in range(30)
    ]
    text = "".join(s + "。！？；"[i % 4] for i, s in enumerate(sentences))
    doc = _doc(text, "text")
    cfg = ChunkSettings(size=100, overlap=40)
    chunks = chunk_document(doc, cfg)
    _check_invariants(doc, chunks, cfg)
    assert len(chunks) > 5
    assert all(c.text[-1] in "。！？；" for c in chunks)
    assert all(c.text.startswith("第") for c in chunks)  # overlaps begin at a sentence too
    assert all(a.end > b.start for a, b in zip(chunks, chunks[1:], strict=False))  # overlap


def test_english_sentence_ends_are_split_points():
    text = " ".join(
        f"Sentence number {i} explains how tuples differ from lists." for i in range(40)
    )
    doc = _doc(text, "text")
    cfg = ChunkSettings(size=200, overlap=60)
    chunks = chunk_document(doc, cfg)
    _check_invariants(doc, chunks, cfg)
    assert all(c.text.startswith("Sentence number") and c.text.endswith(".") for c in chunks)
    overlaps = [a.end - b.start for a, b in zip(chunks, chunks[1:], strict=False)]
    assert all(0 < n <= 60 for n in overlaps)


def test_heading_line_joins_the_long_paragraph_after_it():
    text = "## Title\n" + " ".join(f"Word{i} is here." for i in range(100))
    chunks = chunk_document(_doc(text), ChunkSettings(size=200, overlap=40))
    assert chunks[0].text.startswith("## Title\nWord0 is here.") and len(chunks[0].text) > 100


def test_long_code_block_is_split_at_lines_and_short_one_kept_whole():
    long_code = "```python\n" + "\n".join(f"x{i} = {i}  # value" for i in range(40)) + "\n```"
    short_code = "```\nprint('short')\n```"
    text = f"# Code\n\n{long_code}\n\nSome prose between.\n\n{short_code}\n"
    doc = _doc(text)
    cfg = ChunkSettings(size=120, overlap=0)
    chunks = chunk_document(doc, cfg)
    _check_invariants(doc, chunks, cfg)
    assert any(short_code in c.text for c in chunks)
    inside = [c for c in chunks if "x20 = 20" in c.text]
    assert inside and all(line.strip() for line in inside[0].text.split("\n"))
    assert all(c.heading == "Code" for c in chunks)


def test_setext_headings_and_bare_headings():
    text = "Guide\n=====\n\nIntro.\n\nInstall\n-------\n\nRun pip.\n\n# Empty\n## Child\n\nBody.\n"
    chunks = chunk_document(_doc(text), ChunkSettings(size=20, overlap=0))
    by_text = {c.text: c.heading for c in chunks}
    assert by_text["Run pip."] == "Guide > Install"
    assert by_text["Body."] == "Empty > Child"
    assert not any(c.text == "# Empty" for c in chunks)  # a heading alone joins the next one
    assert [c.heading for c in chunks if "Intro." in c.text] == ["Guide"]


def test_plain_text_hash_lines_are_not_headings():
    chunks = chunk_document(_doc("# not a heading in a .txt file\n\nBody text.", "text"))
    assert len(chunks) == 1 and chunks[0].heading == "not a heading in a .txt file"


def test_first_sentence_titles():
    assert first_sentence("Lists are mutable. Tuples are not.") == "Lists are mutable"
    assert first_sentence("列表是可变的。元组不是。") == "列表是可变的"
    title = first_sentence("word " * 40)
    assert title.endswith(" word…") and len(title) <= 81  # cut at a space
    assert first_sentence("很长" * 60) == "很长" * 40 + "…"
    assert first_sentence("## 标题\n\n正文") == "标题"


def test_settings_are_validated():
    with pytest.raises(InputError):
        ChunkSettings(size=5)
    with pytest.raises(InputError):
        ChunkSettings(size=100, overlap=60)
    with pytest.raises(InputError):
        ChunkSettings(size=100, overlap=-1)
    assert ChunkSettings() == ChunkSettings(400, 80)


# --- property test ---------------------------------------------------------------------------

_ZH = st.text(
    alphabet="的一是了我不人在他有这个上们来到时大地为子中你说生国年着就那和要", min_size=1
)
_EN = st.lists(
    st.sampled_from(
        [
            "the",
            "list",
            "tuple",
            "is",
            "a",
            "of",
            "mutable",
            "Python",
            "function",
            "returns",
            "value",
        ]
    ),
    min_size=1,
    max_size=30,
).map(" ".join)
_SENTENCE = st.one_of(
    st.tuples(_ZH, st.sampled_from("。！？；，")).map("".join),
    st.tuples(_EN, st.sampled_from([". ", "? ", "! ", ", ", " "])).map("".join),
    st.text(alphabet="abcdefghij_=()[]0123456789", min_size=1, max_size=300),  # no spaces
)
_PARAGRAPH = st.lists(_SENTENCE, min_size=1, max_size=12).map("".join)
_BLOCK = st.one_of(
    _PARAGRAPH,
    _PARAGRAPH.map(lambda p: p.replace(" ", "\n", 3)),
    st.tuples(st.integers(1, 6), _EN).map(lambda t: "#" * t[0] + " " + t[1]),
    st.lists(_EN, min_size=1, max_size=8).map(lambda ls: "```\n" + "\n".join(ls) + "\n```"),
    st.lists(_EN, min_size=1, max_size=5).map(lambda ls: "\n".join("- " + x for x in ls)),
    st.just("---"),
    st.just("   "),
)
_TEXT = st.lists(
    st.tuples(_BLOCK, st.sampled_from(["\n\n", "\n", "\n\n\n", "  \n\n"])), min_size=1, max_size=25
).map(lambda parts: "".join(b + sep for b, sep in parts))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    text=_TEXT,
    fmt=st.sampled_from(["markdown", "text"]),
    size=st.integers(20, 600),
    overlap_share=st.floats(0, 0.99),
)
def test_chunks_cover_the_text_in_order_within_the_size(text, fmt, size, overlap_share):
    cfg = ChunkSettings(size=size, overlap=int((size // 2 - 1) * overlap_share))
    doc = _doc(text, fmt)
    chunks = chunk_document(doc, cfg)
    _check_invariants(doc, chunks, cfg)
    if fmt == "markdown":
        for s, e in _fenced(text):
            if e - s <= size:
                assert any(c.start <= s and e <= c.end for c in chunks), text[s:e]

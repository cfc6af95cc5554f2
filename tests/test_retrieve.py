"""The shipped retriever on a small bilingual library: each direction finds the other language."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.crossing import crossing
from assistant.retrieve import Retriever
from index.config import LibraryConfig
from index.library import Library
from tests.helpers import FakeEmbedder

EN = """# uuid — UUID objects

## Versions

uuid1() generates a UUID from a host ID, sequence number, and the current time.
uuid3() and uuid5() generate a UUID from the hash of a namespace identifier and a name.
uuid4() generates a completely random UUID.

## Command line

The uuid module can be run as a script to print a new UUID.

# os — file operations

## Seeking

os.lseek(fd, pos, whence) sets the current position of file descriptor fd.
SEEK_END makes the position relative to the end of the file.

# json — encoding

json.dumps() serialises an object to a JSON formatted string; indent pretty-prints it.

# threading — threads

## Thread objects

Once a thread object is created, its activity must be started by calling start(), which
arranges for the object's run() method to be invoked in a separate thread of control.

# time — clocks

time.monotonic() returns the value of a clock that cannot go backwards.
"""

ZH = """# 函数

## 递归函数

在函数内部调用自身的函数叫递归函数。解决递归调用栈溢出的方法是尾递归优化。
遗憾的是，大多数编程语言没有针对尾递归做优化，Python 解释器也没有做优化，
所以即使把函数改成尾递归方式，也会导致栈溢出。

## 默认参数

定义默认参数要牢记一点：默认参数必须指向不变对象！

# 面向对象

## 继承和多态

在继承关系中，如果一个实例的数据类型是某个子类，那它的数据类型也可以被看做是父类。

# 列表

列表是一种有序的集合，可以随时添加和删除其中的元素。用 append() 追加元素到末尾。
"""


@pytest.fixture(scope="module")
def bilingual(tmp_path_factory, e5) -> Library:
    root = tmp_path_factory.mktemp("bilingual")
    (root / "docs").mkdir()
    (root / "docs" / "stdlib.en.md").write_text(EN, encoding="utf-8")
    (root / "docs" / "notes.zh.md").write_text(ZH, encoding="utf-8")
    library = Library.open(LibraryConfig(name="bi", home=root / "home"), e5, create=True)
    library.ingest([root / "docs"])
    return library


def top(library: Library, question: str, method: str = "hybrid"):
    return Retriever(library, method=method).search(question, k=5)


@pytest.mark.model
@pytest.mark.parametrize(
    ("question", "answer_lang", "answer"),
    [
        (
            "uuid 的几个版本里，哪一个是完全随机生成的？",
            "en",
            "uuid4() generates a completely random UUID.",
        ),
        ("Does the standard Python interpreter optimise tail recursion?", "zh", "尾递归"),
    ],
    ids=["zh-en", "en-zh"],
)
def test_question_finds_the_other_language_answer_first(
    bilingual: Library, question: str, answer_lang: str, answer: str
) -> None:
    result = top(bilingual, question)
    assert result.answerable
    assert result.hits[0].chunk.lang == answer_lang
    assert answer in result.hits[0].chunk.text


@pytest.mark.model
def test_same_language_still_first(bilingual: Library) -> None:
    en = top(bilingual, "Which method of a thread object runs after start() is called?")
    assert "run() method" in en.hits[0].chunk.text
    zh = top(bilingual, "默认参数必须指向什么样的对象？")
    assert "不变对象" in zh.hits[0].chunk.text


@pytest.mark.model
def test_off_topic_question_is_declined(bilingual: Library) -> None:
    assert not top(bilingual, "红烧肉怎么做才不油腻？").answerable
    assert not top(bilingual, "Who won the 2018 FIFA World Cup?").answerable


@pytest.mark.model
def test_language_filter_and_baselines(bilingual: Library) -> None:
    only_zh = Retriever(bilingual).search("uuid4 random", k=5, lang="zh")
    assert only_zh.hits and all(h.chunk.lang == "zh" for h in only_zh.hits)
    for method in ("dense", "bm25"):
        hits = top(bilingual, "os.lseek SEEK_END", method).hits
        assert "os.lseek" in hits[0].chunk.text


def test_hits_are_ranked_and_name_their_retrievers(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text(EN, encoding="utf-8")
    library = Library.open(
        LibraryConfig(name="f", home=tmp_path / "h"), FakeEmbedder(), create=True
    )
    library.ingest([docs])
    result = Retriever(library).search("os.lseek SEEK_END", k=3)
    assert [h.rank for h in result.hits] == [1, 2, 3]
    assert result.hits[0].score >= result.hits[1].score >= result.hits[2].score
    assert "os.lseek" in result.hits[0].chunk.text and "lexical" in result.hits[0].found_by
    assert Retriever(library).search("   ", k=3).hits == ()


def test_glossary_expansion_both_ways() -> None:
    g = crossing().hand
    zh = g.expand("用 threading 自定义线程类时，应该继承谁？", "zh").split()
    assert {"threading", "thread", "inheritance", "class"} <= set(zh)
    en = g.expand("Does the interpreter optimise tail calls in os.path.join()?", "en").split()
    assert {"解释器", "尾调用", "os.path.join"} <= set(en)
    assert g.expand("红烧肉怎么做？", "zh") == ""


def test_named_terms_the_library_never_mentions(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text(EN + "\nsys.argv lists the arguments. A CPU runs code.\n")
    library = Library.open(
        LibraryConfig(name="n", home=tmp_path / "h"), FakeEmbedder(), create=True
    )
    library.ingest([docs])
    retriever = Retriever(library, min_cosine=-1.0)  # only the naming rule decides here
    assert retriever.search("How do I raise it with sys.setrecursionlimit?").unknown == (
        "sys.setrecursionlimit",
    )
    assert retriever.search("What does os.lseek do with SEEK_END?").unknown == ()
    assert retriever.search("Why do threads not use all CPUs?").unknown == ()  # CPU
    assert retriever.search("怎么判断一个对象能不能被 for 循环迭代？").unknown == ()  # stop word
    assert not retriever.search("What does Flask use for routes?").answerable


def test_lower_case_tool_names_and_bare_headings(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    extra = "\n# tkinter\n\n## Widgets\n\nA button runs a callback when clicked.\n"
    (docs / "a.md").write_text(EN + extra + "\nLOG_CRON is a syslog facility.\n")
    library = Library.open(
        LibraryConfig(name="t", home=tmp_path / "h"), FakeEmbedder(), create=True
    )
    library.ingest([docs])
    retriever = Retriever(library, min_cosine=-1.0)  # only the naming rule decides here
    # Tools written in lower case are names: rare in English and never in the library.
    assert retriever.search("How do I type-check this module with mypy?").unknown == ("mypy",)
    assert "dotenv" in retriever.search("Can python-dotenv load my settings file?").unknown
    # A part of an underscored name is not a mention (LOG_CRON says nothing about cron).
    assert retriever.search("How do I run a script nightly with cron?").unknown == ("cron",)
    # Common words and words the library uses stay answerable.
    assert retriever.search("How do I seek to the end of a file?").unknown == ()
    assert retriever.search("Which uuid function is completely random?").unknown == ()
    # A module the library only names in a bare heading is not covered.
    assert "tkinter" in retriever.search("tkinter 窗口的图标怎么换？").unknown
    assert (
        not Retriever(library, min_cosine=-1.0, rare_names=False)
        .search("How do I type-check this module with mypy?")
        .unknown
    )


DECOY = """# Notes

## Audit log

The audit script finds out which user signed in during a wide maintenance window, and mails
each user a report of the window.

## Terminal size

shutil.get_terminal_size() returns the number of columns and lines of the console, falling
back to 80 by 24 when the size cannot be determined.

## Case-insensitive text

str.casefold() turns text into a form for caseless comparisons, so two strings that differ
only by letter case compare equal.

## Regular expression flags

re.IGNORECASE (re.I) is a flag for re.match and re.search.
"""


@pytest.fixture(scope="module")
def decoys(tmp_path_factory, e5) -> Library:
    root = tmp_path_factory.mktemp("decoys")
    (root / "docs").mkdir()
    (root / "docs" / "notes.en.md").write_text(DECOY + EN, encoding="utf-8")
    library = Library.open(LibraryConfig(name="d", home=root / "home"), e5, create=True)
    library.ingest([root / "docs"])
    return library


@pytest.mark.model
@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="known limit (issue 13): a decoy sharing five of the question's words outweighs a "
    "dense lead; BM25's z is not yet weighed by how informative the shared words are",
)
def test_fusion_follows_dense_past_a_lexical_decoy(decoys: Library) -> None:
    """The setting is checked with pytest.fail (a real failure, not the expected one): BM25
    ranks the audit-log decoy first and dense ranks the terminal-size passage first. Only the
    last assert is the known limit: when fusion follows dense, strict XPASS fails the run and
    this marker is to go."""
    question = "How can a script find out how wide the user's terminal window is?"
    bm25 = top(decoys, question, "bm25").hits[0].chunk.text
    dense = top(decoys, question, "dense").hits[0].chunk.text
    if "audit script" not in bm25:  # the decoy shares script, find out, wide, user, window
        pytest.fail(f"setting: BM25's first passage is not the decoy: {bm25[:80]!r}")
    if "get_terminal_size" not in dense:
        pytest.fail(f"setting: dense's first passage is not the answer: {dense[:80]!r}")
    assert "get_terminal_size" in top(decoys, question).hits[0].chunk.text


@pytest.mark.model
def test_fusion_follows_an_exact_name_past_a_dense_decoy(decoys: Library) -> None:
    question = "How do I compare two strings while ignoring case using re.I?"
    dense = top(decoys, question, "dense").hits[0].chunk.text
    assert "casefold" in dense  # dense prefers the passage about caseless comparison
    result = top(decoys, question)
    assert "re.IGNORECASE" in result.hits[0].chunk.text
    assert result.evidence[0]["lexical_z"] > result.evidence[1]["lexical_z"]

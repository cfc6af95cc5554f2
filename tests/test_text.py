"""ingest.text: one reading of text for every part (language, names, terms, fences)."""

from __future__ import annotations

import pytest

from ingest.text import (
    HAN,
    Fences,
    content_words,
    identifiers,
    is_code_name,
    named_terms,
    strip_code,
    terms,
    text_lang,
)


@pytest.mark.parametrize(
    ("question", "lang"),
    [
        # Code names do not count, so any Chinese wording makes a question Chinese.
        ("os.path.join 和 os.path.normpath 有何不同", "zh"),
        ("sys.setrecursionlimit 默认值", "zh"),
        ("PyBool_FromLong(0) 返回什么？", "zh"),
        ("list 和 tuple 的区别", "zh"),
        ("What does PyBool_FromLong(0) return?", "en"),
        ("The term 函数 means function in Chinese.", "en"),
        ("os.path.join", "en"),  # nothing but code: English
        ("Что такое декоратор?", "en"),  # answered in English, the product's other language
    ],
)
def test_question_language(question: str, lang: str) -> None:
    assert text_lang(question) == lang


def test_code_names_and_identifiers() -> None:
    names = identifiers("Call os.path.join() or len() on SEEK_END, not plain words 默认")
    assert names == [
        "Call",
        "os.path.join()",
        "or",
        "len()",
        "on",
        "SEEK_END",
        "not",
        "plain",
        "words",
    ]
    assert [n for n in names if is_code_name(n)] == ["os.path.join()", "len()", "SEEK_END"]
    assert is_code_name("PyBool") and is_code_name("GIL") and not is_code_name("Python")


def test_terms_stem_keep_code_and_cut_chinese() -> None:
    assert terms("Tracebacks of exceptions") == terms("traceback of exception")
    assert {"os.path.join", "path", "join"} <= terms("What does os.path.join do?")
    assert "what" not in terms("What does os.path.join do?")  # stop word
    assert {"函数", "参数"} <= terms("函数的参数是什么")
    assert "的" not in terms("函数的参数是什么") and "什么" not in terms("函数的参数是什么")
    assert "3.8" in terms("new in Python 3.8")


def test_content_words_keep_reading_order_and_spelling() -> None:
    assert content_words("What does PyBool_FromLong(0) return?") == [
        "PyBool_FromLong",
        "0",
        "return",
    ]


def test_named_terms() -> None:
    assert named_terms("How do I raise it with sys.setrecursionlimit?", "en") == [
        "sys.setrecursionlimit"
    ]
    assert named_terms("What does Flask use for routes?", "en") == ["flask"]
    assert named_terms("A Counter counts", "en") == []  # the first word may be capitalised
    assert named_terms("tqdm 怎么用", "zh") == ["tqdm"]
    assert named_terms("PEP 8 or PEP 484?", "en") == ["pep", "484"]


def test_one_fence_rule() -> None:
    roles = [Fences().step(x) for x in ["```"]]
    assert roles == ["open"]
    fences = Fences()
    lines = ["text", "````python", "```", "code", "````", "after"]
    # a shorter fence inside a longer one is code, not its end
    assert [fences.step(x) for x in lines] == ["", "open", "code", "code", "close", ""]
    assert strip_code("a `b` c\n```\nx = 1\n```\nd").split() == ["a", "c", "d"]
    assert strip_code("a\n```\nunclosed").split() == ["a", "```", "unclosed"]


def _sample_texts() -> list[str]:
    """Chinese and mixed text: eval questions (a sample) and corpus paragraphs."""
    import random
    from pathlib import Path

    from tests.helpers import eval_questions

    root = Path(__file__).resolve().parents[1]
    texts = eval_questions()
    for path in sorted((root / "corpus").iterdir()):
        texts += [p for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip()]
    rng = random.Random(3)
    return rng.sample([t for t in texts if HAN.search(t)], 80) + ["中华人民共和国全局解释器锁"]


@pytest.mark.shared
def test_jieba_through_the_table_cuts_as_with_the_whole_dictionary() -> None:
    """Precise and search mode, on whole texts (jieba's own blocks of Han, Latin and digits)
    and through `tokenize`/`content_words`; the whole dictionary is not loaded for them."""
    import jieba

    from ingest import text

    whole = jieba.Tokenizer()
    whole.initialize()
    texts = _sample_texts()
    for t in texts:
        lazy = text._jieba_of(t)
        assert lazy is not None and lazy.FREQ and len(lazy.FREQ) < 20 * len(t) + 10
        assert lazy.lcut(t) == whole.lcut(t), t
        assert lazy.lcut_for_search(t) == whole.lcut_for_search(t), t
    ours = [(text.tokenize(t), text.content_words(t)) for t in texts[:40]]
    if not text._jieba().initialized:  # (another test of this process may have loaded it)
        text._jieba().check_initialized()
        assert ours == [(text.tokenize(t), text.content_words(t)) for t in texts[:40]]


def test_zipf_reads_wordfreqs_values() -> None:
    from wordfreq import zipf_frequency

    from ingest.text import zipf

    words = ["the", "interpreter", "optimise", "mypy", "tqdm", "qzxqzx", "overwriting"]
    words += ["Python", "naïve", "e-mail", "3d", "", "函数", "don't", "x", "aaaaaaaaaaaaaaaaaaaa"]
    assert [zipf(w) for w in words] == [zipf_frequency(w, "en") for w in words]


def test_a_long_lived_process_cuts_with_the_whole_dictionary(monkeypatch) -> None:
    """Past a few questions' worth of Han characters the whole dictionary is loaded and used
    (a cut through the table costs more than a lookup in memory)."""
    from ingest import text

    monkeypatch.setattr(text, "_lazy_chars", 0)
    if not text._jieba().initialized:  # (another test of this process may have loaded it)
        assert text._jieba_for("全局解释器锁") is not text._jieba()
    monkeypatch.setattr(text, "_lazy_chars", text._LAZY_CHARS + 1)
    assert text._jieba_for("全局解释器锁") is text._jieba()
    assert text._jieba().initialized

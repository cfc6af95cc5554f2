"""Lexical tokenizer (code identifiers, Chinese, stopwords) and the bm25s index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from index.embedded.lexical import LexicalIndex
from ingest.errors import LibraryError
from ingest.text import tokenize


def test_code_identifiers_kept_whole_and_split_into_parts() -> None:
    toks = tokenize("Call os.lseek(fd, 0, SEEK_END) from __init__ or PyObject_New().")
    for whole in ("os.lseek", "seek_end", "__init__", "pyobject_new"):
        assert whole in toks
    for part in ("os", "lseek", "seek", "end", "init", "pyobject", "new"):
        assert part in toks


def test_dotted_prefixes_allow_module_matches() -> None:
    toks = tokenize("os.path.join(a, b)")
    assert {"os.path.join", "os.path", "os", "path", "join"} <= set(toks)


def test_lowercase_punctuation_and_english_stopwords_dropped() -> None:
    toks = tokenize("The Quick, brown fox -- is it?! (jumps)")
    assert toks == ["quick", "brown", "fox", "jump"]


def test_english_words_meet_their_inflections_identifiers_stay_whole() -> None:
    assert tokenize("tracebacks") == tokenize("traceback") == ["traceback"]
    assert tokenize("Exceptions") == tokenize("exception")
    assert tokenize("decorators decorated") == tokenize("decorator decorate")
    toks = tokenize("os.path.join SEEK_END")
    assert {"os.path.join", "seek_end"} <= set(toks)  # exact names are kept as written
    assert tokenize("Python3 第3章") == ["python3", "第", "3", "章"]  # digits: untouched


def test_chinese_is_segmented_into_words() -> None:
    toks = tokenize("Python使用def关键字定义函数，函数可以有默认参数。")
    assert {"python", "def", "关键字", "定义", "函数", "默认", "参数"} <= set(toks)
    assert "，" not in toks and "。" not in toks
    assert "的" not in tokenize("函数的参数")  # Chinese stopword


def test_fullwidth_forms_fold_to_ascii() -> None:
    assert "seek_end" in tokenize("ＳＥＥＫ＿ＥＮＤ")


@pytest.fixture(scope="module")
def corpus() -> tuple[list[int], list[list[str]]]:
    texts = [
        "os.lseek moves the file offset; whence may be SEEK_END",
        "Lists are mutable sequences; append adds an item",
        "The __init__ method initialises a new instance",
        "字典是可变的映射类型，键必须可哈希",
        "列表推导式可以简洁地创建列表",
        "",  # a chunk of nothing but punctuation or whitespace still gets a slot
    ]
    ids = [101, 202, 303, 404, 505, 606]
    return ids, [tokenize(t) for t in texts]


def test_bm25_ranks_exact_and_partial_matches(corpus) -> None:
    ids, tokens = corpus
    index = LexicalIndex.build(ids, tokens)
    assert index.search(tokenize("os.lseek"), 3)[0][0] == 101
    assert index.search(tokenize("lseek"), 3)[0][0] == 101  # part of an identifier
    assert index.search(tokenize("__init__"), 3)[0][0] == 303
    assert index.search(tokenize("字典的键"), 3)[0][0] == 404
    assert index.search(tokenize("列表推导式"), 3)[0][0] == 505
    assert index.search(tokenize("appending items"), 3)[0][0] == 202  # another inflection


def test_bm25_returns_only_matching_chunks_best_first(corpus) -> None:
    ids, tokens = corpus
    index = LexicalIndex.build(ids, tokens)
    hits = index.search(tokenize("file offset mutable"), 10)
    assert {i for i, _ in hits} == {101, 202}
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert index.search(tokenize("zebra quantum"), 10) == []
    assert index.search([], 10) == []


def test_save_load_round_trip(tmp_path: Path, corpus) -> None:
    ids, tokens = corpus
    index = LexicalIndex.build(ids, tokens)
    index.save(tmp_path / "lex")
    loaded = LexicalIndex.load(tmp_path / "lex")
    import bm25s

    # Searching reads bm25s's files without importing bm25s; the scores are bm25s's own.
    reference = bm25s.BM25.load(str(tmp_path / "lex"), show_progress=False)
    for q in ("os.lseek", "列表", "mutable append", "__init__ instance", "file offset"):
        assert loaded.search(tokenize(q), 5) == index.search(tokenize(q), 5)
        known = [t for t in tokenize(q) if t in reference.vocab_dict]
        assert np.array_equal(loaded.bm25.get_scores(known), reference.get_scores(known))


def test_missing_lexical_files_are_a_library_error(tmp_path: Path, corpus) -> None:
    ids, tokens = corpus
    LexicalIndex.build(ids, tokens).save(tmp_path / "lex")
    (tmp_path / "lex" / "ids.npy").unlink()
    with pytest.raises(LibraryError):
        LexicalIndex.load(tmp_path / "lex")


def test_rare_tokens_are_scored_on_their_postings_with_the_same_results(tmp_path: Path) -> None:
    """A saved index scores a query whose postings are few on those documents only: the same
    hits and scores, in the same order, as bm25s's scores over every document."""
    import index.embedded.lexical as lexical

    rng = np.random.default_rng(3)
    common = [f"w{i}" for i in range(30)]
    tokens = [
        [str(w) for w in rng.choice(common, 6)] + [f"rare{i % 97}", f"name{i % 13}"]
        for i in range(3000)
    ]
    ids = rng.choice(2**40, size=len(tokens), replace=False).tolist()
    built = LexicalIndex.build(ids, tokens)
    built.save(tmp_path / "lex")
    loaded = LexicalIndex.load(tmp_path / "lex")
    queries = [["rare5"], ["rare5", "rare60"], ["name3", "rare7"], ["w1"], ["w1", "rare9"], ["zz"]]
    sparse = {tuple(q): loaded.bm25.candidate_scores(q)[0] is not None for q in queries}
    assert sparse[("rare5",)] and sparse[("name3", "rare7")] and not sparse[("w1",)]
    for q in queries:
        for k in (1, 10, 50):
            assert loaded.search(q, k) == built.search(q, k), (q, k)
    assert lexical.SPARSE_SHARE == 8

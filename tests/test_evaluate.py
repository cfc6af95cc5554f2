"""The relevance rule and metrics of assistant/evaluate.py on hand-made cases with known answers."""

from __future__ import annotations

import json

import pytest

from assistant.evaluate import (
    Outcome,
    Question,
    format_table,
    load_questions,
    matched_quote,
    question_scores,
    summarize,
)
from ingest.errors import InputError

QUOTE = "PyBool_FromLong(0) would return Py_False."


def q(kind: str = "en-en", quotes: tuple[str, ...] = (QUOTE,)) -> Question:
    return Question("x", "question?", "en", kind, quotes)


def test_whole_quote_after_folding() -> None:
    passage = "Intro.  pybool_fromlong(0)&nbsp;would<br/>return  PY_FALSE. More text."
    assert matched_quote(passage, [QUOTE]) == 0
    assert matched_quote("Nothing relevant here.", [QUOTE]) is None


def test_quote_cut_by_a_chunk_boundary_counts_from_60_percent() -> None:
    head = QUOTE[: int(len(QUOTE) * 0.7)]
    tail = QUOTE[int(len(QUOTE) * 0.3) :]
    assert matched_quote("Before. " + head, [QUOTE]) == 0  # prefix ending the passage
    assert matched_quote(tail + " After.", [QUOTE]) == 0  # suffix starting the passage
    half = QUOTE[: len(QUOTE) // 2]
    assert matched_quote("Before. " + half, [QUOTE]) is None  # a 50% fragment does not count
    # the fragment must sit at the cut: a 70% prefix in the middle of a passage is no match
    assert matched_quote("Before. " + head + " and more after.", [QUOTE]) is None


def test_relevant_passage_at_rank_3() -> None:
    texts = ("a", "b", "x " + QUOTE, "d")
    s = question_scores(Outcome(q(), texts, False, 0.0))
    assert s["MRR@10"] == pytest.approx(1 / 3)
    assert (s["R@1"], s["R@5"], s["R@10"]) == (0.0, 1.0, 1.0)
    assert s["nDCG@10"] == pytest.approx(0.5)  # 1/log2(4) against an ideal of 1


def test_repeated_quote_in_overlapping_chunks_counts_once() -> None:
    texts = (QUOTE, "again " + QUOTE)
    assert question_scores(Outcome(q(), texts, False, 0.0))["nDCG@10"] == pytest.approx(1.0)


def test_summary_per_kind_abstention_and_latency() -> None:
    outcomes = [
        Outcome(q("en-en"), (QUOTE,), False, 0.010),
        Outcome(q("zh-en"), ("a", "b", "c", "d", "e", QUOTE), True, 0.020),
        Outcome(q("none", ()), ("a",), True, 0.030),
        Outcome(q("none", ()), ("a",), False, 0.040),
    ]
    report = summarize(outcomes)
    assert report["metrics"]["en-en"]["R@1"] == 1.0
    assert report["metrics"]["zh-en"]["R@5"] == 0.0
    assert report["metrics"]["zh-en"]["R@10"] == 1.0
    assert report["metrics"]["all"]["n"] == 2
    assert report["metrics"]["all"]["MRR@10"] == pytest.approx((1 + 1 / 6) / 2)
    assert report["abstention"] == {"none_abstained": 0.5, "answerable_abstained": 0.5, "n_none": 2}
    assert report["latency_ms"]["p50"] == pytest.approx(25.0)
    assert "| shipped |" in format_table({"shipped": report})


def test_load_questions_reports_bad_lines(tmp_path) -> None:
    good = {
        "id": "q1",
        "question": "?",
        "lang": "en",
        "kind": "en-en",
        "gold": [{"doc": "a", "quote": "b"}],
    }
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps(good) + "\n\n", encoding="utf-8")
    assert load_questions(path)[0].quotes == ("b",)
    path.write_text("{not json\n", encoding="utf-8")
    with pytest.raises(InputError, match="q.jsonl:1"):
        load_questions(path)


def test_explain_names_the_parts_of_each_top_hit() -> None:
    from assistant.evaluate import Outcome, Question, format_explain

    q = Question("q1", "uuid 哪个版本是随机的？", "zh", "zh-en", ("uuid4() is random.",))
    evidence = {
        "dense": 0.91,
        "via": "mapped question",
        "dense_z": 1.5,
        "lexical_z": 2.0,
        "lexical_weight": 0.7,
        "score": 2.9,
    }
    hits = (
        {"rank": 1, "lang": "en", "text": "Other text.", "score": 1.0},
        {"rank": 2, "lang": "en", "text": "uuid4() is random.", "evidence": evidence},
    )
    text = format_explain([Outcome(q, tuple(h["text"] for h in hits), False, 0.01, hits)])
    assert "q1 [zh-en]" in text and "answered; first relevant at 2" in text
    assert "* 2 [en] dense 0.910 (mapped question) z +1.50 + 0.7 x lexical z +2.00" in text
    assert "    1 [en] score 1.000" in text


def test_ocr_bench_rule_forgives_what_ocr_changes_and_nothing_else() -> None:
    """bench/ocr_retrieval.py's second rule (tests.scans.holds_quote): on letters and digits,
    ≤10% of the quote misread. OCR's line break inside a Chinese sentence, its full-width
    punctuation and a lost backtick break the project's rule but not this one."""
    from tests.scans import holds_quote

    ocr_zh = "布尔值可以用 and、or 和 not 运算（请注\n意大小写）。"
    zh_quote = "可以直接用 True、False 表示布尔值(请注意大小写)"
    assert matched_quote("True、False 表示布尔值（请注\n意大小写）", [zh_quote]) is None
    assert not holds_quote(ocr_zh, zh_quote)  # another sentence sharing its end: not it
    assert holds_quote("可以直接用 True、False 表示布尔值（请注\n意大小写）。", zh_quote)
    quote = "flag tells the kernel to reuse a local socket in `TIME_WAIT` state"
    ocr_en = "The SO_REUSEADDR flag tells the kernel to reuse a local socket in TIME WAIT state,"
    assert matched_quote(ocr_en, [quote]) is None
    assert holds_quote(ocr_en, quote)
    assert holds_quote(ocr_en.replace("kernel", "kemel"), quote)  # one misread letter
    assert not holds_quote(ocr_en.replace("kernel to reuse", "system to use"), quote)
    # a chunk boundary: ≥60% of the quote starting the passage counts, less does not
    assert holds_quote("to reuse a local socket in TIME WAIT state. Next", quote)
    assert not holds_quote("in TIME WAIT state. Next paragraph", quote)
    assert not holds_quote("", quote) and not holds_quote(ocr_en, "``")

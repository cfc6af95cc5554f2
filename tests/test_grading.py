"""The metric code of `askdocs eval --answers` on hand-made answers (no model, no library)."""

from __future__ import annotations

import pytest

from assistant.evaluate import Question
from assistant.grading import AnswerOutcome, format_answers_table, grade, summarize_answers

DOC = "Aim for over 80% coverage. Then port the code. Tests run on both versions."


def cite(n: int, start: int, end: int, doc: str = DOC, source: str = "a.txt") -> dict:
    return {"n": n, "source": source, "doc_id": source, "start": start, "end": end,
            "text": doc[start:end]}  # fmt: skip


def answer(*sentences: tuple[str, list[int]], citations=(), answered: bool = True) -> dict:
    return {
        "answered": answered,
        "sentences": [{"text": t, "citations": c, "supported": True} for t, c in sentences],
        "citations": list(citations),
    }


def q(kind: str, *quotes: str, qid: str = "x") -> Question:
    return Question(qid, "?", "en", kind, tuple(quotes))


def test_right_and_first_follow_the_citations():
    c1, c2 = cite(1, 0, 26), cite(2, 27, 46)
    # The answer's first sentence holds the quote: right and first.
    g = grade(answer(("Aim…", [1]), ("Then…", [2]), citations=[c1, c2]), ["over 80% coverage"])
    assert (g.right, g.first, g.sentences) == (True, True, 2)
    # The quote is only in the second sentence: right, not first.
    g = grade(answer(("Aim…", [1]), ("Then…", [2]), citations=[c1, c2]), ["port the code"])
    assert (g.right, g.first) == (True, False)
    # Not held at all, and a declined answer is never right.
    assert not grade(answer(("Aim…", [1]), citations=[c1]), ["both versions"]).right
    declined = answer(("not covered", [1]), citations=[c1], answered=False)
    assert not grade(declined, ["over 80% coverage"]).right


def test_a_quote_over_two_contiguous_citations_is_held():
    c1, c2 = cite(1, 0, 26), cite(2, 27, 46)
    quote = "80% coverage. Then port the code"
    g = grade(answer(("a", [1]), ("b", [2]), citations=[c1, c2]), [quote])
    assert g.right
    # Not contiguous (another document): the joined text does not count.
    other = cite(2, 27, 46, source="b.txt")
    assert not grade(answer(("a", [1]), ("b", [2]), citations=[c1, other]), [quote]).right


def test_citations_no_sentence_uses_do_not_count():
    c1, c2 = cite(1, 0, 26), cite(2, 27, 46)
    assert not grade(answer(("Aim…", [1]), citations=[c1, c2]), ["port the code"]).right


def test_summary_per_kind_none_declined_and_latency():
    c1 = cite(1, 0, 26)
    right = answer(("Aim…", [1]), citations=[c1])
    wrong = answer(("Aim…", [1]), ("x", [1]), ("y", [1]), citations=[c1])
    outs = [
        AnswerOutcome(q("en-en", "80% coverage", qid="1"), right, 0.010),
        AnswerOutcome(q("en-en", "port the code", qid="2"), wrong, 0.020),
        AnswerOutcome(q("zh-en", "80% coverage", qid="3"), right, 0.030),
        AnswerOutcome(q("none", qid="4"), answer(answered=False), 0.040),
        AnswerOutcome(q("none", qid="5"), right, 0.050),
    ]
    s = summarize_answers(outs)
    assert s["en-en"]["right"] == 0.5 and s["en-en"]["n"] == 2
    assert s["en-en"]["sentences"] == 2.0  # (1 + 3) / 2
    assert s["zh-en"]["first"] == 1.0
    assert s["all"]["right"] == pytest.approx(2 / 3)
    assert s["none_declined"] == 0.5
    assert s["latency_ms"]["p50"] == pytest.approx(30.0)
    table = format_answers_table({"ranker": s})
    assert "| ranker | 0.50 | 1.00 | 0.667 |" in table


def test_llm_figures_split_fallbacks_and_count_the_models_sentences():
    c1 = cite(1, 0, 26)
    shown = {**answer(("Aim…", [1]), citations=[c1]), "generated": {"supported": 1, "sentences": 2}}
    unsupported = {
        **answer(("Aim…", [1]), citations=[c1]),
        "fallback": True,
        "generated": {"supported": 0, "sentences": 3},
    }
    timed_out = {**answer(("Aim…", [1]), citations=[c1]), "fallback": True, "generated": None}
    outs = [
        AnswerOutcome(q("en-en", "80% coverage", qid=str(i)), a, 1.0)
        for i, a in enumerate([shown, unsupported, timed_out, timed_out])
    ]
    s = summarize_answers(outs)["all"]
    assert s["fallback"] == 0.75 and s["fallback_error"] == 0.5
    assert s["model_supported"] == pytest.approx(1 / 5)  # 1 of the 2 + 3 sentences written
    assert "| 0.75 | 0.20 |" in format_answers_table({"llm": summarize_answers(outs)})
    # Extractive answers carry no model sentences.
    assert summarize_answers(outs[2:])["all"]["model_supported"] is None

"""`askdocs eval --answers`: whether an answer's citations hold a gold quote, and the summary.

design.md: an answer is *right* when it is given and one of its citations contains a gold quote
(the relevance rule of `assistant.evaluate.matched_quote`); *first* when its first cited sentence
does. A gold quote that runs over two answer sentences is held by them when their citations are
contiguous in one document (the spans are joined before the rule is applied), or when one of them
holds at least 60% of it at a cut, as the rule already allows for chunk boundaries.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from assistant.evaluate import KINDS, Question, matched_quote

GAP = 3  # characters (white space, a list marker) allowed between two contiguous citations


def _joined(citations: Sequence[dict]) -> list[str]:
    """The cited texts, plus each run of citations that follow one another in a document."""
    texts = [c["text"] for c in citations]
    ordered = sorted(citations, key=lambda c: (c.get("doc_id") or c["source"], c["start"]))
    run: list[dict] = []
    for c in [*ordered, None]:
        if (
            run
            and c is not None
            and (c.get("doc_id") or c["source"]) == (run[-1].get("doc_id") or run[-1]["source"])
            and 0 <= c["start"] - run[-1]["end"] <= GAP
        ):
            run.append(c)
            continue
        if len(run) > 1:
            texts.append(" ".join(x["text"] for x in run))
        run = [c] if c is not None else []
    return texts


def first_cited(answer: dict) -> list[dict]:
    """Citations of the first answer sentence that cites anything."""
    by_n = {c["n"]: c for c in answer.get("citations", [])}
    for s in answer.get("sentences", []):
        got = [by_n[n] for n in s.get("citations", []) if n in by_n]
        if got:
            return got
    return []


@dataclass(frozen=True)
class Grade:
    right: bool  # given, and a citation holds a gold quote
    first: bool  # given, and the first cited sentence holds one
    sentences: int  # sentences shown as the answer
    supported: int  # of those, how many passed the support check (LLM mode)


def grade(answer: dict, quotes: Sequence[str]) -> Grade:
    """Grade one `ask --json` object against the question's gold quotes."""
    sentences = answer.get("sentences", []) if answer.get("answered") else []
    n = len(sentences)
    supported = sum(bool(s.get("supported", True)) for s in sentences)
    if not answer.get("answered") or not quotes:
        return Grade(False, False, n, supported)
    cited = {n_ for s in sentences for n_ in s.get("citations", [])}
    cites = [c for c in answer.get("citations", []) if c["n"] in cited]
    right = any(matched_quote(t, quotes) is not None for t in _joined(cites))
    first = any(matched_quote(t, quotes) is not None for t in _joined(first_cited(answer)))
    return Grade(right, first, n, supported)


@dataclass(frozen=True)
class AnswerOutcome:
    question: Question
    answer: dict  # what `ask --json` prints
    seconds: float
    grade: Grade = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "grade", grade(self.answer, self.question.quotes))


def _rates(rows: list[AnswerOutcome]) -> dict:
    n = len(rows)
    shown = sum(o.grade.sentences for o in rows)
    # LLM mode: what the model wrote (its distinct sentences) before the bar chose what to show.
    made = [o.answer["generated"] for o in rows if o.answer.get("generated")]
    written = sum(g["sentences"] for g in made)
    fell = [o for o in rows if o.answer.get("fallback")]
    return {
        "right": sum(o.grade.right for o in rows) / n if n else 0.0,
        "first": sum(o.grade.first for o in rows) / n if n else 0.0,
        "sentences": shown / n if n else 0.0,
        "supported": sum(o.grade.supported for o in rows) / shown if shown else 0.0,
        "declined": sum(not o.answer.get("answered") for o in rows) / n if n else 0.0,
        "near_miss": sum(bool(o.answer.get("near_miss")) for o in rows) / n if n else 0.0,
        "fallback": len(fell) / n if n else 0.0,
        # fallbacks because the endpoint failed or timed out (the rest: the answer was unsupported)
        "fallback_error": sum(not o.answer.get("generated") for o in fell) / n if n else 0.0,
        "model_supported": sum(g["supported"] for g in made) / written if written else None,
        "n": n,
    }


def summarize_answers(outcomes: Sequence[AnswerOutcome]) -> dict:
    """The top-level "answers" object of `eval --answers --json` (design.md)."""
    by_kind: dict[str, list[AnswerOutcome]] = {}
    for o in outcomes:
        if o.question.answerable:
            by_kind.setdefault(o.question.kind, []).append(o)
    out: dict[str, object] = {kind: _rates(by_kind[kind]) for kind in KINDS if kind in by_kind}
    out.update({kind: _rates(rows) for kind, rows in by_kind.items() if kind not in out})
    out["all"] = _rates([o for rows in by_kind.values() for o in rows])
    none = [o for o in outcomes if not o.question.answerable]
    # A near miss (the library names the topic, not the asked detail) may be declined or
    # answered with what the library says and that it lacks the detail (issue 14): both count.
    out["none_declined"] = (
        sum(not o.answer.get("answered") or bool(o.answer.get("near_miss")) for o in none)
        / len(none)
        if none
        else 0.0
    )
    out["none_refused"] = (
        sum(not o.answer.get("answered") for o in none) / len(none) if none else 0.0
    )
    out["n_none"] = len(none)
    ms = [o.seconds * 1000 for o in outcomes]
    out["latency_ms"] = {
        "p50": float(np.percentile(ms, 50)) if ms else 0.0,
        "p95": float(np.percentile(ms, 95)) if ms else 0.0,
    }
    return out


Ask = Callable[[Question], dict]  # a question -> the `ask --json` object


def run_answers(ask: Ask, questions: Iterable[Question], warmup: int = 2) -> list[AnswerOutcome]:
    """Answer every question through `ask`, timing each call (after `warmup` untimed ones)."""
    questions = list(questions)
    for q in questions[:warmup]:
        ask(q)
    out = []
    for q in questions:
        t0 = time.perf_counter()
        answer = ask(q)
        out.append(AnswerOutcome(q, answer, time.perf_counter() - t0))
    return out


def format_answers_table(reports: dict[str, dict]) -> str:
    """Markdown: one row per answerer; right / first per kind, then overall figures."""
    first = reports[next(iter(reports))]
    kinds = [k for k in KINDS if k in first]
    head = ["answerer"] + [f"{k} right" for k in kinds]
    head += [
        "all right",
        "all first",
        "sentences",
        "supported",
        "fallback",
        "model supported",
        "declined",
        "near miss",
        "none declined",
        "p50 ms",
        "p95 ms",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in reports.items():
        cells = [name] + [f"{r[k]['right']:.2f}" for k in kinds]
        a = r["all"]
        cells += [f"{a['right']:.3f}", f"{a['first']:.3f}", f"{a['sentences']:.2f}"]
        cells += [f"{a['supported']:.2f}", f"{a['fallback']:.2f}"]
        cells.append("-" if a["model_supported"] is None else f"{a['model_supported']:.2f}")
        cells += [f"{a['declined']:.3f}", f"{a['near_miss']:.3f}"]
        cells.append(f"{r['none_declined']:.2f} ({r['none_refused']:.2f})")
        cells += [f"{r['latency_ms']['p50']:.0f}", f"{r['latency_ms']['p95']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append(
        f"\n{first['all']['n']} answerable, {first['n_none']} `none` questions; right = a citation"
        " holds a gold quote, first = the first cited sentence does; supported = share of shown"
        " sentences that pass the support check; fallback = LLM mode showed the extractive answer"
        f" ({first['all']['fallback_error']:.2f} of answers because the endpoint failed or timed"
        " out); declined / near miss = answerable questions declined / answered with the notice"
        " that the library lacks the asked detail; none declined = `none` questions declined or"
        " answered as a near miss (declined outright in brackets); model supported = share of the model's own distinct sentences supported and cited;"
        " latency is warm `ask` time."
    )
    return "\n".join(lines)

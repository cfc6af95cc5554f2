"""`askdocs eval`: the project's relevance rule and metrics, and the evaluation loop.

Relevance: after folding (NFKC, lower case, `&nbsp;`/`<br>` → space, white space collapsed) a
passage is relevant when it contains a gold quote, or when at least 60% of the quote lies inside
it because a chunk boundary cut it: a prefix of the quote that ends the passage, or a suffix that
starts it. nDCG uses binary gains, each gold quote counted once (the first passage holding it),
so that overlapping chunks repeating one quote cannot push nDCG above 1.
"""

from __future__ import annotations

import json
import math
import re
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ingest.errors import InputError
from ingest.text import printable

KINDS = ("en-en", "zh-zh", "zh-en", "en-zh")
MIN_FRACTION = 0.6
_BR = re.compile(r"<br\s*/?>|&nbsp;", re.IGNORECASE)
_WS = re.compile(r"\s+")


def fold(text: str) -> str:
    text = _BR.sub(" ", unicodedata.normalize("NFKC", text)).lower()
    return _WS.sub(" ", text).strip()


def matched_quote(passage: str, quotes: Sequence[str]) -> int | None:
    """Index of the first gold quote the passage holds (wholly or ≥60% at a cut), else None."""
    p = fold(passage)
    for i, quote in enumerate(quotes):
        q = fold(quote)
        if not q:
            continue
        if q in p:
            return i
        need = math.ceil(MIN_FRACTION * len(q))
        for m in range(len(q) - 1, need - 1, -1):
            prefix, suffix = q[:m].rstrip(), q[len(q) - m :].lstrip()
            if (len(prefix) >= need and p.endswith(prefix)) or (
                len(suffix) >= need and p.startswith(suffix)
            ):
                return i
    return None


@dataclass(frozen=True)
class Question:
    id: str
    question: str
    lang: str
    kind: str
    quotes: tuple[str, ...]
    answer: str = ""

    @property
    def answerable(self) -> bool:
        return self.kind != "none"


def load_questions(path: str | Path) -> list[Question]:
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"No questions file at {path}.", hint="give a JSONL file, one question a line"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start}).",
            hint="save the questions file as UTF-8 JSONL",
        ) from exc
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            if not isinstance(row.get("question"), str):
                raise TypeError("'question' must be a string")
            out.append(
                Question(
                    id=str(row.get("id", n)),
                    question=printable(row["question"]),  # a JSON \ud800 is no text
                    lang=row.get("lang", ""),
                    kind=row.get("kind", "none" if not row.get("gold") else "?"),
                    quotes=tuple(g["quote"] for g in row.get("gold", [])),
                    answer=row.get("answer", ""),
                )
            )
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise InputError(
                f"{path}:{n} is not a valid question line ({exc}).",
                hint='each line needs at least {"question": ..., "kind": ..., "gold": [{"quote": ...}]}',
            ) from exc
    return out


@dataclass(frozen=True)
class Outcome:
    """One question's ranked passages (texts) and the abstention decision."""

    question: Question
    texts: tuple[str, ...]
    abstained: bool
    seconds: float
    hits: tuple[dict, ...] = field(default=())


def question_scores(outcome: Outcome, k: int = 10) -> dict[str, float]:
    quotes = outcome.question.quotes
    seen: set[int] = set()
    first_rank = None
    dcg = 0.0
    for rank, text in enumerate(outcome.texts[:k], 1):
        hit = matched_quote(text, quotes)
        if hit is None:
            continue
        first_rank = first_rank or rank
        if hit not in seen:
            seen.add(hit)
            dcg += 1.0 / math.log2(rank + 1)
    ideal = sum(1.0 / math.log2(r + 1) for r in range(1, min(len(quotes), k) + 1))
    return {
        "R@1": float(first_rank is not None and first_rank <= 1),
        "R@5": float(first_rank is not None and first_rank <= 5),
        "R@10": float(first_rank is not None and first_rank <= 10),
        "MRR@10": 1.0 / first_rank if first_rank else 0.0,
        "nDCG@10": dcg / ideal if ideal else 0.0,
    }


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = ("R@1", "R@5", "R@10", "MRR@10", "nDCG@10")
    out = {key: (sum(r[key] for r in rows) / len(rows) if rows else 0.0) for key in keys}
    out["n"] = len(rows)
    return out


def summarize(outcomes: Sequence[Outcome], k: int = 10) -> dict:
    by_kind: dict[str, list[dict[str, float]]] = {}
    answerable = [o for o in outcomes if o.question.answerable]
    for o in answerable:
        by_kind.setdefault(o.question.kind, []).append(question_scores(o, k))
    metrics = {kind: _mean(by_kind[kind]) for kind in KINDS if kind in by_kind}
    metrics.update({kind: _mean(rows) for kind, rows in by_kind.items() if kind not in metrics})
    metrics["all"] = _mean([row for rows in by_kind.values() for row in rows])
    none = [o for o in outcomes if not o.question.answerable]
    ms = [o.seconds * 1000 for o in outcomes]
    return {
        "metrics": metrics,
        "abstention": {
            "none_abstained": sum(o.abstained for o in none) / len(none) if none else 0.0,
            "answerable_abstained": (
                sum(o.abstained for o in answerable) / len(answerable) if answerable else 0.0
            ),
            "n_none": len(none),
        },
        "latency_ms": {
            "p50": float(np.percentile(ms, 50)) if ms else 0.0,
            "p95": float(np.percentile(ms, 95)) if ms else 0.0,
        },
        "questions": [
            {
                "id": o.question.id,
                "kind": o.question.kind,
                "abstained": o.abstained,
                "hits": list(o.hits),
            }
            for o in outcomes
        ],
    }


Search = Callable[[str, int], tuple[Sequence[dict], bool]]


def search_with(retriever) -> Search:
    """The `Search` of a retriever: hit dicts (as `search --json` shows them) and its decision."""

    def search(question: str, k: int) -> tuple[list[dict], bool]:
        result = retriever.search(question, k=k)
        return result.to_json()["hits"], result.answerable  # hits carry their evidence

    return search


def run(
    search: Search, questions: Iterable[Question], k: int = 10, warmup: int = 2
) -> list[Outcome]:
    """Run `search(question, k) -> (hit dicts, answerable)` on each question, timing each call."""
    questions = list(questions)
    for q in questions[:warmup]:  # first calls pay for lazy loading; not a query's latency
        search(q.question, k)
    outcomes = []
    for q in questions:
        t0 = time.perf_counter()
        hits, answerable = search(q.question, k)
        seconds = time.perf_counter() - t0
        outcomes.append(
            Outcome(q, tuple(h["text"] for h in hits), not answerable, seconds, tuple(hits))
        )
    return outcomes


def format_table(reports: dict[str, dict]) -> str:
    """Markdown table: one row per retriever, R@5 per kind, then overall figures."""
    kinds = [k for k in KINDS if any(k in r["metrics"] for r in reports.values())]
    head = ["retriever"] + [f"{k} R@5" for k in kinds]
    head += ["all R@1", "all R@5", "all R@10", "all MRR@10", "all nDCG@10"]
    head += ["none declined", "answerable declined", "p50 ms", "p95 ms"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, r in reports.items():
        m, a, lat = r["metrics"], r["abstention"], r["latency_ms"]
        cells = [name] + [f"{m[k]['R@5']:.2f}" for k in kinds]
        cells += [f"{m['all'][key]:.3f}" for key in ("R@1", "R@5", "R@10", "MRR@10", "nDCG@10")]
        cells += [f"{a['none_abstained']:.2f}", f"{a['answerable_abstained']:.2f}"]
        cells += [f"{lat['p50']:.1f}", f"{lat['p95']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    n = reports[next(iter(reports))]["metrics"]["all"]["n"]
    lines.append(
        f"\n{n} answerable questions; R@5 per kind; latency is warm search time per query."
    )
    return "\n".join(lines)


def format_explain(outcomes: Sequence[Outcome], top: int = 5) -> str:
    """Per question: its first relevant rank, and why each of the top hits scored as it did
    (dense cosine and how it was taken, its z over the merged list, the lexical z and weight)."""
    lines = []
    for o in outcomes:
        q = o.question
        ranks = [r for r, t in enumerate(o.texts, 1) if matched_quote(t, q.quotes) is not None]
        verdict = "declined" if o.abstained else "answered"
        found = f"first relevant at {ranks[0]}" if ranks else "no relevant hit"
        lines.append(f"\n{q.id} [{q.kind}] {q.question}\n  {verdict}; {found}")
        for hit in o.hits[:top]:
            e = hit.get("evidence")
            mark = "*" if matched_quote(hit["text"], q.quotes) is not None else " "
            why = (
                f"dense {e['dense']:.3f} ({e['via']}) z {e['dense_z']:+.2f}"
                f" + {e['lexical_weight']} x lexical z {e['lexical_z']:+.2f} = {e['score']:+.2f}"
                if e
                else f"score {hit['score']:.3f}"
            )
            snippet = " ".join(hit["text"].split())[:70]
            lines.append(f"  {mark}{hit['rank']:>2} [{hit['lang']}] {why} | {snippet}")
    return "\n".join(lines)

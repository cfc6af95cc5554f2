"""`askdocs eval --conversations FILE`: conversations answered turn by turn, graded per turn.

A conversation file is JSONL, one conversation a line: {"id", "turns": [{"question", "kind",
"gold": [{"doc", "quote"}]}, ...]}. Each conversation starts afresh and its turns are asked in
order through the whole ask path (`assistant.service.Assistant.ask` with one
`assistant.conversation.Conversation`), so a follow-up is searched with the query its
predecessor left. A turn is *right* as an answer is in `eval --answers` (`assistant.grading`):
given, and a citation holds a gold quote. The figures are per turn position (first turns,
follow-ups) and per kind, with the searched query of every follow-up kept for reading.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from assistant.evaluate import KINDS
from assistant.grading import grade
from ingest.errors import InputError


@dataclass(frozen=True)
class DialogueTurn:
    question: str
    kind: str
    quotes: tuple[str, ...]


@dataclass(frozen=True)
class Dialogue:
    id: str
    turns: tuple[DialogueTurn, ...]


@dataclass(frozen=True)
class TurnOutcome:
    dialogue: str
    position: int  # 1 for a first turn
    turn: DialogueTurn
    query: str
    right: bool
    first: bool


def load_dialogues(path: str | Path) -> list[Dialogue]:
    path = Path(path)
    if not path.is_file():
        raise InputError(
            f"No conversations file at {path}.", hint="give a JSONL file, one conversation a line"
        )
    out = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            turns = tuple(
                DialogueTurn(
                    str(t["question"]),
                    str(t.get("kind", "")),
                    tuple(str(g["quote"]) for g in t.get("gold", [])),
                )
                for t in row["turns"]
            )
            if not turns:
                raise ValueError("no turns")
            out.append(Dialogue(str(row.get("id", n)), turns))
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(
                f"{path}, line {n}: not a conversation ({type(exc).__name__}: {exc}).",
                hint='each line: {"id": ..., "turns": [{"question": ..., "kind": ..., '
                '"gold": [{"doc": ..., "quote": ...}]}]}',
            ) from exc
    return out


# ask(question, conversation) -> the `ask --json` object; new() -> a fresh conversation
Ask = Callable[[str, object], dict]


def run_dialogues(
    ask: Ask, new: Callable[[], object], dialogues: list[Dialogue]
) -> list[TurnOutcome]:
    outcomes = []
    for d in dialogues:
        conversation = new()
        for i, turn in enumerate(d.turns, start=1):
            answer = ask(turn.question, conversation)
            g = grade(answer, turn.quotes)
            query = answer.get("query") or turn.question
            outcomes.append(TurnOutcome(d.id, i, turn, query, g.right, g.first))
    return outcomes


def _rate(rows: list[TurnOutcome]) -> dict:
    n = len(rows)
    return {
        "right": sum(o.right for o in rows) / n if n else 0.0,
        "first": sum(o.first for o in rows) / n if n else 0.0,
        "n": n,
    }


def summarize_dialogues(outcomes: list[TurnOutcome]) -> dict:
    """{"turns": {"1": rates, "2": …, "follow-ups": rates, "all": rates}, "kinds": {KIND: rates
    of follow-ups}, "conversations": n, "follow_ups": [{id, turn, question, query, right}]}."""
    by_pos: dict[str, list[TurnOutcome]] = {}
    for o in outcomes:
        by_pos.setdefault(str(o.position), []).append(o)
    follow = [o for o in outcomes if o.position > 1]
    turns = {p: _rate(rows) for p, rows in sorted(by_pos.items())}
    turns["follow-ups"] = _rate(follow)
    turns["all"] = _rate(outcomes)
    kinds = {}
    for kind in [*KINDS, *sorted({o.turn.kind for o in follow} - set(KINDS))]:
        rows = [o for o in follow if o.turn.kind == kind]
        if rows:
            kinds[kind] = _rate(rows)
    return {
        "turns": turns,
        "follow_up_kinds": kinds,
        "conversations": len({o.dialogue for o in outcomes}),
        "follow_ups": [
            {
                "id": o.dialogue,
                "turn": o.position,
                "question": o.turn.question,
                "query": o.query,
                "right": o.right,
            }  # fmt: skip
            for o in follow
        ],
    }


def format_dialogues(report: dict) -> str:
    """A table of right / first rates per turn position and per kind of follow-up, then the
    follow-ups answered wrong with the query that was searched."""
    lines = ["| turns | right | first | n |", "|---|---|---|---|"]
    for name, r in report["turns"].items():
        label = f"turn {name}" if name.isdigit() else name
        lines.append(f"| {label} | {r['right']:.2f} | {r['first']:.2f} | {r['n']} |")
    for kind, r in report["follow_up_kinds"].items():
        lines.append(f"| follow-ups {kind} | {r['right']:.2f} | {r['first']:.2f} | {r['n']} |")
    wrong = [f for f in report["follow_ups"] if not f["right"]]
    if wrong:
        lines.append("\nfollow-ups answered wrong (question → searched query):")
        lines += [f"  {f['id']}#{f['turn']}: {f['question']} → {f['query']}" for f in wrong]
    return "\n".join(lines)

"""Conversations: the turns of a chat, follow-ups resolved against the last one, saved as JSON.

How a follow-up is rewritten (its pronoun or ellipsis resolved to the previous turn's subject)
is `assistant.followup`; the rewritten query is kept in the turn, so the subject carries through
a chain of follow-ups.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from assistant.followup import is_follow_up, key_terms, resolved, rewrite
from assistant.records import Answer, Citation
from ingest.disk import write_atomic

__all__ = ["Conversation", "Turn", "is_follow_up", "key_terms", "resolve"]


def resolve(question: str, previous: Turn | str | None) -> str:
    """The query to search for `question` after `previous` (a turn, or only its query)."""
    if isinstance(previous, str):
        previous = Turn(previous, previous, "", True)
    return rewrite(question, previous)


@dataclass(frozen=True)
class Turn:
    question: str
    query: str
    answer: str  # the answer as shown (Answer.text)
    answered: bool
    mode: str = "extractive"
    citations: tuple[Citation, ...] = ()
    topic: str = ""  # the subject a follow-up was resolved to (assistant.followup)

    @classmethod
    def of(cls, answer: Answer, topic: str = "") -> Turn:
        return cls(
            answer.question,
            answer.query or answer.question,
            answer.text,
            answer.answered,
            answer.mode,
            tuple(answer.citations),
            topic,
        )

    def to_json(self) -> dict:
        d = asdict(self)
        d["citations"] = [c.to_json() for c in self.citations]
        return d

    @classmethod
    def from_json(cls, d: dict) -> Turn:
        cites = tuple(Citation(**c) for c in d.get("citations", []))
        return cls(
            d["question"],
            d["query"],
            d["answer"],
            d["answered"],
            d.get("mode", "extractive"),
            cites,
            str(d.get("topic", "")),
        )


@dataclass
class Conversation:
    turns: list[Turn] = field(default_factory=list)
    _topics: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def resolve(self, question: str) -> str:
        """The query to search for `question` in this conversation."""
        query, topic = resolved(question, self.turns[-1] if self.turns else None)
        self._topics[query] = topic  # read by `add` when the answer to it comes back
        return query

    def add(self, answer: Answer) -> Turn:
        turn = Turn.of(answer, self._topics.pop(answer.query, ""))
        self._topics.clear()
        self.turns.append(turn)
        return turn

    def clear(self) -> None:
        self.turns.clear()

    def to_json(self) -> dict:
        return {"version": 1, "turns": [t.to_json() for t in self.turns]}

    @classmethod
    def from_json(cls, data: dict) -> Conversation:
        return cls([Turn.from_json(t) for t in data.get("turns", [])])

    def save(self, path: str | Path) -> None:
        """Write atomically: an interrupted save leaves the old file intact."""
        write_atomic(Path(path), json.dumps(self.to_json(), ensure_ascii=False, indent=1))

    @classmethod
    def load(cls, path: str | Path) -> Conversation:
        from ingest.errors import InputError

        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls.from_json(data)
        except FileNotFoundError:
            return cls()
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(
                f"{path} is not an askdocs conversation file ({exc}).",
                "Give another --conversation file, or delete this one to start afresh.",
            ) from exc

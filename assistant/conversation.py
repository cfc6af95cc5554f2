"""Conversations: the turns of a chat, follow-ups resolved against the last one, saved as JSON.

How a follow-up is rewritten (its pronoun or ellipsis resolved to the previous turn's subject)
is `assistant.followup`; the rewritten query is kept in the turn, so the subject carries through
a chain of follow-ups. A follow-up's answer that holds nothing of what it asked about its subject
keeps its sentences under a notice (`on_subject`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from assistant.followup import (
    EN_PRONOUNS,
    GENERIC,
    ZH_PRONOUNS,
    is_follow_up,
    key_terms,
    resolved,
    rewrite,
)
from assistant.records import Answer, Citation
from ingest.disk import write_atomic
from ingest.text import terms, text_lang

__all__ = [
    "Conversation",
    "Turn",
    "is_follow_up",
    "key_terms",
    "on_subject",
    "resolve",
    "uncovered",
]


def resolve(question: str, previous: Turn | str | None) -> str:
    """The query to search for `question` after `previous` (a turn, or only its query)."""
    if isinstance(previous, str):
        previous = Turn(previous, previous, "", True)
    return rewrite(question, previous)


MAX_TURNS = 50  # kept per conversation (only the last one resolves a follow-up)
_TURN_FIELDS = {"question": str, "query": str, "answer": str, "answered": bool, "mode": str}
_CITATION_FIELDS = {"n": int, "source": str, "doc_id": str, "start": int, "end": int,
                    "text": str, "heading": str, "lang": str}  # fmt: skip


def _check(d: object, fields: dict[str, type], required: tuple[str, ...], what: str) -> None:
    """A ValueError unless `d` is an object whose fields have their JSON types (exactly: a
    number is not a string, true is not a number)."""
    if not isinstance(d, dict):
        raise ValueError(f"{what} is {type(d).__name__}, not an object")
    for key, kind in fields.items():
        if (key in d and type(d[key]) is not kind) or (key not in d and key in required):
            raise ValueError(f'{what}\'s "{key}" is missing or not a {kind.__name__}')


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
        """A turn of `Conversation.to_json`; a ValueError names the first field that is not."""
        _check(d, _TURN_FIELDS, ("question", "query", "answer", "answered"), "a turn")
        cites = d.get("citations", [])
        if not isinstance(cites, list):
            raise ValueError('a turn\'s "citations" is not a list')
        for c in cites:
            _check(
                c, _CITATION_FIELDS, ("n", "source", "doc_id", "start", "end", "text"), "a citation"
            )
        cites = tuple(Citation(**{k: c[k] for k in _CITATION_FIELDS if k in c}) for c in cites)
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

    def topic(self, query: str) -> str:
        """The subject `resolve` resolved `query` to ("" when it was searched as asked)."""
        return self._topics.get(query, "")

    def add(self, answer: Answer) -> Turn:
        turn = Turn.of(answer, self._topics.pop(answer.query, ""))
        self._topics.clear()
        self.turns.append(turn)
        del self.turns[:-MAX_TURNS]  # a long chat or a sent-back conversation stays bounded
        return turn

    def clear(self) -> None:
        self.turns.clear()

    def to_json(self) -> dict:
        return {"version": 1, "turns": [t.to_json() for t in self.turns]}

    @classmethod
    def from_json(cls, data: dict) -> Conversation:
        """The conversation `to_json` wrote (its last MAX_TURNS turns); a ValueError says what
        is wrong with anything else."""
        if not isinstance(data, dict):
            raise ValueError(f'it holds {type(data).__name__}, not an object with "turns"')
        turns = data.get("turns", [])
        if not isinstance(turns, list):
            raise ValueError('"turns" is not a list')
        return cls([Turn.from_json(t) for t in turns[-MAX_TURNS:]])

    def save(self, path: str | Path) -> None:
        """Write atomically: an interrupted save leaves the old file intact, and a save that
        fails (a folder, no permission, disk full) is an InputError; the turns stay here."""
        from ingest.errors import InputError

        try:
            write_atomic(Path(path), json.dumps(self.to_json(), ensure_ascii=False, indent=1))
        except OSError as exc:
            raise InputError(
                f"The conversation could not be saved to {path} ({exc.strerror or exc}).",
                hint="give the path of a file in a folder you can write, e.g. chat.json; "
                "the conversation is kept",
            ) from None

    @classmethod
    def load(cls, path: str | Path) -> Conversation:
        from ingest.errors import InputError

        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            return cls.from_json(data)
        except FileNotFoundError:
            return cls()
        except OSError as exc:  # a folder, no permission
            raise InputError(
                f"The conversation file {path} cannot be read ({exc.strerror or exc}).",
                "Give the path of a conversation file (it is created if missing).",
            ) from None
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            raise InputError(
                f"{path} is not an askdocs conversation file ({exc}).",
                "Give another --conversation file, or delete this one to start afresh.",
            ) from exc


def uncovered(question: str, topic: str, said: str) -> bool:
    """Whether what a resolved follow-up asks of its subject ("怎么清空它？": 清空) is in none
    of the answer's sentences `said`, as written, as part of a word ("size" in "maxsize") or
    through the word-translation table (清空 → clear, empty)."""
    from assistant.crossing import crossing

    pronouns = {p.lower() for p in EN_PRONOUNS | ZH_PRONOUNS}
    asked = {t for t in terms(question) - terms(topic) - pronouns if t.lower() not in GENERIC}
    if not asked:
        return False
    table = crossing()
    forms = asked | {w for t in asked for w in table.translations(t)}
    low = said.lower()
    return not any(f.lower() in low for f in forms)


def on_subject(answer: Answer, topic: str) -> Answer:
    """A follow-up's answer that says nothing of what was asked about its subject (the library
    names `lru_cache` but never how to clear it) keeps its sentences under the near-miss
    notice (assistant.detail): the reader sees it is what the library has, not the answer."""
    if not topic or not answer.answered or answer.near_miss:
        return answer
    if not uncovered(answer.question, topic, " ".join(s.text for s in answer.sentences)):
        return answer
    from assistant.detail import NOTICE

    lang = "zh" if text_lang(answer.question) == "zh" else "en"
    near = NOTICE[lang][1].format(names=topic)
    notice = f"{near}\n{answer.notice}" if answer.notice else near
    return replace(answer, notice=notice, near_miss=True)

"""Conversations: follow-up questions resolved against earlier turns, saved as JSON.

A follow-up ("那它和 list 有什么区别？", "what about in Python 3.8?", "它的参数是什么？") names its
topic only by a pronoun, an ellipsis or not at all. Rules, not a model, spot it: pronouns and
follow-up openers in Chinese or English, or a very short question. The searched query is then
the previous query's key terms (code identifiers, content words, jieba words) followed by the
question, so the topic carries through a chain of follow-ups.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from assistant.records import Answer, Citation
from ingest.disk import write_atomic
from ingest.text import HAN, content_words, cut, identifiers, is_code_name, text_lang

ZH_PRONOUNS = frozenset(
    "它 它们 它的 这 那 这个 那个 这些 那些 此 该 其 上述 上面 前面 刚才 这种 那种 这样 那样 后者 前者".split()  # noqa: SIM905
)
ZH_OPENERS = ("那", "那么", "还有", "另外", "那如果", "如果是", "和", "跟", "与", "而")
EN_PRONOUNS = frozenset(
    "it its it's they them their this that these those former latter one ones same".split()  # noqa: SIM905
)
EN_OPENERS = ("what about", "how about", "and ", "also", "what if", "but ", "or ", "then ", "so ")
MAX_TOPIC_TERMS = 6


def is_follow_up(question: str) -> bool:
    """Whether `question` leans on an earlier turn for its topic."""
    q = question.strip()
    if text_lang(q) == "zh":
        han = [w for w in cut(q) if HAN.match(w)]
        # jieba glues pronouns to what follows ("它会", "这么"), so look at word starts too.
        if q.startswith(ZH_OPENERS) or any(w in ZH_PRONOUNS or w[0] in "它这那" for w in han):
            return True
        short = sum(len(w) for w in han) <= 4 and not any(map(is_code_name, identifiers(q)))
        return short or (q.rstrip("？?。 ").endswith("呢") and sum(len(w) for w in han) <= 10)
    low = q.lower()
    words = re.findall(r"[a-z0-9_.']+", low)
    if low.startswith(EN_OPENERS) or any(w in EN_PRONOUNS for w in words):
        return True
    return len(words) <= 3


def key_terms(text: str, limit: int = MAX_TOPIC_TERMS) -> list[str]:
    """The topic of a query in reading order: identifiers, content words, jieba words."""
    out: list[str] = []
    for w in content_words(text):
        if w in ZH_PRONOUNS or w.lower() in EN_PRONOUNS:
            continue
        if w.lower() not in (o.lower() for o in out):
            out.append(w)
    return out[:limit]


def resolve(question: str, previous_query: str | None) -> str:
    """The query to search: the question, prefixed by the previous topic when it is a follow-up."""
    question = question.strip()
    if not previous_query or not is_follow_up(question):
        return question
    own = question.lower()
    topic = [t for t in key_terms(previous_query) if t.lower() not in own]
    return " ".join([*topic, question]) if topic else question


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

    @classmethod
    def of(cls, answer: Answer) -> Turn:
        return cls(
            answer.question,
            answer.query or answer.question,
            answer.text,
            answer.answered,
            answer.mode,
            tuple(answer.citations),
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
        )


@dataclass
class Conversation:
    turns: list[Turn] = field(default_factory=list)

    def resolve(self, question: str) -> str:
        """The query to search for `question` in this conversation."""
        return resolve(question, self.turns[-1].query if self.turns else None)

    def add(self, answer: Answer) -> Turn:
        turn = Turn.of(answer)
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

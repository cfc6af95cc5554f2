"""Saved chats: each conversation of the app kept as one JSON file in the data home.

`$ASKDOCS_HOME/chats/LIBRARY/ID.json` holds the `assistant.conversation.Conversation` (what a
follow-up is resolved against) and every answer as `Answer.to_json` gave it (what the page shows
again), written atomically after each answer (`ingest.disk.write_atomic`): an app restart or a
reloaded tab finds the chat as it was. Outside the library's own directory, so that no ingest,
sweep or `--rebuild` ever touches them; per library, since their citations point into it.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from assistant.conversation import Conversation
from assistant.records import Answer, Citation, Sentence
from ingest.disk import write_atomic

_ID = re.compile(r"^[0-9a-f]{12}$")  # what `new_id` makes: never a path
TITLE_CHARS = 60


@dataclass(frozen=True)
class ChatInfo:
    id: str
    title: str  # the first question, shortened
    updated: float  # seconds since the epoch


def new_id() -> str:
    return secrets.token_hex(6)


class ChatStore:
    """The saved chats of one library."""

    def __init__(self, home: Path, library: str) -> None:
        self.folder = Path(home) / "chats" / library

    def _path(self, chat_id: str) -> Path | None:
        return self.folder / f"{chat_id}.json" if _ID.match(chat_id or "") else None

    def save(self, chat_id: str, conversation: Conversation, answers: list[dict]) -> None:
        path = self._path(chat_id)
        if path is None or not conversation.turns:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        title = conversation.turns[0].question
        title = title if len(title) <= TITLE_CHARS else title[: TITLE_CHARS - 1] + "…"
        data = {"version": 1, "title": title, "updated": time.time(),
                "conversation": conversation.to_json(), "answers": answers}  # fmt: skip
        write_atomic(path, json.dumps(data, ensure_ascii=False))

    def load(self, chat_id: str) -> tuple[Conversation, list[Answer]] | None:
        """The conversation and its answers, or None if there is no such (readable) chat."""
        path = self._path(chat_id)
        try:
            data = json.loads(path.read_text(encoding="utf-8")) if path else None
            if data is None:
                return None
            return (
                Conversation.from_json(data["conversation"]),
                [answer_of(a) for a in data["answers"]],
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None  # a damaged file is not a chat: the list leaves it out

    def list(self) -> list[ChatInfo]:
        """Saved chats, the most recent first."""
        out = []
        for path in self.folder.glob("*.json") if self.folder.is_dir() else ():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                out.append(ChatInfo(path.stem, str(data["title"]), float(data["updated"])))
            except (OSError, ValueError, KeyError, TypeError):
                continue
        return sorted(out, key=lambda c: -c.updated)

    def delete(self, chat_id: str) -> None:
        path = self._path(chat_id)
        if path is not None:
            path.unlink(missing_ok=True)


def answer_of(data: dict) -> Answer:
    """An answer again from its `Answer.to_json` (without the passages searched: the page
    reads a citation's context from the library)."""
    sentences = tuple(
        Sentence(s["text"], tuple(s["citations"]), s.get("supported", True), s.get("code", False))
        for s in data["sentences"]
    )
    fields = Citation.__dataclass_fields__
    citations = tuple(
        Citation(**{k: v for k, v in c.items() if k in fields}) for c in data["citations"]
    )
    generated = data.get("generated")
    return Answer(
        data["question"], data["answered"], sentences, citations, (), data.get("query", ""),
        data.get("notice", ""), data.get("mode", "extractive"), tuple(data.get("warnings", [])),
        tuple((g["term"], g["translation"]) for g in data.get("glossary", [])),
        data.get("fallback", False),
        (generated["supported"], generated["sentences"]) if generated else None,
        data.get("near_miss", False),
    )  # fmt: skip

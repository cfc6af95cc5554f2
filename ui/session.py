"""What the pages share: the per-process Assistant, per-browser-session settings, messages.

The Assistant (library + embedding model) is loaded once per process with `st.cache_resource`
and shared by every browser session; conversations and settings live only in
`st.session_state`, so sessions never see each other's questions. Writes to the library
(ingest, delete) go through one lock per library so two sessions cannot interleave them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from assistant.config import AssistantConfig, LLMSettings
from assistant.service import Assistant
from index.config import DEFAULT_MODEL, LibraryConfig, default_home
from ingest import settings
from ingest.errors import AskdocsError
from ui.highlight import md_escape
from ui.labels import label, stage_name


@dataclass(frozen=True)
class Settings:
    """One browser session's sidebar choices."""

    ui_lang: str = "en"
    mode: str = "extractive"
    base_url: str = ""
    model: str = ""
    api_key: str = ""
    timeout: float = 30.0
    k: int = 5
    lang: str | None = None  # source language filter: None, "zh" or "en"


@dataclass(frozen=True)
class Target:
    """Which library this process serves (from `askdocs ui --library/--model`)."""

    home: Path
    library: str
    model: str


def target() -> Target:
    return Target(
        home=default_home(),
        library=settings.LIBRARY.get(),
        model=settings.MODEL.get() or DEFAULT_MODEL,
    )


@st.cache_resource(show_spinner=False)
def _shared(home: str, library: str, model: str) -> tuple[Assistant, threading.Lock, dict]:
    """Open the library once per process: (assistant, write lock, process-wide flags)."""
    config = AssistantConfig(library=LibraryConfig(name=library, home=Path(home), model=model))
    assistant = Assistant(config)
    assistant.library  # noqa: B018 -- open now, inside the cache's own lock, not per session
    return assistant, threading.Lock(), {"sample_checked": False, "startup": None}


def shared() -> tuple[Assistant, threading.Lock, dict]:
    t = target()
    return _shared(str(t.home), t.library, t.model)


def follow_library() -> None:
    """Once per page run: pick up a library generation another process published (a CLI
    ingest), so every session sees the documents on disk. Skipped while this process is
    writing; it loads its own generation when done."""
    assistant, lock, _ = shared()
    if lock.acquire(blocking=False):
        try:
            assistant.refresh()
        finally:
            lock.release()


def base_assistant() -> Assistant:
    return shared()[0]


@contextmanager
def writing() -> Iterator[Assistant]:
    """The shared assistant, held exclusively while the library is changed."""
    assistant, lock, _ = shared()
    with lock:
        yield assistant


def session_assistant(settings: Settings) -> Assistant:
    """The shared library and model with this session's answer settings."""
    base, lock, _ = shared()
    # One retriever per library version, built by whichever session comes first; while a write
    # holds the lock (the first start's ingest, an upload) a question is answered from the
    # library as published, never kept waiting for the write (ui.startup).
    if lock.acquire(blocking=False):
        try:
            base.retriever  # noqa: B018
        finally:
            lock.release()
    llm = LLMSettings(
        base_url=settings.base_url,
        model=settings.model,
        api_key=settings.api_key,
        timeout=settings.timeout,
        origin=label("llm_origin", settings.ui_lang),
        lang=settings.ui_lang,
    )
    return base.with_config(k=settings.k, mode=settings.mode, llm=llm, lang=settings.lang)


def progress_bar(lang: str) -> tuple[Callable[[str, int, int], None], Callable[[], None]]:
    """A `(stage, done, total)` callback feeding an `st.progress` bar, and a way to remove it."""
    bar = st.progress(0.0, text=label("thinking", lang))
    last: list[float | str] = [0.0, ""]  # when the bar last moved, and its stage

    def update(stage: str, done: int, total: int) -> None:
        now = time.monotonic()
        # a delta per chunk would flood the socket; a new stage always shows
        if done < total and now - float(last[0]) < 0.1 and stage == last[1]:
            return
        last[:] = [now, stage]
        frac = min(max(done / total, 0.0), 1.0) if total else 0.0
        if stage == "model":  # one step that takes long the first time: no count
            bar.progress(frac, text=label("stage_model", lang))
            return
        bar.progress(
            frac,
            text=label("progress", lang, stage=stage_name(stage, lang), done=done, total=total),
        )

    def remove() -> None:
        bar.empty()

    return update, remove


def show_error(exc: AskdocsError, lang: str) -> None:
    """An askdocs error as a message and a hint: never a traceback."""
    hint = label("error_hint", lang, hint=exc.hint) if exc.hint else ""
    st.error(md_escape(exc.message) + ("\n\n" + md_escape(hint) if hint else ""))

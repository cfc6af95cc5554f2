"""The first start: the bundled sample library ingested in the background, one file at a time.

On an empty library the app used to stay blank until the whole sample library was in (about
four minutes on a busy machine, most of it the one large English file). Now each file is its
own write, smallest first, on a thread of the app's process: every write publishes a
generation, so the chat answers from the files already in while the rest continue. Each
session sees the stage (the embedding model's build or load, then each file's reading,
embedding and writing) from a fragment that reruns every second until the last file is in,
then the outcome once. The write lock is held per file: an upload waits for one file, and a
question never waits for it (`ui.session.session_assistant`).

A library built by an older askdocs (stale keyword index) is still updated before the page
shows: seconds, and no model.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from pathlib import Path

import streamlit as st

from ingest.errors import AskdocsError
from ui.highlight import md_escape
from ui.labels import label, stage_name
from ui.session import progress_bar, shared

REFRESH_S = 1.0  # how often a session redraws the progress while files go in


@dataclass(frozen=True)
class State:
    """Where the background ingest is; replaced whole, so a reader never sees half an update."""

    files: tuple[str, ...]
    committed: tuple[str, ...] = ()  # in the library, answerable
    current: str = ""
    stage: str = ""  # index.writer's progress stage: model, scan, load, embed, index, …
    done: int = 0
    total: int = 0
    documents: int = 0
    error: str = ""  # an AskdocsError's message (and hint) that stopped it
    finished: bool = False

    @property
    def fraction(self) -> float:
        step = self.done / self.total if self.total else 0.0
        return min((len(self.committed) + step) / max(len(self.files), 1), 1.0)


class Startup:
    """The sample library's ingest on a thread: `state` says how far it is."""

    def __init__(self, assistant, lock: threading.Lock, files: list[Path]) -> None:  # noqa: ANN001
        self.state = State(tuple(f.name for f in files))
        self._assistant, self._lock, self._files = assistant, lock, files
        self._thread = threading.Thread(target=self._run, name="askdocs-sample", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _progress(self, stage: str, done: int, total: int) -> None:
        self.state = replace(self.state, stage=stage, done=done, total=total)

    def _run(self) -> None:
        try:
            for path in self._files:
                self.state = replace(self.state, current=path.name, stage="", done=0, total=0)
                with self._lock:  # one file's time: uploads wait for it, questions do not
                    self._assistant.ingest([path], progress=self._progress)
                    count = len(self._assistant.documents())
                committed = (*self.state.committed, path.name)
                self.state = replace(self.state, committed=committed, documents=count)
        except AskdocsError as exc:
            self.state = replace(self.state, error=f"{exc.message} {exc.hint}".strip())
        except Exception as exc:  # noqa: BLE001 -- a thread's failure must reach the page, not a log
            self.state = replace(self.state, error=f"{type(exc).__name__}: {exc}")
        finally:
            self.state = replace(self.state, current="", finished=True)


def begin(lang: str) -> None:
    """Once per process: start the sample library's ingest if the library is empty, or bring a
    library of an older askdocs up to date (synchronously: seconds)."""
    assistant, lock, flags = shared()
    if flags["sample_checked"]:
        return
    with lock:
        if flags["sample_checked"]:
            return
        if assistant.is_empty():
            flags["startup"] = Startup(assistant, lock, assistant.sample_files())
            flags["startup"].start()
        elif assistant.library.stale_tokens:  # built by an older askdocs: seconds, no model
            update, done = progress_bar(lang)
            try:
                assistant.ingest([], progress=update)
            finally:
                done()
        flags["sample_checked"] = True


def status(lang: str) -> None:
    """The first start's progress while it goes on; its outcome once, to the sessions that
    watched it."""
    startup: Startup | None = shared()[2].get("startup")
    if startup is None:
        return
    state = startup.state
    if not state.finished:
        st.session_state["startup_seen"] = True
        _live(lang)
    elif st.session_state.pop("startup_seen", False):
        _outcome(state, lang)


@st.fragment(run_every=REFRESH_S)
def _live(lang: str) -> None:
    state = shared()[2]["startup"].state
    if state.finished:
        st.rerun()  # the whole page: the document list and the outcome
    n = len(state.files)
    st.info(label("sample_ingest", lang, done=len(state.committed), total=n))
    step = label("stage_model", lang) if state.stage == "model" else ""
    if state.stage and state.stage != "model":
        step = label(
            "progress",
            lang,
            stage=stage_name(state.stage, lang),
            done=state.done,
            total=state.total,
        )
    where = label("sample_file", lang, i=len(state.committed) + 1, n=n, name=state.current)
    st.progress(state.fraction, text=md_escape(f"{where} · {step}" if step else where))
    if state.committed:
        st.caption(md_escape(label("sample_ready", lang, names=", ".join(state.committed))))


def _outcome(state: State, lang: str) -> None:
    if state.error:
        st.error(md_escape(label("sample_failed", lang, error=state.error)))
    else:
        st.success(label("sample_done", lang, n=state.documents))

"""The document page: a whole document with the cited span highlighted and scrolled to.

Its place is in the URL (`?page=doc&doc=<id>&start=<int>&end=<int>`), so a citation link can be
bookmarked, shared or opened in a new tab and shows the same span again.
"""

from __future__ import annotations

import bisect

import streamlit as st

from ingest.errors import AskdocsError
from ingest.records import Chunk
from ui.highlight import document_html, md_escape, scroll_script
from ui.labels import label, lang_badge
from ui.session import Settings, base_assistant, show_error

DOC_HEIGHT = 640  # pixels


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _go(doc_id: str, start: int | None = None, end: int | None = None) -> None:
    """Point the URL (and so this page) at a document and optionally a span in it."""
    st.query_params.clear()
    st.query_params.update({"page": "doc", "doc": doc_id})
    if start is not None and end is not None:
        st.query_params.update({"start": str(start), "end": str(end)})


def _picked() -> None:
    _go(st.session_state["doc_pick"])


def current_chunk(chunks: list[Chunk], start: int | None) -> int | None:
    """Index of the chunk holding offset `start` (the last one starting at or before it)."""
    if start is None or not chunks:
        return None
    i = bisect.bisect_right([c.start for c in chunks], start) - 1
    return i if i >= 0 else None


def _document_list(infos: list, doc_id: str | None, lang: str) -> None:
    needle = st.text_input(label("doc_filter", lang), key="doc_filter").strip().lower()
    shown = [i for i in infos if needle in f"{i.title} {i.source}".lower()] if needle else infos
    if doc_id and doc_id not in {i.doc_id for i in shown}:
        shown = [i for i in infos if i.doc_id == doc_id] + shown
    if not shown:
        st.caption(label("no_match", lang))
        return
    titles = {i.doc_id: f"{i.title} ({lang_badge(i.lang, lang)})" for i in shown}
    # The URL is the truth; the list follows it (a citation link may have changed it).
    if doc_id in titles:
        st.session_state["doc_pick"] = doc_id
    else:
        st.session_state.pop("doc_pick", None)
    with st.container(height=DOC_HEIGHT + 120):
        st.radio(
            label("doc_pick", lang),
            list(titles),
            format_func=lambda d: md_escape(titles[d]),  # options are Markdown
            key="doc_pick",
            on_change=_picked,
            label_visibility="collapsed",
        )


def _navigation(doc_id: str, chunks: list[Chunk], cur: int | None, lang: str) -> None:
    prev_i = None if cur is None or cur <= 0 else cur - 1
    next_i = 0 if cur is None else (cur + 1 if cur + 1 < len(chunks) else None)
    cols = st.columns([1, 1, 2])
    for col, key, idx in ((cols[0], "prev", prev_i), (cols[1], "next", next_i)):
        target = chunks[idx] if idx is not None else None
        col.button(
            label(key, lang),
            key=f"chunk_{key}",
            disabled=target is None,
            on_click=_go,
            args=(doc_id, target.start, target.end) if target else (doc_id,),
        )
    if cur is not None:
        head = chunks[cur].heading
        pos = label("chunk_pos", lang, i=cur + 1, n=len(chunks))
        cols[2].caption(md_escape(f"{pos} · {head}" if head else pos))


def page(settings: Settings) -> None:
    lang = settings.ui_lang
    assistant = base_assistant()
    infos = list(assistant.documents())
    if not infos:
        st.info(label("doc_none", lang))
        return
    doc_id = st.query_params.get("doc") or infos[0].doc_id
    start, end = _int(st.query_params.get("start")), _int(st.query_params.get("end"))
    known = doc_id in {i.doc_id for i in infos}
    side, main = st.columns([1, 3], gap="medium")
    with side:
        _document_list(infos, doc_id if known else None, lang)
    with main:
        if not known:
            st.error(label("doc_missing", lang) + "\n\n" + label("doc_missing_hint", lang))
            return
        try:
            doc = assistant.document(doc_id)
            chunks = sorted(assistant.chunks(doc_id), key=lambda c: c.start)
        except AskdocsError as exc:
            show_error(exc, lang)
            return
        if doc is None:  # deleted by another session a moment ago
            st.error(label("doc_missing", lang) + "\n\n" + label("doc_missing_hint", lang))
            return
        info = next(i for i in infos if i.doc_id == doc_id)
        if start is not None and end is not None and not 0 <= start <= end <= len(doc.text):
            st.warning(
                label("span_bad", lang, start=start, end=end)
                + "\n\n"
                + label("span_bad_hint", lang)
            )
            start = end = None
        if start is None or end is None:
            start = end = None
        st.subheader(md_escape(doc.title or doc.source), anchor=False)
        st.caption(
            md_escape(
                label(
                    "doc_meta",
                    lang,
                    source=doc.source,
                    language=lang_badge(doc.lang, lang),
                    chunks=info.chunks,
                    chars=len(doc.text),
                )
            )
        )
        _navigation(doc_id, chunks, current_chunk(chunks, start), lang)
        # The document scrolls in its own box so the list and the buttons stay in view.
        with st.container(height=DOC_HEIGHT, border=True):
            st.html(document_html(doc.text, doc.format, start, end))
        if start is not None:
            st.html(scroll_script(start, end), unsafe_allow_javascript=True)

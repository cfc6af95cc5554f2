"""The library page: upload files, see what is indexed, delete or re-index a document."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from ingest.errors import AskdocsError, InputError
from ingest.loading import key_path
from ingest.ocr import summary
from ingest.text import printable
from ui.highlight import md_escape
from ui.labels import label, lang_badge
from ui.session import Settings, base_assistant, progress_bar, show_error, target, writing
from ui.upload import (
    ALLOWED_SUFFIXES,
    MAX_UPLOAD_MB,
    add_uploads,
    delete_document,
    uploads_dir,
)


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def _upload_section(lang: str) -> None:
    t = target()
    folder = uploads_dir(t.home, t.library)
    n = st.session_state.setdefault("upload_round", 0)  # a new key empties the uploader
    if lang != "en":
        st.html(_uploader_css(lang))
    files = st.file_uploader(
        label("upload", lang),
        type=[s.lstrip(".") for s in ALLOWED_SUFFIXES],
        accept_multiple_files=True,
        help=label("upload_help", lang, mb=MAX_UPLOAD_MB),
        key=f"uploader_{n}",
        max_upload_size=MAX_UPLOAD_MB,
    )
    if not st.button(label("upload_go", lang), disabled=not files, key="upload_go"):
        return
    pairs = [(f.name, f.getvalue()) for f in files or []]
    try:
        with writing() as assistant:
            update, done = progress_bar(lang)
            try:
                added = add_uploads(assistant, pairs, folder, progress=update)
            finally:
                done()
    except AskdocsError as exc:
        show_error(exc, lang)
        return
    st.session_state["upload_round"] = n + 1
    notes = []
    if added.new:
        notes.append(label("upload_done", lang, n=len(added.new)))
    if added.unchanged:
        notes.append(label("upload_skipped", lang, n=len(added.unchanged)))
    if added.refused:
        notes.append(label("upload_refused", lang, names=", ".join(added.refused)))
    st.session_state["library_notice"] = " ".join(notes)
    if added.warnings:
        st.session_state["library_warnings"] = list(added.warnings)
    st.rerun()


def _uploader_css(lang: str) -> str:
    """Streamlit writes the uploader's own button, size line and drag-over text in English,
    with no setting for them; in another interface language CSS hides those and shows our
    labels instead. The drag-over text has no test id: it is the block Streamlit (1.67) puts
    right after the file input while files are dragged over, the one without a button."""
    types = "、".join(s.lstrip(".").upper() for s in ALLOWED_SUFFIXES)
    button = label("upload_browse", lang).replace('"', "")
    limit = label("upload_limit", lang, mb=MAX_UPLOAD_MB, types=types).replace('"', "")
    dragging = label("upload_drop", lang).replace('"', "")
    drop = '[data-testid="stFileUploaderDropzone"]'
    notes = '[data-testid="stFileUploaderDropzoneInstructions"]'
    overlay = f'{drop} > [data-testid="stFileUploaderDropzoneInput"] + div:not(:has(button))'
    return (
        "<style>"
        f"{drop} button * {{ font-size: 0 !important; }}"
        f'{drop} button::after {{ content: "{button}"; font-size: 0.875rem; }}'
        f"{notes} * {{ font-size: 0 !important; }}"
        f'{notes}::after {{ content: "{limit}"; font-size: 0.8rem; opacity: 0.7; }}'
        f"{overlay} * {{ font-size: 0 !important; }}"
        f'{overlay} > *::after {{ content: "{dragging}"; font-size: 1rem; }}'
        "</style>"
    )


def _table(infos: list, lang: str) -> None:
    rows = [
        {
            label("col_title", lang): i.title,
            label("col_source", lang): i.source,
            label("col_lang", lang): lang_badge(i.lang, lang),
            label("col_chunks", lang): i.chunks,
            label("col_chars", lang): i.chars,
            label("col_ocr", lang): summary(i.encoding),
            label("col_ingested", lang): _when(i.ingested_at),
        }
        for i in infos
    ]
    st.dataframe(rows, hide_index=True, width="stretch")


def _delete(lang: str) -> None:
    doc_id = st.session_state.get("manage_pick")  # read now: the choice may be newer than args
    if st.session_state.pop("delete_pending", None) != doc_id:
        return  # confirmed for another document than the one now picked: do nothing
    t = target()
    try:
        with writing() as assistant:
            info = delete_document(assistant, doc_id, uploads_dir(t.home, t.library))
        st.session_state.pop("manage_pick", None)
    except AskdocsError as exc:
        st.session_state["library_error"] = exc
        return
    if info is None:
        return
    st.session_state["library_notice"] = label("deleted", lang, title=info.title)


def _reindex(lang: str) -> None:
    doc_id = st.session_state.get("manage_pick")
    try:
        with writing() as assistant:
            info = next(i for i in assistant.documents() if i.doc_id == doc_id)
            path = key_path(info.path)  # the stored key: raw bytes for a non-UTF-8 name
            if not path.is_file():
                raise InputError(
                    f"{info.source} is no longer at {printable(str(path))}.",
                    hint="upload the file again, or delete this document",
                )
            assistant.ingest([path])
    except AskdocsError as exc:
        st.session_state["library_error"] = exc
        return
    except StopIteration:
        return
    st.session_state["library_notice"] = label("reindexed", lang, title=info.title)


def page(settings: Settings) -> None:
    lang = settings.ui_lang
    notice = st.session_state.pop("library_notice", None)
    if notice:
        st.success(md_escape(notice))
    error = st.session_state.pop("library_error", None)
    if error is not None:
        show_error(error, lang)
    for w in st.session_state.pop("library_warnings", []):
        st.warning(md_escape(w))
    _upload_section(lang)
    infos = list(base_assistant().documents())
    st.subheader(label("documents", lang), anchor=False)
    if not infos:
        st.info(label("library_empty", lang))
        return
    _table(infos, lang)
    titles = {i.doc_id: f"{i.title} — {i.source}" for i in infos}
    st.selectbox(
        label("manage_pick", lang), list(titles), format_func=titles.__getitem__, key="manage_pick"
    )
    cols = st.columns([1, 1, 4])
    cols[0].button(label("delete", lang), key="doc_delete", on_click=_ask_delete)
    cols[1].button(label("reindex", lang), key="doc_reindex", on_click=_reindex, args=(lang,))
    pick = st.session_state.get("manage_pick")
    if pick is not None and st.session_state.get("delete_pending") == pick:
        # Deleting cannot be undone: it takes a second, deliberate click on a named document.
        title = next((i.title for i in infos if i.doc_id == pick), pick)
        st.warning(md_escape(label("delete_confirm", lang, title=title)))
        yes, no = st.columns([1, 5])
        yes.button(
            label("delete_yes", lang),
            key="doc_delete_yes",
            on_click=_delete,
            args=(lang,),
            type="primary",
        )
        no.button(label("delete_no", lang), key="doc_delete_no", on_click=_cancel_delete)


def _ask_delete() -> None:
    st.session_state["delete_pending"] = st.session_state.get("manage_pick")


def _cancel_delete() -> None:
    st.session_state.pop("delete_pending", None)

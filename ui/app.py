"""The askdocs Streamlit app (`askdocs ui`): chat, document and library pages plus settings.

The page is chosen by the `page` query parameter so that a citation link
(`?page=doc&doc=…&start=…&end=…`) opens the document page at the cited span, in any session.
The library comes from ASKDOCS_HOME / ASKDOCS_LIBRARY / ASKDOCS_MODEL, set by `askdocs ui`.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # `streamlit run ui/app.py` runs this as a script
    _root = str(Path(__file__).resolve().parent.parent)
    if _root not in sys.path:
        sys.path.insert(0, _root)

import streamlit as st  # noqa: E402

from assistant.config import LLMSettings  # noqa: E402
from ingest.errors import AskdocsError  # noqa: E402
from ui import chat, manage, reader, startup  # noqa: E402
from ui.highlight import CSS, md_escape  # noqa: E402
from ui.labels import LANG_NAMES, UI_LANGS, label  # noqa: E402
from ui.session import (  # noqa: E402
    Settings,
    follow_library,
    shared,
    show_error,
    target,
)

PAGES = ("chat", "doc", "library")
SOURCE_LANGS = ("all", "zh", "en")


def _nav_changed() -> None:
    """Keep the URL in step with the page; remember the document place while away from it."""
    new = st.session_state["nav"]
    if st.query_params.get("page") == "doc":
        st.session_state["doc_params"] = st.query_params.to_dict()
    st.query_params.clear()
    if new == "doc":
        st.query_params.update(st.session_state.get("doc_params", {}))
    st.query_params["page"] = new


# Widgets whose labels change with the interface language. Streamlit treats a widget whose
# label changed as a new one and drops its value; writing each value back at the start of a
# run keeps it, so switching to 中文 keeps the page, the answer mode and the source language.
KEPT = ("nav", "mode", "k", "lang_filter", "llm_base_url", "llm_model", "llm_key", "llm_timeout")


def _defaults() -> None:
    """First run of a browser session: page and interface language from the URL (a citation
    opened from a Chinese screen opens in Chinese), LLM endpoint from the environment; every
    run: the settings' values kept across a language switch."""
    for key in KEPT:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]
    if "ui_lang" not in st.session_state and st.query_params.get("lang") in UI_LANGS:
        st.session_state["ui_lang"] = st.query_params["lang"]
    if "nav" not in st.session_state:
        page = st.query_params.get("page", "chat")
        st.session_state["nav"] = page if page in PAGES else "chat"
    if "llm_base_url" not in st.session_state:
        env = LLMSettings()
        st.session_state.update(
            llm_base_url=env.base_url,
            llm_model=env.model,
            llm_key=env.api_key,
            llm_timeout=int(env.timeout),
        )


def sidebar() -> Settings:
    _defaults()
    sb = st.sidebar
    sb.title("askdocs")
    ui_lang = sb.radio(
        "Language · 界面语言",
        UI_LANGS,
        format_func=LANG_NAMES.get,
        key="ui_lang",
        horizontal=True,
    )
    sb.caption(md_escape(f"{label('library', ui_lang)}: {target().library}"))
    sb.radio(
        label("page", ui_lang),
        PAGES,
        format_func=lambda p: label(f"page_{p}", ui_lang),
        key="nav",
        on_change=_nav_changed,
    )
    sb.subheader(label("settings", ui_lang), anchor=False)
    mode = sb.radio(
        label("mode", ui_lang),
        ("extractive", "llm"),
        format_func=lambda m: label(f"mode_{m}", ui_lang),
        key="mode",
    )
    if mode == "llm":
        sb.text_input(label("llm_base_url", ui_lang), key="llm_base_url")
        sb.text_input(label("llm_model", ui_lang), key="llm_model")
        sb.text_input(label("llm_key", ui_lang), key="llm_key", type="password")
        sb.number_input(label("llm_timeout", ui_lang), 5, 600, step=5, key="llm_timeout")
    st.session_state.setdefault("k", 5)  # not as the slider's value: it is kept in KEPT
    k = sb.slider(label("k", ui_lang), 1, 10, key="k")
    source_lang = sb.selectbox(
        label("lang_filter", ui_lang),
        SOURCE_LANGS,
        format_func=lambda s: label("lang_all", ui_lang) if s == "all" else LANG_NAMES[s],
        key="lang_filter",
    )
    return Settings(
        ui_lang=ui_lang,
        mode=mode,
        base_url=st.session_state.get("llm_base_url", "").strip(),
        model=st.session_state.get("llm_model", "").strip(),
        api_key=st.session_state.get("llm_key", ""),
        timeout=float(st.session_state.get("llm_timeout", 30)),
        k=int(k),
        lang=None if source_lang == "all" else source_lang,
    )


def main() -> None:
    st.set_page_config(page_title="askdocs", layout="wide")
    st.html(CSS)
    settings = sidebar()
    lang = settings.ui_lang
    try:
        with st.spinner(label("loading", lang)):
            shared()
        follow_library()
        startup.begin(lang)  # an empty library: the sample library goes in behind the page
        startup.status(lang)
        page = st.session_state["nav"]
        if page == "doc":
            reader.page(settings)
        elif page == "library":
            manage.page(settings)
        else:
            chat.page(settings, target().library)
    except AskdocsError as exc:
        show_error(exc, lang)


main()

"""The chat page: questions, cited answers (LLM mode: shown once checked) and source cards."""

from __future__ import annotations

import time

import streamlit as st

from assistant.chats import ChatStore, new_id
from assistant.conversation import Conversation
from assistant.records import Answer, Citation
from ingest.errors import AskdocsError
from ui.highlight import answer_html, card_html, md_escape, refusal_html
from ui.labels import label, lang_badge
from ui.session import Settings, base_assistant, session_assistant, show_error, target

SNIPPET_CONTEXT = 200  # characters around a citation that no shown hit contains


def _store() -> ChatStore:
    t = target()
    return ChatStore(t.home, t.library)


def _state() -> tuple[list[dict], Conversation]:
    """This session's chat: the one the URL names (a reloaded tab, a restarted app), else new."""
    if "history" not in st.session_state:
        wanted = st.query_params.get("chat")
        clear()
        if wanted:
            open_chat(wanted)
    return st.session_state["history"], st.session_state["conversation"]


def clear() -> None:
    """A new chat (the saved ones stay in the sidebar's list)."""
    st.session_state["history"] = []
    st.session_state["conversation"] = Conversation()
    st.session_state["chat_id"] = new_id()
    st.query_params.pop("chat", None)


def open_chat(chat_id: str) -> None:
    saved = _store().load(chat_id)
    if saved is None:
        return
    conversation, answers = saved
    history: list[dict] = []
    for answer in answers:
        history += [
            {"role": "user", "text": answer.question},
            {"role": "assistant", "answer": answer},
        ]
    st.session_state.update(history=history, conversation=conversation, chat_id=chat_id)
    st.query_params["chat"] = chat_id


def _save() -> None:
    answers = [m["answer"].to_json() for m in st.session_state["history"]
               if m["role"] == "assistant" and isinstance(m["answer"], Answer)]  # fmt: skip
    chat_id = st.session_state["chat_id"]
    _store().save(chat_id, st.session_state["conversation"], answers)
    st.query_params["chat"] = chat_id  # a reload opens this chat again


def _delete(chat_id: str) -> None:
    _store().delete(chat_id)
    if st.session_state.get("chat_id") == chat_id:
        clear()


def chat_list(lang: str) -> None:
    """The saved chats of this library in the sidebar: open one, or delete it."""
    chats = _store().list()
    if not chats:
        return
    sb = st.sidebar
    sb.subheader(label("chats", lang), anchor=False)
    for info in chats:
        left, right = sb.columns([5, 1])
        current = info.id == st.session_state.get("chat_id")
        left.button(md_escape(info.title), key=f"chat_{info.id}", on_click=open_chat,
                    args=(info.id,), type="primary" if current else "secondary",
                    use_container_width=True)  # fmt: skip
        right.button("✕", key=f"del_{info.id}", on_click=_delete, args=(info.id,),
                     help=md_escape(label("chat_delete", lang)))  # fmt: skip


def _snippet(answer: Answer, c: Citation) -> tuple[str, int, str]:
    """Text around citation `c` (the hit chunk holding it), its start offset, its heading."""
    for h in answer.hits:
        ch = h.chunk
        if ch.doc_id == c.doc_id and ch.start <= c.start and c.end <= ch.end:
            return ch.text, ch.start, ch.heading
    try:
        doc = base_assistant().document(c.doc_id)
    except AskdocsError:
        doc = None
    if doc is None:  # deleted since the answer was given
        return c.text, c.start, c.heading
    text = doc.text
    a = max(c.start - SNIPPET_CONTEXT, 0)
    return text[a : c.end + SNIPPET_CONTEXT], a, c.heading


def render_answer(answer: Answer, lang: str) -> None:
    if not answer.answered:  # not covered: a notice with the nearest sections, not an answer
        st.html(refusal_html(answer, lang))
        return
    st.html(answer_html(answer, unsupported=label("unsupported", lang), lang=lang))
    if not answer.sentences:
        st.caption(label("no_answer", lang))
    if answer.citations:
        st.caption(label("sources", lang))
        # Citations from one passage share a card, with each cited span highlighted.
        cards: dict[tuple[str, int], tuple[list[Citation], str, str]] = {}
        for c in answer.citations:
            snippet, start, heading = _snippet(answer, c)
            cards.setdefault((c.doc_id, start), ([], snippet, heading))[0].append(c)
        for (_, start), (cites, snippet, heading) in cards.items():
            badge = lang_badge(cites[0].lang, lang)
            st.html(card_html(cites, snippet, start, badge, label("open", lang), heading, lang))
    for w in answer.warnings:
        st.caption(md_escape(w))
    with st.expander(label("copy", lang)):
        st.code(answer.text, language=None, wrap_lines=True)
    with st.expander(label("query", lang)):
        st.code(answer.query or answer.question, language=None, wrap_lines=True)


def _ask(question: str, settings: Settings, conversation: Conversation) -> Answer | AskdocsError:
    lang = settings.ui_lang
    live = st.empty()
    live.caption(label("thinking", lang))
    last = [0.0]

    def on_progress(chars: int) -> None:
        # Only a count: the model's words wait for the support check, so a sentence it
        # refuses never reaches the screen, not even for a moment (assistant.llm).
        now = time.monotonic()
        if now - last[0] > 0.2:
            last[0] = now
            live.caption(md_escape(label("writing", lang, chars=chars)))

    try:
        assistant = session_assistant(settings)
        answer: Answer | AskdocsError = assistant.ask(
            question,
            conversation=conversation,
            mode=settings.mode,
            on_progress=on_progress,
            k=settings.k,
            lang=settings.lang,
        )
    except AskdocsError as exc:
        answer = exc
    live.empty()
    return answer


def page(settings: Settings, library: str) -> None:
    lang = settings.ui_lang
    history, conversation = _state()
    chat_list(lang)
    top = st.columns([4, 1])
    top[1].button(label("clear", lang), on_click=clear, key="clear_chat")
    welcome = top[0].empty()
    if not history:
        welcome.caption(md_escape(label("chat_empty", lang, library=library)))
    for msg in history:
        with st.chat_message(msg["role"]):
            if msg["role"] == "user":
                st.text(msg["text"])
            elif isinstance(msg["answer"], AskdocsError):
                show_error(msg["answer"], lang)
            else:
                render_answer(msg["answer"], lang)
    question = st.chat_input(label("chat_placeholder", lang), key="chat_input")
    if not question or not question.strip():
        return
    question = question.strip()
    welcome.empty()
    with st.chat_message("user"):
        st.text(question)
    history.append({"role": "user", "text": question})
    with st.chat_message("assistant"):
        answer = _ask(question, settings, conversation)
        if isinstance(answer, AskdocsError):
            show_error(answer, lang)
        else:
            render_answer(answer, lang)
        history.append({"role": "assistant", "answer": answer})
    _save()

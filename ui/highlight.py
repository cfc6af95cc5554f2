"""HTML for answers, source cards and documents, built only from escaped text.

Document text is untrusted: a library may hold `<script>`, `<img onerror=…>` or Markdown links to
`javascript:` URLs. Every piece of it goes through `escape` before it meets markup we wrote, and
the results are shown with `st.html` (no Markdown pass; DOMPurify behind us as a second guard).
`md_escape` covers the few places where Streamlit renders Markdown (messages, errors).
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from pathlib import PurePath
from urllib.parse import urlencode

from assistant.records import Answer, Citation

CSS = """
<style>
.ad-answer { line-height: 1.6; }
.ad-answer .ad-unsupported { color: #888; }
.ad-answer .ad-para + .ad-para { margin-top: 0.6em; }
.ad-refusal { background: rgba(28,131,225,0.1); color: #0b4d8c; border-radius: 0.5em;
  padding: 0.75em 1em; line-height: 1.6; }
.ad-refusal ul { margin: 0.4em 0 0 0; padding-left: 1.2em; }
.ad-refusal .ad-file { color: #555; font-weight: normal; }
.ad-answer code.ad-code { font-size: 0.9em; background: rgba(128,128,128,0.15);
  padding: 0 0.25em; border-radius: 3px; }
.ad-notice { font-size: 0.9em; color: #555; background: #f3f6fb; border-left: 3px solid #7aa2e3;
  padding: 0.3em 0.6em; margin-bottom: 0.5em; }
a.ad-cite { text-decoration: none; font-weight: 600; font-size: 0.85em; padding: 0 1px; }
.ad-card { border: 1px solid rgba(128,128,128,0.35); border-radius: 0.5em;
  padding: 0.5em 0.75em; margin: 0.4em 0; }
.ad-card-head { display: flex; gap: 0.5em; align-items: baseline; flex-wrap: wrap; }
.ad-n { font-weight: 700; }
.ad-file { font-weight: 600; }
.ad-badge { font-size: 0.75em; border-radius: 0.6em; padding: 0 0.5em; background: #e8eefc;
  color: #244; }
.ad-badge-zh { background: #fdeee4; color: #522; }
.ad-heading { font-size: 0.85em; color: #666; margin: 0.1em 0 0.3em 0; }
.ad-snippet { white-space: pre-wrap; font-size: 0.9em; max-height: 14em; overflow-y: auto; }
.ad-open { font-size: 0.85em; }
.ad-doc { white-space: pre-wrap; line-height: 1.55; font-size: 0.95em; overflow-wrap: anywhere; }
.ad-h { font-weight: 700; font-size: 1.1em; }
mark.ad-mark { background: #ffe066; color: inherit; padding: 0; }
pre.ad-code { background: #f6f8fa; border-radius: 0.4em; padding: 0.4em 0.6em; margin: 0.3em 0;
  white-space: pre-wrap; font-size: 0.9em; }
.ad-gloss { font-size: 0.85em; color: #555; margin-top: 0.4em; }
</style>
"""

# Characters that start Markdown, LaTeX or Streamlit directive syntax (`:red[…]`, `$x$`);
# as numeric character references they show literally but can no longer form syntax.
_MD_SPECIAL = "\\`*_{}[]()#+-.!|~$:=^"
_MD_TABLE = {ord(c): f"&#{ord(c)};" for c in _MD_SPECIAL}
_MD_TABLE.update({ord("&"): "&amp;", ord("<"): "&lt;", ord(">"): "&gt;", ord('"'): "&quot;"})
_MD_TABLE[ord("'")] = "&#39;"


def escape(text: str) -> str:
    """Text as HTML that shows it literally (for `st.html`)."""
    return html.escape(text, quote=True)


# Streamlit's Markdown (GFM) also turns bare URLs, `www.` names and e-mail addresses into links,
# by a search over the text after entities are decoded, so escaping cannot stop it. An
# invisible WORD JOINER before each ':' and '@' and inside "www." breaks those patterns
# (`https⁠://`, `www⁠.`, `a⁠@b`) while the text looks the same.
_AUTOLINK = re.compile(r"(?=[:@])|(?<=www)(?=\.)", re.I)
WORD_JOINER = "\u2060"


def md_escape(text: str) -> str:
    """Text for a Markdown context (st.error, st.caption …) that shows it literally: no
    markup, no directive, no link (not even an autolinked URL or e-mail address)."""
    return _AUTOLINK.sub(WORD_JOINER, text).translate(_MD_TABLE)


def doc_url(doc_id: str, start: int | None = None, end: int | None = None, lang: str = "") -> str:
    """The shareable link of a place in a document, relative to the app's own URL; `lang`
    (other than English, the default) opens it in that interface language."""
    params: dict[str, str | int] = {"page": "doc", "doc": doc_id}
    if start is not None and end is not None:
        params.update(start=int(start), end=int(end))
    if lang and lang != "en":
        params["lang"] = lang
    return "?" + urlencode(params)


_MD_HEADING = re.compile(r"^#{1,6}[ \t]+\S.*$", re.M)
_RST_UNDERLINE = re.compile(r"^(\S.*)\n([=\-~^\"'`*+#])\2{2,}[ \t]*$", re.M)


def heading_spans(text: str, fmt: str) -> list[tuple[int, int]]:
    """Character spans of heading lines, so the document page can set them off."""
    if fmt == "markdown":
        return [(m.start(), m.end()) for m in _MD_HEADING.finditer(text)]
    if fmt == "rst":
        return [(m.start(1), m.end(1)) for m in _RST_UNDERLINE.finditer(text)]
    return []


def marked(
    text: str,
    base: int = 0,
    marks: Sequence[tuple[int, int]] = (),
    mark_id: str | None = None,
    headings: Sequence[tuple[int, int]] = (),
) -> str:
    """Escaped `text` (which starts at document offset `base`) with `marks` highlighted.

    Offsets are document offsets. Output is flat (no element spans another), so a highlight
    may cross heading lines without producing broken HTML. The first mark gets `mark_id`;
    an empty mark becomes an empty anchor with that id.
    """
    n = len(text)
    cuts = {0, n}
    local_marks = []
    for s, e in marks:
        s, e = max(s - base, 0), min(e - base, n)
        if s <= e and 0 <= s <= n:
            local_marks.append((s, e))
            cuts.update((s, e))
    local_heads = [(max(s - base, 0), min(e - base, n)) for s, e in headings]
    for s, e in local_heads:
        if s < e:
            cuts.update((s, e))
    bounds = sorted(cuts)
    out: list[str] = []
    id_used = False
    anchors = {s for s, e in local_marks if s == e}
    for a, b in zip(bounds, [*bounds[1:], None], strict=True):
        if a in anchors and mark_id and not id_used:
            out.append(f'<span id="{mark_id}"></span>')
            id_used = True
        if b is None:
            break
        piece = escape(text[a:b])
        if any(s <= a and b <= e for s, e in local_heads):
            piece = f'<span class="ad-h">{piece}</span>'
        if any(s <= a and b <= e and s < e for s, e in local_marks):
            attr = ""
            if mark_id and not id_used:
                attr, id_used = f' id="{mark_id}"', True
            piece = f'<mark class="ad-mark"{attr}>{piece}</mark>'
        out.append(piece)
    return "".join(out)


_CJK_END = tuple("。！？；：」』）》…")
_CJK = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")


def answer_html(answer: Answer, unsupported: str = "", lang: str = "") -> str:
    """An answer's sentences with [n] markers that link to the cited places (opened in the
    interface language `lang`)."""
    by_n = {c.n: c for c in answer.citations}
    paragraphs = []
    for paragraph in answer.paragraphs:  # a new paragraph where the language changes
        out = []
        for i, s in enumerate(paragraph):
            links = []
            for n in s.citations:
                c = by_n.get(n)
                if c is None:
                    links.append(f'<span class="ad-cite">[{int(n)}]</span>')
                else:
                    url = escape(doc_url(c.doc_id, c.start, c.end, lang))
                    links.append(
                        f'<a class="ad-cite" href="{url}" target="_blank" '
                        f'title="{escape(c.source)}">[{int(n)}]</a>'
                    )
            if s.code:  # a code line or block answers: shown as written, its citation after
                out.append(f'<pre class="ad-code">{escape(s.text)}</pre>' + "".join(links))
                continue
            body = code_spans(escape(s.text)) + "".join(links)
            if not s.supported:
                body = f'<span class="ad-unsupported">{body} {escape(unsupported)}</span>'
            # Chinese sentences follow each other without a space; others get one.
            prev = paragraph[i - 1].text.rstrip() if i and not paragraph[i - 1].code else ""
            joined = not prev or (prev.endswith(_CJK_END) and _CJK.match(s.text.lstrip()))
            out.append(("" if joined else " ") + body)
        paragraphs.append(f'<div class="ad-para">{"".join(out)}</div>')
    notice = f'<div class="ad-notice">{escape(answer.notice)}</div>' if answer.notice else ""
    gloss = "".join(f"<div>{escape(term)} — {escape(tr)}</div>" for term, tr in answer.glossary)
    gloss = f'<div class="ad-gloss">{gloss}</div>' if gloss else ""
    return f'{notice}<div class="ad-answer">{"".join(paragraphs)}</div>{gloss}'


_CODE_SPAN = re.compile(r"`([^`\n]+)`")


def code_spans(escaped: str) -> str:
    """Markdown code spans (`len()`) of already escaped text as <code> elements."""
    return _CODE_SPAN.sub(r'<code class="ad-code">\1</code>', escaped)


def refusal_html(answer: Answer, lang: str = "") -> str:
    """'Not covered', set apart from answers (a tinted box): the sentence in the question's
    language, then the nearest sections as links that open them, each with its file name."""
    items = []
    for sentence, c in zip(answer.sentences[1:], answer.citations, strict=False):
        name = PurePath(c.source.replace("\\", "/")).name or c.source
        url = escape(doc_url(c.doc_id, c.start, c.end, lang))
        items.append(
            f'<li><a href="{url}" target="_blank">{escape(sentence.text)}</a>'
            f' <span class="ad-file">· {escape(name)}</span></li>'
        )
    leads = f"<ul>{''.join(items)}</ul>" if items else ""
    first = answer.sentences[0].text if answer.sentences else ""
    return f'<div class="ad-refusal"><div>{escape(first)}</div>{leads}</div>'


def card_html(
    citations: Sequence[Citation],
    snippet: str,
    snippet_start: int,
    badge: str,
    open_label: str,
    heading: str = "",
    lang: str = "",
) -> str:
    """A source card: numbers, file name, heading path, language, highlighted snippet, link.

    All `citations` lie in `snippet`; the link opens the stretch from the first to the last.
    """
    c = citations[0]
    name = PurePath(c.source.replace("\\", "/")).name or c.source
    lang_cls = " ad-badge-zh" if c.lang == "zh" else ""
    head = heading or c.heading
    numbers = "".join(f"[{int(x.n)}]" for x in citations)
    body = marked(snippet, snippet_start, [(x.start, x.end) for x in citations])
    start, end = min(x.start for x in citations), max(x.end for x in citations)
    url = escape(doc_url(c.doc_id, start, end, lang))
    return (
        '<div class="ad-card">'
        '<div class="ad-card-head">'
        f'<span class="ad-n">{numbers}</span>'
        f'<span class="ad-file" title="{escape(c.source)}">{escape(name)}</span>'
        f'<span class="ad-badge{lang_cls}">{escape(badge)}</span>'
        "</div>"
        + (f'<div class="ad-heading">{escape(head)}</div>' if head else "")
        + f'<div class="ad-snippet">{body}</div>'
        f'<a class="ad-open" href="{url}" target="_blank">{escape(open_label)}</a>'
        "</div>"
    )


def document_html(text: str, fmt: str, start: int | None = None, end: int | None = None) -> str:
    """A whole document with its heading lines set off and [start, end) as `mark#cited`."""
    marks = [(start, end)] if start is not None and end is not None else []
    body = marked(text, 0, marks, mark_id="cited", headings=heading_spans(text, fmt))
    return f'<div class="ad-doc">{body}</div>'


def scroll_script(start: int | None, end: int | None) -> str:
    """Scrolls the cited span into view once the page has rendered it.

    The span numbers are in the script so that moving to another span re-runs it.
    """
    return (
        f"<script>/* cited {int(start or 0)}-{int(end or 0)} */"
        "(function(){var tries=0;var t=setInterval(function(){"
        "var m=document.getElementById('cited');"
        "if(m){m.scrollIntoView({block:'center'});clearInterval(t);}"
        "if(++tries>100){clearInterval(t);}},100);})();</script>"
    )

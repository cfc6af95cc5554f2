"""Sentence splitting for Chinese and English text with exact character offsets.

`split(text, lo, hi)` returns `Span`s whose `[start, end)` index the *given* text, so a span
of a document window is a span of the document. Markdown structure matters more than
punctuation in these libraries: headings, list items, code fences, table rows and blank lines
end a sentence; a wrapped line (including `> ` quote continuations) does not. Plain text and
PDF layout have headings without `#`: a short line without final punctuation that opens a
paragraph and is followed by a blank line or a capitalised line is a heading too
("Water temperature" above "Brew green tea …"), never glued to the sentence after it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.text import HAN, Fences

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s")
_ITEM = re.compile(r"^\s*(?:>\s*)?(?:[-*+•]|\d{1,3}[.)、])\s+")
_RULE = re.compile(r"^\s*(?:-{3,}|\*{3,}|_{3,}|={3,})\s*$")
_TABLE = re.compile(r"^\s*\|")
_QUOTE = re.compile(r"^\s*>(?!>)")  # ">>>" is a doctest prompt, not a quote
_BARE_HEADING_MAX = 60  # characters: a plain-text heading is a short line
_OPEN_END = re.compile(r"[.,;:!?。，；：！？、…\-–—(（\[\\]\s*$")  # a line that goes on
# Characters a span never starts with: quote/list markers and whitespace.
_LEAD = re.compile(r"(?:\s|>|#{1,6}\s|[-*+•]\s|\d{1,3}[.)、]\s)+")
# Sentence-final punctuation, optionally followed by closing quotes and brackets.
_END = re.compile(r"(?:[。！？!?]+|…+|\.(?!\.))[\"'”’)）」』】\]]*")
_CALL = re.compile(r"[a-z_][A-Za-z0-9_.]*\(")
_ABBREV = {
    "e.g",
    "i.e",
    "etc",
    "vs",
    "cf",
    "mr",
    "mrs",
    "dr",
    "no",
    "fig",
    "approx",
    "al",
    "eg",
    "ie",
}


@dataclass(frozen=True)
class Span:
    """A sentence (or heading / code block) at `text[start:end]`."""

    start: int
    end: int
    kind: str = "text"  # "text" | "heading" | "code"


def is_cjk(ch: str) -> bool:
    return bool(HAN.match(ch)) or "\u3000" <= ch <= "\u303f" or "\uff00" <= ch <= "\uffef"


def line_spans(text: str, lo: int, hi: int) -> list[tuple[int, int]]:
    """(start, end) of each line of text[lo:hi], without its newline."""
    out, pos = [], lo
    while pos < hi:
        nl = text.find("\n", pos, hi)
        end = hi if nl < 0 else nl
        out.append((pos, end))
        pos = end + 1
    return out


def _blocks(text: str, lo: int, hi: int) -> list[Span]:
    """Group lines into paragraphs, headings and code blocks."""
    blocks: list[Span] = []
    cur: list[int] | None = None  # [start, end, quoted]
    fence_start, fences = -1, Fences()

    def flush() -> None:
        nonlocal cur
        if cur is not None:
            blocks.append(Span(cur[0], cur[1]))
            cur = None

    lines = line_spans(text, lo, hi)
    for i, (start, end) in enumerate(lines):
        line = text[start:end]
        role = fences.step(line)
        if role == "close":
            blocks.append(Span(fence_start, end, "code"))
            fence_start = -1
            continue
        if role == "code":
            continue
        if role == "open":
            flush()
            fence_start = start
            continue
        bare = _QUOTE.sub("", line, count=1) if _QUOTE.match(line) else line
        if not bare.strip() or _RULE.match(bare):
            flush()
            continue
        if _HEADING.match(line):
            flush()
            blocks.append(Span(start, end, "heading"))
            continue
        if cur is None and _bare_heading(text, line, lines[i + 1] if i + 1 < len(lines) else None):
            blocks.append(Span(start, end, "heading"))
            continue
        quoted = int(bool(_QUOTE.match(line)))
        if cur is None or _ITEM.match(line) or _TABLE.match(line) or quoted != cur[2]:
            flush()
            cur = [start, end, quoted]
        else:
            cur[1] = end
    flush()
    if fence_start >= 0:  # an unclosed fence runs to the end of the window
        blocks.append(Span(fence_start, hi, "code"))
    return blocks


def _bare_heading(text: str, line: str, after: tuple[int, int] | None) -> bool:
    """A heading of plain text or PDF layout: a short line that opens a paragraph, ends
    without punctuation and is followed by a blank line or a capitalised line."""
    bare = line.strip()
    if (
        not bare
        or len(bare) > _BARE_HEADING_MAX
        or _OPEN_END.search(bare)
        or _ITEM.match(line)
        or _TABLE.match(line)
        or _QUOTE.match(line)
        or not (bare[0].isupper() or is_cjk(bare[0]))
    ):
        return False
    if after is None:
        return False  # the window's last line: its paragraph may go on past the window
    nxt = text[after[0] : after[1]].strip()
    return not nxt or nxt[0].isupper()


def _is_boundary(text: str, dot: int, after: int, end: int) -> bool:
    """Whether the '.' at `dot` ends a sentence (`after` = index after closers)."""
    if after < end and not text[after].isspace() and not is_cjk(text[after]):
        return False  # "os.path", "3.8", "e.g.x"
    word = re.search(r"([A-Za-z.]+)$", text[max(0, dot - 8) : dot])
    if word:
        w = word.group(1).lower().strip(".")
        if w in _ABBREV or (len(w) == 1 and text[dot - 1].isupper()):
            return False
    nxt = after
    while nxt < end and text[nxt] in " \t>\r\n":
        nxt += 1
    if nxt >= end or not text[nxt].islower():
        return True
    # A lower-case continuation means the dot was not the end ("approx. the same"), unless a
    # new line starts there or it is code ("… the time. uuid4() generates …").
    return "\n" in text[after:nxt] or bool(_CALL.match(text, nxt))


def _sentences(text: str, block: Span) -> list[Span]:
    out, s = [], block.start
    for m in _END.finditer(text, block.start, block.end):
        if m.group().startswith(".") and not _is_boundary(text, m.start(), m.end(), block.end):
            continue
        if m.group()[0] in "!?" and m.end() < block.end:
            nxt = text[m.end()]
            if not (nxt.isspace() or is_cjk(nxt)):
                continue  # "!=" or "?:" inside code
        out.append(Span(s, m.end()))
        s = m.end()
    if s < block.end:
        out.append(Span(s, block.end))
    return out


def _trim(text: str, span: Span) -> Span | None:
    start, end = span.start, span.end
    m = _LEAD.match(text, start, end)
    if m:
        start = m.end()
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(start, end, span.kind) if end > start else None


def split(text: str, lo: int = 0, hi: int | None = None) -> list[Span]:
    """Sentences, headings and code blocks of `text[lo:hi]`, offsets into `text`."""
    hi = len(text) if hi is None else hi
    spans: list[Span] = []
    for block in _blocks(text, lo, hi):
        parts = [block] if block.kind != "text" else _sentences(text, block)
        for part in parts:
            trimmed = _trim(text, part)
            if trimmed is not None:
                spans.append(trimmed)
    return spans


def display(raw: str) -> str:
    """Readable one-line form of a span: quote/list markers dropped, wrapped lines joined.

    Lines are joined without a space between Chinese characters (a wrapped Chinese line has
    no word break) and with one space otherwise.
    """
    lines = []
    for ln in raw.split("\n"):
        m = _LEAD.match(ln)
        ln = (ln[m.end() :] if m else ln).strip()
        if ln:
            lines.append(ln)
    out = ""
    for ln in lines:
        if out and not (is_cjk(out[-1]) and is_cjk(ln[0])):
            out += " "
        out += ln
    # "\**kw" is an escaped "**", not bold: kept aside while bold marks are dropped.
    out = re.sub(r"\\(\*+)", lambda m: "\ue010" * len(m.group(1)), out)
    out = out.replace("**", "").replace("\u00a0", " ").replace("\ue010", "*")
    return re.sub(r"[ \t]+", " ", unescape(out)).strip()


# A Markdown escape or hard break left in prose: "\ Python", "\*args", a line-final "\".
_ESCAPE = re.compile(r"\\(?=[\s*_#`\[\]()>|!-]|$)")


def unescape(text: str) -> str:
    """Stray escape characters of prose removed, for display only (offsets index the stored
    text, which keeps them); a backslash before a letter (`\n` in code) stays."""
    return _ESCAPE.sub("", text)

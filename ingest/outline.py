"""The section structure of a cleaned text: heading paths and `---` boundaries, code-aware.

Markdown-like text (Markdown, and HTML/RST after cleaning) has ATX (`## Title`) and setext
headings; plain text and PDF only have rules (`---`) as section boundaries. Lines inside fenced
code blocks are never headings or rules (`# comment` in Python code is not a heading).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ingest.text import Fences

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
_ATX_CLOSE = re.compile(r"(?:^|[ \t]+)#+$")
_RULE = re.compile(r"^ {0,3}(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,})$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
# Lines that cannot be the text of a setext heading (list items, quotes, indented code, ...).
_NOT_PARAGRAPH = re.compile(r"^(?: {4,}|\t|[ ]{0,3}(?:[-*+>]|\d+[.)])(?:[ \t]|$)|[ ]{0,3}#)")


@dataclass(frozen=True)
class Section:
    """A span of the text under one heading path; `path` is () when no heading applies."""

    start: int
    end: int
    path: tuple[str, ...]


def _lines(text: str) -> list[tuple[int, int, str]]:
    """(start, end, line without its newline) for every line; end includes the newline."""
    out, pos = [], 0
    for line in text.splitlines(keepends=True):
        out.append((pos, pos + len(line), line.rstrip("\r\n")))
        pos += len(line)
    return out


def _clean_title(raw: str) -> str:
    title = _ATX_CLOSE.sub("", raw.strip()).replace("`", "")
    return " ".join(title.strip().strip("*").split())


def outline(text: str, markdown: bool) -> list[Section]:
    """Split `text` into sections at headings (Markdown only) and at rules."""
    raw: list[tuple[int, int, tuple[str, ...], bool]] = []  # start, end, path, starts with heading
    stack: list[tuple[int, str]] = []
    start, heading_here = 0, False
    fences = Fences()
    prev: tuple[int, int, str] | None = None  # previous line, when it could be a setext title

    def close(end: int) -> None:
        raw.append((start, end, tuple(t for _, t in stack), heading_here))

    def push(level: int, title: str) -> None:
        while stack and stack[-1][0] >= level:
            stack.pop()
        if title:
            stack.append((level, title))

    after_break = True  # the previous line ended a block: blank, heading, rule or fence
    for ls, le, line in _lines(text):
        role = fences.step(line)
        if role == "close":
            after_break = True
        if role == "open":
            prev = None
        if role:
            continue
        atx = _ATX.match(line) if markdown else None
        setext = _SETEXT.match(line) if markdown and prev else None
        if atx:
            close(ls)
            push(len(atx.group(1)), _clean_title(atx.group(2) or ""))
            start, heading_here = ls, True
        elif setext and prev:
            close(prev[0])
            push(1 if setext.group(1)[0] == "=" else 2, _clean_title(prev[2]))
            start, heading_here = prev[0], True
        elif _RULE.match(line):
            close(ls)
            start, heading_here = le, False
        elif line.strip():
            # Only a one-line paragraph may become a setext title (safe and simple).
            prev = (ls, le, line) if after_break and not _NOT_PARAGRAPH.match(line) else None
            after_break = False
            continue
        prev, after_break = None, True
    close(len(text))
    return _merge_bare_headings(text, raw)


def _merge_bare_headings(
    text: str, raw: list[tuple[int, int, tuple[str, ...], bool]]
) -> list[Section]:
    """A heading with nothing under it joins the section that follows it: a chunk holding only
    `# Python` helps nobody, and the usual next section is a subsection whose path names it."""
    out: list[Section] = []
    carry: int | None = None
    for k, (start, end, path, heading) in enumerate(raw):
        body = text[start:end]
        if heading:
            body = body.split("\n", 1)[1] if "\n" in body else ""
        if carry is not None:
            start, carry = carry, None
        if not text[start:end].strip():
            continue
        if heading and not body.strip() and k + 1 < len(raw) and raw[k + 1][0] == end:
            carry = start
            continue
        out.append(Section(start, end, path))
    return out


def first_heading(text: str) -> str:
    """Title of a Markdown-like text: its first heading, "" when none."""
    for section in outline(text, markdown=True):
        if section.path:
            return section.path[0]  # the earliest heading of the first titled section
    return ""

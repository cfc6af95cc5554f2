"""HTML and reStructuredText → Markdown-like text whose headings the chunker understands.

HTML goes through a real parser (BeautifulSoup with the standard library's html.parser, so no
compiled dependency): scripts and styles are dropped, headings become `#` lines, `<pre>` becomes
a fenced block (so it is not cut), list items become `- ` lines.

Only the page's main content is kept: trafilatura decides which text is the article, and a
block of the page is kept when trafilatura kept its words; a heading is kept when its section
keeps something. Navigation, footers and sidebars (`<nav>`, `<footer>`, `<aside>` and their
ARIA roles) are dropped even where trafilatura finds nothing. Our own walk still writes the
text, so headings, code fences and lists come out as before, and chunk offsets point into it.
"""

from __future__ import annotations

import re
import unicodedata

_SKIP = frozenset(
    [
        "script",
        "style",
        "noscript",
        "template",
        "head",
        "svg",
        "math",
        "iframe",
        "object",
        "embed",
        "canvas",
        "button",
        "select",
        # page furniture, never content
        "nav",
        "footer",
        "aside",
    ]
)
_FURNITURE_ROLES = frozenset(["navigation", "contentinfo", "complementary", "banner", "search"])
_BLOCK = frozenset(
    [
        "p",
        "div",
        "section",
        "article",
        "header",
        "footer",
        "main",
        "nav",
        "aside",
        "ul",
        "ol",
        "dl",
        "dt",
        "dd",
        "table",
        "thead",
        "tbody",
        "tfoot",
        "tr",
        "blockquote",
        "figure",
        "figcaption",
        "form",
        "address",
        "fieldset",
        "details",
        "summary",
        "body",
        "html",
    ]
)
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_SPACE = re.compile(r"\s+")


class _Writer:
    """Collects blocks of text; inline text inside a block has its white space collapsed.
    Each block remembers its heading level (0 for text)."""

    def __init__(self) -> None:
        self.blocks: list[tuple[int, str]] = []
        self.lines: list[str] = []
        self.line: list[str] = []

    def text(self, s: str) -> None:
        self.line.append(_SPACE.sub(" ", s))

    def newline(self) -> None:
        joined = "".join(self.line).strip()
        if joined:
            self.lines.append(joined)
        self.line = []

    def block(self) -> None:
        self.newline()
        if self.lines:
            self.blocks.append((0, "\n".join(self.lines)))
        self.lines = []

    def raw(self, s: str, level: int = 0) -> None:
        self.block()
        if s.strip():
            self.blocks.append((level, s))


def html_to_text(source: str) -> tuple[str, str]:
    """Return (text, title): Markdown-like text of the page's main content and its <title>
    ("" when none)."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(source, "html.parser")
    title_tag = soup.find("title")
    title = _SPACE.sub(" ", title_tag.get_text()).strip() if title_tag else ""
    writer = _Writer()
    _walk(soup, writer)
    writer.block()
    blocks = _main_blocks(writer.blocks, _main_words(source))
    return "\n\n".join(blocks), title


def html_blocks(source: str) -> list[tuple[int, str]]:
    """Every block of an (X)HTML document as (heading level or 0, Markdown-like text), with
    no main-content selection: an e-book chapter is all content."""
    from bs4 import BeautifulSoup

    writer = _Writer()
    _walk(BeautifulSoup(source, "html.parser"), writer)
    writer.block()
    return writer.blocks


_NOT_WORD = re.compile(r"[\W_]+")


def _words(text: str) -> str:
    """Text as its words only, space-separated and lower-cased: what both sides compare."""
    return " " + _NOT_WORD.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip() + " "


def _main_words(source: str) -> str | None:
    """The words of the page's main content according to trafilatura; None if it finds none."""
    import trafilatura

    main = trafilatura.extract(
        source,
        output_format="txt",
        include_comments=False,
        include_tables=True,
        include_images=False,
        favor_recall=True,  # a documentation page is mostly content: lose nothing of it
        deduplicate=False,
    )
    return _words(main) if main and main.strip() else None


def _main_blocks(blocks: list[tuple[int, str]], main: str | None) -> list[str]:
    """Blocks whose words trafilatura kept (searched in reading order from the last match),
    and the headings of sections that keep something."""
    if main is None:
        return [text for _, text in blocks]
    kept = [False] * len(blocks)
    cursor = 0
    for i, (level, text) in enumerate(blocks):
        words = _words(text)
        if level or not words.strip():
            continue
        at = main.find(words, cursor)
        if at < 0:
            at = main.find(words)  # trafilatura may move a block (a caption, a table)
        if at >= 0:
            kept[i] = True
            cursor = at + len(words) - 1
    # A heading stays when anything up to the next heading of its level or above stays.
    for i, (level, _) in enumerate(blocks):
        if level:
            for j in range(i + 1, len(blocks)):
                if blocks[j][0] and blocks[j][0] <= level:
                    break
                if kept[j] and not blocks[j][0]:
                    kept[i] = True
                    break
    return [text for (_, text), keep in zip(blocks, kept, strict=True) if keep]


def _walk(node: object, out: _Writer) -> None:
    """Write the tree under `node`. Iterative (an explicit stack): a page nested thousands of
    elements deep is text like any other, not a RecursionError."""
    from bs4 import NavigableString, Tag
    from bs4.element import PreformattedString

    # Entries are nodes to visit, or (method, argument) to run once a node's children are done.
    stack: list[object] = list(reversed(list(node.children)))  # type: ignore[attr-defined]
    while stack:
        child = stack.pop()
        if isinstance(child, tuple):
            method, *arg = child
            getattr(out, method)(*arg)
            continue
        if isinstance(child, PreformattedString):
            continue  # comments, doctype, CDATA, processing instructions
        if isinstance(child, NavigableString):
            out.text(str(child))
            continue
        if not isinstance(child, Tag):
            continue
        name = child.name.lower()
        after: tuple | None = None
        if name in _SKIP or child.get("role") in _FURNITURE_ROLES:
            continue
        if name in _HEADINGS:
            heading = _SPACE.sub(" ", child.get_text(" ")).strip()
            if heading:
                out.raw("#" * _HEADINGS[name] + " " + heading, _HEADINGS[name])
            continue
        if name == "pre":
            code = child.get_text().strip("\n")
            out.raw(f"```\n{code}\n```")
            continue
        if name == "br":
            out.newline()
            continue
        if name == "hr":
            out.raw("---")
            continue
        if name == "li":
            out.block()
            out.text("- ")
            after = ("block",)
        elif name in ("td", "th"):
            out.text(" ")
            after = ("text", " ")
        elif name in _BLOCK:
            out.block()
            after = ("block",)
        # else an inline element (a, b, code, span, ...): only its children
        if after:
            stack.append(after)
        stack.extend(reversed(list(child.children)))


# A section title in reStructuredText: an optional overline, the title, an underline of one
# punctuation character at least as long as the title.
_ADORNMENT = re.compile(r"^([=\-~^\"'`#*+:.<>_])\1{2,}\s*$")


def rst_to_markdown(text: str) -> str:
    """Rewrite reStructuredText section titles as `#` headings; levels follow first use."""
    lines = text.split("\n")
    styles: list[tuple[str, bool]] = []
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        over = _ADORNMENT.match(line)
        if (
            over
            and i + 2 < len(lines)
            and lines[i + 1].strip()
            and _ADORNMENT.match(lines[i + 2])
            and lines[i + 2].strip()[0] == over.group(1)
        ):
            style, title, used = (over.group(1), True), lines[i + 1].strip(), 3
        elif (
            line.strip()
            and not line.startswith((" ", "\t"))
            and i + 1 < len(lines)
            and (under := _ADORNMENT.match(lines[i + 1]))
            and len(lines[i + 1].rstrip()) >= len(line.rstrip())
        ):
            style, title, used = (under.group(1), False), line.strip(), 2
        else:
            out.append(line)
            i += 1
            continue
        if style not in styles:
            styles.append(style)
        level = min(styles.index(style) + 1, 6)
        out.append("#" * level + " " + title)
        i += used
    return "\n".join(out)

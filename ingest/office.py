"""Word, PowerPoint and Excel files → Markdown-like text whose headings name where text sits.

The text built here is the stored document text: citations point into it, so it is built once,
deterministically, from the file's own structure (python-docx, python-pptx, openpyxl):

- .docx: body paragraphs and tables in document order; Word's heading styles ("Heading 1"…,
  "Title") become `#` headings, list paragraphs `- ` lines, a table one line per row with its
  cells joined by ` | ` (a merged cell once).
- .pptx: one `# Slide N: title` section per slide, its shapes' text in the slide's order
  (groups and tables included), the speaker notes under `## Notes`.
- .xlsx: one `# Sheet: NAME` section per sheet; the first row with values is the header and
  every later row one paragraph of `header: value` lines, up to `ROW_CAP` rows a sheet (then a
  line and a warning say what was left out).

Every archive first passes `ingest.package.open_package` (zip bombs, encryption, entities).
A line of the file's text that Markdown would read as a heading, rule or code fence is escaped
with a backslash, so only the file's own headings become headings of the outline.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from ingest.errors import InputError
from ingest.package import open_package

ROW_CAP = 5_000  # rows per sheet; a bigger sheet is a table, not prose to cite
_SPACE = re.compile(r"[ \t\u00a0\u3000]+")
# What outline() would take for structure: ATX headings, rules, fences, setext underlines.
_MARKUP_LINE = re.compile(r"^ {0,3}(?:#|`{3}|~{3}|[-*_=+](?:[ \t]*[-*_=])*[ \t]*$)")


@dataclass(frozen=True)
class Extract:
    """What a reader got out of a file: its text, its title ("" if none), warnings about
    what it left out."""

    text: str
    title: str = ""
    notes: tuple[str, ...] = ()


def clean_line(line: str) -> str:
    """One line of the file's text: white space collapsed, structure-looking lines escaped."""
    line = _SPACE.sub(" ", line).strip()
    return "\\" + line if _MARKUP_LINE.match(line) else line


def clean_block(text: str) -> str:
    """A paragraph that may hold line breaks: each line cleaned, empty lines dropped."""
    return "\n".join(c for c in (clean_line(x) for x in text.splitlines()) if c)


def heading(level: int, title: str) -> str:
    return "#" * max(1, min(level, 6)) + " " + " ".join(title.split())


def _broken(kind: str, exc: Exception) -> InputError:
    return InputError(
        f"broken {kind} file ({type(exc).__name__}: {exc})",
        hint="open it in its application and save it again",
    )


def read_docx(data: bytes) -> Extract:
    import io

    from docx import Document as open_docx
    from docx.table import Table

    open_package(data, "Word")
    try:
        doc = open_docx(io.BytesIO(data))
        styles = _style_kinds(doc)
        blocks: list[str] = []
        for item in doc.iter_inner_content():
            if isinstance(item, Table):
                blocks.extend(_table_rows(item))
                continue
            text = clean_block(item.text)
            if not text:
                continue
            level, listed = styles.get(item._p.style or "", (0, False))
            if level:
                blocks.append(heading(level, item.text))
            elif listed or _numbered(item):
                depth = _list_depth(item)
                blocks.append("  " * depth + "- " + text.replace("\n", " "))
            else:
                blocks.append(text)
        title = (doc.core_properties.title or "").strip()
    except InputError:
        raise
    except Exception as exc:  # python-docx raises many kinds on damaged parts
        raise _broken("Word", exc) from exc
    return Extract("\n\n".join(blocks), title)


def _style_kinds(doc: object) -> dict[str, tuple[int, bool]]:
    """Style id → (heading level or 0, list style?), once per document: python-docx's
    `paragraph.style` searches every style for the default on each call (35 s for a
    50-page file). A style based on "Heading 2" is a level-2 heading too."""
    by_id = {s.style_id: s for s in doc.styles if s.style_id}  # type: ignore[attr-defined]
    kinds: dict[str, tuple[int, bool]] = {}
    for style_id, style in by_id.items():
        level, listed, seen = 0, False, 0
        while style is not None and seen < 10 and not level:  # base styles, loops cut
            name = (style.name or "").lower()
            match = re.fullmatch(r"heading ([1-9])", name)
            level = 1 if name == "title" else min(int(match.group(1)), 6) if match else 0
            listed = listed or name.startswith("list")
            style, seen = getattr(style, "base_style", None), seen + 1
        kinds[style_id] = (level, listed)
    return kinds


def _numbered(paragraph: object) -> bool:
    ppr = paragraph._p.pPr  # type: ignore[attr-defined]
    return ppr is not None and ppr.numPr is not None


def _list_depth(paragraph: object) -> int:
    ppr = paragraph._p.pPr  # type: ignore[attr-defined]
    if ppr is None or ppr.numPr is None or ppr.numPr.ilvl is None:
        return 0
    return min(int(ppr.numPr.ilvl.val or 0), 8)


def _table_rows(table: object) -> list[str]:
    """One line per row, cells joined by ` | `; a merged cell (which python-docx repeats for
    every grid column and row it spans) only where it first appears."""
    seen: set[object] = set()  # the cells' XML elements (held, so identity is stable)
    rows: list[str] = []
    for row in table.rows:  # type: ignore[attr-defined]
        cells = []
        for cell in row.cells:
            if cell._tc in seen:
                continue
            seen.add(cell._tc)
            text = " ".join(clean_block(cell.text).split("\n"))
            if text:
                cells.append(text)
        if cells:
            rows.append(clean_line(" | ".join(cells)))
    return ["\n".join(rows)] if rows else []


def read_pptx(data: bytes) -> Extract:
    import io

    from pptx import Presentation

    open_package(data, "PowerPoint")
    try:
        deck = Presentation(io.BytesIO(data))
        blocks: list[str] = []
        for n, slide in enumerate(deck.slides, 1):
            title_shape = slide.shapes.title
            title = " ".join((title_shape.text_frame.text if title_shape else "").split())
            blocks.append(heading(1, f"Slide {n}: {title}" if title else f"Slide {n}"))
            for shape in _shapes(slide.shapes):
                if title_shape is not None and shape.shape_id == title_shape.shape_id:
                    continue
                blocks.extend(_shape_text(shape))
            if slide.has_notes_slide:
                notes = slide.notes_slide.notes_text_frame
                text = clean_block(notes.text) if notes is not None else ""
                if text:
                    blocks.extend([heading(2, "Notes"), text])
        title = (deck.core_properties.title or "").strip()
    except InputError:
        raise
    except Exception as exc:
        raise _broken("PowerPoint", exc) from exc
    return Extract("\n\n".join(blocks), title)


def _shapes(shapes: object) -> list:
    """Shapes in the slide's order, group members in place of their group (no recursion:
    a deck of groups nested thousands deep is shapes like any other)."""
    out, stack = [], list(reversed(list(shapes)))  # type: ignore[call-overload]
    while stack:
        shape = stack.pop()
        if getattr(shape, "shape_type", None) == 6:  # MSO_SHAPE_TYPE.GROUP
            stack.extend(reversed(list(shape.shapes)))
        else:
            out.append(shape)
    return out


def _shape_text(shape: object) -> list[str]:
    if getattr(shape, "has_table", False):
        rows = []
        for row in shape.table.rows:  # type: ignore[attr-defined]
            cells = [" ".join(clean_block(c.text).split("\n")) for c in row.cells]
            if any(cells):
                rows.append(clean_line(" | ".join(c for c in cells if c)))
        return ["\n".join(rows)] if rows else []
    if getattr(shape, "has_text_frame", False):
        lines = []
        for para in shape.text_frame.paragraphs:  # type: ignore[attr-defined]
            text = " ".join(clean_block(para.text).split("\n"))
            if text:
                lines.append(("  " * min(para.level, 8) + "- " + text) if para.level else text)
        return ["\n".join(lines)] if lines else []
    return []


def read_xlsx(data: bytes, row_cap: int = ROW_CAP) -> Extract:
    import io

    from openpyxl import load_workbook

    open_package(data, "Excel")
    notes: list[str] = []
    try:
        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        blocks: list[str] = []
        for sheet in book.worksheets:
            header: list[str] | None = None
            kept = 0
            for values in sheet.iter_rows(values_only=True):
                cells = [_cell(v) for v in values]
                if not any(cells):
                    continue
                if header is None:  # an empty sheet has no section
                    header = cells
                    blocks.append(heading(1, f"Sheet: {sheet.title}"))
                    blocks.append(clean_line(" | ".join(c for c in cells if c)))
                    continue
                if kept == row_cap:
                    line = f"(rows after the first {row_cap} of this sheet are not indexed)"
                    blocks.append(line)
                    notes.append(f"sheet '{sheet.title}': only the first {row_cap} rows read")
                    break
                kept += 1
                blocks.append(_row(header, cells))
        book.close()
    except InputError:
        raise
    except Exception as exc:
        raise _broken("Excel", exc) from exc
    return Extract("\n\n".join(blocks), "", tuple(notes))


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, (dt.datetime, dt.date, dt.time)):
        value = value.isoformat()
    return " ".join(str(value).split())


def _row(header: list[str], cells: list[str]) -> str:
    from openpyxl.utils import get_column_letter

    lines = []
    for i, value in enumerate(cells):
        if value:
            name = header[i] if i < len(header) and header[i] else get_column_letter(i + 1)
            lines.append(clean_line(f"{name}: {value}"))
    return "\n".join(lines)

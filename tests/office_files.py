"""Real .docx, .pptx, .xlsx and .epub files built with the libraries askdocs reads them with,
each holding every kind of content once, with a unique word per piece so a test can find
each piece in the stored text and check its order."""

from __future__ import annotations

import io
import zipfile

# Pieces in reading order: (kind, text). Each text is unique in its file.
DOCX = [
    ("title", "Team handbook"),
    ("h1", "Kettles 水壶"),
    ("p", "Descale the kettle monthly with citric acid (alpha1)."),
    ("p", "默认参数在函数定义时只求值一次（beta2）。"),
    ("h2", "Cleaning schedule"),
    ("bullet", "Rinse the filter weekly (gamma3)"),
    ("bullet", "Replace the seal yearly (delta4)"),
    ("cell", "cell-a5"),
    ("cell", "cell-b6"),
    ("cell", "cell-c7"),
    ("cell", "cell-d8"),
    ("p", "# not a heading but a paragraph (epsilon9)"),
    ("h1", "Tea time"),
    ("p", "Green tea is steeped at 80 degrees (zeta10)."),
]


def docx_bytes(pieces: list[tuple[str, str]] = DOCX) -> bytes:
    import docx

    doc = docx.Document()
    doc.core_properties.title = "Handbook"
    cells = [t for k, t in pieces if k == "cell"]
    table_done = False
    for kind, text in pieces:
        if kind == "title":
            doc.add_heading(text, level=0)
        elif kind in ("h1", "h2", "h3"):
            doc.add_heading(text, level=int(kind[1]))
        elif kind == "bullet":
            doc.add_paragraph(text, style="List Bullet")
        elif kind == "cell" and not table_done:
            table = doc.add_table(rows=(len(cells) + 1) // 2, cols=2)
            for i, cell_text in enumerate(cells):
                table.cell(i // 2, i % 2).text = cell_text
            table_done = True
        elif kind == "p":
            doc.add_paragraph(text)
    return _save(doc)


SLIDES = [
    ("Quarterly review 季度回顾", ["Revenue grew (slide1a)", "Costs fell (slide1b)"], "Mention the team (note1)"),
    ("", ["A slide without a title (slide2a)"], ""),
    ("Plan", ["Hire two engineers (slide3a)"], "Ask about budget (note3)"),
]  # fmt: skip


def pptx_bytes(slides: list[tuple[str, list[str], str]] = SLIDES) -> bytes:
    from pptx import Presentation
    from pptx.util import Inches

    deck = Presentation()
    for title, lines, notes in slides:
        slide = deck.slides.add_slide(deck.slide_layouts[1 if title else 6])
        if title:
            slide.shapes.title.text = title
            frame = slide.placeholders[1].text_frame
        else:
            box = slide.shapes.add_textbox(Inches(1), Inches(1), Inches(6), Inches(2))
            frame = box.text_frame
        frame.text = lines[0]
        for line in lines[1:]:
            frame.add_paragraph().text = line
        if notes:
            slide.notes_slide.notes_text_frame.text = notes
    table = deck.slides[-1].shapes.add_table(2, 2, Inches(1), Inches(4), Inches(4), Inches(1))
    for i, text in enumerate(["tcell1", "tcell2", "tcell3", "tcell4"]):
        table.table.cell(i // 2, i % 2).text = text
    return _save(deck)


SHEETS = {
    "Budget 预算": [["item", "cost", "owner"], ["tea", 3, "ann"], ["cake", 4.5, None], [None, None, None], ["milk", None, "bo"]],
    "Empty": [],
    "People": [["name", "role"], ["Li Lei", "engineer"], ["Han Meimei", "designer"]],
}  # fmt: skip


def xlsx_bytes(sheets: dict[str, list[list]] = SHEETS) -> bytes:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    return _save(book)


CHAPTERS = [
    ("c1.xhtml", "Chapter 1 Beginnings", "<h1>Chapter 1 Beginnings</h1><p>It was a quiet morning (ch1a).</p><h2>The road</h2><p>The road went on (ch1b).</p>"),
    ("c2.xhtml", "第二章 旅程", "<p>他们出发了（ch2a）。</p>"),
]  # fmt: skip


def epub_bytes(chapters: list[tuple[str, str, str]] = CHAPTERS) -> bytes:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("askdocs-test")
    book.set_title("A Test Book")
    book.set_language("en")
    items = []
    for name, title, body in chapters:
        item = epub.EpubHtml(title=title, file_name=name, lang="en")
        item.content = f"<html><body>{body}</body></html>"
        book.add_item(item)
        items.append(item)
    first, *rest = items
    book.toc = [first, (epub.Section("Part Two"), rest)] if rest else [first]
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *items]
    out = io.BytesIO()
    epub.write_epub(out, book)
    return out.getvalue()


def _save(obj: object) -> bytes:
    out = io.BytesIO()
    obj.save(out)  # type: ignore[attr-defined]
    return out.getvalue()


def replace_member(data: bytes, name: str, body: bytes, *, level: int = 6) -> bytes:
    """The archive `data` with member `name` replaced by `body` (compressed at `level`)."""
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, body if info.filename == name else src.read(info))
    return out.getvalue()


def mark_encrypted(data: bytes) -> bytes:
    """The archive with every member flagged as encrypted (general purpose bit 0), in the
    local headers and the central directory alike."""
    raw = bytearray(data)
    for signature, flag_at in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        at = raw.find(signature)
        while at >= 0:
            raw[at + flag_at] |= 1
            at = raw.find(signature, at + 4)
    return bytes(raw)

"""Word, PowerPoint, Excel and EPUB files, built in the test with the libraries askdocs reads
them with: every paragraph, table cell and slide text is in the stored text once and in
order, headings are kept, and every chunk's heading names its slide, sheet or chapter."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest import office
from ingest.chunking import ChunkSettings, chunk_document
from ingest.loading import FORMATS, load_paths, parse
from tests.office_files import (
    CHAPTERS,
    DOCX,
    SHEETS,
    SLIDES,
    docx_bytes,
    epub_bytes,
    pptx_bytes,
    xlsx_bytes,
)


def _in_order_once(text: str, pieces: list[str]) -> None:
    at = -1
    for piece in pieces:
        assert text.count(piece) == 1, (piece, text)
        assert text.index(piece) > at, f"{piece!r} out of order"
        at = text.index(piece)


def _headings(doc, size: int = 400) -> list[str]:
    chunks = chunk_document(doc, ChunkSettings(size=size, overlap=size // 4))
    for c in chunks:
        assert c.text == doc.text[c.start : c.end]
    return [c.heading for c in chunks]


def test_docx_paragraphs_lists_tables_once_in_order_with_headings() -> None:
    doc = parse(docx_bytes(), "handbook.docx", "handbook.docx")
    assert (doc.format, doc.title) == ("docx", "Handbook")
    _in_order_once(doc.text, [text for _, text in DOCX])
    lines = doc.text.splitlines()
    assert "# Kettles 水壶" in lines and "## Cleaning schedule" in lines and "# Tea time" in lines
    assert "- Rinse the filter weekly (gamma3)" in lines
    assert "cell-a5 | cell-b6" in lines and "cell-c7 | cell-d8" in lines  # a row a line
    # a paragraph that starts with "#" is text, not a heading of the outline
    assert "\\# not a heading but a paragraph (epsilon9)" in lines
    heads = _headings(doc, size=80)
    assert "Kettles 水壶 > Cleaning schedule" in heads and "Tea time" in heads
    assert not any("epsilon9" in h for h in heads)


def test_docx_merged_cells_appear_once() -> None:
    import io

    import docx

    d = docx.Document()
    table = d.add_table(rows=2, cols=3)
    for i, row in enumerate(table.rows):
        for j, cell in enumerate(row.cells):
            cell.text = f"r{i}c{j}"
    table.cell(0, 0).merge(table.cell(0, 1)).text = "merged"
    table.cell(0, 2).merge(table.cell(1, 2)).text = "tall"
    out = io.BytesIO()
    d.save(out)
    text = parse(out.getvalue(), "t.docx", "t.docx").text
    assert text.splitlines() == ["merged | tall", "r1c0 | r1c1"]


def test_pptx_one_section_per_slide_with_title_text_tables_and_notes() -> None:
    doc = parse(pptx_bytes(), "review.pptx", "review.pptx")
    pieces = []
    for title, lines, notes in SLIDES:
        pieces += ([title] if title else []) + lines + ([notes] if notes else [])
    pieces[-1:-1] = ["tcell1", "tcell2", "tcell3", "tcell4"]  # the table, before the notes
    _in_order_once(doc.text, pieces)
    lines = doc.text.splitlines()
    assert "# Slide 1: Quarterly review 季度回顾" in lines and "# Slide 2" in lines
    assert "tcell1 | tcell2" in lines
    heads = set(_headings(doc, size=60))
    assert {
        "Slide 1: Quarterly review 季度回顾",
        "Slide 1: Quarterly review 季度回顾 > Notes",
    } <= heads
    assert {"Slide 2", "Slide 3: Plan", "Slide 3: Plan > Notes"} <= heads


def test_xlsx_sheets_are_sections_rows_are_header_value_lines() -> None:
    doc = parse(xlsx_bytes(), "budget.xlsx", "budget.xlsx")
    assert "Sheet: Empty" not in doc.text  # an empty sheet has no section
    blocks = doc.text.split("\n\n")
    assert blocks[:5] == [
        "# Sheet: Budget 预算",
        "item | cost | owner",
        "item: tea\ncost: 3\nowner: ann",
        "item: cake\ncost: 4.5",  # an empty cell is left out
        "item: milk\nowner: bo",  # an empty row too
    ]
    assert blocks[5:] == [
        "# Sheet: People",
        "name | role",
        "name: Li Lei\nrole: engineer",
        "name: Han Meimei\nrole: designer",
    ]
    for rows in SHEETS.values():
        _in_order_once(doc.text, [f"{rows[0][0]}: {r[0]}" for r in rows[1:] if r[0]])
    assert set(_headings(doc, size=40)) == {"Sheet: Budget 预算", "Sheet: People"}


def test_xlsx_row_cap_is_a_line_and_a_warning(tmp_path: Path, monkeypatch) -> None:
    rows = [["n", "square"]] + [[i, i * i] for i in range(1, 31)]
    (tmp_path / "squares.xlsx").write_bytes(xlsx_bytes({"Squares": rows}))
    monkeypatch.setattr(office, "ROW_CAP", 10)
    monkeypatch.setattr(office.read_xlsx, "__defaults__", (10,))
    report = load_paths([tmp_path])
    (doc,) = report.documents
    assert "n: 10\nsquare: 100" in doc.text and "n: 11" not in doc.text
    assert "(rows after the first 10 of this sheet are not indexed)" in doc.text
    assert report.warnings == (f"{doc.source}: sheet 'Squares': only the first 10 rows read",)


def test_epub_chapters_in_reading_order_under_the_table_of_contents() -> None:
    doc = parse(epub_bytes(), "book.epub", "book.epub")
    assert doc.title == "A Test Book"
    _in_order_once(doc.text, ["(ch1a)", "### The road", "(ch1b)", "Part Two", "（ch2a）"])
    assert doc.text.count("Chapter 1 Beginnings") == 1  # the entry, not also the <h1>
    heads = list(dict.fromkeys(_headings(doc, size=40)))  # in order, each once
    assert heads == [
        "Chapter 1 Beginnings",
        "Chapter 1 Beginnings > The road",
        "Part Two > 第二章 旅程",
    ]
    assert [c[1] for c in CHAPTERS][1] in doc.text


def test_the_new_types_are_supported_everywhere_a_type_is_named() -> None:
    from ui.upload import ALLOWED_SUFFIXES

    for suffix in (".docx", ".pptx", ".xlsx", ".epub", ".png", ".jpg", ".jpeg", ".webp"):
        assert suffix in FORMATS and suffix in ALLOWED_SUFFIXES
    for legacy in (".doc", ".ppt", ".xls", ".mobi"):
        assert legacy not in FORMATS  # still the clear refusal


def test_dry_run_and_docs_describe_the_new_types(tmp_path: Path, monkeypatch, capsys) -> None:
    from tests.helpers import FakeEmbedder
    from ui.cli import main

    folder = tmp_path / "docs"
    folder.mkdir()
    files = {"h.docx": docx_bytes(), "r.pptx": pptx_bytes(), "b.xlsx": xlsx_bytes()}
    files |= {"e.epub": epub_bytes(), "old.doc": b"\xd0\xcf\x11\xe0 legacy"}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    monkeypatch.setenv("ASKDOCS_HOME", str(tmp_path / "home"))
    assert main(["ingest", "--dry-run", str(folder)]) == 0
    out = capsys.readouterr().out
    for name, fmt in (
        ("h.docx", "docx"),
        ("r.pptx", "pptx"),
        ("b.xlsx", "xlsx"),
        ("e.epub", "epub"),
    ):
        line = next(x for x in out.splitlines() if x.split()[0].endswith(name))
        assert line.split()[1] == fmt
    assert "total: 4 files" in out  # .doc is not a supported type: not picked up

    import index.model.embedder

    monkeypatch.setattr(index.model.embedder, "load_embedder", lambda *a, **k: FakeEmbedder())
    assert main(["ingest", str(folder), "--model", "fake"]) == 0
    capsys.readouterr()
    assert main(["docs", "--model", "fake"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("h.docx", "r.pptx", "b.xlsx", "e.epub"))
    code = main(["ingest", str(folder / "old.doc"), "--dry-run"])
    assert code == 2 and "unsupported file type '.doc'" in capsys.readouterr().err


@pytest.mark.parametrize("build", [docx_bytes, pptx_bytes, xlsx_bytes, epub_bytes])
def test_an_office_file_is_read_the_same_every_time(build) -> None:
    name = {"docx_bytes": "a.docx", "pptx_bytes": "a.pptx"}.get(build.__name__, "a.xlsx")
    name = "a.epub" if build is epub_bytes else name
    data = build()
    assert parse(data, name, name).text == parse(data, name, name).text

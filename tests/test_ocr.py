"""OCR with the real engine (rapidocr-onnxruntime, the `ocr` extra) on pages the test renders
from known text (PIL, 150 dpi, Noto Sans CJK from fonts-noto-cjk): character accuracy, which
pages are OCR'd, how citations name them, confidence flags and the time caps."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest

from ingest import ocr
from ingest.chunking import chunk_document
from ingest.loading import load_paths, parse
from tests.scans import accuracy, font_path, known_text, render_pages
from tests.test_ingest import _pdf

pytestmark = [
    pytest.mark.ocr,
    pytest.mark.skipif(
        font_path() is None, reason="needs fonts-noto-cjk (make system-deps installs it)"
    ),
]


def _png(image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def _scan_pdf(images) -> bytes:
    """An image-only PDF: each page one picture, no text layer (as a scanner writes it)."""
    out = io.BytesIO()
    first, *rest = [im.convert("RGB") for im in images]
    first.save(out, "PDF", save_all=True, append_images=rest, resolution=150)
    return out.getvalue()


@pytest.fixture(scope="module")
def pages() -> dict[str, tuple]:
    """One A4 page of known text per language, rendered at 150 dpi."""
    return {lang: render_pages(known_text(lang)[:40])[0] for lang in ("zh", "en")}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_ocr_reads_a_rendered_page_with_95_percent_accuracy(pages, lang: str) -> None:
    image, text = pages[lang]
    assert len(text) > 800  # a real page, not a line
    doc = parse(_png(image), f"page-{lang}.png", f"page-{lang}.png")
    assert (doc.format, doc.lang, doc.page_starts) == ("image", lang, (0,))
    assert accuracy(text, doc.text) >= 0.95
    if lang == "en":  # English words keep their spaces (the page is binarised first)
        assert accuracy(text, doc.text, spaces=True) >= 0.95
    marks = ocr.read_marks(doc.encoding)
    assert list(marks) == [1] and marks[1] >= ocr.LOW_CONFIDENCE
    chunks = chunk_document(doc)
    assert chunks and {c.heading for c in chunks} == {"image (OCR)"}
    assert all(c.text == doc.text[c.start : c.end] for c in chunks)


def test_jpeg_and_webp_are_read_too(pages) -> None:
    image, text = pages["en"]
    for fmt, name in (("JPEG", "scan.jpg"), ("WEBP", "scan.webp")):
        out = io.BytesIO()
        image.convert("RGB").save(out, fmt, quality=75)  # a lossy scan
        doc = parse(out.getvalue(), name, name)
        assert accuracy(text, doc.text, spaces=True) >= 0.95, fmt


def test_only_pages_without_a_text_layer_are_ocrd(pages) -> None:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    for part in (_pdf(["A typed first page about tuples and lists."]), _scan_pdf([pages["zh"][0]])):
        for page in PdfReader(io.BytesIO(part)).pages:
            writer.add_page(page)
    out = io.BytesIO()
    writer.write(out)
    doc = parse(out.getvalue(), "mixed.pdf", "mixed.pdf")
    assert doc.text.startswith("A typed first page about tuples and lists.")
    assert list(ocr.read_marks(doc.encoding)) == [2]  # page 1 has a text layer
    page2 = doc.text[doc.page_starts[1] :]
    assert accuracy(pages["zh"][1], page2) >= 0.95
    heads = {c.heading for c in chunk_document(doc) if c.start >= doc.page_starts[1]}
    assert heads == {"page 2 (OCR)"}  # what a citation of it shows
    first = [c for c in chunk_document(doc) if c.start < doc.page_starts[1]]
    assert first and all("OCR" not in c.heading for c in first)


def test_low_confidence_pages_are_flagged(pages, tmp_path: Path, monkeypatch, capsys) -> None:
    import index.model.embedder
    from tests.helpers import FakeEmbedder
    from ui.cli import main

    (tmp_path / "scan.pdf").write_bytes(_scan_pdf([pages["en"][0]]))
    # The threshold above any real page's confidence: the page is flagged with its figure.
    monkeypatch.setattr(ocr, "LOW_CONFIDENCE", 0.9999)
    monkeypatch.setattr(index.model.embedder, "load_embedder", lambda *a, **k: FakeEmbedder())
    monkeypatch.setenv("ASKDOCS_HOME", str(tmp_path / "home"))
    assert main(["ingest", str(tmp_path / "scan.pdf"), "--model", "fake"]) == 0
    capsys.readouterr()
    assert main(["docs", "--model", "fake"]) == 0
    out = capsys.readouterr().out
    assert "OCR 1 page; LOW confidence: p1 0.9" in out
    assert main(["docs", "--model", "fake", "--json"]) == 0
    import json

    (row,) = json.loads(capsys.readouterr().out)["documents"]
    assert row["ocr_low_pages"] == [1] and "; ocr p1=" in row["encoding"]


def test_page_time_cap_keeps_what_was_read_and_warns(pages, tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "slow.png").write_bytes(_png(pages["en"][0]))
    (tmp_path / "good.md").write_text("# Fine\n\nA note that loads.\n", encoding="utf-8")
    monkeypatch.setattr(ocr, "LIMITS", dataclasses.replace(ocr.LIMITS, page_seconds=0.0))
    report = load_paths([tmp_path])
    assert [d.source.split("/")[-1] for d in report.documents] == ["good.md"]
    assert any("slow.png" in w and "no text" in w for w in report.warnings)  # nothing read


def test_a_long_scan_stops_at_the_file_cap_with_a_partial_result(pages, monkeypatch) -> None:
    image = render_pages(["One line on a long scan, about tuples and lists."])[0][0]
    data = _scan_pdf([image] * 60)  # about a CPU second a page
    monkeypatch.setattr(ocr, "LIMITS", dataclasses.replace(ocr.LIMITS, file_seconds=4.0))
    seen: list[tuple[int, int]] = []
    with ocr.reporting(lambda done, total: seen.append((done, total))):
        doc = parse(data, "long.pdf", "long.pdf")
    read = len(ocr.read_marks(doc.encoding))  # pages with text
    tried, total = seen[-1]  # a progress step per page; the last may be cut short
    assert total == 60 and 1 <= read <= tried < 60 and tried - read <= 1
    assert len(doc.page_starts) == 60  # unread pages are empty, numbering holds
    (note,) = [n for n in doc.notes if "scanned pages not read" in n]
    assert "time cap" in note and f"{60 - tried} of 60 scanned pages not read" in note


def test_gold_quotes_on_a_scanned_page_are_in_its_chunks() -> None:
    """What bench/ocr_retrieval.py measures, on one page: the second page of the bundled
    stdlib notes, printed and scanned, holds the gold quotes of six dev questions; after OCR
    and chunking each is in a chunk (letters and digits, ≤10% misread), and the project's
    own rule still finds most of them."""
    from assistant.evaluate import matched_quote
    from tests.scans import REPO, holds_quote, printed, render_lines

    lines = printed((REPO / "corpus" / "stdlib-notes.en.md").read_text(encoding="utf-8"))
    image, text = render_lines(lines)[1]
    quotes = [  # dev.jsonl and dev2.jsonl, as written there
        "Return the file descriptor for the newly opened file.",
        "has been reached, an empty string is returned",
        "`SEEK_END` or `2` to set it relative to the end of the file",
        "Availability: Unix, and Windows starting in 2.2.3.",
        "Read at most *n* bytes from file descriptor *fd*. Return a string containing the bytes read.",
        "On Unix, this calls the native `fsync()` function.",
    ]
    assert all(holds_quote(text, q) for q in quotes)  # the page holds them
    doc = parse(_scan_pdf([image]), "notes.pdf", "notes.pdf")
    chunks = [c.text for c in chunk_document(doc)]
    assert all(any(holds_quote(c, q) for c in chunks) for q in quotes)
    strict = sum(any(matched_quote(c, [q]) is not None for c in chunks) for q in quotes)
    assert strict >= 3  # those with backticks lose them on paper

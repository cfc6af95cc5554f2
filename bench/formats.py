"""What reading each format costs: one long text (the bundled library's prose, about 50 A4
pages) written as Markdown, .docx, .pptx, .xlsx and .epub with the libraries askdocs reads them
with, then read (`ingest.loading.parse`) and chunked as an ingest does; characters per second
of stored text, and the ratio to Markdown.

    python bench/formats.py [--pages 50] [--runs 3]

Embedding is left out: it costs the same per character whatever the file was, and is far
slower than any reading here (docs/results.md)."""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.chunking import chunk_document  # noqa: E402
from ingest.loading import parse  # noqa: E402
from tests.scans import known_text  # noqa: E402

CHARS_A_PAGE = 3000  # an A4 page of English prose


def _paragraphs(pages: int) -> list[str]:
    source = known_text("en") + known_text("zh")
    out, size, i = [], 0, 0
    while size < pages * CHARS_A_PAGE:
        para = source[i % len(source)]
        out.append(para)
        size += len(para)
        i += 1
    return out


def _sections(paras: list[str], per: int = 12) -> list[tuple[str, list[str]]]:
    return [(f"Section {k // per + 1}", paras[k : k + per]) for k in range(0, len(paras), per)]


def build(kind: str, paras: list[str]) -> bytes:
    out = io.BytesIO()
    if kind == "md":
        text = "\n\n".join(f"## {t}\n\n" + "\n\n".join(ps) for t, ps in _sections(paras))
        return text.encode("utf-8")
    if kind == "docx":
        import docx

        doc = docx.Document()
        for title, ps in _sections(paras):
            doc.add_heading(title, level=2)
            for p in ps:
                doc.add_paragraph(p)
        doc.save(out)
    elif kind == "pptx":
        from pptx import Presentation

        deck = Presentation()
        for title, ps in _sections(paras, per=4):
            slide = deck.slides.add_slide(deck.slide_layouts[1])
            slide.shapes.title.text = title
            frame = slide.placeholders[1].text_frame
            frame.text = ps[0]
            for p in ps[1:]:
                frame.add_paragraph().text = p
        deck.save(out)
    elif kind == "xlsx":
        from openpyxl import Workbook

        book = Workbook()
        sheet = book.active
        sheet.append(["section", "text"])
        for title, ps in _sections(paras):
            for p in ps:
                sheet.append([title, p])
        book.save(out)
    elif kind == "epub":
        from tests.office_files import epub_bytes

        chapters = [
            (f"c{k}.xhtml", t, "".join(f"<p>{p}</p>" for p in ps))
            for k, (t, ps) in enumerate(_sections(paras))
        ]
        return epub_bytes(chapters)
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    paras = _paragraphs(args.pages)
    load = os.getloadavg()[0]
    rows = []
    for kind in ("md", "docx", "pptx", "xlsx", "epub"):
        data = build(kind, paras)
        name = f"bench.{kind}"
        times = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            doc = parse(data, name, name)
            chunks = chunk_document(doc)
            times.append(time.perf_counter() - t0)
        best = min(times)
        rows.append((kind, len(data), len(doc.text), len(chunks), best, statistics.median(times)))
    md_rate = rows[0][2] / rows[0][4]
    print(f"{args.pages} pages of prose, best and median of {args.runs}; load average {load:.1f}")
    print()
    print(
        "| file | bytes | stored chars | chunks | read + chunk s (best) | median | chars/s | vs Markdown |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for kind, size, chars, n, best, median in rows:
        rate = chars / best
        print(
            f"| .{kind} | {size:,} | {chars:,} | {n} | {best:.2f} | {median:.2f} "
            f"| {rate:,.0f} | {rate / md_rate:.2f}× |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Retrieval from scanned pages against the text original: the dev questions whose gold lies in
pages that were printed to pictures and read back by OCR.

    python bench/ocr_retrieval.py [--max-blocks N] [--dpi 150] [--work DIR] [--reuse text|both]

The bundled library's small files (the two Chinese notes, stdlib-notes.en.md) are scanned
whole; of python-docs-summaries.en.txt (640 kB) only the `---` blocks holding a gold quote of
dev.jsonl or dev2.jsonl (the first N in file order with --max-blocks). Each scanned text is
drawn on A4 pages (PIL, Noto Sans CJK, 11 pt, `--dpi`; headings, bullets and quote marks as a
printout shows them) and saved as an image-only PDF. Two libraries are built with
`askdocs ingest` in $ASKDOCS_HOME: `ocr-text` holds the scanned texts as text files, `ocr-scan`
the PDFs (read by OCR at ingest); both hold the rest of the corpus as text, so every question
searches the same distractors. The questions asked are the answerable ones of dev and dev2
whose gold quote lies in a scanned text.

A hit is judged two ways, the same for both libraries: the project's rule (`askdocs eval`:
the folded quote, white space collapsed, inside a passage or ≥60% of it at a chunk boundary),
which an OCR'd line break inside a Chinese sentence or a lost backtick already breaks; and
on letters and digits only with up to 10% of the quote's characters misread
(tests.scans.holds_quote), which forgives what OCR changes but a reader does not see.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SETS = [ROOT.parent / "shared" / "eval" / f for f in ("dev.jsonl", "dev2.jsonl")]
WHOLE = ("modules-notes.zh.md", "python-tutorial-notes.zh.md", "stdlib-notes.en.md")
BLOCKS = "python-docs-summaries.en.txt"
KINDS = ("en-en", "zh-zh", "zh-en", "en-zh")


def scanned_texts(
    questions: list[dict], max_blocks: int | None
) -> tuple[dict[str, str], dict[str, str]]:
    """(scanned name → text, corpus name → the rest of it kept as text)."""
    from assistant.evaluate import fold

    corpus = ROOT / "corpus"
    scanned = {name: (corpus / name).read_text(encoding="utf-8") for name in WHOLE}
    blocks = (corpus / BLOCKS).read_text(encoding="utf-8").split("\n---\n")
    quotes = [fold(g["quote"]) for q in questions for g in q["gold"] if g["doc"] == BLOCKS]
    gold = [i for i, b in enumerate(blocks) if any(q in fold(b) for q in quotes)]
    gold = set(gold[:max_blocks] if max_blocks else gold)
    scanned["summaries-gold-blocks.en.txt"] = "\n---\n".join(blocks[i] for i in sorted(gold))
    rest = {BLOCKS: "\n---\n".join(b for i, b in enumerate(blocks) if i not in gold)}
    return scanned, rest


def write_pdf(lines: list[str], path: Path, dpi: int) -> int:
    """An image-only PDF of `lines` (as a scanner writes one); returns its page count."""
    from tests.scans import render_lines

    images = [image.convert("RGB") for image, _ in render_lines(lines, dpi=dpi)]
    images[0].save(path, "PDF", save_all=True, append_images=images[1:], resolution=dpi)
    return len(images)


def ingest(folder: Path, library: str) -> tuple[float, float]:
    """`askdocs ingest FOLDER --library L --rebuild` in a child; (wall s, CPU s)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    w0 = time.perf_counter()
    cmd = [sys.executable, "-m", "ui.cli", "ingest", str(folder), "--library", library]
    subprocess.run([*cmd, "--rebuild"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return time.perf_counter() - w0, cpu


def scores(library: str, questions: list, k: int = 10) -> list[dict]:
    """Per question: first rank of a relevant passage under each rule (None: not in top k)."""
    from assistant import evaluate
    from assistant.retrieve import Retriever
    from index.config import LibraryConfig
    from index.library import Library
    from tests.scans import holds_quote

    search = evaluate.search_with(Retriever(Library.open(LibraryConfig(name=library))))
    out = []
    for o in evaluate.run(search, questions, k):
        strict = [evaluate.matched_quote(t, o.question.quotes) is not None for t in o.texts]
        near = [any(holds_quote(t, q) for q in o.question.quotes) for t in o.texts]
        out.append({"kind": o.question.kind, "strict": _first(strict), "near": _first(near)})
    return out


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]


def _first(flags: list[bool]) -> int | None:
    return next((r for r, f in enumerate(flags, 1) if f), None)


def _r5(runs: list[dict], pick: list[int], rule: str) -> float:
    return sum((runs[i][rule] or 99) <= 5 for i in pick) / len(pick)


def _mrr(runs: list[dict], pick: list[int]) -> float:
    return sum(1 / runs[i]["strict"] for i in pick if runs[i]["strict"]) / len(pick)


def table(text: list[dict], scan: list[dict]) -> str:
    rows = [
        "| direction | questions | R@5 text | R@5 OCR | Δ | R@5 text (near) | R@5 OCR (near) "
        "| Δ (near) | MRR@10 text | MRR@10 OCR |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind in (*KINDS, "all"):
        pick = [i for i, s in enumerate(text) if kind in ("all", s["kind"])]
        if not pick:
            continue
        t, s = _r5(text, pick, "strict"), _r5(scan, pick, "strict")
        tn, sn = _r5(text, pick, "near"), _r5(scan, pick, "near")
        rows.append(
            f"| {kind} | {len(pick)} | {t:.3f} | {s:.3f} | {s - t:+.3f} | {tn:.3f} | {sn:.3f} "
            f"| {sn - tn:+.3f} | {_mrr(text, pick):.3f} | {_mrr(scan, pick):.3f} |"
        )
    return "\n".join(rows)


def main() -> int:
    from assistant import evaluate
    from assistant.evaluate import fold
    from tests.scans import font_path, printed

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--max-blocks", type=int, default=None, help="gold blocks of the summaries")
    p.add_argument("--dpi", type=int, default=150)
    p.add_argument("--work", type=Path, default=Path("/tmp/askdocs-ocr-retrieval"))
    p.add_argument(
        "--reuse", choices=["text", "both"], help="keep the text library or both as built"
    )
    args = p.parse_args()
    if font_path() is None:
        print("needs fonts-noto-cjk (make system-deps)", file=sys.stderr)
        return 2
    scanned, rest = scanned_texts([r for path in SETS for r in _rows(path)], args.max_blocks)
    text_dir, scan_dir = args.work / "text", args.work / "scan"
    pages = 0
    if args.reuse != "both":
        for folder in (text_dir, scan_dir):
            folder.mkdir(parents=True, exist_ok=True)
            for old in folder.iterdir():
                old.unlink()
            for name, body in rest.items():
                (folder / name).write_text(body, encoding="utf-8")
        for name, body in scanned.items():
            (text_dir / name).write_text(body, encoding="utf-8")
            pages += write_pdf(printed(body), scan_dir / f"{Path(name).stem}.scan.pdf", args.dpi)
        load = os.getloadavg()[0]
        built = [("ocr-scan", scan_dir)] + ([("ocr-text", text_dir)] if not args.reuse else [])
        cost = {lib: ingest(folder, lib) for lib, folder in built}
        print(f"{pages} scanned A4 pages at {args.dpi} dpi; load average {load:.1f} at start")
        for lib, (wall, cpu) in cost.items():
            print(f"ingest {lib}: {wall:.0f} s wall, {cpu:.0f} CPU s")
    # the questions whose gold quote lies in a scanned text
    blocks = fold(scanned["summaries-gold-blocks.en.txt"])
    questions = [
        q
        for path in SETS
        for q, row in zip(evaluate.load_questions(path), _rows(path), strict=True)
        if q.answerable
        and any(
            g["doc"] in WHOLE or (g["doc"] == BLOCKS and fold(g["quote"]) in blocks)
            for g in row["gold"]
        )
    ]
    print(f"{len(questions)} questions of dev and dev2 with gold in a scanned page\n")
    print(table(scores("ocr-text", questions), scores("ocr-scan", questions)))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""OCR accuracy and speed on A4 pages rendered from known text (the bundled library's prose,
Noto Sans CJK, PIL): per language and kind of picture, 1 − normalised edit distance with and
without white space, mean confidence, and wall and CPU seconds a page.

    python bench/ocr.py [--pages 3] [--dpi 150] [--points 11] [--det-side 1120] [--tesseract]

--det-side sets the long side of the copy lines are detected on (ingest.ocr.DET_SIDE), to
compare settings on the same pages.
--tesseract adds Debian's tesseract (`apt-get install tesseract-ocr tesseract-ocr-chi-sim`,
`-l chi_sim+eng`, one thread) on the same PNG pages, for comparison.

The engine runs on one thread (ingest.ocr.engine), so CPU seconds a page is the time a page
takes on an idle core, whatever else the machine is doing; wall seconds depend on the load,
which the table's header reports (os.getloadavg before and after)."""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest import ocr  # noqa: E402
from ingest.loading import parse  # noqa: E402
from tests.scans import accuracy, font_path, known_text, render_pages  # noqa: E402


def _encode(image, kind: str) -> tuple[bytes, str]:
    out = io.BytesIO()
    if kind == "png":
        image.save(out, "PNG")
        return out.getvalue(), "page.png"
    if kind == "jpeg q75":
        image.convert("RGB").save(out, "JPEG", quality=75)
        return out.getvalue(), "page.jpg"
    image.convert("RGB").save(out, "PDF", resolution=150)  # an image-only PDF page
    return out.getvalue(), "page.pdf"


def _tesseract(lang: str, pages: list) -> tuple:
    """The same PNG pages through tesseract, one thread; CPU time of the child process."""
    import resource
    import subprocess

    acc, acc_sp, wall, cpu = [], [], [], []
    for image, text in pages:
        data, _ = _encode(image, "png")
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        w0 = time.perf_counter()
        got = subprocess.run(
            ["tesseract", "stdin", "stdout", "-l", "chi_sim+eng"],
            input=data,
            capture_output=True,
            check=True,
            env={**os.environ, "OMP_THREAD_LIMIT": "1"},
        ).stdout.decode("utf-8")
        wall.append(time.perf_counter() - w0)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        acc.append(accuracy(text, got))
        acc_sp.append(accuracy(text, got, spaces=True))
    chars = statistics.mean(len("".join(t.split())) for _, t in pages)
    return (lang, "png, tesseract", len(pages), chars, min(acc), statistics.mean(acc),
            statistics.mean(acc_sp), float("nan"), statistics.median(wall),
            statistics.median(cpu), max(cpu))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=3, help="pages per language")
    parser.add_argument("--dpi", type=int, default=150)
    parser.add_argument("--points", type=int, default=11, help="font size of the text")
    parser.add_argument("--det-side", type=int, default=ocr.DET_SIDE)
    parser.add_argument("--tesseract", action="store_true", help="compare with tesseract")
    args = parser.parse_args()
    ocr.DET_SIDE = args.det_side
    if font_path() is None:
        print("needs fonts-noto-cjk (make system-deps)", file=sys.stderr)
        return 2
    ocr.engine()  # loaded once, outside the timings
    load_before = os.getloadavg()
    rows = []
    for lang in ("zh", "en"):
        pages = render_pages(known_text(lang), dpi=args.dpi, points=args.points)[: args.pages]
        for kind in ("png", "jpeg q75", "pdf"):
            acc, acc_sp, conf, wall, cpu = [], [], [], [], []
            for image, text in pages:
                data, name = _encode(image, kind)
                w0, c0 = time.perf_counter(), time.thread_time()
                doc = parse(data, name, name)
                wall.append(time.perf_counter() - w0)
                cpu.append(time.thread_time() - c0)
                acc.append(accuracy(text, doc.text))
                acc_sp.append(accuracy(text, doc.text, spaces=True))
                conf.append(min(ocr.read_marks(doc.encoding).values()))
            chars = statistics.mean(len("".join(t.split())) for _, t in pages)
            rows.append(
                (lang, kind, len(pages), chars, min(acc), statistics.mean(acc),
                 statistics.mean(acc_sp), statistics.mean(conf),
                 statistics.median(wall), statistics.median(cpu), max(cpu))
            )  # fmt: skip
        if args.tesseract:
            rows.append(_tesseract(lang, pages))
    load_after = os.getloadavg()
    print(
        f"OCR on {os.cpu_count()} cores, engine on 1 thread; load average "
        f"{load_before[0]:.1f} before, {load_after[0]:.1f} after; A4 at {args.dpi} dpi, "
        f"{args.points} pt; lines detected on a copy ≤ {args.det_side} px"
    )
    print()
    print(
        "| lang | picture | pages | chars/page | acc min | acc mean | acc with spaces "
        "| confidence | wall s/page (median) | CPU s/page (median) | CPU s/page (max) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for lang, kind, n, chars, amin, amean, asp, conf, wall, cpu, cmax in rows:
        print(
            f"| {lang} | {kind} | {n} | {chars:.0f} | {amin:.3f} | {amean:.3f} | {asp:.3f} "
            f"| {conf:.3f} | {wall:.2f} | {cpu:.2f} | {cmax:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

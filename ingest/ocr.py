"""Text from pictures of text: image files and PDF pages that have no text layer.

RapidOCR (`rapidocr-onnxruntime`, the optional `ocr` extra) runs PaddleOCR's PP-OCRv4
detection and recognition models, which ship inside its wheel, on onnxruntime: offline, and
one model reads Chinese and English together. We drive its steps ourselves (detect, crop,
recognise in batches) rather than calling it whole, so that a page can stop at its
time cap between batches and keep what it has read.

What OCR read is marked where the library keeps it: a document's `encoding` says which pages
were OCR'd and with what confidence (`describe` / `read_marks`, e.g. "pdf; ocr p2=0.97
p3=0.41"), so `askdocs docs` and the library page can flag the low ones, and the chunker
names such a page "page N (OCR)" in every citation.

Over 300 lines because a page's time cap needs the detect, crop and recognise steps in one
loop, with the picture guards before them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from ingest.errors import InputError

if TYPE_CHECKING:
    import numpy as np

LOW_CONFIDENCE = 0.85  # below this mean recognition score a page is flagged for a human look


@dataclass(frozen=True)
class Limits:
    """Caps on OCR work: per page, per file, and on the pixels of one picture.

    Time is the CPU time OCR spends in the reading thread (`clock`; the engine runs on that
    one thread), not wall time: on a busy machine a page is read slower but the same, so
    an ingest's text never depends on what else the machine was doing."""

    page_seconds: float = 60.0  # a dense A4 page takes about 3 s
    file_seconds: float = 900.0  # about 300 pages
    max_pixels: int = 60_000_000  # an A4 page at 600 dpi is 35 MP
    dpi: int = 200  # PDF pages are rendered at this resolution


LIMITS = Limits()


@dataclass(frozen=True)
class PageText:
    """What OCR read on one page (image, or PDF page number `page`)."""

    page: int
    text: str
    confidence: float  # mean recognition score weighted by characters; 0.0 when none read
    seconds: float
    complete: bool = True  # False: the page's time cap stopped it; `text` is what it read

    @property
    def low(self) -> bool:
        return bool(self.text) and self.confidence < LOW_CONFIDENCE


def clock() -> float:
    """CPU seconds of this thread: what the OCR caps count."""
    return time.thread_time()


# Per-page progress for whoever shows it (the CLI's bars); ingest itself never prints.
_progress: ContextVar[Callable[[int, int], None] | None] = ContextVar("ocr_progress", default=None)


@contextmanager
def reporting(callback: Callable[[int, int], None] | None) -> Iterator[None]:
    """Within this block each OCR'd page calls `callback(done, total)`."""
    token = _progress.set(callback)
    try:
        yield
    finally:
        _progress.reset(token)


def available() -> bool:
    """Whether the `ocr` extra is installed (without importing it: that takes a second)."""
    from importlib.util import find_spec

    return all(find_spec(m) is not None for m in ("rapidocr_onnxruntime", "pypdfium2"))


@lru_cache(maxsize=1)
def engine() -> object:
    """The RapidOCR engine, loaded once per process (about a second)."""
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as exc:
        raise InputError(
            "needs OCR, which is not installed",
            hint="pip install 'askdocs[ocr]' (rapidocr-onnxruntime)",
        ) from exc
    # One thread: on a busy machine onnxruntime's spinning second thread doubled the CPU
    # time of a page and made it slower (bench/ocr.py).
    return RapidOCR(intra_op_num_threads=1, inter_op_num_threads=1)


def read_picture(image: object, page: int, deadline: float) -> PageText:
    """OCR one PIL image; stops between lines once `deadline` (a `clock` time) has
    passed, keeping the lines read so far (`complete=False`)."""
    import cv2
    import numpy as np

    ocr = engine()
    started = clock()
    img = _paper(np.asarray(image.convert("RGB"))[:, :, ::-1])  # type: ignore[attr-defined]
    img, _, _ = ocr.preprocess(img)  # type: ignore[attr-defined]
    img, _ = ocr.maybe_add_letterbox(img, {})  # type: ignore[attr-defined]
    # Lines are found on a copy no longer than DET_SIDE (a third of the page's time at full
    # size, the same lines) and cut from the full-size page for reading.
    height, width = img.shape[:2]
    scale = min(1.0, DET_SIDE / max(height, width))
    small = (
        img
        if scale == 1.0
        else cv2.resize(
            img, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA
        )
    )
    boxes, _ = ocr.auto_text_det(small)  # type: ignore[attr-defined]
    if boxes is None:
        return PageText(page, "", 0.0, clock() - started)
    boxes = [(np.asarray(b) / scale).astype(np.float32) for b in boxes]
    crops = ocr.get_crop_img_list(img, boxes)  # type: ignore[attr-defined]
    found: list[tuple[object, str, float]] = []
    complete = True
    for box, crop in zip(boxes, crops, strict=True):
        if clock() > deadline:
            complete = False
            break
        # One line at a time: batches pad every line to the widest and cost 3x the CPU
        # (bench/ocr.py). No angle classifier: it turned upright English lines upside down
        # (read back as "a se das suisn"); scans are upright far more often than not.
        (text, score, *_), *_ = ocr.text_rec([crop])[0]  # type: ignore[attr-defined]
        if float(score) >= ocr.text_score and text.strip():  # type: ignore[attr-defined]
            found.append((box, text.strip(), float(score)))
    text = _layout(found)
    chars = sum(len(t) for _, t, _ in found) or 1
    confidence = sum(len(t) * s for _, t, s in found) / chars if found else 0.0
    return PageText(page, text, round(confidence, 4), clock() - started, complete)


def _paper(bgr: np.ndarray) -> np.ndarray:
    """A page of dark text on light paper, binarised (Otsu's threshold); anything else as it
    is. JPEG's ringing around letters makes the recogniser drop the spaces between English
    words ("afunctionthatreturns"); on a clean black-and-white page it keeps them (measured
    on pages saved at JPEG quality 75: bench/ocr.py)."""
    import cv2
    import numpy as np

    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    if np.mean(gray > 200) < 0.6:  # not mostly light paper: a photo, a dark slide
        return bgr
    _, binary = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return cv2.cvtColor(binary, cv2.COLOR_GRAY2BGR)


# Pixels: the long side of the copy lines are detected on. 1280 keeps the accuracy of 1400 (8 pt
# English too) at up to 0.5 CPU s less a small-print page; 1120 saved 0.2-0.7 s more but read
# 8 pt English 0.6 points worse (bench/ocr.py --det-side, docs/results.md).
DET_SIDE = 1280
_LATIN = re.compile(r"[A-Za-z0-9.,;:!?)\]}%'\"-]$")


def _layout(found: list[tuple[object, str, float]]) -> str:
    """Lines in reading order (the detector's top-to-bottom, left-to-right order): boxes
    whose middles share a line are joined, a gap taller than a line and a half starts a new
    paragraph (a blank line, which the chunker treats as a paragraph break)."""
    lines: list[tuple[float, float, list[str]]] = []  # top, height, parts
    for box, text, _ in found:
        ys = [float(p[1]) for p in box]  # type: ignore[attr-defined]
        top, bottom = min(ys), max(ys)
        middle, height = (top + bottom) / 2, max(bottom - top, 1.0)
        if lines and abs(middle - (lines[-1][0] + lines[-1][1] / 2)) < lines[-1][1] / 2:
            lines[-1][2].append(text)
        else:
            lines.append((top, height, [text]))
    out: list[str] = []
    for i, (top, height, parts) in enumerate(lines):
        if i and top - lines[i - 1][0] > 1.5 * max(height, lines[i - 1][1]) + height / 2:
            out.append("")
        line = parts[0]
        for part in parts[1:]:
            latin = _LATIN.search(line) and part[:1].isascii()
            line += (" " if latin else "") + part
        out.append(line)
    return "\n".join(out)


def open_image(data: bytes, limits: Limits | None = None) -> object:
    """A PIL image of `data` (its first frame, turned upright by its EXIF orientation), or
    InputError: a broken file, or one whose pixel count passes the cap, which is known from
    the header before anything is decoded (a 50,000 × 50,000 PNG compresses to kilobytes)."""
    limits = limits or LIMITS
    import io

    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(data))
        width, height = image.size
        if width * height > limits.max_pixels:
            raise _too_many(limits.max_pixels, f"{width} × {height} pixels, ")
        image.seek(0)
        image.load()
        return ImageOps.exif_transpose(image)
    except InputError:
        raise
    except Image.DecompressionBombError as exc:  # PIL's own check, at twice its own limit
        raise _too_many(limits.max_pixels) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError) as exc:
        raise InputError(f"broken image ({exc})", hint="re-save the image") from exc


def _too_many(cap: int, size: str = "") -> InputError:
    return InputError(
        f"image too large ({size}over the limit of {cap // 1_000_000} megapixels)",
        hint="scale it down (300 dpi is plenty for OCR)",
    )


def read_image(data: bytes, limits: Limits | None = None) -> PageText:
    """OCR of an image file (one page, numbered 1)."""
    limits = limits or LIMITS
    image = open_image(data, limits)
    engine()  # loading the models is not reading the page
    deadline = clock() + min(limits.page_seconds, limits.file_seconds)
    page = read_picture(image, 1, deadline)
    if callback := _progress.get():
        callback(1, 1)
    return page


def read_pdf_pages(
    data: bytes, pages: list[int], limits: Limits | None = None
) -> tuple[list[PageText], list[str]]:
    """OCR the given PDF pages (1-based), rendered at `limits.dpi` (less for a page so large
    that it would pass the pixel cap). Returns the pages read and warnings: a page cut short
    by its cap, the pages the file's cap left unread."""
    limits = limits or LIMITS
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except Exception as exc:  # pdfium's own error for what pypdf could open
        raise InputError(f"PDF pages cannot be rendered for OCR ({exc})", hint=_RESAVE) from exc
    read: list[PageText] = []
    notes: list[str] = []
    engine()  # loading the models is not reading the pages
    stop = clock() + limits.file_seconds
    callback = _progress.get()
    try:
        for done, number in enumerate(pages):
            if clock() > stop:
                notes.append(
                    f"OCR stopped at its time cap ({limits.file_seconds:g} CPU s a file): "
                    f"{len(pages) - done} of {len(pages)} scanned pages not read "
                    f"(from page {number})"
                )
                break
            page = pdf[number - 1]
            width, height = page.get_size()  # points
            scale = limits.dpi / 72
            if width * height * scale * scale > limits.max_pixels:
                scale = (limits.max_pixels / max(width * height, 1.0)) ** 0.5
            image = page.render(scale=scale).to_pil()
            deadline = min(clock() + limits.page_seconds, stop)
            text = read_picture(image, number, deadline)
            if not text.complete:
                notes.append(f"page {number}: OCR stopped at its time cap; partly read")
            read.append(text)
            if callback:
                callback(done + 1, len(pages))
    finally:
        pdf.close()
    return read, notes


_RESAVE = "re-export or repair the PDF"


def describe(base: str, pages: list[PageText]) -> str:
    """The `encoding` of a document with OCR'd pages: "BASE; ocr pN=CONF ..."."""
    marks = " ".join(f"p{p.page}={p.confidence:.2f}" for p in pages if p.text)
    return f"{base}; ocr {marks}" if marks else base


_MARK = re.compile(r"\bp(\d+)=(\d+(?:\.\d+)?)")


def read_marks(encoding: str) -> dict[int, float]:
    """Page → OCR confidence, from a document's `encoding` ({} when nothing was OCR'd)."""
    if "; ocr " not in encoding:
        return {}
    return {int(p): float(c) for p, c in _MARK.findall(encoding.split("; ocr ", 1)[1])}


def low_pages(encoding: str) -> list[int]:
    """Pages whose OCR confidence is below `LOW_CONFIDENCE`."""
    return [p for p, c in read_marks(encoding).items() if c < LOW_CONFIDENCE]


def summary(encoding: str) -> str:
    """What `askdocs docs` and the library page say of a document's OCR ("" when none):
    how many pages were OCR'd, and which of them have low confidence."""
    marks = read_marks(encoding)
    if not marks:
        return ""
    low = low_pages(encoding)
    text = f"OCR {len(marks)} page{'s' if len(marks) > 1 else ''}"
    if low:
        shown = ", ".join(f"p{p} {marks[p]:.2f}" for p in low[:5])
        text += f"; LOW confidence: {shown}" + (f" (+{len(low) - 5})" if len(low) > 5 else "")
    return text

"""Pictures of known text, for the OCR tests and bench/ocr.py: A4 pages rendered with PIL in
a CJK font from Debian's fonts-noto-cjk, and the character accuracy of what OCR read back."""

from __future__ import annotations

import html
import re
from functools import lru_cache
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
A4_INCHES = (8.27, 11.69)
_FONTS = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
)


def font_path() -> str | None:
    """The Noto Sans CJK font (fonts-noto-cjk, installed by `make system-deps`), or None."""
    return next((f for f in _FONTS if Path(f).exists()), None)


_MARKUP = re.compile(r"[`*#>|\[\]_]+")


@lru_cache(maxsize=4)
def known_text(lang: str) -> list[str]:
    """Prose paragraphs of the bundled sample library in one language (code and markup
    left out): the text pages are rendered from."""
    files = {
        "zh": ["modules-notes.zh.md", "python-tutorial-notes.zh.md"],
        "en": ["stdlib-notes.en.md", "python-docs-summaries.en.txt"],
    }[lang]
    paragraphs: list[str] = []
    for name in files:
        in_code = False
        for line in (REPO / "corpus" / name).read_text(encoding="utf-8").splitlines():
            if line.lstrip().startswith("```"):
                in_code = not in_code
                continue
            text = " ".join(_MARKUP.sub(" ", html.unescape(line)).split()).lstrip("-+ ")
            is_zh = bool(re.search(r"[\u4e00-\u9fff]", text))
            if in_code or len(text) < 30 or (lang == "zh") != is_zh:
                continue
            paragraphs.append(text)
    return paragraphs


def render_pages(paragraphs: list[str], dpi: int = 150, points: int = 11) -> list:
    """A4 pages (PIL, grayscale) holding `paragraphs`, wrapped to the page's width, a blank
    line between paragraphs; as many pages as the text needs. Returns [(image, text)] with
    the text each page holds, line breaks where the page has them."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(font_path(), int(points / 72 * dpi))
    width, height = int(A4_INCHES[0] * dpi), int(A4_INCHES[1] * dpi)
    margin, step = int(0.8 * dpi), int(font.size * 1.6)
    lines: list[str] = []
    for para in paragraphs:
        lines.extend(_wrap(para, font, width - 2 * margin))
        lines.append("")
    pages = []
    per_page = (height - 2 * margin) // step
    for at in range(0, len(lines), per_page):
        chunk = lines[at : at + per_page]
        image = Image.new("L", (width, height), 255)
        draw = ImageDraw.Draw(image)
        for i, line in enumerate(chunk):
            draw.text((margin, margin + i * step), line, font=font, fill=0)
        pages.append((image, "\n".join(chunk).strip()))
    return pages


def _wrap(text: str, font: object, width: int) -> list[str]:
    """Lines no wider than `width`: at spaces for English, anywhere for Chinese."""
    lines, line = [], ""
    for token in re.findall(r"[A-Za-z0-9_.,;:'\"()/-]+\s*|\s+|.", text):
        if line and font.getlength(line + token.rstrip()) > width:  # type: ignore[attr-defined]
            lines.append(line.rstrip())
            line = token.lstrip()
        else:
            line += token
    if line.strip():
        lines.append(line.rstrip())
    return lines


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, one numpy row at a time (pages are thousands of characters)."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    bs = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    cols = np.arange(len(b) + 1)
    prev = cols.copy()
    for i, ch in enumerate(a, 1):
        cost = (bs != ord(ch)).astype(np.int64)
        row = np.empty_like(prev)
        row[0] = i
        row[1:] = np.minimum(prev[1:] + 1, prev[:-1] + cost)
        # insertions run left to right: row[j] = min over k<=j of row[k] + (j - k)
        row = np.minimum.accumulate(row - cols) + cols
        prev = row
    return int(prev[-1])


def accuracy(expected: str, got: str, spaces: bool = False) -> float:
    """1 − normalised edit distance. Without `spaces` all white space is left out of both
    (what a reader sees); with it runs of white space count as one space each."""
    if spaces:
        expected, got = " ".join(expected.split()), " ".join(got.split())
    else:
        expected, got = "".join(expected.split()), "".join(got.split())
    longest = max(len(expected), len(got), 1)
    return 1.0 - edit_distance(expected, got) / longest

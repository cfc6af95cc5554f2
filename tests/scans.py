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


def printed(text: str) -> list[str]:
    """The lines of a Markdown or text file as a printout shows them: no `#`, fences,
    backticks or `**`; bullets as •; quote markers gone."""
    out = []
    for line in html.unescape(text).replace("\t", "    ").splitlines():
        if line.lstrip().startswith("```"):
            continue
        line = re.sub(r"^(\s*)#+\s*", r"\1", line)
        line = re.sub(r"^(\s*)(>\s?)+", r"\1", line)
        line = re.sub(r"^(\s*)[*+-]\s+", r"\1• ", line)
        out.append(line.replace("`", "").replace("**", "").rstrip())
    return out


def render_pages(paragraphs: list[str], dpi: int = 150, points: int = 11) -> list:
    """A4 pages (PIL, grayscale) holding `paragraphs`, wrapped to the page's width, a blank
    line between paragraphs; as many pages as the text needs. Returns [(image, text)] with
    the text each page holds, line breaks where the page has them."""
    lines: list[str] = []
    for para in paragraphs:
        lines.extend([para, ""])
    return render_lines(lines, dpi, points)


def render_lines(lines: list[str], dpi: int = 150, points: int = 11) -> list:
    """A4 pages of `lines` as they are ("" a blank line), each wrapped to the page's width;
    returns [(image, text)] as `render_pages` does."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.truetype(font_path(), int(points / 72 * dpi))
    width, height = int(A4_INCHES[0] * dpi), int(A4_INCHES[1] * dpi)
    margin, step = int(0.8 * dpi), int(font.size * 1.6)
    wrapped: list[str] = []
    for line in lines:
        wrapped.extend(_wrap(line, font, width - 2 * margin) if line.strip() else [""])
    pages = []
    per_page = (height - 2 * margin) // step
    for at in range(0, len(wrapped), per_page):
        chunk = wrapped[at : at + per_page]
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
    """1 − normalised edit distance after NFKC. Without `spaces` all white space is left out
    of both (what a reader sees); with it runs of white space count as one space each."""
    import unicodedata

    # NFKC, as the project's relevance rule folds text: OCR writes the full-width "，" a
    # Chinese sentence shows, where the source typed ","; the same character to a reader.
    expected, got = unicodedata.normalize("NFKC", expected), unicodedata.normalize("NFKC", got)
    if spaces:
        expected, got = " ".join(expected.split()), " ".join(got.split())
    else:
        expected, got = "".join(expected.split()), "".join(got.split())
    longest = max(len(expected), len(got), 1)
    return 1.0 - edit_distance(expected, got) / longest


def _letters(text: str) -> str:
    """Letters and digits only, folded (NFKC, lower case): what OCR must get right; spaces,
    punctuation and markup (which OCR and rendering change) are left out."""
    import unicodedata

    text = unicodedata.normalize("NFKC", text).lower()
    return "".join(ch for ch in text if unicodedata.category(ch)[0] in "LN")


def holds_quote(passage: str, quote: str, errors: float = 0.1, cut: float = 0.6) -> bool:
    """Whether `passage` holds `quote` up to OCR's slips: on letters and digits only, some
    stretch of the passage is within `errors` × the quote's length edits of the quote, or a
    chunk boundary cut it (≥ `cut` of it, as a prefix that ends the passage or a suffix that
    starts it, within the same share of edits). The project's rule (assistant.evaluate) with
    white space, punctuation and a few misread characters forgiven."""
    q, p = _letters(quote), _letters(passage)
    if not q:
        return False
    if q in p:
        return True
    need = max(1, round(cut * len(q)))
    return _ends_with_part(q, p, errors, need) or _ends_with_part(q[::-1], p[::-1], errors, need)


def _ends_with_part(q: str, p: str, errors: float, need: int) -> bool:
    """Sellers' approximate search of `q` in `p` (a match may start anywhere in `p`): true
    when all of q is matched somewhere, or a prefix of q of at least `need` characters is
    matched at the end of p, within `errors` × its length edits."""
    if not p:
        return False
    ps = np.frombuffer(p.encode("utf-32-le"), dtype=np.uint32)
    cols = np.arange(len(p) + 1)
    row = np.zeros(len(p) + 1, dtype=np.int64)  # row i: q[:i] against p[..j], free start
    for i, ch in enumerate(q, 1):
        cost = (ps != ord(ch)).astype(np.int64)
        new = np.empty_like(row)
        new[0] = i
        new[1:] = np.minimum(row[1:] + 1, row[:-1] + cost)
        row = np.minimum.accumulate(new - cols) + cols
        if i >= need and row[-1] <= errors * i:  # q[:i] ends the passage
            return True
    return int(row.min()) <= errors * len(q)

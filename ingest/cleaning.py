"""Bytes → clean text: encoding detection, mojibake repair, Markdown entities and `<br>`.

Decoding order is chosen for speed and for short files: BOMs, then strict UTF-8 (nearly every
file, and the only check an unchanged library pays for), then UTF-16 without a BOM, then a
GB18030/Big5 check that scores candidates by common Chinese characters (charset-normalizer
guesses wrong on short Chinese texts), and only then charset-normalizer.
"""

from __future__ import annotations

import codecs
import html
import re

from ingest.errors import InputError
from ingest.text import HAN, Fences

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)

# The most frequent Chinese characters (general and technical writing), simplified and
# traditional. A right decoding of Chinese text hits these often, a wrong one rarely.
_COMMON_ZH = frozenset(
    "的一是不了在人有我他这个们中来上大为和国地到以说时要就出会可也你对生能而子那得于着下自之"
    "年过发后作里用道行所然家种事成方多经么去法学如都同现当没动面起看定天分还进好小部其些主样理"
    "心她本前开但因只从想实日者意无力它与长把机十民第公此已工使情明性知全三又关点正业外将两高间"
    "由问很最重并物手应向头文体相见被利什二等产或新己制身果加西月话合回特代内信表化老给世位次度"
    "门任常先海通教儿原东声提立及比员解水名真论处走义各入几口认条平系气题活更别打女变四总何电数"
    "安少才结反受目太量再感建务做接必场件计管期直资命书非则式设记类求据程该取"
    "函参值返块导调属串列元组典集循环判断语句错误异常读写输码运执创例继承线索引片迭代装饰闭递默键"
    "這個們來為國說時會對於著過發後裡種經麼學現當沒動還進樣實無與長機關點業將兩間問並應頭體見產"
    "話給門兒東聲員論處義幾認條係氣題別變總電數結務場計資書則設記類據該參塊導調屬組環斷語誤讀寫"
    "輸碼運執創繼線"
)
# Single-byte code pages of Latin-script languages, as charset-normalizer names them.
_LATIN_PAGE = re.compile(
    r"cp125[02478]|latin_1|iso8859_(?:[2349]|1[03-6])|mac_(?:latin2|roman|iceland)"
)
# Characters of ordinary Chinese or Western text (random bytes read as UTF-16 are mostly not).
_ORDINARY = re.compile(
    r"[\t\n\r\x20-\x7e\xa0-\u024f\u2000-\u206f\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]"
)
# Control characters that never occur in text files (tab, newlines and form feed excluded).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")


def decode(data: bytes) -> tuple[str, str]:
    """Decode file bytes; return (text, encoding name). Raises InputError for binary data."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(name), name
            except UnicodeDecodeError:
                break  # a BOM followed by garbage: let detection below decide
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        _reject_binary(text)
        return text, "utf-8"
    utf16 = _utf16_without_bom(data)
    if utf16:
        return utf16
    if b"\x00" in data:
        raise _binary()
    chinese = _guess_chinese(data)
    if chinese:
        return chinese
    from charset_normalizer import from_bytes  # slow import, rarely needed

    results = from_bytes(data)
    best = results.best()
    if best is None:
        raise _binary()
    # On short Western texts charset-normalizer may rank a Baltic or Central European page
    # above Windows-1252, by far the most common legacy page: prefer it when it fits.
    if _LATIN_PAGE.fullmatch(best.encoding) and any(
        "cp1252" in m.could_be_from_charset for m in results
    ):
        text, encoding = data.decode("cp1252"), "cp1252"
    else:
        text, encoding = str(best), best.encoding
    _reject_binary(text)
    return text, encoding


def _binary() -> InputError:
    return InputError("binary file, not text", hint="only text, Markdown, HTML, RST and PDF")


def _reject_binary(text: str) -> None:
    sample = text[:65536]
    if sample and len(_CONTROL.findall(sample)) > max(2, len(sample) // 100):
        raise _binary()


def _utf16_without_bom(data: bytes) -> tuple[str, str] | None:
    """UTF-16 without a BOM: NUL bytes at every other position (mostly-ASCII text), or, for
    mostly-Chinese text with a few ASCII characters, a decoding made of ordinary characters."""
    sample = data[:4096]
    if len(sample) < 4 or len(data) % 2 or b"\x00" not in data:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    half = len(sample) // 2
    names = ["utf-16-le", "utf-16-be"] if odd >= even else ["utf-16-be", "utf-16-le"]
    for name in names:
        try:
            text = data.decode(name)
        except UnicodeDecodeError:
            continue
        if max(even, odd) > 0.3 * half and min(even, odd) < 0.05 * half:
            return text, name
        ordinary = len(_ORDINARY.findall(text[:2048]))
        if ordinary >= 0.95 * min(len(text), 2048):
            return text, name
    return None


def _guess_chinese(data: bytes) -> tuple[str, str] | None:
    """Pick GB18030 or Big5 when one decodes cleanly into common Chinese characters."""
    best: tuple[float, str, str] | None = None
    for name in ("gb18030", "big5"):
        try:
            text = data.decode(name)
        except UnicodeDecodeError:
            continue
        han = HAN.findall(text)
        if len(han) < 2:
            continue
        score = sum(ch in _COMMON_ZH for ch in han) / len(han)
        if score >= 0.15 and (best is None or score > best[0]):
            best = (score, text, name)
    return (best[1], best[2]) if best else None


def fix_mojibake(text: str) -> str:
    """Repair text that was decoded with the wrong codec (`argumentâ€™s` → `argument’s`).

    Only encoding repairs and line breaks: quotes, full-width Chinese punctuation and HTML
    entities are left alone, so clean text keeps its own characters.
    """
    import ftfy

    config = ftfy.TextFixerConfig(
        unescape_html=False,
        uncurl_quotes=False,
        fix_character_width=False,
        fix_latin_ligatures=False,
        normalization="NFC",
        explain=False,
    )
    return ftfy.fix_text(text, config)


def normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


_BR = re.compile(r"<br\s*/?>[ \t]*(\n)?", re.IGNORECASE)
_ENTITY = re.compile(r"&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")


def clean_markdown(text: str) -> str:
    """Turn HTML entities and `<br>` into text, outside fenced code blocks (where they are code)."""
    out: list[str] = []
    fences = Fences()
    for line in text.splitlines(keepends=True):
        if fences.step(line):  # a fence line or code inside a block
            out.append(line)
            continue
        line = _BR.sub(lambda b: "\n", line)
        # &nbsp; indents lines in such notes; as a plain space it stays searchable and readable.
        line = _ENTITY.sub(lambda e: html.unescape(e.group(0)), line).replace("\xa0", " ")
        out.append(line)
    return "".join(out)

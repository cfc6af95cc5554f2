"""Language tag of a text: "zh", "en" or "other", from the scripts its letters are written in.

A script count is enough here: the library mixes Chinese notes with English docs and code, and
the tag only decides which per-language index a chunk goes to. Code identifiers inside Chinese
prose are why Han characters weigh more than Latin letters (one Han character carries about a
word, an English word takes about five letters).
"""

from __future__ import annotations

import re

# Han characters: CJK unified ideographs (with extensions A and B+) and compatibility ones.
HAN_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff"
HAN = re.compile(f"[{HAN_RANGES}]")
_KANA_HANGUL = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uac00-\ud7af\u1100-\u11ff]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
# Letters of any script: \w minus digits and underscore.
_LETTER = re.compile(r"[^\W\d_]")
# Fenced code blocks and inline code: identifiers are English whatever the prose around them.
_CODE = re.compile(r"^[ \t]*(`{3,}|~{3,})[^\n]*\n.*?^[ \t]*\1[^\n]*$|`[^`\n]+`", re.M | re.S)

# Below this much evidence the text (numbers, punctuation, a lone word) says nothing useful.
_MIN_LETTERS = 3
# Sample length for long texts: the tag of a whole document does not need every character.
_SAMPLE = 100_000

LANGS = ("zh", "en", "other")


def detect_lang(text: str, default: str = "other") -> str:
    """Return "zh", "en" or "other"; `default` when the text has too few letters to tell.

    Code does not count: a chunk of only code takes `default` (its document's language).
    """
    if len(text) > _SAMPLE:
        half = _SAMPLE // 2
        text = text[:half] + text[len(text) // 2 : len(text) // 2 + half]
    text = _CODE.sub(" ", text)
    han = len(HAN.findall(text))
    kana = len(_KANA_HANGUL.findall(text))
    latin = len(_LATIN.findall(text))
    letters = len(_LETTER.findall(text))
    if letters == 0 or (letters < _MIN_LETTERS and han + kana == 0):
        return default  # one Han character is a word; one or two Latin letters are not
    # Japanese and Korean also use Han characters; their own scripts give them away.
    if kana > 0.1 * (han + kana):
        return "other"
    if han + latin < 0.5 * letters:
        return "other"  # Cyrillic, Arabic, Greek, ...
    # Latin-script text counts as English: the library is Chinese and English by design.
    return "zh" if han * 6 >= latin else "en"

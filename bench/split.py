"""The train/validation split of the parallel pages shared by bench/terms.py and
bench/translate.py: one page in five, by a hash of its name, is held out."""

from __future__ import annotations

import hashlib

HELD_OUT = 5  # one page in HELD_OUT is validation


def held_out(page: str) -> bool:
    return int(hashlib.sha1(page.encode()).hexdigest(), 16) % HELD_OUT == 0

"""How well one text supports another: shared terms and embedding similarity.

`ingest.text.terms()` is the bag of meaningful words; `overlap` weighs what two bags share
(answer.py scores sentences with it) and, together with embeddings, `SupportChecker` checks
that an LLM sentence is backed by the span it cites (llm.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from assistant.sentences import display, split
from ingest.text import identifiers, is_code_name, terms


def weight(term: str) -> float:
    """Identifiers and numbers say more than ordinary words."""
    if "." in term or "_" in term:
        return 2.0
    if term[0].isdigit():
        return 1.5
    return 1.0


def overlap(wanted: Iterable[str], found: frozenset[str]) -> float:
    """Weighted share of the `wanted` terms that occur in `found` (0..1)."""
    wanted = list(wanted)
    total = sum(weight(t) for t in wanted)
    return sum(weight(t) for t in wanted if t in found) / total if total else 0.0


@dataclass(frozen=True)
class Thresholds:
    """A sentence is supported when its best evidence sentence passes either bar."""

    dense: float  # cosine between the answer sentence and the evidence sentence
    lexical: float  # share of the answer sentence's terms found in the cited span


# Measured with bench/support.py on shared/eval/dev.jsonl: 102 reference answers vs their gold
# quotes (supported) and vs another question's quotes / a nearby sentence (unsupported).
# e5: kept 85% of supported, flagged 100% random and 89% nearby; lexical only: 84/100/89%.
THRESHOLDS: dict[str, Thresholds] = {
    "multilingual-e5-small": Thresholds(dense=0.905, lexical=0.20),
}
LEXICAL_ONLY = Thresholds(dense=2.0, lexical=0.20)  # other embedders: shared terms only


@dataclass(frozen=True)
class Support:
    supported: bool
    dense: float
    lexical: float
    evidence: str  # the cited sentence that backs it best (display form)


class SupportChecker:
    """Checks answer sentences against the spans they cite."""

    def __init__(self, embedder=None, thresholds: Thresholds | None = None) -> None:
        self.embedder = embedder
        name = getattr(embedder, "name", "")
        self.thresholds = thresholds or THRESHOLDS.get(name, LEXICAL_ONLY)

    def check(self, claims: list[str], evidence: list[list[str]]) -> list[Support]:
        """`evidence[i]` holds the cited span texts of `claims[i]` (empty: unsupported)."""
        groups = [[u for text in ev for u in units(text)] for ev in evidence]
        flat = sorted({u for g in groups for u in g})
        col = {u: j for j, u in enumerate(flat)}
        cos = np.zeros((len(claims), len(flat)), dtype=np.float32)
        if self.embedder is not None and claims and flat:
            cos = self.embedder.embed(claims, kind="query") @ self.embedder.embed(flat).T
        out = []
        for i, (claim, group) in enumerate(zip(claims, groups, strict=True)):
            if not group:
                out.append(Support(False, 0.0, 0.0, ""))
                continue
            found = frozenset().union(*(terms(u) for u in group))
            lex = overlap(terms(claim), found)
            row = [float(cos[i, col[u]]) for u in group]
            best = max(range(len(group)), key=row.__getitem__)
            dense = row[best] if self.embedder is not None else 0.0
            ok = dense >= self.thresholds.dense or lex >= self.thresholds.lexical
            # A number or version the sources never state ("removed in Python 2.7") is made up,
            # however close the rest of the sentence is.
            ok = ok and not {t for t in terms(claim) if t[0].isdigit()} - found
            # So is an API the sources never name (`lru_cache.setrlimit()` over a page on
            # lru_cache scored 0.83 and passed on shared words): a code name must be there.
            ok = ok and not unnamed(claim, " ".join(evidence[i]))
            out.append(Support(ok, dense, lex, group[best]))
        return out


def unnamed(claim: str, sources: str) -> list[str]:
    """The code names of `claim` (`ingest.text.is_code_name`: dotted, underscored, a call,
    capitals inside) that `sources` never write. A dotted name counts by its last part, what
    it names (`functools.lru_cache` over a span that says `lru_cache`), in any case and spacing
    (`JSON` over "json", `macOS` over "Mac OS"); a dunder name by its core (`__str__` over
    Markdown's "**str**"), a prefix by what it starts (`PyInit_` over "PyInit_spam")."""
    squeezed = re.sub(r"\s+", "", sources).lower()
    out = []
    for word in identifiers(claim):
        parts = word.removesuffix("()").split(".")
        if not is_code_name(word) or all(len(p) <= 1 for p in parts):  # "e.g", "i.e"
            continue
        last = parts[-1].strip("_") if parts[-1].startswith("__") else parts[-1]
        tail = "" if last.endswith("_") else r"(?!\w)"
        pattern = rf"(?<![^\W_]){re.escape(last)}{tail}"
        found = re.search(pattern, sources, re.IGNORECASE) or last.lower() in squeezed
        if last and not found:
            out.append(word)
    return out


def units(text: str) -> list[str]:
    """The sentences of a cited span in display form (the span itself if it has none)."""
    got = [display(text[s.start : s.end]) for s in split(text) if s.kind != "code"]
    return [u for u in got if u] or ([display(text)] if text.strip() else [])

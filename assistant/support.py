"""How well one text supports another: shared terms and embedding similarity.

`terms()` is the assistant's bag of meaningful words: code identifiers kept whole (and split
at dots), numbers, English content words, jieba words for Chinese. It scores answer sentences
against a question (answer.py), finds a conversation's topic (conversation.py) and, together
with embeddings, checks that an LLM sentence is backed by the span it cites (llm.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from assistant.sentences import display, split
from ingest.language import HAN, HAN_RANGES

_TOKEN = re.compile(
    r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?:\(\))?"  # identifiers, a.b.c, f()
    r"|\d+(?:\.\d+)*%?"  # numbers and versions: 3.8, 80%
    rf"|[{HAN_RANGES}]+"  # runs of Chinese characters, cut by jieba
)


def wordset(words: str) -> frozenset[str]:
    """A frozenset from a white-space separated word list (easier to read than a literal)."""
    return frozenset(words.split())


EN_STOP = wordset(
    """a an the and or but if then else of to in on at by for with from as into about over
    is are was were be been being do does did done doing have has had having can could will
    would shall should may might must not no yes it its this that these those they them their
    there here he she we you your i me my our what which who whom whose when where why how
    than so such very just also only any all some each other more most much many few one
    use used using get make work works mean means way thing things python"""
)
ZH_STOP = wordset(
    """的 了 是 在 和 与 或 及 也 都 就 而 但 并 把 被 对 从 向 为 以 于 之 其 该 此 这 那 它 它们
    他 她 我 你 我们 你们 他们 这个 那个 这些 那些 什么 怎么 怎样 如何 哪些 哪个 哪 为什么 吗 呢
    吧 啊 呀 么 有 没有 可以 能 能够 会 要 需要 应该 一个 一种 一下 时候 时 中 里 上 下 后 前 用 使用
    如果 那么 还有 另外 区别 不同 有什么 是否 请问 怎么样 多少 几 个 做 进行"""
)


def _stem(word: str) -> str:
    """Crude English plural/suffix folding so "lists" meets "list"."""
    for suffix, keep in (("ies", "y"), ("sses", "ss"), ("es", "e"), ("s", "")):
        if word.endswith(suffix) and len(word) > len(suffix) + 2 and not word.endswith("ss"):
            return word[: -len(suffix)] + keep
    return word


@lru_cache(maxsize=1)
def _jieba():
    """A jieba tokenizer of our own that knows the glossary's terms (装饰器, 生成器 …).

    Its own instance, so that the words added here never change how the library's lexical
    index (which uses jieba's global tokenizer) cuts text.
    """
    import logging

    import jieba

    from assistant.glossary import default_glossary

    jieba.setLogLevel(logging.WARNING)
    tokenizer = jieba.Tokenizer()
    for word in default_glossary().zh_to_en:
        tokenizer.add_word(word)
    return tokenizer


def cut(text: str) -> list[str]:
    """jieba words of `text` (jieba loads on first use: it takes a second)."""
    return _jieba().lcut(text)


@lru_cache(maxsize=4096)
def terms(text: str) -> frozenset[str]:
    """Lower-cased content terms of `text` (cached: questions and sentences repeat)."""
    out: set[str] = set()
    for tok in _TOKEN.findall(text):
        if HAN.match(tok):
            for w in cut(tok):
                if len(w) >= 2 and w not in ZH_STOP:
                    out.add(w)
            continue
        low = tok.lower().removesuffix("()")
        if low[0].isdigit():
            out.add(low)
        elif "." in low or "_" in low or any(c.isupper() for c in tok[1:]):
            out.add(low)  # a code identifier: keep whole, and its parts
            out.update(p for p in re.split(r"[._]", low) if len(p) > 2 and p not in EN_STOP)
        elif low not in EN_STOP and len(low) > 1:
            out.add(_stem(low))
    return frozenset(out)


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
            lex = overlap(terms(claim), frozenset().union(*(terms(u) for u in group)))
            row = [float(cos[i, col[u]]) for u in group]
            best = max(range(len(group)), key=row.__getitem__)
            dense = row[best] if self.embedder is not None else 0.0
            ok = dense >= self.thresholds.dense or lex >= self.thresholds.lexical
            out.append(Support(ok, dense, lex, group[best]))
        return out


def units(text: str) -> list[str]:
    """The sentences of a cited span in display form (the span itself if it has none)."""
    got = [display(text[s.start : s.end]) for s in split(text) if s.kind != "code"]
    return [u for u in got if u] or ([display(text)] if text.strip() else [])

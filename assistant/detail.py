"""Whether a chosen answer holds the detail the question asks for (near misses).

The retriever declines a question about something the library never names. A near miss passes
that check: the library names the topic but not the asked detail ("which Python version added
asyncio.TaskGroup?" over a page that only says what TaskGroup does; "which port does
http.server listen on by default?" over a page with no port number). Read at the answer step:
the question's named terms (code names, products, numbers: `ingest.text.named_terms`) absent
from the chosen sentences or from every passage read, a number / version / default value asked
for and none given, how much of the question's terms the chosen sentences cover (as written, through
the glossary or the word-translation table), and how sure the ranker was. A small logistic regression over these (weights in ranker.json, section "detail",
fitted and cross-validated by bench/train_ranker.py) flags the answer; a flagged answer says
what the library does say and that it does not give the detail (never declined: a wrongly flagged
answer keeps its sentences).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from assistant.crossing import crossing
from assistant.ranker import DIGIT
from ingest.text import STOPWORDS_EN, named_terms, terms, text_lang

FEATURES = (
    "absent_passages",  # share of the question's names in none of the passages read
    "absent_answer",  # share of them in none of the chosen sentences (or what precedes them)
    "value_missing",  # a number / version / default value is asked and the sentences give none
    "coverage",  # share of the question's terms (either language) the chosen sentences hold
    "read_coverage",  # ... that the passages read hold
    "confidence",  # the ranker's share of the best candidate
)
# Wider than the ranker's number cue (defaults, ports, limits): the near-miss weights were
# fitted with this one.
_VALUE_Q = re.compile(
    r"多少|几[个种次位岁倍层级项行字]|多[大长久高深]|百分之|上限|版本|哪一版|默认|端口"
    r"|\bhow (?:many|much|long|large|big|often|wide)\b|\bwhat (?:percentage|size|limit)"
    r"|\bversions?\b|\bsince when\b|\bdefault\b|\bport\b|\bmaximum\b|\bminimum\b",
    re.IGNORECASE,
)
NOTICE = {  # the library lacks: a name of the question / what it asks about a name / a value
    "en": (
        "The library does not mention {names}. The closest it says:",
        "The library does not say what the question asks about {names}. What it does say:",
        "The library does not give the value asked for. What it does say:",
    ),
    "zh": (
        "文档库没有提到 {names}。最接近的内容：",
        "文档库没有说明所问的 {names} 的细节。它提到的是：",
        "文档库没有给出所问的具体数值。它提到的是：",
    ),
}


@dataclass(frozen=True)
class Check:
    """One answer read for its asked detail."""

    features: np.ndarray
    absent: tuple[str, ...]  # names of the question missing from the chosen sentences
    unseen: tuple[str, ...]  # names missing from every passage read

    def notice(self, question: str) -> str:
        lang = text_lang(question)
        sep = "、" if lang == "zh" else ", "
        if self.unseen:
            return NOTICE[lang][0].format(names=sep.join(self.unseen))
        if self.absent:
            return NOTICE[lang][1].format(names=sep.join(self.absent))
        return NOTICE[lang][2]


_RELEASE = re.compile(r"(?<![\w.])[23]\.\d{1,2}(?![\w.]|\.\d)")  # "3.12": a version asked about


def _names(question: str) -> list[str]:
    """Named terms that can be looked for: a dotted name by its last part (`ipaddress.ip_network`
    is found as ip_network), words capitalised only for the sentence start left out, and the
    Python releases the question names."""
    out = _RELEASE.findall(question)
    for name in named_terms(question, text_lang(question)):
        key = name.rstrip(".").rsplit(".", 1)[-1] or name
        if key not in STOPWORDS_EN and len(key) >= 2:
            out.append(key)
    return list(dict.fromkeys(out))


def passages(cands: Sequence) -> list[str]:
    """The texts (with headings) of the passages the candidates come from."""
    chunks = {id(c.hit): c.hit.chunk for c in cands}
    return [f"{ch.heading} {ch.text}" for ch in chunks.values()]


def check(
    question: str, query: str, chosen: Sequence, passages: Sequence[str], best: float
) -> Check:
    """Read the `chosen` candidates (answer.Candidate) against the question; `passages` are the
    texts read (with headings), `best` the ranker's share of the best candidate."""
    said = " ".join(f"{c.context} {c.raw}" for c in chosen).lower()
    read = " ".join(passages).lower()
    names = _names(query or question)
    absent = tuple(n for n in names if n not in said)
    unseen = tuple(n for n in names if n not in read)
    lang = text_lang(query or question)
    wanted = set(terms(query or question)) | set(terms(crossing().expand(query, lang, mined=False)))
    held = frozenset().union(*(terms(c.shown) | terms(c.context) for c in chosen))
    seen = frozenset().union(*(terms(p) for p in passages))
    # A question word the sentences hold in the other language counts as held: without this, a
    # cross-language answer looked as uncovered as a near miss (dev2 answerable flagged, CV:
    # 8.3% → 5.6%).
    table = crossing()
    held |= {w for t in held for w in table.translations(t)}
    seen |= {w for t in seen for w in table.translations(t)}
    values = bool(_VALUE_Q.search(question)) and not any(DIGIT.search(c.shown) for c in chosen)
    x = np.array(
        [
            len(unseen) / len(names) if names else 0.0,
            len(absent) / len(names) if names else 0.0,
            float(values),
            len(wanted & held) / len(wanted) if wanted else 1.0,
            len(wanted & seen) / len(wanted) if wanted else 1.0,
            best,
        ],
        dtype=np.float32,
    )
    return Check(x, absent, unseen)


def fit(x: np.ndarray, y: np.ndarray, l2: float = 1.0):
    """Logistic regression (Newton's method) on standardised features -> ranker.Model."""
    from assistant.ranker import Model

    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 1e-6, scale, 1.0)
    z = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])
    w = np.zeros(z.shape[1])
    reg = l2 * np.eye(len(w))
    reg[-1, -1] = 0.0  # the intercept is not shrunk
    for _ in range(50):
        p = 1 / (1 + np.exp(-(z @ w)))
        step = np.linalg.solve(z.T @ (z * (p * (1 - p))[:, None]) + reg, z.T @ (p - y) + reg @ w)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return Model(FEATURES, mean.astype(np.float32), scale.astype(np.float32),
                 w[:-1].astype(np.float32), float(w[-1]))  # fmt: skip

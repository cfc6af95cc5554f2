"""Which candidate sentence answers the question: a small logistic regression over features.

Word overlap alone picks sentences that restate the topic; dense similarity alone picks them
even more. The ranker weighs both (overlap also through a learned word-translation table, so a
Chinese question meets an English sentence through ordinary words: 默认 → default) with what
tells an answer apart: whether the sentence holds what the question asks for (a number, a
version, a name, code, a yes or no), where it sits in its passage and how far the retriever
trusted that passage. Two stages keep `ask` fast: the cheap features rank every candidate, and
only the best `EMBEDDED` of those (and the best in the question's language, so that the answer
can start in it) are embedded (question as query, sentence as passage, the retriever's language
directions projected out, so a Chinese sentence and an English question compare fairly) and
ranked again with all features.
Both stages are conditional logistic regressions: a softmax over one question's candidates.

The weights (`ranker.json`, a few hundred bytes) are learned from the gold quotes of the dev
sets by `python bench/train_ranker.py`, which also reports cross-validated figures.

Why one module of ~330 lines: the features, the fit (used by bench/train_ranker.py) and the
scoring must compute features the same way, so they live together.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from assistant.crossing import crossing
from assistant.support import weight
from ingest.text import identifiers, is_code_name, terms, text_lang

WEIGHTS_FILE = Path(__file__).with_name("ranker.json")
# Candidates embedded per question. Two cores embed a short sentence in ~10 ms of CPU; the
# dense features add ~0.03 to the top-1 share at 4 (cross-validated), little more at 8 or 12.
EMBEDDED = 4
# Embed only when the cheap stage is unsure (its best candidate's share below SURE): about half
# the dev questions, at 0.472 against 0.476 top-1 when every question is embedded (CV).
SURE = 0.4
EMBED_CHARS = 160  # a long sentence is embedded by its start; a batch pads to its longest

CHEAP = (
    "lexical",  # IDF-weighted share of the question's terms (own language) in the sentence
    "glossary",  # the same for the question's terms in the other language (glossary)
    "context",  # the question's terms in the heading / sentence before it (who "it" is)
    "lexical_best",  # lexical score relative to the best candidate's (1 = the best)
    "passage_rank",  # 1 / rank of the passage the sentence comes from
    "passage_score",  # its retrieval score minus the best passage's
    "position",  # 1 / (1 + index of the sentence in its passage)
    "length",  # log of the sentence's length in characters
    "code",  # the candidate is a code line or block
    "code_wanted",  # ... and the question asks how to write / call / what prints
    "number_wanted",  # the question asks how many / much / long and the sentence has a number
    "version_wanted",  # the question asks which version / since when and the sentence names one
    "name_wanted",  # the question asks which function / module and the sentence names code
    "reason_wanted",  # the question asks why and the sentence gives a reason
    "same_lang",  # the sentence is in the question's language
    "coverage",  # unweighted share of the question's terms (either language) in the sentence
    "names",  # share of the question's code names (identifiers, options) found in it as written
    "neighbours",  # the best lexical score of the sentences just before and after it
    "translated",  # IDF-weighted share of the question's terms in it, as is or translated
    "translated_best",  # that share relative to the best candidate's (1 = the best)
)
DENSE = ("cosine", "cosine_best")  # calibrated cosine, and relative to the best embedded one
FEATURES = CHEAP + DENSE

_CODE_Q = re.compile(
    r"\bhow (?:do|can|should|would) (?:i|you|we) (?:write|call|use|code|create|make|define|pass|"
    r"format|read|open|add|print|get|check|turn|convert|loop|iterate|import)|\bexample\b|\bsyntax\b"
    r"|\bwhat (?:does|will|would) .{0,60}(?:print|output|return|give|show)|\bshow (?:me )?the code"
    r"|代码|怎么写|如何写|写法|示例|例子|怎么调用|如何调用|打印|输出什么|返回什么|怎么用|用法",
    re.IGNORECASE,
)
_NUMBER_Q = re.compile(
    r"多少|几[个种次位岁倍层级项行字]|多[大长久高深]|百分之|上限|\bhow (?:many|much|long|large|"
    r"big|deep|often|wide)\b|\bwhat (?:percentage|size|limit)|\blimits?\b|\bmaximum\b|\bminimum\b",
    re.IGNORECASE,
)
_VERSION_Q = re.compile(
    r"版本|哪一版|从.{0,6}开始|什么时候|\bversions?\b|\bsince when\b|\bwhen (?:was|were|did)\b"
    r"|\bintroduced\b|\badded in\b",
    re.IGNORECASE,
)
_NAME_Q = re.compile(
    r"哪个|哪些|哪一个|什么函数|什么方法|什么模块|用什么|\bwhich\b|\bwhat (?:function|method|"
    r"module|class|command|option|tool|library|package|exception|error|type)",
    re.IGNORECASE,
)
_REASON_Q = re.compile(r"为什么|为何|原因|\bwhy\b|\breason\b", re.IGNORECASE)
_REASON = re.compile(r"因为|由于|所以|为了|\bbecause\b|\bsince\b|\bso that\b|\bdue to\b|\bto avoid\b",
                     re.IGNORECASE)  # fmt: skip
_MANY_Q = re.compile(
    r"有哪些|哪几[个种样项]|列出|分别|\bwhat are (?:the|all)\b|\bwhich (?:ones|are)\b|\blist\b"
    r"|\bname (?:the|all)\b|\bsteps\b",
    re.IGNORECASE,
)
DIGIT = re.compile(r"\d")  # a number in a sentence (ranker, legacy scorer, detail)
_VERSION = re.compile(r"\b(?:[23]\.\d{1,2}|Python [23])\b|版本")


@dataclass(frozen=True)
class Cues:
    """What kind of answer a question asks for."""

    code: bool
    number: bool
    version: bool
    name: bool
    reason: bool
    many: bool  # a list is asked for: the answer may hold more sentences


def cues(question: str) -> Cues:
    return Cues(
        bool(_CODE_Q.search(question)),
        bool(_NUMBER_Q.search(question)),
        bool(_VERSION_Q.search(question)),
        bool(_NAME_Q.search(question)),
        bool(_REASON_Q.search(question)),
        bool(_MANY_Q.search(question)),
    )


def idf_overlap(wanted: AbstractSet[str], found: list[frozenset[str]], own: list[frozenset[str]]):
    """Shared terms weighted by rarity among the candidates: every candidate names the topic;
    the terms that tell the answer apart are the rare ones. Context-only matches count half."""
    q = [t for t in wanted if any(t in f for f in found)]
    if not q:
        return np.zeros(len(found), dtype=np.float32)
    idf = {t: weight(t) * math.log(1 + len(found) / sum(t in f for f in found)) for t in q}
    total = sum(idf.values())
    return np.array(
        [
            sum(idf[t] * (1.0 if t in o else 0.5) for t in q if t in f) / total
            for f, o in zip(found, own, strict=True)
        ],
        dtype=np.float32,
    )


def cheap_features(question: str, query: str, cands: Sequence) -> np.ndarray:
    """(n, len(CHEAP)) features of candidates (answer.Candidate) for the resolved `query`."""
    n = len(cands)
    if not n:
        return np.zeros((0, len(CHEAP)), dtype=np.float32)
    lang = text_lang(question)
    own_terms = [terms(c.shown) for c in cands]
    ctx_terms = [terms(c.context) if c.context else frozenset() for c in cands]
    found = [o | c for o, c in zip(own_terms, ctx_terms, strict=True)]
    mine = set(terms(query))
    other = set(terms(crossing().expand(query))) - mine
    lexical = idf_overlap(mine, found, own_terms)
    gloss = idf_overlap(other, found, own_terms)
    context = idf_overlap(mine | other, ctx_terms, ctx_terms)
    both = lexical + gloss
    translated = idf_overlap(*_translated(mine, found, own_terms))
    best_score = max(c.hit.score for c in cands)
    cue = cues(question)
    wanted = mine | other
    q_names = {w.lower() for w in identifiers(query) if is_code_name(w)}
    # Neighbours: candidates of one passage are in reading order.
    near = np.zeros(n, dtype=np.float32)
    for i in range(n):
        for j in (i - 1, i + 1):
            if 0 <= j < n and cands[j].hit is cands[i].hit:
                near[i] = max(near[i], both[j])
    rows = []
    for i, c in enumerate(cands):
        text = c.shown
        code = bool(getattr(c, "code", False))
        names = code or "`" in c.raw or any(is_code_name(w) for w in identifiers(c.raw))
        rows.append(
            (
                lexical[i],
                gloss[i],
                context[i],
                both[i] / both.max() if both.max() > 0 else 0.0,
                1.0 / c.hit.rank,
                c.hit.score - best_score,
                1.0 / (1 + getattr(c, "index", 0)),
                math.log(1 + len(text)) / 6.0,
                float(code),
                float(code and cue.code),
                float(cue.number and bool(DIGIT.search(text))),
                float(cue.version and bool(_VERSION.search(text))),
                float(cue.name and names),
                float(cue.reason and bool(_REASON.search(text))),
                float(c.lang == lang or code),
                len(wanted & own_terms[i]) / len(wanted) if wanted else 0.0,
                sum(nm in c.raw.lower() for nm in q_names) / len(q_names) if q_names else 0.0,
                near[i],
                translated[i],
                translated[i] / translated.max() if translated.max() > 0 else 0.0,
            )
        )
    return np.asarray(rows, dtype=np.float32)


def _translated(words: set[str], found: list[frozenset[str]], own: list[frozenset[str]]):
    """`idf_overlap`'s arguments with each candidate's terms mapped to the question's `words`
    they hold as they are or through a word translation (assistant/translations.tsv)."""
    table = crossing()
    forms = {w: frozenset((w, *table.translations(w))) for w in words}

    def held(bag: frozenset[str]) -> frozenset[str]:
        return frozenset(w for w, f in forms.items() if not f.isdisjoint(bag))

    return set(words), [held(f) for f in found], [held(o) for o in own]


@dataclass(frozen=True)
class Model:
    """Standardisation and logistic-regression weights of one stage."""

    names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def logits(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.scale) @ self.coef + self.intercept

    def to_json(self) -> dict:
        return {
            "features": list(self.names),
            "mean": [round(float(v), 6) for v in self.mean],
            "scale": [round(float(v), 6) for v in self.scale],
            "coef": [round(float(v), 6) for v in self.coef],
            "intercept": round(float(self.intercept), 6),
        }

    @classmethod
    def from_json(cls, d: dict) -> Model:
        mean, scale, coef = (np.asarray(d[k], dtype=np.float32) for k in ("mean", "scale", "coef"))
        return cls(tuple(d["features"]), mean, scale, coef, float(d["intercept"]))


def fit(
    groups: Sequence[tuple[np.ndarray, np.ndarray]], names: Sequence[str], l2: float = 1.0
) -> Model:
    """Conditional (softmax-per-question) logistic regression by Newton's method.

    `groups` holds one (features, labels) pair per question; the model learns which candidate
    of a question answers it, not whether a sentence is "good" in general (a pointwise fit gave
    the same top-1 but no comparable scores across questions of different sizes).
    """
    x_all = np.vstack([x for x, _ in groups])
    mean = x_all.mean(axis=0)
    scale = x_all.std(axis=0)
    scale = np.where(scale > 1e-6, scale, 1.0)
    data = [((x - mean) / scale, y / y.sum()) for x, y in groups if y.sum() > 0]
    w = np.zeros(x_all.shape[1])
    for _ in range(50):
        grad = l2 * w
        hess = l2 * np.eye(len(w))
        for z, target in data:
            s = z @ w
            p = np.exp(s - s.max())
            p /= p.sum()
            grad += z.T @ (p - target)
            hess += z.T @ (np.diag(p) - np.outer(p, p)) @ z
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-6:
            break
    return Model(tuple(names), mean.astype(np.float32), scale.astype(np.float32),
                 w.astype(np.float32), 0.0)  # fmt: skip


@dataclass(frozen=True)
class Ranker:
    cheap: Model
    full: Model
    embedded: int = EMBEDDED
    # The near-miss check of the chosen answer (assistant.detail): a logistic regression and the
    # probability above which the answer is flagged; None: never flagged.
    detail: Model | None = None
    flag_above: float = 1.0

    def to_json(self) -> dict:
        out = {
            "embedded": self.embedded,
            "cheap": self.cheap.to_json(),
            "full": self.full.to_json(),
        }
        if self.detail is not None:
            out["detail"] = {**self.detail.to_json(), "flag_above": round(self.flag_above, 6)}
        return out

    @classmethod
    def from_json(cls, d: dict) -> Ranker:
        detail = Model.from_json(d["detail"]) if "detail" in d else None
        flag = float(d["detail"]["flag_above"]) if "detail" in d else 1.0
        cheap, full = Model.from_json(d["cheap"]), Model.from_json(d["full"])
        return cls(cheap, full, int(d["embedded"]), detail, flag)

    def flags(self, x: np.ndarray) -> bool:
        """Whether the near-miss features `x` (assistant.detail) flag the answer."""
        if self.detail is None:
            return False
        return float(1 / (1 + np.exp(-self.detail.logits(x)))) >= self.flag_above

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")


@cache
def default_ranker() -> Ranker:
    return Ranker.from_json(json.loads(WEIGHTS_FILE.read_text(encoding="utf-8")))


def load_folds(path: str | Path) -> dict[str, Ranker]:
    """Question id -> the ranker fitted without it (bench/train_ranker.py --folds-out)."""
    from ingest.errors import InputError

    hint = "write one with `python bench/train_ranker.py --folds-out FILE`"
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        folds = {
            qid: Ranker.from_json(fold["ranker"]) for fold in data["folds"] for qid in fold["ids"]
        }
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path} is not a ranker folds file ({exc}).", hint=hint) from exc
    if any(r.cheap.names != CHEAP for r in folds.values()):
        raise InputError(f"{path} was written for other ranker features than these.", hint=hint)
    return folds


def embedded(logits: np.ndarray, cands: Sequence, lang: str | None, k: int) -> np.ndarray:
    """The candidates the full stage reads: the `k` best of the cheap stage, and the best one in
    the question's language `lang` when none of those is (so that an answer can start in it)."""
    order = np.argsort(-logits, kind="stable")
    top = order[:k]
    if k > 0 and lang is not None and all(cands[i].lang != lang for i in top):
        own = next((i for i in order[k:] if cands[i].lang == lang), None)
        if own is not None:
            top = np.append(top, own)
    return top


def dense_features(cosines: np.ndarray) -> np.ndarray:
    best = float(cosines.max()) if len(cosines) else 0.0
    return np.stack([cosines, cosines - best], axis=1).astype(np.float32)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def score(
    ranker: Ranker,
    question: str,
    query: str,
    cands: Sequence,
    similarity=None,
    cheap: np.ndarray | None = None,
    own: bool = True,
) -> np.ndarray:
    """Probability that each candidate is the one that answers (softmax over the question's
    candidates); 0 for those the cheap stage left out of the embedded few.

    `similarity(texts) -> cosines` with the question (None: the cheap stage decides alone);
    `cheap`: the candidates' cheap features if already computed (bench/reader.py's cache);
    `own=False` leaves out the own-language candidate `embedded` adds (the rule before, which
    bench/reader.py still compares).
    """
    cheap = cheap_features(question, query, cands) if cheap is None else cheap
    if not len(cands):
        return np.zeros(0, dtype=np.float32)
    logits = ranker.cheap.logits(cheap)
    sure = _softmax(logits)
    if similarity is None or ranker.embedded <= 0 or float(sure.max()) >= SURE:
        return sure.astype(np.float32)
    top = embedded(logits, cands, text_lang(question) if own else None, ranker.embedded)
    cos = similarity([cands[i].shown[:EMBED_CHARS] for i in top])
    full = np.hstack([cheap[top], dense_features(np.asarray(cos, dtype=np.float32))])
    out = np.zeros(len(cands), dtype=np.float32)
    out[top] = _softmax(ranker.full.logits(full))
    return out

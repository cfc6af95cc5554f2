"""Follow-up questions rewritten by resolving what they point to, not by gluing questions.

A follow-up ("and how do I limit its size?", "怎么清空它？", "那 Unicode 呢？", "And str.join?")
names its topic by a pronoun, an ellipsis or not at all. Rules, not a model, spot it
(`is_follow_up`): pronouns and follow-up openers in Chinese or English, or a very short
question. The query searched is then the follow-up itself, rewritten (`rewrite`):

- a pronoun ("it", "its", "它", "这个") is replaced by the previous turn's *subject*
  (`subject`): the code name its question named (`heapq`, `str.split`), else the one its answer
  led with, else the module its answer names, else the words its question was about; a plain
  word is made the API name the answer gave for it (`specific`: "cache" → `lru_cache`);
- an ellipsis that brings its own term ("And str.join?", "那 Unicode 呢？") takes the previous
  question and puts that term in place of the previous subject ("What does str.join return?");
- a follow-up without either is prefixed by the subject ("heapq: how do I find …").

So the query shown stays one readable question, and the follow-up's own words lead. An
answer that holds none of what the follow-up asks of its subject says so (`on_subject`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol

from assistant.records import Citation
from assistant.sentences import display
from ingest.text import (
    HAN,
    IDENT,
    STOPWORDS_EN,
    content_words,
    cut,
    identifiers,
    is_code_name,
    text_lang,
    zipf,
)


class Said(Protocol):
    """The previous turn as a follow-up reads it (`assistant.conversation.Turn` is one)."""

    @property
    def question(self) -> str: ...

    @property
    def query(self) -> str: ...

    @property
    def topic(self) -> str: ...

    @property
    def citations(self) -> Sequence[Citation]: ...


ZH_PRONOUNS = frozenset(
    "它 它们 它的 这 那 这个 那个 这些 那些 此 该 其 上述 上面 前面 刚才 这种 那种 这样 那样 后者 前者".split()  # noqa: SIM905
)
# Pronouns that stand for the previous subject and can be replaced by it, as written.
ZH_REPLACE = ("它们的", "它的", "它们", "这个", "那个", "该", "它", "其")
ZH_OPENERS = ("那么", "那如果", "那", "还有", "另外", "如果是", "而")
EN_PRONOUNS = frozenset(
    "it its it's they them their this that these those former latter one ones same".split()  # noqa: SIM905
)
EN_REPLACE = {"it": "{s}", "its": "{s}'s", "it's": "{s} is", "they": "{s}", "them": "{s}",
              "their": "{s}'s", "this": "{s}", "that": "{s}"}  # fmt: skip
EN_OPENERS = ("what about", "how about", "and", "also", "what if", "but", "or", "then", "so")
EN_CLOSERS = ("then", "too", "instead", "as well")  # "How do I delete a whole tree then?"
MAX_TOPIC_TERMS = 6
GENERIC = frozenset("python module modules 模块 除了 哪些 什么 怎么".split())  # noqa: SIM905 - never a subject
IDENT_PATTERN = f"(?:{IDENT.pattern})"
MODULE = re.compile(r"(?<![.\w])([a-z_][a-z0-9_.]*)\s?(?:module|模块)\b")  # "the pickle module"
RARE = 2.3  # an English word rarer than this (zipf) is a name: heapq, bisect, tempfile


def is_follow_up(question: str) -> bool:
    """Whether `question` leans on an earlier turn for its topic."""
    q = question.strip()
    if text_lang(q) == "zh":
        han = [w for w in cut(q) if HAN.match(w)]
        # jieba glues pronouns to what follows ("它会", "这么"), so look at word starts too.
        if q.startswith(ZH_OPENERS) or any(w in ZH_PRONOUNS or w[0] in "它这那" for w in han):
            return True
        short = sum(len(w) for w in han) <= 4 and not any(map(is_code_name, identifiers(q)))
        return short or (q.rstrip("？?。 ").endswith("呢") and sum(len(w) for w in han) <= 10)
    low = q.lower()
    words = re.findall(r"[a-z0-9_.']+", low)
    if (
        _opener(low)
        or any(w in EN_PRONOUNS for w in words)
        or low.rstrip("?!. ").endswith(EN_CLOSERS)
    ):
        return True
    return len(words) <= 3


def _opener(low: str) -> str:
    return next((o for o in EN_OPENERS if low == o or low.startswith(o + " ")), "")


def key_terms(text: str, limit: int = MAX_TOPIC_TERMS) -> list[str]:
    """The topic of a query in reading order: identifiers, content words, jieba words."""
    out: list[str] = []
    for w in content_words(text):
        if w in ZH_PRONOUNS or w.lower() in EN_PRONOUNS:
            continue
        if w.lower() not in (o.lower() for o in out):
            out.append(w)
    return out[:limit]


def names(text: str, zh: bool | None = None) -> list[str]:
    """The words of `text` that name a thing, in order: code names (`str.split`, `lru_cache`),
    a word before "module" / "模块", rare English words (`heapq`), Latin words in Chinese
    (`zh`: whether the text is Chinese, by default its own language)."""
    zh = text_lang(text) == "zh" if zh is None else zh
    out = []
    for m in re.finditer(r"(?<![.\w])" + IDENT_PATTERN, text):
        word = m.group()
        bare = word.removesuffix("()")
        after = text[m.end() :].lstrip().lower()
        # "if" is a stop word of English prose but the name of a statement in "if 语句".
        if (bare.lower() in STOPWORDS_EN and not zh) or bare.lower() in GENERIC:
            continue
        named = (
            (is_code_name(word) and not bare.isupper())
            or after.startswith(("module", "模块", "库"))
            or (bare.isascii() and bare.isalpha() and len(bare) > 2 and zipf(bare.lower()) < RARE)
            or (zh and len(bare) > 1)
        )
        if named and word not in out:
            out.append(word)
    return out


def subject(turn: Said) -> str:
    """What a turn was about, as few words as name it (see the module docstring); a resolved
    follow-up passes on the subject it was resolved to."""
    if turn.topic:
        return specific(turn.topic, turn)
    own = names(turn.query)
    if own:
        return specific(own[0], turn)
    # The name the answer's first cited sentence leads with ("lru_cache memoizes a function")
    # is what a vague question was about, or else the first code name in that sentence
    # ("偏函数 >functools.partial 帮助我们…"); names further down the answer are only mentioned.
    first = display(turn.citations[0].text) if turn.citations else ""
    lead = re.match(r"\W*([A-Za-z_][\w.]*(?:\(\))?)", first)
    word = lead.group(1) if lead else ""
    if (
        word
        and word.lower() not in STOPWORDS_EN | GENERIC
        and (is_code_name(word) or re.search(rf"\b{re.escape(word)}\b", turn.query, re.IGNORECASE))
    ):
        return specific(word, turn)  # a name, or the question's own word in subject place
    code = [n for n in names(first) if is_code_name(n)]
    if code:
        return code[0]
    # Else the module the answer goes on to name ("The pickle module allows …"): what a
    # question put in plain words ("序列化成字节流") is done with.
    modules = [m.group(1) for c in turn.citations for m in MODULE.finditer(display(c.text))]
    if modules:
        return modules[0]
    return _question_topic(turn)


def _question_topic(turn: Said) -> str:
    """The words a question was about, when it names nothing: an English question ends with
    its object ("FIFO queues"), a Chinese one leads with its topic."""
    terms = [
        t
        for t in key_terms(turn.query)
        if len(t) > (2 if t.isascii() else 1) and t.lower() not in GENERIC
    ]
    if text_lang(turn.query) != "zh":
        return " ".join(terms[-2:])
    terms = terms[:1]
    return "".join(f" {t} " if t.isascii() else t for t in terms).strip().replace("  ", " ")


def specific(word: str, turn: Said) -> str:
    """The API name the turn's answer gave for a plain `word`: the first code name cited that
    has it as one of its parts ("cache" → `lru_cache`, "LIFO" → `LifoQueue`), else `word`.
    A follow-up asks more about what the answer named ("how do I limit its size?"), and the
    plain word alone finds whatever else shares it (`linecache`, a `Repr` size limit)."""
    if not re.fullmatch(r"[A-Za-z]+", word):
        return word
    for c in turn.citations:
        for name in names(display(c.text), zh=False):
            if is_code_name(name) and name != word and word.lower() in _parts(name):
                return name.removesuffix("()")
    return word


def _parts(name: str) -> list[str]:
    """The lower-cased parts of a code name: `lru_cache` → lru, cache; `LifoQueue` → lifo, queue."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name.removesuffix("()"))
    return [p.lower() for p in re.split(r"[\s_.]+", spaced) if p]


def rewrite(question: str, previous: Said | None) -> str:
    """The query to search for `question`, a follow-up of `previous` resolved (or as asked)."""
    return resolved(question, previous)[0]


def resolved(question: str, previous: Said | None) -> tuple[str, str]:
    """(query, topic): the query to search, and the subject it resolved to ("" when the
    question was searched as asked), which the next follow-up inherits."""
    question = question.strip()
    if previous is None or not is_follow_up(question):
        return question, ""
    topic = subject(previous)
    if not topic:
        return question, ""
    if topic.lower() in question.lower():
        return question, topic
    zh = text_lang(question) == "zh"
    core = _strip_opener(question, zh)
    replaced = _replace_pronoun(core, topic, zh)
    if replaced != core:
        return replaced, topic
    own = [n for n in names(core, zh) if n.lower() not in topic.lower()]
    if own and len(core) > len(own[0]) + 12:
        return question, ""  # it names its own subject: nothing to resolve
    body = re.sub(r"[\s?？。!！]+$", "", core)
    body = re.sub(r"呢$", "", body).strip()
    rest = body.replace(own[0], "") if own else body
    bare = len(re.sub(r"\s", "", rest)) <= 2 if zh else len(rest.split()) <= 2
    # "And str.join?" after "What does str.split return?": the same question, new term, put
    # in place of the words the question had (a subject from its answer may not be there).
    said = [t for t in (topic, _question_topic(previous)) if t and _whole(t, previous.question)]
    if own and bare and said:
        return previous.question.replace(said[0], own[0], 1), own[0]
    sep = "：" if zh else ": "
    return f"{topic}{sep}{question}", topic


def _whole(term: str, text: str) -> bool:
    """Whether `term` is in `text` as whole words ("queue" is not in "queues")."""
    return re.search(rf"(?<![\w.]){re.escape(term)}(?![\w])", text) is not None


def _strip_opener(question: str, zh: bool) -> str:
    if zh:
        for o in ZH_OPENERS:
            if question.startswith(o) and len(question) > len(o) + 1:
                return question[len(o) :].lstrip(" ，,")
        return question
    o = _opener(question.lower())
    if o and len(question) > len(o) + 1:
        rest = question[len(o) :].lstrip(" ,")
        plain = re.match(
            r"[a-z]+\b(?![._(])", rest
        )  # "how …" reads as a question; "str.join" stays
        return rest[:1].upper() + rest[1:] if plain else rest
    return question


def _replace_pronoun(text: str, topic: str, zh: bool) -> str:
    """`text` with its first pronoun replaced by `topic` (unchanged if it has none)."""
    if zh:
        for p in ZH_REPLACE:
            at = text.find(p)
            if at >= 0:
                word = (
                    topic + (" 的" if topic[-1:].isascii() else "的") if p.endswith("的") else topic
                )
                return _spaced(text, at, len(p), word)
        return text
    m = re.search(r"\b(" + "|".join(map(re.escape, EN_REPLACE)) + r")\b", text, re.IGNORECASE)
    if not m:
        return text
    return text[: m.start()] + EN_REPLACE[m.group(1).lower()].format(s=topic) + text[m.end() :]


def _spaced(text: str, at: int, length: int, word: str) -> str:
    """Put `word` in place of text[at:at+length], with a space on each side that touches a
    Han character only where a Latin word meets it ("清空 lru_cache", not "清空lru_cache")."""
    left, right = text[:at], text[at + length :]
    lead = " " if left and not left.endswith(" ") and word[:1].isascii() else ""
    tail = " " if right[:1].isalnum() and word[-1:].isascii() else ""
    return f"{left}{lead}{word}{tail}{right}"

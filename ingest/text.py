"""The one place that reads text: language, code fences, identifiers, tokens and terms.

Everything in askdocs that looks at words calls this module, so a passage and a question are
read the same way everywhere: chunk languages (ingest), BM25 tokens (index/embedded/lexical.py), the
retriever's named terms and abstention check, answer scoring, the LLM support check,
follow-up detection and glossary expansion (assistant/). One identifier pattern, one jieba
tokenizer, one Snowball stemmer (PyStemmer), one stop-word list per language, one fence rule.
`index.embedded.lexical.TOKENIZER_VERSION` covers `tokenize()`: bump it when tokens change.

It sits at the bottom of the house (ingest/) because ingest already needs the language of a
chunk and the fence rule, and every other package may import from ingest/. It is one module of
~300 lines on purpose: splitting it would again give the parts of askdocs different readings.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from functools import cache, lru_cache
from typing import Any

# Han characters: CJK unified ideographs (with extensions A and B+) and compatibility ones.
HAN_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff"
HAN = re.compile(f"[{HAN_RANGES}]")
LANGS = ("zh", "en", "other")  # chunk languages; each has its own vector and BM25 index


_SURROGATE = re.compile("[\ud800-\udfff]")


def printable(text: str) -> str:
    """`text` without lone surrogates (how Python carries bytes of file names and arguments
    that are not UTF-8, and what a JSON `\\ud800` decodes to): each becomes U+FFFD, so the
    text can be printed, stored in SQLite and given to a tokenizer."""
    return _SURROGATE.sub("\ufffd", text)


def index_lang(lang: str) -> str:
    """The one of LANGS that `lang` (a language code a user gave) is filed under."""
    return lang if lang in LANGS else "other"


# -- code fences ---------------------------------------------------------------------------

# A line of three or more backticks or tildes opens a fenced code block; a line of at least as
# many of the same character closes it (CommonMark's rule).
FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})")


class Fences:
    """Feed the lines of a text in order; `step(line)` tells where each one stands."""

    def __init__(self) -> None:
        self.open: str | None = None  # the opening fence while inside a code block

    def step(self, line: str) -> str:
        """ "open", "close", "code" (inside a block) or "" (prose)."""
        m = FENCE.match(line)
        if self.open:
            if m and m.group(1)[0] == self.open[0] and len(m.group(1)) >= len(self.open):
                self.open = None
                return "close"
            return "code"
        if m:
            self.open = m.group(1)
            return "open"
        return ""


_INLINE_CODE = re.compile(r"`[^`\n]+`")


def strip_code(text: str) -> str:
    """`text` without closed fenced blocks and inline code (a fence left open stays: a chunk
    cut inside a block is judged by what it holds)."""
    out: list[str] = []
    fences, block = Fences(), []
    for line in text.splitlines(keepends=True):
        role = fences.step(line)
        if role in ("open", "code"):
            block.append(line)
        elif role == "close":
            out.append(" ")
            block = []
        else:
            out.append(line)
    out += block
    return _INLINE_CODE.sub(" ", "".join(out))


# -- identifiers ---------------------------------------------------------------------------

# A letter or underscore, then letters, digits, underscores; never a Han character.
_NAME = rf"[^\W\d{HAN_RANGES}][^\W{HAN_RANGES}]*"
# The one identifier pattern: `os.path.join`, `__init__`, `PyObject_New`, `print()`, `café`.
IDENT = re.compile(rf"{_NAME}(?:\.{_NAME})*(?:\(\))?")


def is_code_name(word: str) -> bool:
    """Whether a word is written as code: dotted, underscored, a call, or capitals inside
    (`os.path`, `SEEK_END`, `len()`, `PyBool`, `GIL`), as opposed to a plain word."""
    return "." in word or "_" in word or word.endswith("()") or any(c.isupper() for c in word[1:])


def identifiers(text: str) -> list[str]:
    """The identifier-shaped words of `text` in order, as written (`len()` keeps its `()`);
    `is_code_name` tells code from plain words."""
    return IDENT.findall(text)


# -- language ------------------------------------------------------------------------------

_KANA_HANGUL = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uac00-\ud7af\u1100-\u11ff]")
_LATIN = re.compile(r"[A-Za-z\u00c0-\u024f]")
_LETTER = re.compile(r"[^\W\d_]")  # letters of any script: \w minus digits and underscore
_MIN_LETTERS = 3  # below this much evidence (a number, a lone word) the text says nothing
_SAMPLE = 100_000  # the tag of a whole document does not need every character


def detect_lang(text: str, default: str = "other") -> str:
    """ "zh", "en" or "other" from the scripts of the text's letters; `default` when too few.

    Code says nothing about the language of the prose around it, so fenced and inline code
    and code names (`sys.setrecursionlimit`, `PyBool_FromLong`) do not count: a chunk of only
    code takes `default` (its document's language), and "sys.setrecursionlimit 默认值" is
    Chinese. One Han character weighs six Latin letters (a Han character carries about a word,
    an English word takes about five letters), so a question with Chinese words in it is
    Chinese ("os.path.join 和 os.path.normpath 有何不同") and an English sentence quoting a
    Chinese term stays English ("The term 函数 means function").
    """
    if len(text) > _SAMPLE:
        half = _SAMPLE // 2
        text = text[:half] + text[len(text) // 2 : len(text) // 2 + half]
    text = IDENT.sub(lambda m: " " if is_code_name(m.group()) else m.group(), strip_code(text))
    han = len(HAN.findall(text))
    kana = len(_KANA_HANGUL.findall(text))
    latin = len(_LATIN.findall(text))
    letters = len(_LETTER.findall(text))
    if letters == 0 or (letters < _MIN_LETTERS and han + kana == 0):
        return default  # one Han character is a word; one or two Latin letters are not
    if kana > 0.1 * (han + kana):
        return "other"  # Japanese and Korean also use Han characters; kana and hangul tell
    if han + latin < 0.5 * letters:
        return "other"  # Cyrillic, Arabic, Greek, ...
    # Latin-script text counts as English: the library is Chinese and English by design.
    return "zh" if han * 6 >= latin else "en"


def text_lang(text: str) -> str:
    """ "zh" or "en": the language a question is answered in, or an answer sentence is read in.

    `detect_lang` with two outcomes: the product speaks Chinese and English, so anything
    that is not Chinese (English, a bare identifier, another script) is answered in English.
    """
    return "zh" if detect_lang(text, default="en") == "zh" else "en"


# -- words ---------------------------------------------------------------------------------

# Runs of text in reading order: Han characters (cut by jieba), identifiers, numbers, and any
# other letters.
_RUN = re.compile(
    rf"(?P<han>[{HAN_RANGES}]+)"
    rf"|(?P<ident>{IDENT.pattern})"
    r"|(?P<num>\d+(?:\.\d+)*)"
    rf"|(?P<word>[^\W_{HAN_RANGES}]+)"
)


def _words(text: str) -> str:
    return " ".join(text.split())


# Words that carry no topic. One list per language, for BM25 and for terms alike.
STOPWORDS_EN = frozenset(
    _words(
        """a an the and or but if then else of to in on at by for with from as into about over
        is are was were be been being do does did done doing have has had having can could will
        would shall should may might must not no yes it its this that these those they them
        their there here he she we you your i me my our what which who whom whose when where
        why how than so such very just also only any all some each other more most much many
        few one use used using get make work works mean means way thing things while"""
    ).split()
)
STOPWORDS_ZH = frozenset(
    _words(
        """的 了 是 在 和 与 或 及 也 都 就 而 但 并 把 被 对 从 向 为 以 于 之 其 该 此 这 那 它
        它们 他 她 我 你 我们 你们 他们 这个 那个 这些 那些 什么 怎么 怎样 如何 哪些 哪个 哪 为什么
        吗 呢 吧 啊 呀 么 着 个 有 没有 可以 能 能够 会 要 需要 应该 一个 一种 一下 时候 时 中 里
        上 下 后 前 用 使用 如果 那么 还有 另外 区别 不同 有什么 是否 请问 怎么样 多少 几 做 进行"""
    ).split()
)


@cache
def _jieba() -> Any:
    """The one jieba tokenizer with its whole dictionary (loaded on first use: ~0.7 s)."""
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)  # it announces its dictionary load on stderr otherwise
    return jieba.Tokenizer()


# Han characters cut through the on-disk dictionary before the whole one is loaded: a one-shot
# command's question (~400 characters of questions, expansions and answer sentences) stays
# light; a long-lived process (app, serve, chat, eval) or an ingest of Chinese text is faster
# with the dictionary in memory (a cut through the table costs ~0.1-2 ms more).
_LAZY_CHARS = 2_000
_lazy_chars = 0


@cache
def _jieba_lexicon() -> Any:
    """jieba's dictionary (its prefix dict: word → count, 0 for a prefix) as a `Lexicon`,
    kept beside jieba's own cache (it derives from the installed package alone); or None."""
    import tempfile
    from pathlib import Path

    import jieba

    from ingest.lexicon import file_stamp, open_lexicon

    tk = _jieba()
    source = Path(jieba.__file__).with_name(jieba.DEFAULT_DICT_NAME)
    path = Path(tempfile.gettempdir()) / "askdocs-jieba.sqlite"

    def rows() -> Any:
        tk.check_initialized()
        return tk.FREQ.items()

    def meta() -> dict:
        return {"total": tk.total, "longest": max(map(len, tk.FREQ))}

    return open_lexicon(path, file_stamp(source, jieba.__version__), rows, meta)


def _jieba_for(text: str) -> Any:
    """A jieba tokenizer that cuts `text` exactly as the one with the whole dictionary does:
    that one once it is in memory (or after many characters), else `_jieba_of(text)`."""
    global _lazy_chars
    full = _jieba()
    if full.initialized or _lazy_chars > _LAZY_CHARS:
        return full
    _lazy_chars += len(text)
    lazy = _jieba_of(text)
    return full if lazy is None or full.initialized else lazy  # building the table loads it


def _jieba_of(text: str) -> Any:
    """A jieba tokenizer whose dictionary holds only the entries that are substrings of
    `text`, read from the on-disk table; None without one.

    jieba only ever looks up substrings of the text it cuts (its DAG, route, HMM buffers and
    search-mode grams), so it cuts `text` into the same words as with the whole dictionary
    (tests/test_text.py on a sample; `python bench/coldstart.py --check-tokens` on every
    question and corpus chunk)."""
    lexicon = _jieba_lexicon()
    if lexicon is None:
        return None
    import jieba

    from ingest.lexicon import substrings

    rows = lexicon.get_many(substrings(text, int(lexicon.meta["longest"])))
    tk = jieba.Tokenizer()
    tk.FREQ = {word: value[0] for word, value in rows.items()}
    tk.total = int(lexicon.meta["total"])
    tk.initialized = True
    return tk


def cut(text: str) -> list[str]:
    """jieba's words of `text` (precise mode)."""
    return _jieba_for(text).lcut(text)


def cut_for_search(text: str) -> list[str]:
    """jieba's search-mode words of `text` (precise mode, plus the dictionary words of two
    and three characters inside longer words)."""
    return _jieba_for(text).lcut_for_search(text)


@cache
def _zipf_lexicon() -> Any:
    """wordfreq's Zipf frequencies of the English words of letters a-z, as a `Lexicon`
    beside jieba's (built once, ~3 s; `import wordfreq` and its list cost ~0.3 s a question)."""
    import importlib.util
    import tempfile
    from pathlib import Path

    from ingest.lexicon import file_stamp, open_lexicon

    spec = importlib.util.find_spec("wordfreq")
    if spec is None or spec.origin is None:
        return None
    source = Path(spec.origin).with_name("data") / "large_en.msgpack.gz"

    def rows() -> Any:
        from wordfreq import get_frequency_dict, zipf_frequency

        words = get_frequency_dict("en")
        return [(w, zipf_frequency(w, "en")) for w in words if w.isascii() and w.isalpha()]

    try:
        stamp = file_stamp(source)
    except OSError:
        return None
    return open_lexicon(Path(tempfile.gettempdir()) / "askdocs-zipf-en.sqlite", stamp, rows)


def zipf(word: str) -> float:
    """`wordfreq.zipf_frequency(word, "en")`: how common an English word is (0 unseen, 7 for
    "the"). A lower-case word of letters a-z is read from the table (one not in wordfreq's
    list is 0.0 there too), anything else from wordfreq itself."""
    table = _zipf_lexicon() if word.isascii() and word.isalpha() and word.islower() else None
    if table is None:
        from wordfreq import zipf_frequency

        return zipf_frequency(word, "en")
    row = table.get(word)
    return float(row[0]) if row else 0.0


@cache
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def stem(word: str) -> str:
    """Snowball stem of an English word ("tracebacks" → "traceback"); others as they are."""
    return _stemmer().stemWord(word) if word.isascii() and word.isalpha() else word


def _runs(text: str) -> Iterator[tuple[str, str]]:
    """(kind, run) in reading order: "han", "ident", "num" or "word"; NFKC-folded, case kept."""
    for m in _RUN.finditer(unicodedata.normalize("NFKC", text)):
        yield m.lastgroup or "word", m.group()


def _ident_tokens(ident: str) -> list[str]:
    """`os.path.join` → the whole, its dotted prefixes, and every dotted/underscore part."""
    out = [ident]
    dotted = ident.split(".")
    out += [".".join(dotted[:i]) for i in range(2, len(dotted))]
    for piece in dotted:
        if len(dotted) > 1:
            out.append(piece)
        parts = [p for p in piece.split("_") if p]
        if len(parts) > 1 or (parts and parts[0] != piece):
            out += parts
    return [t for t in dict.fromkeys(out) if t == ident or t not in STOPWORDS_EN]


def tokenize(text: str) -> list[str]:
    """BM25 tokens, lower-cased: English word stems, code identifiers whole (as written) and
    their parts, jieba's search-mode words (which include the shorter words inside long ones,
    for recall on both sides), numbers; stop words dropped."""
    tokens: list[str] = []
    for kind, value in _runs(text.lower()):
        if kind == "han":
            cuts = cut_for_search(value)
            tokens += [w for w in cuts if w.strip() and w not in STOPWORDS_ZH]
            continue
        value = value.removesuffix("()")
        if kind == "ident" and ("." in value or "_" in value):
            tokens += [t if "." in t or "_" in t else stem(t) for t in _ident_tokens(value)]
        elif value not in STOPWORDS_EN:
            tokens.append(stem(value))
    return tokens


def content_words(text: str) -> list[str]:
    """The words of `text` that say what it is about, in reading order and as written: code
    names whole, numbers, English words that are not stop words, jieba words of two or more
    characters that are not stop words."""
    out: list[str] = []
    for kind, value in _runs(text):
        if kind == "han":
            out += [w for w in cut(value) if len(w) >= 2 and w not in STOPWORDS_ZH]
        elif kind == "num" or value.lower() not in STOPWORDS_EN:
            out.append(value.removesuffix("()"))
    return out


@lru_cache(maxsize=4096)
def terms(text: str) -> frozenset[str]:
    """Lower-cased content terms of `text`, for overlap scores: code names whole and their
    parts, numbers, stems of English words, jieba words (cached: sentences repeat)."""
    out: set[str] = set()
    for word in content_words(text):
        low = word.lower()
        if HAN.match(word) or low[0].isdigit():
            out.add(low)
        elif is_code_name(word):
            out.add(low)  # a code name: whole, and its longer parts
            out.update(p for p in re.split(r"[._]", low) if len(p) > 2 and p not in STOPWORDS_EN)
        elif len(low) > 1:
            out.add(stem(low))
    return frozenset(out)


_NUMBER = re.compile(r"\d{3,}")


def named_terms(text: str, lang: str) -> list[str]:
    """Lower-cased words of a question that name something: code, products, numbers.

    A Latin word of three letters or more inside a Chinese question, a capitalised word after
    the first, a code name, a number of three digits or more.
    """
    # Words of one letter and numbers under three digits are not counted at all ("A Counter").
    words = [
        value.removesuffix("()")
        for kind, value in _runs(text)
        if (kind == "num" and _NUMBER.fullmatch(value)) or (kind in ("ident", "word"))
    ]
    names = []
    for i, w in enumerate(w for w in words if len(w) >= 2):
        if (
            w.isdigit()
            or (lang == "zh" and len(w) >= 3)
            or (i > 0 and w[0].isupper())
            or is_code_name(w)
        ):
            names.append(w.lower())
    return list(dict.fromkeys(names))

"""The model's tokenizer for questions, without loading its 250k-piece vocabulary.

Why: `tokenizers.Tokenizer.from_file` of the model's tokenizer.json took ~0.8 s of a 2.4 s cold
`askdocs ask` (parsing 250k pieces and building their trie; it holds the GIL), to tokenize
one short question. A Unigram tokenizer's Viterbi only ever looks at the pieces that are
substrings of the text it cuts, so `PieceTokenizer` reads just those from an SQLite copy of
the vocabulary (`ingest.lexicon`, built once next to the model) and runs `tokenizers`' own
Unigram over them; the normaliser, pre-tokeniser and special tokens are the model's own, from
tokenizer.json without its vocabulary. The result is the full tokenizer's ids, id for id
(tests/test_pieces.py; `python bench/coldstart.py --check-tokens` over every question and
corpus chunk). Texts it does not handle (long batches, added tokens like `<mask>` written in
the text, a tokenizer that is not Unigram) and every call of a long-lived process after its
first few go to the full tokenizer, loaded on first need.
(sentencepiece, measured as the alternative, spent ~0.6 s loading the same vocabulary.)
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from ingest.lexicon import Lexicon, file_stamp, open_lexicon, substrings

# Bump when the table's layout or meaning changes, so older tables are rebuilt.
VERSION = 1
TABLE = "askdocs-pieces.sqlite"
# Past this many characters in one call the full vocabulary is quicker than the lookups; past
# this many calls the process is a long-lived one (app, serve, chat, eval: a one-shot `ask`
# makes 1-3), where the ~3 ms a call costs through the table would slow every question.
_LAZY_CHARS = 4_000
_LAZY_CALLS = 12


def prepare(model_dir: Path) -> Lexicon | None:
    """The vocabulary table of `model_dir`'s tokenizer.json, built if missing or outdated;
    None when the tokenizer is not a Unigram one or the table cannot be written."""
    source = Path(model_dir) / "tokenizer.json"
    spec: dict[str, Any] = {}

    def load() -> dict[str, Any]:
        if not spec:
            spec.update(json.loads(source.read_text(encoding="utf-8")))
        if spec.get("model", {}).get("type") != "Unigram":
            raise ValueError("not a Unigram tokenizer")
        return spec

    def rows() -> list[tuple[str, int, float]]:
        return [(p, i, float(s)) for i, (p, s) in enumerate(load()["model"]["vocab"])]

    def meta() -> dict[str, str | int | float]:
        full = load()
        model = full["model"]
        unk = int(model["unk_id"])
        # The shell: everything but the vocabulary (its model a one-piece Unigram).
        shell = dict(
            full, added_tokens=[], model=dict(model, vocab=[model["vocab"][unk]], unk_id=0)
        )
        return {
            "shell": json.dumps(shell),
            "added": json.dumps([t["content"] for t in full.get("added_tokens", [])]),
            "unk": unk,
            "longest": max(len(p) for p, _ in model["vocab"]),
        }

    try:
        return open_lexicon(Path(model_dir) / TABLE, file_stamp(source, VERSION), rows, meta)
    except OSError:
        return None


class PieceTokenizer:
    """`encode(texts)` → token ids with the model's special tokens, truncated to `limit`,
    exactly as `tokenizers.Tokenizer.from_file(model_dir/tokenizer.json)` gives them."""

    def __init__(self, model_dir: Path, limit: int) -> None:
        self.model_dir = Path(model_dir)
        self.limit = limit
        self.lazy_chars, self.lazy_calls = _LAZY_CHARS, _LAZY_CALLS
        self._full: Any = None
        self._lock = threading.Lock()
        self.table = prepare(model_dir)
        if self.table is None:
            return
        from tokenizers import Tokenizer

        meta = self.table.meta
        shell = json.loads(meta["shell"])
        self._shell = Tokenizer.from_str(meta["shell"])
        self._added = json.loads(meta["added"])
        self._longest, self._unk = int(meta["longest"]), int(meta["unk"])
        self._unk_piece = tuple(shell["model"]["vocab"][0])
        try:
            self._before, self._after = _template(shell.get("post_processor"))
        except (KeyError, TypeError, StopIteration):
            self.table = None  # a post-processor this does not read: the full tokenizer

    def encode(self, texts: list[str]) -> list[list[int]]:
        if not texts:
            return []
        self.lazy_calls -= 1
        if (
            self.table is None
            or self.lazy_calls < 0
            or any(a in t for t in texts for a in self._added)
        ):
            return self._encode_full(texts)
        pretokens = [
            [p for p, _ in self._shell.pre_tokenizer.pre_tokenize_str(n)]
            for n in (self._shell.normalizer.normalize_str(t) for t in texts)
        ]
        if sum(len(p) for parts in pretokens for p in parts) > self.lazy_chars:
            return self._encode_full(texts)
        from tokenizers.models import Unigram

        rows = self.table.get_many(
            s for parts in pretokens for p in parts for s in substrings(p, self._longest)
        )
        # The pieces the texts contain, plus <unk>: its score is the vocabulary's lowest, so
        # the penalty of an unknown character is the same as with the whole vocabulary.
        pieces = [(k, v) for k, v in rows.items() if v[0] != self._unk]
        model = Unigram([self._unk_piece] + [(k, v[1]) for k, v in pieces], 0, False)
        real = [self._unk] + [v[0] for _, v in pieces]
        keep = self.limit - len(self._before) - len(self._after)
        out = []
        for parts in pretokens:
            ids = [real[tok.id] for p in parts for tok in model.tokenize(p)]
            out.append(self._before + ids[:keep] + self._after)
        return out

    def _encode_full(self, texts: list[str]) -> list[list[int]]:
        with self._lock:
            if self._full is None:
                from tokenizers import Tokenizer

                full = Tokenizer.from_file(str(self.model_dir / "tokenizer.json"))
                full.enable_truncation(max_length=self.limit)
                full.no_padding()
                self._full = full
        return [e.ids for e in self._full.encode_batch(texts)]


def _template(processor: dict | None) -> tuple[list[int], list[int]]:
    """The special ids a `TemplateProcessing` puts before and after a single text (none
    without a post-processor)."""
    if processor is None:
        return [], []
    if processor["type"] != "TemplateProcessing":
        raise KeyError(processor["type"])
    single, specials = processor["single"], processor["special_tokens"]
    cut = next(i for i, t in enumerate(single) if "Sequence" in t)

    def ids(part: list[dict]) -> list[int]:
        return [i for t in part for i in specials[t["SpecialToken"]["id"]]["ids"]]

    return ids(single[:cut]), ids(single[cut + 1 :])

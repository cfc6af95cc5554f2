"""The questions' tokenizer (index/model/pieces.py) gives tokenizer.json's ids exactly, and the
on-disk word lists it and ingest/text.py read (ingest/lexicon.py) are built once and reused."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from index.model import pieces
from ingest import lexicon
from tests.helpers import eval_questions


def _model_copy(e5_dir: Path, tmp_path: Path) -> Path:
    """A model directory of its own (the table is written next to tokenizer.json)."""
    out = tmp_path / "model"
    out.mkdir()
    for name in ("tokenizer.json", "config.json"):
        (out / name).symlink_to(Path(e5_dir) / name)
    return out


def _full(model_dir: Path, limit: int):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_truncation(max_length=limit)
    return tok


@pytest.mark.model
@pytest.mark.shared
def test_piece_tokenizer_gives_the_full_tokenizers_ids(e5_dir: Path, tmp_path: Path) -> None:
    """Corpus sentences, code, mixed scripts, emoji, odd white space, unknown characters,
    eval questions, an added token written in the text, truncation at the limit; one text
    at a time and in a batch. (`bench/coldstart.py --check-tokens` runs every text.)"""
    from tests.test_model import varied_strings

    model = _model_copy(e5_dir, tmp_path)
    texts = random.Random(5).sample(varied_strings(), 300)
    texts += eval_questions()[::7]
    texts += ["", " ", "a  b   c ", " lead", "x\u3000\ty\n", "trail\u3000", "\u200b", "ﬁ Ⅻ ①"]
    texts += ["\U0001d518\U0001d52b\U0001d526 \U000e0001\U0010fffd", "hello <mask> there </s>"]
    texts += ["word " * 700, "函数" * 600]  # past the limit
    tok = pieces.PieceTokenizer(model, 512)
    assert tok.table is not None and (model / pieces.TABLE).is_file()
    tok.lazy_chars = tok.lazy_calls = float("inf")  # the table even for the long ones
    ref = [e.ids for e in _full(model, 512).encode_batch(["query: " + t for t in texts])]
    one_by_one = [ids for t in texts for ids in tok.encode(["query: " + t])]
    assert one_by_one == ref
    assert tok.encode(["query: " + t for t in texts]) == ref
    assert max(map(len, ref)) == 512
    tok.lazy_chars = 100  # past it: the full tokenizer, same ids
    assert tok.encode(["query: " + t for t in texts[:20]]) == ref[:20] and tok._full is not None
    again = pieces.PieceTokenizer(model, 512)
    again.lazy_calls = 2  # a long-lived process: the table for its first calls only
    assert [again.encode([f"query: {t}"]) for t in texts[:2]] == [[r] for r in ref[:2]]
    assert again._full is None
    assert again.encode(["query: " + texts[2]]) == ref[2:3] and again._full is not None


@pytest.mark.model
def test_piece_table_is_built_once_and_rebuilt_for_a_new_tokenizer(
    e5_dir: Path, tmp_path: Path
) -> None:
    model = _model_copy(e5_dir, tmp_path)
    first = pieces.prepare(model)
    assert first is not None
    built = (model / pieces.TABLE).stat().st_mtime_ns
    assert pieces.prepare(model) is not None
    assert (model / pieces.TABLE).stat().st_mtime_ns == built  # reused
    (model / "tokenizer.json").unlink()
    (model / "tokenizer.json").write_bytes((Path(e5_dir) / "tokenizer.json").read_bytes())
    assert pieces.prepare(model) is not None
    assert (model / pieces.TABLE).stat().st_mtime_ns != built  # another file: rebuilt


def test_a_tokenizer_that_is_not_unigram_uses_the_full_one(tmp_path: Path) -> None:
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import WordLevel

    tok = Tokenizer(WordLevel({"[UNK]": 0, "hello": 1, "world": 2}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(tmp_path / "tokenizer.json"))
    ours = pieces.PieceTokenizer(tmp_path, 8)
    assert ours.table is None and not (tmp_path / pieces.TABLE).exists()
    assert ours.encode(["hello world", "hello there"]) == [[1, 2], [1, 0]]


def test_lexicon_builds_once_reads_in_batches_and_rebuilds_for_a_new_stamp(
    tmp_path: Path,
) -> None:
    calls: list[int] = []

    def rows():
        calls.append(1)
        return [(f"k{i}", i, i / 2) for i in range(2000)]

    path = tmp_path / "t.sqlite"
    table = lexicon.open_lexicon(path, "v1", rows, lambda: {"longest": 5})
    assert table is not None and table.meta["longest"] == 5 and table.width == 2
    keys = [f"k{i}" for i in range(0, 3000, 3)]  # more than one SELECT's worth, some absent
    assert table.get_many(keys) == {f"k{i}": (i, i / 2) for i in range(0, 2000, 3)}
    assert table.get("k7") == (7, 3.5) and table.get("nope") is None
    assert lexicon.open_lexicon(path, "v1", rows) is not None and len(calls) == 1
    assert lexicon.open_lexicon(path, "v2", rows) is not None and len(calls) == 2
    path.write_bytes(b"not a database")
    assert lexicon.open_lexicon(path, "v2", rows) is not None and len(calls) == 3
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert lexicon.open_lexicon(blocked / "t.sqlite", "v1", rows) is None  # cannot be written


def test_substrings_cover_every_lookup_up_to_the_longest() -> None:
    assert list(lexicon.substrings("abc", 2)) == ["a", "ab", "b", "bc", "c"]
    assert len(list(lexicon.substrings("x" * 40, 16))) == sum(min(16, 40 - i) for i in range(40))

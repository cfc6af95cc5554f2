"""The word-translation table (assistant/translations.tsv, learned by bench/translate.py) and the
ranker feature that reads it."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from assistant.crossing import crossing

ROOT = Path(__file__).resolve().parent.parent


def test_model1_learns_which_word_translates_which() -> None:
    """EM separates words that always occur together in some pairs and apart in others."""
    sys.path.insert(0, str(ROOT / "bench"))
    from translate import model1

    pairs = [
        (["猫", "黑"], ["cat", "black"]),
        (["猫", "白"], ["cat", "white"]),
        (["狗", "黑"], ["dog", "black"]),
        (["狗", "白"], ["dog", "white"]),
        (["猫"], ["cat"]),
    ]
    src, tgt, (src_of, tgt_of, prob) = model1(pairs, iterations=10)
    t = np.zeros((len(src), len(tgt)))
    t[src_of, tgt_of] = prob

    def best(word: str) -> str:
        return tgt[int(t[src.index(word)].argmax())]

    assert [best(w) for w in ("猫", "狗", "黑", "白")] == ["cat", "dog", "black", "white"]
    assert t[src.index("猫")].sum() > 0.99  # a distribution over target words


def test_shipped_table_translates_ordinary_words_both_ways() -> None:
    table = crossing().words
    assert table["默认"][0] == "default"  # stems, as ingest.text.terms gives them
    assert table["递归"][0] == "recurs"
    assert "thread" in table["线程"]
    assert table["default"][0] == "默认"
    assert all(len(v) <= 4 for v in table.values())
    assert (ROOT / "assistant" / "translations.tsv").stat().st_size < 400_000


def test_translated_feature_prefers_the_english_answer_to_a_chinese_question() -> None:
    """The answer shares no word with the question as written and the glossary gives 空间 only
    as "namespace"; the learned table reads 空间 → space, 占用 → take, so the answer ranks first
    by the feature and by the shipped ranker."""
    from assistant.answer import candidates
    from assistant.ranker import CHEAP, cheap_features, default_ranker, score
    from assistant.records import Hit
    from ingest.records import Chunk

    doc = (
        "Base64 encoding turns binary data into ASCII text. The encoded data uses only printable "
        "characters. The encoded data takes up more space than the original binary data."
    )
    chunk = Chunk(
        Chunk.make_id("d", 0, len(doc)), "d", "d.md", 0, len(doc), doc, "base64", "en", ""
    )
    cands = candidates([Hit(chunk, 1.0, 1)], lambda _: doc)
    assert [c.shown.split()[1] for c in cands] == ["encoding", "encoded", "encoded"]
    question = "base64 编码后的数据占用的空间会更大吗？"
    x = cheap_features(question, question, cands)
    translated = x[:, CHEAP.index("translated")]
    assert translated[2] > max(translated[:2]) + 0.2
    assert x[2, CHEAP.index("translated_best")] == 1.0
    assert x[2, CHEAP.index("lexical")] == 0.0  # nothing carried it as written
    assert int(score(default_ranker(), question, question, cands).argmax()) == 2

"""The answer-sentence ranker: features, fitting, and answers on a real library (real model).

The real-model tests are the issue's proof cases: a code question answered by the code line,
a "which version" question whose answer holds the version, and an English question over Chinese
notes with the term gloss.
"""

from __future__ import annotations

import numpy as np
import pytest

from assistant.ranker import CHEAP, Ranker, cues, default_ranker, fit
from assistant.reading import reading_aid
from tests.helpers import real_library

DOCS_EN = """# json — encoding and decoding

## Pretty printing

The json module turns Python objects into text and back. Pretty printing makes the output
readable for people. The indent argument sets how many spaces each level is indented.

```python
print(json.dumps(data, indent=4))
```

Keys can also be sorted with sort_keys, which helps when comparing files.

# f-strings

## Formatted string literals

Formatted string literals are prefixed with f and hold expressions in braces. They were added
in Python 3.6. They are usually faster than the % operator and str.format().
"""

DOCS_ZH = """# 进程和线程

## 多线程

多任务可以由多进程完成，也可以由一个进程内的多线程完成。
Python 的线程是真正的 Posix Thread，而不是模拟出来的线程。
因为全局解释器锁的存在，同一时刻只有一个线程在执行字节码，所以多线程无法利用多核。
多进程则可以把任务分给多个 CPU 核心。
"""


def test_question_cues():
    assert cues("How do I write the code to pretty-print JSON?").code
    assert cues("这段代码会打印什么？").code
    assert cues("In which version were f-strings added?").version
    assert cues("uuid 的几个版本里，哪一个是完全随机生成的？").name
    assert cues("How many frames does faulthandler dump?").number
    assert cues("有哪些方法可以复制列表？").many
    assert not cues("What is a list?").code


def test_fit_learns_which_candidate_of_a_question_answers():
    rng = np.random.default_rng(0)
    groups = []
    for _ in range(200):  # questions of 6 candidates; the answer has high feature 0 and 4
        x = rng.normal(size=(6, len(CHEAP))).astype(np.float32)
        y = np.zeros(6)
        y[int(np.argmax(x[:, 0] + 0.5 * x[:, 4]))] = 1.0
        groups.append((x, y))
    model = fit(groups, CHEAP)
    assert model.coef[0] > 1.0 and model.coef[4] > 0.3
    assert abs(model.coef[1]) < 0.3 * model.coef[0]
    hits = [y[int(np.argmax(model.logits(x)))] for x, y in groups]
    assert np.mean(hits) > 0.9
    again = Ranker.from_json(Ranker(model, model, 3).to_json())
    assert np.allclose(again.cheap.logits(groups[0][0]), model.logits(groups[0][0]), atol=1e-3)


def test_shipped_weights_load_and_name_every_feature():
    ranker = default_ranker()
    assert ranker.cheap.names == CHEAP
    assert len(ranker.full.coef) == len(ranker.full.names) > len(CHEAP)


def test_reading_aid_lists_terms_of_the_other_language():
    aid = dict(reading_aid(["因为全局解释器锁的存在，多线程无法利用多核。"], "en"))
    assert aid["全局解释器锁"] == "global interpreter lock"
    assert "解释器" not in aid  # the longer term used that part of the sentence
    aid = dict(reading_aid(["A decorator wraps a function."], "zh"))
    assert aid.get("decorator") == "装饰器"


@pytest.fixture(scope="module")
def assistant(tmp_path_factory, e5, e5_dir):
    from assistant.config import AssistantConfig
    from assistant.service import Assistant

    root = tmp_path_factory.mktemp("ranker")
    lib = real_library(root, e5, e5_dir, "rank", {"notes.en.md": DOCS_EN, "threads.zh.md": DOCS_ZH})
    return Assistant(AssistantConfig(library=lib.config), library=lib)


def _first(answer):
    return answer.citations[answer.sentences[0].citations[0] - 1]


@pytest.mark.model
def test_code_question_is_answered_by_the_code_line(assistant):
    answer = assistant.ask("How do I write the code to pretty-print JSON with an indent of 4?")
    assert answer.answered and answer.sentences[0].code
    assert _first(answer).text == "print(json.dumps(data, indent=4))"
    assert "```\nprint(json.dumps(data, indent=4))\n```[1]" in answer.text
    sentences = answer.to_json()["sentences"]
    assert sentences[0]["code"] is True


@pytest.mark.model
def test_which_version_answer_holds_the_version(assistant):
    answer = assistant.ask("In which version of Python were f-strings added?")
    assert answer.answered
    assert "3.6" in _first(answer).text


@pytest.mark.model
def test_english_question_over_chinese_notes_gets_the_term_gloss(assistant):
    answer = assistant.ask("Why can't Python threads use several CPU cores at once?")
    assert answer.answered and answer.notice == "The following comes from the Chinese documents."
    assert "全局解释器锁" in _first(answer).text
    assert ("全局解释器锁", "global interpreter lock") in answer.glossary
    assert {"term": "全局解释器锁", "translation": "global interpreter lock"} in answer.to_json()[
        "glossary"
    ]
    assert "全局解释器锁 — global interpreter lock" in answer.glossary_text
    assert len(answer.sentences) <= 3


def test_code_candidates_cite_the_code_without_its_fences():
    from assistant.answer import candidates
    from assistant.records import Hit
    from ingest.records import Chunk

    long = "\n".join(f"x{i} = {i}" for i in range(10))
    doc = (
        "Sorting a list in place is done with one call.\n\n```python\nxs.sort()\n```\n\n"
        f"A longer example follows.\n\n```\n{long}\n```\n"
    )
    chunk = Chunk(Chunk.make_id("d", 0, len(doc)), "d", "d.md", 0, len(doc), doc, "H", "en", "")
    cands = candidates([Hit(chunk, 1.0, 1)], lambda _: doc)
    code = [c for c in cands if c.code]
    assert [c.shown for c in code][:2] == ["xs.sort()", "x0 = 0"]
    assert len(code) == 11  # the short block whole, the long one line by line
    for c in cands:
        assert doc[c.start : c.end] == c.raw
    assert [c.index for c in cands] == list(range(len(cands)))
    prose = candidates([Hit(chunk, 1.0, 1)], lambda _: doc, code=False)
    assert not any(c.code for c in prose) and len(prose) == len(cands) - 11


def test_folds_file_of_other_features_is_refused(tmp_path):
    """A folds file written before a feature was added would fail inside `eval` with a shape
    error; it is refused up front with the command that rewrites it."""
    import json
    from dataclasses import replace

    from assistant.ranker import load_folds
    from ingest.errors import InputError

    ranker = default_ranker()
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"folds": [{"ids": ["q1"], "ranker": ranker.to_json()}]}))
    assert load_folds(good)["q1"].cheap.names == CHEAP
    old = replace(ranker, cheap=replace(ranker.cheap, names=CHEAP[:-1]))
    bad = tmp_path / "old.json"
    bad.write_text(json.dumps({"folds": [{"ids": ["q1"], "ranker": old.to_json()}]}))
    with pytest.raises(InputError, match="other ranker features"):
        load_folds(bad)

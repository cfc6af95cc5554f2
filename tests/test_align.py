"""The learned cross-language query map (assistant/align.py, built by bench/align.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from assistant.align import FILE, MODEL, Alignment, fit_alignment, load_alignment

ROOT = Path(__file__).resolve().parent.parent
PAIRS = ROOT.parent / "shared" / "parallel" / "python-docs-3.11.train.jsonl"


def test_fit_recovers_a_rotation_and_offset() -> None:
    rng = np.random.default_rng(0)
    zh = rng.normal(size=(500, 16)).astype(np.float32)
    q, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    en = zh @ q + 3.0
    a = fit_alignment(zh, en)
    assert np.allclose(a.rotation, q, atol=1e-4)
    mapped = a.map(zh[:5], "zh", "en")
    target = en[:5] / np.linalg.norm(en[:5], axis=1, keepdims=True)
    assert np.allclose(mapped, target, atol=1e-4)
    back = a.map(en[:5], "en", "zh")
    assert np.allclose(back, zh[:5] / np.linalg.norm(zh[:5], axis=1, keepdims=True), atol=1e-4)
    assert np.array_equal(a.map(zh[:1], "zh", "zh"), zh[:1])  # same language: untouched
    assert np.allclose(
        a.with_strength(0.0).map(zh[:2], "zh", "en"),
        a.map(zh[:2], "zh", "zh") / np.linalg.norm(zh[:2], axis=1, keepdims=True),
    )


def test_shipped_map_loads_for_its_model_only(tmp_path: Path) -> None:
    a = load_alignment(MODEL)
    assert a is not None and a.rotation.shape == (384, 384)
    assert np.allclose(a.rotation @ a.rotation.T, np.eye(384), atol=2e-2)  # float16 storage
    assert load_alignment("another-model") is None
    assert load_alignment(MODEL, tmp_path / "missing.npz") is None
    assert FILE.stat().st_size < 1_000_000


@pytest.mark.model
def test_map_brings_held_out_translations_first(e5) -> None:
    """On pages the map never saw, a Chinese paragraph's mapped vector ranks its English
    translation above the other English paragraphs and above the Chinese ones more often
    than the identity does (the merged list the retriever ranks)."""
    if not PAIRS.is_file():
        pytest.skip("the shared parallel file is not here")
    sys.path.insert(0, str(ROOT / "bench"))
    from align import held_out

    rows = [json.loads(line) for line in PAIRS.read_text(encoding="utf-8").splitlines()]
    rows = [r for r in rows if held_out(r["page"]) and 40 <= len(r["en"]) <= 200][:120]
    zh = e5.embed([r["zh"] for r in rows], kind="query")
    en = e5.embed([r["en"] for r in rows], kind="query")
    a = load_alignment(MODEL)

    def first(queries: np.ndarray) -> float:
        cross = queries @ en.T
        same = zh @ zh.T
        np.fill_diagonal(same, -np.inf)
        own = np.diag(cross)[:, None]
        ranks = (cross > own).sum(axis=1) + (same > own).sum(axis=1) + 1
        return float((ranks == 1).mean())

    identity, mapped = first(zh), first(a.map(zh, "zh", "en"))
    assert mapped > identity + 0.1, (identity, mapped)
    assert isinstance(a, Alignment)

"""A learned map of query vectors between the languages of multilingual-e5-small.

Why: the model places a Chinese question nearer to any Chinese passage than to the English
passage that answers it. Removing two language directions (`assistant.calibrate`) narrows the
gap; a rotation learned from thousands of translated paragraphs narrows it further. The map
turns a question's vector into (an estimate of) the vector the same question would have in the
other language, and is used only to score passages of that other language: a Chinese question
still meets Chinese passages with its own vector.

The map is `(q - mu_src) @ R + mu_tgt` with R orthogonal (Procrustes on centred pairs), so it
carries both the offset between the languages' means and a rotation; R's transpose maps back.
It was fitted by `python bench/align.py --write` on English/Chinese paragraph pairs of the
Python documentation's translation (pages held out for validation) and ships as a float16 file
of ~300 KB; it belongs to the model named in it and is not used with any other.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

FILE = Path(__file__).with_name("alignment.npz")
MODEL = "multilingual-e5-small"


@dataclass(frozen=True)
class Alignment:
    rotation: np.ndarray  # (dim, dim), orthogonal: centred zh query → centred en query
    mu_zh: np.ndarray  # (dim,) mean Chinese query vector of the training pairs
    mu_en: np.ndarray  # (dim,) mean English query vector
    strength: float = 1.0  # 0 = identity, 1 = the full map

    def map(self, vecs: np.ndarray, src: str, tgt: str) -> np.ndarray:
        """`vecs` (one or many rows) of language `src` as `tgt` would have them, unit length."""
        vecs = np.asarray(vecs, dtype=np.float32)
        if src == tgt or {src, tgt} != {"zh", "en"}:
            return vecs
        if src == "zh":
            mapped = (vecs - self.mu_zh) @ self.rotation + self.mu_en
        else:
            mapped = (vecs - self.mu_en) @ self.rotation.T + self.mu_zh
        mapped /= np.linalg.norm(mapped, axis=-1, keepdims=True)
        out = (1 - self.strength) * vecs + self.strength * mapped
        return out / np.linalg.norm(out, axis=-1, keepdims=True)

    def with_strength(self, strength: float) -> Alignment:
        return Alignment(self.rotation, self.mu_zh, self.mu_en, strength)

    def save(self, path: Path = FILE) -> Path:
        np.savez_compressed(
            path,
            rotation=self.rotation.astype(np.float16),
            mu_zh=self.mu_zh.astype(np.float32),
            mu_en=self.mu_en.astype(np.float32),
            model=np.array(MODEL),
        )
        return path


def fit_alignment(zh: np.ndarray, en: np.ndarray) -> Alignment:
    """Orthogonal Procrustes between centred paired rows: R = argmin ||(zh-μ)R - (en-μ')||."""
    mu_zh, mu_en = zh.mean(axis=0), en.mean(axis=0)
    u, _, vt = np.linalg.svd((zh - mu_zh).T.astype(np.float64) @ (en - mu_en), full_matrices=False)
    return Alignment(
        (u @ vt).astype(np.float32), mu_zh.astype(np.float32), mu_en.astype(np.float32)
    )


@cache
def load_alignment(model: str, path: Path = FILE) -> Alignment | None:
    """The shipped map for `model`, or None (another model, or no file)."""
    if not path.is_file():
        return None
    with np.load(path) as data:
        if str(data["model"]) != model:
            return None
        return Alignment(data["rotation"].astype(np.float32), data["mu_zh"], data["mu_en"])

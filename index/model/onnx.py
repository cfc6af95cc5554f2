"""The embedding model under ONNX Runtime: questions embedded without importing torch.

Why: a cold `askdocs ask` spent ~6 s importing torch, transformers and sentence-transformers
for one 20-token forward pass. onnxruntime and `tokenizers` load in a fraction of that. The
graph is exported once from the rebuilt sentence-transformers directory (`export`, which does
need torch) and stored next to it as `model.onnx`; it computes the same thing as the
sentence-transformers model: mean pooling over the attention mask, then L2 normalisation.

Ingest stays on the torch path (bf16 where the CPU has it: faster on large batches); both
paths give vectors at cosine > 0.9999 to each other (tests/test_model.py, bench/coldstart.py).
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from index.model.batches import Kind, Progress, cores, group_by_length, run_batches
from index.model.pieces import TABLE
from ingest import settings

ONNX_FILE = "model.onnx"
WEIGHTS_FILE = "model.onnx.data"
# Bump when the exported graph changes, so older exports are redone.
EXPORT_VERSION = 1
MARKER = "askdocs-onnx.json"
# what an export adds to a model directory (with the questions' tokenizer table)
FILES = (ONNX_FILE, WEIGHTS_FILE, MARKER, TABLE)


def onnx_path(model_dir: Path) -> Path | None:
    """The exported graph of `model_dir`, or None if there is none of this version."""
    path = Path(model_dir) / ONNX_FILE
    try:
        info = json.loads((Path(model_dir) / MARKER).read_text())
    except (OSError, ValueError):
        return None
    complete = path.is_file() and (Path(model_dir) / WEIGHTS_FILE).is_file()
    return path if complete and info.get("export_version") == EXPORT_VERSION else None


def available() -> bool:
    """Whether onnxruntime is installed (found without importing it)."""
    import importlib.util

    return importlib.util.find_spec("onnxruntime") is not None


def export(model_dir: Path) -> Path:
    """Export the sentence-transformers directory's encoder, with mean pooling and
    normalisation, to `model_dir/model.onnx` (fp32; atomically). Needs torch; ~10 s once."""
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    model_dir = Path(model_dir)
    hf_logging.disable_progress_bar()
    encoder = AutoModel.from_pretrained(str(model_dir), dtype=torch.float32).eval()

    ids = torch.tensor([[0, 1000, 2000, 2], [0, 3000, 2, 1]], dtype=torch.long)
    mask = (ids != 1).long()
    tmp = model_dir / f".{ONNX_FILE}.tmp-{os.getpid()}"
    try:
        with warnings.catch_warnings(), torch.inference_mode():
            warnings.simplefilter("ignore")  # the exporter's tracing notes
            trace(pooled(encoder), ids, mask, tmp)
        _split_weights(tmp, model_dir)
    finally:
        tmp.unlink(missing_ok=True)
    from index.model.pieces import prepare

    prepare(model_dir)  # the questions' tokenizer table, built at the same moment
    marker = {"export_version": EXPORT_VERSION, "torch": torch.__version__, "dtype": "float32"}
    (model_dir / MARKER).write_text(json.dumps(marker, indent=2) + "\n")
    return model_dir / ONNX_FILE


def pooled(encoder):  # noqa: ANN001, ANN201 - a transformers encoder -> a torch module
    """The encoder with sentence-transformers' mean pooling and L2 normalisation."""
    import torch

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids, attention_mask):  # noqa: ANN001, ANN202
            hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask)[0]
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            return torch.nn.functional.normalize(mean, p=2.0, dim=1)

    return Pooled().eval()


def _split_weights(exported: Path, model_dir: Path) -> None:
    """Store the weights in a file of their own next to the graph: onnxruntime then maps
    them into memory instead of parsing and copying 470 MB (session start 4 s -> 0.3 s; only
    the rows of the 250k-word embedding table that a question uses are ever read)."""
    import onnx

    graph = onnx.load(str(exported))
    data = model_dir / WEIGHTS_FILE
    tmp_graph = model_dir / f".{ONNX_FILE}.split-{os.getpid()}"
    tmp_data = model_dir / f".{WEIGHTS_FILE}.split-{os.getpid()}"
    try:
        onnx.save_model(
            graph,
            str(tmp_graph),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=tmp_data.name,
            size_threshold=1024,
        )
        # The graph names its weights file: rename the data first, then point the graph at it.
        graph = onnx.load(str(tmp_graph), load_external_data=False)
        for tensor in graph.graph.initializer:
            for entry in tensor.external_data:
                if entry.key == "location":
                    entry.value = WEIGHTS_FILE
        os.replace(tmp_data, data)
        onnx.save_model(graph, str(tmp_graph))
        os.replace(tmp_graph, model_dir / ONNX_FILE)
    finally:
        tmp_graph.unlink(missing_ok=True)
        tmp_data.unlink(missing_ok=True)


class OnnxEmbedder:
    """`Embedder` over an exported graph: `index.model.pieces` for the ids, onnxruntime for the rest.

    Tokenises exactly as the sentence-transformers path does (the same tokenizer.json, prompt
    from the model's config, truncation at its max_seq_length)."""

    def __init__(
        self,
        model_dir: Path,
        name: str,
        *,
        batch_size: int = 32,
        threads: int | None = None,
        graph: Path | None = None,
        precision: str = "fp32",
        bulk: bool = False,
    ) -> None:
        """graph: another graph of the same model (`index.model.int8`), `precision` its
        label. bulk (passages at ingest): one thread per batch, batches side by side, as
        the torch path does; questions: every thread on one small batch."""
        import onnxruntime as ort

        from index.model.pieces import PieceTokenizer

        model_dir = Path(model_dir)
        path = graph or onnx_path(model_dir)
        if path is None:
            raise FileNotFoundError(f"{model_dir / ONNX_FILE} is missing or outdated")
        st_config = _read_json(model_dir / "config_sentence_transformers.json")
        self.prompts = {k: v for k, v in (st_config.get("prompts") or {}).items() if v}
        limit = int(_read_json(model_dir / "sentence_bert_config.json").get("max_seq_length", 512))
        config = _read_json(model_dir / "config.json")
        self.dim = int(config["hidden_size"])
        self.pad_id = int(config.get("pad_token_id", 1))
        self.tokenizer = PieceTokenizer(model_dir, limit)
        options = ort.SessionOptions()
        self.workers = (threads or cores()) if bulk else 1
        options.intra_op_num_threads = 1 if bulk else threads or cores()
        options.inter_op_num_threads = 1
        # Workers spin between ops (ORT's default) unless ASKDOCS_ORT_SPIN=0: on an idle
        # 2-core machine warm search p50 is 25 ms spinning vs 32 ms sleeping; on a saturated
        # one spinning fights everything else (78 vs 36 ms at load 10).
        spin = settings.ORT_SPIN.get()
        options.add_session_config_entry("session.intra_op.allow_spinning", spin)
        # Small graphs, one process per question: the arena only holds memory for later runs.
        options.enable_cpu_mem_arena = False
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.name = name
        self.precision = precision
        self.batch_size = batch_size

    def embed(
        self, texts: list[str], kind: Kind = "passage", progress: Progress | None = None
    ) -> np.ndarray:
        prompt = self.prompts.get(kind, "")
        encodings = self.tokenizer.encode([prompt + t for t in texts])
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        batches = group_by_length([len(e) for e in encodings], self.batch_size)
        return run_batches(lambda b: self._run(b, encodings), batches, batches, out,
                           self.workers, progress)  # fmt: skip

    def _run(self, idx: list[int], encodings: list[list[int]]) -> np.ndarray:
        width = max(len(encodings[i]) for i in idx)
        ids = np.full((len(idx), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(idx), width), dtype=np.int64)
        for row, i in enumerate(idx):
            n = len(encodings[i])
            ids[row, :n] = encodings[i]
            mask[row, :n] = 1
        return self.session.run(None, {"input_ids": ids, "attention_mask": mask})[0]


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def ensure_exported(model_dir: Path, progress: Callable[[str], None]) -> bool:
    """Whether the ONNX graph of the rebuilt model is there, exporting it once if needed.
    Without onnxruntime, or if the export fails, questions use the torch model."""
    if not available():
        return False
    if onnx_path(model_dir) is not None:
        return True
    progress("Exporting the model for fast questions (once, ~20 s)…")
    try:
        export(model_dir)
    except Exception as exc:  # exporter errors have many types; the torch path still works
        progress(f"ONNX export failed ({type(exc).__name__}: {exc}); using torch for questions")
        return False
    return True


def trace(model: Any, ids: Any, mask: Any, out: Path) -> None:  # noqa: ANN401
    """The export both graphs share (this one and `index.model.int8`'s): token ids and mask
    → the pooled embedding, batch and length dynamic."""
    import torch

    torch.onnx.export(
        model,
        (ids, mask),
        str(out),
        input_names=["input_ids", "attention_mask"],
        output_names=["embedding"],
        dynamic_axes={
            "input_ids": {0: "batch", 1: "tokens"},
            "attention_mask": {0: "batch", 1: "tokens"},
            "embedding": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,  # the TorchScript exporter: no onnxscript needed
    )

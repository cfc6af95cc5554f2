"""The passage graph in int8 under ONNX Runtime: an ingest option (index/model/passages.py).

Why: an ingest without torch (430 MB less peak memory for the bundled library) at about
bf16's speed on the 2-core EPYC (45 ms of CPU a passage on one thread against bf16's 40 and
fp32's 70; docs/results.md). This graph is built once, next to the model
(`build`, which needs torch for the export, like `index.model.onnx.export`):

1. exported with eager attention, so that ONNX Runtime's transformer optimizer can fuse
   each layer's attention into one `Attention` op (the SDPA export hides the pattern behind
   `IsNaN`/`Where` masking), with skip-LayerNorm and bias-GELU fused as well;
2. dynamically quantized: every weight matrix int8 per output channel, activations int8
   per batch at run time, except the FFN output projections, whose GELU inputs carry the
   outliers that a per-tensor activation scale loses (the torch int8 path keeps them fp32
   for the same reason). The embedding tables stay fp32, memory-mapped.

Its vectors are compared with the fp32 model's on every chunk of the bundled library
(bench/passage_paths.py; tests/test_model.py checks a sample).
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

INT8_FILE = "passages-int8.onnx"
INT8_DATA = "passages-int8.onnx.data"
MARKER = "askdocs-int8.json"
# Bump when the graph or its quantization changes, so older builds are redone.
INT8_VERSION = 1
FILES = (INT8_FILE, INT8_DATA, MARKER)
HEADS = 12  # multilingual-e5-small: the optimizer needs them to recognise attention


def int8_path(model_dir: Path) -> Path | None:
    """The int8 passage graph of `model_dir`, or None if there is none of this version."""
    model_dir = Path(model_dir)
    try:
        info = json.loads((model_dir / MARKER).read_text())
    except (OSError, ValueError):
        return None
    ok = (model_dir / INT8_FILE).is_file() and (model_dir / INT8_DATA).is_file()
    return model_dir / INT8_FILE if ok and info.get("version") == INT8_VERSION else None


def kept_fp32(graph) -> list[str]:  # noqa: ANN001 - an onnx ModelProto
    """The MatMul nodes left in fp32: each layer's FFN output projection."""
    return [
        n.name
        for n in graph.graph.node
        if n.op_type == "MatMul" and "/output/dense/" in n.name and "attention" not in n.name
    ]


def build(model_dir: Path) -> Path:
    """Export, fuse and quantize the model in `model_dir` into INT8_FILE (atomically: the
    marker is written last). Needs torch, onnx and onnxruntime; ~1 min once."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer

    model_dir = Path(model_dir)
    tmp = model_dir / f".int8-{os.getpid()}"
    tmp.mkdir(exist_ok=True)
    try:
        _export_eager(model_dir, tmp / "eager.onnx")
        config = json.loads((model_dir / "config.json").read_text())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fused = optimizer.optimize_model(
                str(tmp / "eager.onnx"),
                model_type="bert",
                num_heads=int(config.get("num_attention_heads", HEADS)),
                hidden_size=int(config["hidden_size"]),
                opt_level=1,
                use_gpu=False,
            )
            fused.save_model_to_file(
                str(tmp / "fused.onnx"), use_external_data_format=True, all_tensors_to_one_file=True
            )
            graph = onnx.load(str(tmp / "fused.onnx"), load_external_data=False)
            quantize_dynamic(
                str(tmp / "fused.onnx"),
                str(tmp / INT8_FILE),
                op_types_to_quantize=["MatMul", "Attention"],
                per_channel=True,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=kept_fp32(graph),
                use_external_data_format=True,
                extra_options={
                    "MatMulConstBOnly": True,  # only weight matrices, not attention scores
                    "DefaultTensorType": onnx.TensorProto.FLOAT,  # fused ops' outputs
                },
            )
        _relocate(tmp / INT8_FILE, model_dir)
        (model_dir / MARKER).write_text(json.dumps({"version": INT8_VERSION}) + "\n")
    finally:
        for child in tmp.iterdir():
            child.unlink()
        tmp.rmdir()
    return model_dir / INT8_FILE


def _export_eager(model_dir: Path, out: Path) -> None:
    import torch
    from transformers import AutoModel
    from transformers.utils import logging as hf_logging

    from index.model.onnx import pooled, trace

    hf_logging.disable_progress_bar()
    encoder = AutoModel.from_pretrained(
        str(model_dir), dtype=torch.float32, attn_implementation="eager"
    ).eval()
    ids = torch.tensor([[0, 1000, 2000, 2], [0, 3000, 2, 1]], dtype=torch.long)
    with warnings.catch_warnings(), torch.inference_mode():
        warnings.simplefilter("ignore")  # the exporter's tracing notes
        trace(pooled(encoder), ids, (ids != 1).long(), out)


def _relocate(graph_path: Path, model_dir: Path) -> None:
    """Move the quantized graph and its weights next to the model (data first: the graph
    names its data file)."""
    import onnx

    graph = onnx.load(str(graph_path), load_external_data=False)
    for tensor in graph.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                os.replace(graph_path.parent / entry.value, model_dir / INT8_DATA)
                break
        else:
            continue
        break
    for tensor in graph.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = INT8_DATA
    onnx.save_model(graph, str(graph_path))
    os.replace(graph_path, model_dir / INT8_FILE)

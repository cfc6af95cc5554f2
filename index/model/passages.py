"""Which numeric path embeds passages at ingest, chosen per machine from what the CPU has.

Paths: "onnx-int8" (`index.model.int8`'s graph under ONNX Runtime), "onnx-fp32" (the
questions' graph, `index.model.onnx`), "torch-bf16", "torch-fp32", "torch-int8" (the
sentence-transformers model, `index.model.embedder`). $ASKDOCS_PASSAGE_PATH names one;
"auto" (the default) chooses from the CPU's flags what passed the parity bar and measured
fastest (docs/results.md, issue 25):

- torch bf16 where the CPU computes bf16 natively (AVX512-BF16, AMX), at cosine 0.99997 to
  fp32 (40 ms of CPU a passage on one thread on the busy 2-core EPYC, fp32 70);
- else torch fp32.

"onnx-int8" is an option, not a default: near idle its ingest of the bundled library took
51.7 s and 869 MB peak against bf16's 58.5 s and 1,705 MB (no torch import), every chunk
within cosine 0.9985 of fp32 and R@5 within 0.012, but about half the dev questions' top 10
differ from the fp32 library's (near-ties reorder; bf16: 2–8%), short of the bar of 99%
unchanged; it has not been measured on a CPU without AVX-512 or with AMX.

Questions stay on the fp32 ONNX graph whatever embedded the passages: every path's passage
vectors agree with fp32's within cosine 0.995, so one library may hold chunks of several
paths (an ingest on another machine) and still be searched as one.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from pathlib import Path
from typing import Literal, cast

from ingest import settings

PATHS = ("onnx-int8", "onnx-fp32", "torch-bf16", "torch-fp32", "torch-int8")
ENV = settings.PASSAGE_PATH.name
Precision = Literal["auto", "fp32", "bf16", "int8"]  # as index.model.embedder's
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; an ARM64 machine elsewhere gets
    "asimd", which every ARM64 CPU has)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("flags", "Features"):
                return frozenset(value.split())
    except OSError:
        pass
    return (
        frozenset({"asimd"}) if platform.machine().lower() in ("arm64", "aarch64") else frozenset()
    )


def choose(flags: frozenset[str]) -> str:
    """The passage path for a CPU with `flags` ("auto")."""
    return "torch-bf16" if flags & BF16_FLAGS else "torch-fp32"


def chosen() -> str:
    """The path this machine uses: $ASKDOCS_PASSAGE_PATH if it names one, else `choose`."""
    wanted = settings.PASSAGE_PATH.get().strip().lower()
    return wanted if wanted in PATHS else choose(cpu_flags())


def load(model_dir: Path, name: str, progress: Callable[[str], None] = print):  # noqa: ANN201
    """The passage embedder of the default model when this machine's path is an ONNX graph
    (None: a torch path, or a graph that cannot be built; `torch_precision` then says which)."""
    from index.model import onnx

    path = chosen()
    if not path.startswith("onnx"):
        return None
    graph = prepare(model_dir, progress, path)
    if graph is None:
        return None
    precision = path.removeprefix("onnx-")
    # int8 one passage a run: dynamic quantization scales each activation by its tensor's
    # range, so in a batch a passage's vector would depend on its neighbours (cosine 0.9987
    # between two batchings); alone it is reproducible, and no padding is computed (45 vs
    # 50 ms of CPU a passage, bench/passage_paths.py's sample).
    batch = 1 if precision == "int8" else 32
    return onnx.OnnxEmbedder(
        model_dir, name, graph=graph, precision=precision, bulk=True, batch_size=batch
    )


def torch_precision() -> Precision | None:
    """The torch precision of this machine's passage path (None: the embedder's default, as
    when an int8 graph could not be built)."""
    path = chosen()
    if path == "onnx-fp32":
        return "fp32"
    return cast(Precision, path.removeprefix("torch-")) if path.startswith("torch-") else None


def prepare(model_dir: Path, progress: Callable[[str], None], path: str | None = None):  # noqa: ANN201
    """Build what `path` (default: this machine's) needs next to the model, once; the graph's
    path, or None when it cannot be built (the caller falls back to torch)."""
    from index.model import int8, onnx

    path = path or chosen()
    if not path.startswith("onnx") or not onnx.ensure_exported(model_dir, progress):
        return None
    if path == "onnx-fp32":
        return onnx.onnx_path(model_dir)
    found = int8.int8_path(model_dir)
    if found is not None:
        return found
    progress("Building the int8 passage model (once, ~1 min)…")
    try:
        return int8.build(model_dir)
    except Exception as exc:  # exporter and quantizer errors have many types; torch works
        progress(f"int8 build failed ({type(exc).__name__}: {exc}); using torch for passages")
        return None

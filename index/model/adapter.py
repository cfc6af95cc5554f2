"""A model adapter: LoRA tensors in one small file, merged into the base weights at build time.

The shipped adapter (`SHIPPED`, rebuilt by `python bench/train_model.py`) turns
multilingual-e5-small into askdocs's model; `askdocs tune` writes one per library. The file
is safetensors: for each adapted linear layer `NAME.lora_A` [rank, in] and `NAME.lora_B`
[out, rank] (fp16), and in its metadata the scaling, the name and how it was trained. Merging
is W + scaling · B·A in numpy, so building the model needs neither torch nor peft.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from index.config import ADAPTED_MODEL
from ingest.errors import ModelError

SHIPPED = Path(__file__).with_name("askdocs-adapter.safetensors")


@dataclass(frozen=True)
class Adapter:
    name: str  # e.g. "askdocs-a1"; goes into the model's name and every manifest
    scaling: float
    tensors: dict[str, np.ndarray]  # "encoder.layer.0.attention.self.query.lora_A" → array
    meta: dict  # how it was made: data, settings, seed, figures

    @property
    def digest(self) -> str:
        """A short hash of the tensors: two adapters of one name never pass for each other."""
        h = hashlib.sha256()
        for key in sorted(self.tensors):
            h.update(key.encode())
            h.update(np.ascontiguousarray(self.tensors[key]).tobytes())
        return h.hexdigest()[:12]

    def merge(self, weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The base weights with every adapted layer's W + scaling · B·A (float32)."""
        out = dict(weights)
        for key in sorted(k for k in self.tensors if k.endswith(".lora_A")):
            layer = key.removesuffix(".lora_A")
            a = self.tensors[key].astype(np.float32)
            b = self.tensors[f"{layer}.lora_B"].astype(np.float32)
            name = f"{layer}.weight"
            if name not in out or out[name].shape != (b.shape[0], a.shape[1]):
                raise ModelError(
                    f"adapter {self.name} does not fit this model ({name})",
                    "rebuild the adapter for multilingual-e5-small (bench/train_model.py), "
                    "or askdocs tune --reset",
                )
            out[name] = (out[name] + self.scaling * (b @ a)).astype(np.float32)
        return out

    def save(self, path: Path) -> Path:
        from safetensors.numpy import save_file

        meta = {"name": self.name, "scaling": repr(self.scaling), "meta": json.dumps(self.meta)}
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tensors = {k: np.ascontiguousarray(v.astype(np.float16)) for k, v in self.tensors.items()}
        save_file(tensors, str(tmp), metadata=meta)
        tmp.replace(path)
        return path


def from_lora(name: str, lora: dict, scaling: float, meta: dict) -> Adapter:
    """An adapter from `index.model.finetune.lora_state` tensors (torch), stored as fp16."""
    tensors = {k: v.numpy().astype(np.float16) for k, v in lora.items()}
    return Adapter(name, scaling, tensors, meta)


def load(path: Path) -> Adapter:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
        return Adapter(
            meta["name"], float(meta["scaling"]), tensors, json.loads(meta.get("meta", "{}"))
        )
    except (OSError, KeyError, ValueError, SafetensorError) as exc:
        raise ModelError(
            f"cannot read the model adapter {path} ({type(exc).__name__})",
            "rebuild it (python bench/train_model.py, or askdocs tune) or askdocs tune --reset",
        ) from exc


TUNED = "adapter.safetensors"  # a library's own adapter (askdocs tune), in its directory


@lru_cache(maxsize=16)
def _cached(path: str, stamp: tuple[int, int]) -> Adapter:
    return load(Path(path))


def read(path: Path) -> Adapter | None:
    """The adapter at `path` (cached by size and mtime), or None if there is no file."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return _cached(str(path), (st.st_size, st.st_mtime_ns))


def for_library(library_dir: Path | None, model: str) -> Adapter | None:
    """The adapter a library's model carries: for `ADAPTED_MODEL` its own (askdocs tune), else
    the shipped one; none for any other model (the default is the plain base)."""
    if model != ADAPTED_MODEL:
        return None
    own = read(library_dir / TUNED) if library_dir is not None else None
    return own or read(SHIPPED)


def model_name(base: str, adapter: Adapter | None) -> str:
    """The embedder's name, recorded in every manifest: the base model, plus which adapter
    ("multilingual-e5-small+askdocs-a1", a tuned one with its digest)."""
    if adapter is None:
        return base
    if adapter.name.startswith("tune"):
        return f"{base}+{adapter.name}-{adapter.digest}"
    return f"{base}+{adapter.name}"


def stored_setting(config, key: str) -> float | None:  # noqa: ANN001 - index.config.LibraryConfig
    """A setting fitted for the adapter the library's model uses (e.g. the abstention floor,
    `bench/floor.py`), from the adapter's metadata; None for other models or if none."""
    if config.model != ADAPTED_MODEL:
        return None
    ad = for_library(config.path, config.model)
    value = ad.meta.get(key) if ad else None
    return float(value) if value is not None else None

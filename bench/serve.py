"""Concurrency of `askdocs serve`: warm /ask latency over HTTP, 8 clients at once, and 8
clients while an ingest publishes a new generation.

    python bench/serve.py --home /tmp/h-me [--library default] [--clients 8] [--per-client 50]
                          [--workers 1 2] [--questions ../shared/eval/dev.jsonl ...]
                          [--store postgresql://... --servers 2]

For each --workers N (default 1 and 2), the library of --home is copied to a fresh scratch
home (the model is linked, not copied), so the ingest changes nothing of yours, and one
`askdocs serve --workers N` process (N uvicorn workers, each its own warm assistant, sharing
the port) is started on 127.0.0.1 with a free port; the clients are threads with their own HTTP connection, each asking its own
slice of the dev questions (cycled) one after another. Runs:

1. one client: /search and /ask, warm (after a warm-up question), one request at a time;
2. N clients × M questions at once: throughput, p50/p95, errors;
3. the same (going on until 3 s after the ingest) while `askdocs ingest` (another process,
   the real model) adds a document: every answer must come from the old or the new
   generation, each client's generations must never go back, and a request sent after the
   ingest ended must be answered by the new one.

With --store (a PostgreSQL library, already ingested), --servers N `askdocs serve` processes,
each with its own scratch home as on N machines, share that one library; client i talks to
server i mod N. The ingest then adds its document to that library, and the bench deletes it
again at the end.

Prints a Markdown table. Timings depend on the machine: say whether it was shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EVAL = ROOT.parent / "shared" / "eval"

from tests.helpers import free_port  # noqa: E402


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))] if values else 0.0


def scratch_home(home: Path, library: str, store: str = "") -> Path:
    out = Path(tempfile.mkdtemp(prefix="askdocs-serve-bench-"))
    (out / "libraries").mkdir()
    if not store:  # a PostgreSQL library is shared, not copied
        shutil.copytree(home / "libraries" / library, out / "libraries" / library, symlinks=True)
    (out / "models").symlink_to((home / "models").resolve())
    return out


def start_server(home: Path, library: str, port: int, workers: int, log: Path, store: str = ""):
    env = dict(os.environ, ASKDOCS_HOME=str(home), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
    env["ASKDOCS_STORE"] = store
    env.pop("ASKDOCS_API_TOKEN", None)
    cmd = [sys.executable, "-m", "ui.cli", "serve", "--library", library, "--port", str(port)]
    out = open(log, "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(cmd + ["--workers", str(workers)], env=env, stdout=out, stderr=out)
    t0 = time.perf_counter()
    while True:
        if proc.poll() is not None:
            sys.exit(f"serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                return proc, time.perf_counter() - t0
        except httpx.TransportError:
            pass
        time.sleep(0.3)


class Run:
    """Latencies, errors and (generation, sent-at) of every answer of one run."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.ms: list[float] = []
        self.errors: list[str] = []
        self.gens: dict[int, list[tuple[int, float]]] = {}
        self.until = None  # a callable: keep asking until it returns True

    def client(self, base: str, path: str, questions: list[str], cid: int) -> None:
        """Ask `questions` in turn; with `self.until`, go on (cycling) until it says stop."""
        key = "query" if path == "/search" else "question"
        with httpx.Client(base_url=base, timeout=120) as http:
            i = 0
            while i < len(questions) or (self.until is not None and not self.until()):
                q = questions[i % len(questions)]
                i += 1
                started, t0 = time.time(), time.perf_counter()
                try:
                    r = http.post(path, json={key: q})
                    body = r.json()
                    error = "" if r.status_code == 200 else f"{r.status_code} {body}"
                except (httpx.HTTPError, json.JSONDecodeError) as exc:
                    error = repr(exc)
                ms = (time.perf_counter() - t0) * 1000
                with self.lock:
                    if error:
                        self.errors.append(error)
                    else:
                        self.ms.append(ms)
                        self.gens.setdefault(cid, []).append((body["generation"], started))

    def go(self, base: str | list[str], path: str, slices: list[list[str]]) -> float:
        bases = [base] if isinstance(base, str) else base
        threads = [
            threading.Thread(target=self.client, args=(bases[i % len(bases)], path, qs, i))
            for i, qs in enumerate(slices)
        ]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.perf_counter() - t0

    def row(self, name: str, workers: int, clients: int, seconds: float, warm: float = 0.0) -> str:
        """A table row; `warm`: the one-client warm /ask p50, the issue's other reading of
        "p95 ≤ 5× p50"."""
        n = len(self.ms) + len(self.errors)
        p50, p95 = pct(self.ms, 0.5), pct(self.ms, 0.95)
        return (
            f"| {name} | {workers} | {clients} | {n} | {len(self.ms) / seconds:.1f} | {p50:.0f} "
            f"| {p95:.0f} | {p95 / p50 if p50 else 0:.1f} | {f'{p95 / warm:.1f}' if warm else '—'} "
            f"| {len(self.errors)} |"
        )


def bench(args: argparse.Namespace, questions: list[str], workers: int) -> tuple[list, str]:
    """Every run against fresh `serve --workers N` processes over fresh copies of the library
    (the ingest run changes it); table rows and the ingest line."""
    home = scratch_home(args.home, args.library, args.store)
    homes = [home] + [
        scratch_home(args.home, args.library, args.store) for _ in range(1, args.servers)
    ]
    procs, bases, started = [], [], 0.0
    for h in homes:
        port = free_port()
        proc, took = start_server(h, args.library, port, workers, h / "serve.log", args.store)
        procs.append(proc)
        bases.append(f"http://127.0.0.1:{port}")
        started = max(started, took)
    base = bases[0]
    rows = []
    try:
        gen0 = httpx.get(f"{base}/health").json()["generation"]
        for path in ("/search", "/ask"):  # one client, warm
            Run().go(base, path, [questions[:3]])
            run = Run()
            seconds = run.go(base, path, [questions[: args.per_client]])
            rows.append(run.row(f"{path}, one client, warm", workers, 1, seconds))
        warm_p50 = pct(run.ms, 0.5)

        def slices(offset: int) -> list[list[str]]:
            n = args.per_client
            return [
                [questions[(offset + c * n + i) % len(questions)] for i in range(n)]
                for c in range(args.clients)
            ]

        for b in bases:  # every server and every worker warm before the clock starts
            Run().go(b, "/ask", [questions[c : c + 1] for c in range(args.clients)])
        run = Run()
        seconds = run.go(bases, "/ask", slices(0))
        name = f"/ask, concurrent, {len(bases)} server(s)"
        rows.append(run.row(name, workers, args.clients, seconds, warm_p50))

        # the same load while another process ingests one new document with the real model
        docs = home / "new-docs"
        docs.mkdir()
        text = (ROOT / "corpus" / "stdlib-notes.en.md").read_text(encoding="utf-8")[:6000]
        (docs / "bench-extra.en.md").write_text("# Bench extra notes\n\n" + text)
        env = dict(os.environ, ASKDOCS_HOME=str(home), HF_HUB_OFFLINE="1", PYTHONPATH=str(ROOT))
        env["ASKDOCS_STORE"] = args.store
        ingest_cmd = [sys.executable, "-m", "ui.cli", "ingest", str(docs)]
        ingest_cmd += ["--library", args.library]
        run = Run()
        done: dict[str, float] = {}
        # keep the clients busy until a few seconds after the new generation is published
        run.until = lambda: "published" in done and time.time() > done["published"] + 3

        def ingest() -> None:
            time.sleep(1.0)
            t0 = time.perf_counter()
            try:
                subprocess.run(ingest_cmd, env=env, check=True, capture_output=True)
            finally:
                done["published"] = time.time()
            done["seconds"] = time.perf_counter() - t0

        writer = threading.Thread(target=ingest)
        writer.start()
        seconds = run.go(bases, "/ask", slices(args.per_client * args.clients))
        writer.join()
        name = "/ask, concurrent, ingest running"
        rows.append(run.row(name, workers, args.clients, seconds, warm_p50))
        gen1 = httpx.get(f"{base}/health").json()["generation"]
        seen = {g for series in run.gens.values() for g, _ in series}
        backwards = sum(
            1 for s in run.gens.values() for (a, _), (b, _) in zip(s, s[1:], strict=False) if b < a
        )
        # a request sent after the ingest process ended must be answered by the new generation
        late_old = sum(
            1
            for s in run.gens.values()
            for g, at in s
            if g == gen0 and "published" in done and at > done["published"]
        )
        if args.store:  # leave the shared library as it was
            for d in httpx.get(f"{base}/documents").json()["documents"]:
                if d["source"].endswith("bench-extra.en.md"):
                    httpx.delete(f"{base}/documents/{d['doc_id']}", timeout=120)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)
        for h in homes:
            shutil.rmtree(h, ignore_errors=True)
    line = (
        f"workers={workers}: serve ready in {started:.1f} s (model load and warm-up); ingest "
        f"meanwhile {done.get('seconds', float('nan')):.1f} s; generations seen {sorted(seen)} "
        f"(before {gen0}, after {gen1}; others: {sorted(seen - {gen0, gen1})}); a client going "
        f"back to an older generation: {backwards}; old-generation answers to requests sent "
        f"after publishing: {late_old}"
    )
    if run.errors:
        line += "\nerrors: " + "\n  ".join(run.errors[:5])
    return rows, line


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--home", type=Path, default=Path(os.environ.get("ASKDOCS_HOME", "")))
    ap.add_argument("--library", default="default")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--per-client", type=int, default=50)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--questions", nargs="+", default=[EVAL / "dev.jsonl", EVAL / "dev2.jsonl"])
    ap.add_argument("--store", default="", help="a postgresql:// URL: serve that library")
    ap.add_argument("--servers", type=int, default=1, help="serve processes (with --store)")
    args = ap.parse_args()
    if args.servers > 1 and not args.store:
        sys.exit("--servers N needs --store: only a PostgreSQL library is shared")

    questions = [
        json.loads(line)["question"]
        for path in args.questions
        for line in Path(path).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    rows, lines = [], []
    for workers in args.workers:
        r, line = bench(args, questions, workers)
        rows += r
        lines.append(line)
    print(
        "| run | workers | clients | requests | answers/s | p50 ms | p95 ms | p95/p50 "
        "| p95 / one-client p50 | errors |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    print("\n" + "\n".join(lines))


if __name__ == "__main__":
    main()

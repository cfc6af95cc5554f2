"""First start on an empty data home: seconds to the chat box, to the first answer and to the
whole sample library, and the peak memory of the app's process tree.

    python bench/firststart.py [--question TEXT] [--runs 1] [--keep] [--shots DIR]

Each run starts `askdocs ui` (this checkout: `python -m ui.cli ui`, what `make run` runs once
installed) on a new, empty ASKDOCS_HOME: the embedding model is built there and the bundled
sample library goes in behind the page (ui/startup.py). A real Chromium (Debian's, through
Playwright) opens the page and asks `--question` as soon as the chat box shows, again while the
answer is "not in the library" (the file that holds it is not in yet); the first answer counts
when the app has saved it with the chat (read from the data home, not the page, which a
reconnect under load can replace), the whole library when the published library holds every
sample file. A sampler sums the resident memory (RSS) of the app's whole process tree every
0.2 s (psutil), and its CPU seconds, given beside each time (wall s, then CPU s). The machine's load average is printed with the figures: on a shared machine
the times are upper bounds of an idle one's.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
QUESTION = "What does str.join return?"
LIMIT_S = 20 * 60


class TreeRSS(threading.Thread):
    """Peak summed RSS (bytes) of a process and all its descendants, and the CPU seconds
    (user + system) they have used so far: on a busy machine closer to what an idle one's
    wall time would be than the wall time."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.cpu, self.stopped = pid, 0, 0.0, threading.Event()
        self._cpu: dict[int, float] = {}  # per process, kept after it exits

    def run(self) -> None:
        import psutil

        root = psutil.Process(self.pid)
        while not self.stopped.wait(0.2):
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            total = 0
            for p in procs:
                with contextlib.suppress(psutil.NoSuchProcess):
                    total += p.memory_info().rss
                    t = p.cpu_times()
                    self._cpu[p.pid] = t.user + t.system
            self.peak = max(self.peak, total)
            self.cpu = sum(self._cpu.values())


def _saved_turns(home: Path) -> tuple[float, int]:
    """(when a chat with an answered turn was saved, as time.time(), else 0; turns saved). The
    app saves each answer with its chat (assistant/chats.py): what the browser was shown,
    without depending on the page's DOM, which a reconnect under load can replace."""
    import json

    count = 0
    for f in (home / "chats").glob("*/*.json"):
        try:
            turns = json.loads(f.read_text(encoding="utf-8"))["conversation"]["turns"]
        except (OSError, ValueError, KeyError):
            continue  # being written
        if any(t.get("answered") for t in turns):
            return f.stat().st_mtime, len(turns)
        count += len(turns)
    return 0.0, count


def _documents(home: Path) -> int:
    """Documents in the published library (read as another process would)."""
    sys.path.insert(0, str(ROOT))
    from index.config import LibraryConfig
    from index.library import Library

    lib = Library.open(LibraryConfig(name="default", home=home))
    try:
        return len(lib.documents())
    finally:
        lib.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def one_run(question: str, keep: bool, shots: Path | None = None) -> dict[str, float]:
    from playwright.sync_api import sync_playwright

    home = Path(tempfile.mkdtemp(prefix="askdocs-first-"))
    port = free_port()
    env = dict(os.environ, ASKDOCS_HOME=str(home), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    log = open(home.parent / f"{home.name}.log", "wb")  # noqa: SIM115 -- closed below
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "ui.cli", "ui", "--port", str(port), "--no-browser"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    rss = TreeRSS(proc.pid)
    rss.start()
    out: dict[str, float] = {"load before": os.getloadavg()[0]}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            while True:  # the server takes a moment to listen
                try:
                    page.goto(f"http://127.0.0.1:{port}/", timeout=5_000)
                    break
                except Exception:  # noqa: BLE001 -- connection refused until it listens
                    if time.monotonic() - started > 120 or proc.poll() is not None:
                        raise
                    time.sleep(0.5)
            box = page.locator('[data-testid="stChatInputTextArea"]')
            box.wait_for(timeout=LIMIT_S * 1000)
            out["chat box"] = time.monotonic() - started
            out["chat box CPU"] = rss.cpu
            asked, seen = 0.0, 0
            while "first answer" not in out:
                if time.monotonic() > started + LIMIT_S:
                    raise TimeoutError("no answer")
                answered, turns = _saved_turns(home)
                if answered:
                    out["first answer"] = answered - (time.time() - time.monotonic()) - started
                    out["first answer CPU"] = rss.cpu
                    if shots:  # the answer with the rest of the library still going in
                        page.screenshot(path=str(shots / "first-answer-while-ingesting.png"))
                elif not asked or turns > seen or time.monotonic() - asked > 60:
                    # again after "not in the library": the file that holds it was not in yet
                    box.fill(question)
                    box.press("Enter")
                    asked, seen = time.monotonic(), turns
                time.sleep(0.5)
            while _documents(home) < len(list((ROOT / "corpus").iterdir())):
                if time.monotonic() > started + LIMIT_S:
                    raise TimeoutError("the sample library did not go in")
                time.sleep(2)
            out["whole sample library"] = time.monotonic() - started
            out["whole library CPU"] = rss.cpu
            browser.close()
    finally:
        rss.stopped.set()
        os.killpg(proc.pid, signal.SIGTERM)  # the app's process group: server and Streamlit
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()
        if not keep:
            shutil.rmtree(home, ignore_errors=True)
    out["peak RSS MB"] = rss.peak / 2**20
    out["load after"] = os.getloadavg()[0]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--question", default=QUESTION)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--keep", action="store_true", help="keep the data homes")
    ap.add_argument("--shots", type=Path, help="save a screenshot of the first answer here")
    args = ap.parse_args()
    if args.shots:
        args.shots.mkdir(parents=True, exist_ok=True)
    rows = [one_run(args.question, args.keep, args.shots) for _ in range(args.runs)]
    print(f"first start on an empty data home, {os.cpu_count()} CPUs, question {args.question!r}")
    keys = list(rows[0])
    print("| run | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for i, row in enumerate(rows, 1):
        print(f"| {i} | " + " | ".join(f"{row.get(k, float('nan')):.1f}" for k in keys) + " |")


if __name__ == "__main__":
    main()

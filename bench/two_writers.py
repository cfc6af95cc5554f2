"""Two `askdocs ingest` processes on one PostgreSQL library, against one process.

    python bench/two_writers.py --store URL [--home H] [--size 20000]

Three folders of slices of the bundled corpus (x: two files, y: two, z: three; --size
characters each), ingested with the real model by two CLI processes started together:
disjoint (x | y z) and overlapping (x y | y z). Each is compared with one process ingesting
x y z into another library: documents (each file once), chunk ids, and the cosine of every
chunk's two vectors. Prints a table; exit 1 if any check fails.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def folders(root: Path, size: int) -> dict[str, Path]:
    files = sorted((ROOT / "corpus").iterdir())
    parts = {}
    for name, chosen, offset in (("x", files[:2], 0), ("y", files[2:], 0), ("z", files[1:], 8000)):
        folder = parts[name] = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for f in chosen:
            text = f.read_text(encoding="utf-8")[offset : offset + size]
            (folder / f"{name}-{f.name}").write_text(text, encoding="utf-8")
    return parts


def ingest(env: dict, library: str, paths: list[str]) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "ui.cli", "ingest", *paths, "--library", library]
    return subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def contents(config) -> tuple[list[str], dict[int, np.ndarray]]:  # noqa: ANN001
    from index.library import Library

    lib = Library.open(config)  # no question is asked: the model is never loaded
    docs = lib.documents()
    vecs = {}
    for lang in lib.langs():
        ids = [c.chunk_id for d in docs for c in lib.chunks(d.doc_id) if c.lang == lang]
        for i, v in zip(ids, lib.vectors(ids, lang), strict=True):
            vecs[i] = v
    return sorted(d.path for d in docs), vecs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True)
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--size", type=int, default=20000)
    args = parser.parse_args()
    from index.config import LibraryConfig

    home = args.home or Path(tempfile.mkdtemp(prefix="askdocs-two-"))
    env = {**os.environ, "ASKDOCS_HOME": str(home), "ASKDOCS_STORE": args.store}
    env["PYTHONPATH"] = str(ROOT)
    os.environ.update(ASKDOCS_HOME=str(home), ASKDOCS_STORE=args.store)
    parts = folders(Path(tempfile.mkdtemp(prefix="askdocs-two-docs-")), args.size)
    x, y, z = (str(parts[k]) for k in "xyz")
    t0 = time.perf_counter()
    one = ingest(env, "one", [x, y, z])
    one_out = one.communicate()
    one_s = time.perf_counter() - t0
    ok = one.returncode == 0
    ref_paths, ref = contents(LibraryConfig(name="one"))
    print(f"one process: {one_out[0].decode().strip()} ({one_s:.1f} s wall)")
    print(
        "| run | exit codes | wall s | reports | files (once each) | same chunk ids | min cosine |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, given in (("disjoint", ([x], [y, z])), ("overlapping", ([x, y], [y, z]))):
        t0 = time.perf_counter()
        procs = [ingest(env, label, paths) for paths in given]
        outs = [p.communicate() for p in procs]
        wall = time.perf_counter() - t0
        codes = [p.returncode for p in procs]
        reports = " / ".join(o.decode().strip().splitlines()[-1] for o, _ in outs if o)
        paths, vecs = contents(LibraryConfig(name=label))
        same_ids = sorted(vecs) == sorted(ref)
        cos = min(float(vecs[i] @ ref[i]) for i in ref) if same_ids else float("nan")
        once = paths == ref_paths and len(set(paths)) == len(paths)
        ok &= codes == [0, 0] and once and same_ids and cos >= 0.9999
        errs = [e.decode()[-300:] for _, e in outs if e and b"rror" in e]
        print(
            f"| {label} | {codes} | {wall:.1f} | {reports} | {len(paths)} ({once}) | "
            f"{same_ids} ({len(vecs)}) | {cos:.6f} |"
        )
        for e in errs:
            print("  stderr:", e)
    print(f"load average {os.getloadavg()[0]:.1f}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

"""Killed at any stage, read while written: the library is the old one or the new one, its
store, FAISS and BM25 agree, the next ingest equals a clean one, and readers see no errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from index import manifest as layout
from index.config import LibraryConfig
from index.library import Library
from tests.helpers import FakeEmbedder

REPO = Path(__file__).resolve().parent.parent

BEFORE = {
    "files.md": "# Files\n\n## Seeking\n\nos.lseek moves the file offset.\n\n## Closing\n\n"
    "The with statement closes files.\n",
    "gone.md": "# Gone\n\nThis page is deleted before the second ingest.\n",
    "函数.md": "# 函数\n\n## 定义函数\n\n使用 def 关键字定义函数。\n",
}
AFTER = {
    "files.md": "# Files\n\nos.pread reads at an offset without moving it.\n",
    "函数.md": BEFORE["函数.md"],
    "new.md": "# New\n\n" + "\n\n".join(f"## Part {i}\n\nParagraph {i}." for i in range(60)),
    "类.md": "# 类\n\n类是创建对象的模板。\n",
}


def _folder(root: Path, docs: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for old in root.iterdir():
        old.unlink()
    for name, text in docs.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def _cfg(home: Path, name: str = "t") -> LibraryConfig:
    return LibraryConfig(name=name, home=home, model="fake")


def _snapshot(lib: Library) -> set[tuple[str, str, tuple[int, ...]]]:
    """(file name, doc_id, chunk ids) of every document: equal for equal libraries."""
    return {
        (Path(d.source).name, d.doc_id, tuple(sorted(c.chunk_id for c in lib.chunks(d.doc_id))))
        for d in lib.documents()
    }


def _check_consistent(lib: Library) -> None:
    """Store, FAISS and BM25 hold the same chunks, language by language; offsets hold."""
    chunks = [c for d in lib.documents() for c in lib.chunks(d.doc_id)]
    by_lang: dict[str, set[int]] = {}
    for c in chunks:
        by_lang.setdefault(c.lang if c.lang in ("zh", "en") else "other", set()).add(c.chunk_id)
        doc = lib.document(c.doc_id)
        assert doc.text[c.start : c.end] == c.text
    assert lib.langs() == {lang: len(ids) for lang, ids in by_lang.items()}
    gen = lib._gen
    for lang, ids in by_lang.items():
        assert set(gen.vectors(lang).ids().tolist()) == ids
        assert set(np.asarray(gen.lexical(lang).ids).tolist()) == ids


# Runs one ingest in a child process and stops it dead at `stage`: it touches the marker and
# sleeps, and the test SIGKILLs it there.
_CHILD = textwrap.dedent(
    """
    import os, shutil, sys, time
    from pathlib import Path
    from index import manifest as layout
    from index.config import LibraryConfig
    from tests.helpers import FakeEmbedder
    from index.library import Library

    home, marker, docs, stage = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]

    def halt():
        marker.touch()
        time.sleep(120)

    def progress(name, done, total):
        if name == stage:
            halt()

    real_replace, real_rmtree = os.replace, shutil.rmtree
    def replace(src, dst, *a, **k):
        if stage == "flip" and Path(dst).name == layout.CURRENT:
            halt()  # every file of the new generation written, CURRENT not yet flipped
        real_replace(src, dst, *a, **k)
        if stage == "flipped" and Path(dst).name == layout.CURRENT:
            halt()  # flipped, the old generation not yet swept
    def rmtree(path, *a, **k):
        if stage in ("sweep", "tidy"):  # half of a stale generation deleted
            for child in sorted(Path(path).rglob("*"))[::2]:
                if child.is_file():
                    child.unlink()
            halt()
        real_rmtree(path, *a, **k)
    os.replace, shutil.rmtree = replace, rmtree
    cfg = LibraryConfig(name="t", home=home, model="fake")
    if stage == "tidy":  # a reader clearing what a killed writer left
        Library.open(cfg, FakeEmbedder())
    else:
        Library.open(cfg, FakeEmbedder(), create=True).ingest([docs], prune=True, progress=progress)
    """
)
STAGES = ["scan", "load", "embed", "index", "flip", "flipped", "sweep", "tidy"]


@pytest.mark.parametrize("stage", STAGES)
def test_sigkill_at_every_stage(tmp_path: Path, stage: str) -> None:
    docs = _folder(tmp_path / "docs", BEFORE)
    cfg = _cfg(tmp_path / "home")
    Library.open(cfg, FakeEmbedder(), create=True).ingest([docs])
    old = _snapshot(Library.open(cfg, FakeEmbedder()))
    _folder(docs, AFTER)
    if stage == "tidy":  # what a writer killed mid-sweep leaves, then a reader at it
        stray = cfg.path / "gen-000009"
        (stray / "lexical-en").mkdir(parents=True)
        (stray / "lexical-en" / "ids.npy").write_bytes(b"half")
    marker = tmp_path / "halted"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(cfg.home), str(marker), str(docs), stage],
        cwd=REPO,
        env=env,
    )
    deadline = time.monotonic() + 90
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists(), f"the child never reached {stage} (rc {proc.poll()})"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    lib = Library.open(cfg, FakeEmbedder())
    now = _snapshot(lib)
    new_state = stage in ("flipped", "sweep")
    assert now == old if not new_state else now != old
    _check_consistent(lib)
    left = sorted(p.name for p in cfg.path.iterdir() if p.name.startswith(("gen-", ".trash")))
    assert left == [layout.current(cfg.path).name]  # the open cleared what the kill left

    lib.ingest([docs], prune=True)  # lock released by the death; the write completes
    clean = _cfg(tmp_path / "clean-home")
    Library.open(clean, FakeEmbedder(), create=True).ingest([docs])
    assert _snapshot(Library.open(cfg, FakeEmbedder())) == _snapshot(
        Library.open(clean, FakeEmbedder())
    )
    _check_consistent(Library.open(cfg, FakeEmbedder()))


# ---- readers during writes ---------------------------------------------------------------------

_READER = textwrap.dedent(
    """
    import json, sys, time, traceback
    from pathlib import Path
    from index.config import LibraryConfig
    from tests.helpers import FakeEmbedder
    from index.library import Library

    home, stop, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
    emb = FakeEmbedder()
    q = emb.embed(["file offset 函数 part"], "query")[0]
    done, errors = 0, []
    while not stop.exists():
        try:  # a fresh process opens the library anew, as each CLI search does
            lib = Library.open(LibraryConfig(name="t", home=home, model="fake"), emb)
            for _ in range(5):
                ids = [i for i, _ in lib.dense(q, 5)] + [i for i, _ in lib.lexical("part", 5)]
                for c in lib.get_chunks(ids):
                    doc = lib.document(c.doc_id)
                    assert doc is None or doc.text[c.start:c.end] == c.text
                done += 1
            lib.close()
            out.with_suffix(".ready").touch()  # searching: the test may start writing
        except Exception:
            errors.append(traceback.format_exc())
    out.write_text(json.dumps({"searches": done, "errors": errors}))
    """
)


def test_searches_from_threads_and_processes_during_ingests(tmp_path: Path) -> None:
    docs = _folder(tmp_path / "docs", BEFORE)
    cfg = _cfg(tmp_path / "home")
    Library.open(cfg, FakeEmbedder(), create=True).ingest([docs])
    stop = tmp_path / "stop"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _READER, str(cfg.home), str(stop), str(tmp_path / f"r{i}")],
            cwd=REPO,
            env=env,
        )
        for i in range(2)
    ]
    shared = Library.open(cfg, FakeEmbedder())  # one library, many threads: the app's case
    q = FakeEmbedder().embed(["file offset 函数 part"], "query")[0]
    counts, errors = [0, 0, 0], []

    def reader(n: int) -> None:
        while not stop.exists():
            try:
                shared.refresh()  # what the app does on every page run
                ids = [i for i, _ in shared.dense(q, 5)] + [i for i, _ in shared.lexical("part", 5)]
                for c in shared.get_chunks(ids):
                    doc = shared.document(c.doc_id)
                    assert doc is None or doc.text[c.start : c.end] == c.text
                shared.documents()
                counts[n] += 1
            except Exception as exc:  # noqa: BLE001 - every error counts, whatever its kind
                errors.append(repr(exc))

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    writer = Library.open(cfg, FakeEmbedder())
    versions = [AFTER, BEFORE, AFTER, {**BEFORE, "x.md": "# X\n\nPart x.\n"}, AFTER]
    try:
        deadline = time.monotonic() + 120  # the readers are searching before the first write
        while not all((tmp_path / f"r{i}.ready").exists() for i in range(2)):
            assert time.monotonic() < deadline, "the reader processes never searched"
            assert all(p.poll() is None for p in procs), "a reader process died"
            time.sleep(0.05)
        for version in versions:
            _folder(docs, version)
            writer.ingest([docs], prune=True)
            time.sleep(0.2)
    finally:
        stop.touch()
        for t in threads:
            t.join(timeout=60)
        for p in procs:
            p.wait(timeout=60)
    results = [json.loads((tmp_path / f"r{i}").read_text()) for i in range(2)]
    assert writer.generation == 1 + len(versions)
    assert errors == [] and all(n > 0 for n in counts), (errors[:3], counts)
    for r in results:
        assert r["errors"] == [] and r["searches"] > 0, r["errors"][:2]

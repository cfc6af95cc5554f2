"""A model change re-embeds a library; `askdocs tune` adapts the model to one library."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from index.config import ADAPTED_MODEL, DEFAULT_MODEL, LibraryConfig
from index.library import Library
from ingest.errors import InputError, ModelMismatchError
from tests.helpers import FakeEmbedder

REPO = Path(__file__).resolve().parents[1]
OLD, NEW = DEFAULT_MODEL, f"{DEFAULT_MODEL}+askdocs-a9"


class Counting(FakeEmbedder):
    def __init__(self, name: str) -> None:
        super().__init__(name=name)
        self.texts: list[str] = []

    def embed(self, texts, kind="passage", progress=None):  # noqa: ANN001, ANN201
        self.texts += texts
        return super().embed(texts, kind, progress)


def _adapted_home(home: Path, e5_adapted_dir: Path) -> Path:
    """A data home whose adapted model is the session's (no rebuild per test)."""
    (home / "models").mkdir(parents=True, exist_ok=True)
    (home / "models" / ADAPTED_MODEL).symlink_to(e5_adapted_dir.resolve())
    return home


def _docs(root: Path, n: int = 3) -> Path:
    root.mkdir(parents=True)
    for i in range(n):
        body = "\n\n".join(
            f"## Topic {i}-{j}\n\nParagraph {j} of note {i} explains caching number {j}. "
            f"It keeps recent results. Old ones are dropped after {j} calls."
            for j in range(12)
        )
        (root / f"note{i}.md").write_text(f"# Note {i}\n\n{body}\n", encoding="utf-8")
    return root


def test_a_new_model_re_embeds_an_old_library_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import index.model.embedder
    from ui.cli import main

    docs = _docs(tmp_path / "docs")
    monkeypatch.setenv("ASKDOCS_HOME", str(tmp_path / "home"))
    cfg = LibraryConfig(name="old", home=tmp_path / "home")
    # built by an askdocs whose default model had no adapter
    monkeypatch.setattr(index.model.embedder, "expected_name", lambda config: OLD)
    Library.open(cfg, Counting(OLD), create=True).ingest([docs])
    # this askdocs: the same model name, new weights
    new = Counting(NEW)
    monkeypatch.setattr(index.model.embedder, "expected_name", lambda config: NEW)
    monkeypatch.setattr(index.model.embedder, "load_embedder", lambda *a, **k: new)
    lib = Library.open(cfg)
    assert lib.stale_vectors
    with pytest.raises(ModelMismatchError, match="re-embed it once: askdocs ingest"):
        lib.embedder  # noqa: B018 - old vectors cannot be searched with the new model
    assert main(["search", "caching", "--library", "old"]) == 2
    assert "askdocs ingest PATH... --library old" in capsys.readouterr().err
    n = sum(lib.langs().values())
    assert main(["ingest", str(docs), "--library", "old"]) == 0
    err = capsys.readouterr().err
    assert f"re-embedding all {n} chunks with {NEW}" in err
    assert len(new.texts) == n  # every chunk once, though no file changed
    lib = Library.open(cfg)
    assert not lib.stale_vectors and lib.manifest.embedder == NEW
    assert lib.dense(new.embed(["caching number 3"], "query")[0], 3)
    new.texts.clear()
    assert main(["ingest", str(docs), "--library", "old"]) == 0
    assert new.texts == []  # done once


def test_tune_refuses_a_missing_or_empty_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from index.model import tune
    from ui.cli import main

    monkeypatch.setenv("ASKDOCS_HOME", str(tmp_path / "home"))
    assert main(["tune", "--library", "nope"]) == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "askdocs ingest PATH --library nope" in err
    (tmp_path / "tiny").mkdir()
    (tmp_path / "tiny" / "a.md").write_text("# A\n\nOne short line.\n", encoding="utf-8")
    plain = LibraryConfig(name="plain", home=tmp_path / "home")
    Library.open(plain, FakeEmbedder(), create=True).ingest([tmp_path / "tiny"])
    with pytest.raises(InputError, match="askdocs ingest --rebuild --model"):
        tune.tune(Library.open(plain, FakeEmbedder()), minutes=1)  # the base model: refused
    cfg = LibraryConfig(name="tiny", home=tmp_path / "home", model=ADAPTED_MODEL)
    lib = Library.open(cfg, FakeEmbedder(), create=True)
    lib.ingest([tmp_path / "tiny"])
    with pytest.raises(InputError, match="too little text"):
        tune.tune(lib, minutes=1)
    lib.delete(lib.documents()[0].doc_id)
    with pytest.raises(InputError, match=r"\(0 pairs"):
        tune.tune(Library.open(cfg, FakeEmbedder()), minutes=1)
    assert not (cfg.path / "adapter.safetensors").exists()


_TUNE = """
import sys
from index.config import LibraryConfig
from index.library import Library
from index.model import finetune, tune
cfg = LibraryConfig(name="t", home=__import__("pathlib").Path(sys.argv[1]), model=sys.argv[3])
real = finetune.train
def marked(*a, progress=None, **k):
    def step(done, total, loss):
        open(sys.argv[2], "w").close()  # training has started
        progress(done, total, loss)
    return real(*a, progress=step, **k)
finetune.train = tune.train = marked
tune.tune(Library.open(cfg), minutes=5, steps=50)
"""


@pytest.mark.model
def test_killed_tune_leaves_the_library_as_it_was(
    tmp_path: Path, e5_adapted, e5_adapted_dir: Path
) -> None:
    home = _adapted_home(tmp_path / "home", e5_adapted_dir)
    docs = _docs(tmp_path / "docs", 4)
    cfg = LibraryConfig(name="t", home=home, model=ADAPTED_MODEL)
    Library.open(cfg, e5_adapted, create=True).ingest([docs])
    before = Library.open(cfg)
    gen, vecs = before.generation, before.vectors(sorted(c for c in _ids(before)), "en")
    marker = tmp_path / "started"
    proc = subprocess.Popen(
        [sys.executable, "-c", _TUNE, str(home), str(marker), ADAPTED_MODEL],
        cwd=REPO,
        env=os.environ.copy(),
    )
    deadline = time.monotonic() + 600  # a busy machine loads the model slowly
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marker.exists(), "tune never started training"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    after = Library.open(cfg)
    assert after.generation == gen and not after.stale_vectors
    assert not (cfg.path / "adapter.safetensors").exists()
    assert np.array_equal(after.vectors(sorted(_ids(after)), "en"), vecs)


def _ids(lib: Library) -> list[int]:
    return [c.chunk_id for d in lib.documents() for c in lib.chunks(d.doc_id)]


@pytest.mark.model
def test_tune_adapts_the_library_and_reset_returns_it(
    tmp_path: Path, e5_adapted, e5_adapted_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    from index.model import tune
    from ui.cli import main

    home = _adapted_home(tmp_path / "home", e5_adapted_dir)
    monkeypatch.setenv("ASKDOCS_HOME", str(home))
    docs = _docs(tmp_path / "docs", 4)
    cfg = LibraryConfig(name="t", home=home, model=ADAPTED_MODEL)
    Library.open(cfg, e5_adapted, create=True).ingest([docs])
    report = tune.tune(Library.open(cfg), minutes=5, steps=2, say=lambda _m: None)
    assert report.steps == 2 and report.chunks == sum(Library.open(cfg).langs().values())
    lib = Library.open(cfg)
    assert lib.manifest.embedder == report.adapter
    assert report.adapter.startswith(f"{DEFAULT_MODEL}+tune-")
    assert not lib.stale_vectors  # the adapter in place is the one that made the vectors
    hits = lib.dense(lib.embedder.embed(["caching number 5"], "query")[0], 3)
    assert hits
    assert main(["model", "info", "--library", "t"]) == 0
    out = capsys.readouterr().out
    assert "askdocs tune" in out and report.adapter in out
    assert main(["tune", "--reset", "--library", "t"]) == 0
    lib = Library.open(cfg)
    assert lib.manifest.embedder == e5_adapted.name and not lib.stale_vectors
    assert not (cfg.path / "adapter.safetensors").exists()

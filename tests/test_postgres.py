"""The PostgreSQL + pgvector store against a real server (pgserver): the same library as the
embedded store, incremental writes, snapshots, a failed or killed ingest, bad URLs.

Fast tests use the FakeEmbedder; the parity test at the end uses the real model.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from index.config import LibraryConfig
from index.library import Library
from ingest.errors import LibraryError
from tests.helpers import FakeEmbedder, question_files

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
QUERIES = [
    "def function default arguments",
    "模块 导入 包",
    "list comprehension and generator expression",
    "异常 处理 try except",
    "the",
    "zzzqqq unknownword",
    "json dumps indent sort_keys",
]


def _docs(folder: Path, size: int = 6000) -> Path:
    """The start of each bundled corpus file (both languages): ~40 chunks, seconds to ingest."""
    folder.mkdir(parents=True, exist_ok=True)
    for f in sorted(CORPUS.iterdir()):
        (folder / f.name).write_text(f.read_text(encoding="utf-8")[:size], encoding="utf-8")
    return folder


def _pair(tmp_path: Path, pg_url: str, name: str) -> tuple[Library, Library]:
    """(embedded, postgres) libraries of the same name, both created empty."""
    emb = FakeEmbedder()
    embedded = LibraryConfig(name=name, home=tmp_path / "home", store="")
    postgres = LibraryConfig(name=name, home=tmp_path / "home-pg", store=pg_url)
    return (
        Library.open(embedded, emb, create=True),
        Library.open(postgres, emb, create=True),
    )


def _assert_same(a: Library, b: Library) -> None:
    """Both stores hold the same documents and chunks and search alike (ids and scores)."""

    def listing(lib: Library) -> list[tuple]:
        return [
            (d.doc_id, d.path, d.source, d.title, d.lang, d.chars, d.chunks)
            for d in lib.documents()
        ]

    assert listing(a) == listing(b)
    assert a.langs() == b.langs() and a.generation == b.generation
    for d in a.documents():
        assert a.document(d.doc_id) == b.document(d.doc_id)
        assert a.chunks(d.doc_id) == b.chunks(d.doc_id)
    emb = FakeEmbedder()
    for q in QUERIES:
        for lang in (None, "en", "zh"):
            la, lb = a.lexical(q, 10, lang), b.lexical(q, 10, lang)
            assert [i for i, _ in la] == [i for i, _ in lb], (q, lang)
            np.testing.assert_allclose([s for _, s in la], [s for _, s in lb], rtol=1e-5)
            qvec = emb.embed([q], kind="query")[0]
            da, db = a.dense(qvec, 10, lang), b.dense(qvec, 10, lang)
            np.testing.assert_allclose([s for _, s in da], [s for _, s in db], atol=1e-5)
            # the same chunks, but which of several exactly tied at the cut is left out is
            # each engine's own choice (the fake embedder ties often; a real model rarely)
            if da:
                cut = da[-1][1] + 1e-5
                assert {i for i, s in da if s > cut} == {i for i, s in db if s > cut}, (q, lang)
    _assert_same_bm25(a, b)
    ids = [i for i, _ in a.lexical("python", 5, "en")]
    assert ids and np.allclose(a.vectors(ids, "en"), b.vectors(ids, "en"), atol=1e-6)
    assert a.get_chunks(ids) == b.get_chunks(ids)


def _assert_same_bm25(a: Library, b: Library) -> None:
    """BM25 from the term blocks equals the embedded bm25s index bit for bit: ids, order
    and float32 scores, for queries of words the chunks hold (repeats and both languages
    included) and the fixed ones."""
    from ingest.text import tokenize

    words = sorted({t for d in a.documents() for c in a.chunks(d.doc_id) for t in tokenize(c.text)})
    rng = np.random.default_rng(7)
    queries = [" ".join(rng.choice(words, size=int(rng.integers(1, 7)))) for _ in range(60)]
    queries += [w for w in words[:: max(1, len(words) // 40)]]
    for q in queries + QUERIES:
        for lang in (None, "en", "zh"):
            assert a.lexical(q, 20, lang) == b.lexical(q, 20, lang), (q, lang)


def test_ingest_matches_the_embedded_store(tmp_path: Path, pg_url: str) -> None:
    docs = _docs(tmp_path / "docs")
    embedded, postgres = _pair(tmp_path, pg_url, "same")
    for lib in (embedded, postgres):
        report = lib.ingest([docs])
        assert report.added == 4 and report.chunks_added > 20
    _assert_same(embedded, postgres)
    stats = postgres.stats()
    assert stats.path.startswith("postgresql://") and "askdocs_same" in stats.path
    assert stats.bytes["vectors"] > 0 and stats.bytes["lexical"] > 0
    # a second process (another Library) sees the same library
    again = Library.open(postgres.config, FakeEmbedder())
    assert again.generation == 1 and again.langs() == postgres.langs()


def test_incremental_update_prune_and_delete(tmp_path: Path, pg_url: str) -> None:
    docs = _docs(tmp_path / "docs")
    embedded, postgres = _pair(tmp_path, pg_url, "incr")
    for lib in (embedded, postgres):
        lib.ingest([docs])
    # unchanged: nothing written, the generation stays
    report = postgres.ingest([docs])
    assert report.unchanged == 4 and postgres.generation == 1
    # one file changed, one removed (prune): only they are redone
    first, second = sorted(docs.iterdir())[:2]
    first.write_text(
        first.read_text(encoding="utf-8") + "\n\nA new closing paragraph about zebras.\n"
    )
    second.unlink()
    for lib in (embedded, postgres):
        report = lib.ingest([docs], prune=True)
        assert (report.updated, report.removed, report.unchanged) == (1, 1, 2)
    _assert_same(embedded, postgres)
    assert postgres.lexical("zebras", 3)
    # delete one document
    doc_id = postgres.documents()[0].doc_id
    assert embedded.delete(doc_id) and postgres.delete(doc_id)
    assert not postgres.delete(doc_id)
    _assert_same(embedded, postgres)
    assert postgres.generation == 3


def test_a_reader_keeps_its_generation_until_refresh(tmp_path: Path, pg_url: str) -> None:
    docs = _docs(tmp_path / "docs")
    _, writer = _pair(tmp_path, pg_url, "snap")
    writer.ingest([docs])
    reader = Library.open(writer.config, FakeEmbedder())
    before = [d.doc_id for d in reader.documents()]
    hits = reader.lexical("python", 5)
    writer.delete(before[0])
    # the reader's snapshot: the old generation, whole
    assert reader.generation == 1 and [d.doc_id for d in reader.documents()] == before
    assert reader.lexical("python", 5) == hits
    assert reader.refresh() and reader.generation == 2
    assert [d.doc_id for d in reader.documents()] == before[1:]
    assert not reader.refresh()


def test_a_failed_ingest_leaves_the_old_generation(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from index.postgres import writer as transaction

    docs = _docs(tmp_path / "docs")
    _, lib = _pair(tmp_path, pg_url, "fail")
    lib.ingest([docs])
    listing = lib.documents()
    (docs / "extra.md").write_text("# Extra\n\nAn extra file about walruses.\n", encoding="utf-8")

    def broken(self, conn, q, lang, blocks):  # noqa: ANN001 - after documents and chunks went in
        raise RuntimeError("disk full (simulated)")

    monkeypatch.setattr(transaction.PgWriter, "_blocks", broken)
    with pytest.raises(LibraryError, match="disk full"):
        lib.ingest([docs])
    monkeypatch.undo()
    fresh = Library.open(lib.config, FakeEmbedder())
    assert fresh.generation == 1 and fresh.documents() == listing
    assert not fresh.lexical("walruses", 3)
    report = fresh.ingest([docs])  # the lock was released, and the write works now
    assert report.added == 1 and fresh.generation == 2 and fresh.lexical("walruses", 3)


KILLED = """
import sys, time
from pathlib import Path
from index.config import LibraryConfig
from index.library import Library
from index.postgres import writer as transaction
from tests.helpers import FakeEmbedder

real = transaction.PgWriter._blocks
def slow(self, conn, q, lang, blocks):
    real(self, conn, q, lang, blocks)
    print("inside the transaction", flush=True)
    time.sleep(120)
transaction.PgWriter._blocks = slow
config = LibraryConfig(name="killed", home=Path(sys.argv[2]), store=sys.argv[1])
Library.open(config, FakeEmbedder(), create=True).ingest([sys.argv[3]])
"""


def test_a_killed_ingest_leaves_the_old_generation(tmp_path: Path, pg_url: str) -> None:
    docs = _docs(tmp_path / "docs")
    _, lib = _pair(tmp_path, pg_url, "killed")
    lib.ingest([docs])
    listing = lib.documents()
    (docs / "extra.md").write_text("# Extra\n\nAn extra file about walruses.\n", encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(KILLED), pg_url, str(tmp_path / "h"), str(docs)],
        stdout=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )
    try:
        assert proc.stdout.readline().strip() == b"inside the transaction"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    reader = Library.open(lib.config, FakeEmbedder())
    assert reader.generation == 1 and reader.documents() == listing
    assert not reader.lexical("walruses", 3)
    # the server rolled it back and dropped the dead writer's lock: the next write goes through
    report = reader.ingest([docs])
    assert report.added == 1 and reader.generation == 2 and reader.lexical("walruses", 3)


def test_a_second_writer_is_refused_while_one_writes(tmp_path: Path, pg_url: str) -> None:
    from index.postgres.generation import connect

    docs = _docs(tmp_path / "docs")
    _, lib = _pair(tmp_path, pg_url, "locked")
    holder = connect(pg_url)
    try:
        key = "SELECT pg_try_advisory_lock(hashtext('askdocs_locked'))"
        assert holder.execute(key).fetchone()[0]
        with pytest.raises(LibraryError, match="being written by another") as err:
            lib.ingest([docs])
        assert "wait for that ingest" in err.value.hint
    finally:
        holder.close()
    assert lib.ingest([docs]).added == 4


@pytest.mark.parametrize(
    "url, said",
    [
        ("postgresql://nobody@127.0.0.1:1/askdocs", "Cannot connect to the PostgreSQL store"),
        ("postgresql://user:secret@/db?host=/nonexistent-dir", "Cannot connect"),
        ("mysql://localhost/db", "is not a store askdocs knows"),
    ],
)
def test_a_bad_store_url_is_a_message_with_a_hint(
    url: str, said: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from ui.cli import main

    os.environ["ASKDOCS_HOME"] = str(tmp_path)
    try:
        code = main(["docs", "--store", url])
    finally:
        os.environ.pop("ASKDOCS_HOME")
    err = capsys.readouterr().err
    assert code == 2 and said in err and "\n  → " in err and "--store" in err
    assert "Traceback" not in err and "secret" not in err


def test_the_store_comes_from_the_environment(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """`ASKDOCS_STORE` chooses the store where `--store` is not given; the CLI reads it."""
    docs = _docs(tmp_path / "docs")
    _, lib = _pair(tmp_path, pg_url, "envstore")
    lib.ingest([docs])
    monkeypatch.setenv("ASKDOCS_STORE", pg_url)
    monkeypatch.setenv("ASKDOCS_HOME", str(tmp_path / "elsewhere"))
    from ui.cli import main

    assert main(["docs", "--library", "envstore", "--json"]) == 0
    out = capsys.readouterr().out
    assert all(d.source in out for d in lib.documents())


class _Once:
    """The real model, each passage embedded once: both stores get the very same vectors."""

    def __init__(self, model) -> None:  # noqa: ANN001
        self.model, self.name, self.dim = model, model.name, model.dim
        self.seen: dict[tuple[str, str], np.ndarray] = {}

    def embed(self, texts: list[str], kind: str = "passage", progress=None) -> np.ndarray:  # noqa: ANN001
        todo = [t for t in dict.fromkeys(texts) if (kind, t) not in self.seen]
        if todo:
            for t, v in zip(todo, self.model.embed(todo, kind=kind), strict=True):
                self.seen[kind, t] = v
        return np.stack([self.seen[kind, t] for t in texts])


@pytest.fixture(scope="session")
def real_pair(tmp_path_factory, e5, e5_dir, pg_url) -> tuple[Library, Library]:  # noqa: ANN001
    """One real-model library of the bundled corpus's first ~25k characters per file (both
    languages, ~150 chunks), in the embedded store and in PostgreSQL."""
    from tests.helpers import link_model

    root = tmp_path_factory.mktemp("pg-real")
    docs = _docs(root / "docs", size=25_000)
    model = _Once(e5)
    libs = []
    for store, home in (("", "home"), (pg_url, "home-pg")):
        config = LibraryConfig(name="real", home=link_model(root / home, e5_dir), store=store)
        lib = Library.open(config, model, create=True)
        lib.ingest([docs])
        libs.append(lib)
    return libs[0], libs[1]


@pytest.mark.model
@pytest.mark.shared
def test_search_parity_with_the_embedded_store(real_pair: tuple[Library, Library]) -> None:
    """The shipped retriever over both stores: the same top 10 for >= 95% of dev questions
    (bench/stores.py measures it on the whole bundled library)."""
    from assistant import evaluate
    from assistant.retrieve import Retriever

    embedded, postgres = real_pair
    assert embedded.langs() == postgres.langs() and sum(embedded.langs().values()) > 100
    questions = evaluate.load_questions(question_files()[0])
    ra, rb = Retriever(embedded), Retriever(postgres)
    same, found = 0, 0
    for q in questions:
        a, b = ra.search(q.question, k=10), rb.search(q.question, k=10)
        ids_a = [h.chunk.chunk_id for h in a.hits]
        same += ids_a == [h.chunk.chunk_id for h in b.hits]
        found += bool(ids_a)
        assert a.answerable == b.answerable, q.id
    assert found > len(questions) / 2  # the questions reach these chunks at all
    assert same / len(questions) >= 0.95, f"{same} of {len(questions)}"


def test_two_api_servers_share_one_library(tmp_path: Path, pg_url: str) -> None:
    """Two `askdocs serve` apps (each its own home, as on two machines) over one PostgreSQL
    library: an upload through one is searchable through the other at once; so is a delete."""
    from fastapi.testclient import TestClient

    from assistant.config import AssistantConfig
    from ui.api import create_app
    from ui.serving import Served

    docs = _docs(tmp_path / "docs", size=3000)
    config = LibraryConfig(name="shared", home=tmp_path / "h1", model="fake", store=pg_url)
    Library.open(config, FakeEmbedder(), create=True).ingest([docs])
    apps = []
    for home in ("h1", "h2"):
        cfg = AssistantConfig(
            library=LibraryConfig(name="shared", home=tmp_path / home, model="fake", store=pg_url)
        )
        app = create_app(Served(cfg, embedder=FakeEmbedder()))
        apps.append(TestClient(app, base_url="http://127.0.0.1", headers={"X-Askdocs": "1"}))
    one, two = apps
    assert one.get("/health").json()["generation"] == two.get("/health").json()["generation"] == 1
    r = one.post(
        "/documents", files=[("files", ("kettle.md", "# Kettle\n\nDescale the kettle monthly.\n"))]
    )
    assert r.status_code == 201, r.text
    assert two.get("/health").json()["generation"] == 2
    hits = two.post("/search", json={"query": "descale kettle"}).json()["hits"]
    assert hits[0]["source"].endswith("kettle.md")
    doc_id = hits[0]["doc_id"]
    assert two.get(f"/documents/{doc_id}").json()["chunks"]
    assert two.delete(f"/documents/{doc_id}").status_code == 200
    assert one.get(f"/documents/{doc_id}").status_code == 404
    assert one.get("/health").json()["generation"] == 3


def test_hnsw_graphs_where_the_backend_asks_for_them(tmp_path: Path, pg_url: str) -> None:
    """Small languages are searched exactly, with no graph; `vector_backend="hnsw"` (as a
    language above FLAT_MAX) builds one per language, which the search then uses."""
    from dataclasses import replace

    from index.postgres.generation import connect

    docs = _docs(tmp_path / "docs")
    exact, graph = _pair(tmp_path, pg_url, "graph")
    graph = Library.open(replace(graph.config, vector_backend="hnsw"), FakeEmbedder(), create=True)
    for lib in (exact, graph):
        lib.ingest([docs])
    assert set(graph.stats().backends.values()) == {"hnsw"}
    conn = connect(pg_url)
    try:
        names = "SELECT indexname FROM pg_indexes WHERE schemaname = %s AND indexname LIKE 'chunks_hnsw%%'"
        assert {r[0] for r in conn.execute(names, ("askdocs_graph",))} == {
            "chunks_hnsw_en",
            "chunks_hnsw_zh",
        }
        assert not conn.execute(names, ("askdocs_same",)).fetchall()
    finally:
        conn.close()
    emb = FakeEmbedder()
    for q in QUERIES:
        qvec = emb.embed([q], kind="query")[0]
        got, want = graph.dense(qvec, 5, "en"), exact.dense(qvec, 5, "en")
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want], atol=1e-5)


def _sql(url: str, *statements: str) -> list:
    from index.postgres.generation import connect

    conn = connect(url)
    try:
        return [
            conn.execute(s).fetchall()
            if s.lstrip().startswith("SELECT")
            else conn.execute(s) and None
            for s in statements
        ]
    finally:
        conn.close()


def test_the_term_cache_never_serves_another_generation(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader caches scored term blocks for its generation: the same answers until
    refresh (its snapshot), then the new generation's, equal to the embedded store's."""
    docs = _docs(tmp_path / "docs")
    embedded, writer = _pair(tmp_path, pg_url, "cache")
    for lib in (embedded, writer):
        lib.ingest([docs])
    reader = Library.open(writer.config, FakeEmbedder())
    query = "python zebras module import 模块"
    before = {lang: reader.lexical(query, 20, lang) for lang in (None, "en", "zh")}
    assert before[None] and not reader.lexical("zebras", 5)  # cached: "zebras" is absent
    first = sorted(docs.iterdir())[0]
    first.write_text(first.read_text(encoding="utf-8") + "\n\nZebras import python modules.\n")
    doc_id = next(
        d.doc_id for d in embedded.documents() if d.source.endswith(sorted(docs.iterdir())[1].name)
    )
    for lib in (embedded, writer):
        lib.ingest([docs])
        assert lib.delete(doc_id)
    assert {lang: reader.lexical(query, 20, lang) for lang in before} == before
    assert not reader.lexical("zebras", 5)
    assert reader.refresh() and reader.generation == writer.generation == 3
    for lang in before:
        assert reader.lexical(query, 20, lang) == embedded.lexical(query, 20, lang)
    assert reader.lexical("zebras", 5) == embedded.lexical("zebras", 5) != []
    # a cache of a few bytes drops blocks as it goes, and answers the same
    from index.postgres import generation as postgres

    monkeypatch.setattr(postgres, "TERM_CACHE", 1)
    small = Library.open(writer.config, FakeEmbedder())
    _assert_same_bm25(embedded, small)
    assert len(small._gen._blocks) <= 2 * 60


def test_a_tokenizer_change_and_an_old_layout_rebuild_the_term_blocks(
    tmp_path: Path, pg_url: str
) -> None:
    """The blocks come back from the chunks' text: after a tokenizer-version bump (tokens
    and blocks wiped here, so only re-tokenizing can restore them), and for a library written
    before term blocks (a postings table): searching it says what to run, ingest rebuilds."""
    docs = _docs(tmp_path / "docs")
    embedded, lib = _pair(tmp_path, pg_url, "retok")
    for one in (embedded, lib):
        one.ingest([docs])
    s = "askdocs_retok"
    _sql(
        pg_url,
        f"UPDATE {s}.meta SET manifest = jsonb_set(manifest, '{{tokenizer_version}}', '2')",
        f"UPDATE {s}.chunks SET tokens = '', dl = 1",
        f"DELETE FROM {s}.terms",
    )
    lib = Library.open(lib.config, FakeEmbedder())
    assert lib.stale_tokens
    report = lib.ingest([docs])
    assert report.retokenized == sum(lib.langs().values()) and not lib.stale_tokens
    _assert_same_bm25(embedded, lib)
    # the layout before term blocks: no terms table, lang_stats without arrays (dropping a
    # table waits for every reader's snapshot to end)
    lib.close()
    _sql(
        pg_url,
        f"DROP TABLE {s}.terms, {s}.lang_stats",
        f"CREATE TABLE {s}.lang_stats (lang text PRIMARY KEY, n bigint, total bigint)",
        f"CREATE TABLE {s}.postings (lang text, term text, chunk_id bigint, tf int, dl int)",
    )
    old = Library.open(lib.config, FakeEmbedder())
    with pytest.raises(LibraryError, match="older askdocs") as err:
        old.lexical("python", 5)
    assert "askdocs ingest" in err.value.hint
    assert old.ingest([docs]).retokenized > 0
    _assert_same_bm25(embedded, old)
    assert _sql(pg_url, f"SELECT to_regclass('{s}.postings')")[0] == [(None,)]


def test_removing_most_chunks_compacts_the_rows(tmp_path: Path, pg_url: str) -> None:
    """Rows freed by removals stay holes until they outnumber the chunks; then the language
    is rebuilt without them. BM25 equals the embedded store's all along."""
    docs = _docs(tmp_path / "docs", size=12_000)
    embedded, lib = _pair(tmp_path, pg_url, "compact")
    for one in (embedded, lib):
        one.ingest([docs])
    rows = "SELECT lang, n, length(ids) / 8 FROM askdocs_compact.lang_stats ORDER BY lang"
    holes = []
    for d in sorted(embedded.documents(), key=lambda d: d.chunks)[:-1]:
        assert embedded.delete(d.doc_id) and lib.delete(d.doc_id)
        _assert_same_bm25(embedded, lib)
        holes.append({lang: size - n for lang, n, size in _sql(pg_url, rows)[0]})
    assert any(sum(h.values()) for h in holes)  # holes were kept at first
    for lang, n, size in _sql(pg_url, rows)[0]:
        assert size <= 2 * n, lang  # and never outnumber the chunks


def test_flat_languages_search_alike_in_the_reader_and_in_sql(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flat language is searched in numpy over vectors the reader caches; one bigger than
    FLAT_MAX (`vector_backend="flat"` asked for) by an exact scan in SQL: the same hits."""
    from index.postgres import search as pgsearch

    docs = _docs(tmp_path / "docs")
    embedded, lib = _pair(tmp_path, pg_url, "flat")
    for one in (embedded, lib):
        one.ingest([docs])
    emb = FakeEmbedder()
    vecs = [emb.embed([q], kind="query")[0] for q in QUERIES]
    cached = [lib.dense(v, 8, lang) for v in vecs for lang in ("en", "zh")]
    assert lib._gen._flat  # loaded once for the generation
    monkeypatch.setattr(pgsearch, "FLAT_MAX", 1)
    scanned = Library.open(lib.config, FakeEmbedder())
    got = [scanned.dense(v, 8, lang) for v in vecs for lang in ("en", "zh")]
    assert not scanned._gen._flat
    for a, b in zip(cached, got, strict=True):
        np.testing.assert_allclose([s for _, s in a], [s for _, s in b], atol=1e-5)
    ids = [i for i, _ in cached[0]]
    assert np.allclose(scanned.vectors(ids, "en"), lib.vectors(ids, "en"), atol=1e-6)


@pytest.mark.parametrize("name", ['q"x', "team a", "o'brien"])
def test_a_library_name_that_needs_quoting(tmp_path: Path, pg_url: str, name: str) -> None:
    """`--library 'q"x'` was written, then read as missing, and every later ingest failed with
    `relation "meta" already exists`: its schema name is now quoted everywhere."""
    docs = _docs(tmp_path / "docs", size=1500)
    config = LibraryConfig(name=name, home=tmp_path / "home", model="fake", store=pg_url)
    first = Library.open(config, FakeEmbedder(), create=True)
    assert first.ingest([docs]).added == len(list(docs.iterdir()))
    again = Library.open(config, FakeEmbedder())  # the library exists, with its documents
    assert len(again.documents()) == len(list(docs.iterdir())) and again.generation == 1
    (docs / "more.md").write_text("# More\n\nA second ingest into the same library.\n", "utf-8")
    assert again.ingest([docs]).added == 1 and again.generation == 2
    other = LibraryConfig(name="plain", home=tmp_path / "home", model="fake", store=pg_url)
    assert Library.open(other, FakeEmbedder(), create=True).documents() == []  # apart


# One ingest process of the test below: embeds only once the other process is embedding too
# (a barrier of marker files), so both must embed outside the writer lock to finish at all.
MEETING = """
import json, sys, time
from pathlib import Path
from index.config import LibraryConfig
from index.library import Library
from tests.helpers import FakeEmbedder

me, other, meet = sys.argv[3], sys.argv[4], Path(sys.argv[5])

class Meeting(FakeEmbedder):
    met = False

    def embed(self, texts, kind="passage", progress=None):
        if kind == "passage" and not self.met:
            (meet / me).touch()
            deadline = time.monotonic() + 120
            while not (meet / other).exists():
                assert time.monotonic() < deadline, "the other ingest never embedded"
                time.sleep(0.05)
            self.met = True
        return super().embed(texts, kind, progress)

config = LibraryConfig(name=sys.argv[2], home=meet / ("home-" + me), store=sys.argv[1])
lib = Library.open(config, Meeting(), create=True)
report = lib.ingest(sys.argv[6:], wait=120)
print(json.dumps({"added": report.added, "unchanged": report.unchanged,
                  "failed": report.failed, "chunks": report.chunks_added}))
"""


def _folders(root: Path) -> dict[str, Path]:
    """Three folders of slices of the bundled corpus (both languages): 2, 2 and 3 files."""
    parts = {}
    files = sorted(CORPUS.iterdir())
    for name, chosen, offset in (("x", files[:2], 0), ("y", files[2:], 0), ("z", files[1:], 8000)):
        folder = parts[name] = root / name
        folder.mkdir(parents=True)
        for f in chosen:
            text = f.read_text(encoding="utf-8")[offset : offset + 5000]
            (folder / f"{name}-{f.name}").write_text(text, encoding="utf-8")
    return parts


@pytest.mark.parametrize("overlap", [False, True], ids=["disjoint", "overlapping"])
def test_two_ingest_processes_embed_side_by_side_and_commit_each_file_once(
    tmp_path: Path, pg_url: str, overlap: bool
) -> None:
    import json

    folders = _folders(tmp_path / "docs")
    x, y, z = (str(folders[k]) for k in "xyz")
    name = f"two-{'overlap' if overlap else 'disjoint'}"
    given = ([x, y], [y, z]) if overlap else ([x], [y, z])
    meet = tmp_path / "meet"
    meet.mkdir()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", MEETING, pg_url, name, me, other, str(meet), *paths],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=ROOT,
            text=True,
        )
        for me, other, paths in (("a", "b", given[0]), ("b", "a", given[1]))
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert all(r["failed"] == 0 for r in reports), reports
    # every file committed once: the overlap's two files by exactly one of the processes
    assert sum(r["added"] for r in reports) == 7
    assert sum(r["unchanged"] for r in reports) == (2 if overlap else 0)

    both = Library.open(LibraryConfig(name=name, home=tmp_path / "h", store=pg_url), FakeEmbedder())
    one = Library.open(
        LibraryConfig(name=f"{name}-one", home=tmp_path / "h1", store=pg_url),
        FakeEmbedder(),
        create=True,
    )
    assert one.ingest([x, y, z]).added == 7
    assert both.generation == 2 and one.generation == 1  # two commits, one each
    paths = sorted(d.path for d in both.documents())
    assert paths == sorted(d.path for d in one.documents()) and len(set(paths)) == 7
    ids = {lang: sorted(c.chunk_id for d in one.documents() for c in one.chunks(d.doc_id)
                        if c.lang == lang) for lang in one.langs()}  # fmt: skip
    assert {
        lang: sorted(c.chunk_id for d in both.documents() for c in both.chunks(d.doc_id)
                     if c.lang == lang) for lang in both.langs()
    } == ids  # fmt: skip
    for lang, chunk_ids in ids.items():
        cos = (both.vectors(chunk_ids, lang) * one.vectors(chunk_ids, lang)).sum(1)
        assert cos.min() > 0.9999
    for query in QUERIES:
        assert both.lexical(query, 5) == one.lexical(query, 5)

"""Hostile input: what a user, a file or a folder can throw at askdocs. Nothing escapes as a
traceback, nothing already in the library changes, every stored offset holds.

Property tests (hypothesis) run with the fake embedder and modest example counts so the whole
module stays well inside the normal test run; the CLI edges run askdocs as a user would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index.config import LibraryConfig
from index.library import Library
from ingest.chunking import ChunkSettings, chunk_document
from ingest.errors import InputError
from ingest.loading import FORMATS, load_paths, parse
from tests.helpers import FakeEmbedder, link_model

REPO = Path(__file__).resolve().parent.parent
SEED_DOCS = {
    "files.md": "# Files\n\n## Seeking\n\nos.lseek moves the file offset; SEEK_END seeks from "
    "the end.\n\n## Closing\n\nThe with statement closes files for you.\n",
    "函数.md": "# 函数\n\n## 定义函数\n\n使用 def 关键字定义函数，函数可以有默认参数值。\n",
}

# A CLI process whose model is the fake embedder: the edges of the CLI, at the speed of a unit
# test. It stands in for `askdocs` with $ASKDOCS_HOME and --model fake.
FAKE_CLI = textwrap.dedent(
    """
    import sys
    import index.model.embedder
    from tests.helpers import FakeEmbedder
    index.model.embedder.load_embedder = lambda *a, **k: FakeEmbedder()
    from ui.cli import main
    sys.exit(main(sys.argv[1:]))
    """
)


def _seed(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in SEED_DOCS.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("hostile-home")
    docs = _seed(home / "docs")
    cfg = LibraryConfig(name="default", home=home, model="fake")
    Library.open(cfg, FakeEmbedder(), create=True).ingest([docs])
    return home


def _askdocs(home: Path, *args: str | bytes, close_stdout: bool = False) -> tuple[int, str, str]:
    """Run the CLI in a process; close_stdout: the reader is gone before anything is written
    (`| head -1` once head has its line)."""
    env = dict(os.environ, ASKDOCS_HOME=str(home), PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-c", FAKE_CLI, *args]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if close_stdout:
        proc.stdout.close()
        err = proc.stderr.read()
        proc.wait(timeout=120)
        return proc.returncode, "", err.decode("utf-8", "replace")
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


# ---- the CLI edge -----------------------------------------------------------------------------


@pytest.mark.parametrize("as_json", [False, True])
def test_question_with_bytes_that_are_not_utf8(cli_home: Path, as_json: bool) -> None:
    extra = ["--json"] if as_json else []
    code, out, err = _askdocs(cli_home, "search", b"caf\xe9 lseek", "--model", "fake", *extra)
    assert code == 0, err
    assert "Traceback" not in err and "not UTF-8" in err
    if as_json:
        assert json.loads(out)["query"] == "caf\ufffd lseek"
    assert "lseek" in out


@pytest.mark.parametrize(
    "args",
    [
        ["search", "file offset", "--model", "fake"],
        ["search", "file offset", "--model", "fake", "--json"],
        ["ingest", "--dry-run", "--json", "docs"],
        ["docs", "--model", "fake"],
    ],
)
def test_a_closed_pipe_is_a_quiet_exit(cli_home: Path, args: list[str]) -> None:
    args = [str(cli_home / a) if a == "docs" and args[0] == "ingest" else a for a in args]
    code, _, err = _askdocs(cli_home, *args, close_stdout=True)
    assert err == "" and code == 141  # as a shell reports SIGPIPE; no traceback, no noise


@pytest.mark.parametrize("k", ["-3", "0", "many"])
@pytest.mark.parametrize("command", ["search", "eval"])
def test_k_below_one_is_a_usage_error(
    cli_home: Path, k: str, command: str, capsys: pytest.CaptureFixture
) -> None:
    from ui.cli import main

    with pytest.raises(SystemExit) as exit_:
        main([command, "anything", "-k", k])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "-k" in err and "1 or more" in err


@pytest.mark.parametrize(
    ("name", "data", "reason"),
    [
        ("huge.txt", None, "too large"),
        ("broken.pdf", b"%PDF-1.4\n1 0 obj << >> garbage", "broken PDF"),
    ],
)
@pytest.mark.parametrize("dry", [True, False])
def test_hint_after_a_file_that_could_not_be_read_names_the_reason(
    tmp_path: Path,
    name: str,
    data: bytes | None,
    reason: str,
    dry: bool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    from ui.cli import main

    path = tmp_path / name
    if data is None:
        with open(path, "wb") as fh:
            fh.truncate(21 * 1024 * 1024)  # sparse
    else:
        path.write_bytes(data)
    monkeypatch.setenv("ASKDOCS_HOME", str(tmp_path / "home"))
    assert main(["ingest", str(path), *(["--dry-run"] if dry else [])]) == 2
    err = capsys.readouterr().err
    assert reason in err and "warning above" in err
    assert ".md" not in err.split("→")[-1]  # the hint points at the warning, not at file types


# ---- property tests: loaders, chunker, store ---------------------------------------------------

SMALL = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SUFFIXES = sorted(FORMATS) + [".TXT", ".Md", ".conf", ""]


def _check_document(data: bytes, name: str) -> None:
    """parse either refuses with InputError or gives a Document that keeps every promise."""
    try:
        doc = parse(data, name, name)
    except InputError as exc:
        assert exc.message and exc.hint
        return
    assert doc.text.strip()
    for field in (doc.text, doc.title, doc.source):
        field.encode("utf-8")  # no lone surrogates: storable and printable
    assert all(0 <= p <= len(doc.text) for p in doc.page_starts)
    for settings_ in (ChunkSettings(), ChunkSettings(size=120, overlap=30)):
        chunks = chunk_document(doc, settings_)
        assert chunks
        for c in chunks:
            assert 0 <= c.start < c.end <= len(doc.text)
            assert c.text == doc.text[c.start : c.end]


@SMALL
@given(data=st.binary(max_size=3000), suffix=st.sampled_from(SUFFIXES))
def test_random_bytes_are_a_document_or_one_clear_refusal(data: bytes, suffix: str) -> None:
    _check_document(data, "f" + suffix)


@SMALL
@given(
    text=st.text(st.characters(exclude_categories=["Cs"]), max_size=2000),  # valid Unicode
    suffix=st.sampled_from(SUFFIXES),
    encoding=st.sampled_from(["utf-8", "utf-16", "gb18030", "utf-8-sig"]),
)
def test_random_unicode_in_any_encoding(text: str, suffix: str, encoding: str) -> None:
    try:
        data = text.encode(encoding)
    except UnicodeEncodeError:
        data = text.encode("utf-8")
    _check_document(data, "f" + suffix)


_OPEN = {
    ".html": ["<div>", "<b>", "<ul><li>", "<table><tr><td>", "<h2>", "<pre>", "<a href=x>"],
    ".md": ["> ", "- ", "  ", "# ", "```\n", "* ", "1. ", "<div>", "[", "**"],
    ".rst": ["  ", "* ", ".. note::\n\n", "==\n", "- "],
}


@SMALL
@given(
    suffix=st.sampled_from(sorted(_OPEN)),
    depth=st.integers(1, 4000),
    pick=st.integers(0, 9),
    words=st.text(min_size=1, max_size=40),
)
def test_markup_nested_thousands_deep(suffix: str, depth: int, pick: int, words: str) -> None:
    # One opener repeated `depth` times: a tag inside a tag, a quote inside a quote, ...
    opener = _OPEN[suffix][pick % len(_OPEN[suffix])]
    body = opener * depth + words + " deep words\n" + opener * (depth // 2) + "more\n"
    _check_document(body.encode("utf-8"), "f" + suffix)


# ---- property tests: a library under hostile folders -------------------------------------------

RESERVED = [
    b"CON.md", b"nul.txt", b"aux.MD", b"-rf.md", b" .md", b"..md", b"line\nbreak.md",
    b"tab\there.txt", b"\xe2\x80\xaeevil\xe2\x80\xaddm.txt", b"%41percent%.md", b"fs:raw.md",
    b"back\\slash.md", b"caf\xe9.md", b"\xff\xfe.html", b"\x80.rst", b"x" * 252 + b".md",
    "名字.md".encode(), "名字".encode("gb18030") + b".txt", b"a*b?[c].md", b"$(reboot).md",
]  # fmt: skip
names = st.one_of(
    st.sampled_from(RESERVED),
    st.binary(min_size=1, max_size=60).map(lambda b: b.replace(b"/", b"_").replace(b"\0", b"_")),
).map(lambda raw: raw[:240] + b".md" if b"." not in raw[-6:] else raw[:250])


def _state(lib: Library) -> dict:
    """Every stored document with its text and chunks: what must not change under it."""
    out = {}
    for info in lib.documents():
        doc = lib.document(info.doc_id)
        out[info.path] = (info.doc_id, doc.text, tuple(lib.chunks(info.doc_id)))
    return out


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """A library holding the seed documents; each example works on a copy of it."""
    home = tmp_path_factory.mktemp("hostile-lib")
    cfg = LibraryConfig(name="seed", home=home, model="fake")
    lib = Library.open(cfg, FakeEmbedder(), create=True)
    lib.ingest([_seed(home / "docs")])
    return cfg.path, _state(lib)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    files=st.lists(st.tuples(names, st.binary(max_size=600)), min_size=1, max_size=6),
    prune=st.booleans(),
)
def test_hostile_folder_never_breaks_the_library(
    seeded: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory, files, prune: bool
) -> None:
    import shutil

    lib_dir, before = seeded
    work = tmp_path_factory.mktemp("case")
    home = work / "home"
    shutil.copytree(lib_dir, home / "libraries" / "seed")
    cfg = LibraryConfig(name="seed", home=home, model="fake")
    assert cfg.path == home / "libraries" / "seed", "the layout of $ASKDOCS_HOME changed"
    folder = work / "incoming"
    folder.mkdir()
    written = 0
    for raw, data in files:
        try:
            with open(os.fsencode(folder) + b"/" + raw, "wb") as fh:
                fh.write(data)
            written += 1
        except OSError:
            continue  # a name this file system refuses (too long, ...): nothing to test
    lib = Library.open(cfg, FakeEmbedder())
    report = lib.ingest([folder], prune=prune)
    after = _state(lib)
    for path, kept in before.items():  # nothing already in the library changed
        assert after[path] == kept
    for path, (_doc_id, text, chunks) in after.items():  # every stored offset holds
        path.encode("utf-8")
        for c in chunks:
            assert c.text == text[c.start : c.end]
    added = {p: v for p, v in after.items() if p not in before}
    assert len(added) == report.added
    assert len(load_paths([folder]).documents) == report.added  # --dry-run agrees
    again = Library.open(cfg, FakeEmbedder()).ingest([folder])
    assert again.added == again.updated == 0  # every stored name finds its file again
    for warning in report.warnings:
        warning.encode("utf-8")


def test_a_folder_named_in_bytes_that_are_not_utf8(tmp_path: Path) -> None:
    folder = os.fsencode(tmp_path) + b"/notes-\xe9\xff"
    os.mkdir(folder)
    with open(folder + b"/caf\xe9.md", "wb") as fh:
        fh.write(b"# Coffee\n\nEspresso needs finely ground beans.\n")
    home = tmp_path / "home"
    for args in (["ingest", "--dry-run", folder], ["ingest", folder, "--model", "fake"]):
        code, out, err = _askdocs(home, *args)
        assert code == 0 and "Traceback" not in err, err
        assert "\ufffd" in out or "1 added" in out
    code, out, err = _askdocs(home, "docs", "--model", "fake")
    assert code == 0 and "caf\ufffd.md" in out, err
    code, out, err = _askdocs(home, "ingest", "--prune", folder, "--model", "fake")
    assert code == 0 and "1 unchanged" in out, err


def test_devices_fifos_and_oversized_files_are_never_opened(tmp_path: Path) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "ok.md").write_text("# Ok\n\nfine\n", encoding="utf-8")
    os.mkfifo(folder / "pipe.md")  # opening it for reading would block for ever
    with open(folder / "huge.txt", "wb") as fh:
        fh.truncate(64 * 1024**3)  # sparse: reading it whole would exhaust memory
    home = tmp_path / "home"
    code, out, err = _askdocs(home, "ingest", str(folder), "/dev/zero", "--model", "fake")
    assert code == 0 and "1 added" in out, err
    assert "pipe.md: not a regular file" in err and "huge.txt: too large (64.0 GiB" in err
    assert "/dev/zero: unsupported file type" in err and "Traceback" not in err


@pytest.mark.parametrize("name", ["../evil", "/etc", "a/b", ".hidden", "", "x\\y"])
def test_a_library_name_is_never_a_path(
    tmp_path: Path, name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from ui.cli import main

    with pytest.raises(InputError, match="not a library name"):
        LibraryConfig(name=name, home=tmp_path)
    monkeypatch.setenv("ASKDOCS_HOME", str(tmp_path / "home"))
    docs = str(_seed(tmp_path / "d"))
    assert main(["ingest", docs, "--library", name, "--model", "fake"]) == 2
    assert "not a library name" in capsys.readouterr().err
    assert not (tmp_path / "evil").exists() and not (tmp_path / "home").exists()


@pytest.mark.model
def test_question_with_bytes_that_are_not_utf8_real_model(tmp_path: Path, e5_dir: Path) -> None:
    """The real tokenizer is what raised TypeError on surrogates."""
    home = tmp_path / "home"
    link_model(home, e5_dir)
    env = dict(os.environ, ASKDOCS_HOME=str(home), PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    docs = _seed(tmp_path / "docs")
    run = [sys.executable, "-m", "ui.cli"]
    kw = {"cwd": REPO, "env": env, "capture_output": True, "timeout": 300}
    assert subprocess.run([*run, "ingest", str(docs)], **kw).returncode == 0
    out = subprocess.run([*run, "search", b"caf\xe9 lseek", "--json"], **kw)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    assert b"Traceback" not in out.stderr
    assert json.loads(out.stdout)["hits"]


def test_every_promise_names_a_test_that_exists() -> None:
    import re

    text = (REPO / "docs" / "guarantees.md").read_text(encoding="utf-8")
    named = re.findall(r"`(tests/\w+\.py)::(\w+)`", text)
    assert len(named) >= 30
    missing = [
        f"{f}::{n}"
        for f, n in named
        if not re.search(rf"^def {n}\(", (REPO / f).read_text(encoding="utf-8"), re.M)
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b'{"question": "caf\xe9", "kind": "en-en", "gold": []}', "not UTF-8"),
        (b"[1, 2]", "not a valid question line"),
        (b'{"question": 42, "kind": "en-en"}', "not a valid question line"),
        (b'{"question": "\\ud800 lseek", "kind": "none"}', None),  # a JSON lone surrogate
    ],
)
def test_hostile_questions_files(
    cli_home: Path,
    tmp_path: Path,
    line: bytes,
    message: str | None,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    import index.model.embedder
    from ui.cli import main

    monkeypatch.setenv("ASKDOCS_HOME", str(cli_home))
    monkeypatch.setattr(index.model.embedder, "load_embedder", lambda *a, **k: FakeEmbedder())
    path = tmp_path / "questions.jsonl"
    path.write_bytes(line + b"\n")
    code = main(["eval", str(path), "--model", "fake", "--json"])
    out, err = capsys.readouterr()
    if message:
        assert code == 2 and message in err
    else:
        assert code == 0 and json.loads(out)["questions"][0]["id"] == "1"

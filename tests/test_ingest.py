"""Loading: formats, encodings, cleaning, language tags, bad input, and `askdocs ingest --dry-run`."""

from __future__ import annotations

import bisect
import json
import os
import random
from pathlib import Path

import pytest

from ingest import loading
from ingest.chunking import ChunkSettings, chunk_document
from ingest.cleaning import decode
from ingest.errors import InputError
from ingest.loading import discover, file_hash, load_file, load_paths, source_of
from ingest.records import content_hash
from ingest.text import detect_lang
from ui.cli import main

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "corpus"
CORPUS_FILES = sorted(p.name for p in CORPUS.iterdir())

ZH_SIMPLIFIED = (
    "函数是 Python 内置支持的一种封装，我们通过把大段代码拆成函数，通过一层一层的函数调用，"
    "就可以把复杂任务分解成简单的任务。列表和元组都是有序的集合。"
)
ZH_TRADITIONAL = (
    "模組是一組特定功能的類別與函式的打包。匯入模組後會發生什麼？第一次匯入時，執行所有的程式碼。"
)


@pytest.fixture(scope="session")
def corpus_report() -> loading.LoadReport:
    return load_paths([CORPUS])


def _doc(report: loading.LoadReport, name: str):
    return next(d for d in report.documents if d.source.endswith(name))


def _pdf(pages: list[str], title: str = "") -> bytes:
    """A minimal valid PDF, one line of Helvetica text per page (no PDF library writes text)."""
    n = len(pages)
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(n))
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        f"<< /Type /Pages /Kids [{kids}] /Count {n} >>".encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for i, text in enumerate(pages):
        content = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
        objs.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {5 + 2 * i} 0 R "
            "/Resources << /Font << /F1 3 0 R >> >> >>".encode()
        )
        objs.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    info = None
    if title:
        objs.append(f"<< /Title ({title}) >>".encode())
        info = len(objs)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for k, body in enumerate(objs, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % k + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    trailer = f"<< /Size {len(objs) + 1} /Root 1 0 R" + (f" /Info {info} 0 R" if info else "")
    out += f"trailer\n{trailer} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


# --- the bundled library ---------------------------------------------------------------------


def test_corpus_loads_every_file_with_language_and_hash(corpus_report):
    assert corpus_report.warnings == ()
    assert sorted(Path(d.source).name for d in corpus_report.documents) == CORPUS_FILES
    for doc in corpus_report.documents:
        path = CORPUS / Path(doc.source).name
        assert doc.doc_id == content_hash(path.read_bytes()) == file_hash(path)
        assert doc.lang == ("zh" if ".zh." in path.name else "en"), doc.source
        assert doc.encoding == "utf-8"
        assert doc.mtime == path.stat().st_mtime


def test_corpus_titles_formats_and_cleaning(corpus_report):
    tutorial = _doc(corpus_report, "python-tutorial-notes.zh.md")
    stdlib = _doc(corpus_report, "stdlib-notes.en.md")
    summaries = _doc(corpus_report, "python-docs-summaries.en.txt")
    assert (tutorial.title, tutorial.format) == ("Python", "markdown")
    assert stdlib.title == "The Python Standard Library"
    assert (summaries.title, summaries.format) == ("python-docs-summaries.en.txt", "text")
    # Mojibake repaired; entities and <br> of the Markdown turned into text.
    assert "This just stores the argument’s value." in stdlib.text
    assert "â€" not in stdlib.text
    assert "&nbsp;" not in stdlib.text and "<br>" not in stdlib.text
    assert "- `os.getpid()`\n" in stdlib.text
    # Code blocks keep their markup characters; a plain-text file keeps literal entities.
    assert "Namespace(accumulate=<built-in function sum>" in stdlib.text
    assert "HTML character references like &gt; back" in summaries.text


def test_source_is_relative_to_cwd_where_possible(monkeypatch, tmp_path):
    monkeypatch.chdir(REPO)
    assert load_paths(["corpus"]).files == tuple(f"corpus/{n}" for n in CORPUS_FILES)
    assert load_paths([CORPUS]).files == tuple(f"corpus/{n}" for n in CORPUS_FILES)
    assert load_paths(["./corpus/stdlib-notes.en.md"]).files == ("corpus/stdlib-notes.en.md",)
    outside = tmp_path / "a.md"
    outside.write_text("# A\n\ntext\n", encoding="utf-8")
    assert source_of(outside) == outside.as_posix()
    assert load_file(outside).source == outside.as_posix()


# --- encodings -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        ("gbk", ZH_SIMPLIFIED),
        ("gb18030", ZH_SIMPLIFIED),
        ("gbk", "列表和元组"),
        ("gbk", "在 Python 中，等号是赋值语句。"),
        ("big5", ZH_TRADITIONAL),
        ("big5", "模組與函式"),
        ("utf-16", ZH_SIMPLIFIED),
        ("utf-16", "Plain English notes about Python lists."),
        ("utf-16-le", "English with 中文 inside, written without a byte order mark."),
        ("utf-16-be", "English with 中文 inside, written without a byte order mark."),
        ("utf-16-le", ZH_SIMPLIFIED),  # no BOM and few NUL bytes
        ("utf-16-be", ZH_TRADITIONAL),
        ("utf-8-sig", ZH_SIMPLIFIED),
        ("utf-8", ZH_TRADITIONAL),
    ],
)
def test_encodings_come_back_as_the_right_text(tmp_path, encoding, text):
    path = tmp_path / "notes.md"
    body = f"# Notes\n\n{text}\n"
    path.write_bytes(body.encode(encoding))
    doc = load_file(path)
    assert doc.text == body
    assert doc.doc_id == content_hash(path.read_bytes())


def test_legacy_latin_text_is_decoded(tmp_path):
    body = "Café crème, naïve résumé — déjà vu. " * 5
    path = tmp_path / "latin.txt"
    path.write_bytes(body.encode("cp1252"))
    assert load_file(path).text == body


def test_crlf_becomes_newline(tmp_path):
    path = tmp_path / "dos.txt"
    path.write_bytes(b"first line\r\nsecond line\r\n")
    assert load_file(path).text == "first line\nsecond line\n"


def test_binary_bytes_are_refused():
    with pytest.raises(InputError, match="binary"):
        decode(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00" * 20)
    rng = random.Random(7)
    for _ in range(20):
        with pytest.raises(InputError, match="binary"):
            decode(rng.randbytes(2048) + b"\x00\x00")


# --- language ----------------------------------------------------------------------------------


def test_detect_lang():
    assert detect_lang("在 Python 中，等号 = 是赋值语句") == "zh"
    assert detect_lang("The term 函数 means function in Chinese.") == "en"
    assert detect_lang("Привет, как дела? Это русский текст.") == "other"
    assert detect_lang("これは日本語の文章です。漢字も使います。") == "other"
    assert detect_lang("12 + 34 = 46") == "other"
    assert detect_lang("列表", default="en") == "zh"  # short Chinese questions are common
    assert detect_lang("ok?", default="zh") == "zh"
    assert detect_lang("tqdm", default="zh") == "en"
    assert detect_lang("```python\nimport os\nos.getcwd()\n```", default="zh") == "zh"
    assert detect_lang(f"## 模块\n一组特定功能的类\n```\n{'identifier ' * 200}\n```") == "zh"


# --- HTML, RST, PDF ----------------------------------------------------------------------------


def test_html_keeps_headings_and_drops_scripts(tmp_path):
    page = """<!DOCTYPE html><html><head><title>Page title</title>
    <style>body { color: red }</style><script>var secret = "SCRIPT_TEXT";</script></head>
    <body><h1>Functions</h1><p>Define a function with <code>def</code>&nbsp;and call&nbsp;it.</p>
    <!-- a comment -->
    <h2>Default   arguments</h2><p>Defaults are evaluated once.<br>Only once.</p>
    <ul><li>first item</li><li>second item</li></ul>
    <pre>def f(x=1):
    # not a heading
    return x</pre>
    <script>document.write("MORE_SCRIPT")</script></body></html>"""
    path = tmp_path / "page.html"
    path.write_text(page, encoding="utf-8")
    doc = load_file(path)
    assert doc.format == "html"
    assert doc.title == "Functions"
    assert "SCRIPT_TEXT" not in doc.text and "MORE_SCRIPT" not in doc.text
    assert "color: red" not in doc.text and "a comment" not in doc.text
    assert "# Functions\n" in doc.text and "\n## Default arguments\n" in doc.text
    assert "Define a function with def and call it." in doc.text  # &nbsp; as a plain space
    assert "Defaults are evaluated once.\nOnly once." in doc.text
    assert "- first item\n\n- second item" in doc.text
    assert "```\ndef f(x=1):\n    # not a heading\n    return x\n```" in doc.text
    headings = {c.heading for c in chunk_document(doc, ChunkSettings(size=60, overlap=10))}
    assert headings == {"Functions", "Functions > Default arguments"}


def test_html_without_headings_uses_title_tag(tmp_path):
    path = tmp_path / "plain.htm"
    path.write_text("<html><head><title>Just a page</title></head><p>Body text.</p>", "utf-8")
    doc = load_file(path)
    assert (doc.title, doc.text) == ("Just a page", "Body text.")


def test_rst_titles_become_headings(tmp_path):
    path = tmp_path / "guide.rst"
    path.write_text(
        "=====\nGuide\n=====\n\nIntro text.\n\nInstall\n-------\n\nRun pip.\n\n"
        "Upgrade\n-------\n\nRun pip again.\n",
        encoding="utf-8",
    )
    doc = load_file(path)
    assert doc.title == "Guide"
    assert "# Guide\n" in doc.text and "## Install\n" in doc.text
    by_text = {c.text.split("\n")[-1]: c.heading for c in chunk_document(doc)}
    assert by_text["Run pip again."] == "Guide > Upgrade"


def test_pdf_pages_and_page_starts(tmp_path):
    path = tmp_path / "two.pdf"
    path.write_bytes(_pdf(["First page about lists.", "Second page about tuples."], "Two"))
    doc = load_file(path)
    assert (doc.format, doc.title, doc.lang) == ("pdf", "Two", "en")
    assert doc.page_starts == (0, len("First page about lists.") + 2)
    assert doc.text == "First page about lists.\n\nSecond page about tuples."
    second = doc.text.index("tuples")
    assert bisect.bisect_right(doc.page_starts, second) == 2  # page number of an offset


def test_broken_pdf_warns_and_batch_goes_on(tmp_path):
    (tmp_path / "broken.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage")
    (tmp_path / "truncated.pdf").write_bytes(_pdf(["Some text."])[:120])
    (tmp_path / "good.md").write_text("# Good\n\nfine\n", encoding="utf-8")
    report = load_paths([tmp_path])
    assert [Path(d.source).name for d in report.documents] == ["good.md"]
    assert len(report.warnings) == 2
    assert all("PDF" in w for w in report.warnings)
    assert {Path(w.split(":")[0]).name for w in report.warnings} == {"broken.pdf", "truncated.pdf"}


# --- bad input never stops a batch ----------------------------------------------------------


def test_each_bad_input_gives_one_warning(tmp_path, monkeypatch):
    folder = tmp_path / "lib"
    folder.mkdir()
    (folder / "good.md").write_text("# Good\n\nReadable text.\n", encoding="utf-8")
    (folder / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" * 50)
    (folder / "empty.md").write_bytes(b"")
    (folder / "blank.txt").write_text("  \n\n\t\n", encoding="utf-8")
    (folder / "locked.md").write_text("secret", encoding="utf-8")
    (folder / "gone.md").symlink_to(folder / "missing-target.md")
    with open(folder / "huge.txt", "wb") as fh:  # sparse: 50 MB by size, nothing on disk
        fh.truncate(50 * 1024 * 1024)
    (folder / "image.bmp").write_bytes(b"BM")  # not a supported type: silently not taken

    real_read = loading._read_bytes

    def read_bytes(path: Path) -> bytes:
        # Tests run as root, which chmod cannot lock out; simulate the permission error.
        if path.name == "locked.md":
            raise PermissionError(13, "Permission denied", str(path))
        return real_read(path)

    monkeypatch.setattr(loading, "_read_bytes", read_bytes)
    report = load_paths([folder, tmp_path / "no-such-dir"])
    assert [Path(d.source).name for d in report.documents] == ["good.md"]
    reasons = {Path(w.split(": ", 1)[0]).name: w.split(": ", 1)[1] for w in report.warnings}
    assert len(reasons) == len(report.warnings) == 7
    assert reasons["binary.txt"].startswith("binary file")
    assert reasons["empty.md"] == "empty file"
    assert reasons["blank.txt"] == "no text"
    assert reasons["locked.md"] == "cannot read (Permission denied)"
    assert reasons["gone.md"] == "cannot read (broken symbolic link)"
    assert reasons["huge.txt"] == "too large (50.0 MiB, limit 20.0 MiB)"
    assert reasons["no-such-dir"] == "no such file or directory"
    assert set(report.failed) == {
        source_of(folder / n)
        for n in ("binary.txt", "empty.md", "blank.txt", "locked.md", "gone.md", "huge.txt")
    }
    assert report.documents


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_read_error_for_real(tmp_path):
    # Even root gets EIO reading /proc/self/mem at offset 0: a real read failure. load_file
    # reads what it is given; the scan is what refuses such a link (the next test).
    (tmp_path / "mem.txt").symlink_to("/proc/self/mem")
    with pytest.raises(InputError, match=r"cannot read \(Input/output error\)"):
        load_file(tmp_path / "mem.txt")


@pytest.mark.skipif(not Path("/proc/self/mem").exists(), reason="needs Linux /proc")
def test_link_to_a_device_file_is_never_read(tmp_path):
    # A `.txt` name in front of /proc/self/mem: the target's type decides, and it is not text.
    (tmp_path / "mem.txt").symlink_to("/proc/self/mem")
    (tmp_path / "ok.txt").write_text("fine", encoding="utf-8")
    for follow in (False, True):
        report = load_paths([tmp_path], follow_symlinks=follow)
        assert [Path(d.source).name for d in report.documents] == ["ok.txt"]
        assert report.warnings == (
            f"{source_of(tmp_path / 'mem.txt')}: symbolic link to a file of an unsupported "
            "type (no extension); skipped",
        )


def test_unsupported_file_named_explicitly_warns(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b\n", encoding="utf-8")
    report = load_paths([path])
    assert report.documents == () and report.failed == (source_of(path),)
    assert report.warnings == (f"{source_of(path)}: unsupported file type '.csv'",)


def test_size_limit_is_a_setting(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("x" * 2000, encoding="utf-8")
    assert (
        load_paths([path], max_bytes=1000).warnings[0].endswith("too large (2.0 KiB, limit 1000 B)")
    )
    assert len(load_paths([path], max_bytes=5000).documents) == 1


def test_duplicate_files_are_read_once(tmp_path):
    (tmp_path / "a.md").write_text("# Same\n\ntext\n", encoding="utf-8")
    (tmp_path / "b.md").write_text("# Same\n\ntext\n", encoding="utf-8")
    (tmp_path / "c.md").write_text("# Other\n\ntext\n", encoding="utf-8")
    report = load_paths([tmp_path, tmp_path / "a.md"])  # the same file twice: taken once
    assert [Path(d.source).name for d in report.documents] == ["a.md", "c.md"]
    assert report.warnings == (f"{source_of(tmp_path / 'b.md')}: same content as "
                               f"{source_of(tmp_path / 'a.md')}; skipped",)  # fmt: skip


def test_discover_recurses_with_globs_and_skips_hidden(tmp_path):
    for rel in ("a.md", "sub/b.txt", "sub/deep/c.html", "drafts/d.md", ".git/e.md", "sub/.f.md"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("# x\n\ny\n", encoding="utf-8")
    (tmp_path / "sub" / "g.py").write_text("print()\n", encoding="utf-8")

    def names(**kw) -> list[str]:
        return [p.relative_to(tmp_path).as_posix() for p in discover([tmp_path], **kw)]

    assert names() == ["a.md", "drafts/d.md", "sub/b.txt", "sub/deep/c.html"]
    assert names(include=["*.md"]) == ["a.md", "drafts/d.md"]
    assert names(exclude=["drafts"]) == ["a.md", "sub/b.txt", "sub/deep/c.html"]
    assert names(exclude=["sub/*"]) == ["a.md", "drafts/d.md"]
    assert names(include=["*.md", "*.html"], exclude=["d.md"]) == ["a.md", "sub/deep/c.html"]


# --- askdocs ingest --dry-run ------------------------------------------------------------------


def test_dry_run_table(monkeypatch, capsys, corpus_report):
    monkeypatch.chdir(REPO)
    assert main(["ingest", "corpus", "--dry-run"]) == 0
    out, err = capsys.readouterr()
    lines = out.strip().split("\n")
    assert lines[0].split() == ["FILE", "FORMAT", "ENCODING", "LANG", "CHUNKS"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:-1]}
    assert set(rows) == {f"corpus/{n}" for n in CORPUS_FILES}
    total = 0
    for doc in corpus_report.documents:
        n = len(chunk_document(doc, ChunkSettings()))
        total += n
        assert rows[f"corpus/{Path(doc.source).name}"] == [doc.format, "utf-8", doc.lang, str(n)]
    column = lines[0].index("FORMAT")
    assert all(line[column - 2 : column] == "  " and line[column] != " " for line in lines[1:-1])
    assert len({len(line) for line in lines[:-1]}) == 1  # the CHUNKS column is right-aligned
    assert lines[-1] == f"total: 4 files, {total} chunks"
    assert err == ""


def test_dry_run_json_lines(monkeypatch, capsys, corpus_report):
    monkeypatch.chdir(REPO)
    assert main(["ingest", "corpus", "--dry-run", "--json", "--include", "*.zh.md"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    texts = {Path(d.source).name: d.text for d in corpus_report.documents}
    assert {r["source"] for r in records} == {f"corpus/{n}" for n in texts if ".zh." in n}
    for r in records:
        assert {"source", "start", "end", "heading", "lang", "text"} <= set(r)
        assert r["text"] == texts[Path(r["source"]).name][r["start"] : r["end"]]
    assert sum(1 for r in records if r["heading"] == "Python > 函数") >= 3


def test_dry_run_warns_on_stderr_and_fails_only_when_nothing_read(tmp_path, capsys):
    (tmp_path / "good.md").write_text("# Good\n\ntext\n", encoding="utf-8")
    (tmp_path / "empty.txt").write_bytes(b"")
    assert main(["ingest", str(tmp_path), "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert "good.md" in out and "total: 1 files" in out and "1 skipped" in out
    assert err.strip() == f"askdocs: warning: {source_of(tmp_path / 'empty.txt')}: empty file"
    assert main(["ingest", str(tmp_path / "empty.txt"), "--dry-run"]) == 2
    assert "nothing could be read" in capsys.readouterr().err


# --- what is never read: links out of the folder, unsupported targets -------------------------


def _linked_folder(tmp_path: Path) -> tuple[Path, Path]:
    """docs/ with one real note and links of every kind; outside/ with what they point at."""
    docs, outside = tmp_path / "docs", tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    docs.mkdir()
    (docs / "real.md").write_text("# Real\n\nA real note.\n", encoding="utf-8")
    (outside / "secret.txt").write_text("the password is hunter2\n", encoding="utf-8")
    (outside / "secret.conf").write_text("password = hunter2\n", encoding="utf-8")
    (outside / "sub" / "far.md").write_text("# Far\n\nFar away.\n", encoding="utf-8")
    (docs / "link.txt").symlink_to(outside / "secret.txt")
    (docs / "conf.md").symlink_to(outside / "secret.conf")  # a .md name for a .conf file
    (docs / "again.md").symlink_to(docs / "real.md")  # inside: the same file, taken once
    (docs / "elsewhere").symlink_to(outside / "sub", target_is_directory=True)
    return docs, outside


def test_symlinks_out_of_the_folder_are_not_followed(tmp_path):
    docs, outside = _linked_folder(tmp_path)
    report = load_paths([docs])
    assert [Path(d.source).name for d in report.documents] == ["real.md"]  # once, not again.md
    assert not any("hunter2" in d.text for d in report.documents)
    why = {Path(w.split(": ", 1)[0]).name: w.split(": ", 1)[1] for w in report.warnings}
    assert why["link.txt"].startswith("symbolic link to outside the folder; skipped")
    assert "--follow-symlinks" in why["link.txt"]
    assert why["conf.md"].startswith("symbolic link to a file of an unsupported type ('.conf')")
    assert why["elsewhere"].startswith("symbolic link to a folder outside")
    # a file named directly is held to its own folder, so `ingest docs/*` is no way round
    named = load_paths([docs / "link.txt", docs / "conf.md"])
    assert named.documents == () and len(named.warnings) == 2


def test_a_folder_link_named_by_a_shell_glob_is_not_followed(tmp_path, capsys, monkeypatch):
    """`ln -s ../outside docs/dirlink; askdocs ingest docs/*`: the glob names the link itself."""
    import glob

    docs, outside = _linked_folder(tmp_path)
    (outside / "secret.md").write_text("# Secret\n\nthe password is hunter2\n", encoding="utf-8")
    (docs / "dirlink").symlink_to(Path("..") / "outside", target_is_directory=True)
    monkeypatch.chdir(tmp_path)
    expanded = sorted(glob.glob("docs/*"))  # what the shell hands askdocs
    assert "docs/dirlink" in expanded and "docs/elsewhere" in expanded
    report = load_paths(expanded)
    assert [d.source for d in report.documents] == ["docs/real.md"]
    assert not any("hunter2" in d.text or "Far away" in d.text for d in report.documents)
    why = {w.split(": ", 1)[0]: w.split(": ", 1)[1] for w in report.warnings}
    assert why["docs/dirlink"].startswith("symbolic link to a folder (outside); skipped")
    assert "--follow-symlinks" in why["docs/elsewhere"]
    # the same through the command line, trailing slash and all
    assert main(["ingest", "--dry-run", *expanded, "docs/dirlink/"]) == 0
    out, err = capsys.readouterr()
    assert "secret.md" not in out and "far.md" not in out and "real.md" in out
    assert err.count("docs/dirlink: symbolic link to a folder") == 2
    # opting in takes it
    taken = load_paths(expanded, follow_symlinks=True)
    assert {Path(d.source).name for d in taken.documents} >= {"secret.md", "far.md"}


def test_follow_symlinks_opts_in_but_never_to_unsupported_types(tmp_path):
    docs, outside = _linked_folder(tmp_path)
    report = load_paths([docs], follow_symlinks=True)
    names = sorted(Path(d.source).name for d in report.documents)
    assert names == ["far.md", "link.txt", "real.md"]
    assert not any("password =" in d.text for d in report.documents)
    assert [w for w in report.warnings if "conf.md" in w] == [
        f"{source_of(docs / 'conf.md')}: symbolic link to a file of an unsupported type "
        "('.conf'); skipped"
    ]
    (outside / "sub" / "loop").symlink_to(docs, target_is_directory=True)  # a cycle ends
    assert len(load_paths([docs], follow_symlinks=True).documents) == 3


def test_file_name_that_is_not_utf8_is_kept_losslessly(tmp_path):
    raw = os.fsencode(tmp_path) + b"/caf\xe9 notes.md"
    with open(raw, "wb") as fh:
        fh.write(b"# Cafe\n\nNotes about coffee.\n")
    (tmp_path / "ok.md").write_text("# Ok\n\nfine\n", encoding="utf-8")
    report = load_paths([tmp_path])
    assert sorted(Path(d.source).name for d in report.documents) == ["caf\ufffd notes.md", "ok.md"]
    assert report.warnings == ()
    for d in report.documents:  # what people see is valid UTF-8
        d.source.encode("utf-8")
        d.title.encode("utf-8")
    found = loading.scan([tmp_path])
    bad = next(k for k in found.keys if "caf" in k)
    assert bad.startswith("fs:") and loading.key_path(bad) == Path(os.fsdecode(raw))
    assert loading.key_path(bad).read_bytes().startswith(b"# Cafe")
    plain = next(k for k in found.keys if k.endswith("ok.md"))
    assert loading.key_path(plain) == Path(plain) == tmp_path / "ok.md"


@pytest.mark.parametrize("tag", ["div", "b", "ul><li", "table><tr><td", "h2"])
def test_html_nested_thousands_deep_is_text(tmp_path, tag):
    path = tmp_path / "deep.html"
    path.write_text(f"<{tag}>" * 5000 + "deep text" + "</div>" * 5, encoding="utf-8")
    assert "deep text" in load_file(path).text


def test_damaged_pdf_is_one_warning_and_no_library_noise(tmp_path):
    import subprocess
    import sys

    (tmp_path / "truncated.pdf").write_bytes(_pdf(["Some text."])[:-20])
    (tmp_path / "good.md").write_text("# Good\n\nfine\n", encoding="utf-8")
    out = subprocess.run(
        [sys.executable, "-m", "ui.cli", "ingest", str(tmp_path), "--dry-run"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("askdocs: warning: ") and "PDF" in lines[0]


def test_dry_run_follows_symlinks_only_when_asked(tmp_path, capsys):
    docs, _ = _linked_folder(tmp_path)
    assert main(["ingest", str(docs), "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert "link.txt" not in out and "--follow-symlinks" in err
    assert main(["ingest", str(docs), "--dry-run", "--follow-symlinks"]) == 0
    out, err = capsys.readouterr()
    assert "link.txt" in out and "far.md" in out and "conf.md" in err


def test_html_chunks_hold_only_the_main_content(tmp_path):
    """Navigation, header, sidebar and footer never become text or chunks, whether marked up
    semantically or only as divs (trafilatura decides those); headings and offsets stay."""
    article = (
        "<h1>Reading files</h1>"
        "<p>Use <code>open()</code> to get a file object, then iterate over it to read the "
        "file line by line. Only one line is held in memory at a time.</p>"
        "<h2>Encodings</h2>"
        "<p>Pass <code>encoding='utf-8'</code> explicitly: the default depends on the platform "
        "and can differ between machines, so a file written on one may not read on another.</p>"
        "<pre>with open('notes.txt', encoding='utf-8') as f:\n    for line in f:\n"
        "        print(line)</pre>"
    )
    furniture = {
        "Home | About | Blog": "<nav><a href='/'>Home</a> | <a href='/about'>About</a> | "
        "<a href='/blog'>Blog</a></nav>",
        "Products Pricing Contact us": "<div class='menu'><a href='/p'>Products</a> "
        "<a href='/pr'>Pricing</a> <a href='/c'>Contact us</a></div>",
        "Related posts": "<aside><h3>Related posts</h3><ul><li><a href='/w'>Writing files"
        "</a></li></ul></aside>",
        "© 2024 Example Corp": "<footer><p>© 2024 Example Corp. All rights reserved.</p>"
        "<p><a href='/privacy'>Privacy</a></p></footer>",
        "Subscribe to our newsletter": "<div id='footer-widgets'><p><a href='/s'>Subscribe to "
        "our newsletter</a></p></div>",
    }
    page = (
        "<html><head><title>Reading files — Notes</title></head><body>"
        + furniture["Home | About | Blog"]
        + furniture["Products Pricing Contact us"]
        + f"<main><article>{article}</article></main>"
        + furniture["Related posts"]
        + furniture["© 2024 Example Corp"]
        + furniture["Subscribe to our newsletter"]
        + "</body></html>"
    )
    path = tmp_path / "page.html"
    path.write_text(page, encoding="utf-8")
    doc = load_file(path)
    for words in ("Home", "About", "Pricing", "Related posts", "© 2024", "Privacy", "newsletter"):
        assert words not in doc.text, words
    assert doc.text.startswith("# Reading files\n\nUse open() to get a file object")
    assert "\n## Encodings\n" in doc.text and "    for line in f:\n" in doc.text
    chunks = chunk_document(doc, ChunkSettings(size=120, overlap=0))
    assert {c.heading for c in chunks} == {"Reading files", "Reading files > Encodings"}
    for c in chunks:
        assert doc.text[c.start : c.end] == c.text
        assert not any(w in c.text for w in ("Home", "Pricing", "Privacy", "newsletter"))


def test_a_scan_without_ocr_installed_keeps_title_and_page_starts_apart(monkeypatch) -> None:
    """mypy found these two swapped on this path (the title came back as the page starts)."""
    from ingest import ocr, pdf

    monkeypatch.setattr(ocr, "available", lambda: False)
    monkeypatch.setattr(pdf, "_has_images", lambda page: True)  # the empty page is a scan
    text, title, starts, encoding, notes = pdf.read_pdf(
        _pdf(["", "The second page has its own text layer."], title="Scanned notes")
    )
    assert title == "Scanned notes" and encoding == "pdf"
    assert starts == (0, 2) and text.endswith("its own text layer.")
    assert notes == ("1 of 2 pages have no text layer (scans?) and OCR is not installed",)

"""CLI edges a new user meets: usage errors exit 2 with a hint; tables align wide characters."""

from __future__ import annotations

from pathlib import Path

import pytest
from wcwidth import wcswidth

from tests.helpers import FakeEmbedder
from ui.cli import main


@pytest.mark.parametrize(
    ("argv", "hint"),
    [
        (["ask", ""], "question: is empty"),
        (["ask", "   "], "question: is empty"),
        (["search", ""], "question: is empty"),
        (["search", "open a file", "-k", "0"], "1 or more"),  # more -k cases: test_hostile.py
    ],
)
def test_usage_errors_exit_2_with_a_hint(argv, hint, capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ASKDOCS_HOME", str(tmp_path))
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and hint in err and err.startswith("usage: askdocs")
    assert not (tmp_path / "libraries").exists()  # refused before anything is opened


def _cell_starts(line: str) -> list[int]:
    """Display columns where each cell of a table line starts (cells are 2+ spaces apart)."""
    starts, col, gap = [], 0, 2
    for ch in line:
        if ch != " " and gap >= 2:
            starts.append(col)
        gap = gap + 1 if ch == " " else 0
        col += wcswidth(ch)
    return starts


def _files(root: Path) -> Path:
    root.mkdir()
    (root / "中文笔记.md").write_text("# 函数\n\n定义函数用 def 关键字，函数名后面跟着括号。\n")
    (root / "a.md").write_text("# Files\n\nOpen a file with open() and read it line by line.\n")
    return root


def test_dry_run_columns_align_with_chinese_file_names(tmp_path, capsys) -> None:
    assert main(["ingest", str(_files(tmp_path / "docs")), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()[:3]
    assert any("中文笔记" in line for line in lines)
    starts = [_cell_starts(line) for line in lines]
    assert starts[0][:4] == starts[1][:4] == starts[2][:4], lines
    assert len({wcswidth(line) for line in lines}) == 1  # CHUNKS right-aligned by display width


def test_docs_columns_align_with_chinese_file_names(tmp_path, capsys, monkeypatch) -> None:
    import index.model.embedder

    monkeypatch.setenv("ASKDOCS_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(index.model.embedder, "load_embedder", lambda *a, **k: FakeEmbedder())
    assert main(["ingest", str(_files(tmp_path / "docs")), "--library", "w"]) == 0
    capsys.readouterr()
    assert main(["docs", "--library", "w"]) == 0
    lines = capsys.readouterr().out.splitlines()[:3]
    starts = [_cell_starts(line) for line in lines]
    cols = [(s[1], s[3]) for s in starts]  # LANG, INGESTED (CHUNKS is right-aligned)
    assert cols[0] == cols[1] == cols[2], lines
    assert len({wcswidth(line) for line in lines[1:]}) == 1


def test_not_covered_prints_one_sentence_then_the_nearest_sections(capsys) -> None:
    from types import SimpleNamespace

    from assistant.answer import refusal
    from assistant.records import Hit
    from ingest.records import Chunk
    from ui.question_commands import print_refusal

    text = (
        "# Files\n\nintro\n\n## Reading\n\nOpen a file and read it line by line, then close it.\n"
    )
    start = text.index("Open")
    chunk = Chunk(
        7, "d1", "notes/files.md", start, len(text), text[start:], "Files > Reading", "en", ""
    )
    answer = refusal(
        "How do I bake bread?", "How do I bake bread?", (Hit(chunk, 1.0, 1),), lambda _: text
    )
    print_refusal(answer, SimpleNamespace(document=lambda _id: SimpleNamespace(text=text)))
    assert capsys.readouterr().out.splitlines() == [
        "The library does not cover this question. The nearest sections:",
        "  [1] Files › Reading — notes/files.md, line 7",
    ]

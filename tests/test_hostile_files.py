"""Hostile office files, e-books and images: zip bombs, encryption, XML entities, damage,
pixel bombs and oversized pictures. Each is one clear refusal (or a document that keeps every
promise), nothing is decompressed or decoded past the caps, and the rest of a batch goes in."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ingest import package
from ingest.errors import InputError
from ingest.loading import load_paths, parse
from tests.office_files import (
    docx_bytes,
    epub_bytes,
    mark_encrypted,
    pptx_bytes,
    replace_member,
    xlsx_bytes,
)
from tests.test_hostile import _check_document

# kind → (file name, bytes, the part that holds its text)
BUILT = {
    "docx": ("a.docx", docx_bytes, "word/document.xml"),
    "pptx": ("a.pptx", pptx_bytes, "ppt/slides/slide1.xml"),
    "xlsx": ("a.xlsx", xlsx_bytes, "xl/worksheets/sheet1.xml"),
    "epub": ("a.epub", epub_bytes, "EPUB/c1.xhtml"),
}
KINDS = sorted(BUILT)


def _file(kind: str) -> tuple[str, bytes, str]:
    name, build, part = BUILT[kind]
    return name, build(), part


def _refusal(data: bytes, name: str) -> str:
    with pytest.raises(InputError) as caught:
        parse(data, name, name)
    assert caught.value.hint
    return caught.value.message


@pytest.mark.parametrize("kind", KINDS)
def test_a_zip_bomb_is_refused_before_it_is_decompressed(kind: str, monkeypatch) -> None:
    name, data, part = _file(kind)
    bomb = replace_member(data, part, b"\0" * (12 * 1024 * 1024), level=9)  # ~1000:1
    assert len(bomb) < 200_000
    opened: list[str] = []
    real_open = zipfile.ZipFile.open

    def spy(self, member, *args, **kwargs):
        opened.append(member if isinstance(member, str) else member.filename)
        return real_open(self, member, *args, **kwargs)

    monkeypatch.setattr(zipfile.ZipFile, "open", spy)
    assert "zip bomb" in _refusal(bomb, name)
    assert part not in opened  # judged from the central directory alone


@pytest.mark.parametrize("kind", KINDS)
def test_an_archive_over_the_size_cap_is_refused(kind: str, monkeypatch) -> None:
    name, data, _ = _file(kind)
    small = package.Limits(total_bytes=1000, member_bytes=1000)
    monkeypatch.setattr(package, "LIMITS", small)
    assert "expands to over" in _refusal(data, name)


@pytest.mark.parametrize("kind", KINDS)
def test_encrypted_files_are_refused(kind: str) -> None:
    name, data, _ = _file(kind)
    assert "encrypted" in _refusal(mark_encrypted(data), name)
    # Office's own password protection: an OLE compound file, not a zip
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 2000
    assert "encrypted or legacy" in _refusal(ole, name)


LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]>\n<lolz>&lol9;</lolz>"
)
EXTERNAL = (
    b'<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n<x>&xxe;</x>'
)
UTF16 = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    "body", [LAUGHS, EXTERNAL, UTF16.encode("utf-16")], ids=["laughs", "xxe", "utf16"]
)
def test_xml_entity_declarations_are_refused(kind: str, body: bytes) -> None:
    name, data, part = _file(kind)
    message = _refusal(replace_member(data, part, body), name)
    assert "declares entities" in message and part in message


@pytest.mark.parametrize("kind", KINDS)
def test_damaged_files_are_one_clear_refusal(kind: str) -> None:
    name, data, part = _file(kind)
    for broken in (data[: len(data) // 2], data[:100], b"PK\x03\x04" + b"\0" * 50):
        assert "broken" in _refusal(broken, name)
    damaged = replace_member(data, part, b"<not xml")
    if kind == "epub":  # chapters are read as HTML, leniently: the rest of the book stays
        assert "（ch2a）" in parse(damaged, name, name).text
    else:
        assert "broken" in _refusal(damaged, name)


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares width × height pixels and holds almost no data."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = lambda kind, body: (  # noqa: E731
        struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    )
    idat = zlib.compress(b"\0" * 1000)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_a_pixel_bomb_is_refused_from_its_header() -> None:
    message = _refusal(_png_header(50_000, 50_000), "bomb.png")
    assert "image too large" in message and "megapixels" in message


def test_a_100_mb_image_is_never_read(tmp_path: Path) -> None:
    with open(tmp_path / "huge.png", "wb") as fh:
        fh.truncate(100 * 1024 * 1024)  # sparse: reading it would cost 100 MB
    (tmp_path / "ok.md").write_text("# Ok\n\nfine\n", encoding="utf-8")
    report = load_paths([tmp_path])
    assert [d.source.rsplit("/", 1)[-1] for d in report.documents] == ["ok.md"]
    assert any("huge.png: too large (100.0 MiB" in w for w in report.warnings)


def test_a_batch_of_hostile_files_loses_nothing_else(tmp_path: Path) -> None:
    name, data, part = _file("docx")
    hostile = {
        "bomb.docx": replace_member(data, part, b"\0" * (12 * 1024 * 1024), level=9),
        "laughs.docx": replace_member(data, part, LAUGHS),
        "locked.xlsx": mark_encrypted(xlsx_bytes()),
        "half.pptx": pptx_bytes()[:3000],
        "broken.epub": b"PK\x03\x04 nothing",
        "bomb.png": _png_header(50_000, 50_000),
        "noise.jpg": b"\xff\xd8\xff\xe0 not a jpeg",
    }
    for fname, body in hostile.items():
        (tmp_path / fname).write_bytes(body)
    (tmp_path / "good.docx").write_bytes(data)
    (tmp_path / "good.md").write_text("# Fine\n\nA note.\n", encoding="utf-8")
    report = load_paths([tmp_path])
    assert sorted(d.source.rsplit("/", 1)[-1] for d in report.documents) == ["good.docx", "good.md"]
    assert len(report.warnings) == len(hostile) == len(report.failed)
    for fname in hostile:
        (warning,) = [w for w in report.warnings if fname in w]
        assert "unexpected error" not in warning and "\n" not in warning


SMALL = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
_CACHE: dict[str, tuple[str, bytes, str]] = {}


def _cached(kind: str) -> tuple[str, bytes, str]:
    if kind not in _CACHE:
        _CACHE[kind] = _file(kind)
    return _CACHE[kind]


@SMALL
@given(
    kind=st.sampled_from(KINDS),
    edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=20),
    cut=st.one_of(st.none(), st.floats(0.05, 1)),
)
def test_mutated_office_files_are_a_document_or_one_refusal(kind, edits, cut) -> None:
    name, data, _ = _cached(kind)
    raw = bytearray(data)
    for where, value in edits:
        raw[min(int(where * len(raw)), len(raw) - 1)] = value
    if cut is not None:
        raw = raw[: max(1, int(cut * len(raw)))]
    _check_document(bytes(raw), name)


@SMALL
@given(
    kind=st.sampled_from(KINDS),
    body=st.one_of(
        st.binary(max_size=2000),
        st.text(max_size=500).map(lambda t: f"<?xml version='1.0'?><x>{t}</x>".encode()),
    ),
)
def test_office_files_with_a_hostile_text_part(kind, body) -> None:
    name, data, part = _cached(kind)
    _check_document(replace_member(data, part, body), name)


@SMALL
@given(
    members=st.lists(
        st.tuples(st.text(min_size=1, max_size=30), st.binary(max_size=300)), max_size=5
    ),
    suffix=st.sampled_from([".docx", ".pptx", ".xlsx", ".epub"]),
)
def test_random_zips_are_a_document_or_one_refusal(members, suffix) -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for member, body in members:
            try:
                archive.writestr(member, body)
            except (ValueError, UnicodeEncodeError, IndexError):  # names zipfile refuses
                continue
    _check_document(out.getvalue(), "f" + suffix)

"""Zip containers (.docx, .pptx, .xlsx, .epub) checked before any library decompresses them.

Office files and e-books are zip archives of XML parts, so each is a way to make a parser do
unbounded work: a member that inflates a thousandfold (a zip bomb), thousands of members, an
entity declaration that expands to gigabytes (billion laughs) or reads a local file (external
entities). `open_package` refuses all of these from the central directory and a bounded read,
before python-docx, python-pptx, openpyxl or ebooklib see a byte; those libraries then only
ever get archives whose every member is known to be small and entity-free.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass

from ingest.errors import InputError

# An encrypted Office file is not a zip at all: Office wraps it in an OLE compound file.
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# A DTD that declares entities is how entity expansion and external entities get in; OOXML
# and EPUB parts never need one (an XHTML chapter's plain <!DOCTYPE html> is fine).
_ENTITY = re.compile(rb"<!ENTITY|<\x00!\x00E\x00N\x00T\x00I\x00T\x00Y\x00", re.IGNORECASE)


@dataclass(frozen=True)
class Limits:
    """Caps on what one archive may hold once decompressed."""

    members: int = 5_000
    total_bytes: int = 200 * 1024 * 1024  # all members together, decompressed
    member_bytes: int = 100 * 1024 * 1024
    ratio: int = 200  # decompressed / compressed size of one member (text XML is ~5-20)


LIMITS = Limits()


def _refuse(what: str, hint: str) -> InputError:
    return InputError(what, hint=hint)


def open_package(data: bytes, kind: str, limits: Limits | None = None) -> zipfile.ZipFile:
    """The archive of a .docx/.pptx/.xlsx/.epub, or InputError saying why it is refused.

    Sizes come from the central directory and are then enforced while reading (a lying
    directory cannot make a member inflate past its declared size: zipfile checks the CRC
    and stops at the declared length), so a bomb is refused without being decompressed."""
    limits = limits or LIMITS
    if data.startswith(_OLE_MAGIC):
        raise _refuse(
            f"encrypted or legacy (pre-2007) {kind} file",
            hint="remove the password, or save it as .docx/.pptx/.xlsx",
        )
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except Exception as exc:  # noqa: BLE001 - a damaged directory raises many kinds
        raise _refuse(f"broken {kind} file (not a readable zip: {exc})", hint=_RESAVE) from exc
    if len(members) > limits.members:
        raise _refuse(f"{kind} file with {len(members)} parts (limit {limits.members})", _BOMB)
    total = 0
    for info in members:
        if info.flag_bits & 0x1:
            raise _refuse(f"encrypted {kind} file", hint="save an unencrypted copy")
        total += info.file_size
        if info.file_size > limits.member_bytes or total > limits.total_bytes:
            raise _refuse(
                f"{kind} file that expands to over {_mb(limits.total_bytes)} (zip bomb?)", _BOMB
            )
        packed = max(info.compress_size, 1)
        if info.file_size > 1024 * 1024 and info.file_size / packed > limits.ratio:
            raise _refuse(
                f"{kind} file with a part compressed {info.file_size // packed}:1 "
                f"(limit {limits.ratio}:1, zip bomb?)",
                _BOMB,
            )
    for info in members:
        if not info.filename.lower().endswith(
            (".xml", ".rels", ".xhtml", ".html", ".htm", ".opf", ".ncx")
        ):
            continue
        try:
            body = archive.read(info)
        except Exception as exc:  # noqa: BLE001 - zipfile and zlib raise many kinds on damage
            raise _refuse(f"broken {kind} file ({info.filename}: {exc})", hint=_RESAVE) from exc
        if _ENTITY.search(body):
            raise _refuse(
                f"{kind} file whose XML declares entities ({info.filename}); refused",
                hint="entity declarations can expand without bound or read local files; "
                "re-save the file from its application",
            )
    return archive


_RESAVE = "open it in its application and save it again"
_BOMB = "this is not an ordinary document; check where it came from"


def _mb(n: int) -> str:
    return f"{n // (1024 * 1024)} MB"

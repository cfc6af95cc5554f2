"""Big word lists read a few entries at a time: an SQLite table of string → values, built once.

Why: a cold question paid ~0.7 s for jieba's dictionary (a marshal of 498k entries) and ~0.8 s
for the embedding model's 250k-piece vocabulary, yet one question only ever looks at the
entries that are substrings of its own text (a few hundred). A `Lexicon` is that list stored
in SQLite next to its source, keyed by the source's identity (`stamp`), so a question reads
just those rows (`get_many(substrings(text, longest))`) and a changed source rebuilds it.
Users: `ingest.text` (jieba's dictionary, English word frequencies) and `index.model.pieces` (the
model's vocabulary). A table that cannot be built or read is None to the caller, who then
loads the source as before.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

_BATCH = 500  # keys per SELECT: well under SQLite's limit on bound parameters


class Lexicon:
    """Read-only access to a built table: `get`, `get_many`, and the `meta` it was built with."""

    meta: dict[str, str | int | float]
    width: int  # values per key

    def __init__(self, path: Path) -> None:
        # immutable: the file is never written in place (a rebuild replaces it), so SQLite
        # need not lock it; one connection shared by threads, behind a lock.
        uri = f"file:{Path(path).resolve()}?mode=ro&immutable=1"
        self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        self._lock = threading.Lock()
        with self._lock:
            self.meta = dict(self._db.execute("SELECT k, v FROM meta"))
            self.width = int(self.meta["width"])

    def get_many(self, keys: Iterable[str]) -> dict[str, tuple]:
        """The rows of the `keys` that are in the table (key → values)."""
        keys = list(dict.fromkeys(keys))
        cols = "".join(f", v{i}" for i in range(self.width))
        out: dict[str, tuple] = {}
        with self._lock:
            for i in range(0, len(keys), _BATCH):
                part = keys[i : i + _BATCH]
                sql = f"SELECT k{cols} FROM t WHERE k IN ({', '.join('?' * len(part))})"
                out.update((row[0], row[1:]) for row in self._db.execute(sql, part))
        return out

    def get(self, key: str) -> tuple | None:
        return self.get_many([key]).get(key)


def open_lexicon(
    path: Path,
    stamp: str,
    rows: Callable[[], Iterable[tuple]],
    meta: Callable[[], dict[str, str | int | float]] | None = None,
) -> Lexicon | None:
    """The table at `path` if it was built from the source `stamp` names; else build it from
    `rows()` (tuples of key and values) and `meta()`, atomically. None when it can be neither
    read nor written (a read-only disk, a broken file): the caller loads its source instead."""
    try:
        lexicon = Lexicon(path)
        if lexicon.meta.get("stamp") == stamp:
            return lexicon
    except (sqlite3.Error, OSError, KeyError, ValueError):
        pass
    try:
        _build(Path(path), stamp, rows(), meta() if meta else {})
        return Lexicon(path)
    except (sqlite3.Error, OSError, KeyError, ValueError):
        return None


def _build(path: Path, stamp: str, rows: Iterable[tuple], meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{threading.get_ident()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        db = sqlite3.connect(tmp)
        try:
            rows = sorted(rows)  # in key order: the B-tree fills without page splits
            width = len(rows[0]) - 1 if rows else 0
            cols = "".join(f", v{i}" for i in range(width))
            db.execute(f"CREATE TABLE t (k TEXT PRIMARY KEY{cols}) WITHOUT ROWID")
            db.executemany(f"INSERT INTO t VALUES ({', '.join('?' * (width + 1))})", rows)
            db.execute("CREATE TABLE meta (k TEXT PRIMARY KEY, v)")
            info = {**meta, "stamp": stamp, "width": width}
            db.executemany("INSERT INTO meta VALUES (?, ?)", info.items())
            db.commit()
        finally:
            db.close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def substrings(text: str, longest: int) -> Iterator[str]:
    """Every substring of `text` of at most `longest` characters (what a dictionary lookup
    over `text` can ask for)."""
    n = len(text)
    for i in range(n):
        for j in range(i + 1, min(n, i + longest) + 1):
            yield text[i:j]


def file_stamp(path: Path, *extra: object) -> str:
    """Identity of a source file: its name, size and modification time (and `extra`)."""
    st = os.stat(path)
    return "|".join(str(x) for x in (Path(path).name, st.st_size, st.st_mtime_ns, *extra))

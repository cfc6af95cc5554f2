"""Where the bundled sample library (the Python notes in `corpus/`) lives once installed."""

from __future__ import annotations

import sys
from pathlib import Path

from ingest.errors import InputError


def sample_corpus() -> Path:
    """The bundled corpus: the repo's `corpus/` (editable install) or `<prefix>/share/askdocs/corpus`."""
    candidates = [
        Path(__file__).resolve().parent.parent / "corpus",
        Path(sys.prefix) / "share" / "askdocs" / "corpus",
    ]
    for path in candidates:
        if path.is_dir() and any(path.iterdir()):
            return path
    raise InputError(
        "The bundled sample library was not found.",
        hint="reinstall askdocs (pip install -e .) or ingest your own files with `askdocs ingest PATH`",
    )

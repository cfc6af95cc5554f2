"""Every error askdocs raises on purpose, each with a hint saying what to do next.

The CLI and the UI turn these into one-line messages; anything else is a bug and may show
a traceback.

Why here, in ingest/, although the index's and the LLM's errors are not about files: data
flows ingest → index → assistant → ui and a package imports only from its left, so the one
module every package may import sits in the leftmost package; the design card fixes the
top-level directories, so there is no separate `common/`. One module, so that `ui/` catches
one base class and a reader finds every error in one place.
"""

from __future__ import annotations


class AskdocsError(Exception):
    """Base class: `message` says what went wrong, `hint` what the user can do about it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  → {self.hint}" if self.hint else self.message


class InputError(AskdocsError):
    """A file or argument given by the user cannot be used."""


class TooLargeError(InputError):
    """A question or file over a size limit (the HTTP API answers 413)."""


class LibraryError(AskdocsError):
    """The library on disk is missing, corrupt, locked or of another model."""


class ModelMismatchError(LibraryError):
    """The library's vectors were built by another embedding model."""


class ModelError(AskdocsError):
    """The embedding model cannot be built or loaded."""


class LLMError(AskdocsError):
    """The optional LLM endpoint failed, timed out or answered nonsense."""


class DiskFullError(AskdocsError):
    """No space left where askdocs writes; the write was abandoned, nothing was changed."""

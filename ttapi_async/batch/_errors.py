"""The batch's own errors: a folder that cannot be used, and a journal that cannot be written."""

from __future__ import annotations

import errno as errnos
import sqlite3

from .._errors import TTAPIError

__all__ = [
    "FolderLockedError",
    "JournalCorruptError",
    "JournalWriteError",
    "OutputFolderError",
    "UnjournaledOutputError",
]


class OutputFolderError(TTAPIError):
    """Raise when the output folder cannot be used as it is; nothing has been sent."""


class FolderLockedError(OutputFolderError):
    """Raise when another run holds the output folder's lock."""

    def __init__(self, message: str, *, holder: str = "") -> None:
        super().__init__(message)
        #: what the holder wrote into the lock file (pid, host, start time), if readable
        self.holder = holder


class UnjournaledOutputError(OutputFolderError):
    """Raise when a folder holds images or a manifest but no journal to say what was paid."""


class JournalCorruptError(OutputFolderError, ValueError):
    """Raise when the journal cannot be read (not SQLite, damaged, or another schema)."""


class JournalWriteError(TTAPIError):
    """Raise when a journal commit failed (a full disk, a lost file); ``errno`` says which."""

    def __init__(self, message: str, *, errno: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno

    @property
    def disk_full(self) -> bool:
        """Return True when the disk (or the database's size limit) is full."""
        return self.errno == errnos.ENOSPC

    @classmethod
    def of(cls, exc: BaseException, path: object) -> JournalWriteError:
        """Return the error a failed commit of ``path`` raised as ``exc`` means."""
        code = getattr(exc, "errno", None)
        if isinstance(exc, sqlite3.Error):
            # SQLITE_FULL has no errno; its code (3.11+) or its text says what it is.
            full = getattr(exc, "sqlite_errorcode", None) == 13 or "disk is full" in str(exc)
            code = errnos.ENOSPC if full else None
        return cls(f"cannot write the journal {path}: {exc}", errno=code)

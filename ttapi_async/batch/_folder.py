"""The output folder's guards: one run at a time, and no paying again for lost records.

Two runs over one folder would each submit what the other is submitting: the lock is an
OS-level one (``flock``), so it ends with its process, however that process ends. A
folder holding images but no journal has lost the record of what was paid for: running
over it would pay for everything again.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import sys
from pathlib import Path
from typing import Final

from ._errors import FolderLockedError, UnjournaledOutputError
from ._journal import Journal
from ._outputs import MANIFEST_NAME

__all__ = ["LOCK_NAME", "FolderLock", "refuse_unjournaled"]

LOCK_NAME: Final = ".ttapi-batch.lock"
_IMAGE_SUFFIXES: Final = frozenset({".png", ".jpg", ".jpeg", ".webp"})

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class FolderLock:
    """An exclusive, OS-level lock on an output folder, held for a whole run."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """Return True while this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock, or raise ``FolderLockedError`` saying who holds it."""
        if self._fd is not None:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _try_lock(fd)
        except OSError:
            holder = _read_holder(fd)
            os.close(fd)
            raise FolderLockedError(
                f"{self.folder} is in use by another ttapi batch "
                f"({holder or 'holder unknown'}): wait for it to end, or use another folder",
                holder=holder,
            ) from None
        started = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}, started {started}".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Let the folder go (a no-op when not held)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # nobody holds it now: say nothing stale
            _unlock(fd)
        finally:
            os.close(fd)

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        return os.pread(fd, 300, 0).decode("utf-8", "replace").strip()
    except OSError:
        return ""


def refuse_unjournaled(folder: Path, journal: Journal) -> None:
    """Raise ``UnjournaledOutputError`` when ``folder`` holds outputs the journal never saw."""
    if journal.item_count() > 0:
        return
    found = []
    manifest = folder / MANIFEST_NAME
    with contextlib.suppress(OSError):
        if manifest.stat().st_size > 0:
            found.append(MANIFEST_NAME)
    images = _count_images(folder)
    if images:
        found.append(f"{images}{'+' if images >= 1000 else ''} image(s)")
    if found:
        raise UnjournaledOutputError(
            f"{folder} holds {' and '.join(found)} but its journal ({journal.path.name}) is "
            "missing or empty, so nothing says what was already paid for: use another "
            "folder, or --force to submit every item again (they are billed again)"
        )


def _count_images(folder: Path, limit: int = 1000) -> int:
    count = 0
    with contextlib.suppress(OSError), os.scandir(folder) as top:
        for entry in top:
            if entry.is_file() and Path(entry.name).suffix.lower() in _IMAGE_SUFFIXES:
                count += 1
            elif entry.is_dir(follow_symlinks=False):
                # An item of several images has a folder of its own: 1.png, 2.png...
                with contextlib.suppress(OSError), os.scandir(entry.path) as inner:
                    count += sum(
                        1
                        for sub in inner
                        if sub.is_file() and Path(sub.name).suffix.lower() in _IMAGE_SUFFIXES
                    )
            if count >= limit:
                break
    return count

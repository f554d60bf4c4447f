"""The shared batch's own errors (importing them imports no Redis client)."""

from __future__ import annotations

from collections.abc import Sequence

from .._errors import TTAPIError
from ._errors import JournalWriteError
from ._states import InputChangedError

__all__ = ["RedisDurabilityError", "SharedInputChangedError", "SharedStoreError"]


class RedisDurabilityError(TTAPIError):
    """Raise when Redis would not keep a ``submitting`` mark through a restart.

    A shared batch refuses to run unless Redis persists every write (``appendonly yes``
    and ``appendfsync always``), or the caller accepts the risk (``accept_risk=True``,
    ``--accept-redis-risk``). Nothing was sent.
    """

    def __init__(self, message: str, *, appendonly: str | None, appendfsync: str | None) -> None:
        super().__init__(message)
        self.appendonly = appendonly
        self.appendfsync = appendfsync


class SharedInputChangedError(InputChangedError):
    """Raise when the input differs from the batch already recorded under this name."""

    def __init__(
        self, name: str, changed: Sequence[str], removed: Sequence[str], total: int
    ) -> None:
        super().__init__(changed, removed, total)
        self.name = name
        text = str(self).replace("the batch already in this folder", f"batch {name!r}", 1)
        self.args = (text.replace("a new output folder", "a new --name", 1),)


class SharedStoreError(JournalWriteError):
    """Raise when the batch's Redis store cannot be reached or written; the run stops.

    Nothing is lost that Redis had acknowledged: running the same command again once Redis
    is back resumes the batch.
    """

"""The shared batch's own errors (importing them imports no Redis client)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from .._errors import TTAPIError
from ._errors import JournalWriteError
from ._states import InputChangedError

__all__ = [
    "RedisDurabilityError",
    "SharedInputChangedError",
    "SharedRunnersLiveError",
    "SharedStoreError",
]


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


class SharedRunnersLiveError(TTAPIError):
    """Raise when ``force`` would re-plan a batch while other runners of it are live.

    Redoing a changed item (or forgetting a removed one) that a live runner may be
    submitting could pay for it twice, so the re-plan is refused and nothing in the batch
    changes. Stop those runners, or wait until they are declared dead (their heartbeat ran
    out), and run again. The CLI exits 2, as for a folder another run holds.
    """

    def __init__(self, name: str, live: Sequence[str], *, wait: float | None) -> None:
        self.name = name
        #: the other runners whose heartbeat is live
        self.live = tuple(live)
        #: seconds until the last of them is dead if they all stopped now (None: unknown)
        self.wait = wait
        dead = f" (in {math.ceil(wait)} s at most)" if wait is not None else ""
        super().__init__(
            f"--force refused: {len(self.live)} other runner(s) of batch {name!r} are live "
            "by their heartbeat, and redoing an item one of them is submitting would pay for "
            "it twice; stop them (a runner stopped cleanly leaves at once) or wait until they "
            f"are declared dead when their heartbeat runs out{dead}, then run it again "
            "(nothing was changed)"
        )


class SharedStoreError(JournalWriteError):
    """Raise when the batch's Redis store cannot be reached or written; the run stops.

    Nothing is lost that Redis had acknowledged: running the same command again once Redis
    is back resumes the batch.
    """

"""What the watcher keeps per pending job: ``WatchEntry``, the state only the watcher writes.

``Job`` inherits it, so a pending job stays one slotted object (no second object per job);
the job itself only reads ``kind``, ``started`` and ``flags`` (for its ``eta`` and repr).
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ._kinds import JobKind
    from ._schedule import Plan

__all__ = [
    "AGAIN",
    "FOLLOWER",
    "HINTED",
    "IN_FLIGHT",
    "LEARNABLE",
    "LOGGED_UNKNOWN",
    "SETTLED",
    "JobFlags",
    "WatchEntry",
]


class JobFlags(enum.IntFlag):
    """The bits of ``WatchEntry.flags``; ``JobFlags(entry.flags)`` reads them by name."""

    #: the job's start is known: its duration may teach the schedule
    LEARNABLE = 1
    #: an unknown status was logged for it already
    LOGGED_UNKNOWN = 2
    #: the next fetch was asked for by a callback: it is close to the finish
    HINTED = 4
    #: a fetch is running
    IN_FLIGHT = 8
    #: fetch again as soon as the running fetch returns
    AGAIN = 16
    #: a cold job that polls sparsely until the scouts of its kind see a finish
    FOLLOWER = 32
    #: the watcher is done with it (the job has its outcome)
    SETTLED = 64


# The one place the poll path gets its bits from. They are plain ints, and so is
# ``WatchEntry.flags``: every poll tests and sets flags about ten times, and IntFlag's
# operators run Python code (about 1 us each against 0.05 us for ints, measured on
# 3.11 and 3.13), which would add more than the whole rest of a poll's bookkeeping.
LEARNABLE: Final = JobFlags.LEARNABLE.value
LOGGED_UNKNOWN: Final = JobFlags.LOGGED_UNKNOWN.value
HINTED: Final = JobFlags.HINTED.value
IN_FLIGHT: Final = JobFlags.IN_FLIGHT.value
AGAIN: Final = JobFlags.AGAIN.value
FOLLOWER: Final = JobFlags.FOLLOWER.value
SETTLED: Final = JobFlags.SETTLED.value


class WatchEntry:
    """The watcher's bookkeeping for one pending job, all times on the watcher's clock.

    Written by the watcher and its helpers (``_watcher``, ``_nextpoll``, the due-time heap)
    only. ``id`` is the job id; ``kind`` what it shares with jobs of its kind; ``started``
    when it was submitted (now, if unknown); ``deadline`` when it times out; ``plan`` the
    learned poll plan it follows (None on a cold start); ``due`` its next poll (None while
    not scheduled); ``prev`` its last poll that found it pending; ``polls`` how many did;
    ``errors`` the transient fetch failures in a row; ``flags`` the ``JobFlags`` bits.
    """

    __slots__ = (
        "deadline",
        "due",
        "errors",
        "flags",
        "id",
        "kind",
        "plan",
        "polls",
        "prev",
        "started",
    )

    def __init__(
        self,
        job_id: str,
        kind: JobKind,
        *,
        started: float,
        deadline: float,
        learnable: bool,
        plan: Plan | None,
    ) -> None:
        self.id = job_id
        self.kind = kind
        self.started = started
        self.deadline = deadline
        self.flags: int = LEARNABLE if learnable else 0
        self.plan = plan
        self.due: float | None = None
        self.prev = started
        self.polls = 0
        self.errors = 0

    # Heap entries are (due, id, entry); ties on both happen only for one entry's stale ones.
    def __lt__(self, other: WatchEntry) -> bool:
        return False

"""Kinds of job: what jobs of one family and model share (fetch, learned schedule, host)."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ._models import JobResult, JobStatus
from ._schedule import DurationStats, LearnedWait, PollSchedule

if TYPE_CHECKING:
    from ._job import JobHost

__all__ = ["FetchFunction", "JobKind", "Kinds", "ResultFactory"]

#: Fetch one job's status by id (one poll).
FetchFunction = Callable[[str], Awaitable[JobStatus]]
#: Build a finished job's result from its last status.
ResultFactory = Callable[[JobStatus], JobResult]


class JobKind:
    """What jobs of one kind share: how to fetch them, what their schedule learned, and the
    watcher that polls them (``host``: kept here rather than in every job, a slot less each).
    """

    __slots__ = ("fetch", "host", "key", "make_result", "resume_hint", "wait")

    def __init__(
        self,
        key: str,
        fetch: FetchFunction,
        wait: LearnedWait,
        make_result: ResultFactory,
        resume_hint: str,
        host: JobHost,
    ) -> None:
        self.key = key
        self.fetch = fetch
        self.wait = wait
        self.make_result = make_result
        self.resume_hint = resume_hint
        self.host = host


class Kinds:
    """The kinds a watcher knows, and one learned schedule per key (shared by its fetches)."""

    __slots__ = ("_kinds", "host", "offload", "rng", "schedule", "waits")

    def __init__(
        self, schedule: PollSchedule, rng: random.Random, host: JobHost, *, offload: bool = False
    ) -> None:
        self.schedule = schedule
        self.rng = rng
        self.host = host
        #: make the learned schedules' plans in a thread (see ``LearnedWait``)
        self.offload = offload
        self._kinds: dict[tuple[str, Any], JobKind] = {}
        self.waits: dict[str, LearnedWait] = {}

    def set_schedule(self, schedule: PollSchedule) -> None:
        """Make every kind, known and future, follow ``schedule`` (keeping what it learned)."""
        self.schedule = schedule
        for wait in self.waits.values():
            wait.schedule = schedule

    def wait_for(self, key: str) -> LearnedWait:
        """Return the learned schedule of ``key``, creating it on first use."""
        wait = self.waits.get(key)
        if wait is None:
            stats = DurationStats(self.schedule.window, self.rng)
            wait = LearnedWait(self.schedule, stats, self.rng, offload=self.offload)
            self.waits[key] = wait
        return wait

    def get(
        self,
        key: str,
        fetch: FetchFunction | None,
        make_result: ResultFactory | None,
        resume_hint: str | None,
    ) -> JobKind:
        """Return the kind of ``key`` fetched with ``fetch`` (the same object every time)."""
        if fetch is None:
            raise TypeError("no fetch function: pass fetch= to JobWatcher() or to watch()")
        found = self._kinds.get((key, fetch))
        if found is None:
            found = JobKind(
                key,
                fetch,
                self.wait_for(key),
                make_result or JobResult.from_status,
                resume_hint or "JobWatcher.watch",
                self.host,
            )
            self._kinds[(key, fetch)] = found
        return found

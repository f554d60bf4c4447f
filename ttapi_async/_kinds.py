"""Kinds of job: what jobs of one family and model share (fetch, learned schedule)."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import Any

from ._models import JobResult, JobStatus
from ._schedule import DurationStats, LearnedWait, PollSchedule

__all__ = ["FetchFunction", "JobKind", "Kinds", "ResultFactory"]

#: Fetch one job's status by id (one poll).
FetchFunction = Callable[[str], Awaitable[JobStatus]]
#: Build a finished job's result from its last status.
ResultFactory = Callable[[JobStatus], JobResult]


class JobKind:
    """What jobs of one kind share: how to fetch them, and what their schedule learned."""

    __slots__ = ("fetch", "key", "make_result", "resume_hint", "wait")

    def __init__(
        self,
        key: str,
        fetch: FetchFunction,
        wait: LearnedWait,
        make_result: ResultFactory,
        resume_hint: str,
    ) -> None:
        self.key = key
        self.fetch = fetch
        self.wait = wait
        self.make_result = make_result
        self.resume_hint = resume_hint


class Kinds:
    """The kinds a watcher knows, and one learned schedule per key (shared by its fetches)."""

    __slots__ = ("_kinds", "rng", "schedule", "waits")

    def __init__(self, schedule: PollSchedule, rng: random.Random) -> None:
        self.schedule = schedule
        self.rng = rng
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
            wait = LearnedWait(self.schedule, stats, self.rng)
            self.waits[key] = wait
        return wait

    def get(
        self,
        key: str,
        fetch: FetchFunction,
        make_result: ResultFactory | None,
        resume_hint: str | None,
    ) -> JobKind:
        """Return the kind of ``key`` fetched with ``fetch`` (the same object every time)."""
        found = self._kinds.get((key, fetch))
        if found is None:
            found = JobKind(
                key,
                fetch,
                self.wait_for(key),
                make_result or JobResult.from_status,
                resume_hint or "JobWatcher.watch",
            )
            self._kinds[(key, fetch)] = found
        return found

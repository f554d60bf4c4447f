"""What a shared batch holds: counts per state and per runner.

``batch_status`` reads every item's state and runner (pipelined, a chunk at a time) and
the runners' heartbeats; ``_shared_collect`` gathers the batch into one folder.
"""

from __future__ import annotations

from typing import Any, Final

import attrs

from ._shared import Store
from ._shared_plan import count_states
from ._states import DONE, FAILED, PENDING, STATES, SUBMITTED, SUBMITTING, UNKNOWN

__all__ = ["BatchStatus", "RunnerStatus", "batch_status"]

#: The states of an item some runner is working on.
IN_FLIGHT: Final = (PENDING, SUBMITTING, SUBMITTED)


@attrs.frozen
class RunnerStatus:
    """One runner's share: its items per state, and whether its heartbeat still runs."""

    runner: str
    counts: dict[str, int]
    alive: bool
    taken_over: bool
    #: still registered: silent and not yet taken over when not ``alive``
    registered: bool = False

    @property
    def in_flight(self) -> int:
        """Return the items it holds that have not ended."""
        return sum(self.counts.get(s, 0) for s in IN_FLIGHT)


@attrs.frozen
class BatchStatus:
    """A shared batch's items per state, and per runner (the one holding or settling each)."""

    name: str
    total: int
    counts: dict[str, int]
    runners: tuple[RunnerStatus, ...]

    @property
    def finished(self) -> bool:
        """Return True when every item is done."""
        return self.total > 0 and self.counts.get(DONE, 0) == self.total

    def record(self) -> dict[str, Any]:
        """Return the status as one JSON-ready record."""
        return {
            "name": self.name,
            "total": self.total,
            "counts": self.counts,
            "runners": [{**attrs.asdict(r), "in_flight": r.in_flight} for r in self.runners],
        }

    def lines(self) -> list[str]:
        """Return the status as a few lines of text."""
        c = self.counts
        queued = c.get(PENDING, 0) - sum(r.counts.get(PENDING, 0) for r in self.runners)
        out = [
            f"batch {self.name!r}: {self.total} items: {c.get(DONE, 0)} done, "
            f"{c.get(FAILED, 0)} failed, {c.get(UNKNOWN, 0)} unknown, "
            f"{sum(r.in_flight for r in self.runners)} in flight, {max(0, queued)} queued"
        ]
        for r in self.runners:
            mark = "alive" if r.alive else "taken over" if r.taken_over else "silent"
            mark = "left" if mark == "silent" and not r.registered else mark
            out.append(
                f"  runner {r.runner} ({mark}): {r.counts.get(DONE, 0)} done, "
                f"{r.counts.get(FAILED, 0)} failed, {r.counts.get(UNKNOWN, 0)} unknown, "
                f"{r.in_flight} in flight"
            )
        return out


async def batch_status(store: Store, name: str) -> BatchStatus:
    """Return the batch's counts, per state and per runner."""
    counts, per_runner = await count_states(store)
    redis = store.redis
    runners = sorted(per_runner)
    known = set(await store.call(redis.smembers, store.key("runners")))
    gone = set(await store.call(redis.smembers, store.key("gone")))
    runners += sorted(known - set(runners))
    pipe = redis.pipeline(transaction=False)
    for runner in runners:
        pipe.exists(store.key("alive", runner))
    alive = await store.call(pipe.execute) if runners else []
    return BatchStatus(
        name,
        sum(counts.values()),
        counts,
        tuple(
            RunnerStatus(
                r, per_runner.get(r, dict.fromkeys(STATES, 0)), bool(a), r in gone, r in known
            )
            for r, a in zip(runners, alive, strict=True)
        ),
    )

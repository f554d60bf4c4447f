"""A per-second cap that no one-second window can exceed (a sliding log, not a token bucket).

A token bucket that starts full lets a whole bucket through at once and then a bucket's
worth more within the same second: about twice the cap in the first second, which is
exactly when a restarted process resumes its jobs and a user's cap matters most.
"""

from __future__ import annotations

import math
from array import array

__all__ = ["RateCap"]


class RateCap:
    """Allow at most ``count`` events in any window of ``period`` seconds of a clock.

    ``per_second`` of 1 or more allows ``floor(per_second)`` events a second (a window
    holds whole events); below 1, one event every ``1 / per_second`` seconds. The times of
    the last ``count`` events are kept in a ring: an event is allowed when the oldest of
    them is at least one period old, so bursts up to the cap stay possible and every
    window of the period sees at most ``count``. O(1) per event, ``count`` floats of memory.
    """

    __slots__ = ("_next", "_times", "count", "per_second", "period")

    def __init__(self, per_second: float, history: list[float] | None = None) -> None:
        if not per_second > 0 or math.isinf(per_second):
            raise ValueError(f"max_per_second must be > 0 (and finite) or None, got {per_second}")
        self.per_second = per_second
        if per_second >= 1.0:
            self.count = int(per_second)
            self.period = 1.0
        else:
            self.count = 1
            self.period = 1.0 / per_second
        self._times = array("d", [-math.inf]) * self.count
        self._next = 0
        for when in (history or [])[-self.count :]:
            self._times[self._next] = when
            self._next = (self._next + 1) % self.count

    def history(self) -> list[float]:
        """Return the times of the events still remembered, oldest first (to resize a cap)."""
        ring = self._times.tolist()
        ordered = ring[self._next :] + ring[: self._next]
        return [t for t in ordered if t > -math.inf]

    def wait(self, now: float) -> float:
        """Return how long from ``now`` until one more event is allowed (0.0: now)."""
        return max(self._times[self._next] + self.period - now, 0.0)

    def take(self, now: float) -> bool:
        """Record one event at ``now`` if the cap allows it; return whether it did."""
        slot = self._next
        # The same test as wait()'s: wait(now) is 0.0 exactly when this lets the event through.
        if self._times[slot] + self.period > now:
            return False
        self._times[slot] = now
        self._next = slot + 1 if slot + 1 < self.count else 0
        return True

    def __repr__(self) -> str:
        return f"RateCap({self.per_second:g}/s: {self.count} per {self.period:g} s)"

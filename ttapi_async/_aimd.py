"""The adaptive limit's arithmetic: slow start, additive growth, a multiplicative decrease.

One rule set for every limiter (the batch's ``AdaptiveLimiter``, ``LocalCoordinator``; the
Lua scripts of ``RedisCoordinator`` mirror it line by line, and a test replays one trace
through all of them).

Why the ceiling: the service's limit of jobs in progress is a fixed number it does not
publish. Plain AIMD finds it, then keeps probing one slot above it every
``grow_every x (1 - decrease) x limit`` acceptances (80 at a limit of 200), and each probe
costs at least one refusal: about 2.5% of all submits. A refusal at the level of the last
one says the ceiling has not moved, so each repeat doubles the acceptances that the step to
one slot above it waits for (up to ``MAX_BACKOFF`` times ``grow_every``: 512 acceptances by
default, 2.5 minutes at 200 jobs of a minute), while the climb back up to the ceiling keeps
its pace. Once that probe is accepted, growth is at the usual pace again, and two
``_moved(ceiling)`` above the ceiling with no refusal it is forgotten: the service's limit
was raised, or another client on the account left.
"""

from __future__ import annotations

import math

__all__ = ["MAX_BACKOFF", "Aimd"]

#: the longest wait for a probe above a known ceiling, in multiples of ``grow_every``
MAX_BACKOFF = 64


def _moved(ceiling: float) -> float:
    """How far from ``ceiling`` a level is another ceiling (2%, and at least 1 slot)."""
    return max(1.0, 0.02 * ceiling)


class Aimd:
    """The limit's state; the caller applies its cap, minimum and rounds (epochs)."""

    __slots__ = ("ceiling", "credit", "limit", "probes", "slow")

    def __init__(self, initial: float) -> None:
        self.limit = float(initial)
        #: slow start: one slot more per acceptance until the first refusal
        self.slow = True
        #: acceptances since the last slot was added
        self.credit = 0
        #: the whole slots in use at the last refusal (0.0: none known)
        self.ceiling = 0.0
        #: refusals in a row at about that level
        self.probes = 0

    def grow(self, cap: float, grow_every: int) -> bool:
        """Count one acceptance; return True if the limit grew."""
        if self.limit >= cap:
            return False
        if not self.slow:
            need = grow_every
            if self.ceiling and math.floor(self.limit) == self.ceiling:
                # the step to one slot more than the last refusal saw: the probe
                need *= min(MAX_BACKOFF, 2 ** (self.probes + 1))
            self.credit += 1
            if self.credit < need:
                return False
            self.credit = 0
        self.limit = min(cap, self.limit + 1.0)
        if self.ceiling and math.floor(self.limit) >= self.ceiling + 2 * _moved(self.ceiling):
            self.ceiling, self.probes = 0.0, 0  # above it with no refusal: it moved
        return True

    def shrink(self, base: float, decrease: float, minimum: float) -> None:
        """Apply the first refusal of a round; ``base`` is the level it was refused at."""
        self.slow = False
        self.credit = 0
        # Whole slots: a step that would hand out one more than this is the probe.
        level = float(math.floor(base))
        if self.ceiling and abs(level - self.ceiling) <= _moved(self.ceiling):
            self.probes = min(self.probes + 1, 16)
        else:
            self.probes = 0
        self.ceiling = level
        self.limit = max(minimum, base * decrease)

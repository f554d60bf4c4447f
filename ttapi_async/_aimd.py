"""The adaptive limit's arithmetic: slow start, additive growth, a multiplicative decrease.

One rule set for every limiter (the batch's ``AdaptiveLimiter``, ``LocalCoordinator``; the
Lua scripts of ``RedisCoordinator`` mirror it line by line, and a test replays one trace
through all of them).

Why the ceiling: the service's limit of jobs in progress is a fixed number it does not
publish. Plain AIMD finds it, then keeps probing one slot above it every
``grow_every x (1 - decrease) x limit`` acceptances (80 at a limit of 200), and each probe
costs at least one refusal: about 2.5% of all submits. So growth near the level of the last
refusal (from ``_moved(ceiling)`` below it) is probing, and each refusal again at about that
level doubles the acceptances a probing step waits for (up to ``MAX_BACKOFF`` times
``grow_every``: 512 acceptances by default, 2.5 minutes at 200 jobs of a minute), while the
climb back up to it keeps its pace. The level a 499 is seen at counts the jobs whose end the
client has not seen yet, so it wanders (191-222 at a limit of 200 in the distributed batch
benchmark): a repeat moves the ceiling a quarter of the way, and "the same level" is within
5%. Two ``_moved(ceiling)`` above it with no refusal, it is forgotten: the service's limit
was raised, or another client on the account left.
"""

from __future__ import annotations

import math

__all__ = ["BAND", "MAX_BACKOFF", "Aimd"]

#: the longest wait for a probe above a known ceiling, in multiples of ``grow_every``
MAX_BACKOFF = 64
#: how far from a ceiling, as a share of it, a level is still that ceiling (see ``_moved``)
BAND = 0.05


def _moved(ceiling: float) -> float:
    """How far from ``ceiling`` a level is another ceiling (5%, and at least 1 slot).

    5%: the level a 499 is seen at counts the jobs whose end the client has not seen yet,
    and polls see an end about 5% of a job's duration late, so that count wanders by about
    that much (191-222 at a limit of 200 in the distributed batch benchmark)."""
    return max(1.0, BAND * ceiling)


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
            if self.ceiling and math.floor(self.limit) >= self.ceiling - _moved(self.ceiling):
                # near the level refusals come at, and above it: probing
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
            # the same ceiling seen again: follow where refusals come, not the last one
            self.ceiling = 0.75 * self.ceiling + 0.25 * level
        else:
            self.probes = 0
            self.ceiling = level
        self.limit = max(minimum, base * decrease)

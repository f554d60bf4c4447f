"""Deciding, per request, which faults strike and whether the key is over its rate.

Every draw comes from the fake's one seeded ``random.Random``, so a run with
the same seed and the same request order meets the same faults.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable

import attrs

from ._config import FaultRule

__all__ = ["FaultPlan", "Strike", "TokenBucket"]

_BEFORE = ("status", "drop_before")
_AFTER = ("drop_after", "malformed", "truncate")


@attrs.frozen
class Strike:
    """Tell what happens to one request: an added delay, a fault before and one after."""

    delay: float = 0.0
    before: FaultRule | None = None
    after: FaultRule | None = None
    #: the error status drawn for a "status" fault
    status: int = 0


_NO_STRIKE = Strike()


class _Armed:
    """Pair a rule with the hits it has left (None: unlimited)."""

    __slots__ = ("left", "rule")

    def __init__(self, rule: FaultRule) -> None:
        self.rule = rule
        self.left = rule.times


class FaultPlan:
    """Hold the active fault rules and draw which of them strike a request."""

    def __init__(self, rng: random.Random, rules: Iterable[FaultRule] = ()) -> None:
        self._rng = rng
        self._rules: list[_Armed] = []
        self.set(rules)

    @property
    def rules(self) -> tuple[FaultRule, ...]:
        """Return the rules still active, in order."""
        return tuple(armed.rule for armed in self._rules)

    def set(self, rules: Iterable[FaultRule]) -> None:
        """Replace every rule."""
        self._rules = [_Armed(rule) for rule in rules]

    def add(self, rule: FaultRule) -> None:
        """Add one rule after the others."""
        self._rules.append(_Armed(rule))

    def draw(self, method: str, path: str) -> Strike:
        """Draw the faults that strike one request (consuming limited rules)."""
        if not self._rules:
            return _NO_STRIKE
        delay = 0.0
        before: FaultRule | None = None
        after: FaultRule | None = None
        status = 0
        spent = False
        for armed in self._rules:
            rule = armed.rule
            if not rule.matches(method, path):
                continue
            if rule.kind in _BEFORE and before is not None:
                continue
            if rule.kind in _AFTER and after is not None:
                continue
            if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                continue
            if rule.kind == "delay":
                delay += rule.delay
            elif rule.kind in _BEFORE:
                before = rule
                if rule.kind == "status":
                    status = self._rng.choice(rule.status)
            else:
                after = rule
            if armed.left is not None:
                armed.left -= 1
                spent = spent or armed.left <= 0
        if spent:
            self._rules = [a for a in self._rules if a.left is None or a.left > 0]
        if before is None and after is None and delay == 0.0:
            return _NO_STRIKE
        return Strike(delay, before, after, status)


class TokenBucket:
    """Refill ``rate`` tokens per service second up to ``burst``; a request takes one."""

    __slots__ = ("burst", "rate", "stamp", "time_scale", "tokens")

    def __init__(self, rate: float, burst: int, now: float, time_scale: float) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.stamp = now
        self.time_scale = time_scale

    def take(self, now: float) -> int:
        """Take a token; return 0, or the whole service seconds to wait (Retry-After)."""
        elapsed = max(now - self.stamp, 0.0) / self.time_scale if self.time_scale else math.inf
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0
        return max(1, math.ceil((1.0 - self.tokens) / self.rate))

"""The spending cap of a batch: whether one more item may be submitted now.

Two meters: quota units of the job kinds (gpt4o, gpt) and usage tokens of the synchronous
ones (generate, edit, dalle3). What is spent is read from ``client.spent`` (relative to the
run's start); an item in flight is counted at the expected cost of one item, learned from
the items of its meter that finished. Until one has, a single item is let through at a time
(the probe that teaches the cost), so a cap can never be overrun by a whole concurrency's
worth of items of unknown cost.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING

from ._input import JOB_KINDS

if TYPE_CHECKING:
    from .._spent import Spending, SpentSnapshot

__all__ = ["Budget", "Verdict", "verdict"]


class Verdict(enum.Enum):
    GO = "go"  # submit it
    WAIT = "wait"  # not now: what is in flight may cost less than expected (a failure)
    STOP = "stop"  # the cap is reached: submit nothing more of this meter


def verdict(cap: int | None, spent: int, finished: int, in_flight: int) -> Verdict:
    """Decide on one more item of a meter (see the module's rules)."""
    if cap is None:
        return Verdict.GO
    if spent >= cap:
        return Verdict.STOP
    if finished == 0:  # the cost of an item is not known yet: one probe at a time
        return Verdict.GO if in_flight == 0 else Verdict.WAIT
    expected = spent / finished
    if spent + (in_flight + 1) * expected > cap:
        return Verdict.WAIT if in_flight else Verdict.STOP
    return Verdict.GO


class Budget:
    """Caps on a run's job quota and usage tokens; counts its items in flight per meter."""

    def __init__(self, spent: Spending, *, max_quota: int | None, max_tokens: int | None) -> None:
        for name, cap in (("max_quota", max_quota), ("max_tokens", max_tokens)):
            if cap is not None and (not isinstance(cap, int) or cap < 0):
                raise ValueError(f"{name} must be an int >= 0, got {cap!r}")
        self._spent = spent
        self._start: SpentSnapshot = spent.snapshot()
        self.max_quota = max_quota
        self.max_tokens = max_tokens
        self._in_flight = {True: 0, False: 0}  # keyed by "is a job kind"
        #: what stopped submission (for the summary), None while nothing did
        self.reason: str | None = None

    def check(self, kind: str) -> Verdict:
        """Return whether one more item of ``kind`` may be submitted now."""
        used = self._spent.snapshot() - self._start
        is_job = kind in JOB_KINDS
        if is_job:
            cap, spent, finished, unit = self.max_quota, used.total_quota, used.jobs, "quota"
        else:
            cap, spent, finished, unit = self.max_tokens, used.total_tokens, used.requests, "tokens"
        decided = verdict(cap, spent, finished, self._in_flight[is_job])
        if decided is Verdict.STOP and self.reason is None:
            flag = "--max-quota" if is_job else "--max-tokens"
            self.reason = (
                f"spending cap reached ({flag} {cap}: {spent} {unit} spent); "
                "the items not submitted stay pending for a later run"
            )
        return decided

    def begin(self, kind: str) -> None:
        """Count an item of ``kind`` as in flight."""
        self._in_flight[kind in JOB_KINDS] += 1

    def end(self, kind: str) -> None:
        """Count an item of ``kind`` as finished (its cost, if any, is in ``spent`` now)."""
        self._in_flight[kind in JOB_KINDS] -= 1

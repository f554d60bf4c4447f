"""When to poll a job next: a tenacity wait strategy, and one that learns from recent jobs.

A job's polls are placed by a tenacity wait object called with a ``RetryCallState``
whose ``attempt_number`` is the number of polls so far and whose ``seconds_since_start``
is the job's age (both in the watcher's clock). The default strategy, ``LearnedWait``,
keeps the durations of recent jobs of the same kind (family and model) and polls

- for the first time near the 2nd percentile of those durations (rarely too late),
- then at intervals growing with the job's age: about 14% of the age before the
  median duration, 6% after it, where a job still running is most likely to finish
  soon (the chance of finishing in the next second grows with age for lognormal-like
  durations),

all clamped to ``[min_interval, max_interval]``. Placing polls at a fixed fraction of
the job's age keeps the detection delay a fixed fraction of the duration; placing the
dense ones where jobs finish keeps the count of fetches low. The dense part runs to the
end (``dense_to=1.0``) on purpose: while a big batch runs, the recent durations are
those of its fastest jobs (the slow ones have not finished yet), so the quantiles read
low; an open-ended dense part turns that bias into a few more fetches instead of late
detections. Until ``min_samples``
durations are known (a cold start), it delegates to a plain tenacity strategy: a first
delay, then exponential backoff with jitter up to a cap.
"""

from __future__ import annotations

import array
import random
from typing import Any, cast

import attrs
import tenacity
from tenacity.wait import wait_base

__all__ = ["DurationStats", "LearnedWait", "PollSchedule", "poll_state", "wait_scaled"]


class wait_scaled(wait_base):
    """Multiply another tenacity wait by ``factor`` (to run a schedule on a faster clock)."""

    def __init__(self, inner: wait_base, factor: float) -> None:
        self.inner = inner
        self.factor = factor

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        return self.inner(retry_state) * self.factor


def _default_cold_wait() -> wait_base:
    # Between polls of a job of an unknown kind: 2 s, then x1.25 per poll up to 15 s,
    # plus up to 0.5 s of jitter so jobs submitted together do not poll together.
    return tenacity.wait_exponential(
        multiplier=2.0, exp_base=1.25, max=15.0
    ) + tenacity.wait_random(0, 0.5)


@attrs.frozen
class PollSchedule:
    """How a watcher spaces the polls of a job; every time is in seconds of its clock.

    ``wait`` is any tenacity wait strategy (``tenacity.wait_fixed(2)``...): it gives the
    delay after poll number ``attempt_number``. With ``learn`` (the default), it only
    serves until enough jobs of the same kind have finished; then the learned schedule
    described in this module's docstring takes over, within ``min_interval`` and
    ``max_interval``. ``deadline`` is how long a job is watched before
    ``JobTimeoutError``. ``first_delay`` is the first poll's delay on a cold start.
    """

    first_delay: float = 8.0
    wait: wait_base = attrs.field(factory=_default_cold_wait)
    deadline: float = 900.0
    learn: bool = True
    min_interval: float = 1.0
    max_interval: float = 30.0
    #: the learned first poll stays within these bounds
    min_first_delay: float = 1.0
    max_first_delay: float = 120.0
    #: the quantile of recent durations at which the first poll is placed
    first_quantile: float = 0.02
    #: intervals as a fraction of the job's age, inside and outside the quantiles
    #: [dense_from, dense_to] of recent durations (dense_to=1.0: no upper end)
    dense_ratio: float = 0.06
    sparse_ratio: float = 0.14
    dense_from: float = 0.55
    dense_to: float = 1.0
    #: recent durations kept per kind, and how many are needed before learning
    window: int = 512
    min_samples: int = 20
    #: each interval is shortened by a random fraction up to this (spreads the polls)
    jitter: float = 0.03
    #: the delay before polling again after a transient failure (doubles, up to 8x)
    error_backoff: float = 1.0

    def scaled(self, factor: float) -> PollSchedule:
        """Return this schedule for a clock running ``1/factor`` times faster (time-scaled)."""
        return attrs.evolve(
            self,
            first_delay=self.first_delay * factor,
            wait=wait_scaled(self.wait, factor),
            deadline=self.deadline * factor,
            min_interval=self.min_interval * factor,
            max_interval=self.max_interval * factor,
            min_first_delay=self.min_first_delay * factor,
            max_first_delay=self.max_first_delay * factor,
            error_backoff=self.error_backoff * factor,
        )


class DurationStats:
    """Keep a sample of recent durations of one kind of job and answer quantiles.

    The sample is a reservoir (Vitter's algorithm R) whose memory fades: the n-th
    duration enters with probability ``window / min(n, 16 * window)``, replacing a random
    one. Keeping the *last* finishers instead would be wrong after a big batch: its last
    finishers are its slowest jobs, and the next batch would poll far too late. With the
    reservoir, a batch of up to ``16 * window`` jobs is sampled evenly once it is done.
    """

    __slots__ = ("_count", "_dirty", "_rng", "_sorted", "_values", "window")

    def __init__(self, window: int = 512, rng: random.Random | None = None) -> None:
        self.window = window
        self._rng = rng or random.Random()
        self._values = array.array("d")
        self._sorted: list[float] = []
        self._dirty = 0
        self._count = 0

    def __len__(self) -> int:
        return len(self._values)

    def add(self, seconds: float) -> None:
        """Record one duration (ignored unless positive)."""
        if seconds <= 0:
            return
        self._count += 1
        if len(self._values) < self.window:
            self._values.append(seconds)
        else:
            slot = self._rng.randrange(min(self._count, 16 * self.window))
            if slot >= self.window:
                return
            self._values[slot] = seconds
        self._dirty += 1

    def stale(self) -> bool:
        """Tell whether enough was added since the last sort to sort again."""
        # Re-sorting 512 floats costs ~20 us; doing it once per 1/16th of the window keeps
        # the quantiles fresh enough at a negligible share of the per-poll cost.
        return not self._sorted or self._dirty * 16 >= len(self._values)

    def quantile(self, q: float) -> float:
        """Return the ``q`` quantile (0..1) of the kept durations; 0.0 when there are none."""
        values = self._values
        if not values:
            return 0.0
        if self.stale():
            self._sorted = sorted(values)
            self._dirty = 0
        ordered = self._sorted
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def snapshot(self) -> list[float]:
        """Return the kept durations (to save them and seed a later process)."""
        return list(self._values)


class Plan:
    """The quantiles one job's polls are placed by (shared by the jobs submitted together)."""

    __slots__ = ("dense_from", "dense_to", "first")

    def __init__(self, first: float, dense_from: float, dense_to: float) -> None:
        self.first = first
        self.dense_from = dense_from
        self.dense_to = dense_to

    def __repr__(self) -> str:
        return f"Plan(first={self.first:.3g}, dense={self.dense_from:.3g}..{self.dense_to:.3g})"


class LearnedWait(wait_base):
    """A tenacity wait that places polls by the durations of recent jobs of one kind.

    A job keeps the ``Plan`` current when it was submitted: the jobs of a batch must not
    learn from the batch's own fastest jobs while its slow ones are still running.
    Called as a plain tenacity wait, it uses the current plan.
    """

    def __init__(
        self,
        schedule: PollSchedule,
        stats: DurationStats,
        rng: random.Random | None = None,
    ) -> None:
        self.schedule = schedule
        self.stats = stats
        self.rng = rng or random.Random()
        self._plan: Plan | None = None

    def ready(self) -> bool:
        """Tell whether enough durations are known to use the learned schedule."""
        return self.schedule.learn and len(self.stats) >= self.schedule.min_samples

    def plan(self) -> Plan | None:
        """Return the plan for a job submitted now (None on a cold start)."""
        if not self.ready():
            return None
        if self._plan is None or self.stats.stale():
            s = self.schedule
            q = self.stats.quantile
            # Slightly under the quantile: the estimate comes from detected finishes, and
            # a first poll that creeps later would make every early job late.
            first = min(max(q(s.first_quantile) * 0.9, s.min_first_delay), s.max_first_delay)
            to = q(s.dense_to) if s.dense_to < 1.0 else float("inf")
            self._plan = Plan(first, q(s.dense_from), to)
        return self._plan

    def first_delay(self, plan: Plan | None = None) -> float:
        """Return the delay of a new job's first poll."""
        plan = plan or self.plan()
        first = self.schedule.first_delay if plan is None else plan.first
        # Jobs submitted together must not all poll in the same millisecond.
        return first * (1.0 - self.schedule.jitter * self.rng.random())

    def delay(self, retry_state: tenacity.RetryCallState, plan: Plan | None) -> float:
        """Return the wait after a poll of a job whose polls follow ``plan``."""
        s = self.schedule
        age = retry_state.seconds_since_start
        if age is None or plan is None or not s.learn:
            delay = s.wait(retry_state)
            return min(max(delay, s.min_interval), s.max_interval)
        return self.learned(age, plan)

    def learned(self, age: float, plan: Plan) -> float:
        """Return the learned wait after a poll at ``age`` (the watcher's hot path)."""
        s = self.schedule
        delay = age * (s.dense_ratio if plan.dense_from <= age <= plan.dense_to else s.sparse_ratio)
        if s.jitter:
            delay *= 1.0 - s.jitter * self.rng.random()
        return min(max(delay, s.min_interval), s.max_interval)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        return self.delay(retry_state, self.plan())


def poll_state() -> tenacity.RetryCallState:
    """Return a reusable ``RetryCallState`` to call wait strategies with.

    The watcher sets ``attempt_number``, ``start_time`` and ``outcome_timestamp`` (in its
    clock) before each call, so ``seconds_since_start`` is the job's age. One object
    serves every job: a state per job would cost memory for nothing.
    """
    state = tenacity.RetryCallState(cast(Any, None), None, (), {})
    state.outcome_timestamp = 0.0
    return state

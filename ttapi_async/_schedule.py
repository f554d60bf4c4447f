"""When to poll a job next: a tenacity wait strategy, and one that learns from recent jobs.

The learned schedule places polls at a fraction of each job's age, dense where jobs of its
kind finish; jobs still pending count as lower bounds (Kaplan-Meier). Why, and how the
cold start works: docs/watcher.md.
"""

from __future__ import annotations

import array
import math
import random
from typing import Any, cast

import attrs
import tenacity
from tenacity.wait import wait_base

__all__ = [
    "DurationStats",
    "LearnedWait",
    "PendingAges",
    "PollSchedule",
    "poll_state",
    "wait_scaled",
]


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
    serves until jobs of the same kind are known to be finishing at the job's age
    (counting the jobs still pending: see docs/watcher.md); then the learned
    schedule takes over, within ``min_interval`` and ``max_interval``. ``deadline`` is
    how long a job is watched before ``JobTimeoutError``. ``first_delay`` is the first
    poll's delay on a cold start.
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
    #: on a cold start, the share of jobs known to have finished by an age from which
    #: the learned fractions of the age replace the tenacity wait
    onset_quantile: float = 0.001
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

    @property
    def count(self) -> int:
        """Return how many durations were added in all (the kept ones are a sample)."""
        return self._count

    def ordered(self) -> list[float]:
        """Return the kept durations sorted (sorting again only when stale)."""
        if self._values and self.stale():
            self._sorted = sorted(self._values)
            self._dirty = 0
        return self._sorted

    def quantile(self, q: float) -> float:
        """Return the ``q`` quantile (0..1) of the kept durations; 0.0 when there are none."""
        if not self._values:
            return 0.0
        ordered = self.ordered()
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


#: PendingAges bins: 16 per octave from 1 ms (bin 0: never seen pending) to ~12 days.
_PER_OCTAVE = 16
_BASE = 1e-3
_NBINS = 30 * _PER_OCTAVE + 2
_SCALE = 1.0 / _BASE
_log2 = math.log2


def _bin(age: float) -> int:
    if age < _BASE:
        return 0
    return min(int(_log2(age * _SCALE) * _PER_OCTAVE) + 1, _NBINS - 1)


class PendingAges:
    """The right-censored observations of one kind: how many pending jobs were last seen
    pending at each age (a histogram with 16 bins per octave, so ~4% resolution).

    The watcher moves a job's count on each poll that finds it pending and removes it
    when it settles; a job never polled yet sits in bin 0 and tells nothing. Per-job
    cost: none (the age at the last poll is derived from the job's own fields).
    """

    __slots__ = ("counts", "moves", "total")

    def __init__(self) -> None:
        self.counts = [0] * _NBINS
        self.total = 0
        #: polls since the estimate was last computed (a trigger to compute it again)
        self.moves = 0

    def add(self, age: float) -> None:
        """Count one pending job last seen pending at ``age`` (0: not seen yet)."""
        self.counts[_bin(age)] += 1
        self.total += 1

    def move(self, old: float, new: float) -> None:
        """Record that a job last seen pending at ``old`` was seen pending at ``new``."""
        # _bin() inlined: this runs on every poll.
        b = int(_log2(old * _SCALE) * _PER_OCTAVE) + 1 if old >= _BASE else 0
        c = int(_log2(new * _SCALE) * _PER_OCTAVE) + 1 if new >= _BASE else 0
        if b == c:
            return
        counts = self.counts
        if b >= _NBINS or c >= _NBINS:
            b = min(b, _NBINS - 1)
            c = min(c, _NBINS - 1)
        if counts[b] > 0:
            counts[b] -= 1
            counts[c] += 1
            self.moves += 1

    def remove(self, age: float) -> None:
        """Forget a job last seen pending at ``age`` (it settled)."""
        counts = self.counts
        b = _bin(age)
        if counts[b] > 0:
            counts[b] -= 1
            self.total -= 1


def survival_quantiles(
    durations: list[float], weight: float, pending: PendingAges, qs: list[float]
) -> list[float]:
    """Return the ``qs`` quantiles (ascending) of a Kaplan-Meier estimate; inf when unknown.

    ``durations`` are sorted finished durations, each standing for ``weight`` jobs;
    ``pending`` holds the censored ones. A pending job counts as at risk up to the upper
    edge of its bin. The estimate stops at the first duration past which fewer jobs are
    known to have run (finished later, or seen pending later) than may have run unseen
    (pending, last seen earlier): there a poll round is under way and the few jobs
    already polled would tell the hazard of all.
    """
    out = [math.inf] * len(qs)
    n = len(durations)
    counts = pending.counts
    seen = pending.total - counts[0]
    if n == 0 or not qs:
        return out
    if seen <= 0:
        return [durations[min(n - 1, int(q * n))] for q in qs]
    suffix = [0] * (_NBINS + 1)
    acc = 0
    for b in range(_NBINS - 1, 0, -1):
        acc += counts[b]
        suffix[b] = acc
    survival = 1.0
    k = 0
    target = qs[0] + 1e-9
    for i, x in enumerate(durations):
        later = suffix[_bin(x)]
        at_risk = weight * (n - i) + later
        if seen - later > at_risk:
            break
        survival *= 1.0 - weight / at_risk
        while 1.0 - survival > target:
            out[k] = x
            k += 1
            if k == len(qs):
                return out
            target = qs[k] + 1e-9
    return out


def _known(new: float, old: float) -> float:
    return new if new < math.inf else old


class LearnedWait(wait_base):
    """A tenacity wait that places polls by the durations of recent jobs of one kind.

    ``stats`` holds finished durations, ``pending`` the ages at which the jobs still
    pending were last seen (fed by the watcher); quantiles combine both (see
    docs/watcher.md). A job keeps the ``Plan`` current when it was submitted, once every
    quantile is known; before that (a cold start), it follows what is known at each poll.
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
        self.pending = PendingAges()
        self._plan: Plan | None = None
        self._fresh = False
        self._next_count = 0
        self._next_moves = 0
        #: survival estimates (inf: not known yet)
        self._onset = math.inf
        self._first = math.inf
        self._dense_from = math.inf
        self._dense_to = math.inf

    def ready(self) -> bool:
        """Tell whether enough durations are known to use the learned schedule."""
        return self.schedule.learn and len(self.stats) >= self.schedule.min_samples

    def _stale(self) -> bool:
        # Estimate again after 1/16th of the sample's size in new durations (at least one),
        # or after polls worth a quarter of the pending jobs (at least 16). Called on every
        # poll of a cold job: the thresholds are computed by estimate().
        return (
            self.stats._count >= self._next_count
            or self.pending.moves >= self._next_moves
            or not self._fresh
        )

    def estimate(self) -> None:
        """Compute the quantiles again from the finished and the pending jobs."""
        s = self.schedule
        stats = self.stats
        ordered = stats.ordered()
        self.pending.moves = 0
        self._next_count = stats.count + max(len(stats) // 16, 1)
        self._next_moves = max(64, self.pending.total) // 4
        self._fresh = True
        wanted = [s.onset_quantile, s.first_quantile, s.dense_from]
        if s.dense_to < 1.0:
            wanted.append(s.dense_to)
        qs = sorted(set(wanted))
        weight = 1.0
        if ordered:
            # How many finished jobs the kept sample stands for: all of them while a batch
            # runs (they weigh against its pending jobs), fading to 16 windows after.
            mass = min(stats.count, max(16 * stats.window, 2 * self.pending.total))
            weight = max(mass, len(ordered)) / len(ordered)
        found = dict(zip(qs, survival_quantiles(ordered, weight, self.pending, qs), strict=True))
        # An estimate cut short (a poll round under way) does not forget what the last one
        # knew; any new value replaces the old one.
        self._onset = _known(found[s.onset_quantile], self._onset)
        self._first = _known(found[s.first_quantile], self._first)
        self._dense_from = _known(found[s.dense_from], self._dense_from)
        self._dense_to = _known(found[s.dense_to], self._dense_to) if s.dense_to < 1.0 else math.inf
        known = (
            self._first < math.inf
            and self._dense_from < math.inf
            and (s.dense_to >= 1.0 or self._dense_to < math.inf)
        )
        if self.ready() and known:
            # Slightly under the quantile: the estimate comes from detected finishes, and
            # a first poll that creeps later would make every early job late.
            first = min(max(self._first * 0.9, s.min_first_delay), s.max_first_delay)
            self._plan = Plan(first, self._dense_from, self._dense_to)
        else:
            self._plan = None

    def plan(self) -> Plan | None:
        """Return the plan for a job submitted now (None on a cold start)."""
        if not self.schedule.learn:
            return None
        if self._stale():
            self.estimate()
        return self._plan

    def first_delay(self, plan: Plan | None = None) -> float:
        """Return the delay of a new job's first poll."""
        plan = plan or self.plan()
        s = self.schedule
        if plan is not None:
            first = plan.first
        else:
            first = s.first_delay
            if s.learn:
                if self.ready() and self._first < math.inf:
                    first = min(max(self._first * 0.9, s.min_first_delay), s.max_first_delay)
                elif self._onset < first:
                    # Jobs of this kind are already finishing before the cold first poll.
                    first = max(self._onset * 0.9, s.min_first_delay)
        # Jobs submitted together must not all poll in the same millisecond.
        return first * (1.0 - s.jitter * self.rng.random())

    def delay(self, retry_state: tenacity.RetryCallState, plan: Plan | None) -> float:
        """Return the wait after a poll of a job whose polls follow ``plan``."""
        s = self.schedule
        age = retry_state.seconds_since_start
        if age is None or not s.learn:
            delay = s.wait(retry_state)
            return min(max(delay, s.min_interval), s.max_interval)
        if plan is not None:
            return self.learned(age, plan)
        return self.cold(age, retry_state)

    def cold(self, age: float, retry_state: tenacity.RetryCallState) -> float:
        """Return the wait after a poll at ``age`` while some quantile is not known yet."""
        s = self.schedule
        if self._stale():
            self.estimate()
        onset = self._onset
        if age < onset:
            # Before jobs of this kind are known to finish: the tenacity wait, but not
            # past the onset once it is known.
            delay = s.wait(retry_state)
            if onset < math.inf:
                delay = min(delay, max(onset - age, age * s.sparse_ratio))
            return min(max(delay, s.min_interval), s.max_interval)
        dense = self._dense_from <= age <= self._dense_to
        delay = age * (s.dense_ratio if dense else s.sparse_ratio)
        if s.jitter:
            delay *= 1.0 - s.jitter * self.rng.random()
        return min(max(delay, s.min_interval), s.max_interval)

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

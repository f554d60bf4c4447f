"""When to poll a job next: a tenacity wait strategy, and one that learns from recent jobs.

The learned schedule places polls at a fraction of each job's age, dense where jobs of its
kind finish; jobs still pending count as lower bounds (Kaplan-Meier). Why, and how the
cold start works: docs/watcher.md.
"""

from __future__ import annotations

import asyncio
import bisect
import itertools
import math
import random
from typing import Any, cast

import attrs
import tenacity
from tenacity.wait import wait_base

from ._durations import DurationStats, PendingAges, pending_intervals, survival_quantiles
from ._planner import LATE5_MARGIN, censored_masses, learned_ages
from ._rescale import Rescaled, Shape, slowed_since

__all__ = [
    "DurationStats",
    "LearnedWait",
    "PendingAges",
    "PollSchedule",
    "poll_state",
    "survival_quantiles",
    "wait_age_fraction",
    "wait_scaled",
]


class wait_scaled(wait_base):
    """Multiply another tenacity wait by ``factor`` (to run a schedule on a faster clock)."""

    def __init__(self, inner: wait_base, factor: float) -> None:
        self.inner = inner
        self.factor = factor

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        return self.inner(retry_state) * self.factor


class wait_age_fraction(wait_base):
    """Wait ``ratio`` times the job's age, less up to ``spread`` of that at random.

    A job whose age is unknown (a resumed one) waits by ``otherwise`` instead.
    """

    def __init__(self, ratio: float, otherwise: wait_base, spread: float = 0.05) -> None:
        self.ratio = ratio
        self.otherwise = otherwise
        self.spread = spread

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        age = retry_state.seconds_since_start
        if age is None:
            return self.otherwise(retry_state)
        return age * self.ratio * (1.0 - self.spread * random.random())


def _default_cold_wait() -> wait_base:
    # Before any job of a kind is known to finish: 30% of the job's age between polls
    # (the first poll comes at 1 s, so 5 s jobs are not missed). A resumed job, whose age
    # is unknown: 2 s, then x1.25 per poll up to 15 s, plus up to 0.5 s of jitter.
    resumed = tenacity.wait_exponential(multiplier=2.0, exp_base=1.25, max=15.0)
    return wait_age_fraction(0.3, resumed + tenacity.wait_random(0, 0.5))


@attrs.frozen
class PollSchedule:
    """How a watcher spaces the polls of a job; every time is in seconds of its clock.

    ``wait`` is any tenacity wait strategy (``tenacity.wait_fixed(2)``...): it gives the
    delay after poll number ``attempt_number``. With ``learn`` (the default), it only
    serves until jobs of the same kind are known to be finishing at the job's age
    (counting the jobs still pending: see docs/watcher.md); then the learned
    schedule takes over, within ``min_interval`` and ``max_interval``. ``deadline`` is
    how long a job is watched before ``JobTimeoutError``. ``first_delay`` is the first
    poll's delay on a cold start. With ``optimise`` (the default), once 256 durations are
    known a job is polled at the ages that make the fewest polls within the lag bounds on
    the learned distribution (``_planner``), and by the quantile rules past them.
    """

    first_delay: float = 1.0
    wait: wait_base = attrs.field(factory=_default_cold_wait)
    deadline: float = 900.0
    learn: bool = True
    #: intervals are a fraction of the job's age; these bounds only guard the extremes
    min_interval: float = 0.1
    max_interval: float = 30.0
    #: the learned first poll stays within these bounds
    min_first_delay: float = 0.2
    max_first_delay: float = 120.0
    #: the first poll comes at this quantile of recent durations, times ``first_factor``
    #: (the jobs that end before it are the ones allowed to be late: about 1%)
    first_quantile: float = 0.01
    first_factor: float = 1.0
    #: on a cold start, the share of jobs known to have finished by an age from which
    #: the learned fractions of the age replace the tenacity wait
    onset_quantile: float = 0.001
    #: intervals as a fraction of the job's age, inside and outside the quantiles
    #: [dense_from, dense_to] of recent durations (dense_to=1.0: no upper end): sparse
    #: keeps every job within 15% of its duration, dense brings the median within 5%
    dense_ratio: float = 0.05
    sparse_ratio: float = 0.147
    dense_from: float = 0.68
    dense_to: float = 1.0
    #: recent durations kept per kind, and how many are needed before learning
    window: int = 512
    min_samples: int = 20
    #: each interval is shortened by a random fraction up to this (spreads the polls)
    jitter: float = 0.02
    #: the delay before polling again after a transient failure (doubles, up to 8x)
    error_backoff: float = 1.0
    #: once enough durations are known, poll at the ages that make the fewest polls within
    #: the lag bounds on the learned distribution (``_planner``); the rules above after them
    optimise: bool = True

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


#: Before a plan is known, the first quantiles rest on few finished jobs: stay under them.
_COLD_MARGIN = 0.9
#: how many durations make the learned first quantile trustworthy (``first_factor``)
_SURE_SAMPLES = 256
#: from this many durations, the plan's first poll is at this share of the quantile
_HALF_SURE_SAMPLES = 128
_HALF_SURE_MARGIN = 0.95


#: how many cold jobs of a kind explore (``LearnedWait.scout``)
_SCOUTS = 64
#: a follower's first poll, as a share of how long its kind's scouts have run unfinished
_FOLLOW_FIRST = 0.5
#: a follower's wait, as a multiple of its age (its polls are a safety net)
_FOLLOW_RATIO = 3.0


#: the quantiles whose growth since a shift scales the sample from before it
_LADDER = (0.05, 0.1, 0.15, 0.25, 0.35, 0.5)


#: how many durations the optimised plan (``_planner``) needs; fewer: the quantile rules
_PLAN_SAMPLES = 256
#: after a cold start, the plans made before this many durations are known keep this much
#: more of the jobs within 5% of their duration (``_planner.LATE5_MARGIN``: 0.02)
_COLD_COUNT = 2048
_COLD_LATE5_MARGIN = 0.06
#: how often (in durations) the recent jobs are tested for a slow-down (``_rescale``)
_DETECT_EVERY = 32
#: a poll up to this share of its gap early (coalesced, jittered) counts as on time
_EARLY = 0.25


class Plan:
    """How one job's polls are placed (shared by the jobs submitted together): the ages of
    an optimised schedule, then (or without one) ratios of the age by the quantiles."""

    __slots__ = ("ages", "dense_from", "dense_to", "first", "generation", "marks", "scaled")

    def __init__(
        self,
        first: float,
        dense_from: float,
        dense_to: float,
        generation: int = 0,
        ages: list[float] | None = None,
        *,
        scaled: bool = False,
    ) -> None:
        self.first = first
        self.dense_from = dense_from
        self.dense_to = dense_to
        #: the sample's generation it was made from: after a shift its jobs stop following it
        self.generation = generation
        #: the optimised poll ages (None: none), and from which age each one is the next
        self.ages = ages
        #: the plan from before a slow-down, scaled by it (``_rescale``): followed even while
        #: the new sample, fast jobs first, makes a shift look suspected
        self.scaled = scaled
        self.marks: list[float] | None = None
        if ages:
            self.marks = [ages[0] * (1.0 - _EARLY)] + [
                b - _EARLY * (b - a) for a, b in itertools.pairwise(ages)
            ]

    def __repr__(self) -> str:
        return f"Plan(first={self.first:.3g}, dense={self.dense_from:.3g}..{self.dense_to:.3g})"


def plan_ages(
    lows: list[float],
    highs: list[float],
    weight: float,
    pending: list[tuple[float, float]],
    late5_margin: float,
) -> tuple[list[float] | None, Shape | None]:
    """Return the poll ages planned for durations known to lie in ``(lows, highs]`` and the
    ``pending`` ages (None: not yet), and the distribution they were planned on (the shape a
    slow-down is measured against: ``_rescale``). Pure: it may run in a thread."""
    cells, masses, rest = censored_masses(lows, highs, weight=weight, pending=pending)
    kept = [(c, m) for c, m in zip(cells, masses, strict=True) if m > 1e-9]
    ages = learned_ages([c for c, _ in kept], [m for _, m in kept], rest, late5_margin=late5_margin)
    if ages is None or not kept:
        return None, None
    return ages, Shape([c for c, _ in kept], [m for _, m in kept], rest)


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
        *,
        offload: bool = False,
    ) -> None:
        self.schedule = schedule
        self.stats = stats
        self.rng = rng or random.Random()
        self.pending = PendingAges()
        self._plan: Plan | None = None
        self._fresh = False
        self._next_count = 0
        self._next_moves = 0
        self._generation = stats.generation
        self._explorers = 0
        self._cold_since = 0.0
        self._announced = False
        self._dense_generation = stats.generation
        self._scaled_generation = -1
        self._dense_before = math.inf
        #: survival estimates (inf: not known yet)
        self._onset = math.inf
        self._first = math.inf
        self._dense_from = math.inf
        self._dense_to = math.inf
        #: make plans in a thread (real time), or inline (an injected clock: a simulation)
        self.offload = offload
        #: a plan being made in a thread
        self._planning: asyncio.Future[tuple[list[float] | None, Shape | None]] | None = None
        #: the optimised poll ages, and when to optimise again (a count of durations)
        self._ages: list[float] | None = None
        #: the distribution they were planned on
        self._shape: Shape | None = None
        self._ages_next = 0
        self._ages_generation = stats.generation
        #: the schedule from before a slow-down, scaled (None: none under way), and when to
        #: test for one next (a count of durations)
        self._rescaled: Rescaled | None = None
        self._detect_at = 0

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
            or self.stats.generation != self._generation
        )

    def estimate(self) -> None:
        """Compute the quantiles again from the finished and the pending jobs."""
        s = self.schedule
        stats = self.stats
        self._detect()
        if stats.generation != self._generation:
            self._rescale_from_here()
        ordered = stats.ordered()
        self.pending.moves = 0
        self._next_count = stats.count + max(len(stats) // 16, 1)
        self._next_moves = max(64, self.pending.total) // 4
        self._fresh = True
        # After a shift (the sample restarted), what was known stays until the new sample
        # replaces it: the old, shorter durations place polls early, never late.
        self._generation = stats.generation
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
        onset = found[s.onset_quantile]
        if onset == math.inf and ordered:
            # In a stream the estimate stands only once the jobs seen older than the first
            # finisher outnumber those polled just younger (~1.3x its age): meanwhile
            # hundreds of jobs would poll blind. As a floor ("none is known to end
            # earlier") the first finishes serve at once.
            onset = ordered[0]
        self._onset = _known(onset, self._onset)
        self._first = _known(found[s.first_quantile], self._first)
        if found[s.dense_from] < math.inf:
            self._dense_from = found[s.dense_from]
            self._dense_generation = stats.generation
        elif self._dense_generation != stats.generation and ordered:
            # Since a shift the new sample's jobs have not all run that long: the sample
            # from before, scaled by the growth of the quantiles known since (or the new
            # plain quantile, of those finished: too low), only moves the dense part later.
            if self._dense_generation != self._scaled_generation:
                self._scaled_generation = self._dense_generation
                self._dense_before = self._dense_from
            guess = max(stats.quantile(s.dense_from), self._scaled(weight, s.dense_from))
            self._dense_from = max(self._dense_before, guess)
        self._dense_to = _known(found[s.dense_to], self._dense_to) if s.dense_to < 1.0 else math.inf
        known = (
            self._first < math.inf
            and self._dense_from < math.inf
            and (s.dense_to >= 1.0 or self._dense_to < math.inf)
        )
        if self.ready() and known:
            # Slightly under the quantile: the estimate comes from detected finishes, and
            # a first poll that creeps later would make every early job late.
            # A low quantile of a few dozen durations is noisy: stay under it until the
            # sample is large enough for its 1st percentile to stand on a few jobs.
            # From 128 durations the 1st percentile rests on one or two: halfway there.
            if len(stats) >= _SURE_SAMPLES:
                factor = s.first_factor
            elif len(stats) >= _HALF_SURE_SAMPLES:
                factor = _HALF_SURE_MARGIN
            else:
                factor = _COLD_MARGIN
            ages = self._optimised(weight) if s.optimise else None
            scaled = self._rescaling(ages)
            if scaled:
                ages = self._scale_estimates()
                factor = s.first_factor
            first = ages[0] if ages else self._first * factor
            first = min(max(first, s.min_first_delay), s.max_first_delay)
            self._plan = Plan(
                first, self._dense_from, self._dense_to, stats.generation, ages, scaled=scaled
            )
        else:
            self._plan = None

    def _detect(self) -> None:
        """Every 32 durations, once the schedule is learned, test whether the jobs
        submitted lately are slower than the sample says; if so, restart it from them."""
        stats = self.stats
        if stats.count < self._detect_at:
            return
        self._detect_at = stats.count + _DETECT_EVERY
        rescaled = self._rescaled
        if rescaled is not None and rescaled.generation == stats.generation:
            return  # one under way: its own sample's restart rule still applies
        # The shape is the distribution the current plan was made on, not the sample: a
        # stream's first finishers after a restore are its fast jobs, and against a sample
        # they fill every job would look slow.
        shape = self._shape
        if shape is None or self._ages is None or self._ages_generation != stats.generation:
            return
        # Nor after a cold start: its first plans are made before its slow jobs finished.
        if self._explorers and stats.count < _COLD_COUNT:
            return
        pending = pending_intervals(self.pending)
        since = slowed_since(shape, stats.latest, stats.now, pending, stats.covered_since())
        if since is not None:
            stats.restart_since(since)

    def _rescale_from_here(self) -> None:
        """The sample restarted: keep the schedule it had, to scale (``_rescale``)."""
        stats = self.stats
        self._rescaled = None
        shape = self._shape
        if shape is None or self._ages_generation != stats.generation - 1:
            return  # no plan to scale (the quantile rules alone): see estimate()
        if math.inf in (self._first, self._dense_from):
            return
        quantiles = (self._first, self._dense_from, self._dense_to)
        self._rescaled = Rescaled(
            stats.generation, stats.shifted_from, shape, quantiles, self._ages
        )

    def _rescaling(self, ages: list[float] | None) -> bool:
        """Tell whether the old schedule, scaled, serves (the new sample cannot yet)."""
        rescaled = self._rescaled
        if rescaled is None or rescaled.generation != self.stats.generation:
            return False
        done = ages is not None if self.schedule.optimise else len(self.stats) >= _PLAN_SAMPLES
        if done:
            self._rescaled = None
            return False
        stats = self.stats
        pending = pending_intervals(self.pending)
        rescaled.refit(stats.latest, stats.now, pending, stats.covered_since())
        return rescaled.scale is not None

    def _scale_estimates(self) -> list[float] | None:
        """Set the quantiles to the old ones times the scale; return the scaled ages."""
        rescaled = cast(Rescaled, self._rescaled)
        scale = cast(float, rescaled.scale)
        self._first = rescaled.first * scale
        self._dense_from = rescaled.dense_from * scale
        self._dense_to = rescaled.dense_to * scale
        return rescaled.scaled_ages()

    def _optimised(self, weight: float) -> list[float] | None:
        """Return the poll ages optimised for the learned distribution (None: not yet).

        The distribution is estimated from the intervals the kept durations lie in and the
        pending ages (``censored_masses``). The optimisation runs again only once the count
        of durations has doubled (at most every 16 windows) or the sample restarted after a
        shift, never per poll. It costs 0.1-0.2 s of CPU: on real time (``offload``) it runs
        in a thread and the jobs keep the plan they have until it is done, so the event loop
        never stalls for it; on an injected clock (a simulation) it runs here, so that the
        same inputs always give the same polls.
        """
        stats = self.stats
        if stats.generation != self._ages_generation:
            self._ages = None
            self._shape = None
            self._ages_next = 0
            self._ages_generation = stats.generation
            self._planning = None  # a plan of the sample before the shift is of no use
        planning = self._planning
        if planning is not None:
            if planning.done():
                self._planning = None
                self._take(planning.result())
            return self._ages
        if len(stats) < _PLAN_SAMPLES or stats.count < self._ages_next:
            return self._ages
        lows, highs = stats.intervals()  # copies: the thread never sees them change
        # Jobs watched on a cold start were more often late (the dense part is known only
        # once jobs have run that long): the first plans leave the lag median room for them.
        cold = self._explorers and stats.count < _COLD_COUNT
        margin = _COLD_LATE5_MARGIN if cold else LATE5_MARGIN
        inputs = (lows, highs, weight, pending_intervals(self.pending), margin)
        if self.offload:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                pass  # no loop to keep responsive (a plain tenacity wait): plan here
            else:
                try:
                    self._planning = loop.run_in_executor(None, plan_ages, *inputs)
                except RuntimeError:
                    # The loop's default executor was shut down (an application closing):
                    # a plan made here costs one stall; raising would fail the poll.
                    pass
                else:
                    return self._ages
        self._take(plan_ages(*inputs))
        return self._ages

    def _take(self, planned: tuple[list[float] | None, Shape | None]) -> None:
        """Adopt a plan just made, and set when to make the next one."""
        stats = self.stats
        ages, shape = planned
        if ages is None:
            # A batch's slow jobs are still running: try again after a few more finish.
            self._ages_next = stats.count + max(len(stats) // 8, 1)
            return
        self._ages = ages
        self._shape = shape
        self._ages_next = stats.count + min(max(len(stats), stats.count), 16 * stats.window)

    def _scaled(self, weight: float, q: float) -> float:
        """Return the ``q`` quantile of the sample before the shift, scaled by how much the
        highest quantile known since has grown (0.0 when none is known).

        The new durations' upper quantiles are known only once jobs have run that long
        (a doubling to 80 s: 94 s for the 68th percentile); their lower ones within a few
        dozen finishes. A shift that scales every duration keeps the shape.
        """
        before = self.stats.before
        known = survival_quantiles(self.stats.ordered(), weight, self.pending, list(_LADDER))
        for p, now in zip(reversed(_LADDER), reversed(known), strict=True):
            if now < math.inf:
                then = before[min(len(before) - 1, int(p * len(before)))]
                return before[min(len(before) - 1, int(q * len(before)))] * now / then
        return 0.0

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
                    first = min(
                        max(self._first * _COLD_MARGIN, s.min_first_delay), s.max_first_delay
                    )
                elif self._onset < math.inf:
                    # No job of this kind is known to finish before the onset: poll there.
                    first = max(self._onset * _COLD_MARGIN, s.min_first_delay)
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
            # Before jobs of this kind are known to finish: the tenacity wait. Once the
            # onset is known, skip to just before it (none finish earlier), then not past
            # it by more than a sparse step.
            delay = s.wait(retry_state)
            if onset < math.inf:
                # Once enough have finished, the learned first poll is a later target.
                known = self._first if self.ready() and self._first < math.inf else onset
                target = known * _COLD_MARGIN
                if age < target:
                    delay = target - age
                else:
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
        marks = plan.marks
        stats = self.stats
        # On a suspected or detected shift the plan, fitted to the durations before it,
        # gives way to the rules (they re-learn from the jobs they poll: docs/watcher.md).
        if (
            marks is not None
            and (plan.scaled or not stats.suspect)
            and plan.generation == stats.generation
        ):
            k = bisect.bisect_right(marks, age)
            if k < len(marks):
                ages = cast(list[float], plan.ages)
                target = ages[k]
                if k and age < ages[k - 1]:
                    # Polled early (its first poll's jitter, a coalesced wake-up): the
                    # rest of its schedule comes as much earlier, so no gap between two
                    # of its polls is longer than planned (a longer one would make the
                    # jobs ending in it late). No jitter: the first poll's spreads them.
                    target *= age / ages[k - 1]
                return min(max(target - age, s.min_interval), s.max_interval)
        delay = age * (s.dense_ratio if plan.dense_from <= age <= plan.dense_to else s.sparse_ratio)
        if s.jitter:
            delay *= 1.0 - s.jitter * self.rng.random()
        return min(max(delay, s.min_interval), s.max_interval)

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        return self.delay(retry_state, self.plan())

    def scout(self, started: float) -> bool:
        """Tell whether a new cold job, submitted at ``started``, should explore.

        Only the first 64 cold jobs of a kind do: a big batch or a busy stream needs only a
        sample of its jobs to find when jobs of the kind start to finish (the first finish
        comes from the oldest scouts, which later ones cannot overtake); the others poll
        sparsely (``follow``) and are brought forward to the onset once it is known.
        """
        self._explorers += 1
        if self._explorers == 1:
            self._cold_since = started
        return self._explorers <= _SCOUTS

    def follower_first(self, now: float) -> float:
        """Return the delay of a follower's first poll, for one submitted at ``now``.

        Half the time the kind's first scouts have run unfinished: none of its jobs is
        known to end sooner, and the follower is brought forward once one is.
        """
        return max(self.schedule.first_delay, _FOLLOW_FIRST * (now - self._cold_since))

    def onset_known(self) -> bool:
        """Tell whether any job of this kind is known to have finished by some age."""
        if self._onset == math.inf and self._stale():
            self.estimate()
        return self._onset < math.inf

    def onset_news(self) -> bool:
        """Return True once: the first time the onset is known (to bring followers forward)."""
        if self._announced or not self.onset_known():
            return False
        self._announced = True
        return True

    def onset_target(self) -> float:
        """Return the age just before the onset, where a cold job's next poll should be."""
        return self._onset * _COLD_MARGIN

    def follow(self, age: float) -> float:
        """Return the wait of a follower (a cold job that is not a scout): 3x its age.

        Its polls are only a safety net (the scouts' first finish brings it forward), so
        they are sparse: up to ``max_interval`` apart.
        """
        s = self.schedule
        return min(max(_FOLLOW_RATIO * age, s.min_interval), s.max_interval)

    def remaining(self, age: float) -> float | None:
        """Return the expected seconds left of a job pending at ``age``; None if unknown.

        The mean of ``d - age`` over the recent durations ``d`` longer than ``age``: None
        before any is known, and once the job is older than every one of them.
        """
        ordered = self.stats.ordered()
        longer = ordered[bisect.bisect_right(ordered, age) :]
        if not longer:
            return None
        return sum(longer) / len(longer) - age


def poll_state() -> tenacity.RetryCallState:
    """Return a reusable ``RetryCallState`` to call wait strategies with.

    The watcher sets ``attempt_number``, ``start_time`` and ``outcome_timestamp`` (in its
    clock) before each call, so ``seconds_since_start`` is the job's age. One object
    serves every job: a state per job would cost memory for nothing.
    """
    state = tenacity.RetryCallState(cast(Any, None), None, (), {})
    state.outcome_timestamp = 0.0
    return state

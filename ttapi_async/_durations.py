"""What a kind of job's durations are: a fading sample of finished ones, and the pending ages.

Together they answer quantiles by Kaplan-Meier (a job still pending is a lower bound of its
duration): see docs/watcher.md.
"""

from __future__ import annotations

import array
import math
import random
from collections import deque

__all__ = ["DurationStats", "PendingAges", "pending_intervals", "survival_quantiles"]


#: how many recent durations are compared with the sample to detect a shift
_RECENT = 32
#: the quantile of the sample above which their median makes a shift suspected
_SUSPECT = 0.7
#: how many of the latest finishes are kept in order (``DurationStats.latest``)
_LATEST = 2048


class DurationStats:
    """Keep a sample of recent durations of one kind of job and answer quantiles.

    The sample is a reservoir (Vitter's algorithm R) whose memory fades: the n-th
    duration enters with probability ``window / min(n, 16 * window)``, replacing a random
    one. Keeping the *last* finishers instead would be wrong after a big batch: its last
    finishers are its slowest jobs, and the next batch would poll far too late. With the
    reservoir, a batch of up to ``16 * window`` jobs is sampled evenly once it is done.
    """

    __slots__ = (
        "_count",
        "_dirty",
        "_highs",
        "_lows",
        "_recent",
        "_recent_bounds",
        "_recent_starts",
        "_rng",
        "_sorted",
        "_starts",
        "_values",
        "before",
        "generation",
        "latest",
        "now",
        "shifted_from",
        "suspect",
        "window",
    )

    def __init__(self, window: int = 512, rng: random.Random | None = None) -> None:
        self.window = window
        self._rng = rng or random.Random()
        self._values = array.array("d")
        self._sorted: list[float] = []
        self._dirty = 0
        self._count = 0
        self._recent: list[float] = []
        self._recent_starts: list[float] = []
        self._recent_bounds: list[tuple[float, float]] = []
        #: when the kept jobs were submitted (nan: unknown)
        self._starts = array.array("d")
        #: what each kept duration is known to lie in: (low, high], the age its job was last
        #: seen pending and the age it was seen done (equal: known exactly)
        self._lows = array.array("d")
        self._highs = array.array("d")
        #: counts the restarts after a shift (see ``_check_shift``)
        self.generation = 0
        #: the sorted sample a restart replaced (empty before any): the shape to scale
        self.before: list[float] = []
        #: when the latest job of the cohort that made the last restart was submitted
        self.shifted_from = -math.inf
        #: whether the last recent durations lay high in the sample (a shift may be under way)
        self.suspect = False
        #: the latest finishes of jobs whose submission is known, in the order they came:
        #: ``(started, guess, low, high)`` (the reservoir keeps only a sample of them, and a
        #: shift is judged on every job submitted since some time: ``_rescale``)
        self.latest: deque[tuple[float, float, float, float]] = deque(maxlen=_LATEST)
        #: when the latest of them was seen done (the watcher's clock)
        self.now = -math.inf

    def __len__(self) -> int:
        return len(self._values)

    def add(
        self,
        seconds: float,
        started: float = math.nan,
        low: float | None = None,
        high: float | None = None,
    ) -> None:
        """Record one duration (ignored unless positive) of a job submitted at ``started``.

        ``seconds`` is the best guess (the quantile rules use it); ``low`` and ``high`` the
        interval it is known to lie in, ``(low, high]`` (default: exactly ``seconds``): the
        planner estimates the distribution from the intervals, not from the guesses.
        """
        if seconds <= 0:
            return
        if low is None or high is None or not 0.0 <= low <= high:
            low = high = seconds
        if started == started:  # not nan
            self.latest.append((started, seconds, low, high))
            self.now = max(self.now, started + high)
            self._recent.append(seconds)
            self._recent_starts.append(started)
            self._recent_bounds.append((low, high))
            if len(self._recent) >= _RECENT:
                self._check_shift()
        self._count += 1
        if len(self._values) < self.window:
            self._values.append(seconds)
            self._starts.append(started)
            self._lows.append(low)
            self._highs.append(high)
        else:
            slot = self._rng.randrange(min(self._count, 16 * self.window))
            if slot >= self.window:
                return
            self._values[slot] = seconds
            self._starts[slot] = started
            self._lows[slot] = low
            self._highs[slot] = high
        self._dirty += 1

    def _check_shift(self) -> None:
        # The fading reservoir takes hundreds of jobs to follow a change (a queue backing up
        # doubles every duration). When the median of the last 32 lies above the sample's
        # 80th percentile (3.8 standard errors of that median for lognormal durations: a
        # false alarm is rare), the old sample describes the past: restart from them.
        recent, self._recent = self._recent, []
        starts, self._recent_starts = self._recent_starts, []
        bounds, self._recent_bounds = self._recent_bounds, []
        if len(self._values) < 4 * _RECENT:
            return
        middle = sorted(recent)[len(recent) // 2]
        # Above the 70th percentile (a false alarm in about one check in 80): the optimised
        # plan, fitted to the sample, gives way to the quantile rules until a check clears it.
        self.suspect = middle > self.quantile(_SUSPECT)
        if middle <= self.quantile(0.8):
            # Faster jobs need no restart: done at their first poll, they are recorded
            # under it, and a few of them move the learned first poll (a low quantile).
            # A fresh batch's first finishers are its fast jobs, and must not look like one.
            return
        # Only a later cohort counts: in one batch the last finishers are its slow jobs,
        # submitted with the fast ones, and restarting from them would be wrong.
        known = sorted(t for t in self._starts if t == t)
        if known and min(starts) <= known[len(known) // 2]:
            return
        self._restart(max(starts), recent, starts, bounds)

    def restart_since(self, since: float) -> None:
        """Restart the sample from the latest finishes of jobs submitted at ``since`` or
        later: the durations changed then (found by ``_rescale.slowed_since``)."""
        kept = [f for f in self.latest if f[0] >= since]
        self._recent, self._recent_starts, self._recent_bounds = [], [], []
        self._restart(
            since, [f[1] for f in kept], [f[0] for f in kept], [(f[2], f[3]) for f in kept]
        )

    def covered_since(self) -> float:
        """Return since when every finish is among ``latest`` (-inf: none was dropped)."""
        latest = self.latest
        if len(latest) < _LATEST:
            return -math.inf
        started, _, _, high = latest[0]
        return started + high  # a job submitted later cannot have finished before it

    def _restart(
        self,
        since: float,
        values: list[float],
        starts: list[float],
        bounds: list[tuple[float, float]],
    ) -> None:
        self.before = self.ordered()
        self.shifted_from = since
        self._values = array.array("d", values)
        self._starts = array.array("d", starts)
        self._lows = array.array("d", [lo for lo, _ in bounds])
        self._highs = array.array("d", [hi for _, hi in bounds])
        self._count = len(values)
        self._sorted = []
        self._dirty = len(values)
        self.generation += 1

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

    def intervals(self) -> tuple[list[float], list[float]]:
        """Return the kept durations' intervals ``(low, high]`` as two lists (in slot order)."""
        return self._lows.tolist(), self._highs.tolist()

    def snapshot(self) -> list[float]:
        """Return the kept durations (to save them and seed a later process)."""
        return list(self._values)


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


def pending_intervals(pending: PendingAges) -> list[tuple[float, float]]:
    """Return the pending jobs as ``(age, count)``: ``count`` jobs known to run past ``age``
    (each bin's lower edge; the jobs never polled yet tell nothing)."""
    return [
        (_BASE * 2.0 ** ((b - 1) / _PER_OCTAVE), float(c))
        for b, c in enumerate(pending.counts)
        if b and c
    ]


#: the largest gap between two polls of a job, as a ratio of ages (the cold wait's 30%)
_ROUND = 1.0 / 1.35


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
        # Jobs last seen well below x are mostly younger than x (a stream keeps submitting):
        # only those seen within one poll gap of x may be unseen members of a round.
        if suffix[_bin(x * _ROUND)] - later > at_risk:
            break
        survival *= 1.0 - weight / at_risk
        while 1.0 - survival > target:
            out[k] = x
            k += 1
            if k == len(qs):
                return out
            target = qs[k] + 1e-9
    return out

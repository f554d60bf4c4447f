"""The oracle schedule: the fewest polls per job for a known duration distribution.

A schedule is the list of ages ``t_1 < t_2 < ...`` at which every job is polled; a job of
duration ``d`` is seen done at the first ``t_k >= d``, after ``k`` polls, ``t_k - d`` late.
For a known distribution (CDF ``F``, survival ``S = 1 - F``) everything is exact:

- polls per job: ``sum_k S(t_{k-1})`` (``t_0 = 0``: every job makes the first poll),
- share of jobs more than ``x`` of their duration late: ``sum_k max(0, F(t_k / (1 + x)) -
  F(t_{k-1}))`` (the jobs that ended early in an interval).

The oracle minimises the polls subject to lag p50 <= 5% and p99 <= 15% of the duration,
i.e. at most 50% of jobs more than 5% late and at most 1% more than 15% late. It solves
the Lagrangian relaxation exactly by dynamic programming over poll ages on a fine
log-spaced grid (any gap, any number of polls: not a parametric family) and finds the
multipliers by nested bisection. The grid's step (0.5% of the age) limits how exactly
the optimum is met; the solution reported always meets both constraints.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Sequence

__all__ = ["Mixture", "Solution", "evaluate", "solve"]

SQRT2 = math.sqrt(2.0)


class Mixture:
    """A mixture of lognormal durations: ``(share, median, sigma)`` per mode."""

    def __init__(self, modes: Sequence[tuple[float, float, float]]) -> None:
        total = sum(m[0] for m in modes)
        self.modes = [(share / total, math.log(median), sigma) for share, median, sigma in modes]

    def cdf(self, t: float) -> float:
        if t <= 0.0:
            return 0.0
        x = math.log(t)
        return sum(
            share * 0.5 * (1.0 + math.erf((x - mu) / (sigma * SQRT2)))
            for share, mu, sigma in self.modes
        )

    def quantile(self, q: float) -> float:
        """Return the ``q`` quantile (bisection on the CDF)."""
        lo = min(mu - 9 * s for _, mu, s in self.modes)
        hi = max(mu + 9 * s for _, mu, s in self.modes)
        for _ in range(80):
            mid = (lo + hi) / 2
            if self.cdf(math.exp(mid)) < q:
                lo = mid
            else:
                hi = mid
        return math.exp((lo + hi) / 2)


class Solution:
    """An oracle schedule and what it costs."""

    def __init__(self, ages: list[float], polls: float, late5: float, late15: float) -> None:
        self.ages = ages
        self.polls = polls
        #: share of jobs more than 5% (15%) of their duration late
        self.late5 = late5
        self.late15 = late15


def evaluate(ages: Sequence[float], cdf: Callable[[float], float]) -> Solution:
    """Return the exact polls per job and late shares of a schedule (ascending ages)."""
    polls = 0.0
    late5 = late15 = 0.0
    prev_f = 0.0
    for t in ages:
        polls += 1.0 - prev_f
        late5 += max(0.0, cdf(t / 1.05) - prev_f)
        late15 += max(0.0, cdf(t / 1.15) - prev_f)
        prev_f = cdf(t)
    if prev_f < 1.0 - 1e-6:
        raise ValueError("the schedule ends before the jobs do")
    return Solution(list(ages), polls, late5, late15)


class _Grid:
    def __init__(self, dist: Mixture, step: float, max_ratio: float) -> None:
        lo = math.log(dist.quantile(1e-7))
        hi = math.log(dist.quantile(1 - 1e-7))
        n = int((hi - lo) / step) + 2
        self.ages = [math.exp(lo + i * step) for i in range(n)]
        self.f = [dist.cdf(t) for t in self.ages]
        self.f5 = [dist.cdf(t / 1.05) for t in self.ages]
        self.f15 = [dist.cdf(t / 1.15) for t in self.ages]
        self.reach = max(1, int(math.log(max_ratio) / step))

    def best(self, lam: float, mu: float) -> list[int]:
        """Return the poll indices minimising polls + lam * late5 + mu * late15."""
        f, f5, f15 = self.f, self.f5, self.f15
        n = len(f)
        inf = math.inf
        cost = [inf] * n
        back = [-1] * n
        # The first poll, from age 0: every job pays it.
        for j in range(n):
            cost[j] = 1.0 + lam * f5[j] + mu * f15[j]
        reach = self.reach
        for i in range(n):
            ci = cost[i]
            if ci == inf:
                continue
            fi = f[i]
            si = 1.0 - fi
            base = ci + si
            for j in range(i + 1, min(n, i + reach + 1)):
                a = f5[j] - fi
                b = f15[j] - fi
                c = base
                if a > 0.0:
                    c += lam * a
                    if b > 0.0:
                        c += mu * b
                if c < cost[j]:
                    cost[j] = c
                    back[j] = i
        path = [n - 1]
        while back[path[-1]] >= 0:
            path.append(back[path[-1]])
        return path[::-1]


def solve(dist: Mixture, *, step: float = 0.005, max_ratio: float = 2.5) -> Solution:
    """Return the oracle schedule for ``dist``: fewest polls with lag p50 <= 5%, p99 <= 15%."""
    grid = _Grid(dist, step, max_ratio)

    def run(lam: float, mu: float) -> Solution:
        ages = [grid.ages[i] for i in grid.best(lam, mu)]
        return evaluate(ages, dist.cdf)

    def for_mu(mu: float) -> Solution:
        # The smallest lam whose optimum keeps at most half of the jobs more than 5% late.
        lo, hi = 0.0, 1.0
        while run(hi, mu).late5 > 0.5:
            hi *= 4
        best = run(hi, mu)
        for _ in range(14):
            mid = (lo + hi) / 2
            found = run(mid, mu)
            if found.late5 <= 0.5:
                hi, best = mid, found
            else:
                lo = mid
        return best

    lo, hi = 0.0, 16.0
    while for_mu(hi).late15 > 0.01:
        hi *= 4
    best = for_mu(hi)
    for _ in range(12):
        mid = (lo + hi) / 2
        found = for_mu(mid)
        if found.late15 <= 0.01:
            hi = mid
            if found.polls < best.polls:
                best = found
        else:
            lo = mid
    return best


def lag_quantile(ages: Sequence[float], dist: Mixture, q: float) -> float:
    """Return the ``q`` quantile of relative lag of a schedule (bisection, for reports)."""
    lo, hi = 0.0, 10.0
    for _ in range(50):
        mid = (lo + hi) / 2
        late = 0.0
        prev_f = 0.0
        for t in ages:
            late += max(0.0, dist.cdf(t / (1 + mid)) - prev_f)
            prev_f = dist.cdf(t)
        if late > 1 - q:
            lo = mid
        else:
            hi = mid
    return hi


def first_index(ages: Sequence[float], t: float) -> int:
    return bisect.bisect_left(ages, t)

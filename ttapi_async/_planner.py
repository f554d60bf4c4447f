"""The fewest polls for a learned duration distribution, by dynamic programming.

A schedule is the list of ages ``t_1 < t_2 < ...`` at which a job is polled; a job of
duration ``d`` is seen done at the first ``t_k >= d``. For a distribution with CDF ``F``
(survival ``S``) its polls per job are ``sum_k S(t_{k-1})`` and the share of jobs more
than ``x`` of their duration late is ``sum_k max(0, F(t_k / (1 + x)) - F(t_{k-1}))``.
``optimise`` minimises the polls with at most ``late5`` of the jobs more than 5% late
and ``late15`` more than 15% late (lag p50 <= 5%, p99 <= 15% at 0.5 and 0.01): the
Lagrangian relaxation solved exactly on a log-spaced grid of ages, its two multipliers
found by bisection. The grid makes each transition's lateness separable, so one pass is
O(grid) with three sliding-window minima (no quadratic search): a few ms in pure Python.

``smooth_cdf`` turns a sample of durations into the CDF on that grid (a binned kernel
estimate in log-age), so the same optimisation can run on what a watcher has learned
(``learned_ages``). ``censored_masses`` estimates that sample's masses from what a watcher
knows of each finished job, the interval it ended in (Turnbull's estimate), and the pending
ages. ``PollSchedule(optimise=True)``, the default, polls at the planned ages once 256
durations are known: benchmarks/results/oracle.md.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

__all__ = [
    "Grid",
    "censored_masses",
    "evaluate",
    "learned_ages",
    "optimise",
    "smooth_cdf",
    "stretch",
]

_LOG_5 = math.log(1.05)
_LOG_15 = math.log(1.15)


class Grid:
    """A CDF on log-spaced ages: ``ages[j] = exp(x0 + j * step)``, ``cdf[j] = F(ages[j])``."""

    __slots__ = ("cdf", "step", "x0")

    def __init__(self, x0: float, step: float, cdf: list[float]) -> None:
        self.x0 = x0
        self.step = step
        self.cdf = cdf

    def age(self, j: int) -> float:
        return math.exp(self.x0 + j * self.step)

    def at(self, x: float) -> float:
        """Return ``F(exp(x))`` by linear interpolation on the grid (0 below, 1 above)."""
        pos = (x - self.x0) / self.step
        if pos <= 0.0:
            return self.cdf[0] if pos == 0.0 else 0.0
        i = int(pos)
        cdf = self.cdf
        if i >= len(cdf) - 1:
            return cdf[-1]
        frac = pos - i
        return cdf[i] + (cdf[i + 1] - cdf[i]) * frac


def smooth_cdf(
    durations: Sequence[float],
    masses: Sequence[float] | None = None,
    *,
    step: float = 0.005,
    bandwidth: float = 0.05,
    tail: float = 0.05,
    rest: float = 0.0,
) -> Grid:
    """Return the CDF of sorted ``durations`` (each of its ``masses``, default equal)
    smoothed by a Gaussian kernel in log-age.

    The kernel (``bandwidth`` in log units: 0.03 is 3% of the age) turns a sample of a few
    hundred durations into a distribution the optimiser cannot overfit (it would place a
    poll just after each duration it knows); it is narrow, so it widens a lognormal of
    sigma 0.35 by under 0.5%. Below the ``tail`` quantile the CDF is a lognormal fitted to
    the lower quarter of the sample (``_fit_lower_tail``). ``rest`` is the share of jobs
    longer than every duration (the CDF ends at ``1 - rest``).
    """
    if masses is None:
        masses = [1.0] * len(durations)
    pairs = [(math.log(d), m) for d, m in zip(durations, masses, strict=True) if d > 0.0]
    if not pairs:
        raise ValueError("no durations")
    logs = [x for x, _ in pairs]
    pad = 4.0 * _WIDE + 2 * step
    x0 = min(logs) - pad
    n = int((max(logs) + pad - x0) / step) + 2
    counts = [0.0] * n
    for x, m in pairs:
        counts[min(n - 1, int((x - x0) / step + 0.5))] += m
    # The kernel's mass per grid step: convolve the binned masses. A share of each
    # duration's mass is spread wide: where few durations are known (between two modes,
    # in the tails) the estimate must not read as no job ending there, or the optimiser
    # places a long gap where more jobs end than it knows of.
    density = [0.0] * n
    for width, share in ((bandwidth, 1.0 - _WIDE_SHARE), (_WIDE, _WIDE_SHARE)):
        half = max(1, int(4.0 * width / step))
        weights = [math.exp(-0.5 * (k * step / width) ** 2) for k in range(-half, half + 1)]
        norm = sum(weights) / share
        weights = [w / norm for w in weights]
        for i, c in enumerate(counts):
            if c:
                lo = i - half
                for k, w in enumerate(weights):
                    j = lo + k
                    if 0 <= j < n:
                        density[j] += c * w
    total = sum(density) / (1.0 - rest)
    cdf = []
    acc = 0.0
    for v in density:
        acc += v
        cdf.append(acc / total)
    cdf[-1] = 1.0 - rest
    if tail and len(pairs) >= 64:
        _fit_lower_tail(cdf, x0, step, pairs, tail, 1.0 - rest)
    return Grid(x0, step, cdf)


_SQRT2 = math.sqrt(2.0)
#: the quantiles of the sample the lower tail's lognormal is fitted to
_FIT_LO = 0.01
_FIT_HI = 0.25
#: the share of the mass spread by the wide kernel, and its width (log-age)
_WIDE_SHARE = 0.1
_WIDE = 0.15


def _probit(p: float) -> float:
    # Bisection on erf: exact enough, and it runs a few hundred times per plan.
    lo, hi = -9.0, 9.0
    for _ in range(50):
        mid = (lo + hi) / 2
        if 0.5 * (1.0 + math.erf(mid / _SQRT2)) < p:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def _fit_lower_tail(
    cdf: list[float],
    x0: float,
    step: float,
    pairs: list[tuple[float, float]],
    tail: float,
    known: float,
) -> None:
    """Replace the CDF below the ``tail`` quantile by a lognormal fitted to the lower part.

    The few durations below the 1st percentile place the first poll, and the share of jobs
    ending before it is the whole p99 budget: a line fitted to the lower quarter of the
    sample on a normal probability plot estimates that tail from ~25x more durations.
    """
    total = sum(m for _, m in pairs) / known
    zs: list[float] = []
    ys: list[float] = []
    acc = 0.0
    cut = pairs[-1][0]
    for x, m in pairs:
        p = (acc + m / 2) / total
        acc += m
        if p >= _FIT_LO and p <= _FIT_HI:
            zs.append(_probit(p))
            ys.append(x)
        if p <= tail:
            cut = x
        elif p > _FIT_HI:
            break
    if len(zs) < 8:
        return
    mz = sum(zs) / len(zs)
    my = sum(ys) / len(ys)
    szz = sum((z - mz) ** 2 for z in zs)
    szy = sum((z - mz) * (y - my) for z, y in zip(zs, ys, strict=True))
    if szz <= 0 or szy <= 0:
        return
    sigma = szy / szz
    mu = my - sigma * mz

    def fitted(x: float) -> float:
        return known * 0.5 * (1.0 + math.erf((x - mu) / (sigma * _SQRT2)))

    end = min(len(cdf), int((cut - x0) / step) + 1)
    if end <= 1:
        return
    # Only a lower part that is lognormal: where the fit strays from the kernel estimate
    # over the fitted range (two modes, a cluster of fast failures), keep the kernel's.
    for y in ys[:: max(1, len(ys) // 16)]:
        j = int((y - x0) / step)
        if 0 <= j < len(cdf) and abs(fitted(x0 + j * step) - cdf[j]) > 0.2 * cdf[j] + 0.003:
            return
    # Scaled to meet the kernel estimate at the cut: no step, no flat stretch.
    at_cut = fitted(x0 + (end - 1) * step)
    if at_cut <= 0.0:
        return
    scale = cdf[end - 1] / at_cut
    for j in range(end - 1):
        cdf[j] = fitted(x0 + j * step) * scale


class _Pass:
    """The grid's CDF at every age, at the age / 1.05 and at the age / 1.15."""

    def __init__(self, grid: Grid) -> None:
        step = grid.step
        n = len(grid.cdf)
        self.grid = grid
        self.f = grid.cdf
        xs = [grid.x0 + j * step for j in range(n)]
        self.f5 = [grid.at(x - _LOG_5) for x in xs]
        self.f15 = [grid.at(x - _LOG_15) for x in xs]
        # A transition i -> j is on time (<= 5%) for every job ending in it while j - i
        # < d5, within 15% while j - i < d15: the lateness terms are separable.
        self.k5 = math.ceil(_LOG_5 / step - 1e-9)
        self.k15 = math.ceil(_LOG_15 / step - 1e-9)

    def best(self, lam: float, mu: float) -> list[int]:
        """Return the poll indices minimising polls + lam * late5 + mu * late15."""
        f, f5, f15 = self.f, self.f5, self.f15
        n = len(f)
        k5, k15 = self.k5, self.k15
        lm = lam + mu
        back = [-1] * n
        # Window 1: i in [j - k5 + 1, j - 1], value cost_i + S_i.
        # Window 2: i in [j - k15 + 1, j - k5], value cost_i + S_i - lam F_i.
        # Window 3: i <= j - k15 (and the start, age 0), value cost_i + S_i - (lam+mu) F_i.
        w1: deque[tuple[float, int]] = deque()
        w2: deque[tuple[float, int]] = deque()
        best3, arg3 = 1.0, -1  # the start: every job makes the first poll
        a2 = [0.0] * n
        a3 = [0.0] * n
        for j in range(n):
            # Admit i = j - k5 to window 2 and i = j - k15 to window 3.
            i = j - k5
            if i >= 0:
                v = a2[i]
                while w2 and w2[-1][0] >= v:
                    w2.pop()
                w2.append((v, i))
            i = j - k15
            if i >= 0 and a3[i] < best3:
                best3, arg3 = a3[i], i
            while w1 and w1[0][1] < j - k5 + 1:
                w1.popleft()
            while w2 and w2[0][1] < j - k15 + 1:
                w2.popleft()
            c = best3 + lam * f5[j] + mu * f15[j]
            arg = arg3
            if w2:
                v2 = w2[0][0] + lam * f5[j]
                if v2 < c:
                    c, arg = v2, w2[0][1]
            if w1 and w1[0][0] < c:
                c, arg = w1[0]
            back[j] = arg
            s = c + 1.0 - f[j]
            a2[j] = s - lam * f[j]
            a3[j] = s - lm * f[j]
            while w1 and w1[-1][0] >= s:
                w1.pop()
            w1.append((s, j))
        path = [n - 1]
        while back[path[-1]] >= 0:
            path.append(back[path[-1]])
        return path[::-1]

    def measure(self, path: list[int]) -> tuple[float, float, float]:
        """Return (polls per job, share > 5% late, share > 15% late) of a path."""
        f, f5, f15 = self.f, self.f5, self.f15
        polls = late5 = late15 = 0.0
        prev = 0.0
        for j in path:
            polls += 1.0 - prev
            late5 += max(0.0, f5[j] - prev)
            late15 += max(0.0, f15[j] - prev)
            prev = f[j]
        return polls, late5, late15


def optimise(
    grid: Grid,
    *,
    late5: float = 0.5,
    late15: float = 0.01,
    rounds: tuple[int, int] = (10, 10),
) -> list[float]:
    """Return the poll ages with the fewest polls keeping both late shares within bounds.

    The late shares are measured on the grid's own CDF. ``rounds`` are the bisection steps
    of the two multipliers (each step is one pass over the grid).
    """
    p = _Pass(grid)
    outer, inner = rounds

    def for_mu(mu: float) -> tuple[list[int], tuple[float, float, float]]:
        # The smallest lam whose optimum keeps at most late5 of the jobs more than 5% late.
        hi = 1.0
        path = p.best(hi, mu)
        got = p.measure(path)
        while got[1] > late5 and hi < 1e6:
            hi *= 4
            path = p.best(hi, mu)
            got = p.measure(path)
        lo = 0.0
        for _ in range(inner):
            mid = (lo + hi) / 2
            cand = p.best(mid, mu)
            m = p.measure(cand)
            if m[1] <= late5:
                hi, path, got = mid, cand, m
            else:
                lo = mid
        return path, got

    hi = 16.0
    path, got = for_mu(hi)
    while got[2] > late15 and hi < 1e7:
        hi *= 4
        path, got = for_mu(hi)
    best_path, best = path, got
    lo = 0.0
    for _ in range(outer):
        mid = (lo + hi) / 2
        cand, m = for_mu(mid)
        if m[2] <= late15:
            hi = mid
            if m[0] < best[0] and m[1] <= late5:
                best_path, best = cand, m
        else:
            lo = mid
    return [grid.age(j) for j in best_path]


def evaluate(ages: Sequence[float], grid: Grid) -> tuple[float, float, float]:
    """Return (polls per job, share > 5% late, share > 15% late) of ``ages`` on ``grid``."""
    polls = late5 = late15 = 0.0
    prev = 0.0
    for t in ages:
        x = math.log(t)
        polls += 1.0 - prev
        late5 += max(0.0, grid.at(x - _LOG_5) - prev)
        late15 += max(0.0, grid.at(x - _LOG_15) - prev)
        prev = grid.at(x)
    return polls, late5, late15


#: What the plan leaves of each bound for the error of a learned distribution: its
#: realised late shares scatter around the planned ones (the 1st percentile of a few
#: hundred durations rests on a few of them).
LATE5_MARGIN = 0.02
LATE15_MARGIN = 0.0035
#: the survival past the known durations above which no plan is made (its tail unknown);
#: below it, the plan ends at the longest duration and the quantile rules take over
_MAX_REST = 0.02


def learned_ages(
    durations: Sequence[float],
    masses: Sequence[float],
    rest: float,
    *,
    late5_margin: float = LATE5_MARGIN,
) -> list[float] | None:
    """Return the poll ages planned for sorted ``durations`` of Kaplan-Meier ``masses``.

    None when too much of the distribution is unknown (``rest``, the survival past the
    last duration, is above 2%: a batch whose slow jobs are still running).
    """
    if rest > _MAX_REST or len(masses) < 2:
        return None
    grid = smooth_cdf(durations[: len(masses)], masses, rest=rest)
    late5, late15 = 0.5 - late5_margin, 0.01 - LATE15_MARGIN
    return stretch(optimise(grid, late5=late5, late15=late15), grid, late5=late5, late15=late15)


def stretch(
    ages: list[float], grid: Grid, *, late5: float, late15: float, most: float = 1.25
) -> list[float]:
    """Return ``ages`` scaled by the largest factor (up to ``most``) within both bounds.

    The Lagrangian optimum is a vertex of the trade-off's convex hull: it may leave part
    of a late share unspent (on a sample of a few hundred durations, up to one poll in
    seven at sigma 0.35). Moving every poll later by one factor spends it continuously.
    """

    def within(c: float) -> bool:
        _, l5, l15 = evaluate([t * c for t in ages], grid)
        return l5 <= late5 and l15 <= late15

    lo, hi = 1.0, most
    if within(hi):
        lo = hi
    else:
        for _ in range(20):
            mid = (lo + hi) / 2
            if within(mid):
                lo = mid
            else:
                hi = mid
    return [t * lo for t in ages]


#: the EM's cells, in log-age (1% of the age), and how far below the first poll a job done
#: at it is first assumed to lie (its share of the cells down to the age / 1.3)
_EM_STEP = 0.01
_EM_LEFT = math.log(1.3)


def censored_masses(
    lows: Sequence[float],
    highs: Sequence[float],
    *,
    weight: float = 1.0,
    pending: Sequence[tuple[float, float]] = (),
    iterations: int = 150,
) -> tuple[list[float], list[float], float]:
    """Return the durations' distribution estimated from the intervals they lie in.

    Duration ``i`` is known to lie in ``(lows[i], highs[i]]`` (``lows[i] == highs[i]``:
    exactly; ``lows[i] == 0``: done at its first poll), and stands for ``weight`` jobs;
    ``pending`` holds ``(age, count)``: jobs still running at ``age`` (they run longer).
    The estimate is Turnbull's nonparametric maximum likelihood, found by the
    self-consistency (EM) algorithm on cells of 1% of the age: each pass shares every
    interval's weight among its cells in proportion to their current masses. A pass is
    O(intervals + cells): prefix sums give each interval's mass, and a difference array
    adds each interval's share to its cells.

    Returns the cells' ages (their midpoints), their masses (summing to ``1 - rest``) and
    ``rest``, the share of jobs longer than every interval's end.
    """
    edges = [h for h in highs if h > 0.0] + [lo for lo in lows if lo > 0.0]
    if not edges:
        return [], [], 1.0
    x0 = math.log(min(edges)) - _EM_LEFT - _EM_STEP
    top = math.log(max(edges))
    # Cells 0..n-2 cover the known ages; cell n-1 is "longer than all of them".
    n = int((top - x0) / _EM_STEP) + 3
    last = n - 1

    def cell(age: float) -> int:
        return min(last - 1, max(0, int((math.log(age) - x0) / _EM_STEP)))

    grouped: dict[tuple[int, int], float] = {}
    left = int(_EM_LEFT / _EM_STEP)
    for lo, hi in zip(lows, highs, strict=True):
        if hi <= 0.0:
            continue
        b = cell(hi) + 1
        a = b - 1 if lo >= hi else (cell(lo) if lo > 0.0 else 0)
        key = (a, b)
        grouped[key] = grouped.get(key, 0.0) + weight
    for age, count in pending:
        if count > 0 and age > 0.0:
            key = (min(cell(age) + 1, last), n)
            grouped[key] = grouped.get(key, 0.0) + count
    obs = list(grouped.items())
    total = sum(w for _, w in obs)
    # The start: each interval's weight spread evenly over its cells (a first poll's
    # over the cells down to 1/1.3 of it: no job is known to end far below it).
    p = [0.0] * n
    spread = [0.0] * (n + 1)
    for (a, b), w in obs:
        if a == 0 and b - 1 > left:
            a = b - 1 - left
        share = w / (total * (b - a))
        spread[a] += share
        spread[b] -= share
    run = 0.0
    for j in range(n):
        run += spread[j]
        p[j] = run
    for _ in range(iterations):
        prefix = [0.0] * (n + 1)
        acc = 0.0
        for j, v in enumerate(p):
            acc += v
            prefix[j + 1] = acc
        diff = [0.0] * (n + 1)
        for (a, b), w in obs:
            mass = prefix[b] - prefix[a]
            if mass > 0.0:
                r = w / (total * mass)
                diff[a] += r
                diff[b] -= r
        run = 0.0
        for j in range(n):
            run += diff[j]
            p[j] *= run
    rest = p[last]
    ages = [math.exp(x0 + (j + 0.5) * _EM_STEP) for j in range(last)]
    return ages, p[:last], rest

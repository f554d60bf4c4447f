"""How much slower a kind's recent jobs are than its sample: a fit of one scale factor.

When a service's queue backs up, every duration grows by about one factor. The new
durations' own quantiles take hundreds of finishes to learn (the 68th percentile only once
jobs have run that long), but one factor is known within a few dozen: the likelihood of
what is known of the recent jobs (the interval each finished one ended in, the age each
pending one has reached) under the old distribution (the one the plan was made on) scaled
by ``c``. The pending
ones count as much as the finished: right after a slow-down the finished are only the
new regime's fastest jobs, which alone would say nothing changed.

Pure functions and small classes on plain lists (``slowed_since`` finds a slow-down,
``Rescaled`` keeps the old schedule and its fitted scale): see docs/watcher.md ("A shift in
the durations").
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Iterable, Sequence

__all__ = ["Fit", "Likelihood", "Rescaled", "Shape", "change_point", "slowed_since"]

#: the shape's grid, in log-age (1%), and how far past the sample it extends
_STEP = 0.01
_PAST = 1.5
#: the kernel's half-width in cells (5% of the age): 512 durations read as a smooth shape
_HALF = 5
#: the least probability one observation is given: one far outside the shape (a job of
#: another kind, a fetch that failed for a while) costs a bounded amount, not the fit
_FLOOR = 1e-4
#: the log-scales tried: a coarse pass, then a fine one around its best
_COARSE = 0.05
_FINE = 0.005
_LOW_SCALE = -1.0
_HIGH_SCALE = 2.1


class Shape:
    """The CDF of a sample's log-durations on a grid, to ask it at any scale."""

    __slots__ = ("cdf", "x0")

    def __init__(
        self, points: Sequence[float], masses: Sequence[float] | None = None, rest: float = 0.0
    ) -> None:
        """Make the shape of durations ``points`` (sorted), each of its ``masses`` (default:
        equal); ``rest`` is the mass longer than every point."""
        pairs = [
            (math.log(x), 1.0 if masses is None else masses[k])
            for k, x in enumerate(points)
            if x > 0.0
        ]
        if not pairs:
            raise ValueError("a shape needs at least one positive duration")
        logs = [x for x, _ in pairs]
        cumulative = list(itertools.accumulate(m for _, m in pairs))
        total = cumulative[-1] + max(rest, 0.0)
        self.x0 = logs[0] - _PAST
        cells = int((logs[-1] + _PAST - self.x0) / _STEP) + 1
        raw = []
        for j in range(cells):
            k = bisect.bisect_right(logs, self.x0 + j * _STEP)
            raw.append(cumulative[k - 1] / total if k else 0.0)
        # A moving average over +-5% of the age: the empirical CDF's steps would make the
        # likelihood jump between scales a cell apart.
        width = 2 * _HALF + 1
        padded = [0.0] * _HALF + raw + [raw[-1]] * _HALF
        prefix = [0.0]
        for v in padded:
            prefix.append(prefix[-1] + v)
        self.cdf = [(prefix[j + width] - prefix[j]) / width for j in range(cells)]

    def quantile(self, q: float) -> float:
        """Return the ``q`` quantile of the shape (its longest age if never reached)."""
        j = bisect.bisect_left(self.cdf, q)
        return math.exp(self.x0 + min(j, len(self.cdf) - 1) * _STEP)


class Fit:
    """A fitted log-scale ``theta`` (durations grew by ``exp(theta)``), how sure it is
    (``low``: the lower end of its likelihood interval) and how much better it explains
    the data than no change (``gain``, in nats)."""

    __slots__ = ("gain", "low", "theta")

    def __init__(self, theta: float, low: float, gain: float) -> None:
        self.theta = theta
        self.low = low
        self.gain = gain

    def __repr__(self) -> str:
        scale, low = math.exp(self.theta), math.exp(self.low)
        return f"Fit(scale={scale:.3f}, low={low:.3f}, gain={self.gain:.1f})"


class Likelihood:
    """The log-likelihood of what is known of some jobs, as a function of the log-scale
    ``theta`` by which their durations differ from ``shape``'s.

    ``finished`` holds the intervals ``(low, high]`` the jobs ended in (low 0.0: any time
    before ``high``; equal: exact), ``pending`` the ages ``(age, count)`` jobs are known
    to have run past.
    """

    __slots__ = ("_ages", "_cdf", "_highs", "_lows", "size")

    def __init__(
        self,
        shape: Shape,
        finished: Sequence[tuple[float, float]],
        pending: Sequence[tuple[float, float]],
    ) -> None:
        x0 = shape.x0
        # Each observation as a position on the grid (in cells, before scaling).
        self._lows: list[float] = []
        self._highs: list[float] = []
        for low, high in finished:
            if high <= 0.0:
                continue
            hi = math.log(high)
            if low >= high:  # exact: a cell's worth either side
                lo, hi = hi - _STEP, hi + _STEP
            elif low > 0.0:
                lo = math.log(low)
            else:
                lo = -math.inf
            self._lows.append((lo - x0) / _STEP)
            self._highs.append((hi - x0) / _STEP)
        self._ages = [((math.log(a) - x0) / _STEP, c) for a, c in pending if a > 0.0 and c > 0.0]
        self._cdf = shape.cdf
        #: how many observations it holds
        self.size = len(self._lows) + len(self._ages)

    def __call__(self, theta: float) -> float:
        return sum(self.terms(theta))

    def terms(self, theta: float) -> list[float]:
        """Return each observation's log-likelihood at ``theta``: the finished ones in
        order, then the pending ages (each times its count)."""
        cdf = self._cdf
        last = len(cdf) - 1
        log = math.log
        floor = _FLOOR
        shift = theta / _STEP

        def at(pos: float) -> float:
            # Linear between cells: a step function would make the likelihood jump by
            # nats between scales a cell apart.
            if pos <= 0.0:
                return 0.0
            j = int(pos)
            if j >= last:
                return 1.0
            return cdf[j] + (cdf[j + 1] - cdf[j]) * (pos - j)

        out = []
        for lo, hi in zip(self._lows, self._highs, strict=True):
            p = at(hi - shift) - (at(lo - shift) if lo != -math.inf else 0.0)
            out.append(log(p if p > floor else floor))
        for pos, count in self._ages:
            s = 1.0 - at(pos - shift)
            out.append(count * log(s if s > floor else floor))
        return out

    def quick_gain(self) -> float:
        """Return about how much likelier the best scale makes the data than no change,
        from three values near it (a Newton step): a cheap test before ``fit``. Positive
        only for a slow-down."""
        d = _COARSE
        minus, zero, plus = self(-d), self(0.0), self(d)
        slope = (plus - minus) / (2 * d)
        bend = (plus - 2 * zero + minus) / (d * d)
        if slope <= 0.0:
            return 0.0
        if bend >= 0.0:
            return math.inf  # no maximum near: far from it
        return slope * slope / (-2 * bend)

    def fit(self, sure: float = 0.5) -> Fit | None:
        """Return the scale that makes the data likeliest (None: there is no data).

        ``Fit.low`` is where the log-likelihood has fallen ``sure`` nats below its best, on
        the low side (0.5: one standard error).
        """
        if not self.size:
            return None
        coarse, fine = _scan(self)
        theta, top = max(fine, key=lambda tl: tl[1])
        # The lower end of the interval: the fine pass first, the coarse one past it.
        low = theta
        for t, ll in reversed([p for p in fine if p[0] <= theta]):
            if ll < top - sure:
                break
            low = t
        else:
            for t, ll in reversed([p for p in coarse if p[0] < theta - _COARSE]):
                if ll < top - sure:
                    break
                low = t
        return Fit(theta, low, top - self(0.0))


#: the spans of submission times tested for a slow-down, as quantiles of the sample: the
#: jobs submitted within its median, its 75th percentile... of now
_SPANS = (0.5, 0.75, 0.9, 0.99)
#: a slow-down is declared when a scale explains the recent jobs this many nats better than
#: no change (a false alarm under no change: about e^-12 per test) and it is surely this
#: much slower (the lower end of its interval)
_GAIN = 12.0
_SLOWER = math.log(1.15)
#: a declared scale's interval: 2 nats below the best (2 standard errors)
_SURE = 2.0
#: the scale the plan uses, as a share of that lower end: the old plan spends the whole
#: share of late jobs allowed, and a scale a few % high would spend more
_MARGIN = 0.97
#: the fewest finished jobs of the new durations a scale is fitted on, and how much one
#: fit may raise it over the last (a fit on few jobs errs high more often than low)
_MIN_FINISHED = 8
_MAX_GROWTH = 1.25
#: and the first poll's share of the scaled one
_FIRST_MARGIN = 0.95

Finish = tuple[float, float, float, float]  # (started, guess, low, high): DurationStats.latest


def _since(latest: Iterable[Finish], since: float) -> list[tuple[float, float]]:
    return [(low, high) for started, _, low, high in latest if started >= since]


def change_point(
    shape: Shape,
    latest: Sequence[Finish],
    now: float,
    pending: Sequence[tuple[float, float]],
    since: float,
) -> float:
    """Return when, at or after ``since``, the jobs began to be slower (a CUSUM).

    The jobs submitted since ``since`` are fitted one scale; each job's gain under it (its
    log-likelihood at the scale less at no change) is summed from the latest submission
    back, and the change is where that sum is largest: the jobs before it, of the old
    durations, would only pull the scale towards no change.
    """
    finished = [(started, low, high) for started, _, low, high in latest if started >= since]
    young = _younger(pending, now - since)
    likelihood = Likelihood(shape, [(lo, hi) for _, lo, hi in finished], young)
    starts = [started for started, lo, hi in finished if hi > 0.0]
    # A pending job last seen at some age was submitted about that long before now.
    starts += [now - age for age, count in young if age > 0.0 and count > 0.0]
    order = sorted(range(len(starts)), key=starts.__getitem__, reverse=True)
    null = likelihood.terms(0.0)
    where = since
    # The scale fitted on every job since ``since`` is diluted by the old ones: fit it again
    # on the jobs after the change found, and find the change again (twice is enough).
    for _ in range(3):
        chosen = [k for k in range(len(starts)) if starts[k] >= where]
        theta = _best_theta(likelihood, chosen, null)
        if theta is None:
            return where
        gains = [a - b for a, b in zip(likelihood.terms(theta), null, strict=True)]
        best, total, found = 0.0, 0.0, where
        for k in order:
            total += gains[k]
            if total > best:
                best, found = total, starts[k]
        if found == where:
            break
        where = found
    return where


def _best_theta(likelihood: Likelihood, chosen: list[int], null: list[float]) -> float | None:
    """Return the log-scale that best explains the observations ``chosen`` (None: none)."""
    if not chosen:
        return None

    def value(theta: float) -> float:
        terms = likelihood.terms(theta)
        return sum(terms[k] for k in chosen)

    _, fine = _scan(value)
    return max(fine, key=lambda tl: tl[1])[0]


def _scan(
    value: Callable[[float], float],
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Return ``(theta, value(theta))`` over the log-scales tried: a coarse pass, then a fine
    one around the coarse pass's best."""

    def scan(start: float, stop: float, by: float) -> list[tuple[float, float]]:
        n = round((stop - start) / by)
        return [(start + k * by, value(start + k * by)) for k in range(n + 1)]

    coarse = scan(_LOW_SCALE, _HIGH_SCALE, _COARSE)
    best = max(coarse, key=lambda tl: tl[1])[0]
    return coarse, scan(best - _COARSE, best + _COARSE, _FINE)


def _younger(pending: Sequence[tuple[float, float]], span: float) -> list[tuple[float, float]]:
    return [(age, count) for age, count in pending if age < span]


def slowed_since(
    shape: Shape,
    latest: Iterable[Finish],
    now: float,
    pending: Sequence[tuple[float, float]],
    covered: float = -math.inf,
) -> float | None:
    """Return since when the jobs submitted have been surely slower than ``shape`` says
    (None: they are not).

    ``latest`` holds the latest finishes (every one since ``covered``: older ones may have
    been dropped), ``pending`` the pending jobs' ages ``(age, count)``. Every job submitted
    in a span before ``now`` is either finished or pending, so together they are the whole
    cohort, not its fast part: a slow-down's first finishers, its fastest jobs, cannot hide
    it.
    """
    finishes = list(latest)
    best: tuple[float, float] | None = None
    for q in _SPANS:
        span = shape.quantile(q)
        since = now - span
        if since < covered:
            break  # some of those jobs' finishes are no longer kept: they would look slow
        likelihood = Likelihood(shape, _since(finishes, since), _younger(pending, span))
        if likelihood.quick_gain() < _GAIN / 2:
            continue  # cheap: three values, against ~100 for a fit
        fit = likelihood.fit(_SURE)
        surely = fit is not None and fit.gain >= _GAIN and fit.low >= _SLOWER
        if fit is not None and surely and (best is None or fit.gain > best[0]):
            best = (fit.gain, since)
    return None if best is None else change_point(shape, finishes, now, pending, best[1])


class Rescaled:
    """A kind's schedule from before its durations grew, scaled by how much they did.

    After a slow-down the new durations' quantiles take hundreds of finishes to learn, but
    one factor is known within a few dozen (``Likelihood``); until the new sample can be
    planned on by itself, the old plan and quantiles times that factor serve.
    """

    __slots__ = (
        "_fitted",
        "_fitted_at",
        "ages",
        "dense_from",
        "dense_to",
        "first",
        "generation",
        "scale",
        "shape",
        "since",
        "window",
    )

    def __init__(
        self,
        generation: int,
        since: float,
        shape: Shape,
        quantiles: tuple[float, float, float],
        ages: list[float] | None,
    ) -> None:
        #: the sample's generation this applies to, and since when its jobs were submitted
        self.generation = generation
        self.since = since
        #: the distribution the old plan was made on
        self.shape = shape
        #: how early the change may have begun (where ``change_point`` searches from)
        self.window = since - shape.quantile(0.5)
        #: the first-poll, dense-from and dense-to quantiles and the poll ages from before
        self.first, self.dense_from, self.dense_to = quantiles
        self.ages = ages
        #: how much the durations grew (None: not known yet)
        self.scale: float | None = None
        self._fitted = -1
        self._fitted_at = -math.inf

    def refit(
        self,
        latest: Iterable[Finish],
        now: float,
        pending: Sequence[tuple[float, float]],
        covered: float = -math.inf,
    ) -> None:
        """Fit the scale again on the jobs submitted since the change, if enough is new:
        an eighth more finishes (at least 2), or time worth 5% of the old median."""
        finishes = list(latest)
        finished = _since(finishes, self.since)
        middle = self.shape.quantile(0.5)
        if len(finished) < self._fitted + max(2, self._fitted // 8) and (
            now - self._fitted_at < 0.05 * middle
        ):
            return
        self._fitted = len(finished)
        self._fitted_at = now
        # Where the change began is known better as more jobs of each side are seen.
        window = max(self.window, covered)
        self.since = change_point(self.shape, finishes, now, pending, window)
        finished = _since(finishes, self.since)
        if len(finished) < _MIN_FINISHED:
            # Pending jobs alone say only "at least this slow", and with one or two finishes
            # the likeliest scale can be far too high (2.8x for a doubling, in one run).
            return
        fit = Likelihood(self.shape, finished, _younger(pending, now - self.since)).fit(_SURE)
        if fit is not None:
            # The lower end: a scale too low polls early (a few more polls), one too high
            # makes the jobs ending before the first poll late.
            scale = math.exp(fit.low) * _MARGIN
            if self.scale is not None:
                scale = min(scale, self.scale * _MAX_GROWTH)
            self.scale = scale

    def scaled_ages(self) -> list[float] | None:
        """Return the old poll ages times the scale (None: no plan, or no scale yet)."""
        if self.ages is None or self.scale is None:
            return None
        scale = self.scale
        ages = [a * scale for a in self.ages]
        # The first poll spends the whole share of jobs allowed more than 15% late (those
        # ending before it): the scale's error, a few %, would spend more.
        ages[0] *= _FIRST_MARGIN
        return ages

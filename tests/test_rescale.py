"""A slow-down measured as one scale factor on the whole recent cohort (``_rescale``)."""

from __future__ import annotations

import math
import random

import pytest

from ttapi_async._rescale import Likelihood, Rescaled, Shape, change_point, slowed_since

MU, SIGMA = math.log(40.0), 0.35


def _old(seed: int) -> Shape:
    rng = random.Random(seed)
    return Shape(sorted(rng.lognormvariate(MU, SIGMA) for _ in range(512)))


def _stream(
    seed: int, now: float, *, drift_at: float = math.inf, factor: float = 2.0
) -> tuple[list[tuple[float, float, float, float]], list[tuple[float, float]]]:
    """Jobs submitted at 20/s from 0 to ``now``, ``factor`` times slower from ``drift_at``,
    polled every 10% of their age: the finishes (started, guess, low, high) in the order
    they came, and the pending ones' last-seen ages (age, 1)."""
    rng = random.Random(seed)
    finishes: list[tuple[float, float, float, float, float]] = []
    pending: list[tuple[float, float]] = []
    t = 0.0
    while True:
        t += rng.expovariate(20.0)
        if t >= now:
            break
        d = rng.lognormvariate(MU, SIGMA) * (factor if t >= drift_at else 1.0)
        polls = [1.0]
        while polls[-1] < now - t:
            polls.append(polls[-1] * 1.1)
        seen = [p for p in polls if p <= now - t]
        done = [p for p in seen if p >= d]
        if done:
            high = done[0]
            low = max([p for p in seen if p < d], default=0.0)
            finishes.append((t + high, t, (low + high) / 2, low, high))
        elif seen:
            pending.append((seen[-1], 1.0))
    finishes.sort()
    return [f[1:] for f in finishes], pending


def test_a_shape_answers_its_sample_quantiles() -> None:
    shape = _old(1)
    assert shape.quantile(0.5) == pytest.approx(40.0, rel=0.05)
    assert shape.quantile(0.9) == pytest.approx(40.0 * math.exp(SIGMA * 1.2816), rel=0.06)


def test_a_doubling_is_fitted_within_10_percent_on_finished_and_pending_jobs() -> None:
    shape = _old(2)
    rng = random.Random(3)
    durations = [2.0 * rng.lognormvariate(MU, SIGMA) for _ in range(300)]
    finished = [(0.87 * d, d) for d in durations if d < 55.0]
    pending = [(55.0, float(sum(1 for d in durations if d >= 55.0)))]
    fit = Likelihood(shape, finished, pending).fit()
    assert fit is not None and math.exp(fit.theta) == pytest.approx(2.0, rel=0.1)
    assert fit.low <= fit.theta
    # The finished alone are the new durations' fastest: they would say far less.
    fast = Likelihood(shape, finished, []).fit()
    assert fast is not None and math.exp(fast.theta) < 1.5


@pytest.mark.parametrize("seed", range(5))
def test_no_change_is_no_slow_down(seed: int) -> None:
    finishes, pending = _stream(seed, 150.0)
    assert slowed_since(_old(seed + 10), finishes, 150.0, pending) is None


@pytest.mark.parametrize("seed", range(3))
def test_a_doubling_is_found_where_it_began(seed: int) -> None:
    finishes, pending = _stream(seed, 95.0, drift_at=50.0)
    since = slowed_since(_old(seed + 10), finishes, 95.0, pending)
    # Never before it (old jobs would dilute the scale); a pending job's start is read from
    # its last-seen age, a little late, so the change may be found a few seconds after.
    assert since is not None and 49.0 <= since <= 58.0


def test_the_change_point_is_not_pulled_early_by_the_old_jobs() -> None:
    finishes, pending = _stream(7, 95.0, drift_at=50.0)
    # Searched from 20 s: the 30 s of old jobs after it must not move the change there.
    assert 49.0 <= change_point(_old(17), finishes, 95.0, pending, 20.0) <= 58.0


def test_a_scale_needs_a_few_finished_jobs_and_then_comes_within_10_percent() -> None:
    shape = _old(4)
    rescaled = Rescaled(1, 50.0, shape, (30.0, 47.0, math.inf), [30.0, 34.5, 39.7])
    finishes, pending = _stream(5, 110.0, drift_at=50.0)
    # Pending jobs alone say only "at least this slow": no scale from them.
    rescaled.refit([], 110.0, pending)
    assert rescaled.scale is None and rescaled.scaled_ages() is None
    assert len([f for f in finishes if f[0] >= 50.0]) >= 8
    rescaled.refit(finishes, 120.0, pending)
    assert rescaled.scale is not None and rescaled.scale == pytest.approx(2.0, rel=0.1)
    ages = rescaled.scaled_ages()
    assert ages is not None and ages[1] == pytest.approx(34.5 * rescaled.scale)
    assert ages[0] < 30.0 * rescaled.scale  # the first poll keeps a margin

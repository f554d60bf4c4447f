"""The optimised schedule: the fewest polls within the lag bounds, on a known or learned CDF."""

from __future__ import annotations

import itertools
import math
import random

import pytest

from ttapi_async._planner import (
    LATE5_MARGIN,
    LATE15_MARGIN,
    Grid,
    censored_masses,
    evaluate,
    learned_ages,
    optimise,
    smooth_cdf,
    stretch,
)


def lognormal_grid(median: float, sigma: float, step: float = 0.005) -> Grid:
    mu = math.log(median)
    lo, hi = mu - 5.3 * sigma, mu + 5.3 * sigma
    n = int((hi - lo) / step) + 2
    cdf = [0.5 * (1 + math.erf((lo + j * step - mu) / (sigma * math.sqrt(2)))) for j in range(n)]
    return Grid(lo, step, cdf)


def sample(n: int, median: float, sigma: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    return sorted(rng.lognormvariate(math.log(median), sigma) for _ in range(n))


def test_optimum_on_a_known_lognormal_matches_the_exhaustive_oracle() -> None:
    """On lognormal(40 s, 0.35) the optimised schedule makes the oracle's 7.00 polls per job
    (benchmarks/_oracle.py, an exhaustive search) and keeps both late shares in bounds."""
    grid = lognormal_grid(40.0, 0.35)
    polls, late5, late15 = evaluate(optimise(grid), grid)
    assert polls == pytest.approx(7.0, abs=0.02)
    assert late5 <= 0.5
    assert late15 <= 0.01


def test_optimum_does_not_depend_on_the_time_scale() -> None:
    """The same shape 30x faster gets the same schedule, 30x earlier."""
    slow = optimise(lognormal_grid(120.0, 0.35))
    fast = optimise(lognormal_grid(4.0, 0.35))
    assert len(slow) == len(fast)
    assert slow[0] / fast[0] == pytest.approx(30.0, rel=0.01)


def test_learned_plan_keeps_its_margins_on_its_own_distribution() -> None:
    """The plan for a sample meets the lag bounds less its margins on the sample's CDF."""
    for seed in range(3):
        durations = sample(512, 10.0, 0.35, seed)
        ages = learned_ages(durations, [1 / 512] * 512, 0.0)
        assert ages is not None
        _, late5, late15 = evaluate(ages, smooth_cdf(durations))
        assert late5 <= 0.5 - LATE5_MARGIN + 1e-9
        assert late15 <= 0.01 - LATE15_MARGIN + 1e-9


def test_learned_plan_of_a_bimodal_sample_skips_the_gap() -> None:
    """Between two modes (15 s and 90 s) the plan leaves one long gap instead of polling."""
    rng = random.Random(1)
    durations = sorted(
        rng.lognormvariate(math.log(15.0 if rng.random() < 0.3 else 90.0), 0.2) for _ in range(512)
    )
    ages = learned_ages(durations, [1 / 512] * 512, 0.0)
    assert ages is not None
    assert max(b / a for a, b in itertools.pairwise(ages)) > 1.5


def test_no_plan_while_much_of_the_distribution_is_unknown() -> None:
    """A sample whose tail is still running (20% pending past it) gets no optimised plan."""
    assert learned_ages(sample(200, 10.0, 0.35, 0), [0.004] * 200, 0.2) is None


def test_lower_tail_is_fitted_not_read_off_a_few_durations() -> None:
    """On lognormal samples of 512, the fitted lower tail reads the true 1st percentile
    closer (mean absolute error over 20 samples) than the kernel estimate alone."""
    q01 = math.log(10.0 * math.exp(-2.326 * 0.35))
    fitted = plain = 0.0
    for seed in range(20):
        durations = sample(512, 10.0, 0.35, seed)
        fitted += abs(smooth_cdf(durations).at(q01) - 0.01)
        plain += abs(smooth_cdf(durations, tail=0.0).at(q01) - 0.01)
    assert fitted < plain


def test_lower_tail_of_two_modes_is_not_fitted_as_one() -> None:
    """A small fast mode (5% at 2 s, the rest at 20 s) keeps its kernel estimate: a single
    lognormal through both would put mass where no job ends."""
    rng = random.Random(3)
    durations = sorted(
        rng.lognormvariate(math.log(2.0 if rng.random() < 0.05 else 20.0), 0.2) for _ in range(512)
    )
    fitted = smooth_cdf(durations)
    plain = smooth_cdf(durations, tail=0.0)
    assert fitted.at(math.log(1.0)) == pytest.approx(plain.at(math.log(1.0)))


def censored(durations: list[float], seed: int, ratio: float) -> tuple[list[float], list[float]]:
    """Return the intervals a geometric poll schedule (gaps of ``ratio``, a random start per
    job) sees each duration in: (age last seen pending, age seen done]."""
    rng = random.Random(seed)
    lows, highs = [], []
    for d in durations:
        t, prev = 2.0 * (1.0 + (ratio - 1.0) * rng.random()), 0.0
        while t < d:
            prev, t = t, t * ratio
        lows.append(prev)
        highs.append(t)
    return lows, highs


def cdf_at(ages: list[float], masses: list[float], t: float) -> float:
    return sum(m for a, m in zip(ages, masses, strict=True) if a <= t)


def test_em_recovers_a_lognormal_from_poll_intervals() -> None:
    """2,000 lognormal(10 s, 0.35) durations: a quarter known exactly, the rest only as
    intervals 60% wide. The Turnbull estimate reads the CDF within 0.012 of the truth from
    its 1st to its 99th percentile, where the start it iterates from (each interval's weight
    spread evenly over it) is up to 0.027 off."""
    durations = sample(2000, 10.0, 0.35, 7)
    exact = durations[::4]
    lows, highs = censored([d for i, d in enumerate(durations) if i % 4], 8, 1.6)
    lows, highs = exact + lows, exact + highs
    ages, masses, rest = censored_masses(lows, highs)
    start, spread, _ = censored_masses(lows, highs, iterations=0)
    assert rest == pytest.approx(0.0, abs=1e-9)
    assert sum(masses) == pytest.approx(1.0)
    worst = worst0 = 0.0
    for z in (-2.326, -1.5, -0.674, 0.0, 0.674, 1.5, 2.326):
        t = 10.0 * math.exp(0.35 * z)
        truth = 0.5 * (1 + math.erf(z / math.sqrt(2)))
        worst = max(worst, abs(cdf_at(ages, masses, t) - truth))
        worst0 = max(worst0, abs(cdf_at(start, spread, t) - truth))
    assert worst < 0.012
    assert worst0 > 0.02


def test_em_counts_pending_jobs_as_running_longer() -> None:
    """500 jobs done exactly at 5 s and 500 still pending at 8 s: half the mass is at 5 s,
    the other half past every known age (``rest``)."""
    ages, masses, rest = censored_masses([5.0] * 500, [5.0] * 500, pending=[(8.0, 500.0)])
    assert rest == pytest.approx(0.5, abs=1e-6)
    assert cdf_at(ages, masses, 5.1) == pytest.approx(0.5, abs=1e-6)


def test_em_weights_each_duration() -> None:
    """A duration standing for 3 jobs weighs 3 pending ones: survival past it is 0.5."""
    *_, rest = censored_masses([5.0] * 100, [5.0] * 100, weight=3.0, pending=[(6.0, 300.0)])
    assert rest == pytest.approx(0.5, abs=1e-6)


def test_stretch_spends_the_unspent_late_share() -> None:
    """A plan 10% too early is moved later until a late share meets its bound, no further."""
    grid = lognormal_grid(40.0, 0.35)
    early = [t * 0.9 for t in optimise(grid)]
    out = stretch(early, grid, late5=0.5, late15=0.01)
    polls, late5, late15 = evaluate(out, grid)
    assert polls < evaluate(early, grid)[0]
    assert late5 <= 0.5 and late15 <= 0.01
    assert max(late5 - 0.5, late15 - 0.01) > -0.002


def test_plan_from_censored_intervals_keeps_the_bounds_on_the_true_distribution() -> None:
    """Planned on 2,000 lognormal(40 s, 0.35) durations known only as 15%-wide intervals
    (three seeds), the plan realises at most 1% of jobs more than 15% late and half more
    than 5% late on the true distribution, within 1.12x the oracle's polls."""
    truth = lognormal_grid(40.0, 0.35)
    for seed in range(3):
        lows, highs = censored(sample(2000, 40.0, 0.35, 20 + seed), 30 + seed, 1.15)
        ages, masses, rest = censored_masses(lows, highs)
        kept = [(a, m) for a, m in zip(ages, masses, strict=True) if m > 1e-9]
        plan = learned_ages([a for a, _ in kept], [m for _, m in kept], rest)
        assert plan is not None
        polls, late5, late15 = evaluate(plan, truth)
        assert late15 <= 0.01
        assert late5 <= 0.5
        assert polls <= 1.12 * 7.0

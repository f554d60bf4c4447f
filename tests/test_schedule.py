"""The poll schedule: tenacity waits on a cold start, learned placement afterwards."""

from __future__ import annotations

import random

import pytest
import tenacity

from ttapi_async import PollSchedule
from ttapi_async._schedule import DurationStats, LearnedWait, poll_state


def state_at(age: float | None, attempt: int = 1) -> tenacity.RetryCallState:
    state = poll_state()
    state.attempt_number = attempt
    if age is None:
        state.outcome_timestamp = None
    else:
        state.start_time = 100.0
        state.outcome_timestamp = 100.0 + age
    return state


def learned(schedule: PollSchedule, durations: list[float]) -> LearnedWait:
    stats = DurationStats(schedule.window)
    for d in durations:
        stats.add(d)
    return LearnedWait(schedule, stats, random.Random(0))


FORTY = [30.0 + i * 0.2 for i in range(101)]  # 30 s .. 50 s, median 40 s


def test_cold_start_uses_the_tenacity_wait() -> None:
    """Without enough samples the first delay and the tenacity wait decide."""
    schedule = PollSchedule(first_delay=7.0, wait=tenacity.wait_fixed(3.0), jitter=0.0)
    wait = learned(schedule, [40.0] * 5)
    assert wait.first_delay() == 7.0
    assert wait(state_at(20.0)) == 3.0


def test_default_cold_wait_backs_off_with_jitter_to_a_cap() -> None:
    """The default cold wait grows per attempt, carries jitter, and stops at its cap."""
    wait = learned(PollSchedule(), [])
    first = [wait(state_at(None, 1)) for _ in range(50)]
    assert all(2.0 <= w <= 2.5 for w in first) and len(set(first)) > 1
    assert 2.5 < wait(state_at(None, 3)) <= 3.6
    assert 15.0 <= wait(state_at(None, 40)) <= 15.5


def test_learned_first_poll_sits_below_the_low_quantile() -> None:
    """With enough samples the first poll comes just under the 2nd percentile."""
    wait = learned(PollSchedule(jitter=0.0), FORTY)
    assert wait.first_delay() == pytest.approx(0.9 * 30.4)


def test_learned_first_poll_is_bounded() -> None:
    """The learned first poll never leaves [min_first_delay, max_first_delay]."""
    assert learned(PollSchedule(jitter=0.0), [0.1] * 30).first_delay() == 1.0
    assert learned(PollSchedule(jitter=0.0), [900.0] * 30).first_delay() == 120.0


def test_polls_are_denser_after_the_median() -> None:
    """Intervals are 14% of the age before the median, 6% after it."""
    schedule = PollSchedule(jitter=0.0)
    wait = learned(schedule, FORTY)
    assert wait(state_at(32.0)) == pytest.approx(32.0 * 0.14)
    assert wait(state_at(45.0)) == pytest.approx(45.0 * 0.06)
    assert wait(state_at(80.0)) == pytest.approx(80.0 * 0.06)
    assert wait(state_at(600.0)) == 30.0  # 6% of 600 s, capped


def test_dense_part_can_end() -> None:
    """With dense_to below 1, ages past that quantile go back to the sparse ratio."""
    wait = learned(PollSchedule(jitter=0.0, dense_to=0.99), FORTY)
    assert wait(state_at(80.0)) == pytest.approx(80.0 * 0.14)


def test_first_poll_is_jittered() -> None:
    """First polls of jobs submitted together are spread by up to the jitter fraction."""
    wait = learned(PollSchedule(jitter=0.05), FORTY)
    firsts = {wait.first_delay() for _ in range(50)}
    assert len(firsts) > 1
    assert all(0.95 * 0.9 * 30.4 <= f <= 0.9 * 30.4 for f in firsts)


def test_intervals_are_clamped() -> None:
    """Learned intervals stay within [min_interval, max_interval]."""
    wait = learned(PollSchedule(jitter=0.0, min_interval=2.0), FORTY)
    assert wait(state_at(5.0)) == 2.0


def test_unknown_age_falls_back_to_the_wait() -> None:
    """A job of unknown age (resumed) is spaced by the tenacity wait, not the learned one."""
    wait = learned(PollSchedule(wait=tenacity.wait_fixed(4.0)), FORTY)
    assert wait(state_at(None)) == 4.0


def test_learning_can_be_switched_off() -> None:
    """learn=False keeps the cold schedule whatever was recorded."""
    wait = learned(PollSchedule(learn=False, first_delay=5.0, jitter=0.0), FORTY)
    assert wait.first_delay() == 5.0


def test_stats_keep_a_window() -> None:
    """DurationStats keeps at most window durations and ignores non-positive ones."""
    stats = DurationStats(window=4, rng=random.Random(1))
    for d in (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 0.0):
        stats.add(d)
    kept = stats.snapshot()
    assert len(kept) == 4 and 0.0 not in kept


def test_stats_forget_at_random_not_the_oldest() -> None:
    """After a batch the sample still holds its fast jobs, not only its last (slow) ones."""
    stats = DurationStats(window=100, rng=random.Random(2))
    for i in range(1000):
        stats.add(10.0 + i * 0.1)  # a batch finishing fastest first
    assert stats.quantile(0.02) < 60.0  # the last 100 alone would all be above 100


def test_plan_is_frozen_for_a_job() -> None:
    """The plan a job got at submission does not move when later durations arrive."""
    wait = learned(PollSchedule(jitter=0.0), FORTY)
    plan = wait.plan()
    assert plan is not None
    for _ in range(200):
        wait.stats.add(5.0)
    later = wait.plan()
    assert later is not None and later.first < plan.first
    assert wait.delay(state_at(35.0), plan) > wait.delay(state_at(35.0), later) * 1.5


def test_scaled_schedule_scales_every_time() -> None:
    """scaled() multiplies the delays, bounds, deadline and the tenacity wait."""
    scaled = PollSchedule(wait=tenacity.wait_fixed(2.0)).scaled(0.01)
    assert scaled.first_delay == pytest.approx(0.08)
    assert scaled.deadline == pytest.approx(9.0)
    assert scaled.wait(state_at(None)) == pytest.approx(0.02)
    assert scaled.dense_ratio == PollSchedule().dense_ratio

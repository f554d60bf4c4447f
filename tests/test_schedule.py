"""The poll schedule: tenacity waits on a cold start, learned placement afterwards."""

from __future__ import annotations

import math
import random

import pytest
import tenacity

from ttapi_async import PollSchedule
from ttapi_async._schedule import (
    _COLD_MARGIN,
    DurationStats,
    LearnedWait,
    PendingAges,
    poll_state,
    survival_quantiles,
)


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
S = PollSchedule(jitter=0.0)
#: the quantile rules alone (no optimised plan, which takes over from 256 durations)
RULES = PollSchedule(jitter=0.0, optimise=False)
FIRST = 0.9 * FORTY[1]  # under FORTY's 1st percentile: 101 durations are few


def test_cold_start_uses_the_tenacity_wait() -> None:
    """With nothing learned the first delay and the tenacity wait decide."""
    schedule = PollSchedule(first_delay=7.0, wait=tenacity.wait_fixed(3.0), jitter=0.0)
    wait = learned(schedule, [])
    assert wait.first_delay() == 7.0
    assert wait(state_at(20.0)) == 3.0


def test_cold_first_poll_skips_to_a_known_onset() -> None:
    """Once a few jobs of a kind finished at 40 s, a new job's first poll waits for that."""
    schedule = PollSchedule(first_delay=7.0, jitter=0.0)
    wait = learned(schedule, [40.0] * 5)
    assert wait.first_delay() == pytest.approx(_COLD_MARGIN * 40.0)


def test_default_cold_wait_is_a_fraction_of_the_age() -> None:
    """The default cold wait of a job of known age is 30% of it, less up to 5% at random."""
    wait = learned(PollSchedule(), [])
    waits = [wait(state_at(20.0)) for _ in range(50)]
    assert all(0.95 * 6.0 <= w <= 6.0 for w in waits) and len(set(waits)) > 1


def test_default_cold_wait_backs_off_with_jitter_to_a_cap() -> None:
    """For a job of unknown age the default cold wait grows per attempt, with jitter, to a cap."""
    wait = learned(PollSchedule(), [])
    first = [wait(state_at(None, 1)) for _ in range(50)]
    assert all(2.0 <= w <= 2.5 for w in first) and len(set(first)) > 1
    assert 3.125 <= wait(state_at(None, 3)) <= 3.625
    assert 15.0 <= wait(state_at(None, 40)) <= 15.5


def test_learned_first_poll_sits_below_the_low_quantile() -> None:
    """With enough samples the first poll comes just under the 1st percentile."""
    wait = learned(S, FORTY)
    assert wait.first_delay() == pytest.approx(FIRST)


def test_first_poll_sits_at_the_low_quantile_of_a_large_sample() -> None:
    """With 256 durations or more, the first poll comes at first_factor x the 1st percentile."""
    many = [30.0 + i * 0.05 for i in range(401)]
    wait = learned(RULES, many)
    assert wait.first_delay() == pytest.approx(RULES.first_factor * many[4])


def test_first_poll_of_a_large_sample_is_the_optimised_plans() -> None:
    """With 256 durations or more, the first poll is the optimised plan's: later than the
    1st percentile, with under 1% of the durations more than 15% before it."""
    many = [30.0 + i * 0.05 for i in range(401)]
    wait = learned(S, many)
    plan = wait.plan()
    assert plan is not None and plan.ages is not None
    first = wait.first_delay()
    assert first == pytest.approx(plan.ages[0])
    assert first > many[4]
    assert sum(1 for d in many if d * 1.15 < first) <= 0.01 * len(many)


def test_optimised_plan_gives_way_to_the_rules_on_a_suspected_shift() -> None:
    """While recent durations lie high in the sample, a job on the plan follows the rules."""
    many = [30.0 + i * 0.05 for i in range(401)]
    wait = learned(S, many)
    plan = wait.plan()
    assert plan is not None and plan.ages is not None
    planned = wait.delay(state_at(35.0), plan)
    wait.stats.suspect = True
    ruled = wait.delay(state_at(35.0), plan)
    ratio = S.dense_ratio if plan.dense_from <= 35.0 else S.sparse_ratio
    assert ruled == pytest.approx(35.0 * ratio)
    assert ruled != pytest.approx(planned)


def test_first_poll_comes_closer_to_the_quantile_from_128_durations() -> None:
    """With 128 to 255 durations the first poll comes at 0.95x the 1st percentile."""
    some = [30.0 + i * 0.1 for i in range(200)]
    wait = learned(S, some)
    assert wait.first_delay() == pytest.approx(0.95 * some[2])


def test_learned_first_poll_is_bounded() -> None:
    """The learned first poll never leaves [min_first_delay, max_first_delay]."""
    assert learned(S, [0.1] * 30).first_delay() == S.min_first_delay
    assert learned(S, [900.0] * 30).first_delay() == S.max_first_delay


def test_polls_are_denser_after_the_median() -> None:
    """Intervals are the sparse fraction of the age before dense_from, the dense one after."""
    wait = learned(S, FORTY)
    assert FORTY[int(S.dense_from * len(FORTY))] < 45.0
    assert wait(state_at(32.0)) == pytest.approx(32.0 * S.sparse_ratio)
    assert wait(state_at(45.0)) == pytest.approx(45.0 * S.dense_ratio)
    assert wait(state_at(80.0)) == pytest.approx(80.0 * S.dense_ratio)
    assert wait(state_at(900.0)) == S.max_interval  # capped


def test_dense_part_can_end() -> None:
    """With dense_to below 1, ages past that quantile go back to the sparse ratio."""
    wait = learned(PollSchedule(jitter=0.0, dense_to=0.99), FORTY)
    assert wait(state_at(80.0)) == pytest.approx(80.0 * S.sparse_ratio)


def test_first_poll_is_jittered() -> None:
    """First polls of jobs submitted together are spread by up to the jitter fraction."""
    wait = learned(PollSchedule(jitter=0.05), FORTY)
    firsts = {wait.first_delay() for _ in range(50)}
    assert len(firsts) > 1
    assert all(0.95 * FIRST <= f <= FIRST for f in firsts)


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
    wait = learned(RULES, FORTY)
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
    assert scaled.first_delay == pytest.approx(PollSchedule().first_delay * 0.01)
    assert scaled.deadline == pytest.approx(9.0)
    assert scaled.wait(state_at(None)) == pytest.approx(0.02)
    assert scaled.dense_ratio == PollSchedule().dense_ratio


def pending_at(*ages: float) -> PendingAges:
    pending = PendingAges()
    for age in ages:
        pending.add(0.0)
        pending.move(0.0, age)
    return pending


def test_pending_ages_follow_polls_and_settlements() -> None:
    """PendingAges moves a job to the age of its last poll and forgets it when removed."""
    pending = PendingAges()
    pending.add(0.0)
    pending.move(0.0, 10.0)
    pending.move(10.0, 12.0)
    assert pending.total == 1 and pending.counts[0] == 0 and sum(pending.counts) == 1
    pending.remove(12.0)
    assert pending.total == 0 and sum(pending.counts) == 0


def test_survival_quantiles_count_the_pending_jobs_of_a_batch() -> None:
    """With 900 jobs still pending past the 100 finished, the finished hold only 10%."""
    finished = [float(d) for d in range(1, 101)]  # 1 s .. 100 s
    quantiles = survival_quantiles(finished, 1.0, pending_at(*[101.0] * 900), [0.05, 0.2])
    assert quantiles == [51.0, math.inf]  # the plain 5% quantile would be 6 s


def test_survival_quantiles_stop_where_a_poll_round_is_under_way() -> None:
    """Past an age most pending jobs were not seen at yet, no quantile is known."""
    ages = [15.0] * 100 + [25.0] * 10  # 100 jobs last seen at 15 s, 10 already at 25 s
    assert survival_quantiles([20.0] * 10, 1.0, pending_at(*ages), [0.01]) == [math.inf]


def test_survival_quantiles_without_pending_jobs_are_plain_quantiles() -> None:
    """With nothing pending the estimate is the plain quantile of the durations."""
    assert survival_quantiles(FORTY, 1.0, PendingAges(), [0.02, 0.55]) == [
        FORTY[2],
        FORTY[55],
    ]


def test_censored_batch_keeps_sparse_polls_before_its_median() -> None:
    """A batch's fastest finishers do not make its pending jobs poll densely."""
    schedule = PollSchedule(jitter=0.0)
    wait = learned(schedule, [10.0 + i * 0.1 for i in range(50)])  # 10 s .. 15 s
    wait.pending = pending_at(*[16.0] * 950)
    assert wait.plan() is None  # its median is beyond 16 s: not known yet
    assert wait(state_at(20.0)) == pytest.approx(20.0 * S.sparse_ratio)


def test_cold_job_keeps_the_tenacity_wait_before_the_onset() -> None:
    """Before any job of its kind is known to finish, a job follows the tenacity wait."""
    schedule = PollSchedule(wait=tenacity.wait_fixed(9.0), jitter=0.0)
    wait = learned(schedule, [])
    wait.pending = pending_at(*[20.0] * 100)
    assert wait(state_at(20.0)) == 9.0


def test_cold_job_past_the_onset_polls_by_its_age() -> None:
    """Once some jobs of its kind are known to finish by its age, a cold job polls sparsely."""
    schedule = PollSchedule(wait=tenacity.wait_fixed(9.0), jitter=0.0)
    wait = learned(schedule, [12.0, 13.0, 14.0])  # 3 of 1,003: 0.3% > onset_quantile
    wait.pending = pending_at(*[20.0] * 1000)
    assert wait.plan() is None
    assert wait(state_at(20.0)) == pytest.approx(20.0 * S.sparse_ratio)


def test_first_finish_is_an_onset_before_the_estimate_stands() -> None:
    """In a stream whose younger jobs outnumber the older ones, the first finish is a floor."""
    wait = learned(S, [20.0])
    wait.pending = pending_at(*([15.0] * 100 + [25.0] * 10))  # a round under way at 15-20 s
    assert survival_quantiles([20.0], 1.0, wait.pending, [S.onset_quantile]) == [math.inf]
    assert wait.onset_known()
    assert wait.onset_target() == pytest.approx(_COLD_MARGIN * 20.0)


def test_cold_wait_skips_to_a_known_onset() -> None:
    """A cold job younger than the onset is polled next just before it, whatever its wait."""
    schedule = PollSchedule(wait=tenacity.wait_fixed(1.0), jitter=0.0)
    wait = learned(schedule, [12.0, 12.0, 14.0])  # 2 of 1,003 by 12 s: the onset
    wait.pending = pending_at(*[20.0] * 1000)
    assert wait(state_at(4.0)) == pytest.approx(_COLD_MARGIN * 12.0 - 4.0)


def test_cold_wait_does_not_overshoot_a_known_onset() -> None:
    """A cold job just before the onset is polled again within a sparse step of it."""
    schedule = PollSchedule(wait=tenacity.wait_fixed(9.0), jitter=0.0)
    wait = learned(schedule, [12.0, 12.0, 14.0])
    wait.pending = pending_at(*[20.0] * 1000)
    assert wait(state_at(11.5)) == pytest.approx(11.5 * schedule.sparse_ratio)


def test_small_cold_batch_goes_dense_past_its_known_median() -> None:
    """Before min_samples, a job past the (censored) median polls at the dense ratio."""
    schedule = PollSchedule(wait=tenacity.wait_fixed(9.0), jitter=0.0)
    wait = learned(schedule, [30.0 + i for i in range(10)])  # 10 finished, 30 s .. 39 s
    wait.pending = pending_at(*[50.0] * 4)  # 10 of 14 known to have finished by 39 s
    assert wait.plan() is None  # fewer than min_samples
    assert wait(state_at(50.0)) == pytest.approx(50.0 * S.dense_ratio)


def test_first_poll_comes_before_a_known_onset() -> None:
    """A new cold job whose kind finishes before the cold first delay is polled earlier."""
    schedule = PollSchedule(first_delay=8.0, jitter=0.0)
    wait = learned(schedule, [5.0, 5.5, 6.0])
    assert wait.first_delay() == pytest.approx(_COLD_MARGIN * 5.0)


def test_estimate_cut_short_keeps_what_was_known() -> None:
    """A poll round under way does not make a known median unknown again."""
    schedule = PollSchedule(jitter=0.0)
    wait = learned(schedule, [10.0 + i * 0.1 for i in range(50)])  # 10 s .. 15 s
    wait.pending = pending_at(*[16.0] * 20)
    plan = wait.plan()
    assert plan is not None and plan.dense_from < 16.0
    wait.pending = pending_at(*([14.0] * 500 + [16.0] * 20))  # a new round, mostly unseen
    wait.estimate()
    assert wait(state_at(20.0)) == pytest.approx(20.0 * S.dense_ratio)


def lognormal(rng: random.Random, median: float, n: int) -> list[float]:
    return [rng.lognormvariate(math.log(median), 0.35) for _ in range(n)]


def test_stats_restart_when_the_durations_double() -> None:
    """After 512 jobs of 40 s, 32 later-submitted jobs of about 80 s replace the sample."""
    rng = random.Random(5)
    stats = DurationStats(rng=rng)
    for i, d in enumerate(lognormal(rng, 40.0, 512)):
        stats.add(d, started=i * 0.05)
    assert stats.generation == 0
    for i, d in enumerate(lognormal(rng, 80.0, 64)):
        stats.add(d, started=100.0 + i * 0.05)
    assert stats.generation == 1
    assert 65.0 < stats.quantile(0.5) < 100.0  # the fading reservoir alone would say ~45 s


def test_stats_do_not_restart_on_steady_durations() -> None:
    """Thousands of durations of one steady distribution never look like a shift."""
    rng = random.Random(6)
    stats = DurationStats(rng=rng)
    for i, d in enumerate(lognormal(rng, 40.0, 20_000)):
        stats.add(d, started=i * 0.05)
    assert stats.generation == 0


def test_stats_do_not_restart_on_a_batch_finishing_slowest_last() -> None:
    """One batch's slow last finishers were submitted with its fast ones: no shift."""
    stats = DurationStats(rng=random.Random(8))
    for d in sorted(lognormal(random.Random(9), 40.0, 4000)):
        stats.add(d, started=0.0)
    assert stats.generation == 0


def test_learned_plan_follows_a_shift() -> None:
    """A learned plan re-estimates at once when the sample restarts after a shift."""
    rng = random.Random(7)
    wait = learned(S, [])
    for i, d in enumerate(lognormal(rng, 40.0, 512)):
        wait.stats.add(d, started=i * 0.05)
    before = wait.plan()
    for i, d in enumerate(lognormal(rng, 80.0, 64)):
        wait.stats.add(d, started=100.0 + i * 0.05)
    after = wait.plan()
    assert before is not None and after is not None
    assert after.first > 1.5 * before.first

"""The adaptive limit's arithmetic (ttapi_async/_aimd.py): growth, decrease, probe back-off."""

from __future__ import annotations

import random

from ttapi_async._aimd import MAX_BACKOFF, Aimd


def _after_refusal(level: float = 100.0, decrease: float = 0.9) -> Aimd:
    aimd = Aimd(level)
    aimd.shrink(level, decrease, 1.0)
    return aimd


def _acceptances_to_grow(aimd: Aimd, grow_every: int, cap: float = 1000.0) -> int:
    """Count the acceptances until the limit gains one slot."""
    for n in range(1, 100_000):
        if aimd.grow(cap, grow_every):
            return n
    raise AssertionError("the limit never grew")


def test_slow_start_grows_one_slot_per_acceptance() -> None:
    aimd = Aimd(4)
    assert [aimd.grow(10.0, 8) for _ in range(3)] == [True, True, True]
    assert aimd.limit == 7.0


def test_a_refusal_cuts_the_limit_and_ends_slow_start() -> None:
    aimd = _after_refusal(100.0, 0.9)
    assert aimd.limit == 90.0 and not aimd.slow and aimd.ceiling == 100.0


def test_the_climb_back_keeps_its_pace_until_near_the_ceiling() -> None:
    """90 -> 95 at one slot per 8 acceptances; within 5% of the ceiling, probing: twice that."""
    aimd = _after_refusal(100.0, 0.9)
    steps = [_acceptances_to_grow(aimd, 8) for _ in range(7)]
    assert steps == [8] * 5 + [16] * 2
    assert aimd.limit == 97.0


def test_the_first_probe_above_the_ceiling_waits_twice_as_long() -> None:
    aimd = _after_refusal(100.0, 0.9)
    aimd.limit = 100.0
    assert _acceptances_to_grow(aimd, 8) == 16


def test_each_refusal_at_the_same_level_doubles_the_wait_up_to_the_maximum() -> None:
    aimd = _after_refusal(100.0, 0.9)
    waits = []
    for _ in range(8):
        aimd.limit = aimd.ceiling  # back at the ceiling
        waits.append(_acceptances_to_grow(aimd, 8))
        aimd.shrink(100.0 + len(waits) % 2 / 2, 0.9, 1.0)  # refused again, about as high
    assert waits == [16, 32, 64, 128, 256, 512, 8 * MAX_BACKOFF, 8 * MAX_BACKOFF]


def test_a_refusal_at_another_level_resets_the_back_off() -> None:
    aimd = _after_refusal(100.0, 0.9)
    aimd.shrink(100.0, 0.9, 1.0)
    aimd.shrink(100.0, 0.9, 1.0)
    assert aimd.probes == 2
    aimd.shrink(80.0, 0.9, 1.0)  # the service's ceiling moved (another client, a new plan)
    assert aimd.probes == 0 and aimd.ceiling == 80.0
    aimd.limit = 80.0
    assert _acceptances_to_grow(aimd, 8) == 16


def test_a_refusal_near_the_ceiling_moves_it_a_quarter_of_the_way() -> None:
    """The level a 499 is seen at wanders with the ends not seen yet: the ceiling follows
    the refusals' levels (a moving average), not the last one."""
    aimd = _after_refusal(100.0, 0.9)
    aimd.shrink(104.0, 0.9, 1.0)  # within 5%: the same ceiling, seen again
    assert aimd.ceiling == 101.0 and aimd.probes == 1


def test_passing_the_ceiling_without_a_refusal_forgets_it() -> None:
    aimd = _after_refusal(100.0, 0.9)
    aimd.shrink(100.0, 0.9, 1.0)
    aimd.limit = 100.0
    while aimd.ceiling:  # 100 -> 110: two "moved" distances (5 slots each at 100)
        _acceptances_to_grow(aimd, 8)
    assert aimd.limit == 110.0 and aimd.probes == 0
    assert _acceptances_to_grow(aimd, 8) == 8


def test_the_cap_stops_growth() -> None:
    aimd = Aimd(10)
    assert not aimd.grow(10.0, 8)
    assert aimd.limit == 10.0


def _run_at_a_ceiling(
    probe_back_off: bool, *, ceiling: int = 200, jobs: int = 20_000
) -> tuple[float, float]:
    """Run a service that holds ``ceiling`` jobs of 100-300 ticks: (refused / sent, busy).

    ``busy`` is the service's mean share of its ceiling in use, after the first 1,000 ticks.

    Each tick, the jobs due end, then the client sends while the limit allows: the steady
    state of a batch at the account's limit. Without the back-off the ceiling is forgotten
    at once, which is plain AIMD.
    """
    durations = random.Random(7)
    aimd = Aimd(16)
    running: list[int] = []  # the tick each job ends
    sent = refused = accepted = tick = 0
    in_use: list[int] = []
    while accepted < jobs:
        tick += 1
        running = [end for end in running if end > tick]
        if tick > 1000:
            in_use.append(len(running))
        while len(running) < int(aimd.limit):
            sent += 1
            if len(running) < ceiling:
                accepted += 1
                running.append(tick + durations.randint(100, 300))
                aimd.grow(400.0, 8)
            else:
                refused += 1
                aimd.shrink(min(aimd.limit, len(running)), 0.95, 1.0)
                if not probe_back_off:
                    aimd.ceiling, aimd.probes = 0.0, 0
                break
    return refused / sent, sum(in_use) / len(in_use) / ceiling


def test_probing_a_known_ceiling_costs_far_fewer_refusals() -> None:
    """At a fixed ceiling of 200 plain AIMD is refused ~1 in 90 submits; with the back-off
    about 1 in 2,500, and the service is kept as busy within a point (97.0% and 96.8%)."""
    plain, plain_busy = _run_at_a_ceiling(probe_back_off=False)
    backed_off, busy = _run_at_a_ceiling(probe_back_off=True)
    assert plain > 0.01
    assert backed_off < plain / 10
    assert backed_off < 0.001
    assert busy >= plain_busy - 0.01

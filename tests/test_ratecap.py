"""RateCap: no window of one period ever sees more than the cap (pure, no clock needed)."""

from __future__ import annotations

import math
import random

import pytest

from ttapi_async._ratecap import RateCap


def most_in_any_window(times: list[float], period: float) -> int:
    """Return the most events that any half-open window ``[t, t + period)`` holds."""
    ordered = sorted(times)
    best = 0
    j = 0
    for i, start in enumerate(ordered):
        while j < len(ordered) and ordered[j] < start + period:
            j += 1
        best = max(best, j - i)
    return best


def run(cap: RateCap, offers: list[float]) -> list[float]:
    """Offer one event at each time (ascending); return the times the cap let through."""
    return [now for now in offers if cap.take(now)]


def test_a_full_start_is_one_cap_not_two() -> None:
    """Events offered continuously from time 0 get at most the cap through in any second."""
    cap = RateCap(300)
    offers = [i * 0.001 for i in range(5000)]  # 1,000 offers a second for 5 s
    taken = run(cap, offers)
    assert most_in_any_window(taken, 1.0) == 300
    assert len(taken) == 5 * 300


def test_random_offers_never_exceed_the_cap() -> None:
    """Bursty random offers never put more than the cap in a window, at any offset."""
    rng = random.Random(7)
    now = 0.0
    offers = []
    for _ in range(20_000):
        now += rng.expovariate(400.0) if rng.random() < 0.9 else rng.uniform(0.0, 2.0)
        offers.append(now)
    taken = run(RateCap(50), offers)
    assert most_in_any_window(taken, 1.0) <= 50
    assert len(taken) > 1000


def test_wait_says_when_the_next_event_is_allowed() -> None:
    """wait() is 0 when take() would succeed and otherwise the time until it would."""
    cap = RateCap(2)
    assert cap.wait(0.0) == 0.0
    assert cap.take(0.0) and cap.take(0.25)
    assert cap.wait(0.5) == pytest.approx(0.5)
    assert not cap.take(0.5)
    assert cap.wait(1.0) == 0.0 and cap.take(1.0)
    assert cap.wait(1.0) == pytest.approx(0.25)


def test_a_fractional_cap_is_one_event_per_interval() -> None:
    """A cap under one per second allows one event every 1 / cap seconds."""
    cap = RateCap(0.5)
    taken = run(cap, [i * 0.1 for i in range(100)])
    assert [round(t, 6) for t in taken] == [0.0, 2.0, 4.0, 6.0, 8.0]


def test_a_non_integer_cap_rounds_down() -> None:
    """A cap of 2.5 a second lets 2 through per second: a window holds whole events."""
    taken = run(RateCap(2.5), [i * 0.01 for i in range(1000)])
    assert most_in_any_window(taken, 1.0) == 2


def test_history_carries_over_to_a_resized_cap() -> None:
    """A cap built from another's history counts the events already let through."""
    old = RateCap(10)
    run(old, [i * 0.01 for i in range(10)])
    new = RateCap(5, old.history())
    assert not new.take(0.5)
    assert new.wait(0.5) == pytest.approx(0.55)


@pytest.mark.parametrize("bad", [0.0, -1.0, math.inf, math.nan])
def test_rejects_a_cap_that_is_not_a_positive_number(bad: float) -> None:
    """Zero, negative, infinite and NaN caps raise ValueError."""
    with pytest.raises(ValueError, match="max_per_second"):
        RateCap(bad)

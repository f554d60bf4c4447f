"""The emulator's settings types refuse values that could not mean anything."""

from __future__ import annotations

import pytest

from ttapi_async.testing import Duration, FaultRule


def test_a_negative_duration_is_refused() -> None:
    """Duration.fixed(-1) raises ValueError."""
    with pytest.raises(ValueError, match=">= 0"):
        Duration.fixed(-1)


def test_a_uniform_duration_needs_low_below_high() -> None:
    """Duration.uniform(9, 3) raises ValueError."""
    with pytest.raises(ValueError, match="low <= high"):
        Duration.uniform(9, 3)


def test_a_lognormal_duration_needs_a_positive_median() -> None:
    """Duration.lognormal(0, 0.3) raises ValueError."""
    with pytest.raises(ValueError, match="positive median"):
        Duration.lognormal(0, 0.3)


@pytest.mark.parametrize("text", ["status", "a:b:c:d:e"])
def test_a_fault_with_too_few_or_many_parts_is_refused(text: str) -> None:
    """A fault spec that is not KIND:PATH[:PROB[:ARG]] raises ValueError."""
    with pytest.raises(ValueError, match="cannot parse fault"):
        FaultRule.parse(text)


def test_a_fault_probability_past_one_is_refused() -> None:
    """A fault rule with probability 1.5 raises ValueError."""
    with pytest.raises(ValueError, match=r"within \[0, 1\]"):
        FaultRule("status", probability=1.5)

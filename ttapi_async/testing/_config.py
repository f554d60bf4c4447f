"""Configuration objects of the fake: job durations and fault rules.

All durations are *service seconds*: what the real service would take. The
fake multiplies them by its ``time_scale`` to get seconds of its clock.
"""

from __future__ import annotations

import fnmatch
import math
import random
import time
from collections.abc import Iterable
from typing import Literal

import attrs

from ._clock import Clock

__all__ = [
    "Duration",
    "FaultKind",
    "FaultRule",
    "default_clock",
    "positive",
    "share",
    "to_duration",
    "to_optional_duration",
    "to_rules",
    "to_strings",
]

DurationKind = Literal["fixed", "uniform", "lognormal"]
FaultKind = Literal["status", "drop_before", "drop_after", "delay", "malformed", "truncate"]

_FAULT_KINDS = ("status", "drop_before", "drop_after", "delay", "malformed", "truncate")


def _non_negative(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0 or math.isnan(value):
        raise ValueError(f"{attribute.name} must be >= 0, got {value!r}")


@attrs.frozen
class Duration:
    """Draw a duration in service seconds: fixed, uniform or lognormal.

    Build one with ``Duration.fixed(30)``, ``Duration.uniform(20, 90)`` or
    ``Duration.lognormal(median=45, sigma=0.4)``.
    """

    kind: DurationKind = attrs.field(
        validator=attrs.validators.in_(("fixed", "uniform", "lognormal"))
    )
    a: float = attrs.field(validator=_non_negative)
    b: float = attrs.field(default=0.0, validator=_non_negative)

    @classmethod
    def fixed(cls, seconds: float) -> Duration:
        """Return a duration that is always ``seconds``."""
        return cls("fixed", seconds)

    @classmethod
    def uniform(cls, low: float, high: float) -> Duration:
        """Return a duration drawn uniformly from ``[low, high]``."""
        if high < low:
            raise ValueError("uniform duration needs low <= high")
        return cls("uniform", low, high)

    @classmethod
    def lognormal(cls, median: float, sigma: float) -> Duration:
        """Return a duration whose logarithm is normal: ``median`` and spread ``sigma``."""
        if median <= 0:
            raise ValueError("lognormal duration needs a positive median")
        return cls("lognormal", median, sigma)

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse ``"30"``, ``"fixed:30"``, ``"uniform:20,90"`` or ``"lognormal:45,0.4"``."""
        kind, _, args = text.partition(":")
        if not args:
            return cls.fixed(float(kind))
        values = [float(v) for v in args.split(",")]
        if kind == "fixed" and len(values) == 1:
            return cls.fixed(values[0])
        if kind == "uniform" and len(values) == 2:
            return cls.uniform(values[0], values[1])
        if kind == "lognormal" and len(values) == 2:
            return cls.lognormal(values[0], values[1])
        raise ValueError(f"cannot parse duration {text!r}")

    def sample(self, rng: random.Random) -> float:
        """Draw one duration with ``rng``."""
        if self.kind == "fixed":
            return self.a
        if self.kind == "uniform":
            return rng.uniform(self.a, self.b)
        return rng.lognormvariate(math.log(self.a), self.b)


def _probability(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be within [0, 1], got {value!r}")


def _statuses(value: int | tuple[int, ...] | list[int]) -> tuple[int, ...]:
    return (value,) if isinstance(value, int) else tuple(value)


@attrs.frozen
class FaultRule:
    """Inject one kind of fault into requests whose path matches.

    ``kind`` is one of:

    - ``"status"``: answer an error status instead (one of ``status``, drawn
      at random), in the endpoint's error shape; nothing is processed.
    - ``"drop_before"``: close the connection before reading the request; nothing is processed.
    - ``"drop_after"``: process the request (a job really is created), then close
      the connection without answering: the "possibly submitted" case.
    - ``"delay"``: wait ``delay`` service seconds before answering.
    - ``"malformed"``: process the request, then answer 200 with a body that is not JSON.
    - ``"truncate"``: process the request, then send half the body and close.

    ``path`` is an ``fnmatch`` pattern (``"/openai/*"``); ``method`` limits the
    rule to one method. ``probability`` is drawn per matching request from the
    fake's seeded generator; ``times`` spends the rule after that many hits
    (``None``: never spent).
    """

    kind: FaultKind = attrs.field(validator=attrs.validators.in_(_FAULT_KINDS))
    path: str = "*"
    probability: float = attrs.field(default=1.0, validator=_probability)
    status: tuple[int, ...] = attrs.field(default=(500, 502, 503, 504), converter=_statuses)
    delay: float = attrs.field(default=0.0, validator=_non_negative)
    method: str | None = None
    times: int | None = None

    def matches(self, method: str, path: str) -> bool:
        """Tell whether this rule applies to a request."""
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path == path or fnmatch.fnmatchcase(path, self.path)

    @classmethod
    def parse(cls, text: str) -> FaultRule:
        """Parse ``KIND:PATH[:PROBABILITY[:ARG]]`` (ARG: statuses ``500,503`` or a delay).

        Examples: ``status:/v1/*:0.1:500,503``, ``drop_after:/openai/gpt/generations:0.5``,
        ``delay:*:1:2.5``.
        """
        parts = text.split(":")
        if len(parts) < 2 or len(parts) > 4:
            raise ValueError(f"cannot parse fault {text!r}: want KIND:PATH[:PROB[:ARG]]")
        kind, path = parts[0], parts[1]
        if kind not in _FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}")
        probability = float(parts[2]) if len(parts) > 2 and parts[2] else 1.0
        arg = parts[3] if len(parts) > 3 else ""
        if kind == "status" and arg:
            return cls("status", path, probability, tuple(int(s) for s in arg.split(",")))
        if kind == "delay":
            return cls("delay", path, probability, delay=float(arg or 1.0))
        return cls(kind, path, probability)  # type: ignore[arg-type]


# --- converters and validators of FakeTTAPI settings ------------------------------


def default_clock(clock: Clock | None) -> Clock:
    """Return ``clock``, or ``time.monotonic`` when none is given."""
    return time.monotonic if clock is None else clock


def to_duration(value: Duration | float) -> Duration:
    """Return a Duration; a bare number is a fixed one, any other type a TypeError."""
    # A bare number is the obvious way to say "always this long".
    if isinstance(value, Duration):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return Duration.fixed(float(value))
    raise TypeError(f"expected a Duration or a number of seconds, got {type(value).__name__}")


def to_optional_duration(value: Duration | float | None) -> Duration | None:
    """Return ``to_duration(value)``, or None for None."""
    return None if value is None else to_duration(value)


def to_strings(values: Iterable[str]) -> tuple[str, ...]:
    """Return a tuple of strings; one bare str is one item."""
    # A bare str would become a tuple of characters: one key is still one key.
    return (values,) if isinstance(values, str) else tuple(values)


def to_rules(rules: Iterable[FaultRule]) -> tuple[FaultRule, ...]:
    """Return the rules as a tuple."""
    return tuple(rules)


def positive(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    """Refuse a value that is not > 0."""
    if not value > 0:
        raise ValueError(f"{attribute.name} must be > 0, got {value!r}")


def share(_: object, attribute: attrs.Attribute[float], value: float) -> None:
    """Refuse a value outside [0, 1]."""
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name} must be within [0, 1], got {value!r}")

"""Time for the fake: a clock callable, and a manual clock tests can drive."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Clock", "ManualClock"]

#: Returns "now" in seconds; only differences matter (time.monotonic is the default).
Clock = Callable[[], float]


class ManualClock:
    """Hold a time that only moves when ``advance`` is called.

    Job progress, URL expiry, rate-limit refill and hook schedules all read the
    fake's clock, so a test drives a 60-second job with ``clock.advance(60)``
    instead of sleeping.
    """

    __slots__ = ("_listeners", "_now")

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._listeners: list[Callable[[], None]] = []

    def __call__(self) -> float:
        return self._now

    @property
    def now(self) -> float:
        """Return the current time in seconds."""
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` and return the new time."""
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += seconds
        # The hook scheduler sleeps in real time; it must be told that manual
        # time moved, or a callback due "now" would wait for its next wake-up.
        for listener in tuple(self._listeners):
            listener()
        return self._now

    def subscribe(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every ``advance``."""
        self._listeners.append(listener)

    def unsubscribe(self, listener: Callable[[], None]) -> None:
        """Stop calling ``listener``; unknown listeners are ignored."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def __repr__(self) -> str:
        return f"ManualClock({self._now!r})"

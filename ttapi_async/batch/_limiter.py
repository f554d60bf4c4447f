"""Adaptive concurrency: an AIMD limit below a fixed cap, driven by the service's refusals.

The service publishes neither its rate limit (429) nor how many jobs it lets one key have
in progress (499). The limiter finds them: it starts small and grows quickly while every
request is accepted (slow start), then by one slot per ``grow_every`` acceptances; a
refusal multiplies the limit by ``decrease`` (once per round: refusals of requests sent
before the last decrease say nothing new) and, when the answer carried ``Retry-After``,
holds every new request until then. Probes above a level refused before back off
(``ttapi_async/_aimd.py``, the arithmetic every limiter shares). For job families a slot is
held from submission until the job ends, because the 499 limit counts jobs in progress,
not requests.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import math
import time
from collections.abc import Awaitable, Callable

from .._aimd import Aimd

__all__ = ["AdaptiveLimiter", "Slot"]

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Slot:
    """One acquired slot; remembers the round it was taken in."""

    __slots__ = ("_accepted", "_released", "epoch")

    def __init__(self, epoch: int, *, accepted: bool = False) -> None:
        self.epoch = epoch
        self._accepted = accepted
        self._released = False


class AdaptiveLimiter:
    """Hand out slots up to an adaptive limit that never exceeds ``cap``."""

    def __init__(
        self,
        cap: int,
        *,
        initial: int | None = None,
        minimum: int = 1,
        decrease: float = 0.95,
        grow_every: int = 8,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if cap < 1:
            raise ValueError(f"the concurrency cap must be >= 1, got {cap}")
        if not 0.0 < decrease < 1.0:
            raise ValueError(f"decrease must be within (0, 1), got {decrease}")
        self.cap = cap
        self.minimum = max(1, min(minimum, cap))
        self._aimd = Aimd(min(cap, initial if initial is not None else min(cap, 16)))
        self.decrease = decrease
        self.grow_every = max(1, grow_every)
        self.in_flight = 0
        #: slots whose request the service accepted (jobs it is running, for job families)
        self.accepted_in_flight = 0
        self.paused_until = 0.0
        self.refusals = 0
        self.acceptances = 0
        self._epoch = 0
        self._clock = clock
        self._sleep = sleep
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def __repr__(self) -> str:
        return (
            f"AdaptiveLimiter(limit={self.limit:.1f}, cap={self.cap}, "
            f"in_flight={self.in_flight}, slow_start={self.slow_start})"
        )

    @property
    def limit(self) -> float:
        """Return the adaptive limit (a fraction grows into a whole slot)."""
        return self._aimd.limit

    @property
    def slow_start(self) -> bool:
        """Return True until the first refusal."""
        return self._aimd.slow

    @property
    def current(self) -> int:
        """Return the whole number of slots the limit allows now."""
        return max(self.minimum, min(self.cap, math.floor(self.limit)))

    def pause_left(self) -> float:
        """Return how long new requests must still wait for a Retry-After, in seconds."""
        return max(0.0, self.paused_until - self._clock())

    async def acquire(self) -> Slot:
        """Wait for a free slot (and for any Retry-After pause to end), then take it."""
        while True:
            left = self.pause_left()
            if left > 0:
                await self._sleep(left)
                continue
            if self.in_flight < self.current and not self._waiters:
                break
            future = asyncio.get_running_loop().create_future()
            self._waiters.append(future)
            try:
                await future
            except asyncio.CancelledError:
                if future.done() and not future.cancelled():
                    self._wake_after(future)  # pass the wake-up we were given on
                raise
            finally:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(future)
            if self.in_flight < self.current and self.pause_left() <= 0:
                break
        self.in_flight += 1
        self._wake()
        return Slot(self._epoch)

    def hold(self) -> Slot:
        """Take a slot without waiting: a job already running (resumed) occupies one."""
        self.in_flight += 1
        self.accepted_in_flight += 1
        return Slot(self._epoch, accepted=True)

    def release(self, slot: Slot) -> None:
        """Give a slot back (its request answered, or its job ended)."""
        if slot._released:
            return
        slot._released = True
        self.in_flight -= 1
        if slot._accepted:
            self.accepted_in_flight -= 1
        self._wake()

    def accepted(self, slot: Slot) -> None:
        """Record that the service accepted a request: grow the limit."""
        self.acceptances += 1
        if not slot._accepted and not slot._released:
            slot._accepted = True
            self.accepted_in_flight += 1
        if self._aimd.grow(float(self.cap), self.grow_every):
            self._wake()

    def refused(
        self, slot: Slot, retry_after: float | None = None, *, queue_full: bool = False
    ) -> None:
        """Record a 429 or 499: shrink the limit (once per round), honour ``Retry-After``.

        ``queue_full`` (a 499) says the service holds as many jobs as it allows: the limit
        then shrinks from the accepted requests in flight, which is that ceiling. A 429
        (rate) shrinks the limit itself.
        """
        self.refusals += 1
        if retry_after is not None and retry_after > 0:
            self.paused_until = max(self.paused_until, self._clock() + retry_after)
        if slot.epoch != self._epoch:
            return  # sent before the last decrease: already accounted for
        self._epoch += 1
        # After a 499, shrink from what the service really holds (the requests it
        # accepted that have not ended): far above the ceiling, one refusal brings the
        # limit down to it at once instead of 5% per round.
        base = self.limit
        if queue_full:
            base = min(base, float(max(self.accepted_in_flight, 1)))
        self._aimd.shrink(base, self.decrease, float(self.minimum))

    def _wake(self) -> None:
        free = self.current - self.in_flight
        for future in self._waiters:
            if free <= 0:
                break
            if not future.done():
                future.set_result(None)
                free -= 1

    def _wake_after(self, gone: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(gone)
        self._wake()

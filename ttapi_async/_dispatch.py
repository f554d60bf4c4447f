"""The watcher's scheduler: one task that sleeps until the next due poll, and its workers.

No task per job: one scheduler pops what is due from a ``DueHeap`` (within ``coalesce``),
and worker tasks, at most ``max_in_flight``, poll it, capped by a ``RateCap``. See
docs/watcher.md for why it coalesces and how it sleeps under each kind of clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic

from ._dueheap import D, DueHeap
from ._ratecap import RateCap

__all__ = ["Dispatcher", "Sleep"]

Sleep = Callable[[float], Awaitable[None]]


class Dispatcher(Generic[D]):
    """Call ``poll(item)`` for each item when it falls due, within the caps.

    ``busy()`` tells whether anything is still watched: the scheduler task ends when it
    is not, and starts again on the next ``start()``.
    """

    def __init__(
        self,
        poll: Callable[[D], Awaitable[None]],
        busy: Callable[[], bool],
        *,
        max_in_flight: int,
        max_per_second: float | None,
        clock: Callable[[], float] | None,
        sleep: Sleep | None,
        coalesce: float,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        self._poll = poll
        self._busy = busy
        self.max_in_flight = max_in_flight
        self.cap = None if max_per_second is None else RateCap(max_per_second)
        self.clock: Callable[[], float] = clock or time.monotonic
        self._sleep = sleep
        self._manual = clock is not None and sleep is None and hasattr(clock, "subscribe")
        self.coalesce = coalesce
        self.heap: DueHeap[D] = DueHeap()
        self._ready: deque[D] = deque()
        self._task: asyncio.Task[None] | None = None
        self._workers: set[asyncio.Task[None]] = set()
        self._active = 0
        self._topping_up = False
        self._quiet_waiters: list[asyncio.Future[None]] = []
        self._waker: asyncio.Future[None] | None = None
        self._sleep_until = -math.inf
        self.paused_until = -math.inf
        self._closed = False
        self._subscribed = False

    def set_clock(self, clock: Callable[[], float] | None, sleep: Sleep | None) -> None:
        """Change the clock or the sleep (only while the scheduler is not subscribed)."""
        if clock is not None:
            self.clock = clock
        if sleep is not None:
            self._sleep = sleep
        self._manual = self._sleep is None and hasattr(self.clock, "subscribe")

    @property
    def subscribed(self) -> bool:
        """Tell whether the scheduler listens to a manual clock's ``advance``."""
        return self._subscribed

    def set_rate(self, per_second: float | None) -> None:
        """Change the per-second cap; the new one remembers the recent fetches."""
        old = self.cap
        # Remembering them means changing the cap never opens a burst.
        self.cap = (
            None if per_second is None else RateCap(per_second, old.history() if old else None)
        )

    def push(self, item: D, due: float) -> None:
        """Schedule ``item`` at ``due`` (earlier times replace later ones)."""
        due = self.heap.push(item, due)
        if due < self._sleep_until:
            self.wake()

    def wake(self) -> None:
        """Make the scheduler look at the clock now (the clock moved, or work arrived)."""
        waker = self._waker
        if waker is not None and not waker.done():
            waker.set_result(None)

    def start(self) -> None:
        """Run the scheduler task if it is not running."""
        if self._task is None or self._task.done():
            loop = asyncio.get_running_loop()
            if self._manual and not self._subscribed:
                self.clock.subscribe(self.wake)  # type: ignore[attr-defined]
                self._subscribed = True
            self._task = loop.create_task(self._run(), name="ttapi_async JobWatcher")

    async def _run(self) -> None:
        try:
            while self._busy() and not self._closed:
                delay = self._dispatch(self.clock())
                if not self._busy():
                    break
                await self._sleep_until_due(delay)
        finally:
            self._task = None
            self._check_quiet()

    def _dispatch(self, now: float) -> float | None:
        """Move the items due by ``now`` (+ coalesce) to the ready queue; return the wait."""
        if now < self.paused_until:
            self._spawn_workers()
            return self.paused_until - now
        heap = self.heap
        ready = self._ready
        limit = now + self.coalesce
        # In the clock's seconds: under a manual clock, time must move for the cap to allow more.
        cap = self.cap
        wait: float | None = None
        while True:
            due = heap.first()
            if due is None:
                break
            if due > limit:
                wait = due - now
                break
            if cap is not None and not cap.take(now):
                wait = cap.wait(now)
                break
            ready.append(heap.pop())
        self._spawn_workers()
        return wait

    def _spawn_workers(self) -> None:
        # One worker now; more join on the next loop iteration, and only if work is still
        # waiting then: a fetch that answers without suspending (a cache, a simulation)
        # lets one worker drain the queue, and a task per burst would be wasted.
        if not self._ready:
            return
        if self._active == 0:
            self._start_worker()
        if self._ready and self._active < self.max_in_flight and not self._topping_up:
            self._topping_up = True
            asyncio.get_running_loop().call_soon(self._top_up)

    def _top_up(self) -> None:
        self._topping_up = False
        if self._closed:
            return
        for _ in range(min(len(self._ready), self.max_in_flight) - self._active):
            self._start_worker()

    def _start_worker(self) -> None:
        self._active += 1
        task = asyncio.get_running_loop().create_task(self._work())
        self._workers.add(task)
        task.add_done_callback(self._workers.discard)

    async def _sleep_until_due(self, delay: float | None) -> None:
        loop = asyncio.get_running_loop()
        waker: asyncio.Future[None] = loop.create_future()
        self._waker = waker
        now = self.clock()
        self._sleep_until = math.inf if delay is None else now + delay
        self._check_quiet()
        try:
            if delay is None or self._manual:
                await waker
            elif self._sleep is not None:
                sleeper = loop.create_task(self._sleep_coro(delay))
                try:
                    await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    if not sleeper.done():
                        sleeper.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await sleeper
            else:
                handle = loop.call_later(delay, self.wake)
                try:
                    await waker
                finally:
                    handle.cancel()
        finally:
            self._waker = None
            self._sleep_until = -math.inf

    async def _sleep_coro(self, delay: float) -> None:
        assert self._sleep is not None
        await self._sleep(delay)

    async def _work(self) -> None:
        ready = self._ready
        try:
            while ready and not self._closed:
                await self._poll(ready.popleft())
        finally:
            # Counted down before the task ends, so a dispatch right after starts a new one.
            self._active -= 1
            self._check_quiet()

    def next_due(self) -> float | None:
        """Return the clock time of the earliest poll scheduled, or None."""
        return self.heap.first()

    def quiet(self) -> bool:
        """Tell whether nothing is being polled and the scheduler waits for a later time."""
        if self._active or self._ready:
            return False
        task = self._task
        if task is None or task.done():
            return True
        waker = self._waker
        return waker is not None and not waker.done()

    async def idle(self) -> None:
        """Wait until ``quiet()``."""
        if self.quiet():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._quiet_waiters.append(waiter)
        await waiter

    def _check_quiet(self) -> None:
        if self._quiet_waiters and self.quiet():
            self.release_waiters()

    def release_waiters(self) -> None:
        """Wake every ``idle()`` waiter (the watcher closed)."""
        waiters, self._quiet_waiters = self._quiet_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    async def stop(self) -> None:
        """Cancel the scheduler and the workers and wait for them; forget every item."""
        self._closed = True
        tasks: list[asyncio.Task[Any]] = list(self._workers)
        if self._task is not None:
            tasks.append(self._task)
            self._task = None
        for task in tasks:
            task.cancel()
        await settle_tasks(tasks)

    def forget(self) -> None:
        """Drop every scheduled item and stop listening to the clock."""
        self.heap.clear()
        self._ready.clear()
        if self._subscribed:
            self.clock.unsubscribe(self.wake)  # type: ignore[attr-defined]
            self._subscribed = False


async def settle_tasks(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Wait for every task that is not done, ignoring how each ends."""
    pending = [t for t in tasks if not t.done()]
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)

"""Job callbacks: one heap and one task deliver every ``hookUrl`` POST.

A task per job would cost a coroutine frame and a timer per job in flight;
the heap costs one tuple per pending callback, and only jobs that asked for a
callback enter it. Delivery is retried on a non-2xx answer or a connection
error with a doubling backoff (service seconds), a configured number of times.

The fake only ever calls loopback addresses: a hook aimed anywhere else is
recorded as refused and never sent, so a test can never make the fake post
to a real host.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import ipaddress
import itertools
from collections.abc import Callable
from urllib.parse import urlsplit

import aiohttp
import attrs

from ._clock import Clock

__all__ = ["HookDelivery", "HookScheduler", "is_loopback_url"]

#: what the scheduler needs from the fake: the URL and body for a job's callback,
#: or None when the item is stale (the job was reset, or settled again)
BodyProvider = Callable[[str, float], "tuple[str, bytes] | None"]

_BATCH = 32


@attrs.frozen
class HookDelivery:
    """Record one attempt to deliver a job's callback."""

    job_id: str
    url: str
    attempt: int
    #: "delivered", "retrying", "gave_up" or "refused"
    outcome: str
    status: int | None = None
    error: str | None = None


def is_loopback_url(url: str) -> bool:
    """Tell whether ``url`` points at this machine (127.0.0.0/8, ::1 or localhost)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HookScheduler:
    """Deliver callbacks when they fall due on the fake's clock."""

    def __init__(
        self,
        clock: Clock,
        body: BodyProvider,
        *,
        manual_clock: bool,
        retries: int,
        backoff: float,
        time_scale: float,
        timeout: float,
        record: Callable[[HookDelivery], None],
    ) -> None:
        self._clock = clock
        self._body = body
        self._manual = manual_clock
        self.retries = retries
        self.backoff = backoff
        self.time_scale = time_scale
        self.timeout = timeout
        self._record = record
        # (due, seq, job_id, end stamp, attempt); seq keeps the order stable.
        self._heap: list[tuple[float, int, str, float, int]] = []
        self._seq = itertools.count()
        self._wake = asyncio.Event()
        self._cycle = 0
        self._quiet = asyncio.Condition()
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._heap)

    def schedule(self, due: float, job_id: str, end: float, attempt: int = 0) -> None:
        """Deliver the callback of ``job_id`` (which ends at ``end``) at clock time ``due``."""
        heapq.heappush(self._heap, (due, next(self._seq), job_id, end, attempt))
        self.wake()

    def wake(self) -> None:
        """Make the loop look at the heap now (the clock may have moved)."""
        self._wake.set()

    def clear(self) -> None:
        """Drop every pending callback."""
        self._heap.clear()

    def start(self) -> None:
        """Start the delivery loop in the running event loop."""
        if self._task is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                # Callbacks go to loopback only; no proxy from the environment applies.
                trust_env=False,
            )
            self._task = asyncio.get_running_loop().create_task(self._run(), name="FakeTTAPI hooks")

    async def close(self) -> None:
        """Stop the loop and close its session."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until every callback due now has been delivered, retried or given up."""
        if self._task is None:
            return
        await asyncio.wait_for(self._wait_quiet(), timeout)

    async def _wait_quiet(self) -> None:
        async with self._quiet:
            target = self._cycle + 1
            self.wake()
            await self._quiet.wait_for(lambda: self._cycle >= target)

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            now = self._clock()
            due: list[tuple[float, int, str, float, int]] = []
            while self._heap and self._heap[0][0] <= now and len(due) < _BATCH:
                due.append(heapq.heappop(self._heap))
            if due:
                await asyncio.gather(*(self._deliver(item, now) for item in due))
                continue
            async with self._quiet:
                self._cycle += 1
                self._quiet.notify_all()
            timeout: float | None = None
            if self._heap and not self._manual:
                # The default clock ticks in real seconds; cap the sleep so a
                # foreign clock that runs faster is still looked at often.
                timeout = min(max(self._heap[0][0] - now, 0.0), 1.0)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _deliver(self, item: tuple[float, int, str, float, int], now: float) -> None:
        try:
            await self._attempt(item, now)
        except Exception as exc:  # the loop must outlive any one bad callback
            _, _, job_id, _, attempt = item
            self._record(HookDelivery(job_id, "", attempt, "gave_up", error=repr(exc)))

    async def _attempt(self, item: tuple[float, int, str, float, int], now: float) -> None:
        _, _, job_id, end, attempt = item
        found = self._body(job_id, end)
        if found is None:
            return
        url, body = found
        if not is_loopback_url(url):
            self._record(HookDelivery(job_id, url, attempt, "refused", error="not a loopback URL"))
            return
        status: int | None = None
        error: str | None = None
        assert self._session is not None
        try:
            async with self._session.post(
                url, data=body, headers={"Content-Type": "application/json"}
            ) as resp:
                status = resp.status
                await resp.read()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        if status is not None and 200 <= status < 300:
            self._record(HookDelivery(job_id, url, attempt, "delivered", status))
            return
        if attempt < self.retries:
            self._record(HookDelivery(job_id, url, attempt, "retrying", status, error))
            delay = self.backoff * (2**attempt) * self.time_scale
            self.schedule(now + delay, job_id, end, attempt + 1)
        else:
            self._record(HookDelivery(job_id, url, attempt, "gave_up", status, error))

"""JobWatcher: one scheduler polls every pending job; no task per job.

Pending jobs sit in one heap of ``(due, job_id, job)``. One scheduler task sleeps until
the earliest due time, moves every job due within ``coalesce`` seconds (5 ms) to a ready
queue, and starts worker tasks, at most ``max_in_flight``, that fetch them and exit when
the queue is empty. Coalescing is what keeps the scheduler from spinning under uvloop,
whose timers resolve to 1 ms (a timer fires up to 1 ms early, finds nothing due, and
sleeps for 0 ms again); 5 rather than 1 ms also shares each wake-up among more polls,
at the price of a poll coming up to 5 ms early. Dispatches are
capped at ``max_per_second``. Each job's next poll comes from the schedule (see
``_schedule``): a tenacity wait strategy that learns from recent durations.

A job rescheduled early (a webhook asked for a fetch now) leaves its old heap entry in
place; an entry is live only while ``entry[0] is job._due`` (the very float object,
so every due time is computed freshly, never reused).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any

from ._client import NOT_GIVEN, NotGiven
from ._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    AuthenticationError,
    InvalidRequestError,
    JobFailedError,
    JobTimeoutError,
    PermissionDeniedError,
)
from ._job import AGAIN, HINTED, IN_FLIGHT, LEARNABLE, LOGGED_UNKNOWN, Job, _Cancelled, _Failure
from ._models import PENDING_STATUSES, JobResult, JobStatus
from ._ratecap import RateCap
from ._retry import retry_after_of
from ._schedule import DurationStats, LearnedWait, PollSchedule, poll_state

__all__ = ["FetchFunction", "JobWatcher"]

logger = logging.getLogger("ttapi_async")

#: Fetch one job's status by id (one poll).
FetchFunction = Callable[[str], Awaitable[JobStatus]]
ResultFactory = Callable[[JobStatus], JobResult]
Sleep = Callable[[float], Awaitable[None]]

# Statuses that mean "try the poll again later", not "the job is gone".
_TRANSIENT_STATUSES = frozenset({408, 409, 425, 429, 499})


class _Kind:
    """What jobs of one kind share: how to fetch them, and what their schedule learned."""

    __slots__ = ("fetch", "key", "make_result", "resume_hint", "wait")

    def __init__(
        self,
        key: str,
        fetch: FetchFunction,
        wait: LearnedWait,
        make_result: ResultFactory,
        resume_hint: str,
    ) -> None:
        self.key = key
        self.fetch = fetch
        self.wait = wait
        self.make_result = make_result
        self.resume_hint = resume_hint


class JobWatcher:
    """Poll many asynchronous jobs with one scheduler and resolve one ``Job`` each.

    Every client has one (``client.watcher``); it is also usable on its own with any
    ``fetch`` coroutine function::

        async with JobWatcher(fetch=my_fetch) as watcher:
            result = await watcher.watch("job-id")

    ``clock`` (seconds, default ``time.monotonic``) and ``sleep`` are injectable. When
    ``sleep`` is given the scheduler waits with it; when ``clock`` has a ``subscribe``
    method (``ttapi_async.testing.ManualClock``) the scheduler wakes whenever the clock
    is advanced and never waits for real time; otherwise it uses the loop's timers,
    assuming the clock ticks in real seconds. ``wake()`` makes it look at the clock now.

    ``max_in_flight`` caps concurrent fetches, ``max_per_second`` the fetches started per
    second of the watcher's clock (None: no cap; under a manual clock the clock must
    move for the cap to refill). A 429 or 499 with Retry-After pauses every poll.
    An ``AuthenticationError`` or ``PermissionDeniedError`` on any poll fails every
    pending job with it; other failures of a poll only re-schedule it.
    """

    def __init__(
        self,
        fetch: FetchFunction | None = None,
        *,
        schedule: PollSchedule | None = None,
        max_in_flight: int = 64,
        max_per_second: float | None = 200.0,
        clock: Callable[[], float] | None = None,
        sleep: Sleep | None = None,
        coalesce: float = 0.005,
        rng: random.Random | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
        self._fetch = fetch
        self.schedule = schedule or PollSchedule()
        self.max_in_flight = max_in_flight
        self._cap = None if max_per_second is None else RateCap(max_per_second)
        self._clock: Callable[[], float] = clock or time.monotonic
        self._sleep = sleep
        self._manual = clock is not None and sleep is None and hasattr(clock, "subscribe")
        self.coalesce = coalesce
        self._rng = rng or random.Random()
        self._state = poll_state()
        self._jobs: dict[str, Job] = {}
        self._heap: list[tuple[float, str, Job]] = []
        self._ready: deque[Job] = deque()
        self._kinds: dict[tuple[str, Any], _Kind] = {}
        self._waits: dict[str, LearnedWait] = {}
        self._task: asyncio.Task[None] | None = None
        self._workers: set[asyncio.Task[None]] = set()
        self._active = 0
        self._topping_up = False
        self._quiet_waiters: list[asyncio.Future[None]] = []
        self._callbacks: set[asyncio.Task[Any]] = set()
        self._waker: asyncio.Future[None] | None = None
        self._sleep_until = -math.inf
        self._paused_until = -math.inf
        self._closed = False
        self._subscribed = False
        self.receiver: Any = None  # a WebhookReceiver, once one is attached
        #: counters: fetches sent, fetches that failed transiently, jobs settled
        self.fetches = 0
        self.fetch_errors = 0
        self.settled = 0

    # --- configuration ---------------------------------------------------------------------

    def configure(
        self,
        *,
        schedule: PollSchedule | None = None,
        max_in_flight: int | None = None,
        max_per_second: float | NotGiven | None = NOT_GIVEN,
        clock: Callable[[], float] | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        """Change the schedule or the caps; jobs already pending follow the new ones.

        ``clock`` and ``sleep`` can only change while no job is pending.
        """
        if clock is not None or sleep is not None:
            if self._jobs or self._subscribed:
                raise RuntimeError("cannot change the clock of a watcher with pending jobs")
            if clock is not None:
                self._clock = clock
            if sleep is not None:
                self._sleep = sleep
            self._manual = self._sleep is None and hasattr(self._clock, "subscribe")
        if schedule is not None:
            self.schedule = schedule
            for wait in self._waits.values():
                wait.schedule = schedule
        if max_in_flight is not None:
            if max_in_flight < 1:
                raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
            self.max_in_flight = max_in_flight
        if not isinstance(max_per_second, NotGiven):
            self.max_per_second = max_per_second

    @property
    def max_per_second(self) -> float | None:
        """Return the cap on fetches started in any one second of the clock (None: none)."""
        return None if self._cap is None else self._cap.per_second

    @max_per_second.setter
    def max_per_second(self, value: float | None) -> None:
        old = self._cap
        # The new cap remembers the recent fetches: changing it must not open a burst.
        self._cap = None if value is None else RateCap(value, old.history() if old else None)

    def _wait_for(self, key: str) -> LearnedWait:
        wait = self._waits.get(key)
        if wait is None:
            stats = DurationStats(self.schedule.window, self._rng)
            wait = LearnedWait(self.schedule, stats, self._rng)
            self._waits[key] = wait
        return wait

    def record_duration(self, key: str, seconds: float) -> None:
        """Teach the schedule of ``key`` one job duration (to seed it from a past run)."""
        self._wait_for(key).stats.add(seconds)

    def durations(self, key: str) -> list[float]:
        """Return the recent durations learned for ``key`` (to save and seed a later run)."""
        wait = self._waits.get(key)
        return wait.stats.snapshot() if wait is not None else []

    def _kind(
        self,
        key: str,
        fetch: FetchFunction | None,
        make_result: ResultFactory | None,
        resume_hint: str | None,
    ) -> _Kind:
        fetch = fetch or self._fetch
        if fetch is None:
            raise TypeError("no fetch function: pass fetch= to JobWatcher() or to watch()")
        found = self._kinds.get((key, fetch))
        if found is None:
            found = _Kind(
                key,
                fetch,
                self._wait_for(key),
                make_result or JobResult.from_status,
                resume_hint or "JobWatcher.watch",
            )
            self._kinds[(key, fetch)] = found
        return found

    def hook_url(self) -> str:
        """Return the callback URL of the attached ``WebhookReceiver``.

        Raise ``InvalidRequestError`` when none is attached (``submit(..., hook=True)``).
        """
        receiver = self.receiver
        if receiver is None:
            raise InvalidRequestError(
                "hook=True needs a webhook receiver: create "
                "ttapi_async.webhooks.WebhookReceiver(client, public_url=...) first",
                param="hookUrl",
            )
        return str(receiver.hook_url)

    # --- jobs ------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._jobs)

    @property
    def closed(self) -> bool:
        return self._closed

    def get(self, job_id: str) -> Job | None:
        """Return the pending job with this id, or None."""
        return self._jobs.get(job_id)

    def pending_ids(self, key: str | None = None) -> list[str]:
        """Return the ids of the jobs still pending (of one kind if ``key`` is given:
        ``"gpt"`` also matches ``"gpt:gpt-image-2"``).

        Save them before closing: a later process resumes them with ``resume(id)``.
        """
        if key is None:
            return list(self._jobs)
        prefix = key + ":"
        return [
            job_id
            for job_id, job in self._jobs.items()
            if job._kind.key == key or job._kind.key.startswith(prefix)
        ]

    def watch(
        self,
        job_id: str,
        *,
        key: str = "default",
        fetch: FetchFunction | None = None,
        age: float | None = 0.0,
        deadline: float | None = None,
        make_result: ResultFactory | None = None,
        resume_hint: str | None = None,
    ) -> Job:
        """Start watching ``job_id`` and return its ``Job`` (the same one if already watched).

        ``age`` is how long ago the job was submitted (0: just now); None means unknown
        (a resumed job): it is fetched at once, and its duration teaches nothing.
        The schedule's deadline counts from the submission (from now when the age is
        unknown); ``deadline`` (seconds from now) overrides it.
        """
        if self._closed:
            raise RuntimeError("this JobWatcher is closed")
        found = self._jobs.get(job_id)
        if found is not None:
            return found
        kind = self._kind(key, fetch, make_result, resume_hint)
        now = self._clock()
        started = now if age is None else now - age
        if deadline is None:
            ends = (now if age is None else started) + self.schedule.deadline
        else:
            ends = now + deadline
        wait = kind.wait
        plan = wait.plan()
        job = Job(
            job_id,
            self,
            kind,
            started=started,
            deadline=ends,
            learnable=age is not None,
            plan=plan,
        )
        self._jobs[job_id] = job
        if age is not None:
            # A right-censored observation of its kind's durations, not seen pending yet.
            wait.pending.add(0.0)
        first = 0.0 if age is None else max(wait.first_delay(plan) - age, 0.0)
        self._push(job, now + first)
        self._ensure_running()
        return job

    def poke(self, job_id: str) -> bool:
        """Fetch ``job_id`` as soon as the caps allow (a callback said it changed).

        Return False when no such job is pending.
        """
        job = self._jobs.get(job_id)
        if job is None:
            return False
        job._flags |= HINTED
        if job._flags & IN_FLIGHT:
            job._flags |= AGAIN
        elif job._due is not None:
            self._push(job, self._clock() + 0.0)
        return True

    def deliver(self, job_id: str, status: JobStatus) -> bool:
        """Apply a status that did not come from a fetch (a trusted callback body).

        Return False when no such job is pending.
        """
        job = self._jobs.get(job_id)
        if job is None:
            return False
        job._flags |= HINTED
        self._on_status(job, status, self._clock())
        return True

    def _push(self, job: Job, due: float) -> None:
        if due >= job._deadline:
            due = job._deadline + 0.0  # a fresh float: heap entries are matched by identity
        job._due = due
        heapq.heappush(self._heap, (due, job.id, job))
        if due < self._sleep_until:
            self.wake()

    def _finish(self, job: Job, outcome: JobResult | _Failure | _Cancelled | BaseException) -> None:
        if job._outcome is not None:
            return
        if isinstance(outcome, BaseException):
            outcome = _Failure(outcome)
        self._jobs.pop(job.id, None)
        if job._flags & LEARNABLE:
            job._kind.wait.pending.remove(job._prev - job._started)
        self.settled += 1
        job._settle(outcome)
        if not self._jobs:
            self.wake()

    # --- the scheduler ---------------------------------------------------------------------

    def wake(self) -> None:
        """Make the scheduler look at the clock now (the clock moved, or work arrived)."""
        waker = self._waker
        if waker is not None and not waker.done():
            waker.set_result(None)

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            loop = asyncio.get_running_loop()
            if self._manual and not self._subscribed:
                self._clock.subscribe(self.wake)  # type: ignore[attr-defined]
                self._subscribed = True
            self._task = loop.create_task(self._run(), name="ttapi_async JobWatcher")

    async def _run(self) -> None:
        try:
            while self._jobs and not self._closed:
                delay = self._dispatch(self._clock())
                if not self._jobs:
                    break
                await self._idle(delay)
        finally:
            self._task = None
            self._check_quiet()

    def _dispatch(self, now: float) -> float | None:
        """Move the jobs due by ``now`` (+ coalesce) to the ready queue; return the wait."""
        if now < self._paused_until:
            self._spawn_workers()
            return self._paused_until - now
        heap = self._heap
        ready = self._ready
        limit = now + self.coalesce
        # In the watcher's clock: under a manual clock, time must move for the cap to allow more.
        cap = self._cap
        wait: float | None = None
        while heap:
            entry = heap[0]
            if entry[0] > limit:
                wait = entry[0] - now
                break
            job = entry[2]
            if job._due is not entry[0]:
                heapq.heappop(heap)  # stale: the job was rescheduled, settled or cancelled
                continue
            if cap is not None and not cap.take(now):
                wait = cap.wait(now)
                break
            heapq.heappop(heap)
            job._due = None
            ready.append(job)
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

    async def _idle(self, delay: float | None) -> None:
        loop = asyncio.get_running_loop()
        waker: asyncio.Future[None] = loop.create_future()
        self._waker = waker
        now = self._clock()
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
                job = ready.popleft()
                if job._outcome is None:
                    await self._poll(job)
        finally:
            # Counted down before the task ends, so a dispatch right after starts a new one.
            self._active -= 1
            self._check_quiet()

    # --- one poll --------------------------------------------------------------------------

    async def _poll(self, job: Job) -> None:
        kind = job._kind
        job._flags |= IN_FLIGHT
        self.fetches += 1
        try:
            status = await kind.fetch(job.id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            job._flags &= ~IN_FLIGHT
            self._on_error(job, exc, self._clock())
            return
        job._flags &= ~IN_FLIGHT
        self._on_status(job, status, self._clock())

    def _on_status(self, job: Job, status: JobStatus, now: float) -> None:
        if job._outcome is not None:
            return
        job._errors = 0
        previous = job._status
        job._status = status
        if job._listeners and (previous is None or previous.status != status.status):
            job._notify(status)
        value = status.status
        if value == "SUCCESS":
            try:
                result = job._kind.make_result(status)
            except Exception as exc:
                self._finish(job, exc)
                return
            if job._flags & LEARNABLE:
                job._kind.wait.stats.add(self._estimate(job, now))
            self._finish(job, result)
            return
        if value == "FAILED":
            self._finish(
                job, JobFailedError(status.message or "job failed", job_id=job.id, status=status)
            )
            return
        if value not in PENDING_STATUSES and not job._flags & LOGGED_UNKNOWN:
            job._flags |= LOGGED_UNKNOWN
            logger.warning("job %s: unknown status %r, treated as pending", job.id, value)
        job._polls += 1
        if job._flags & LEARNABLE:
            # Seen pending at this age: its duration is at least that (see _schedule).
            job._kind.wait.pending.move(job._prev - job._started, now - job._started)
        job._prev = now
        job._flags &= ~HINTED  # a callback that did not come true says nothing of the end
        if now >= job._deadline:
            self._finish(job, self._timeout(job))
            return
        if job._outcome is None and job._due is None:
            self._schedule_next(job, now)

    def _estimate(self, job: Job, now: float) -> float:
        """Return the best guess of a finished job's duration."""
        if job._flags & HINTED or job._polls == 0:
            # A callback fetch is close to the finish. A first poll gives an upper bound:
            # recording it keeps the learned first poll from creeping later.
            return now - job._started
        return (job._prev + now) / 2 - job._started

    def _schedule_next(self, job: Job, now: float) -> None:
        if job._flags & AGAIN:
            job._flags &= ~AGAIN
            self._push(job, now + 0.0)
            return
        wait = job._kind.wait
        # A job submitted on a cold start follows what has been learned since.
        plan = job._plan or wait.plan()
        learnable = job._flags & LEARNABLE
        if plan is not None and learnable and wait.schedule.learn:
            self._push(job, now + wait.learned(now - job._started, plan))
            return
        state = self._state
        state.attempt_number = job._polls
        if learnable:
            state.start_time = job._started
            state.outcome_timestamp = now
        else:
            state.outcome_timestamp = None
        self._push(job, now + wait.delay(state, plan))

    def _timeout(self, job: Job, cause: BaseException | None = None) -> JobTimeoutError:
        last = f" (last status {job._status.status})" if job._status else ""
        error = JobTimeoutError(
            f"not finished before its deadline{last}; it may still finish: "
            f"resume it with {job._kind.resume_hint}({job.id!r})",
            job_id=job.id,
            status=job._status,
        )
        error.__cause__ = cause
        return error

    def _on_error(self, job: Job, exc: Exception, now: float) -> None:
        if job._outcome is not None:
            return
        if isinstance(exc, (AuthenticationError, PermissionDeniedError)):
            # The key (or the account) is refused: every other poll would be refused too.
            logger.error("fetch refused (%s): failing %d pending jobs", exc, len(self._jobs))
            for pending in list(self._jobs.values()):
                self._finish(pending, exc)
            return
        if not _is_transient(exc):
            error = JobFailedError(
                f"cannot fetch the job: {type(exc).__name__}: {exc}",
                job_id=job.id,
                status=job._status,
            )
            error.__cause__ = exc
            self._finish(job, error)
            return
        self.fetch_errors += 1
        job._errors += 1
        logger.debug("job %s: fetch failed (%s), polling again later", job.id, exc)
        if now >= job._deadline:
            self._finish(job, self._timeout(job, exc))
            return
        delay = self.schedule.error_backoff * 2 ** min(job._errors - 1, 3)
        hinted = retry_after_of(exc)
        if hinted is not None:
            delay = max(delay, hinted)
            # The service asked everyone to slow down, not just this job.
            self._paused_until = max(self._paused_until, now + hinted)
        if job._flags & AGAIN:
            job._flags &= ~AGAIN
        self._push(job, now + delay)

    def next_due(self) -> float | None:
        """Return the clock time of the earliest poll scheduled, or None (for simulations)."""
        heap = self._heap
        while heap and heap[0][2]._due is not heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def quiet(self) -> bool:
        """Tell whether nothing is being fetched and the scheduler waits for a later time."""
        if self._active or self._ready:
            return False
        task = self._task
        if task is None or task.done():
            return True
        waker = self._waker
        return waker is not None and not waker.done()

    async def idle(self) -> None:
        """Wait until every fetch due by the clock's "now" has been made and answered.

        Meant for tests that drive a manual clock: advance it, then ``await
        watcher.idle()`` before looking at the jobs.
        """
        if self.quiet():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._quiet_waiters.append(waiter)
        await waiter

    def _check_quiet(self) -> None:
        if self._quiet_waiters and self.quiet():
            waiters, self._quiet_waiters = self._quiet_waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    # --- callbacks and shutdown ------------------------------------------------------------

    def _track_callback(self, job_id: str, awaitable: Awaitable[Any]) -> None:
        async def run() -> None:
            try:
                await awaitable
            except Exception:
                logger.exception("on_update callback of job %s failed", job_id)

        task = asyncio.get_running_loop().create_task(run())
        self._callbacks.add(task)
        task.add_done_callback(self._callbacks.discard)

    async def __aenter__(self) -> JobWatcher:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop polling and settle every pending job with ``JobFailedError``.

        Read ``pending_ids()`` first to resume those jobs in a later process.
        """
        if self._closed:
            return
        self._closed = True
        tasks: list[asyncio.Task[Any]] = list(self._workers)
        if self._task is not None:
            tasks.append(self._task)
            self._task = None
        for task in tasks:
            task.cancel()
        await _settle_tasks(tasks)
        for job in list(self._jobs.values()):
            self._finish(
                job,
                JobFailedError(
                    "the client closed while the job was pending; resume it with "
                    f"{job._kind.resume_hint}({job.id!r})",
                    job_id=job.id,
                    status=job._status,
                ),
            )
        self._heap.clear()
        self._ready.clear()
        if self._subscribed:
            self._clock.unsubscribe(self.wake)  # type: ignore[attr-defined]
            self._subscribed = False
        if self._callbacks:
            await _settle_tasks(list(self._callbacks))
        waiters, self._quiet_waiters = self._quiet_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


def _is_transient(exc: BaseException) -> bool:
    """Tell whether a failed poll should simply be tried again later."""
    if isinstance(exc, (APIConnectionError, APIResponseValidationError)):
        return True
    if isinstance(exc, APIStatusError):
        return exc.status_code >= 500 or exc.status_code in _TRANSIENT_STATUSES
    return False


async def _settle_tasks(tasks: Iterable[asyncio.Task[Any]]) -> None:
    pending = [t for t in tasks if not t.done()]
    if pending:
        await asyncio.gather(*pending, return_exceptions=True)

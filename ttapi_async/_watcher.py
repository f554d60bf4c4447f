"""JobWatcher: one scheduler polls every pending job; no task per job.

This module decides what a poll's answer means for its job (settle it, or schedule its
next poll by the learned schedule); ``_dispatch`` runs the polls. See docs/watcher.md.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from types import TracebackType
from typing import Any

from ._dispatch import Dispatcher, Sleep
from ._errors import InvalidRequestError, JobFailedError
from ._job import Job, Outcome
from ._joberrors import closed_error, is_transient, refuses_every_job, timeout_error, unfetchable
from ._jobhost import CallbackTasks, WatcherHost
from ._kinds import FetchFunction, Kinds, ResultFactory
from ._models import PENDING_STATUSES, JobStatus
from ._nextpoll import bring_forward, ended_within, estimate_duration, next_delay
from ._retry import retry_after_of
from ._schedule import LearnedWait, PollSchedule, poll_state
from ._types import NOT_GIVEN, NotGiven
from ._watchentry import AGAIN, FOLLOWER, HINTED, IN_FLIGHT, LEARNABLE, LOGGED_UNKNOWN, SETTLED

__all__ = ["FetchFunction", "JobWatcher"]

logger = logging.getLogger("ttapi_async")


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
    move for the cap to allow more). A 429 or 499 with Retry-After pauses every poll.
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
        self._fetch = fetch
        self._state = poll_state()
        self._jobs: dict[str, Job] = {}
        self._dispatcher: Dispatcher[Job] = Dispatcher(
            self._poll,
            lambda: bool(self._jobs),
            max_in_flight=max_in_flight,
            max_per_second=max_per_second,
            clock=clock,
            sleep=sleep,
            coalesce=coalesce,
        )
        self._callbacks = CallbackTasks()
        host = WatcherHost(self._dispatcher, self._finish, self._callbacks)
        # On real time a plan is made in a thread; on an injected clock (a simulation, a
        # test) inline, so that a run is reproducible.
        self._kinds = Kinds(
            schedule or PollSchedule(), rng or random.Random(), host, offload=clock is None
        )
        #: the learned schedule of each key (the same objects as in the kinds)
        self._waits = self._kinds.waits
        self._closed = False
        self.receiver: Any = None  # a WebhookReceiver, once one is attached
        #: called with a job given up before its end was seen (timeout, cancel, refusal),
        #: not at close: the client's coordinator then frees what the job held
        self.on_dropped: Callable[[Job], None] | None = None
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
            if self._jobs or self._dispatcher.subscribed:
                raise RuntimeError("cannot change the clock of a watcher with pending jobs")
            self._dispatcher.set_clock(clock, sleep)
        if schedule is not None:
            self._kinds.set_schedule(schedule)
        if max_in_flight is not None:
            if max_in_flight < 1:
                raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
            self._dispatcher.max_in_flight = max_in_flight
        if not isinstance(max_per_second, NotGiven):
            self._dispatcher.set_rate(max_per_second)

    @property
    def schedule(self) -> PollSchedule:
        """Return the schedule every kind of job follows."""
        return self._kinds.schedule

    @property
    def max_in_flight(self) -> int:
        """Return the cap on fetches running at once."""
        return self._dispatcher.max_in_flight

    @property
    def max_per_second(self) -> float | None:
        """Return the cap on fetches started in any one second of the clock (None: none)."""
        cap = self._dispatcher.cap
        return None if cap is None else cap.per_second

    @property
    def coalesce(self) -> float:
        """Return how early a poll may start to share a wake-up with others (seconds)."""
        return self._dispatcher.coalesce

    @property
    def _clock(self) -> Callable[[], float]:
        return self._dispatcher.clock

    def record_duration(self, key: str, seconds: float) -> None:
        """Teach the schedule of ``key`` one job duration (to seed it from a past run)."""
        self._kinds.wait_for(key).stats.add(seconds)

    def durations(self, key: str) -> list[float]:
        """Return the recent durations learned for ``key`` (to save and seed a later run)."""
        wait = self._waits.get(key)
        return wait.stats.snapshot() if wait is not None else []

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
            if job.kind.key == key or job.kind.key.startswith(prefix)
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
        kind = self._kinds.get(key, fetch or self._fetch, make_result, resume_hint)
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
            kind,
            started=started,
            deadline=ends,
            learnable=age is not None,
            plan=plan,
        )
        self._jobs[job_id] = job
        first = 0.0
        if age is not None:
            first = wait.first_delay(plan)
            if (
                plan is None
                and wait.schedule.learn
                and not wait.onset_known()
                and not wait.scout(started)
            ):
                # Its sparse polls would read as a poll round under way: it counts as a
                # censored observation only once it follows the common schedule.
                job.flags |= FOLLOWER
                first = wait.follower_first(now)
            else:
                # A right-censored observation of its kind's durations, not seen pending yet.
                wait.pending.add(0.0)
            first = max(first - age, 0.0)
        self._push(job, now + first)
        self._dispatcher.start()
        return job

    def poke(self, job_id: str) -> bool:
        """Fetch ``job_id`` as soon as the caps allow (a callback said it changed).

        Return False when no such job is pending.
        """
        job = self._jobs.get(job_id)
        if job is None:
            return False
        job.flags |= HINTED
        if job.flags & IN_FLIGHT:
            job.flags |= AGAIN
        elif job.due is not None:
            self._push(job, self._clock() + 0.0)
        return True

    def deliver(self, job_id: str, status: JobStatus) -> bool:
        """Apply a status that did not come from a fetch (a trusted callback body).

        Return False when no such job is pending.
        """
        job = self._jobs.get(job_id)
        if job is None:
            return False
        job.flags |= HINTED
        self._on_status(job, status, self._clock())
        return True

    def _push(self, job: Job, due: float) -> None:
        self._dispatcher.push(job, min(due, job.deadline))

    def _finish(self, job: Job, outcome: Outcome) -> None:
        flags = job.flags
        if flags & SETTLED:
            return
        job.flags = flags | SETTLED
        self._jobs.pop(job.id, None)
        if flags & LEARNABLE and not flags & FOLLOWER:
            job.kind.wait.pending.remove(job.prev - job.started)
        self.settled += 1
        job.due = None
        job.settle(outcome)
        if self.on_dropped is not None and not self._closed:
            status = job.status
            if status is None or not status.terminal:
                self.on_dropped(job)
        if not self._jobs:
            self._dispatcher.wake()

    # --- the scheduler ---------------------------------------------------------------------

    def wake(self) -> None:
        """Make the scheduler look at the clock now (the clock moved, or work arrived)."""
        self._dispatcher.wake()

    def next_due(self) -> float | None:
        """Return the clock time of the earliest poll scheduled, or None (for simulations)."""
        return self._dispatcher.next_due()

    def quiet(self) -> bool:
        """Tell whether nothing is being fetched and the scheduler waits for a later time."""
        return self._dispatcher.quiet()

    async def idle(self) -> None:
        """Wait until every fetch due by the clock's "now" has been made and answered.

        Meant for tests that drive a manual clock: advance it, then ``await
        watcher.idle()`` before looking at the jobs.
        """
        await self._dispatcher.idle()

    # --- one poll --------------------------------------------------------------------------

    async def _poll(self, job: Job) -> None:
        if job.flags & SETTLED:
            return
        kind = job.kind
        job.flags |= IN_FLIGHT
        self.fetches += 1
        try:
            status = await kind.fetch(job.id)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            job.flags &= ~IN_FLIGHT
            self._on_error(job, exc, self._clock())
            return
        job.flags &= ~IN_FLIGHT
        self._on_status(job, status, self._clock())

    def _on_status(self, job: Job, status: JobStatus, now: float) -> None:
        if job.flags & SETTLED:
            return
        job.errors = 0
        job.observe(status)
        value = status.status
        if value == "SUCCESS":
            try:
                result = job.kind.make_result(status)
            except Exception as exc:
                self._finish(job, exc)
                return
            if job.flags & LEARNABLE and not job.flags & FOLLOWER:
                wait = job.kind.wait
                low, high = ended_within(job, now)
                wait.stats.add(estimate_duration(job, now), job.started, low, high)
                if wait.onset_news():
                    self._bring_forward(wait, now)
            self._finish(job, result)
            return
        if value == "FAILED":
            self._finish(
                job, JobFailedError(status.message or "job failed", job_id=job.id, status=status)
            )
            return
        if value not in PENDING_STATUSES and not job.flags & LOGGED_UNKNOWN:
            job.flags |= LOGGED_UNKNOWN
            logger.warning("job %s: unknown status %r, treated as pending", job.id, value)
        job.polls += 1
        if job.flags & LEARNABLE and not job.flags & FOLLOWER:
            # Seen pending at this age: its duration is at least that (docs/watcher.md).
            job.kind.wait.pending.move(job.prev - job.started, now - job.started)
        job.prev = now
        job.flags &= ~HINTED  # a callback that did not come true says nothing of the end
        if now >= job.deadline:
            self._finish(job, timeout_error(job, job.kind.resume_hint))
            return
        # An update callback may have cancelled the job, or poked it (which schedules it).
        if not job.flags & SETTLED and job.due is None:
            self._schedule_next(job, now)

    def _schedule_next(self, job: Job, now: float) -> None:
        if job.flags & AGAIN:
            job.flags &= ~AGAIN
            self._push(job, now + 0.0)
            return
        wait = job.kind.wait
        if job.plan is None and job.flags & LEARNABLE and wait.onset_news():
            self._bring_forward(wait, now)
        self._push(job, now + next_delay(job, now, self._state))

    def _bring_forward(self, wait: LearnedWait, now: float) -> None:
        for job in bring_forward(self._jobs.values(), wait, now):
            self._push(job, max(now, job.started + wait.onset_target()))

    def _on_error(self, job: Job, exc: Exception, now: float) -> None:
        if job.flags & SETTLED:
            return
        if refuses_every_job(exc):
            logger.error("fetch refused (%s): failing %d pending jobs", exc, len(self._jobs))
            for pending in list(self._jobs.values()):
                self._finish(pending, exc)
            return
        if not is_transient(exc):
            self._finish(job, unfetchable(job, exc))
            return
        self.fetch_errors += 1
        job.errors += 1
        logger.debug("job %s: fetch failed (%s), polling again later", job.id, exc)
        if now >= job.deadline:
            self._finish(job, timeout_error(job, job.kind.resume_hint, exc))
            return
        delay = self.schedule.error_backoff * 2 ** min(job.errors - 1, 3)
        hinted = retry_after_of(exc)
        if hinted is not None:
            delay = max(delay, hinted)
            # The service asked everyone to slow down, not just this job.
            dispatcher = self._dispatcher
            dispatcher.paused_until = max(dispatcher.paused_until, now + hinted)
        job.flags &= ~AGAIN
        self._push(job, now + delay)

    # --- shutdown --------------------------------------------------------------------------

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
        await self._dispatcher.stop()
        for job in list(self._jobs.values()):
            self._finish(job, closed_error(job, job.kind.resume_hint))
        self._dispatcher.forget()
        await self._callbacks.settle()
        self._dispatcher.release_waiters()

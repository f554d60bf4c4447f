"""``Job``: the handle of one asynchronous TTAPI job, and the watcher's entry for it.

One object serves as both (``Job`` inherits ``WatchEntry``), with ``__slots__`` and lazily
created parts (the future, the listener list), so a pending job costs a few hundred bytes.
The job calls its watcher through ``JobHost``; the watcher calls ``observe`` and ``settle``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Protocol

from ._errors import JobTimeoutError
from ._headers import HasHeaders
from ._models import JobResult, JobStatus
from ._watchentry import LEARNABLE, WatchEntry

if TYPE_CHECKING:
    from ._kinds import JobKind
    from ._schedule import Plan

__all__ = ["CANCELLED", "Cancelled", "Job", "JobHost", "UpdateCallback", "attach_headers"]

logger = logging.getLogger("ttapi_async")

#: ``on_update`` callbacks receive each new status; they may be plain or async.
UpdateCallback = Callable[[JobStatus], Awaitable[None] | None]


class JobHost(Protocol):
    """What a ``Job`` asks of the watcher that polls it (``job.kind.host``; one per watcher)."""

    def now(self) -> float:
        """Return the time on the watcher's clock."""

    def finish(self, job: Job, outcome: Cancelled) -> None:
        """Stop watching ``job`` and settle it with ``outcome``."""

    def track_callback(self, job_id: str, awaitable: Awaitable[Any]) -> None:
        """Run an async ``on_update`` callback's awaitable to its end, logging its error."""


class _Failure:
    """An exception outcome with its original traceback (raising it again must not grow it)."""

    __slots__ = ("exc", "tb")

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
        self.tb: TracebackType | None = exc.__traceback__

    def raise_(self) -> Any:
        raise self.exc.with_traceback(self.tb)


class Cancelled:
    """The outcome of ``Job.cancel()``."""

    __slots__ = ()


CANCELLED: Final = Cancelled()

#: What a job ends with: its result, the error it raises, or cancellation.
Outcome = JobResult | BaseException | Cancelled


class Job(HasHeaders, WatchEntry):
    """An asynchronous job being watched: ``await job`` gives its ``JobResult``.

    ``headers`` and ``request_id`` are those of the submit's answer (empty / None for a
    job resumed by id).

    ``await job`` (or ``await job.wait()``) raises ``JobFailedError`` when the job ended
    FAILED, ``JobTimeoutError`` when it did not finish before its deadline,
    ``AuthenticationError`` when the key stopped working, and ``asyncio.CancelledError``
    after ``cancel()``. Create jobs with ``client.gpt4o.submit(...)``,
    ``client.gpt.submit(...)``, their ``resume(job_id)``, or ``JobWatcher.watch``.

    The fields it inherits from ``WatchEntry`` (``due``, ``flags``, ``polls``, ...) are the
    watcher's bookkeeping: read them if you must, never write them.
    """

    __slots__ = ("_headers", "_listeners", "_outcome", "_status", "_waiter")

    def __init__(
        self,
        job_id: str,
        kind: JobKind,
        *,
        started: float,
        deadline: float,
        learnable: bool,
        plan: Plan | None,
    ) -> None:
        WatchEntry.__init__(
            self, job_id, kind, started=started, deadline=deadline, learnable=learnable, plan=plan
        )
        self._headers: Mapping[str, str] | None = None
        self._status: JobStatus | None = None
        self._outcome: JobResult | _Failure | Cancelled | None = None
        self._waiter: asyncio.Future[JobResult] | None = None
        self._listeners: list[UpdateCallback | asyncio.Queue[JobStatus | None]] | None = None

    def __repr__(self) -> str:
        if isinstance(self._outcome, Cancelled):
            state = "cancelled"
        elif isinstance(self._outcome, _Failure):
            state = f"failed ({type(self._outcome.exc).__name__})"
        elif self._outcome is not None:
            state = "succeeded"
        else:
            state = f"pending ({self._status.status})" if self._status else "pending"
        return f"<Job {self.id} {self.kind.key} {state}>"

    # --- state -----------------------------------------------------------------------------

    @property
    def status(self) -> JobStatus | None:
        """Return the last status fetched (or delivered by a callback); None before any."""
        return self._status

    @property
    def key(self) -> str:
        """Return the kind of job (family and model) the watcher learns durations for."""
        return self.kind.key

    @property
    def eta(self) -> float | None:
        """Return the seconds until the job is expected to finish, from what was learned.

        The mean remaining time of the recent jobs of its kind that ran longer than this
        one has so far. None when nothing is known: no duration of its kind learned yet,
        the job older than all of them, or its age unknown (a resumed job). 0.0 once done.
        """
        if self._outcome is not None:
            return 0.0
        if not self.flags & LEARNABLE:
            return None
        return self.kind.wait.remaining(self.kind.host.now() - self.started)

    def done(self) -> bool:
        """Return True once the job has a result, an error, or was cancelled here."""
        return self._outcome is not None

    def cancelled(self) -> bool:
        """Return True if ``cancel()`` stopped watching the job."""
        return isinstance(self._outcome, Cancelled)

    def result(self) -> JobResult:
        """Return the result of a finished job, or raise its error.

        Raise ``asyncio.InvalidStateError`` while the job is pending.
        """
        outcome = self._outcome
        if outcome is None:
            raise asyncio.InvalidStateError(f"job {self.id} is still pending")
        if isinstance(outcome, _Failure):
            return outcome.raise_()  # type: ignore[no-any-return]
        if isinstance(outcome, Cancelled):
            raise asyncio.CancelledError(f"job {self.id} was cancelled")
        return outcome

    def exception(self) -> BaseException | None:
        """Return the error a finished job raises, or None if it succeeded."""
        if isinstance(self._outcome, _Failure):
            return self._outcome.exc
        if self._outcome is None:
            raise asyncio.InvalidStateError(f"job {self.id} is still pending")
        return None

    def cancel(self) -> bool:
        """Stop watching the job here; return False if it had already finished.

        TTAPI has no endpoint to cancel a job: the job keeps running on the service (and
        is billed). Awaiting a cancelled ``Job`` raises ``asyncio.CancelledError``;
        ``resume(job.id)`` watches it again.
        """
        if self._outcome is not None:
            return False
        self.kind.host.finish(self, CANCELLED)
        return True

    # --- waiting ---------------------------------------------------------------------------

    def __await__(self) -> Generator[Any, None, JobResult]:
        return self.wait().__await__()

    async def wait(self, timeout: float | None = None) -> JobResult:
        """Wait for the job's result; raise ``JobTimeoutError`` after ``timeout`` seconds.

        A ``timeout`` here only stops this wait: the job stays watched until its
        deadline, and can be awaited again. Cancelling the waiting task does not cancel
        the job either.
        """
        if self._outcome is None:
            waiter = self._waiter
            if waiter is None:
                waiter = self._waiter = asyncio.get_running_loop().create_future()
            if timeout is None:
                return await asyncio.shield(waiter)
            try:
                return await asyncio.wait_for(asyncio.shield(waiter), timeout)
            except asyncio.TimeoutError:
                if self._outcome is not None:
                    return self.result()
                raise JobTimeoutError(
                    f"not finished after waiting {timeout:g}s (still being watched)",
                    job_id=self.id,
                    status=self._status,
                ) from None
        return self.result()

    def on_update(self, callback: UpdateCallback) -> None:
        """Call ``callback(status)`` each time the job's status changes (plain or async).

        A callback's error is logged, never raised into the watcher. Async callbacks
        run as tasks that the watcher awaits when it closes.
        """
        if self._outcome is not None:
            return
        if self._listeners is None:
            self._listeners = []
        self._listeners.append(callback)

    async def updates(self) -> AsyncIterator[JobStatus]:
        """Yield the job's status each time it changes, until the job is settled.

        The status seen last (if any) comes first. The iteration ends when the job
        finishes; ``await job`` gives the outcome.
        """
        queue: asyncio.Queue[JobStatus | None] = asyncio.Queue()
        if self._status is not None:
            queue.put_nowait(self._status)
        if self._outcome is not None:
            queue.put_nowait(None)
        else:
            if self._listeners is None:
                self._listeners = []
            self._listeners.append(queue)
        try:
            while True:
                status = await queue.get()
                if status is None:
                    return
                yield status
        finally:
            if self._listeners is not None and queue in self._listeners:
                self._listeners.remove(queue)

    # --- called by the watcher -------------------------------------------------------------

    def observe(self, status: JobStatus) -> None:
        """Take ``status`` as the job's latest; tell the listeners when its value changed.

        Called by the watcher for every status it fetches or is delivered.
        """
        previous = self._status
        self._status = status
        listeners = self._listeners
        if not listeners or (previous is not None and previous.status == status.status):
            return
        for listener in tuple(listeners):
            if isinstance(listener, asyncio.Queue):
                listener.put_nowait(status)
                continue
            try:
                returned = listener(status)
            except Exception:
                logger.exception("on_update callback of job %s failed", self.id)
                continue
            if inspect.isawaitable(returned):
                self.kind.host.track_callback(self.id, returned)

    def settle(self, outcome: Outcome) -> None:
        """Give the job its outcome and wake whoever waits (called by the watcher, once)."""
        kept = _Failure(outcome) if isinstance(outcome, BaseException) else outcome
        self._outcome = kept
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            if isinstance(outcome, BaseException):
                waiter.set_exception(outcome)
                # Marked as retrieved: the job keeps the error for later awaits, and a
                # waiter nobody awaits any more must not log "exception never retrieved".
                waiter.exception()
            elif isinstance(outcome, Cancelled):
                waiter.cancel()
            else:
                waiter.set_result(outcome)
        listeners, self._listeners = self._listeners, None
        if listeners:
            for listener in listeners:
                if isinstance(listener, asyncio.Queue):
                    listener.put_nowait(None)


def attach_headers(job: Job, headers: Mapping[str, str]) -> None:
    """Give a just-submitted ``job`` the headers of the submit's answer."""
    job._headers = headers

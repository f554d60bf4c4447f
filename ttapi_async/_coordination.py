"""The client's side of coordination: opening its coordinator, leases, and first-status-wins.

``AsyncTTAPI`` holds one ``ClientCoordination``. It opens the coordinator with the client's
key and listener on first use (once, whatever the number of concurrent callers), closes it
with the client, and gives the send paths the few calls they make: a lease around each
submit, ``rate()`` before each request, ``settle`` on each terminal status. See
docs/coordination.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import Callable
from typing import Any, Final

from ._bigjson import loads
from ._errors import APIResponseValidationError
from ._models import JobStatus, structure
from .coordination._local import LocalCoordinator
from .coordination._types import (
    Coordinator,
    CoordinatorListener,
    JobRecord,
    Lease,
    LimitSettings,
)

__all__ = ["AMBIGUOUS_HOLD", "LOCAL_KEEP", "ClientCoordination", "answer_of", "status_of"]

logger = logging.getLogger("ttapi_async")

#: Seconds a lease stays held after a submit whose outcome is unknown (a timeout after
#: sending): the service may be running that job, so its slot is not handed out at once.
AMBIGUOUS_HOLD: Final = 120.0

#: How long the default (in-process) coordinator keeps a settled job's record: an hour,
#: as long as its image URL lives; a long-running process must not hold a day of them.
LOCAL_KEEP: Final = 3600.0

# The coordinators held by an open client: one coordinator serves one client at a time
# (it has one listener, the client's watcher, and a RedisCoordinator opens only once).
_IN_USE: weakref.WeakSet[Any] = weakref.WeakSet()


class ClientCoordination:
    """Open, use and close one client's coordinator."""

    def __init__(
        self,
        coordinator: Coordinator | None,
        *,
        api_key: Callable[[], str],
        listener: Callable[[], CoordinatorListener | None],
    ) -> None:
        if coordinator is None:
            coordinator = LocalCoordinator(keep=LOCAL_KEEP)
        else:
            with contextlib.suppress(TypeError):  # not weak-referenceable: cannot be checked
                if coordinator in _IN_USE:
                    raise ValueError(
                        "this coordinator already serves another open AsyncTTAPI client: "
                        "give each client its own (they share state through Redis)"
                    )
        with contextlib.suppress(TypeError):
            _IN_USE.add(coordinator)
        self.coordinator: Coordinator = coordinator
        self._api_key = api_key
        self._listener = listener
        self._lock: asyncio.Lock | None = None
        # Whether requests wait for a turn under a shared rate: a RedisCoordinator's rate()
        # is a round trip, worth it only when a rate is set (a pause also holds new leases).
        limits = getattr(coordinator, "limits", None)
        self._rated = not isinstance(limits, LimitSettings) or limits.rate is not None
        # A RedisCoordinator knows which of this worker's jobs another worker is confirming
        # (its claim was pushed here): a poll of one, a callback's or not, waits for that.
        self._elsewhere: Callable[[str], bool] | None = getattr(
            coordinator, "confirming_elsewhere", None
        )
        self._open = False
        self._closed = False
        #: job ids whose terminal status this process is recording now (its listener then
        #: hears of them from the settle call itself and must not resolve them twice)
        self.settling: set[str] = set()
        #: jobs another worker adopted (this one was declared dead): read, never fetched
        self.lost: set[str] = set()
        #: jobs resumed by id: their first poll reads the record (a settled one costs no fetch)
        self.resumed: set[str] = set()
        self._held: dict[str, asyncio.TimerHandle] = {}
        #: seconds a lease of an ambiguous submit is held; an emulator on scaled time
        #: scales it with its jobs (``FakeTTAPI.client``)
        self.ambiguous_hold = AMBIGUOUS_HOLD
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def opened(self) -> bool:
        """Return True once the coordinator is open (and not closed since)."""
        return self._open and not self._closed

    async def ready(self) -> Coordinator:
        """Return the coordinator, opening it first if nobody has (safe under concurrency)."""
        if self._open:
            return self.coordinator
        if self._closed:
            raise RuntimeError("this AsyncTTAPI client is closed; create a new one")
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if not self._open:
                if self._closed:
                    raise RuntimeError("this AsyncTTAPI client is closed; create a new one")
                await self.coordinator.open(self._api_key(), self._listener())
                self._open = True
        return self.coordinator

    async def aclose(self) -> None:
        """Close the coordinator if this client opened it; it may then serve another client."""
        if self._closed:
            return
        self._closed = True
        for handle in self._held.values():
            handle.cancel()  # the coordinator's close frees them (Redis: RETIRE)
        self._held.clear()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        try:
            if self._open:
                await self.coordinator.aclose()
        finally:
            with contextlib.suppress(TypeError):
                _IN_USE.discard(self.coordinator)

    async def rate(self) -> None:
        """Wait for this request's turn under the shared rate, if one is set."""
        if self._rated:
            await self.coordinator.rate()

    # --- leases ----------------------------------------------------------------------------

    def hold(self, lease: Lease) -> None:
        """Keep ``lease`` a while, then release it: its submit may or may not have gone through."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        self._held[lease.token] = loop.call_later(self.ambiguous_hold, self._let_go, lease)

    def dropped(self, job_id: str, key: str) -> None:
        """A job was given up before its end was seen: stop expecting it, free its lease later.

        The service may still run it (a timeout, a cancel here), so its lease is held a
        while first, as after a submit whose outcome is unknown.
        """
        self.lost.discard(job_id)
        self.resumed.discard(job_id)
        if not self._open or self._closed:
            return
        self.coordinator.forget(job_id)
        # A bound lease's member is the job's id; only its owner can release it.
        self.hold(Lease(key.partition(":")[0], job_id, -1))

    def _let_go(self, lease: Lease) -> None:
        self._held.pop(lease.token, None)
        self.spawn(self.coordinator.release_lease(lease), "release a held lease")

    def spawn(self, work: Any, what: str) -> None:
        """Run ``work`` (a coroutine) in the background; the client's close awaits it."""

        async def run() -> None:
            try:
                await work
            except Exception:
                logger.exception("coordination: could not %s", what)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- job records -----------------------------------------------------------------------

    async def record(self, job_id: str, *, kind: str, lease: Lease) -> None:
        """Record an accepted job (binding its lease to it); never lose its id over it."""
        work = asyncio.ensure_future(
            self.coordinator.record_submitted(job_id, kind=kind, product=lease.product, lease=lease)
        )
        try:
            # Shielded: a cancel here must not leave the record half made; the caller still
            # watches the job, whose settle then frees the lease.
            await asyncio.shield(work)
        except asyncio.CancelledError:
            work.add_done_callback(_log_failure)
            raise
        except Exception:
            logger.warning("job %s: the coordinator could not record it", job_id, exc_info=True)

    # --- polls -----------------------------------------------------------------------------

    async def before_poll(
        self, job_id: str, last: Callable[[str], JobStatus | None]
    ) -> JobStatus | None:
        """Wait for the poll's turn; return the job's status if the record has it (no fetch).

        A lost job (another worker owns it now) is never fetched here: until its record
        says it settled, its last status (``last(job_id)``) stands and the watcher polls it
        again later.
        """
        coordinator = await self.ready()
        if self._elsewhere is not None and self._elsewhere(job_id):
            # One confirming fetch per job across workers: the claim's holder makes it, and
            # its settle resolves the job here.
            return last(job_id) or JobStatus(job_id, "ON_QUEUE")
        if (self.lost or self.resumed) and (job_id in self.lost or job_id in self.resumed):
            self.resumed.discard(job_id)
            record = await coordinator.get_record(job_id)
            status = None if record is None else status_of(record)
            if status is not None:
                self.lost.discard(job_id)
                return status
            if job_id in self.lost and record is not None:
                return last(job_id) or JobStatus(job_id, "ON_QUEUE")
            self.lost.discard(job_id)  # no record left to read: fetch it after all
        if self._rated:
            await coordinator.rate()
        return None

    # --- terminal statuses -----------------------------------------------------------------

    async def settle(self, status: JobStatus) -> JobStatus:
        """Record a terminal status; return the one that won (the first, on any worker)."""
        coordinator = await self.ready()
        job_id = status.job_id
        self.settling.add(job_id)
        try:
            answer = answer_of(status)
            settled = await coordinator.settle(job_id, status=status.status, answer=answer)
        except Exception:
            # The status is right whatever the coordinator's trouble: resolve from it.
            logger.warning("job %s: could not record its end", job_id, exc_info=True)
            return status
        finally:
            self.settling.discard(job_id)
        if settled.won:
            return status
        first = status_of(settled.record)
        return status if first is None else first


def answer_of(status: JobStatus) -> str:
    """Return a terminal status as the JSON text a record keeps (the wire's shape)."""
    data = status.data
    body: dict[str, Any] = {"jobId": status.job_id, "status": status.status}
    if status.message is not None:
        body["message"] = status.message
    if data is not None:
        body["data"] = {
            "prompt": data.prompt,
            "referImages": list(data.refer_images),
            "imageUrl": data.image_url,
            "quota": data.quota,
            "finishTime": None if data.finish_time is None else data.finish_time.isoformat(),
            "hookUrl": data.hook_url,
        }
    return json.dumps(body, separators=(",", ":"))


def status_of(record: JobRecord) -> JobStatus | None:
    """Return the terminal status a settled record holds, or None if it holds none readable."""
    if not record.settled or not record.answer:
        return None
    try:
        status = structure(loads(record.answer.encode()), JobStatus)
    except (ValueError, UnicodeDecodeError, RecursionError, APIResponseValidationError):
        logger.warning("job %s: its record holds no readable status", record.job_id)
        return None
    if status.job_id != record.job_id or not status.terminal:
        return None
    return status


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("coordination: recording a job failed", exc_info=task.exception())

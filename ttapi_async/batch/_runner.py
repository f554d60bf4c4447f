"""The batch runner: submit within the adaptive limit, journal every step, write as results land.

What an error means for an item is decided in ``_policy``; how an item's ending is
recorded, in ``_outcome``. This module only moves items through their stages.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .._redact import redact
from .._retry import is_testing
from ..resources._leased import lease_wait_ends
from ._budget import Budget, Verdict
from ._errors import JournalWriteError
from ._folder import FolderLock, refuse_unjournaled
from ._gallery import GalleryWriter
from ._input import FAMILY_OF, BatchRequest
from ._journal import Journal
from ._limiter import AdaptiveLimiter
from ._outcome import BatchOutcome, BatchStats, Endings, OutcomeState
from ._outputs import Manifest
from ._shared_api import JournalAPI
from ._states import DONE, PENDING, SUBMITTED, ItemRow, SyncReport
from ._steps import ItemSteps, RetryState, Stopped

if TYPE_CHECKING:
    from .._client import AsyncTTAPI

__all__ = ["BatchOutcome", "BatchRunner", "BatchStats", "OutcomeState"]


class BatchRunner(ItemSteps):
    """Run a batch of requests into ``out_dir``, resumably.

    ::

        async with AsyncTTAPI() as client:
            runner = BatchRunner(client, "out", concurrency=200)
            async for outcome in runner.run(requests):
                print(outcome.id, outcome.state, outcome.files)

    Re-running over the same folder resumes: done items are skipped, submitted jobs are
    watched by id (never submitted again), failed items are retried only with
    ``retry_failed`` and items whose submission may have reached the service only with
    ``resubmit_unknown``. ``stop()`` stops submitting and leaves every job that was
    submitted recorded for the next run. ``clock`` and ``sleep`` drive the Retry-After
    pauses (injectable for tests; by default the pauses follow the library's testing
    switch, like every backoff).
    """

    #: The journal class (a test can give one whose writes fail).
    journal_type: ClassVar[type[Journal]] = Journal
    #: Ask the journal for items again after every change, even once it had none left
    #: (a shared batch: a dead runner's items may be queued again meanwhile).
    refetch: ClassVar[bool] = False
    #: The longest the producer waits for a change before it looks again (None: no limit).
    idle_poll: float | None = None

    def __init__(
        self,
        client: AsyncTTAPI,
        out_dir: str | Path,
        *,
        concurrency: int = 100,
        retry_failed: bool = False,
        resubmit_unknown: bool = False,
        force: bool = False,
        max_attempts: int = 4,
        initial_limit: int | None = None,
        durable: bool = True,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] | None = None,
        max_quota: int | None = None,
        max_tokens: int | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be >= 1, got {concurrency}")
        self.client = client
        self.out_dir = Path(out_dir)
        self.concurrency = concurrency
        self.retry_failed = retry_failed
        self.resubmit_unknown = resubmit_unknown
        self.force = force
        self.max_attempts = max(1, max_attempts)
        self.initial_limit = initial_limit
        self.durable = durable
        self._clock = clock
        self._sleep = sleep or _sleep
        self.stats = BatchStats()
        self.limiters: dict[str, AdaptiveLimiter] = {}
        self._journal: JournalAPI | None = None
        self._lock = FolderLock(self.out_dir)
        self._endings: Endings | None = None
        self._outcomes: asyncio.Queue[BatchOutcome | None] | None = None
        self._stop: asyncio.Future[None] | None = None
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._retries: collections.deque[RetryState] = collections.deque()
        self._retry_state: dict[str, RetryState] = {}
        self._wakeup = asyncio.Event()
        self._takes_max_retries: dict[Any, bool] = {}
        #: job ids the service gave that the journal could not record (written at the end)
        self._unrecorded: dict[str, str] = {}
        self._decode_pool: concurrent.futures.ThreadPoolExecutor | None = None
        #: the spending cap (``max_quota`` / ``max_tokens``), None when there is none
        self.budget = (
            None
            if max_quota is None and max_tokens is None
            else Budget(client.spent, max_quota=max_quota, max_tokens=max_tokens)
        )

    # --- control -----------------------------------------------------------------------------

    def stop(self, reason: str | None = None) -> None:
        """Stop submitting; let requests in flight answer, stop waiting for jobs."""
        if reason and self.stats.stopped_reason is None:
            self.stats.stopped_reason = redact(reason)
        if self._stopping:
            return
        self._stopping = True
        self.stats.interrupted = reason is None or self.stats.interrupted
        if self._stop is not None and not self._stop.done():
            self._stop.set_result(None)
        self._wakeup.set()

    def abort(self) -> None:
        """Stop at once: also abandon requests in flight (they are recorded as unknown)."""
        self.stop()
        for task in tuple(self._tasks):
            task.cancel()

    @property
    def stopping(self) -> bool:
        """Return True once ``stop()`` was called (or a fatal error stopped the run)."""
        return self._stopping

    def limiter(self, family: str) -> AdaptiveLimiter:
        """Return the adaptive limiter of one product family."""
        limiter = self.limiters.get(family)
        if limiter is None:
            limiter = self.limiters[family] = AdaptiveLimiter(
                self.concurrency, initial=self.initial_limit, clock=self._clock, sleep=self._sleep
            )
        return limiter

    # --- the run -----------------------------------------------------------------------------

    def plan(self, requests: Iterable[BatchRequest], *, file_hash: str | None = None) -> SyncReport:
        """Lock the folder, open the journal and record the input.

        Raise ``FolderLockedError`` when another run holds the folder,
        ``UnjournaledOutputError`` when it holds images but no journal (unless ``force``),
        ``JournalCorruptError`` when the journal cannot be read, ``InputChangedError`` on
        a changed input. ``file_hash`` is the input file's ``file_fingerprint``, if the
        requests came from one: the report then also tells whether the file changed.
        """
        self._lock.acquire()
        try:
            journal = self.journal_type.open(self.out_dir, durable=self.durable)
            try:
                if not self.force:
                    refuse_unjournaled(self.out_dir, journal)
                report = journal.sync_input(requests, force=self.force, file_hash=file_hash)
                journal.recover()
                journal.requeue(failed=self.retry_failed, unknown=self.resubmit_unknown)
                counts = journal.counts()
            except BaseException:
                journal.close()
                raise
        except BaseException:
            self._lock.release()
            raise
        self.stats.total = sum(counts.values())
        self.stats.already_done = counts[DONE]
        self.stats.report = report
        self._journal = journal
        return report

    async def run(
        self, requests: Iterable[BatchRequest] | None = None
    ) -> AsyncIterator[BatchOutcome]:
        """Run the batch; yield each item's outcome as it ends (skipped items yield nothing).

        ``requests`` may be left out when ``plan`` was called already.
        """
        if self._journal is None:
            if requests is None:
                raise ValueError("pass the requests, or call plan() first")
            self.plan(requests)
        queue: asyncio.Queue[BatchOutcome | None] = asyncio.Queue()
        self._outcomes = queue
        self._stop = asyncio.get_running_loop().create_future()
        if self._stopping:
            self._stop.set_result(None)
        self.stats.started = time.monotonic()
        try:
            main = asyncio.create_task(self._main())
        except BaseException:
            self._close_journal()
            raise
        try:
            while True:
                outcome = await queue.get()
                if outcome is None:
                    break
                yield outcome
            await main
        finally:
            if not main.done():
                self.abort()
                main.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await main
            elif not main.cancelled():
                main.exception()  # seen: a KeyboardInterrupt in it surfaces where it was raised

    async def _main(self) -> None:
        assert self._journal is not None and self._outcomes is not None and self._stop is not None
        # An item still waiting for a lease when the run stops gives the wait up (nothing
        # was sent): the leases it waits for may be held by the jobs the stop lets go.
        lease_wait_ends.set(self._stop)
        journal = self._journal
        manifest = Manifest(self.out_dir)
        self._endings = Endings(
            journal, manifest, self.stats, self.out_dir, on_write_error=self._write_failed
        )
        gallery = self._endings.gallery = GalleryWriter(self.out_dir)
        try:
            await self._resume_submitted()
            await self._produce()
            while self._tasks:
                await asyncio.wait(tuple(self._tasks))
        finally:
            try:
                if self._tasks:
                    for task in tuple(self._tasks):
                        task.cancel()
                    await asyncio.gather(*self._tasks, return_exceptions=True)
                await self._settle_journal(journal)
                with contextlib.suppress(OSError):
                    self._compact(manifest, journal)
                with contextlib.suppress(OSError, ValueError):
                    await gallery.aclose()
            finally:
                manifest.close()
                self._close_journal()
                if self._decode_pool is not None:
                    self._decode_pool.shutdown(wait=True)
                    self._decode_pool = None
                self.stats.finished = time.monotonic()
                self._outcomes.put_nowait(None)

    async def _settle_journal(self, journal: JournalAPI) -> None:
        """Commit everything; record the job ids a failed commit left out, if it can now."""
        for item_id, job_id in tuple(self._unrecorded.items()):
            with contextlib.suppress(JournalWriteError):
                await journal.mark_submitted(item_id, job_id)
                del self._unrecorded[item_id]
        try:
            await journal.drain()
            self.stats.still_submitted = (await journal.acounts())[SUBMITTED]
        except JournalWriteError as exc:
            self._write_failed(exc)
        self.stats.unrecorded = dict(self._unrecorded)

    def _compact(self, manifest: Manifest, journal: JournalAPI) -> None:
        if isinstance(journal, Journal):
            manifest.compact(journal)

    def close(self) -> None:
        """Close the journal and let the folder go: for a ``plan()`` not followed by ``run()``."""
        self._close_journal()

    def _close_journal(self) -> None:
        try:
            if self._journal is not None:
                self._journal.close()
        finally:
            self._lock.release()

    async def _resume_submitted(self) -> None:
        assert self._journal is not None
        after = -1
        while not self._stopping:
            rows = await self._journal.fetch((SUBMITTED,), after)
            if not rows:
                return
            for row in rows:
                after = row.seq
                limiter = self.limiter(FAMILY_OF[row.kind])
                slot = limiter.hold()
                self.stats.resumed += 1
                self._spawn(self._resume(row, slot), row.kind)

    async def _produce(self) -> None:
        assert self._journal is not None
        after = -1
        fresh: collections.deque[ItemRow] = collections.deque()
        exhausted = False
        held: ItemRow | None = None  # an item the budget made wait
        while not self._stopping:
            row, held = held or self._due_retry(), None
            if row is None and not fresh and not exhausted:
                try:
                    fresh.extend(await self._journal.fetch((PENDING,), after))
                except JournalWriteError as exc:  # a shared store that became unreachable
                    self._write_failed(exc)
                    return
                if fresh:
                    after = fresh[-1].seq
                else:
                    exhausted = True
            if row is None and fresh:
                row = fresh.popleft()
            if row is None:
                if not self._retries and not self._tasks:
                    if not await self._more_later():
                        return
                    exhausted = False
                    continue
                await self._wait_for_change()
                exhausted = exhausted and not self.refetch
                continue
            if self.budget is not None:
                decided = self.budget.check(row.kind)
                if decided is Verdict.STOP:  # the rest stay pending, for a later run
                    self.stats.capped = self.budget.reason
                    return
                if decided is Verdict.WAIT:
                    held = row
                    await self._wait_for_change()
                    continue
            limiter = self.limiter(FAMILY_OF[row.kind])
            try:
                slot = await self._until_stopped(limiter.acquire())
            except Stopped:
                return
            self._spawn(self._item(row, slot), row.kind)

    async def _more_later(self) -> bool:
        """Return True when items may still come to this run once it has none (a shared
        batch whose other runners still hold work); wait a little before returning True."""
        return False

    def _due_retry(self) -> ItemRow | None:
        if not self._retries:
            return None
        head = self._retries[0]
        if head.not_before > time.monotonic():
            return None
        self._retries.popleft()
        return head.row

    async def _wait_for_change(self) -> None:
        self._wakeup.clear()
        timeout = None
        if self._retries:
            timeout = max(0.0, min(r.not_before for r in self._retries) - time.monotonic())
        if self.idle_poll is not None:
            timeout = self.idle_poll if timeout is None else min(timeout, self.idle_poll)
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout)

    def _spawn(self, coro: Awaitable[None], kind: str | None = None) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        self.stats.in_flight = len(self._tasks)
        budget = self.budget
        if budget is not None and kind is not None:
            budget.begin(kind)
            # Registered first: the budget knows the item ended before the producer wakes.
            task.add_done_callback(lambda _: budget.end(kind))

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self.stats.in_flight = len(self._tasks)
            self._wakeup.set()
            if not t.cancelled() and (exc := t.exception()) is not None:
                # Only a failure to record an ending gets here: stop rather than guess.
                self._stop_for(exc)

        task.add_done_callback(done)


async def _sleep(seconds: float) -> None:
    # Retry-After pauses follow the library's testing switch, like every other backoff.
    if not is_testing():
        await asyncio.sleep(seconds)
    else:
        await asyncio.sleep(0)

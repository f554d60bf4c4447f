"""The batch runner: submit within the adaptive limit, journal every step, write as results land.

What an error means for an item is decided in ``_policy``; how an item's ending is
recorded, in ``_outcome``. This module only moves items through their stages.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeVar

import attrs

from .._errors import InvalidRequestError
from .._redact import redact
from .._retry import is_testing, retry_after_of
from ._errors import JournalWriteError
from ._folder import FolderLock, refuse_unjournaled
from ._gallery import GalleryWriter
from ._input import FAMILY_OF, JOB_KINDS, BatchRequest
from ._journal import Journal
from ._limiter import AdaptiveLimiter, Slot
from ._outcome import BatchOutcome, BatchStats, Endings, OutcomeState
from ._outputs import Manifest, save_b64, save_url
from ._policy import Action, Stage, decide, disk_full, explain
from ._states import DONE, PENDING, SUBMITTED, ItemRow, SyncReport

if TYPE_CHECKING:
    from .._client import AsyncTTAPI

__all__ = ["BatchOutcome", "BatchRunner", "BatchStats", "OutcomeState", "run_batch"]

T = TypeVar("T")

#: Refusals (429/499) one item may meet before it is given up as failed.
MAX_REFUSALS: Final = 200


class _Stopped(Exception):
    """Internal: the run was asked to stop while this item waited."""


class _Retry:
    __slots__ = ("attempts", "not_before", "refusals", "row")

    def __init__(self, row: ItemRow) -> None:
        self.row = row
        self.attempts = 0
        self.refusals = 0
        self.not_before = 0.0


class BatchRunner:
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
        self._journal: Journal | None = None
        self._lock = FolderLock(self.out_dir)
        self._endings: Endings | None = None
        self._outcomes: asyncio.Queue[BatchOutcome | None] | None = None
        self._stop: asyncio.Future[None] | None = None
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._retries: collections.deque[_Retry] = collections.deque()
        self._retry_state: dict[str, _Retry] = {}
        self._wakeup = asyncio.Event()
        self._takes_max_retries: dict[Any, bool] = {}
        #: job ids the service gave that the journal could not record (written at the end)
        self._unrecorded: dict[str, str] = {}
        self._decode_pool: concurrent.futures.ThreadPoolExecutor | None = None

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
        assert self._journal is not None and self._outcomes is not None
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
                    manifest.compact(journal)
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

    async def _settle_journal(self, journal: Journal) -> None:
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

    def close(self) -> None:
        """Close the journal and let the folder go: for a ``plan()`` not followed by ``run()``."""
        self._close_journal()

    def _close_journal(self) -> None:
        try:
            if self._journal is not None:
                self._journal.close()
        finally:
            self._lock.release()

    def _write_failed(self, exc: Exception) -> None:
        """A journal commit or a file write failed: stop before paying for what can't be kept."""
        if isinstance(exc, JournalWriteError) or disk_full(exc):
            self._stop_for(exc)

    def _stop_for(self, exc: BaseException) -> None:
        self.stop(f"{'disk full: ' if disk_full(exc) else ''}{type(exc).__name__}: {exc}")

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
                self._spawn(self._resume(row, slot))

    async def _produce(self) -> None:
        assert self._journal is not None
        after = -1
        fresh: collections.deque[ItemRow] = collections.deque()
        exhausted = False
        while not self._stopping:
            row = self._due_retry()
            if row is None and not fresh and not exhausted:
                fresh.extend(await self._journal.fetch((PENDING,), after))
                if fresh:
                    after = fresh[-1].seq
                else:
                    exhausted = True
            if row is None and fresh:
                row = fresh.popleft()
            if row is None:
                if not self._retries and not self._tasks:
                    return
                await self._wait_for_change()
                continue
            limiter = self.limiter(FAMILY_OF[row.kind])
            try:
                slot = await self._until_stopped(limiter.acquire())
            except _Stopped:
                return
            self._spawn(self._item(row, slot))

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
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), timeout)

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        self.stats.in_flight = len(self._tasks)

        def done(t: asyncio.Task[None]) -> None:
            self._tasks.discard(t)
            self.stats.in_flight = len(self._tasks)
            self._wakeup.set()
            if not t.cancelled() and (exc := t.exception()) is not None:
                # Only a failure to record an ending gets here: stop rather than guess.
                self._stop_for(exc)

        task.add_done_callback(done)

    async def _until_stopped(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` unless the run stops first (then cancel it, raise _Stopped)."""
        assert self._stop is not None
        task = asyncio.ensure_future(awaitable)
        if not self._stop.done():
            await asyncio.wait((task, self._stop), return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise _Stopped

    # --- one item ---------------------------------------------------------------------------

    async def _item(self, row: ItemRow, slot: Slot) -> None:
        limiter = self.limiter(FAMILY_OF[row.kind])
        try:
            outcome = await self._attempt(row, slot, limiter)
        except Exception as exc:  # one item's surprise must not kill the run
            outcome = await self._crashed(row, exc)
        finally:
            limiter.release(slot)
        if outcome is not None:
            self._emit(outcome)

    async def _attempt(
        self, row: ItemRow, slot: Slot, limiter: AdaptiveLimiter
    ) -> BatchOutcome | None:
        assert self._journal is not None and self._endings is not None
        journal = self._journal
        try:
            claimed = await journal.mark_submitting(row.id)
        except JournalWriteError as exc:
            self._write_failed(exc)  # nothing was sent: the item stays pending
            return None
        if not claimed:
            self.stats.claimed_elsewhere += 1  # another writer of this journal has it
            return None
        self._endings.started(row.id)
        self.stats.submit_requests += 1
        try:
            answer = await self._call(row)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                await asyncio.shield(
                    journal.mark_unknown(row.id, "abandoned while the request was in flight")
                )
            raise
        except Exception as exc:  # the policy says what each one means
            return await self._submit_failed(row, exc, slot, limiter)
        limiter.accepted(slot)
        if row.kind not in JOB_KINDS:
            limiter.release(slot)  # a synchronous answer frees its slot now
            return await self._finish_images(row, answer)
        job_id = str(answer.id)
        try:
            await journal.mark_submitted(row.id, job_id)
        except JournalWriteError as exc:
            self._unrecorded[row.id] = job_id
            self._write_failed(exc)
            with contextlib.suppress(Exception):
                answer.cancel()  # stop watching here; the service keeps running it
            reason = f"job {job_id} accepted but not recorded: {exc}"
            return self._endings.record(row, "unknown", job_id=job_id, error=reason)
        return await self._finish_job(row, answer, job_id, slot)

    async def _crashed(self, row: ItemRow, exc: Exception) -> BatchOutcome:
        """End an item that raised where nothing expected it: keep a recorded job, else unknown."""
        assert self._endings is not None
        self._write_failed(exc)
        reason = f"unexpected {type(exc).__name__}: {exc}"
        current = await self._journal.aget(row.id) if self._journal is not None else None
        if current is not None and current.state == SUBMITTED and current.job_id:
            return await self._endings.keep(row, reason, job_id=current.job_id)
        if current is not None and current.state == PENDING:
            return self._endings.record(row, "unknown", error=reason)  # nothing left here
        return await self._endings.unknown(row, reason)

    async def _resume(self, row: ItemRow, slot: Slot) -> None:
        limiter = self.limiter(FAMILY_OF[row.kind])
        assert row.job_id is not None
        try:
            age = None if row.submitted_at is None else max(0.0, time.time() - row.submitted_at)
            model = row.params.get("model") if row.kind == "gpt" else None
            job = getattr(self.client, row.kind).resume(row.job_id, age=age, model=model)
            outcome = await self._finish_job(row, job, row.job_id, slot)
        except Exception as exc:  # one item's surprise must not kill the run
            outcome = await self._crashed(row, exc)
        finally:
            limiter.release(slot)
        if outcome is not None:
            self._emit(outcome)

    async def _call(self, row: ItemRow) -> Any:
        params = dict(row.params)
        method: Callable[..., Awaitable[Any]]
        if row.kind == "generate":
            method = self.client.images.generate
        elif row.kind == "edit":
            method = self.client.images.edit
        elif row.kind == "dalle3":
            method = self.client.dalle3.generate
        else:
            method = getattr(self.client, row.kind).submit
        # The batch does its own pacing: a refusal must reach the limiter, not be slept
        # through inside the client.
        if self._takes(method, "max_retries"):
            params.setdefault("max_retries", 0)
        try:
            call = method(**params)
        except TypeError as exc:
            # Raised while binding the arguments, before anything could be sent.
            raise InvalidRequestError(f"{row.kind}: {exc}") from None
        return await call

    def _takes(self, method: Callable[..., Any], name: str) -> bool:
        key = getattr(method, "__func__", method)
        known = self._takes_max_retries.get(key)
        if known is None:
            try:
                parameters = inspect.signature(method).parameters
            except (TypeError, ValueError):
                parameters = {}  # type: ignore[assignment]
            known = name in parameters or any(
                p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()
            )
            self._takes_max_retries[key] = known
        return known

    async def _submit_failed(
        self, row: ItemRow, exc: Exception, slot: Slot, limiter: AdaptiveLimiter
    ) -> BatchOutcome | None:
        """Act on what the policy says a failed submission means."""
        assert self._journal is not None and self._endings is not None
        verdict = decide(Stage.SUBMIT, exc)
        reason = explain(Stage.SUBMIT, exc, verdict, None)
        if verdict.stop:
            self._stop_for(exc)
        if verdict.action is Action.REFUSED:
            self.stats.refused += 1
            queue_full = getattr(exc, "status_code", None) == 499
            limiter.refused(slot, retry_after_of(exc), queue_full=queue_full)
            return await self._again(row, reason, refusal=True)
        if verdict.action is Action.RETRY:
            return await self._again(row, reason, refusal=False)
        if verdict.action is Action.HOLD:
            with contextlib.suppress(JournalWriteError):
                await self._journal.mark_pending(row.id, reason)
            return None
        if verdict.action is Action.FAIL:
            return await self._endings.fail(row, reason)
        return await self._endings.unknown(row, reason)

    async def _again(self, row: ItemRow, reason: str, *, refusal: bool) -> BatchOutcome | None:
        """Put an item that certainly was not acted on back in line (or give it up)."""
        assert self._journal is not None and self._endings is not None
        state = self._retry_state.get(row.id)
        if state is None:
            state = self._retry_state[row.id] = _Retry(row)
        if refusal:
            state.refusals += 1
            give_up = state.refusals >= MAX_REFUSALS
        else:
            state.attempts += 1
            give_up = state.attempts >= self.max_attempts
        if give_up:
            tries = state.refusals if refusal else state.attempts
            what = "refusals" if refusal else "attempts"
            return await self._endings.fail(row, f"gave up after {tries} {what}; last: {reason}")
        try:
            await self._journal.mark_pending(row.id, reason)
        except JournalWriteError as exc:
            self._write_failed(exc)
            return None
        delay = 0.0 if refusal or is_testing() else self.client.retry_policy.backoff(state.attempts)
        state.not_before = time.monotonic() + delay
        self._retries.append(state)
        self._wakeup.set()
        return None

    async def _finish_job(
        self, row: ItemRow, job: Any, job_id: str, slot: Slot
    ) -> BatchOutcome | None:
        assert self._endings is not None
        endings = self._endings
        try:
            try:
                result = await self._until_stopped(job)
            finally:
                # The job no longer counts against the service's limit: free its slot
                # before the download, not after.
                self.limiter(FAMILY_OF[row.kind]).release(slot)
        except _Stopped:
            with contextlib.suppress(Exception):
                job.cancel()  # stop watching here; the service keeps running it
            return None  # stays "submitted": the next run resumes it
        except Exception as exc:  # the policy says what each one means
            return await self._job_ended(row, Stage.WATCH, exc, job_id)
        try:
            path = await self._until_stopped(
                save_url(result, result.image_url, self.out_dir, row.stem, 0, 1)
            )
        except _Stopped:
            return None
        except Exception as exc:  # the policy says what each one means
            return await self._job_ended(row, Stage.SAVE_JOB, exc, job_id)
        quota = int(getattr(result, "quota", 0) or 0)
        self.stats.quota += quota
        return await endings.done(row, [path], quota=quota, usage=None, job_id=job_id)

    async def _job_ended(
        self, row: ItemRow, stage: Stage, exc: Exception, job_id: str
    ) -> BatchOutcome:
        """Act on what the policy says a failed watch or save of a recorded job means."""
        assert self._endings is not None
        verdict = decide(stage, exc)
        reason = explain(stage, exc, verdict, job_id)
        if verdict.stop:
            self._stop_for(exc)
        if verdict.action is Action.FAIL:
            return await self._endings.fail(row, reason, job_id=job_id)
        return await self._endings.keep(row, reason, job_id=job_id)

    async def _finish_images(self, row: ItemRow, response: Any) -> BatchOutcome | None:
        assert self._endings is not None
        images = list(response.data)
        count = len(images)
        fmt = getattr(response, "output_format", None) or row.params.get("output_format")
        paths: list[Path] = []
        try:
            for index, image in enumerate(images):
                if image.b64_json is not None:
                    paths.append(
                        await save_b64(
                            image.b64_json,
                            self.out_dir,
                            row.stem,
                            index,
                            count,
                            fmt,
                            executor=self._decoder(),
                        )
                    )
                elif image.url:
                    paths.append(
                        await save_url(image, image.url, self.out_dir, row.stem, index, count)
                    )
        except Exception as exc:  # paid for but not saved, whatever the error
            verdict = decide(Stage.SAVE_ANSWER, exc)
            if verdict.stop:
                self._stop_for(exc)
            return await self._endings.unknown(row, explain(Stage.SAVE_ANSWER, exc, verdict, None))
        finally:
            del images
        if not paths:
            return await self._endings.unknown(row, "the answer holds no image")
        usage = None
        if response.usage is not None:
            usage = attrs.asdict(response.usage)
            self.stats.tokens += int(usage.get("total_tokens") or 0)
        return await self._endings.done(row, paths, quota=None, usage=usage, job_id=None)

    def _decoder(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._decode_pool is None:
            self._decode_pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="ttapi-decode"
            )
        return self._decode_pool

    def _emit(self, outcome: BatchOutcome) -> None:
        self._retry_state.pop(outcome.id, None)
        if self._outcomes is not None:
            self._outcomes.put_nowait(outcome)


async def _sleep(seconds: float) -> None:
    # Retry-After pauses follow the library's testing switch, like every other backoff.
    if not is_testing():
        await asyncio.sleep(seconds)
    else:
        await asyncio.sleep(0)


async def run_batch(
    client: AsyncTTAPI,
    requests: Iterable[BatchRequest],
    *,
    out_dir: str | Path,
    concurrency: int = 100,
    retry_failed: bool = False,
    resubmit_unknown: bool = False,
    force: bool = False,
) -> AsyncIterator[BatchOutcome]:
    """Run a batch into ``out_dir`` and yield each item's outcome as it ends.

    A shortcut for ``BatchRunner(client, out_dir, ...).run(requests)``; see ``BatchRunner``.
    """
    runner = BatchRunner(
        client,
        out_dir,
        concurrency=concurrency,
        retry_failed=retry_failed,
        resubmit_unknown=resubmit_unknown,
        force=force,
    )
    async for outcome in runner.run(requests):
        yield outcome

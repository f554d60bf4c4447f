"""The batch runner: submit within the adaptive limit, journal every step, write as results land."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

import attrs

from .._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    AuthenticationError,
    InsufficientQuotaError,
    InvalidRequestError,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
    PermissionDeniedError,
    QueueFullError,
    RateLimitError,
    TTAPIError,
)
from .._retry import is_testing, retry_after_of, should_retry
from ._input import FAMILY_OF, JOB_KINDS, BatchRequest
from ._journal import (
    DONE,
    PENDING,
    SUBMITTED,
    ItemRow,
    Journal,
    SyncReport,
)
from ._limiter import AdaptiveLimiter, Slot
from ._outputs import Manifest, manifest_line, save_b64, save_url

if TYPE_CHECKING:
    from .._client import AsyncTTAPI

__all__ = ["BatchOutcome", "BatchRunner", "BatchStats", "OutcomeState", "run_batch"]

T = TypeVar("T")

OutcomeState = Literal["done", "failed", "unknown"]

#: Refusals (429/499) one item may meet before it is given up as failed.
MAX_REFUSALS: Final = 200

_FATAL = (AuthenticationError, PermissionDeniedError, InsufficientQuotaError)


@attrs.frozen
class BatchOutcome:
    """How one item ended in this run: paths on disk, never image bytes."""

    id: str
    kind: str
    state: OutcomeState
    files: tuple[Path, ...] = ()
    job_id: str | None = None
    quota: int | None = None
    usage: dict[str, Any] | None = None
    error: str | None = None
    seconds: float | None = None

    @property
    def ok(self) -> bool:
        """Return True when the item's images are on disk."""
        return self.state == DONE


@attrs.define
class BatchStats:
    """Live counters of a run (read them for a progress display)."""

    total: int = 0
    already_done: int = 0
    done: int = 0
    failed: int = 0
    unknown: int = 0
    in_flight: int = 0
    submit_requests: int = 0
    refused: int = 0
    resumed: int = 0
    quota: int = 0
    tokens: int = 0
    started: float = attrs.field(factory=time.monotonic)
    finished: float | None = None
    interrupted: bool = False
    stopped_reason: str | None = None
    report: SyncReport | None = None

    @property
    def finished_items(self) -> int:
        """Return the items that reached an end this run."""
        return self.done + self.failed + self.unknown

    @property
    def remaining(self) -> int:
        """Return the items not done and not ended this run."""
        return max(0, self.total - self.already_done - self.finished_items)

    @property
    def wall(self) -> float:
        """Return the seconds the run has taken."""
        return (self.finished or time.monotonic()) - self.started


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
        self._manifest: Manifest | None = None
        self._outcomes: asyncio.Queue[BatchOutcome | None] | None = None
        self._stop: asyncio.Future[None] | None = None
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._retries: collections.deque[_Retry] = collections.deque()
        self._retry_state: dict[str, _Retry] = {}
        self._wakeup = asyncio.Event()
        self._takes_max_retries: dict[Any, bool] = {}
        self._started: dict[str, float] = {}
        self._decode_pool: concurrent.futures.ThreadPoolExecutor | None = None

    # --- control -----------------------------------------------------------------------------

    def stop(self, reason: str | None = None) -> None:
        """Stop submitting; let requests in flight answer, stop waiting for jobs."""
        if reason and self.stats.stopped_reason is None:
            self.stats.stopped_reason = reason
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
        """Open the journal and record the input (raise ``InputChangedError`` on a mismatch).

        ``file_hash`` is the input file's ``file_fingerprint``, if the requests came from
        one: the report then also tells whether the file changed since the last run.
        """
        journal = Journal.open(self.out_dir, durable=self.durable)
        try:
            report = journal.sync_input(requests, force=self.force, file_hash=file_hash)
            journal.recover()
            journal.requeue(failed=self.retry_failed, unknown=self.resubmit_unknown)
        except BaseException:
            journal.close()
            raise
        counts = journal.counts()
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
        main = asyncio.create_task(self._main())
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

    async def _main(self) -> None:
        assert self._journal is not None and self._outcomes is not None
        journal = self._journal
        self._manifest = Manifest(self.out_dir)
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
                await journal.drain()
                self._manifest.compact(journal)
            finally:
                self._manifest.close()
                journal.close()
                if self._decode_pool is not None:
                    self._decode_pool.shutdown(wait=True)
                    self._decode_pool = None
                self.stats.finished = time.monotonic()
                self._outcomes.put_nowait(None)

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

    # --- one item ----------------------------------------------------------------------------

    async def _item(self, row: ItemRow, slot: Slot) -> None:
        limiter = self.limiter(FAMILY_OF[row.kind])
        try:
            outcome = await self._attempt(row, slot, limiter)
        finally:
            limiter.release(slot)
        if outcome is not None:
            self._emit(outcome)

    async def _attempt(
        self, row: ItemRow, slot: Slot, limiter: AdaptiveLimiter
    ) -> BatchOutcome | None:
        assert self._journal is not None
        journal = self._journal
        await journal.mark_submitting(row.id)
        self._started.setdefault(row.id, time.time())
        self.stats.submit_requests += 1
        try:
            answer = await self._call(row)
        except asyncio.CancelledError:
            with contextlib.suppress(BaseException):
                await asyncio.shield(
                    journal.mark_unknown(row.id, "abandoned while the request was in flight")
                )
            raise
        except (RateLimitError, QueueFullError) as exc:
            self.stats.refused += 1
            limiter.refused(slot, retry_after_of(exc), queue_full=isinstance(exc, QueueFullError))
            return await self._again(row, exc, refusal=True)
        except TTAPIError as exc:
            return await self._settle_error(row, exc)
        limiter.accepted(slot)
        if row.kind in JOB_KINDS:
            job_id = str(answer.id)
            await journal.mark_submitted(row.id, job_id)
            return await self._finish_job(row, answer, job_id, slot)
        limiter.release(slot)  # a synchronous answer frees its slot now
        return await self._finish_images(row, answer)

    async def _resume(self, row: ItemRow, slot: Slot) -> None:
        limiter = self.limiter(FAMILY_OF[row.kind])
        assert row.job_id is not None
        try:
            age = None if row.submitted_at is None else max(0.0, time.time() - row.submitted_at)
            model = row.params.get("model") if row.kind == "gpt" else None
            job = getattr(self.client, row.kind).resume(row.job_id, age=age, model=model)
            outcome = await self._finish_job(row, job, row.job_id, slot)
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
            return await method(**params)
        except TypeError as exc:
            if "argument" not in str(exc):
                raise
            raise InvalidRequestError(f"{row.kind}: {exc}") from None

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

    async def _again(self, row: ItemRow, exc: TTAPIError, *, refusal: bool) -> BatchOutcome | None:
        """Put an item that certainly was not acted on back in line (or give it up)."""
        assert self._journal is not None
        state = self._retry_state.get(row.id)
        if state is None:
            state = self._retry_state[row.id] = _Retry(row)
        if refusal:
            state.refusals += 1
            give_up = state.refusals >= MAX_REFUSALS
        else:
            state.attempts += 1
            give_up = state.attempts >= self.max_attempts
        reason = f"{type(exc).__name__}: {exc}"
        if give_up:
            tries = state.refusals if refusal else state.attempts
            what = "refusals" if refusal else "attempts"
            return await self._fail(row, f"gave up after {tries} {what}; last: {reason}")
        await self._journal.mark_pending(row.id, reason)
        delay = 0.0 if refusal or is_testing() else self.client.retry_policy.backoff(state.attempts)
        state.not_before = time.monotonic() + delay
        self._retries.append(state)
        self._wakeup.set()
        return None

    async def _settle_error(self, row: ItemRow, exc: TTAPIError) -> BatchOutcome | None:
        """Decide what a failed submission means: retry, unknown, failed, or stop the run."""
        reason = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, InvalidRequestError):
            return await self._fail(row, reason)
        if isinstance(exc, APIConnectionError):
            if exc.possibly_submitted:
                return await self._unknown(row, reason)
            return await self._again(row, exc, refusal=False)
        if isinstance(exc, APIStatusError):
            if should_retry(exc, idempotent=False):
                return await self._again(row, exc, refusal=False)
            if exc.status_code >= 500:
                # A 502/504 or a bare 500 may come after the service took the work.
                return await self._unknown(row, reason)
            if isinstance(exc, _FATAL):
                self.stop(reason)
                await self._journal_pending(row, reason)
                return None
            return await self._fail(row, reason)
        if isinstance(exc, APIResponseValidationError):
            # An answer came but could not be read: the work may exist.
            return await self._unknown(row, reason)
        return await self._fail(row, reason)

    async def _journal_pending(self, row: ItemRow, reason: str) -> None:
        assert self._journal is not None
        await self._journal.mark_pending(row.id, reason)

    async def _finish_job(
        self, row: ItemRow, job: Any, job_id: str, slot: Slot
    ) -> BatchOutcome | None:
        assert self._journal is not None
        journal = self._journal
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
        except JobFailedError as exc:
            status = getattr(exc, "status", None)
            if status is not None and getattr(status, "failed", False):
                return await self._fail(row, f"job failed: {exc.message}", job_id=job_id)
            if isinstance(exc.__cause__, NotFoundError):
                # Expired, or submitted to another server (a --fake run's jobs end with it).
                reason = f"the service does not know job {job_id} (expired?)"
                return await self._fail(row, reason, job_id=job_id)
            # Watching stopped (client closed...): the job may still succeed; resume later.
            await journal.note(row.id, str(exc))
            return self._outcome(row, "failed", job_id=job_id, error=str(exc))
        except JobTimeoutError as exc:
            reason = f"{exc.message}; still submitted, re-run to keep watching it"
            await journal.note(row.id, reason)
            return self._outcome(row, "failed", job_id=job_id, error=reason)
        except TTAPIError as exc:
            if isinstance(exc, _FATAL):
                self.stop(f"{type(exc).__name__}: {exc}")
                return None
            if isinstance(exc, NotFoundError):
                reason = f"the service does not know job {job_id} (expired?)"
                return await self._fail(row, reason, job_id=job_id)
            reason = f"{type(exc).__name__}: {exc}; still submitted, re-run to keep watching it"
            await journal.note(row.id, reason)
            return self._outcome(row, "failed", job_id=job_id, error=reason)
        try:
            path = await self._until_stopped(
                save_url(result, result.image_url, self.out_dir, row.stem, 0, 1)
            )
        except _Stopped:
            return None
        except (TTAPIError, OSError) as exc:
            reason = f"download failed: {exc}; still submitted, re-run to fetch it again"
            await journal.note(row.id, reason)
            return self._outcome(row, "failed", job_id=job_id, error=reason)
        quota = int(getattr(result, "quota", 0) or 0)
        self.stats.quota += quota
        return await self._done(row, [path], quota=quota, usage=None, job_id=job_id)

    async def _finish_images(self, row: ItemRow, response: Any) -> BatchOutcome | None:
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
        except (TTAPIError, OSError) as exc:
            # Paid for, but not saved: sending it again would be charged again.
            return await self._unknown(row, f"answer received but not saved: {exc}")
        finally:
            del images
        if not paths:
            return await self._unknown(row, "the answer holds no image")
        usage = None
        if response.usage is not None:
            usage = attrs.asdict(response.usage)
            self.stats.tokens += int(usage.get("total_tokens") or 0)
        return await self._done(row, paths, quota=None, usage=usage, job_id=None)

    # --- endings -----------------------------------------------------------------------------

    async def _done(
        self,
        row: ItemRow,
        paths: list[Path],
        *,
        quota: int | None,
        usage: dict[str, Any] | None,
        job_id: str | None,
    ) -> BatchOutcome:
        assert self._journal is not None
        files = [str(p.relative_to(self.out_dir)) for p in paths]
        await self._journal.mark_done(row.id, files=files, quota=quota, usage=usage)
        self.stats.done += 1
        return self._record(
            row, "done", files=tuple(paths), job_id=job_id, quota=quota, usage=usage
        )

    async def _fail(self, row: ItemRow, reason: str, *, job_id: str | None = None) -> BatchOutcome:
        assert self._journal is not None
        await self._journal.mark_failed(row.id, reason)
        self.stats.failed += 1
        return self._record(row, "failed", job_id=job_id, error=reason)

    async def _unknown(self, row: ItemRow, reason: str) -> BatchOutcome:
        assert self._journal is not None
        await self._journal.mark_unknown(row.id, reason)
        self.stats.unknown += 1
        return self._record(row, "unknown", error=reason)

    def _outcome(self, row: ItemRow, state: OutcomeState, **kw: Any) -> BatchOutcome:
        if state == "failed":
            self.stats.failed += 1
        return self._record(row, state, **kw)

    def _record(self, row: ItemRow, state: OutcomeState, **kw: Any) -> BatchOutcome:
        self._retry_state.pop(row.id, None)
        outcome = BatchOutcome(id=row.id, kind=row.kind, state=state, **kw)
        started = self._started.pop(row.id, None)
        now = time.time()
        if started is not None:
            outcome = attrs.evolve(outcome, seconds=round(now - started, 3))
        if self._manifest is not None:
            line = manifest_line(row, self.out_dir)
            line.update(
                state=state,
                job_id=outcome.job_id or row.job_id,
                files=[str(p.relative_to(self.out_dir)) for p in outcome.files],
                quota=outcome.quota,
                usage=outcome.usage,
                error=outcome.error,
                started_at=started or row.started_at,
                finished_at=now,
                seconds=outcome.seconds,
            )
            self._manifest.append(line)
        return outcome

    def _decoder(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._decode_pool is None:
            self._decode_pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="ttapi-decode"
            )
        return self._decode_pool

    def _emit(self, outcome: BatchOutcome) -> None:
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

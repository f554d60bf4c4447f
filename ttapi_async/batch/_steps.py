"""The steps of one item: claim, send, record the job, watch, save, and what each error means.

``BatchRunner`` moves items through these steps; the policy of what an error means lives in
``_policy``, the recording of how an item ended in ``_outcome``.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import inspect
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

import attrs

from .._errors import InvalidRequestError
from .._retry import is_testing, retry_after_of
from ..resources._leased import before_send
from ..resources.jobs import CLAIMS_BEFORE_SEND
from ._errors import JournalWriteError
from ._input import FAMILY_OF, JOB_KINDS
from ._limiter import AdaptiveLimiter, Slot
from ._outcome import BatchOutcome, BatchStats, Endings
from ._outputs import save_b64, save_url
from ._policy import Action, Stage, decide, disk_full, explain
from ._shared_api import JournalAPI
from ._states import PENDING, SUBMITTED, ItemRow

if TYPE_CHECKING:
    from .._client import AsyncTTAPI

__all__ = ["MAX_REFUSALS", "Claim", "ItemSteps", "RetryState", "Stopped", "Unclaimed"]

T = TypeVar("T")

#: Refusals (429/499) one item may meet before it is given up as failed.
MAX_REFUSALS: Final = 200


class Stopped(Exception):
    """Internal: the run was asked to stop while this item waited."""


class Unclaimed(Exception):
    """Internal: the claim before sending failed; nothing was sent.

    ``error`` is what the journal raised, None when the item was no longer this run's to
    claim (another writer has it, or this runner was taken over).
    """

    def __init__(self, error: Exception | None) -> None:
        super().__init__("not claimed: nothing was sent")
        self.error = error


class Claim:
    """One attempt's ``pending -> submitting`` compare-and-set, made at most once.

    Awaited right before the request leaves (by the client's submit, once it holds its
    lease, or by the runner before any other call); raises ``Unclaimed`` when the item may
    not be sent. ``made``: the claim was written, so the request may have gone out.
    """

    __slots__ = ("asked", "made", "row", "steps")

    def __init__(self, steps: ItemSteps, row: ItemRow) -> None:
        self.steps = steps
        self.row = row
        self.asked = False
        self.made = False

    async def __call__(self) -> None:
        if self.made:
            return  # a client retry of this attempt: sent under the same claim
        if self.asked:
            raise Unclaimed(None)  # the claim failed: no retry may send without it
        self.asked = True
        steps = self.steps
        assert steps._journal is not None and steps._endings is not None
        try:
            claimed = await steps._journal.mark_submitting(self.row.id)
        except Exception as exc:  # carried past the client, which must not judge it
            raise Unclaimed(exc) from None
        if not claimed:
            raise Unclaimed(None)
        self.made = True
        steps._endings.started(self.row.id)
        steps.stats.submit_requests += 1


class RetryState:
    """How often an item that was certainly not acted on was put back, and when it is due."""

    __slots__ = ("attempts", "not_before", "refusals", "row")

    def __init__(self, row: ItemRow) -> None:
        self.row = row
        self.attempts = 0
        self.refusals = 0
        self.not_before = 0.0


class ItemSteps:
    """The per-item half of ``BatchRunner`` (which holds the state declared here)."""

    client: AsyncTTAPI
    out_dir: Path
    stats: BatchStats
    max_attempts: int
    _journal: JournalAPI | None
    _endings: Endings | None
    _stop: asyncio.Future[None] | None
    _retries: collections.deque[RetryState]
    _retry_state: dict[str, RetryState]
    _wakeup: asyncio.Event
    _takes_max_retries: dict[Any, bool]
    _unrecorded: dict[str, str]
    _decode_pool: concurrent.futures.ThreadPoolExecutor | None
    _outcomes: asyncio.Queue[BatchOutcome | None] | None

    def stop(self, reason: str | None = None) -> None:
        raise NotImplementedError

    def limiter(self, family: str) -> AdaptiveLimiter:
        raise NotImplementedError

    def _write_failed(self, exc: Exception) -> None:
        """A journal commit or a file write failed: stop before paying for what can't be kept."""
        if isinstance(exc, JournalWriteError) or disk_full(exc):
            self._stop_for(exc)

    def _stop_for(self, exc: BaseException) -> None:
        self.stop(f"{'disk full: ' if disk_full(exc) else ''}{type(exc).__name__}: {exc}")

    async def _until_stopped(self, awaitable: Awaitable[T]) -> T:
        """Await ``awaitable`` unless the run stops first (then cancel it, raise Stopped)."""
        assert self._stop is not None
        task = asyncio.ensure_future(awaitable)
        if not self._stop.done():
            await asyncio.wait((task, self._stop), return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        raise Stopped

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
        method = self._method(row)
        claim = Claim(self, row)
        # A job submit claims its item once it holds its lease, right before the POST: a
        # runner that dies while it waits has claimed nothing (the item is queued again,
        # not called unknown). Any other callable is claimed for before it is called.
        late = getattr(method, "__func__", None) in CLAIMS_BEFORE_SEND
        try:
            if not late:
                await claim()
            answer = await self._call(row, method, claim if late else None)
        except Unclaimed as exc:  # nothing was sent: the item stays pending
            if isinstance(exc.error, JournalWriteError):
                self._write_failed(exc.error)
            elif exc.error is not None:
                raise exc.error from None  # a surprise: ended by _item (_crashed)
            else:
                self.stats.claimed_elsewhere += 1  # another writer of this journal has it
            return None
        except asyncio.CancelledError:
            if claim.made:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(
                        journal.mark_unknown(row.id, "abandoned while the request was in flight")
                    )
            raise  # not claimed: nothing was sent, the item stays pending
        except Exception as exc:  # the policy says what each one means
            return await self._submit_failed(row, exc, slot, limiter, sent=claim.made)
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

    def _method(self, row: ItemRow) -> Callable[..., Awaitable[Any]]:
        """Return the client call that sends ``row``."""
        if row.kind == "generate":
            return self.client.images.generate
        if row.kind == "edit":
            return self.client.images.edit
        if row.kind == "dalle3":
            return self.client.dalle3.generate
        return getattr(self.client, row.kind).submit  # type: ignore[no-any-return]

    async def _call(
        self,
        row: ItemRow,
        method: Callable[..., Awaitable[Any]],
        claim: Callable[[], Awaitable[None]] | None,
    ) -> Any:
        params = dict(row.params)
        # The batch does its own pacing: a refusal must reach the limiter, not be slept
        # through inside the client.
        if self._takes(method, "max_retries"):
            params.setdefault("max_retries", 0)
        try:
            call = method(**params)
        except TypeError as exc:
            # Raised while binding the arguments, before anything could be sent.
            raise InvalidRequestError(f"{row.kind}: {exc}") from None
        if claim is None:
            return await call
        token = before_send.set(claim)  # this task's context: the submit awaits it
        try:
            return await call
        finally:
            before_send.reset(token)

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
        self, row: ItemRow, exc: Exception, slot: Slot, limiter: AdaptiveLimiter, *, sent: bool
    ) -> BatchOutcome | None:
        """Act on what the policy says a failed submission means (``sent``: the item was
        claimed, so its request may have gone out)."""
        assert self._journal is not None and self._endings is not None
        verdict = decide(Stage.SUBMIT, exc)
        if not sent and verdict.action is Action.UNKNOWN:
            # Raised before the claim, so before the request could leave: nothing to fear.
            verdict = attrs.evolve(verdict, action=Action.RETRY)
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
            state = self._retry_state[row.id] = RetryState(row)
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
        except Stopped:
            with contextlib.suppress(Exception):
                job.cancel()  # stop watching here; the service keeps running it
            return None  # stays "submitted": the next run resumes it
        except Exception as exc:  # the policy says what each one means
            return await self._job_ended(row, Stage.WATCH, exc, job_id)
        try:
            path = await self._until_stopped(
                save_url(result, result.image_url, self.out_dir, row.stem, 0, 1)
            )
        except Stopped:
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

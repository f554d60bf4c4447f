"""Job control of FakeTTAPI: create, finish and settle jobs, and their callbacks."""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Literal, TypeVar

from ._clock import ManualClock
from ._jobs import FAILED, SUCCESS, Job

if TYPE_CHECKING:
    from ._clock import Clock
    from ._config import Duration
    from ._hooks import HookDelivery, HookScheduler
    from ._manual import ClockDriver
    from ._records import JobView
    from ._state import FakeState

__all__ = ["JobControl"]

T = TypeVar("T")


class JobControl:
    """The job methods of ``FakeTTAPI`` (a mixin: the attributes are FakeTTAPI's)."""

    if TYPE_CHECKING:
        api_key: str
        clock: Clock
        job_duration: Duration
        queue_share: float
        job_failure_rate: float
        job_failure_message: str
        _state: FakeState
        _keys: dict[str, str]
        _hooks: HookScheduler
        _sizes: dict[str, str]
        _bound_url: str | None
        _drivers: list[ClockDriver]

        def job(self, job_id: str) -> JobView | None: ...

    def create_job(
        self,
        prompt: str,
        *,
        product: Literal["4o-image", "gpt"] = "4o-image",
        hook_url: str | None = None,
        refer_images: list[str] | None = None,
        model: str | None = None,
        size: str = "1024x1024",
        key: str | None = None,
    ) -> str:
        """Create a job as if it had been submitted now, without HTTP; return its id."""
        job = self._create_job(
            product=product,
            key=self._keys[key or self.api_key],
            prompt=prompt,
            refer_images=refer_images,
            hook_url=hook_url,
            model=model,
            size=size,
        )
        return job.id

    def finish_job(
        self,
        job_id: str,
        status: Literal["SUCCESS", "FAILED"] = "SUCCESS",
        message: str | None = None,
    ) -> JobView:
        """End a pending job now as SUCCESS or FAILED; its callback, if any, falls due.

        Raise ``KeyError`` for an unknown job, ``ValueError`` for one that has ended.
        """
        state = self._state
        job = state.jobs.get(job_id)
        if job is None:
            raise KeyError(job_id)
        if status not in (SUCCESS, FAILED):
            raise ValueError(f"status must be SUCCESS or FAILED, not {status!r}")
        state.jobs.finish(job, status, message or self.job_failure_message, self.clock())
        if job.hook_url is not None:
            self._hooks_schedule(job)
        view = self.job(job_id)
        assert view is not None
        return view

    async def settle(self, job: Awaitable[T]) -> T:
        """Advance the ManualClock to the end of ``job`` (a job of ``client()``) and await it.

        ``result = await fake.settle(job)`` finishes a job whatever its poll schedule,
        callback or not; it raises ``TypeError`` on a fake without a ManualClock and
        ``ValueError`` for a job this fake does not know.
        """
        clock = self.clock
        if not isinstance(clock, ManualClock):
            raise TypeError("settle() needs a FakeTTAPI running on a ManualClock")
        job_id = getattr(job, "id", None)
        record = self._state.jobs.get(job_id) if isinstance(job_id, str) else None
        if record is None:
            raise ValueError(f"job {job_id!r} is not a job of this fake")
        if clock.now < record.end():
            clock.advance(record.end() - clock.now)
        for driver in self._drivers:
            if not driver.watcher.closed:
                driver.poke_ended(with_hooks=True, only=record.id)
        return await job

    async def drain_hooks(self, timeout: float = 10.0) -> None:
        """Wait until every callback due now has been delivered, retried or given up."""
        await self._hooks.drain(timeout)

    # --- internals used by the app ----------------------------------------------------

    def _create_job(
        self,
        *,
        product: str,
        key: str,
        prompt: str,
        refer_images: list[str] | None,
        hook_url: str | None,
        model: str | None,
        size: str,
    ) -> Job:
        # Durations and outcomes read the settings now, so a test may change
        # job_failure_rate or job_duration between submissions.
        job = self._state.jobs.create(
            product=product,
            key=key,
            prompt=prompt,
            refer_images=refer_images,
            hook_url=hook_url,
            model=model,
            # Interned: 100,000 jobs of one size share one string.
            size=self._sizes.setdefault(size, size),
            now=self.clock(),
            duration=self.job_duration,
            queue_share=self.queue_share,
            failure_rate=self.job_failure_rate,
            failure_message=self.job_failure_message,
        )
        if hook_url:
            self._hooks_schedule(job)
        return job

    def _hooks_schedule(self, job: Job) -> None:
        end = job.end()
        self._hooks.schedule(end, job.id, end)

    def _hook_body(self, job_id: str, end: float) -> tuple[str, bytes] | None:
        state = self._state
        job = state.jobs.get(job_id)
        # A stale entry: the job was reset away, or settled at another time.
        if job is None or job.hook_url is None or job.end() != end:
            return None
        body = state.fetch_body(job, self.clock(), self._bound_url or "")
        return job.hook_url, json.dumps(body, separators=(",", ":")).encode()

    def _record_hook(self, delivery: HookDelivery) -> None:
        self._state.record_hook(delivery)

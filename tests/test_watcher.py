"""JobWatcher's scheduling, with a manual clock and an in-process fetch function (no sockets)."""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import random
from collections.abc import Callable

import pytest
import tenacity

from ttapi_async import (
    APIConnectionError,
    AuthenticationError,
    InternalServerError,
    JobFailedError,
    JobResult,
    JobStatus,
    JobTimeoutError,
    JobWatcher,
    NotFoundError,
    PollSchedule,
    RateLimitError,
)
from ttapi_async._durations import _bin
from ttapi_async._models import JobData
from ttapi_async._schedule import _COLD_MARGIN, wait_age_fraction
from ttapi_async._watchentry import FOLLOWER
from ttapi_async.testing import ManualClock

FIXED = PollSchedule(
    first_delay=1.0, wait=tenacity.wait_fixed(1.0), learn=False, deadline=60.0, jitter=0.0
)


class FakeService:
    """Answer fetches from a table of job states; count them; optionally raise."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.ends: dict[str, float] = {}
        self.failing: dict[str, str] = {}
        self.raises: list[Exception] = []
        self.calls: list[tuple[float, str]] = []
        self.override: dict[str, str] = {}

    def add(self, job_id: str, duration: float) -> None:
        self.ends[job_id] = self.clock() + duration

    async def fetch(self, job_id: str) -> JobStatus:
        self.calls.append((self.clock(), job_id))
        if self.raises:
            raise self.raises.pop(0)
        if job_id in self.override:
            return JobStatus(job_id=job_id, status=self.override[job_id])
        if self.clock() < self.ends[job_id]:
            return JobStatus(job_id=job_id, status="ON_QUEUE")
        if job_id in self.failing:
            return JobStatus(job_id=job_id, status="FAILED", message=self.failing[job_id])
        data = JobData(prompt="p", image_url=f"https://cdn.example/{job_id}.png", quota=2)
        return JobStatus(job_id=job_id, status="SUCCESS", message="success", data=data)

    def count(self, job_id: str) -> int:
        return sum(1 for _, j in self.calls if j == job_id)


@pytest.fixture
def clock() -> ManualClock:
    """Return a manual clock starting at 0."""
    return ManualClock()


@pytest.fixture
def service(clock: ManualClock) -> FakeService:
    """Return an in-process service driven by the manual clock."""
    return FakeService(clock)


def make_watcher(
    service: FakeService, clock: ManualClock, **kwargs: object
) -> Callable[[], JobWatcher]:
    def build() -> JobWatcher:
        options: dict[str, object] = {"schedule": FIXED, "max_per_second": None}
        options.update(kwargs)
        return JobWatcher(fetch=service.fetch, clock=clock, **options)  # type: ignore[arg-type]

    return build


async def advance(watcher: JobWatcher, clock: ManualClock, seconds: float) -> None:
    """Advance the clock in 0.5 s steps, letting the watcher poll at each."""
    steps = round(seconds / 0.5)
    for _ in range(steps):
        clock.advance(0.5)
        await watcher.idle()


async def test_job_resolves_to_result(service: FakeService, clock: ManualClock) -> None:
    """A job whose fetch turns SUCCESS resolves to a JobResult with its image URL."""
    async with make_watcher(service, clock)() as watcher:
        service.add("a", 3.0)
        job = watcher.watch("a")
        await advance(watcher, clock, 3.0)
        result = await job
    assert isinstance(result, JobResult)
    assert result.image_url == "https://cdn.example/a.png"
    assert job.done() and job.status is not None and job.status.succeeded


async def test_polls_follow_the_wait_strategy(service: FakeService, clock: ManualClock) -> None:
    """Polls come at the first delay, then at the tenacity wait's intervals."""
    async with make_watcher(service, clock)() as watcher:
        service.add("a", 3.2)
        job = watcher.watch("a")
        await advance(watcher, clock, 5.0)
        await job
    assert [t for t, _ in service.calls] == [1.0, 2.0, 3.0, 4.0]


async def test_failed_job_raises_job_failed(service: FakeService, clock: ManualClock) -> None:
    """A job that ends FAILED raises JobFailedError carrying its message and last status."""
    async with make_watcher(service, clock)() as watcher:
        service.add("a", 1.0)
        service.failing["a"] = "prompt refused"
        job = watcher.watch("a")
        await advance(watcher, clock, 1.0)
        with pytest.raises(JobFailedError, match="prompt refused") as info:
            await job
    assert info.value.job_id == "a"
    assert isinstance(info.value.status, JobStatus) and info.value.status.failed


async def test_deadline_raises_job_timeout(service: FakeService, clock: ManualClock) -> None:
    """A job still running at its deadline raises JobTimeoutError and is polled no more."""
    async with make_watcher(service, clock)() as watcher:
        service.add("a", 1000.0)
        job = watcher.watch("a", deadline=5.0)
        await advance(watcher, clock, 8.0)
        with pytest.raises(JobTimeoutError, match="deadline"):
            await job
        assert service.count("a") == 5
        assert isinstance(job.exception(), TimeoutError)


async def test_cancel_stops_polling(service: FakeService, clock: ManualClock) -> None:
    """cancel() settles the job as cancelled and no fetch happens after it."""
    async with make_watcher(service, clock)() as watcher:
        service.add("a", 10.0)
        job = watcher.watch("a")
        await advance(watcher, clock, 2.0)
        assert job.cancel() is True
        await advance(watcher, clock, 10.0)
        assert service.count("a") == 2
        assert job.cancelled() and job.cancel() is False
        with pytest.raises(asyncio.CancelledError):
            await job
        assert watcher.pending_ids() == []


async def test_transient_failures_reschedule(service: FakeService, clock: ManualClock) -> None:
    """Connection errors, 5xx and malformed answers re-schedule the poll, never fail the job."""
    async with make_watcher(service, clock)() as watcher:
        service.add("a", 2.0)
        service.raises = [
            APIConnectionError("reset"),
            InternalServerError("boom", status_code=502),
            APIConnectionError("reset"),
        ]
        job = watcher.watch("a")
        await advance(watcher, clock, 20.0)
        result = await job
    assert result.job_id == "a"
    assert watcher.fetch_errors == 3


async def test_retry_after_pauses_every_poll(service: FakeService, clock: ManualClock) -> None:
    """A 429 with Retry-After holds back every job's poll until it has passed."""
    async with make_watcher(service, clock)() as watcher:
        for job_id in ("a", "b"):
            service.add(job_id, 100.0)
        service.raises = [RateLimitError("slow", status_code=429, headers={"Retry-After": "5"})]
        watcher.watch("a")
        watcher.watch("b", age=-0.5)  # due at 1.5 s, while the pause is on
        await advance(watcher, clock, 6.0)
        times_b = [t for t, j in service.calls if j == "b"]
    assert times_b[0] >= 6.0


async def test_auth_failure_fails_every_job(service: FakeService, clock: ManualClock) -> None:
    """An AuthenticationError on one poll fails every pending job with that error at once."""
    async with make_watcher(service, clock)() as watcher:
        for job_id in ("a", "b", "c"):
            service.add(job_id, 100.0)
        jobs = [watcher.watch(j, age=None if j == "a" else 0.0) for j in ("a", "b", "c")]
        service.raises = [AuthenticationError("bad key", status_code=401)]
        await watcher.idle()
        results = await asyncio.gather(*jobs, return_exceptions=True)
    assert all(isinstance(r, AuthenticationError) for r in results)
    assert len(service.calls) == 1


async def test_not_found_fails_only_that_job(service: FakeService, clock: ManualClock) -> None:
    """A 404 on a poll fails that job with JobFailedError; other jobs go on."""
    async with make_watcher(service, clock)() as watcher:
        service.add("a", 100.0)
        service.add("b", 1.0)
        job_a = watcher.watch("a", age=None)
        service.raises = [NotFoundError("no such job", status_code=404)]
        await watcher.idle()
        job_b = watcher.watch("b")
        await advance(watcher, clock, 1.0)
        with pytest.raises(JobFailedError, match="no such job") as info:
            await job_a
        assert isinstance(info.value.__cause__, NotFoundError)
        assert (await job_b).job_id == "b"


async def test_unknown_status_stays_pending(
    service: FakeService, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """An unknown status keeps the job pending and is logged once, however many polls."""
    async with make_watcher(service, clock)() as watcher:
        service.add("a", 100.0)
        service.override["a"] = "RENDERING"
        with caplog.at_level(logging.WARNING, logger="ttapi_async"):
            job = watcher.watch("a")
            await advance(watcher, clock, 4.0)
        assert not job.done() and service.count("a") == 4
    assert sum("RENDERING" in r.getMessage() for r in caplog.records) == 1


async def test_one_task_for_many_jobs(service: FakeService, clock: ManualClock) -> None:
    """A thousand pending jobs are served by one scheduler task, not a task each."""
    before = len(asyncio.all_tasks())
    async with make_watcher(service, clock)() as watcher:
        for i in range(1000):
            service.add(str(i), 50.0)
            watcher.watch(str(i))
        await watcher.idle()
        assert len(asyncio.all_tasks()) - before == 1
        await advance(watcher, clock, 2.0)
        assert len(service.calls) == 2000


async def test_polls_due_within_a_millisecond_go_together(
    service: FakeService, clock: ManualClock
) -> None:
    """Jobs due within the coalescing window are fetched in the same dispatch."""
    async with make_watcher(service, clock)() as watcher:
        service.add("a", 100.0)
        service.add("b", 100.0)
        watcher.watch("a")
        watcher.watch("b", age=-0.0008)  # due 0.8 ms after "a"
        clock.advance(1.0)
        await watcher.idle()
        assert [j for _, j in service.calls] == ["a", "b"]


async def test_in_flight_cap(clock: ManualClock) -> None:
    """No more than max_in_flight fetches run at once."""
    gate = asyncio.Event()
    running = 0
    peak = 0

    async def fetch(job_id: str) -> JobStatus:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await gate.wait()
        running -= 1
        return JobStatus(job_id=job_id, status="ON_QUEUE")

    async with JobWatcher(
        fetch=fetch, clock=clock, schedule=FIXED, max_in_flight=3, max_per_second=None
    ) as watcher:
        for i in range(10):
            watcher.watch(str(i))
        clock.advance(1.0)
        for _ in range(20):
            await asyncio.sleep(0)
        assert peak == 3
        gate.set()
        await watcher.idle()
    assert peak == 3


async def test_rate_cap(service: FakeService, clock: ManualClock) -> None:
    """Dispatches are capped at max_per_second of the watcher's clock."""
    build = make_watcher(service, clock, max_per_second=5.0)
    async with build() as watcher:
        for i in range(12):
            service.add(str(i), 100.0)
            watcher.watch(str(i))
        clock.advance(1.0)
        await watcher.idle()
        assert len(service.calls) == 5
        clock.advance(1.0)
        await watcher.idle()
        assert len(service.calls) == 10


async def test_rate_cap_holds_in_every_window_at_start_up(
    service: FakeService, clock: ManualClock
) -> None:
    """2,000 resumed jobs due at once under a cap of 300: no one-second window sees more."""
    build = make_watcher(service, clock, max_per_second=300.0, max_in_flight=1000)
    async with build() as watcher:
        for i in range(2000):
            service.add(str(i), 1000.0)
            watcher.watch(str(i), age=None)
        for _ in range(800):  # 8 s in 10 ms steps
            clock.advance(0.01)
            await watcher.idle()
    times = sorted(t for t, _ in service.calls)
    worst = max(bisect.bisect_left(times, t + 1.0) - i for i, t in enumerate(times))
    assert worst == 300
    assert len(times) >= 7 * 300


async def test_learning_moves_first_poll(service: FakeService, clock: ManualClock) -> None:
    """Once jobs of a kind have finished, a new job's first poll comes near their durations."""
    schedule = PollSchedule(
        min_samples=5, min_first_delay=0.5, min_interval=0.5, jitter=0.0, first_factor=0.9
    )
    async with make_watcher(service, clock, schedule=schedule)() as watcher:
        for seconds in (30.0, 31.0, 32.0, 33.0, 34.0):
            watcher.record_duration("k", seconds)
        service.add("a", 100.0)
        watcher.watch("a", key="k")
        await advance(watcher, clock, 26.5)
        assert service.calls == []
        await advance(watcher, clock, 1.0)
        assert [t for t, _ in service.calls] == [27.0]
        assert watcher.durations("k") == [30.0, 31.0, 32.0, 33.0, 34.0]


async def test_finished_jobs_teach_the_schedule(service: FakeService, clock: ManualClock) -> None:
    """A successful job's duration is recorded for its kind, estimated between two polls."""
    async with make_watcher(service, clock)() as watcher:
        service.add("a", 2.5)
        job = watcher.watch("a", key="k")
        await advance(watcher, clock, 3.0)
        await job
        assert watcher.durations("k") == [2.5]


async def test_job_done_at_its_first_poll_counts_as_ending_earlier(
    service: FakeService, clock: ManualClock
) -> None:
    """A job seen done at its first poll (1 s) is recorded a late job's worth earlier."""
    async with make_watcher(service, clock)() as watcher:
        service.add("a", 0.5)
        job = watcher.watch("a", key="k")
        await advance(watcher, clock, 1.0)
        await job
        assert watcher.durations("k") == [pytest.approx(1.0 / 1.15)]


async def test_finished_job_is_recorded_as_the_interval_it_ended_in(
    service: FakeService, clock: ManualClock
) -> None:
    """A job seen pending at 2 s and done at 3 s is known to have taken (2 s, 3 s]."""
    async with make_watcher(service, clock)() as watcher:
        service.add("a", 2.5)
        job = watcher.watch("a", key="k")
        await advance(watcher, clock, 3.0)
        await job
        assert watcher._waits["k"].stats.intervals() == ([2.0], [3.0])


async def test_job_done_at_its_first_poll_is_recorded_from_zero(
    service: FakeService, clock: ManualClock
) -> None:
    """A job done at its first poll (1 s) is known to have taken (0, 1 s]: it may have ended
    any time before, and the planner's estimate must not assume where."""
    async with make_watcher(service, clock)() as watcher:
        service.add("a", 0.5)
        job = watcher.watch("a", key="k")
        await advance(watcher, clock, 1.0)
        await job
        assert watcher._waits["k"].stats.intervals() == ([0.0], [1.0])


async def test_updates_and_callbacks(service: FakeService, clock: ManualClock) -> None:
    """updates() and on_update callbacks (plain and async) see each status change once."""
    seen_plain: list[str] = []
    seen_async: list[str] = []

    async def record(status: JobStatus) -> None:
        seen_async.append(status.status)

    async with make_watcher(service, clock)() as watcher:
        service.add("a", 3.0)
        job = watcher.watch("a")
        job.on_update(lambda s: seen_plain.append(s.status))
        job.on_update(record)

        async def collect() -> list[str]:
            return [s.status async for s in job.updates()]

        collector = asyncio.ensure_future(collect())
        await asyncio.sleep(0)
        await advance(watcher, clock, 3.0)
        seen_iter = await collector
    assert seen_plain == seen_async == seen_iter == ["ON_QUEUE", "SUCCESS"]


async def test_failing_callback_is_contained(
    service: FakeService, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A callback that raises is logged and the job still resolves."""

    def boom(status: JobStatus) -> None:
        raise RuntimeError("callback bug")

    async with make_watcher(service, clock)() as watcher:
        service.add("a", 1.0)
        job = watcher.watch("a")
        job.on_update(boom)
        with caplog.at_level(logging.ERROR, logger="ttapi_async"):
            await advance(watcher, clock, 1.0)
        assert (await job).job_id == "a"
    assert any("callback" in r.getMessage() for r in caplog.records)


async def test_wait_timeout_keeps_watching(service: FakeService, clock: ManualClock) -> None:
    """wait(timeout) raises JobTimeoutError but the job stays pending and resolves later."""
    async with make_watcher(service, clock)() as watcher:
        service.add("a", 2.0)
        job = watcher.watch("a")
        with pytest.raises(JobTimeoutError, match="still being watched"):
            await job.wait(timeout=0)
        assert not job.done()
        await advance(watcher, clock, 2.0)
        assert (await job.wait(timeout=0)).job_id == "a"


async def test_cancelling_a_waiter_leaves_the_job(service: FakeService, clock: ManualClock) -> None:
    """Cancelling the task that awaits a job does not cancel the job."""
    async with make_watcher(service, clock)() as watcher:
        service.add("a", 2.0)
        job = watcher.watch("a")
        waiter = asyncio.ensure_future(job.wait())
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await advance(watcher, clock, 2.0)
        assert (await job).job_id == "a"


async def test_close_settles_pending_jobs(service: FakeService, clock: ManualClock) -> None:
    """aclose() fails pending jobs with a resume hint and leaves no task behind."""
    before = asyncio.all_tasks()
    watcher = make_watcher(service, clock)()
    service.add("a", 100.0)
    job = watcher.watch("a")
    await advance(watcher, clock, 1.0)
    assert watcher.pending_ids() == ["a"]
    await watcher.aclose()
    with pytest.raises(JobFailedError, match=r"closed while the job was pending.*resume"):
        await job
    assert asyncio.all_tasks() == before
    with pytest.raises(RuntimeError, match="closed"):
        watcher.watch("b")


async def test_same_id_same_job(service: FakeService, clock: ManualClock) -> None:
    """Watching an id that is already pending returns the same Job."""
    async with make_watcher(service, clock)() as watcher:
        service.add("a", 100.0)
        assert watcher.watch("a") is watcher.watch("a")
        assert len(watcher) == 1


async def test_poke_fetches_now(service: FakeService, clock: ManualClock) -> None:
    """poke() fetches a pending job at once, ahead of its schedule; unknown ids are refused."""
    schedule = PollSchedule(first_delay=50.0, learn=False)
    async with make_watcher(service, clock, schedule=schedule)() as watcher:
        service.add("a", 2.0)
        job = watcher.watch("a")
        clock.advance(2.0)
        assert watcher.poke("a") is True
        await watcher.idle()
        assert (await job).job_id == "a"
        assert watcher.poke("zzz") is False
        assert service.count("a") == 1


async def test_resumed_job_is_fetched_at_once(service: FakeService, clock: ManualClock) -> None:
    """A job of unknown age is fetched immediately, and its duration teaches nothing."""
    async with make_watcher(service, clock)() as watcher:
        service.add("a", 0.0)
        job = watcher.watch("a", key="k", age=None)
        await watcher.idle()
        assert (await job).job_id == "a"
        assert watcher.durations("k") == []


async def test_injected_sleep_is_used(service: FakeService) -> None:
    """With an injected sleep, the scheduler waits with it for the next due time."""
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    service.clock = lambda: now[0]  # type: ignore[assignment]
    async with JobWatcher(
        fetch=service.fetch, clock=lambda: now[0], sleep=sleep, schedule=FIXED
    ) as watcher:
        service.ends["a"] = 2.5
        result = await watcher.watch("a")
    assert result.job_id == "a"
    assert slept == [1.0, 1.0, 1.0]


async def test_result_before_done_is_invalid(service: FakeService, clock: ManualClock) -> None:
    """result() on a pending job raises InvalidStateError instead of blocking."""
    async with make_watcher(service, clock)() as watcher:
        service.add("a", 100.0)
        job = watcher.watch("a")
        with pytest.raises(asyncio.InvalidStateError):
            job.result()
        assert "pending" in repr(job)


async def test_pending_ids_by_kind(service: FakeService, clock: ManualClock) -> None:
    """pending_ids(key) lists a family's jobs, models included, and not a longer family's."""
    async with make_watcher(service, clock)() as watcher:
        for job_id, key in (("a", "gpt:gpt-image-2"), ("b", "gpt"), ("c", "gpt4o")):
            service.add(job_id, 100.0)
            watcher.watch(job_id, key=key)
        assert watcher.pending_ids("gpt") == ["a", "b"]
        assert watcher.pending_ids("gpt4o") == ["c"]
        assert watcher.pending_ids() == ["a", "b", "c"]


async def test_known_age_shifts_the_first_poll(service: FakeService, clock: ManualClock) -> None:
    """A job resumed with its age is first polled when its schedule says, not at once."""
    schedule = PollSchedule(first_delay=10.0, wait=tenacity.wait_fixed(1.0), learn=False, jitter=0)
    async with make_watcher(service, clock, schedule=schedule)() as watcher:
        service.add("a", 100.0)
        watcher.watch("a", age=6.0)
        await advance(watcher, clock, 3.5)
        assert service.calls == []
        await advance(watcher, clock, 0.5)
        assert [t for t, _ in service.calls] == [4.0]


async def test_polls_feed_pending_ages_to_the_schedule(
    service: FakeService, clock: ManualClock
) -> None:
    """Each poll that finds a job pending records its age for the censored estimate."""
    schedule = PollSchedule(first_delay=2.0, wait=tenacity.wait_fixed(1.0), jitter=0.0)
    async with make_watcher(service, clock, schedule=schedule)() as watcher:
        service.add("a", 100.0)
        watcher.watch("a", key="k")
        pending = watcher._waits["k"].pending
        assert pending.total == 1 and pending.counts[0] == 1  # not seen pending yet
        await advance(watcher, clock, 3.0)
        assert pending.counts[0] == 0 and pending.counts[_bin(3.0)] == 1


async def test_settled_jobs_leave_the_pending_ages(
    service: FakeService, clock: ManualClock
) -> None:
    """A job that succeeds, fails or is cancelled is no longer counted as pending."""
    schedule = PollSchedule(first_delay=1.0, wait=tenacity.wait_fixed(1.0), jitter=0.0)
    async with make_watcher(service, clock, schedule=schedule)() as watcher:
        for job_id, seconds in (("ok", 2.2), ("bad", 2.2), ("gone", 100.0)):
            service.add(job_id, seconds)
        service.failing["bad"] = "boom"
        jobs = [watcher.watch(job_id, key="k") for job_id in ("ok", "bad", "gone")]
        await advance(watcher, clock, 2.0)
        assert watcher._waits["k"].pending.total == 3
        jobs[2].cancel()
        await advance(watcher, clock, 1.0)
        assert all(job.done() for job in jobs)
        assert watcher._waits["k"].pending.total == 0
        assert sum(watcher._waits["k"].pending.counts) == 0


async def test_cold_batch_does_not_learn_from_its_fastest_jobs(
    service: FakeService, clock: ManualClock
) -> None:
    """A cold batch whose fastest tenth finished keeps its slow jobs on sparse polls."""
    schedule = PollSchedule(
        first_delay=1.0, wait=tenacity.wait_fixed(1.0), min_samples=5, jitter=0.0
    )
    async with make_watcher(service, clock, schedule=schedule)() as watcher:
        for i in range(200):
            service.add(f"j{i}", 5.0 if i < 20 else 300.0)
        for i in range(200):
            watcher.watch(f"j{i}", key="k")
        await advance(watcher, clock, 30.0)
        before = service.count("j100")
        await advance(watcher, clock, 30.0)
        # Sparse (14% of the age) from 30 s to 60 s is ~5 polls; dense (6%) would be ~12.
        assert service.count("j100") - before <= 7


async def test_eta_is_none_before_anything_is_learned(
    service: FakeService, clock: ManualClock
) -> None:
    """A job of a kind with no learned duration has no estimate."""
    async with make_watcher(service, clock)() as watcher:
        service.add("a", 100.0)
        job = watcher.watch("a", key="k")
        assert job.eta is None


async def test_eta_counts_down_from_the_learned_durations(
    service: FakeService, clock: ManualClock
) -> None:
    """eta is the mean time left of the learned jobs that ran longer than this one so far."""
    async with make_watcher(service, clock)() as watcher:
        for seconds in (30.0, 40.0, 50.0):
            watcher.record_duration("k", seconds)
        service.add("a", 1000.0)
        job = watcher.watch("a", key="k")
        assert job.eta == pytest.approx(40.0)
        clock.advance(35.0)
        assert job.eta == pytest.approx(45.0 - 35.0)  # only the 40 s and 50 s jobs left
        clock.advance(20.0)
        assert job.eta is None  # older than every job learned


async def test_eta_of_a_submitted_job_counts_its_age(
    service: FakeService, clock: ManualClock
) -> None:
    """A job watched at age 10 s expects the time left after 10 s, not a whole duration."""
    async with make_watcher(service, clock)() as watcher:
        watcher.record_duration("k", 40.0)
        service.add("a", 1000.0)
        assert watcher.watch("a", key="k", age=10.0).eta == pytest.approx(30.0)


async def test_eta_is_none_for_a_job_of_unknown_age(
    service: FakeService, clock: ManualClock
) -> None:
    """A resumed job (age unknown) has no estimate even when durations are known."""
    async with make_watcher(service, clock)() as watcher:
        watcher.record_duration("k", 40.0)
        service.add("a", 1000.0)
        assert watcher.watch("a", key="k", age=None).eta is None


async def test_eta_is_zero_once_done(service: FakeService, clock: ManualClock) -> None:
    """A finished job's estimate is 0.0."""
    async with make_watcher(service, clock)() as watcher:
        watcher.record_duration("k", 40.0)
        service.add("a", 2.0)
        job = watcher.watch("a", key="k")
        await advance(watcher, clock, 3.0)
        await job
        assert job.eta == 0.0


async def test_cold_followers_poll_sparsely_until_a_scout_sees_a_finish(
    service: FakeService, clock: ManualClock
) -> None:
    """Past 64 cold jobs of a kind the others poll sparsely, and come forward at the first
    finish."""
    cold = wait_age_fraction(0.3, tenacity.wait_fixed(1.0), spread=0.0)
    schedule = PollSchedule(wait=cold, jitter=0.0)
    async with make_watcher(service, clock, schedule=schedule)() as watcher:
        service.add("j0", 12.0)
        for i in range(1, 200):
            service.add(f"j{i}", 100.0)
        for i in range(200):
            watcher.watch(f"j{i}", key="k")
        await advance(watcher, clock, 11.5)
        follower = [t for t, j in service.calls if j == "j64"]  # the 65th job
        scout = [t for t, j in service.calls if j == "j1"]
        assert follower == [1.0, 4.0]  # three times its age between polls
        assert len(scout) >= 4 * len(follower)
        await advance(watcher, clock, 3.0)  # j0 is seen done: the onset is ~12 s
        assert watcher.get("j0") is None
        follower = [t for t, j in service.calls if j == "j64"]
        assert len(follower) == 3 and follower[2] < 15.0  # brought forward from 16 s


async def test_a_late_follower_waits_for_what_the_scouts_found(
    service: FakeService, clock: ManualClock
) -> None:
    """A follower submitted after the scouts ran 20 s unfinished is first polled at 10 s."""
    async with make_watcher(service, clock, schedule=PollSchedule(jitter=0.0))() as watcher:
        for i in range(65):
            service.add(f"j{i}", 100.0)
        for i in range(64):
            watcher.watch(f"j{i}", key="k")
        await advance(watcher, clock, 20.0)
        watcher.watch("j64", key="k")
        await advance(watcher, clock, 9.5)
        assert [t for t, j in service.calls if j == "j64"] == []
        await advance(watcher, clock, 0.5)
        assert [t for t, j in service.calls if j == "j64"] == [pytest.approx(30.0)]


async def test_no_followers_once_a_finish_is_known(
    service: FakeService, clock: ManualClock
) -> None:
    """Once a scout has finished, new cold jobs poll from the onset, not as followers."""
    async with make_watcher(service, clock, schedule=PollSchedule(jitter=0.0))() as watcher:
        service.add("j0", 5.0)
        for i in range(1, 64):
            service.add(f"j{i}", 100.0)
        for i in range(64):
            watcher.watch(f"j{i}", key="k")
        await advance(watcher, clock, 8.0)
        assert watcher.get("j0") is None
        service.add("late", 100.0)
        job = watcher.watch("late", key="k")
        assert not job.flags & FOLLOWER
        onset = job.kind.wait._onset
        assert job.due == pytest.approx(clock() + _COLD_MARGIN * onset)


#: K: finished jobs of the new regime after which the schedule has re-learned a doubling of
#: every duration (its first-poll and dense_from quantiles within 10% of the new ones): 41 in
#: this run with the quantile rules alone; never within these 1,000 jobs before the sample
#: was scaled after a shift. With the optimised plan (the default) 9: the slow-down is found
#: from the whole cohort submitted since (finished and pending, ``_rescale``) before any of
#: its jobs has finished, and the old plan scaled by the fitted factor serves until the new
#: sample can be planned on. Over 10 seeds of this test (3 to 31): K 1-43, median 12, lag p99
#: 14.3-14.9% (the rules alone: K within the 1,000 new jobs in 1 of 8 seeds).
RELEARN_WITHIN = {False: 48, True: 16}


@pytest.mark.parametrize("optimise", [False, True], ids=["rules", "optimised"])
async def test_plan_relearns_within_k_finished_jobs_after_the_durations_double(
    service: FakeService, clock: ManualClock, optimise: bool
) -> None:
    """A stream of 40 s jobs whose durations double halfway re-learns within K new finishes."""
    rng = random.Random(3)
    schedule = PollSchedule(optimise=optimise)
    watcher = JobWatcher(
        fetch=service.fetch,
        clock=clock,
        schedule=schedule,
        max_per_second=None,
        max_in_flight=512,
        rng=random.Random(4),
    )
    mu, sigma = math.log(40.0), 0.35
    new_first = 80.0 * math.exp(sigma * -2.3263)  # the doubled 1st and 68th percentiles
    new_dense = 80.0 * math.exp(sigma * 0.4677)
    relearned: int | None = None
    async with watcher:
        for _ in range(512):
            watcher.record_duration("k", rng.lognormvariate(mu, sigma))
        arrivals: list[float] = []
        t = 0.0
        for _ in range(2000):
            t += rng.expovariate(20.0)
            arrivals.append(t)
        submitted = 0
        new_ids: list[str] = []
        while submitted < len(arrivals) or len(watcher):
            due = watcher.next_due()
            nxt = arrivals[submitted] if submitted < len(arrivals) else math.inf
            clock.advance(max(min(due if due is not None else math.inf, nxt) - clock(), 0.002))
            while submitted < len(arrivals) and arrivals[submitted] <= clock():
                job_id = f"j{submitted}"
                d = rng.lognormvariate(mu, sigma)
                if submitted >= 1000:
                    d *= 2.0
                    new_ids.append(job_id)
                service.add(job_id, d)
                watcher.watch(job_id, key="k", deadline=1e6)
                submitted += 1
            await watcher.idle()
            # The estimates as they stand (plan() would estimate again and change the run).
            wait = watcher._waits["k"]
            near = abs(wait._first / new_first - 1) < 0.1
            near = near and abs(wait._dense_from / new_dense - 1) < 0.1
            if relearned is None and new_ids and near:
                relearned = sum(1 for i in new_ids if watcher.get(i) is None)
    assert relearned is not None and relearned <= RELEARN_WITHIN[optimise]


async def stream_lags(schedule: PollSchedule, seed: int) -> tuple[float, float, float]:
    """Watch 1,000 lognormal(10 s, 0.35) jobs arriving at 20/s, 512 durations learned:
    return (polls per job, share more than 5% late, share more than 15% late)."""
    clock = ManualClock()
    service = FakeService(clock)
    rng = random.Random(seed)
    watcher = JobWatcher(
        fetch=service.fetch,
        clock=clock,
        schedule=schedule,
        max_per_second=None,
        max_in_flight=512,
        rng=random.Random(seed + 1),
    )
    mu, sigma = math.log(10.0), 0.35
    seen: dict[str, float] = {}
    durations: dict[str, float] = {}
    async with watcher:
        for _ in range(512):
            watcher.record_duration("k", rng.lognormvariate(mu, sigma))
        t, arrivals = 0.0, []
        for _ in range(1000):
            t += rng.expovariate(20.0)
            arrivals.append(t)
        submitted = 0
        while submitted < len(arrivals) or len(watcher):
            due = watcher.next_due()
            nxt = arrivals[submitted] if submitted < len(arrivals) else math.inf
            clock.advance(max(min(due if due is not None else math.inf, nxt) - clock(), 0.002))
            while submitted < len(arrivals) and arrivals[submitted] <= clock():
                job_id = f"j{submitted}"
                durations[job_id] = rng.lognormvariate(mu, sigma)
                service.add(job_id, durations[job_id])
                watcher.watch(job_id, key="k", deadline=1e6)
                submitted += 1
            await watcher.idle()
            for job_id in durations:
                if job_id not in seen and watcher.get(job_id) is None:
                    seen[job_id] = clock()
    lags = [(seen[j] - service.ends[j]) / d for j, d in durations.items()]
    polls = len(service.calls) / len(durations)
    return (
        polls,
        sum(1 for x in lags if x > 0.05) / len(lags),
        sum(1 for x in lags if x > 0.15) / len(lags),
    )


async def test_optimised_plan_keeps_the_lag_bounds_with_fewer_polls() -> None:
    """On seeded streams (two seeds, pooled) the default, optimised plan keeps at most 1% of
    the jobs more than 15% late and half more than 5% late, with fewer polls than the rules."""
    planned = [await stream_lags(PollSchedule(), seed) for seed in (1, 2)]
    rules = [await stream_lags(PollSchedule(optimise=False), seed) for seed in (1, 2)]
    assert sum(late15 for _, _, late15 in planned) / 2 <= 0.01
    assert sum(late5 for _, late5, _ in planned) / 2 <= 0.5
    assert sum(p for p, _, _ in planned) < sum(p for p, _, _ in rules)

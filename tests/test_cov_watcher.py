"""JobWatcher's guards and rarer paths, on a manual clock and an in-process fetch (no sockets)."""

from __future__ import annotations

import asyncio
import logging

import pytest
import tenacity

from ttapi_async import (
    APIConnectionError,
    BadRequestError,
    JobFailedError,
    JobStatus,
    JobTimeoutError,
    JobWatcher,
    PollSchedule,
    RateLimitError,
)
from ttapi_async._models import JobData
from ttapi_async.testing import ManualClock

FIXED = PollSchedule(
    first_delay=1.0, wait=tenacity.wait_fixed(1.0), learn=False, deadline=60.0, jitter=0.0
)


class Service:
    """Answers each fetch with the next scripted status or error (the last one repeats)."""

    def __init__(self, *answers: JobStatus | Exception) -> None:
        self.answers = list(answers)
        self.calls = 0

    async def fetch(self, job_id: str) -> JobStatus:
        self.calls += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def success(job_id: str = "a") -> JobStatus:
    data = JobData(prompt="p", image_url=f"https://cdn.example/{job_id}.png", quota=2)
    return JobStatus(job_id=job_id, status="SUCCESS", message="success", data=data)


def pending(job_id: str = "a", status: str = "ON_QUEUE") -> JobStatus:
    return JobStatus(job_id=job_id, status=status)


def watcher_of(service: Service, clock: ManualClock, **kw: object) -> JobWatcher:
    options: dict[str, object] = {"schedule": FIXED, "max_per_second": None}
    options.update(kw)
    return JobWatcher(fetch=service.fetch, clock=clock, **options)  # type: ignore[arg-type]


async def advance(watcher: JobWatcher, clock: ManualClock, seconds: float) -> None:
    for _ in range(round(seconds)):
        clock.advance(1.0)
        await watcher.idle()


async def test_the_clock_cannot_change_under_pending_jobs() -> None:
    """configure(clock=...) with a job pending raises instead of mixing two clocks."""
    clock = ManualClock()
    async with watcher_of(Service(pending()), clock) as watcher:
        watcher.watch("a")
        with pytest.raises(RuntimeError, match="pending jobs"):
            watcher.configure(clock=ManualClock())


async def test_configure_rejects_max_in_flight_below_one() -> None:
    """max_in_flight=0 is refused with ValueError."""
    async with watcher_of(Service(pending()), ManualClock()) as watcher:
        with pytest.raises(ValueError, match="max_in_flight"):
            watcher.configure(max_in_flight=0)


async def test_caps_read_back_as_configured() -> None:
    """The caps given to configure() read back through their properties."""
    async with watcher_of(Service(pending()), ManualClock(), coalesce=0.25) as watcher:
        watcher.configure(max_in_flight=3, max_per_second=7.0)
        assert (watcher.max_in_flight, watcher.max_per_second) == (3, 7.0)
        assert watcher.coalesce == 0.25
        watcher.configure(max_per_second=None)
        assert watcher.max_per_second is None


async def test_an_unknown_key_has_no_durations() -> None:
    """durations() of a key never seen is an empty list."""
    async with watcher_of(Service(pending()), ManualClock()) as watcher:
        assert watcher.durations("never-seen") == []


async def test_watch_without_any_fetch_function_raises() -> None:
    """A watcher made without fetch= refuses a watch() that gives none either."""
    async with JobWatcher(clock=ManualClock()) as watcher:
        with pytest.raises(TypeError, match="no fetch function"):
            watcher.watch("a")


async def test_poke_and_deliver_of_unknown_jobs_answer_false() -> None:
    """poke() and deliver() of a job nobody watches return False."""
    async with watcher_of(Service(pending()), ManualClock()) as watcher:
        assert watcher.poke("nope") is False
        assert watcher.deliver("nope", success("nope")) is False


async def test_a_result_that_cannot_be_built_fails_the_job() -> None:
    """A SUCCESS whose result factory raises settles the job with that error."""
    clock = ManualClock()

    def broken(status: JobStatus) -> object:
        raise ValueError("bad result")

    async with watcher_of(Service(success()), clock) as watcher:
        job = watcher.watch("a", make_result=broken)  # type: ignore[arg-type]
        await advance(watcher, clock, 2)
        with pytest.raises(ValueError, match="bad result"):
            await job


async def test_an_unknown_status_is_logged_once_and_treated_as_pending(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A status nobody knows logs one warning, and the job keeps being polled."""
    clock = ManualClock()
    service = Service(pending(status="WEIRD"), pending(status="WEIRD"), success())
    async with watcher_of(service, clock) as watcher:
        job = watcher.watch("a")
        with caplog.at_level(logging.WARNING, logger="ttapi_async"):
            await advance(watcher, clock, 4)
        await job
    assert sum("unknown status" in r.getMessage() for r in caplog.records) == 1


async def test_a_permanent_fetch_error_fails_the_job() -> None:
    """A poll answered 400 (not transient) fails the job instead of polling forever."""
    clock = ManualClock()
    error = BadRequestError("bad job id", status_code=400)
    async with watcher_of(Service(error), clock) as watcher:
        job = watcher.watch("a")
        await advance(watcher, clock, 2)
        with pytest.raises(JobFailedError):
            await job


async def test_fetch_errors_past_the_deadline_time_the_job_out() -> None:
    """Transient poll errors that last past the deadline end the job with JobTimeoutError."""
    clock = ManualClock()
    error = APIConnectionError("down")
    async with watcher_of(Service(error), clock) as watcher:
        job = watcher.watch("a", deadline=5)
        await advance(watcher, clock, 30)
        with pytest.raises(JobTimeoutError):
            await job
    assert watcher.fetch_errors >= 1


async def test_a_retry_after_on_a_poll_pauses_all_polls() -> None:
    """A 429 with Retry-After delays the job's next poll by at least that long."""
    clock = ManualClock()
    refused = RateLimitError("slow down", status_code=429, headers={"Retry-After": "10"})
    service = Service(refused, success())
    async with watcher_of(service, clock) as watcher:
        job = watcher.watch("a")
        await advance(watcher, clock, 2)
        assert service.calls == 1
        await advance(watcher, clock, 5)
        assert service.calls == 1 and not job.done()
        await advance(watcher, clock, 10)
        await job
    assert service.calls == 2


async def test_a_raising_async_callback_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """An async on_update callback that raises is logged when it runs, not raised."""
    clock = ManualClock()

    async def broken(status: JobStatus) -> None:
        raise RuntimeError("async callback bug")

    async with watcher_of(Service(pending(), success()), clock) as watcher:
        job = watcher.watch("a")
        job.on_update(broken)
        with caplog.at_level(logging.ERROR, logger="ttapi_async"):
            await advance(watcher, clock, 3)
            await job
            await watcher.aclose()
    assert any("on_update callback" in r.getMessage() for r in caplog.records)
    await watcher.aclose()  # a second close is a no-op


def test_a_watcher_needs_room_for_one_fetch() -> None:
    """JobWatcher(max_in_flight=0) is refused with ValueError."""
    with pytest.raises(ValueError, match="max_in_flight"):
        JobWatcher(max_in_flight=0)


async def test_next_due_is_the_first_poll_scheduled() -> None:
    """next_due() is None with nothing watched, then the clock time of the first poll."""
    clock = ManualClock()
    async with watcher_of(Service(pending()), clock) as watcher:
        assert watcher.next_due() is None
        job = watcher.watch("a")
        assert watcher.next_due() == pytest.approx(clock() + FIXED.first_delay)
        job.cancel()


async def test_a_new_sleep_is_taken_while_nothing_is_pending() -> None:
    """configure(sleep=...) on an idle watcher is accepted, and polls then go through it."""
    clock = ManualClock()
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    async with watcher_of(Service(success()), clock) as watcher:
        watcher.configure(sleep=sleep)
        result = await watcher.watch("a")
    assert result.image_url == "https://cdn.example/a.png" and slept


async def test_a_poke_cuts_an_injected_sleep_short() -> None:
    """With an injected sleep that would wait forever, poke() still gets the job fetched now."""
    clock = ManualClock()
    cancelled: list[float] = []

    async def forever(seconds: float) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(seconds)
            raise

    service = Service(success())
    async with watcher_of(service, clock, sleep=forever) as watcher:
        job = watcher.watch("a")
        for _ in range(5):
            await asyncio.sleep(0)  # let the scheduler start its sleep
        assert service.calls == 0
        assert watcher.poke("a")
        result = await asyncio.wait_for(job.wait(), 30)
    assert result.image_url == "https://cdn.example/a.png"
    assert cancelled and service.calls == 1


async def test_a_new_schedule_reaches_kinds_already_known() -> None:
    """configure(schedule=...) after a job was watched makes its kind follow the new one."""
    clock = ManualClock()
    async with watcher_of(Service(pending()), clock) as watcher:
        job = watcher.watch("a")
        slower = PollSchedule(first_delay=5.0, learn=False, jitter=0.0)
        watcher.configure(schedule=slower)
        assert watcher.schedule is slower and job.key == "default"
        assert all(w.schedule is slower for w in watcher._waits.values())
        job.cancel()


def test_a_rate_cap_says_what_it_allows() -> None:
    """RateCap's repr names its rate and the window it is counted over."""
    from ttapi_async._ratecap import RateCap

    assert repr(RateCap(200.0)).startswith("RateCap(200/s: ")

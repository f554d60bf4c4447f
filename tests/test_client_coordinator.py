"""The client and its coordinator: opening, closing, and a lease around every job submit."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from _fake_support import client as client
from _fake_support import clock as clock
from _fake_support import requests_to

from ttapi_async import (
    AsyncTTAPI,
    BadRequestError,
    InvalidRequestError,
    JobFailedError,
    QueueFullError,
)
from ttapi_async import _coordination as coordination_module
from ttapi_async.coordination import (
    CoordinatorListener,
    Lease,
    LeaseTimeoutError,
    LimitSettings,
    LocalCoordinator,
)
from ttapi_async.testing import Duration, FakeTTAPI, FaultRule, ManualClock

pytestmark = pytest.mark.fake_ttapi(clock=ManualClock(), job_duration=Duration.fixed(10))

SUBMIT_4O = "POST /openai/4o-image/generations"


class Watched(LocalCoordinator):
    """A LocalCoordinator that counts opens and closes and says when its leases settle down."""

    def __init__(self, limits: LimitSettings | None = None) -> None:
        super().__init__(limits)
        self.opens: list[tuple[str, CoordinatorListener | None]] = []
        self.closes = 0
        self.waiting = 0
        self.changed = asyncio.Event()

    async def open(self, api_key: str, listener: CoordinatorListener | None = None) -> None:
        await asyncio.sleep(0)  # a real coordinator awaits its server here
        self.opens.append((api_key, listener))
        await super().open(api_key, listener)

    async def aclose(self) -> None:
        self.closes += 1
        await super().aclose()

    async def acquire_lease(self, product: str, *, timeout: float | None = None) -> Lease:
        self.waiting += 1
        self.changed.set()
        try:
            return await super().acquire_lease(product, timeout=timeout)
        finally:
            self.waiting -= 1
            self.changed.set()

    async def record_submitted(self, job_id: str, **kwargs: Any) -> Any:
        try:
            return await super().record_submitted(job_id, **kwargs)
        finally:
            self.changed.set()

    def unbound(self, product: str) -> int:
        """Return the leases taken whose submit has not been answered yet."""
        leases = self._product(product).leases
        return sum(1 for bound in leases.values() if not bound)


async def settle_down(
    coordinator: Watched, tasks: list[asyncio.Task[Any]], product: str = "gpt4o"
) -> None:
    """Wait until every submit still running waits for a lease that no settle has freed."""
    for task in tasks:
        task.add_done_callback(lambda _: coordinator.changed.set())
    for _ in range(10_000):
        running = sum(1 for task in tasks if not task.done())
        held, limit = coordinator.in_progress(product), coordinator.current(product)
        if (
            coordinator.unbound(product) == 0
            and coordinator.waiting == running
            and (running == 0 or held >= limit)
        ):
            return
        coordinator.changed.clear()
        await asyncio.wait_for(coordinator.changed.wait(), 30)
    raise AssertionError("the submits never settled down")


async def run_wave(
    client: AsyncTTAPI,
    coordinator: Watched,
    clock: ManualClock,
    submits: list[Callable[[], Awaitable[Any]]],
) -> list[Any]:
    """Submit at once, ending the fake's jobs every round; return what the jobs gave."""
    tasks = [asyncio.ensure_future(make()) for make in submits]
    for _ in range(len(submits) + 5):
        await settle_down(coordinator, tasks)
        if all(task.done() for task in tasks):
            break
        clock.advance(11)
        await client.watcher.idle()
    jobs = await asyncio.gather(*tasks, return_exceptions=True)
    clock.advance(11)
    return await asyncio.gather(*jobs, return_exceptions=True)


def test_default_coordinator_is_local() -> None:
    """Without a coordinator the client has its own LocalCoordinator; a given one is kept."""
    plain = AsyncTTAPI(api_key="k")
    given = LocalCoordinator()
    assert isinstance(plain.coordinator, LocalCoordinator)
    assert AsyncTTAPI(api_key="k", coordinator=given).coordinator is given


async def test_local_records_expire_without_being_read() -> None:
    """Settled records leave a LocalCoordinator once kept long enough, read or not."""
    now = [0.0]
    coordinator = LocalCoordinator(clock=lambda: now[0], keep=10.0)
    for i in range(3):
        await coordinator.record_submitted(f"j{i}", kind="gpt4o", product="gpt4o", lease=None)
        await coordinator.settle(f"j{i}", status="SUCCESS", answer="{}")
    now[0] = 11.0
    await coordinator.record_submitted("late", kind="gpt4o", product="gpt4o", lease=None)
    await coordinator.settle("late", status="SUCCESS", answer="{}")
    assert list(coordinator._records) == ["late"]


async def test_opened_once_under_concurrency_and_closed_with_the_client() -> None:
    """Many first uses at once open the coordinator once, with the key; aclose closes it."""
    coordinator = Watched()
    client = AsyncTTAPI(api_key="tt-key-for-open", coordinator=coordinator)
    got = await asyncio.gather(*(client.open_coordinator() for _ in range(10)))
    assert all(each is coordinator for each in got)
    assert [key for key, _ in coordinator.opens] == ["tt-key-for-open"]
    assert coordinator.opens[0][1] is not None  # the watcher's listener
    await client.aclose()
    assert coordinator.closes == 1


async def test_unopened_coordinator_is_not_closed() -> None:
    """A client that never used its coordinator does not close it."""
    coordinator = Watched()
    await AsyncTTAPI(api_key="k", coordinator=coordinator).aclose()
    assert coordinator.closes == 0


async def test_one_coordinator_serves_one_open_client() -> None:
    """A coordinator given to a second open client raises; once the first closes, it may."""
    coordinator = LocalCoordinator()
    first = AsyncTTAPI(api_key="k", coordinator=coordinator)
    with pytest.raises(ValueError, match="another open AsyncTTAPI"):
        AsyncTTAPI(api_key="k", coordinator=coordinator)
    await first.aclose()
    second = AsyncTTAPI(api_key="k", coordinator=coordinator)
    assert second.coordinator is coordinator
    await second.aclose()


@pytest.mark.fake_ttapi(max_jobs_in_progress=3)
async def test_concurrent_submits_wait_for_leases_instead_of_collecting_499s(
    fake_ttapi: FakeTTAPI, clock: ManualClock
) -> None:
    """20 submits at once over a limit of 3: after the first refusals, none sees a 499.

    The limit does not grow within the test (``grow_every``): growing is the limiter
    probing for more room, which costs one refusal per probe by design.
    """
    coordinator = Watched(LimitSettings(grow_every=10_000))
    async with fake_ttapi.client(coordinator=coordinator) as client:
        client.watcher.configure(clock=clock, max_per_second=None)

        def wave(tag: str) -> list[Callable[[], Awaitable[Any]]]:
            return [
                lambda i=i: client.gpt4o.submit(prompt=f"{tag} {i}", max_retries=5)
                for i in range(20)
            ]

        first = await run_wave(client, coordinator, clock, wave("first"))
        learned = fake_ttapi.stats().queue_full.get("4o-image", 0)
        second = await run_wave(client, coordinator, clock, wave("second"))
    stats = fake_ttapi.stats()
    assert [type(r).__name__ for r in first + second] == ["JobResult"] * 40
    # Before the limit is known: at most one refusal per lease the initial limit overshoots.
    assert 0 < learned <= LimitSettings().initial - 3
    assert stats.queue_full.get("4o-image", 0) == learned  # none once it is learned
    assert stats.peak_in_progress["4o-image"] <= 3
    assert coordinator.in_progress("gpt4o") == 0  # every settle freed its lease


async def test_lease_timeout_raises_typed_and_sends_nothing(
    fake_ttapi: FakeTTAPI, clock: ManualClock
) -> None:
    """With every lease held, a submit whose lease_timeout runs out sends nothing."""
    coordinator = LocalCoordinator(LimitSettings(initial=1, cap=1))
    async with fake_ttapi.client(coordinator=coordinator) as client:
        client.watcher.configure(clock=clock)
        held = await client.gpt4o.submit(prompt="holds the only lease")
        sent = requests_to(fake_ttapi, SUBMIT_4O)
        with pytest.raises(LeaseTimeoutError) as caught:
            await client.gpt4o.submit(prompt="no room", lease_timeout=0)  # per call
        client.lease_timeout = 0
        with pytest.raises(TimeoutError):
            await client.gpt4o.generate(prompt="no room either")  # the client's setting
        assert caught.value.product == "gpt4o"
        assert requests_to(fake_ttapi, SUBMIT_4O) == sent == 1
        held.cancel()


@pytest.mark.parametrize("bad", ["1", -1, float("nan"), True])
async def test_bad_lease_timeout_sends_nothing(fake_ttapi: FakeTTAPI, bad: Any) -> None:
    """A lease_timeout that is not a number of seconds >= 0 raises before anything is sent."""
    async with fake_ttapi.client() as client:
        with pytest.raises(InvalidRequestError, match="lease_timeout"):
            await client.gpt4o.submit(prompt="x", lease_timeout=bad)
    assert fake_ttapi.stats().requests == 0
    with pytest.raises(InvalidRequestError, match="lease_timeout"):
        AsyncTTAPI(api_key="k", lease_timeout=bad)


@pytest.mark.fake_ttapi(max_jobs_in_progress=1)
async def test_499_without_retries_raises_after_refused(
    fake_ttapi: FakeTTAPI, clock: ManualClock
) -> None:
    """max_retries=0: a 499 shrinks the limit, frees its lease, then raises QueueFullError."""
    coordinator = LocalCoordinator(LimitSettings(initial=4))
    async with fake_ttapi.client(coordinator=coordinator) as client:
        client.watcher.configure(clock=clock)
        fake_ttapi.create_job("someone else's", product="4o-image")
        with pytest.raises(QueueFullError):
            await client.gpt4o.submit(prompt="refused", max_retries=0)
        assert requests_to(fake_ttapi, SUBMIT_4O) == 1
        assert coordinator.current("gpt4o") < 4
        assert coordinator.in_progress("gpt4o") == 0


@pytest.mark.fake_ttapi(banned_words=("forbidden",))
async def test_refused_submit_releases_its_lease(fake_ttapi: FakeTTAPI) -> None:
    """A submit the service refuses (400) gives its lease back and the limit stays."""
    coordinator = LocalCoordinator()
    async with fake_ttapi.client(coordinator=coordinator) as client:
        with pytest.raises(BadRequestError):
            await client.gpt4o.submit(prompt="forbidden words")
    assert coordinator.in_progress("gpt4o") == 0
    assert coordinator.current("gpt4o") == LimitSettings().initial


@pytest.mark.fake_ttapi(faults=[FaultRule("drop_after", "/openai/4o-image/generations", times=1)])
async def test_possibly_submitted_holds_the_lease_a_while(
    fake_ttapi: FakeTTAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A submit that may have gone through keeps its lease, and lets it go later."""
    monkeypatch.setattr(coordination_module, "AMBIGUOUS_HOLD", 0.0)  # the default of new clients
    coordinator = Watched()
    released = asyncio.Event()
    release = coordinator.release_lease

    async def release_and_say(lease: Lease) -> None:
        await release(lease)
        released.set()

    coordinator.release_lease = release_and_say  # type: ignore[method-assign]
    async with fake_ttapi.client(coordinator=coordinator) as client:
        with pytest.raises(Exception) as caught:
            await client.gpt4o.submit(prompt="lost answer")
        assert getattr(caught.value, "possibly_submitted", False)
        assert coordinator.in_progress("gpt4o") == 1  # held: the job may be running
        await asyncio.wait_for(released.wait(), 10)
        assert coordinator.in_progress("gpt4o") == 0


async def test_settled_job_frees_its_lease_and_records_its_end(
    client: AsyncTTAPI, clock: ManualClock
) -> None:
    """A job's lease is bound to it while it runs and freed by the poll that sees it end."""
    coordinator = client.coordinator
    assert isinstance(coordinator, LocalCoordinator)
    job = await client.gpt4o.submit(prompt="a fox")
    record = await coordinator.get_record(job.id)
    assert record is not None and record.kind == "gpt4o" and not record.settled
    assert coordinator.in_progress("gpt4o") == 1
    clock.advance(11)
    result = await job
    record = await coordinator.get_record(job.id)
    assert record is not None and record.status == "SUCCESS"
    assert coordinator.in_progress("gpt4o") == 0 and result.job_id == job.id


async def test_record_settled_elsewhere_resolves_without_a_fetch(
    client: AsyncTTAPI, fake_ttapi: FakeTTAPI, clock: ManualClock
) -> None:
    """A job whose end another worker recorded resolves from the record, with no fetch."""
    job = await client.gpt4o.submit(prompt="settled elsewhere")
    answer = f'{{"jobId": "{job.id}", "status": "FAILED", "message": "first"}}'
    await client.coordinator.settle(job.id, status="FAILED", answer=answer)
    with pytest.raises(JobFailedError, match="first"):
        await job
    clock.advance(11)
    await client.watcher.idle()
    assert requests_to(fake_ttapi, "POST /openai/4o-image/fetch") == 0


async def test_first_terminal_status_wins(client: AsyncTTAPI, clock: ManualClock) -> None:
    """A poll that sees SUCCESS after FAILED was recorded resolves FAILED: the first wins."""
    job = await client.gpt4o.submit(prompt="two answers")
    coordinator = client.coordinator
    assert isinstance(coordinator, LocalCoordinator)
    listener, coordinator._listener = coordinator._listener, None  # no push: the poll finds out
    answer = f'{{"jobId": "{job.id}", "status": "FAILED", "message": "recorded first"}}'
    await coordinator.settle(job.id, status="FAILED", answer=answer)
    coordinator._listener = listener
    clock.advance(11)
    with pytest.raises(JobFailedError, match="recorded first"):
        await job


async def test_resume_of_a_settled_job_costs_no_fetch(
    client: AsyncTTAPI, fake_ttapi: FakeTTAPI, clock: ManualClock
) -> None:
    """Resuming a job whose end is recorded resolves it from the record, with no fetch."""
    job = await client.gpt4o.submit(prompt="a fox")
    clock.advance(11)
    first = await job
    fetched = requests_to(fake_ttapi, "POST /openai/4o-image/fetch")
    again = client.gpt4o.resume(job.id)
    await client.watcher.idle()
    result = await again
    assert (result.job_id, result.image_url) == (first.job_id, first.image_url)
    assert requests_to(fake_ttapi, "POST /openai/4o-image/fetch") == fetched == 1


async def test_resume_of_an_unrecorded_job_fetches_it(
    client: AsyncTTAPI, fake_ttapi: FakeTTAPI, clock: ManualClock
) -> None:
    """A job no coordinator knows (submitted elsewhere, before) is fetched as always."""
    job_id = fake_ttapi.create_job("from another life")
    clock.advance(11)
    result = await client.gpt4o.resume(job_id)
    assert result.job_id == job_id
    assert requests_to(fake_ttapi, "POST /openai/4o-image/fetch") == 1


class Rated(LocalCoordinator):
    """A LocalCoordinator that counts the turns taken under its rate."""

    turns = 0

    async def rate(self) -> None:
        self.turns += 1
        await super().rate()


@pytest.mark.parametrize(("rate", "turns"), [(1000.0, 2), (None, 0)])
async def test_each_request_takes_a_turn_under_a_shared_rate(
    fake_ttapi: FakeTTAPI, clock: ManualClock, rate: float | None, turns: int
) -> None:
    """With a shared rate the submit and each poll wait their turn; without one, neither asks."""
    coordinator = Rated(LimitSettings(rate=rate))
    async with fake_ttapi.client(coordinator=coordinator) as client:
        client.watcher.configure(clock=clock)
        job = await client.gpt4o.submit(prompt="paced")
        clock.advance(11)
        await job
    assert requests_to(fake_ttapi, "POST /openai/4o-image/fetch") == 1
    assert coordinator.turns == turns


async def test_job_given_up_frees_its_lease_after_the_hold(client: AsyncTTAPI) -> None:
    """A job cancelled here (it may still run at the service) gives its lease back after a while."""
    client._coordination.ambiguous_hold = 0.0
    coordinator = client.coordinator
    assert isinstance(coordinator, LocalCoordinator)
    released = asyncio.Event()
    release = coordinator.release_lease

    async def release_and_say(lease: Lease) -> None:
        await release(lease)
        released.set()

    coordinator.release_lease = release_and_say  # type: ignore[method-assign]
    job = await client.gpt4o.submit(prompt="not wanted")
    assert coordinator.in_progress("gpt4o") == 1
    job.cancel()
    await asyncio.wait_for(released.wait(), 10)
    assert coordinator.in_progress("gpt4o") == 0


async def test_a_fake_on_scaled_time_scales_the_hold_of_an_ambiguous_lease() -> None:
    """On an emulator whose jobs run 100x faster, a lease whose submit may have gone through
    is held 100x shorter: the hold stands for a job's run at the service."""
    async with FakeTTAPI(time_scale=0.01) as fake, fake.client() as client:
        assert client._coordination.ambiguous_hold == pytest.approx(
            coordination_module.AMBIGUOUS_HOLD * 0.01
        )
        await client._coordination.ready()
        loop = asyncio.get_running_loop()
        client._coordination.hold(Lease("gpt4o", "t", 0))
        (handle,) = client._coordination._held.values()
        assert handle.when() - loop.time() <= coordination_module.AMBIGUOUS_HOLD * 0.01


async def test_close_keeps_the_leases_of_running_jobs(client: AsyncTTAPI) -> None:
    """Jobs still running when the client closes are not given up: their leases stay."""
    coordinator = client.coordinator
    assert isinstance(coordinator, LocalCoordinator)
    await client.gpt4o.submit(prompt="still running")
    await client.aclose()
    assert coordinator.in_progress("gpt4o") == 1

"""Two clients on one Redis namespace: a callback on one worker resolves the other's job."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from _client_workers import Workers
from _client_workers import workers as workers
from _fake_support import requests_to

from ttapi_async import JobFailedError
from ttapi_async.testing import Duration, FakeTTAPI, ManualClock

pytestmark = pytest.mark.fake_ttapi(clock=ManualClock(), job_duration=Duration.fixed(20))

FETCH_4O = "POST /openai/4o-image/fetch"


def callback_body(job_id: str) -> bytes:
    return json.dumps({"jobId": job_id, "status": "SUCCESS", "data": {"quota": "2"}}).encode()


async def test_every_worker_derives_the_same_hook_url(workers: Workers) -> None:
    """Both workers' receivers read one token from the coordinator: the same hook URL."""
    assert await workers.hook_a.start() == await workers.hook_b.start()
    assert workers.hook_a.token not in repr(workers.hook_a)


async def test_callback_on_b_resolves_a_with_one_fetch(
    workers: Workers, fake_ttapi: FakeTTAPI
) -> None:
    """The service calls B back for A's job: B's one fetch resolves A's await, A fetches nothing."""
    job = await workers.a.gpt4o.submit(prompt="a fox", hook=True)
    fake_ttapi.finish_job(job.id)
    await fake_ttapi.drain_hooks()  # delivered to B's server
    result = await asyncio.wait_for(job.wait(), 10)
    assert result.job_id == job.id and result.image_url
    assert requests_to(fake_ttapi, FETCH_4O) == 1
    assert workers.hook_b.accepted == 1


async def test_replayed_callbacks_on_b_cost_one_fetch(
    workers: Workers, fake_ttapi: FakeTTAPI
) -> None:
    """Many callbacks for A's job, at once and after its end, make one confirming fetch."""
    job = await workers.a.gpt4o.submit(prompt="a fox", hook=True)
    fake_ttapi.finish_job(job.id)
    token = await workers.hook_b.start()
    query = {"token": workers.hook_b.token}
    assert token.endswith(query["token"])
    answers = await asyncio.gather(
        *(workers.hook_b.handle(query, callback_body(job.id)) for _ in range(10))
    )
    assert {code for code, _ in answers} == {200}
    await asyncio.wait_for(job.wait(), 10)
    late = await workers.hook_b.handle(query, callback_body(job.id))
    assert late[0] == 200
    assert requests_to(fake_ttapi, FETCH_4O) == 1


async def test_callback_for_a_job_nobody_recorded_is_404(workers: Workers) -> None:
    """A callback for a job no worker recorded is refused, as in one process."""
    await workers.hook_b.start()
    code, _ = await workers.hook_b.handle({"token": workers.hook_b.token}, callback_body("nope"))
    assert code == 404


async def test_first_terminal_status_wins_across_workers(
    workers: Workers, fake_ttapi: FakeTTAPI
) -> None:
    """B records A's job FAILED first: A resolves FAILED without a fetch, whatever follows."""
    job = await workers.a.gpt4o.submit(prompt="a fox")
    answer = json.dumps({"jobId": job.id, "status": "FAILED", "message": "B saw it first"})
    settled = await workers.b.coordinator.settle(job.id, status="FAILED", answer=answer)
    assert settled.won
    with pytest.raises(JobFailedError, match="B saw it first"):
        await asyncio.wait_for(job.wait(), 10)
    later: Any = await workers.a.coordinator.settle(job.id, status="SUCCESS", answer="{}")
    assert not later.won and later.record.status == "FAILED"
    assert requests_to(fake_ttapi, FETCH_4O) == 0


async def test_a_callback_on_the_owner_costs_one_fetch_and_no_claim(
    workers: Workers, fake_ttapi: FakeTTAPI
) -> None:
    """The owner's own callback: its one fetch, then SETTLE; no record read, no claim."""
    from _counting import Commands

    job = await workers.a.gpt4o.submit(prompt="a fox")
    fake_ttapi.finish_job(job.id)
    await workers.hook_a.start()
    commands = Commands(workers.a.coordinator)
    code, _ = await workers.hook_a.handle({"token": workers.hook_a.token}, callback_body(job.id))
    assert code == 200
    await asyncio.wait_for(job.wait(), 10)
    assert dict(commands.counts) == {"SETTLE": 1}
    assert requests_to(fake_ttapi, FETCH_4O) == 1


async def test_a_claim_held_by_another_worker_spares_the_owners_fetch(
    workers: Workers, fake_ttapi: FakeTTAPI
) -> None:
    """B claimed A's job: a callback that reaches A too makes no fetch; B's settle resolves A."""
    from _counting import on_push

    job = await workers.a.gpt4o.submit(prompt="a fox")
    claimed = on_push(workers.a.coordinator, "claim")
    assert await workers.b.coordinator.claim_confirm(job.id)
    await asyncio.wait_for(claimed.wait(), 10)
    polled = asyncio.Event()
    coordination = workers.a._coordination
    before_poll = coordination.before_poll

    async def noting(job_id: str, last: Any) -> Any:
        try:
            return await before_poll(job_id, last)
        finally:
            polled.set()

    coordination.before_poll = noting  # type: ignore[method-assign]
    await workers.hook_a.start()
    code, _ = await workers.hook_a.handle({"token": workers.hook_a.token}, callback_body(job.id))
    assert code == 200
    await asyncio.wait_for(polled.wait(), 10)  # the callback's poll ran, and did not fetch
    assert requests_to(fake_ttapi, FETCH_4O) == 0
    answer = json.dumps({"jobId": job.id, "status": "SUCCESS", "data": {"imageUrl": "u"}})
    await workers.b.coordinator.settle(job.id, status="SUCCESS", answer=answer)
    assert (await asyncio.wait_for(job.wait(), 10)).image_url == "u"
    assert requests_to(fake_ttapi, FETCH_4O) == 0


async def test_a_callback_elsewhere_reads_and_claims_in_one_round_trip(
    workers: Workers, fake_ttapi: FakeTTAPI
) -> None:
    """B's callback for A's job: one script reads the record and takes the claim, then the
    fetch, then SETTLE (before: HGETALL, then CLAIM)."""
    from _counting import Commands

    job = await workers.a.gpt4o.submit(prompt="a fox")
    fake_ttapi.finish_job(job.id)
    await workers.hook_b.start()
    commands = Commands(workers.b.coordinator)
    code, _ = await workers.hook_b.handle({"token": workers.hook_b.token}, callback_body(job.id))
    assert code == 200
    await asyncio.wait_for(job.wait(), 10)
    await commands.answered_at_least("SETTLE", 1)
    assert dict(commands.counts) == {"CLAIM_RECORD": 1, "SETTLE": 1}
    assert requests_to(fake_ttapi, FETCH_4O) == 1


async def test_a_callback_elsewhere_for_a_settled_job_claims_nothing(
    workers: Workers, fake_ttapi: FakeTTAPI
) -> None:
    """A's job settled: B's late callback makes no fetch and leaves no claim behind."""
    job = await workers.a.gpt4o.submit(prompt="a fox")
    answer = json.dumps({"jobId": job.id, "status": "SUCCESS", "data": {"imageUrl": "u"}})
    await workers.a.coordinator.settle(job.id, status="SUCCESS", answer=answer)
    await workers.hook_b.start()
    code, _ = await workers.hook_b.handle({"token": workers.hook_b.token}, callback_body(job.id))
    assert code == 200
    coordinator = workers.b.coordinator
    assert await coordinator._redis().exists(coordinator.keys("confirm", job.id)) == 0
    assert requests_to(fake_ttapi, FETCH_4O) == 0

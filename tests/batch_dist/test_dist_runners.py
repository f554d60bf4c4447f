"""Shared batches in one process: two runners on one batch, the claim, a dead runner's items."""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path
from typing import Any

import pytest

from ttapi_async.batch import (
    BatchOutcome,
    BatchRequest,
    RedisDurabilityError,
    SharedBatchRunner,
    SharedInputChangedError,
    run_batch,
)
from ttapi_async.batch._shared import SharedJournal, Store
from ttapi_async.batch._shared_plan import count_states, plan_batch
from ttapi_async.testing import Duration, FakeTTAPI

SCALE = 0.002  # a 10-second job takes 20 ms
TTL = 0.6  # the batch heartbeat key's life: beats every 0.2 s


def prompts(n: int, prefix: str = "cat") -> list[BatchRequest]:
    return [BatchRequest(f"{prefix}-{i}", "gpt4o", {"prompt": f"{prefix} #{i}"}) for i in range(n)]


async def collect(client: Any, requests: list[BatchRequest], out: Path, **kw: Any) -> list[Any]:
    kw.setdefault("name", "cats")
    kw.setdefault("accept_risk", True)
    from ttapi_async.coordination import RedisCoordinator

    shared = isinstance(client.coordinator, RedisCoordinator)
    if kw.get("name") is None or "coordinator" in kw or not shared:
        return [o async for o in run_batch(client, requests, out_dir=out, **kw)]
    # Fast batch beats, while the coordinator's own stay rare (see the fixture).
    runner = SharedBatchRunner(client, out, ttl=TTL, **kw)
    return [o async for o in runner.run(requests)]


def store_of(client: Any, name: str = "cats") -> Store:
    coordinator = client.coordinator
    return Store(coordinator.redis, coordinator.keys("batch", name))


async def dead_runner(
    client: Any, requests: list[BatchRequest], tmp_path: Path, *, holding: int
) -> tuple[Store, SharedJournal, list[str]]:
    """Plan the batch as runner "dead", which joins and is handed ``holding`` items (the
    test then says what it did with them before its heartbeat ran out)."""
    await client.open_coordinator()
    store = store_of(client)
    await plan_batch(store, requests, name="cats", planner="dead")
    dead = SharedJournal(store, "dead", out=str(tmp_path / "dead"), host="h")
    assert await dead.beat(60.0)
    held = [r.id for r in await dead.fetch(("pending",), -1, chunk=holding)]
    return store, dead, held


async def test_two_runners_do_every_item_once(shared_clients: Any, tmp_path: Path) -> None:
    """Two runners on one 50-item batch: every item done, each submitted exactly once."""
    requests = prompts(50)
    async with FakeTTAPI(time_scale=SCALE, job_duration=Duration.uniform(5, 15)) as fake:
        a, b = await shared_clients(fake), await shared_clients(fake)
        got_a, got_b = await asyncio.gather(
            collect(a, requests, tmp_path / "a", concurrency=5),
            collect(b, requests, tmp_path / "b", concurrency=5),
        )
        submissions = fake.stats().submissions_by_prompt
        totals, _ = await count_states(store_of(a))
    outcomes: list[BatchOutcome] = got_a + got_b
    assert sorted(o.id for o in outcomes) == sorted(r.id for r in requests)
    assert {o.state for o in outcomes} == {"done"}
    assert got_a and got_b  # both took a share
    assert len(submissions) == 50 and set(submissions.values()) == {1}
    assert totals["done"] == 50
    for outcome in got_b:
        assert outcome.files[0].parent == tmp_path / "b"  # images land where they settle


async def test_claim_is_a_compare_and_set(shared_clients: Any, tmp_path: Path) -> None:
    """Only the runner an item was handed to claims it, and only once."""
    async with FakeTTAPI(time_scale=SCALE) as fake:
        client = await shared_clients(fake)
        await client.open_coordinator()
        store = store_of(client)
        await plan_batch(store, prompts(3), name="cats", planner="a")
        a = SharedJournal(store, "a", out=str(tmp_path), host="h")
        b = SharedJournal(store, "b", out=str(tmp_path), host="h")
        rows = await a.fetch(("pending",), -1, chunk=1)
        item = rows[0].id
        assert not await b.mark_submitting(item)
        assert await a.mark_submitting(item)
        assert not await a.mark_submitting(item)
        assert [r.id for r in await b.fetch(("pending",), -1)] == ["cat-1", "cat-2"]


async def test_a_dead_runners_items_are_taken_over_by_state(
    shared_clients: Any, tmp_path: Path
) -> None:
    """Submitted items are resumed by job id, pending ones re-queued, submitting ones unknown."""
    requests = prompts(6)
    async with FakeTTAPI(time_scale=SCALE, job_duration=Duration.uniform(5, 15)) as fake:
        client = await shared_clients(fake)
        store, dead, held = await dead_runner(client, requests, tmp_path, holding=3)
        assert held == ["cat-0", "cat-1", "cat-2"]
        job = await client.gpt4o.submit(prompt="cat #0", max_retries=0)
        assert await dead.mark_submitting("cat-0")
        await dead.mark_submitted("cat-0", job.id)
        assert await dead.mark_submitting("cat-1")  # sent, maybe: its answer never came
        job.cancel()
        await store.redis.delete(store.key("alive", "dead"))  # its heartbeat ran out

        taker = await shared_clients(fake)
        outcomes = await collect(taker, requests, tmp_path / "taker")
        submissions = fake.stats().submissions_by_prompt
        totals, runners = await count_states(store)
    states = {o.id: o.state for o in outcomes}
    # cat-1: not sent again, and reported (once) by the taker that marked it
    assert states == {f"cat-{i}": "done" if i != 1 else "unknown" for i in range(6)}
    [lost] = [o for o in outcomes if o.id == "cat-1"]
    assert "died while submitting" in (lost.error or "")
    assert submissions == collections.Counter({f"cat #{i}": 1 for i in range(6) if i != 1})
    assert totals["done"] == 5 and totals["unknown"] == 1
    assert "dead" not in runners or runners["dead"]["done"] == 0


async def test_two_names_do_not_interfere(shared_clients: Any, tmp_path: Path) -> None:
    """Two batches with the same ids under different names in one Redis each do their own."""
    dogs = [
        BatchRequest(r.id, "gpt4o", {"prompt": "dog" + r.params["prompt"]}) for r in prompts(20)
    ]
    async with FakeTTAPI(time_scale=SCALE, job_duration=Duration.uniform(5, 15)) as fake:
        a, b = await shared_clients(fake), await shared_clients(fake)
        got_a, got_b = await asyncio.gather(
            collect(a, prompts(20), tmp_path / "a", name="cats"),
            collect(b, dogs, tmp_path / "b", name="dogs"),
        )
        submissions = fake.stats().submissions_by_prompt
        cats, _ = await count_states(store_of(a, "cats"))
        dogs_done, _ = await count_states(store_of(a, "dogs"))
    assert len(got_a) == len(got_b) == 20
    assert {o.state for o in got_a + got_b} == {"done"}
    assert len(submissions) == 40 and set(submissions.values()) == {1}
    assert cats["done"] == dogs_done["done"] == 20


async def test_a_changed_input_is_refused_naming_the_ids_and_force_accepts_it(
    shared_clients: Any, tmp_path: Path
) -> None:
    """Same name, changed input: the changed and removed ids are named; --force redoes the
    changed item, forgets the removed one, adds the new one; the rest are not sent again."""
    async with FakeTTAPI(time_scale=SCALE, job_duration=Duration.uniform(5, 15)) as fake:
        client = await shared_clients(fake)
        assert len(await collect(client, prompts(4), tmp_path / "a")) == 4
        again = await collect(client, prompts(4), tmp_path / "a")  # same input: resumes
        edited = [*prompts(3), BatchRequest("cat-2", "gpt4o", {"prompt": "a changed cat"})]
        edited = [edited[0], edited[1], edited[3], BatchRequest("new", "gpt4o", {"prompt": "n"})]
        with pytest.raises(SharedInputChangedError) as caught:
            await collect(client, edited, tmp_path / "a")
        forced = await collect(client, edited, tmp_path / "a", force=True)
        submissions = fake.stats().submissions_by_prompt
        totals, _ = await count_states(store_of(client))
    assert again == []
    assert caught.value.changed == ("cat-2",) and caught.value.removed == ("cat-3",)
    assert "batch 'cats'" in str(caught.value) and "--force" in str(caught.value)
    assert sorted(o.id for o in forced) == ["cat-2", "new"]
    assert submissions["a changed cat"] == 1 and submissions["cat #0"] == 1
    assert totals["done"] == 4 and sum(totals.values()) == 4


async def test_retry_failed_queues_failed_items_again(shared_clients: Any, tmp_path: Path) -> None:
    """Failed items stay failed on a re-run, and are submitted again with retry_failed."""
    async with FakeTTAPI(time_scale=SCALE, job_failure_rate=1.0) as fake:
        client = await shared_clients(fake)
        first = await collect(client, prompts(3), tmp_path / "a")
        fake.job_failure_rate = 0.0
        assert await collect(client, prompts(3), tmp_path / "a") == []
        retried = await collect(client, prompts(3), tmp_path / "a", retry_failed=True)
    assert {o.state for o in first} == {"failed"}
    assert {o.state for o in retried} == {"done"} and len(retried) == 3


async def test_a_redis_without_fsync_is_refused_unless_the_risk_is_accepted(
    shared_clients: Any, tmp_path: Path
) -> None:
    """RedisDurabilityError (nothing sent) unless accept_risk; the error says what it saw."""
    async with FakeTTAPI(time_scale=SCALE) as fake:
        client = await shared_clients(fake)
        with pytest.raises(RedisDurabilityError) as caught:
            await collect(client, prompts(2), tmp_path / "a", accept_risk=False)
        assert fake.stats().submissions_by_prompt == {}
    assert caught.value.appendonly == "no"
    assert "appendfsync" in str(caught.value) and "accept_risk=True" in str(caught.value)


async def test_durable_redis_is_accepted(
    durable_redis: Any, shared_clients: Any, tmp_path: Path
) -> None:
    """appendonly yes + appendfsync always: the batch runs without accept_risk."""
    async with FakeTTAPI(time_scale=SCALE, job_duration=Duration.uniform(5, 15)) as fake:
        client = await shared_clients(fake, url=durable_redis.url)
        got = await collect(client, prompts(2), tmp_path / "a", accept_risk=False)
    assert {o.state for o in got} == {"done"}


async def test_run_batch_refuses_what_cannot_be_shared(shared_clients: Any, tmp_path: Path) -> None:
    """A coordinator without a name, another coordinator, a bad name: ValueError, nothing sent."""
    from ttapi_async.coordination import LocalCoordinator

    async with FakeTTAPI(time_scale=SCALE) as fake:
        client = await shared_clients(fake)
        with pytest.raises(ValueError, match="needs a name"):
            await collect(client, prompts(1), tmp_path / "a", name=None,
                          coordinator=client.coordinator)  # fmt: skip
        with pytest.raises(ValueError, match="its client's coordinator"):
            await collect(client, prompts(1), tmp_path / "a", coordinator=LocalCoordinator())
        with pytest.raises(ValueError, match="batch name"):
            await collect(client, prompts(1), tmp_path / "a", name="no spaces")
        async with fake.client() as local:
            with pytest.raises(ValueError, match="needs a RedisCoordinator"):
                await collect(local, prompts(1), tmp_path / "b")
        assert fake.stats().submissions_by_prompt == {}


async def test_a_runner_taken_over_is_fenced_and_stops(shared_clients: Any, tmp_path: Path) -> None:
    """A runner found in the taken-over set gets no items and stops with a rejoin hint."""
    async with FakeTTAPI(time_scale=SCALE) as fake:
        client = await shared_clients(fake)
        runner = SharedBatchRunner(client, tmp_path / "a", name="cats", accept_risk=True, ttl=TTL)
        await runner.aplan(prompts(3))
        assert runner.store is not None and runner._shared is not None
        await runner.store.redis.sadd(runner.store.key("gone"), runner._shared.runner)
        outcomes = [o async for o in runner.run()]
        assert fake.stats().submissions_by_prompt == {}
    assert outcomes == []
    assert runner.stats.stopped_reason is not None
    assert "taken over" in runner.stats.stopped_reason
    assert "run the same command again" in runner.stats.stopped_reason


async def test_journal_reads_and_notes(shared_clients: Any, tmp_path: Path) -> None:
    """aget reads an item (None if unknown), note records an error, acounts counts the held."""
    async with FakeTTAPI(time_scale=SCALE) as fake:
        client = await shared_clients(fake)
        await client.open_coordinator()
        store = store_of(client)
        await plan_batch(store, prompts(2), name="cats", planner="a")
        journal = SharedJournal(store, "a", out=str(tmp_path), host="h")
        [row] = await journal.fetch(("pending",), -1, chunk=1)
        assert await journal.fetch(("submitted",), -1) == []
        assert await journal.mark_submitting(row.id)
        await journal.mark_submitted(row.id, "job-1")
        await journal.note(row.id, "still running at the deadline")
        got = await journal.aget(row.id)
        counts = await journal.acounts()
        missing = await journal.aget("nope")
        await journal.drain()
        journal.close()
    assert got is not None and got.job_id == "job-1" and got.state == "submitted"
    assert got.error == "still running at the deadline"
    assert counts["submitted"] == 1 and sum(counts.values()) == 1
    assert missing is None


async def test_shared_runner_plans_only_through_redis(shared_clients: Any, tmp_path: Path) -> None:
    """plan() is refused (it would open a local journal); run() needs requests or aplan()."""
    async with FakeTTAPI(time_scale=SCALE) as fake:
        client = await shared_clients(fake)
        runner = SharedBatchRunner(client, tmp_path, name="cats", accept_risk=True)
        with pytest.raises(TypeError, match="aplan"):
            runner.plan(prompts(1))
        with pytest.raises(ValueError, match="aplan"):
            [o async for o in runner.run()]


async def test_redis_lost_mid_run_stops_the_runner_with_a_resume_hint(
    durable_redis: Any, shared_clients: Any, tmp_path: Path
) -> None:
    """Redis killed after the first outcome: the runner stops, store_down says how to resume."""
    async with FakeTTAPI(time_scale=SCALE, job_duration=Duration.uniform(5, 15)) as fake:
        client = await shared_clients(fake, url=durable_redis.url)
        runner = SharedBatchRunner(client, tmp_path / "a", name="cats", ttl=TTL, concurrency=2)
        seen = []
        async for outcome in runner.run(prompts(40)):
            seen.append(outcome)
            if len(seen) == 1:
                durable_redis.kill()
    assert 1 <= len(seen) < 40
    assert runner.store_down is not None and runner.store_down.startswith("Redis unreachable")
    assert "run the same command again" in runner.store_down
    assert runner.stopping and runner.final_counts is None

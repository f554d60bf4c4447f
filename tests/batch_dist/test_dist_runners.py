"""Shared batches in one process: two runners on one batch, the claim, a dead runner's items."""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path
from typing import Any

from ttapi_async.batch import BatchOutcome, BatchRequest, run_batch
from ttapi_async.batch._shared import SharedJournal, Store
from ttapi_async.batch._shared_plan import count_states, plan_batch
from ttapi_async.testing import Duration, FakeTTAPI

SCALE = 0.002  # a 10-second job takes 20 ms


def prompts(n: int, prefix: str = "cat") -> list[BatchRequest]:
    return [BatchRequest(f"{prefix}-{i}", "gpt4o", {"prompt": f"{prefix} #{i}"}) for i in range(n)]


async def collect(client: Any, requests: list[BatchRequest], out: Path, **kw: Any) -> list[Any]:
    kw.setdefault("name", "cats")
    kw.setdefault("accept_risk", True)
    return [o async for o in run_batch(client, requests, out_dir=out, **kw)]


def store_of(client: Any, name: str = "cats") -> Store:
    coordinator = client.coordinator
    return Store(coordinator.redis, coordinator.keys("batch", name))


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
        await client.open_coordinator()
        store = store_of(client)
        await plan_batch(store, requests, name="cats", planner="dead")
        dead = SharedJournal(store, "dead", out=str(tmp_path / "dead"), host="h")
        assert await dead.beat(60.0)
        held = [r.id for r in await dead.fetch(("pending",), -1, chunk=3)]
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
    assert states == {f"cat-{i}": "done" for i in range(6) if i != 1}  # cat-1: not sent again
    assert submissions == collections.Counter({f"cat #{i}": 1 for i in range(6) if i != 1})
    assert totals["done"] == 5 and totals["unknown"] == 1
    assert "dead" not in runners or runners["dead"]["done"] == 0

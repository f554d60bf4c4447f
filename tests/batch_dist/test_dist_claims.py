"""When an item is claimed, and what a takeover reports: in one process, against real Redis.

An item is marked ``submitting`` only once its runner holds a lease of the shared limit and
is about to send; a runner taken over while it waits for one has claimed nothing, so its
item is queued again. The items a taker marks ``unknown`` are yielded as outcomes, once.
No sleeps: the tests wait for events (a lease asked for, an outcome), bounded.
"""

from __future__ import annotations

import asyncio
import collections
from pathlib import Path
from typing import Any

from test_dist_runners import SCALE, TTL, collect, dead_runner, prompts

from ttapi_async.batch import BatchOutcome, SharedBatchRunner
from ttapi_async.batch._shared import SharedJournal
from ttapi_async.batch._shared_plan import count_states
from ttapi_async.coordination import LimitSettings
from ttapi_async.testing import Duration, FakeTTAPI

#: One job in progress for the whole account: a second submit waits for a lease.
ONE = LimitSettings(cap=1, initial=1, minimum=1)


async def test_a_runner_taken_over_while_waiting_for_a_lease_leaves_its_item_pending(
    shared_clients: Any, tmp_path: Path
) -> None:
    """A runner whose item waits for the account's only lease is taken over: the item is
    still pending (queued again, not unknown), the runner sends nothing when the lease comes,
    and the next runner submits it once."""
    async with FakeTTAPI(time_scale=SCALE, job_duration=Duration.uniform(5, 15)) as fake:
        holder = await shared_clients(fake, limits=ONE)
        await holder.open_coordinator()
        lease = await holder.coordinator.acquire_lease("gpt4o")  # the account's one slot
        client = await shared_clients(fake, limits=ONE)
        asked = asyncio.Event()
        acquire = client.coordinator.acquire_lease

        async def asking(product: str, *, timeout: float | None = None) -> Any:
            asked.set()
            return await acquire(product, timeout=timeout)

        client.coordinator.acquire_lease = asking  # type: ignore[method-assign]
        # A long heartbeat: the runner beats (and takes over) only when it starts.
        runner = SharedBatchRunner(client, tmp_path / "a", name="cats", accept_risk=True,
                                   ttl=3600.0, concurrency=1)  # fmt: skip

        await runner.aplan(prompts(1))
        assert runner.store is not None and runner._shared is not None
        store, journal = runner.store, runner._shared
        me, took = journal.runner, asyncio.Event()
        take_over = journal.take_over

        async def taking(lock: float, *, resubmit_unknown: bool = False) -> Any:
            try:
                return await take_over(lock, resubmit_unknown=resubmit_unknown)
            finally:
                took.set()

        journal.take_over = taking  # type: ignore[method-assign]

        async def run() -> list[BatchOutcome]:
            return [o async for o in runner.run()]

        running = asyncio.ensure_future(run())
        await asyncio.wait_for(asyncio.gather(asked.wait(), took.wait()), 30)
        waiting = (await store.redis.hgetall(store.item("cat-0")))["state"]

        # Its heartbeat (and the takeover lock it took when it joined) run out; another
        # runner takes it over while it still waits.
        await store.redis.delete(store.key("alive", me), store.key("taker"))
        taker = SharedJournal(store, "taker", out=str(tmp_path / "t"), host="h")
        assert await taker.beat(60.0)
        requeued, unknown, resumed = await taker.take_over(60.0)
        after = (await store.redis.hgetall(store.item("cat-0")))["state"]

        await holder.coordinator.release_lease(lease)  # room: the lease comes to the runner
        outcomes = await asyncio.wait_for(running, 30)
        sent_by_it = dict(fake.stats().submissions_by_prompt)
        await taker.leave()
        again = await collect(await shared_clients(fake), prompts(1), tmp_path / "b")
        submissions = fake.stats().submissions_by_prompt
        totals, _ = await count_states(store)
    assert waiting == "pending"  # claimed only once it holds its lease
    assert (requeued, unknown, resumed) == (1, [], [])
    assert after == "pending"
    assert outcomes == [] and sent_by_it == {}
    assert runner.stats.claimed_elsewhere == 1 and runner.stats.submit_requests == 0
    assert [(o.id, o.state) for o in again] == [("cat-0", "done")]
    assert submissions == collections.Counter({"cat #0": 1})
    assert totals["done"] == 1 and totals["unknown"] == 0


async def test_the_unknowns_of_a_takeover_are_reported_once_by_their_taker(
    shared_clients: Any, tmp_path: Path
) -> None:
    """A dead runner left two items "submitting": two runners that join both may take over,
    and each unknown item is yielded once, by the one that marked it, with the reason; the
    counts agree with the outcomes."""
    requests = prompts(6)
    async with FakeTTAPI(time_scale=SCALE, job_duration=Duration.uniform(5, 15)) as fake:
        store, dead, held = await dead_runner(
            await shared_clients(fake), requests, tmp_path, holding=2
        )
        for item_id in held:
            assert await dead.mark_submitting(item_id)  # sent, maybe: no answer came
        await store.redis.delete(store.key("alive", "dead"))  # its heartbeat ran out

        b, c = await shared_clients(fake), await shared_clients(fake)
        runners = [
            SharedBatchRunner(x, tmp_path / n, name="cats", accept_risk=True, ttl=TTL)
            for x, n in ((b, "b"), (c, "c"))
        ]

        async def run(runner: SharedBatchRunner) -> list[BatchOutcome]:
            return [o async for o in runner.run(requests)]

        got_b, got_c = await asyncio.gather(*(run(r) for r in runners))
        submissions = fake.stats().submissions_by_prompt
        totals, _ = await count_states(store)
    outcomes: list[BatchOutcome] = got_b + got_c
    unknown = [o for o in outcomes if o.state == "unknown"]
    assert sorted(o.id for o in unknown) == sorted(held) == ["cat-0", "cat-1"]
    assert all("runner dead died while submitting" in (o.error or "") for o in unknown)
    assert sorted(o.id for o in outcomes) == [f"cat-{i}" for i in range(6)]
    assert sum(r.stats.unknown for r in runners) == 2
    assert totals["unknown"] == 2 and totals["done"] == 4
    assert set(submissions) == {f"cat #{i}" for i in range(2, 6)}

"""A shared batch and a web backend on one account: one jobs-in-progress limit, no 499s.

Issue 11, item 5. The pair of tests runs the same load twice: a batch runner and a "web
backend" (a plain client with its own RedisCoordinator) submit at once against a fake that
allows N jobs in progress. On one namespace they share the limit, which starts at the
account's real one (``cap=initial=N``), so the fake refuses nothing. On two namespaces
each thinks it has N to itself: the control, which shows that the fake does refuse that
load (so the first test's zero is sharing's doing, not a load too light to matter).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from test_dist_runners import SCALE, collect, prompts

from ttapi_async import AsyncTTAPI
from ttapi_async._schedule import PollSchedule
from ttapi_async.batch import BatchOutcome
from ttapi_async.coordination import LimitSettings, RedisCoordinator
from ttapi_async.testing import Duration, FakeStats, FakeTTAPI

N = 3  # the account's jobs in progress, at the fake
ITEMS = 12  # the batch's items (M)
WEB_JOBS = 12  # the web backend's concurrent gpt4o jobs (K)
PRODUCT = "4o-image"  # the fake's name of gpt4o's product
#: The shared limit starts (and stays) at the account's: nothing to learn by refusals.
LIMITS = LimitSettings(cap=N, initial=N)
BOUND = 8.0  # real seconds the whole load may take


@contextlib.asynccontextmanager
async def web_backend(fake: FakeTTAPI, url: str, namespace: str) -> AsyncIterator[AsyncTTAPI]:
    """Yield a plain client of the same account with a RedisCoordinator of its own."""
    # Rare coordinator beats, as in the conftest's clients (a close during a beat can hang).
    coordinator = RedisCoordinator(url, namespace=namespace, limits=LIMITS, heartbeat=3600.0)
    async with fake.client(coordinator=coordinator) as client:
        client.watcher.configure(
            schedule=PollSchedule().scaled(fake.time_scale), max_per_second=None
        )
        yield client


async def serve(web: AsyncTTAPI) -> list[Any]:
    """Submit WEB_JOBS jobs at once, as requests would, and await every one."""

    async def one(i: int) -> Any:
        # Retries (no real backoff in tests) let the control's refused submits finish too.
        job = await web.gpt4o.submit(prompt=f"web #{i}", max_retries=50)
        return await job

    return await asyncio.gather(*(one(i) for i in range(WEB_JOBS)))


async def batch_beside_web(
    shared_clients: Any, batch_redis: Any, tmp_path: Path, web_namespace: str
) -> tuple[list[BatchOutcome], list[Any], FakeStats]:
    """Run the batch and the web backend at once; return their outcomes and the fake's counts."""
    fake = FakeTTAPI(
        time_scale=SCALE * 5, job_duration=Duration.fixed(10), max_jobs_in_progress=N
    )  # 100 ms jobs: the two loads overlap for many of them
    async with fake:
        batch = await shared_clients(fake, limits=LIMITS)
        async with web_backend(fake, batch_redis.url, web_namespace) as web:
            # The batch alone would send more than N at once: the lease is what holds it.
            outcomes, results = await asyncio.wait_for(
                asyncio.gather(
                    collect(batch, prompts(ITEMS), tmp_path / "batch", concurrency=2 * N),
                    serve(web),
                ),
                BOUND,
            )
        return outcomes, results, fake.stats()


async def test_a_batch_and_a_web_backend_share_one_limit_without_499s(
    shared_clients: Any, batch_redis: Any, namespace: str, tmp_path: Path
) -> None:
    """Same namespace: every item and job done, at most N in progress, not one 499."""
    outcomes, results, stats = await batch_beside_web(
        shared_clients, batch_redis, tmp_path, namespace
    )
    assert sorted(o.id for o in outcomes) == sorted(r.id for r in prompts(ITEMS))
    assert {o.state for o in outcomes} == {"done"}
    assert len(results) == WEB_JOBS and all(r.image_url for r in results)
    assert stats.peak_in_progress[PRODUCT] == N  # the limit was used, never passed
    assert stats.queue_full.get(PRODUCT, 0) == 0
    assert sum(stats.submissions_by_prompt.values()) == ITEMS + WEB_JOBS  # none sent twice


async def test_control_on_two_namespaces_the_same_load_meets_499s(
    shared_clients: Any, batch_redis: Any, namespace: str, tmp_path: Path
) -> None:
    """Different namespaces (nothing shared): each takes N, so the fake refuses some."""
    outcomes, results, stats = await batch_beside_web(
        shared_clients, batch_redis, tmp_path, namespace + "-web"
    )
    assert stats.queue_full.get(PRODUCT, 0) > 0
    assert stats.peak_in_progress[PRODUCT] == N  # the fake's own cap: the refusals hold it
    assert len(outcomes) == ITEMS and len(results) == WEB_JOBS

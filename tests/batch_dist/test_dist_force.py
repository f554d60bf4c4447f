"""``--force`` on a shared batch: refused while another runner is live, so none pays twice.

The batch is planned and a runner "b" joins it and claims an item (it is submitting it),
straight through the store, against the real redis-server of the fixtures; then the input
changes (cat-0 changed, cat-3 removed, "new" added) and runner "c" re-plans with force.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from ttapi_async.batch import (
    BatchRequest,
    SharedInputChangedError,
    SharedRunnersLiveError,
    SyncReport,
)
from ttapi_async.batch._shared import SharedJournal, Store
from ttapi_async.batch._shared_plan import plan_batch


def prompts(n: int) -> list[BatchRequest]:
    return [BatchRequest(f"cat-{i}", "gpt4o", {"prompt": f"cat #{i}"}) for i in range(n)]


EDITED = [
    BatchRequest("cat-0", "gpt4o", {"prompt": "a changed cat"}),
    *prompts(3)[1:],
    BatchRequest("new", "gpt4o", {"prompt": "a new cat"}),
]


@pytest.fixture
async def store(batch_redis: Any, namespace: str) -> AsyncIterator[Store]:
    client = aioredis.Redis.from_url(batch_redis.url, decode_responses=True)
    try:
        yield Store(client, f"ttapi:{{{namespace}}}:batch:cats")
    finally:
        await client.aclose()


async def runner_b(store: Store) -> SharedJournal:
    """Plan 4 items; runner "b" joins (a live heartbeat), is handed 2 and claims cat-0."""
    await plan_batch(store, prompts(4), name="cats", planner="a")
    b = SharedJournal(store, "b", out="/nowhere/b", host="h")
    assert await b.beat(60.0)
    assert [r.id for r in await b.fetch(("pending",), -1, chunk=2)] == ["cat-0", "cat-1"]
    assert await b.mark_submitting("cat-0")
    return b


async def snapshot(store: Store) -> dict[str, Any]:
    """Return every key of the batch with what it holds (a stream: entries and group)."""
    redis = store.redis
    out: dict[str, Any] = {}
    async for key in redis.scan_iter(match=f"{store.base}:*"):
        kind = await redis.type(key)
        if kind == "hash":
            out[key] = await redis.hgetall(key)
        elif kind == "list":
            out[key] = await redis.lrange(key, 0, -1)
        elif kind == "set":
            out[key] = await redis.smembers(key)
        elif kind == "stream":
            pending = await redis.xpending_range(key, "runners", "-", "+", 100)
            out[key] = (await redis.xrange(key), await redis.xinfo_groups(key),
                        [(p["message_id"], p["consumer"]) for p in pending])  # fmt: skip
        else:
            out[key] = (kind, await redis.get(key))
    return out


async def test_force_with_a_live_runner_is_refused_and_changes_nothing(store: Store) -> None:
    """Runner b is live and submitting cat-0: the forced re-plan raises, naming how many
    runners are live and what to do, and every key of the batch is as it was."""
    await runner_b(store)
    before = await snapshot(store)
    with pytest.raises(SharedRunnersLiveError) as caught:
        await plan_batch(store, EDITED, name="cats", planner="c", force=True)
    assert await snapshot(store) == before
    assert caught.value.live == ("b",) and caught.value.name == "cats"
    assert caught.value.wait is not None and 0 < caught.value.wait <= 60
    text = str(caught.value)
    assert "--force refused: 1 other runner(s) of batch 'cats' are live" in text
    assert "stop them" in text and "declared dead" in text and "\n" not in text


async def test_a_runner_beating_during_the_replan_is_seen(store: Store) -> None:
    """b's heartbeat ran out when c starts planning, and b beats again just before the
    re-plan applies: the check is the one made where the change is made, and refuses."""
    b = await runner_b(store)
    await store.redis.delete(store.key("alive", "b"))
    script = store.script

    async def late_beat(name: str, *args: object) -> Any:
        if name == "REPLAN":
            assert await b.beat(60.0)
        return await script(name, *args)

    store.script = late_beat  # type: ignore[method-assign]
    before = await snapshot(store)
    with pytest.raises(SharedRunnersLiveError):
        await plan_batch(store, EDITED, name="cats", planner="c", force=True)
    after = await snapshot(store)
    del after[store.key("alive", "b")]  # the beat's own key: all else is as it was
    assert after == before


@pytest.mark.parametrize("other", ["dead", "none"])
async def test_force_without_a_live_runner_is_accepted(store: Store, other: str) -> None:
    """b's heartbeat ran out (it is not taken over yet), or no runner ever joined: the
    re-plan redoes cat-0 (out of b's hands), forgets cat-3 and adds "new"."""
    if other == "dead":
        await runner_b(store)
        await store.redis.delete(store.key("alive", "b"))
    else:
        await plan_batch(store, prompts(4), name="cats", planner="a")
    report = await plan_batch(store, EDITED, name="cats", planner="c", force=True)
    redis = store.redis
    assert (report.changed, report.removed, report.added) == (("cat-0",), ("cat-3",), 1)
    cat0 = await redis.hgetall(store.item("cat-0"))
    assert (cat0["state"], cat0["runner"]) == ("pending", "")
    assert "a changed cat" in cat0["params"]
    assert not await redis.exists(store.item("cat-3"))
    assert await redis.lrange(store.key("ids"), 0, -1) == ["cat-0", "cat-1", "cat-2", "new"]
    assert "cat-0" not in await redis.smembers(store.key("held", "b"))
    c = SharedJournal(store, "c", out="/nowhere/c", host="h")
    # queued again for whoever reads the stream next
    assert "cat-0" in [r.id for r in await c.fetch(("pending",), -1, chunk=10)]


@pytest.mark.parametrize("force", [False, True])
async def test_the_same_input_joins_beside_a_live_runner(store: Store, force: bool) -> None:
    """Joining is the normal case: the unchanged input is accepted, with or without force,
    and b keeps what it holds."""
    await runner_b(store)
    report = await plan_batch(store, prompts(4), name="cats", planner="c", force=force)
    assert report == SyncReport(4, 0, (), ())
    assert await store.redis.hget(store.item("cat-0"), "state") == "submitting"


async def test_a_changed_input_without_force_is_the_input_error(store: Store) -> None:
    """Without force a changed input is refused as before, naming the ids (live runner or
    not): the live-runner refusal is force's only."""
    await runner_b(store)
    with pytest.raises(SharedInputChangedError) as caught:
        await plan_batch(store, EDITED, name="cats", planner="c")
    assert caught.value.changed == ("cat-0",) and caught.value.removed == ("cat-3",)


async def test_cli_force_with_a_live_runner_is_one_line_and_exit_2(
    batch_redis: Any, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """ttapi batch --force while runner b is live: one error line, exit 2, nothing sent."""
    from ttapi_async.cli._app import run
    from ttapi_async.coordination import account_id
    from ttapi_async.testing import FakeTTAPI

    monkeypatch.setenv("TTAPI_COORDINATOR_NAMESPACE", namespace)
    monkeypatch.setenv("TTAPI_COORDINATOR", batch_redis.url)
    file = tmp_path / "prompts.txt"
    file.write_text("a cat\nanother cat\n")
    async with FakeTTAPI(time_scale=0.002) as fake:
        client = aioredis.Redis.from_url(batch_redis.url, decode_responses=True)
        try:
            store = Store(client, f"ttapi:{{{namespace}.{account_id(fake.api_key)}}}:batch:cats")
            await plan_batch(store, [BatchRequest("line-1", "gpt4o", {"prompt": "a cat"})],
                             name="cats", planner="a")  # fmt: skip
            assert await SharedJournal(store, "b", out="/nowhere/b", host="h").beat(60.0)
            code = await asyncio.to_thread(run, [
                "--base-url", fake.url, "--api-key", fake.api_key, "batch", str(file),
                "--out", str(tmp_path / "o"), "--name", "cats", "--accept-redis-risk",
                "--force",
            ])  # fmt: skip
            assert fake.stats().submissions_by_prompt == {}
        finally:
            await client.aclose()
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("error:")]
    assert code == 2 and len(lines) == 1
    assert "--force refused: 1 other runner(s) of batch 'cats' are live" in lines[0]

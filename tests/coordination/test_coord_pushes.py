"""What the wake channel carries: the settled record itself, and another worker's claim."""

from __future__ import annotations

import asyncio
from typing import Any

from _counting import Commands, on_push
from conftest import Recorder


async def test_the_wake_up_carries_the_record_the_owner_reads_nothing(
    make_coordinator: Any,
) -> None:
    """B's settle of A's job reaches A's listener with status and answer, and A sends nothing."""
    recorder = Recorder()
    a = await make_coordinator(recorder)
    b = await make_coordinator()
    await a.record_submitted("w1", kind="gpt4o", product="", lease=None)
    commands = Commands(a)
    woken = asyncio.get_running_loop().create_future()
    recorder.on_settled = woken.set_result
    await b.settle("w1", status="SUCCESS", answer='{"jobId": "w1"}')
    record = await asyncio.wait_for(woken, 10)
    assert (record.status, record.answer, record.owner) == (
        "SUCCESS",
        '{"jobId": "w1"}',
        a.worker_id,
    )
    assert record.settled and not commands.counts


async def test_a_wake_up_without_a_readable_record_is_read_back(make_coordinator: Any) -> None:
    """A bare job id (or a payload that does not parse) makes the owner read the record."""
    recorder = Recorder()
    a = await make_coordinator(recorder)
    b = await make_coordinator()
    for job in ("w2", "w3"):
        await a.record_submitted(job, kind="gpt4o", product="", lease=None)
        await b.settle(job, status="FAILED", answer="{}")
    # Pushes of the recorded jobs as an older worker (bare id) and a garbled one would send.
    recorder.settled.clear()
    a._pending.update({"w2", "w3"})
    done = asyncio.Event()
    recorder.on_settled = lambda _: len(recorder.settled) == 2 and done.set()
    a._on_push(a.keys("wake", a.worker_id), "w2")
    a._on_push(a.keys("wake", a.worker_id), "settled\nw3\nnot json")
    await asyncio.wait_for(done.wait(), 10)
    assert sorted(r.job_id for r in recorder.settled) == ["w2", "w3"]
    assert {r.status for r in recorder.settled} == {"FAILED"}


async def test_a_claim_is_pushed_to_the_owner_and_so_is_its_release(
    make_coordinator: Any,
) -> None:
    """The owner hears of B's confirming claim on its job, and hears when B gives it back."""
    a = await make_coordinator()
    b = await make_coordinator()
    await a.record_submitted("w4", kind="gpt4o", product="", lease=None)
    claimed, released = on_push(a, "claim"), on_push(a, "unclaim")
    assert await b.claim_confirm("w4")
    await asyncio.wait_for(claimed.wait(), 10)
    assert a.confirming_elsewhere("w4") and not b.confirming_elsewhere("w4")
    await b.release_confirm("w4")
    await asyncio.wait_for(released.wait(), 10)
    assert not a.confirming_elsewhere("w4")


async def test_a_pushed_claim_lapses_with_the_claim(make_coordinator: Any) -> None:
    """A claim whose holder never answered stops sparing the owner's polls after CONFIRM_TTL."""
    from ttapi_async.coordination._local import CONFIRM_TTL

    now = [1000.0]
    a = await make_coordinator(clock=lambda: now[0])
    b = await make_coordinator()
    await a.record_submitted("w5", kind="gpt4o", product="", lease=None)
    claimed = on_push(a, "claim")
    assert await b.claim_confirm("w5")
    await asyncio.wait_for(claimed.wait(), 10)
    now[0] += CONFIRM_TTL + 1
    assert not a.confirming_elsewhere("w5")
    assert "w5" not in a._claimed

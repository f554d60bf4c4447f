"""Job records, first-terminal-wins, wake-ups and the single-flight claim, on a real Redis."""

from __future__ import annotations

import asyncio
from typing import Any

from conftest import API_KEY, Recorder

from ttapi_async.coordination import _scripts


async def test_record_holds_owner_kind_and_submitted_time(make_coordinator: Any) -> None:
    """A recorded job reads back with owner, kind, product and a submit time on Redis's clock."""
    coordinator = await make_coordinator()
    before = await coordinator.server_time()
    await coordinator.record_submitted("job-1", kind="gpt4o", product="4o", lease=None)
    record = await coordinator.get_record("job-1")
    assert record is not None
    assert (record.owner, record.kind, record.product, record.status) == (
        coordinator.worker_id, "gpt4o", "4o", "pending",
    )  # fmt: skip
    assert before - 1 <= record.submitted_at <= await coordinator.server_time()
    assert not record.settled


async def test_first_terminal_status_wins(make_coordinator: Any) -> None:
    """A second settle of the same job is a no-op that reports the first status and answer."""
    a = await make_coordinator()
    b = await make_coordinator()
    await a.record_submitted("job-2", kind="gpt4o", product="4o", lease=None)
    first = await a.settle("job-2", status="SUCCESS", answer='{"url": 1}')
    second = await b.settle("job-2", status="FAILED", answer='{"url": 2}')
    assert first.won and not second.won
    assert (second.record.status, second.record.answer) == ("SUCCESS", '{"url": 1}')
    record = await b.get_record("job-2")
    assert record is not None and record.status == "SUCCESS"


async def test_settled_record_is_kept_about_a_day(make_coordinator: Any) -> None:
    """A settled record expires after ``keep``; a pending one is kept as long."""
    coordinator = await make_coordinator(keep=86_400.0)
    await coordinator.record_submitted("job-3", kind="gpt4o", product="", lease=None)
    await coordinator.settle("job-3", status="SUCCESS", answer="{}")
    ttl = await coordinator._redis().pttl(coordinator.keys("job", "job-3"))
    assert 86_000_000 < ttl <= 86_400_000


async def test_settle_on_another_worker_wakes_the_owner(make_coordinator: Any) -> None:
    """Worker B's settle of worker A's job reaches A's listener through the pub/sub push."""
    recorder = Recorder()
    a = await make_coordinator(recorder)
    b = await make_coordinator()
    await a.record_submitted("job-4", kind="gpt4o", product="", lease=None)
    woken = asyncio.get_running_loop().create_future()
    recorder.on_settled = woken.set_result
    await b.settle("job-4", status="SUCCESS", answer='{"ok": true}')
    record = await asyncio.wait_for(woken, 10)
    assert (record.job_id, record.status, record.answer) == ("job-4", "SUCCESS", '{"ok": true}')


async def test_own_settle_tells_own_listener_once(make_coordinator: Any) -> None:
    """The owner's own settle resolves its listener directly, and a repeat tells nothing more."""
    recorder = Recorder()
    a = await make_coordinator(recorder)
    await a.record_submitted("job-5", kind="gpt4o", product="", lease=None)
    await a.settle("job-5", status="SUCCESS", answer="{}")
    await a.settle("job-5", status="SUCCESS", answer="{}")
    assert [r.job_id for r in recorder.settled] == ["job-5"]


async def test_one_confirming_fetch_across_workers(make_coordinator: Any) -> None:
    """Of 40 concurrent claims from four workers, exactly one may fetch; a release lets one more."""
    workers = [await make_coordinator() for _ in range(4)]
    claims = await asyncio.gather(*(w.claim_confirm("job-6") for w in workers for _ in range(10)))
    assert claims.count(True) == 1
    winner = workers[claims.index(True) // 10]
    loser = next(w for w in workers if w is not winner)
    await loser.release_confirm("job-6")  # not its claim: no effect
    assert not await loser.claim_confirm("job-6")
    await winner.release_confirm("job-6")
    assert await loser.claim_confirm("job-6")


async def test_resync_after_reconnect_delivers_missed_pushes(make_coordinator: Any) -> None:
    """A settle whose push was lost while pub/sub was disconnected is found by the re-read."""
    recorder = Recorder()
    a = await make_coordinator(recorder)
    b = await make_coordinator()
    await a.record_submitted("job-7", kind="gpt4o", product="", lease=None)
    assert a._push is not None
    a._push.up.clear()
    # Cut A's pub/sub connection server-side, and settle before it can resubscribe.
    pipe = b._redis().pipeline(transaction=True)
    pipe.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
    pipe.eval(_scripts.SETTLE, 1, b.keys.clock, b.keys.prefix, b.worker_id, "job-7", "SUCCESS",
              "{}", 60_000)  # fmt: skip
    await pipe.execute()
    await asyncio.wait_for(a.wait_subscribed(), 20)
    assert [r.job_id for r in recorder.settled] == ["job-7"]


async def test_no_secret_in_any_key(make_coordinator: Any, redis_server: Any) -> None:
    """After records, leases and a token, no Redis key or value holds the API key."""
    coordinator = await make_coordinator()
    lease = await coordinator.acquire_lease("4o")
    await coordinator.record_submitted("job-8", kind="gpt4o", product="4o", lease=lease)
    await coordinator.webhook_token()
    client = coordinator._redis()
    keys = [key async for key in client.scan_iter(match="*")]
    assert keys
    for key in keys:
        assert API_KEY not in key and "SECRET" not in key
        dump = await client.dump(key)
        assert dump is None or API_KEY.encode() not in dump


async def test_every_worker_derives_the_same_webhook_token(make_coordinator: Any) -> None:
    """Two workers agree on the token without Redis holding it; a rotation changes it for both."""
    a = await make_coordinator()
    b = await make_coordinator()
    token = await a.webhook_token()
    assert token == await b.webhook_token() and len(token) >= 32
    client = a._redis()
    for key in [key async for key in client.scan_iter(match="*")]:
        dump = await client.dump(key)
        assert dump is None or token.encode() not in dump
    rotated = await a.rotate_webhook_token()
    assert rotated != token and rotated == await b.webhook_token()


async def test_claim_callback_reads_the_record_and_claims_once(make_coordinator: Any) -> None:
    """No record: nothing; a pending one: its record, and the claim for one worker only."""
    a, b = await make_coordinator(), await make_coordinator()
    assert await b.claim_callback("cb-1") == (None, False)
    await a.record_submitted("cb-1", kind="gpt4o", product="", lease=None)
    record, claimed = await b.claim_callback("cb-1")
    assert claimed and record is not None and record.owner == a.worker_id
    again, claimed_again = await a.claim_callback("cb-1")
    assert again == record and not claimed_again


async def test_claim_callback_takes_no_claim_on_a_settled_job(make_coordinator: Any) -> None:
    a, b = await make_coordinator(), await make_coordinator()
    await a.record_submitted("cb-2", kind="gpt4o", product="", lease=None)
    await a.settle("cb-2", status="SUCCESS", answer="{}")
    record, claimed = await b.claim_callback("cb-2")
    assert record is not None and record.settled and not claimed
    assert await b.claim_confirm("cb-2")  # the claim was left free


async def test_the_local_claim_callback_follows_the_same_rules() -> None:
    from ttapi_async.coordination import LocalCoordinator

    local = LocalCoordinator()
    assert await local.claim_callback("l-1") == (None, False)
    await local.record_submitted("l-1", kind="gpt4o", product="", lease=None)
    assert (await local.claim_callback("l-1"))[1]
    assert not (await local.claim_callback("l-1"))[1]
    await local.settle("l-1", status="SUCCESS", answer="{}")
    record, claimed = await local.claim_callback("l-1")
    assert record is not None and record.settled and not claimed

"""Real processes: workers whose clocks disagree by hours agree on everything shared."""

from __future__ import annotations

import asyncio
from typing import Any

from _redis_server import free_port

NEVER = ("--job-duration", "3600")
# As in test_workers_liveness: beats every half second, dead after four silent beats.
LIVENESS = {"heartbeat": 0.5, "dead_after": 4}
HOUR = 3600.0


def _hook(port: int) -> str:
    return f"http://127.0.0.1:{port}/ttapi-hook"


async def test_clock_skew_between_workers_changes_nothing(
    fake_server: Any, start_worker: Any, make_coordinator: Any
) -> None:
    """Workers an hour fast and an hour slow: callbacks resolve, nobody is declared dead early."""
    fake = await fake_server(*NEVER)
    port_f, port_s = free_port(), free_port()
    fast = await start_worker(
        "fast", fake, listen=port_f, hook_url=_hook(port_s), skew=HOUR, **LIVENESS
    )
    slow = await start_worker(
        "slow", fake, listen=port_s, hook_url=_hook(port_f), skew=-HOUR, first_poll=0.2,
        poll_every=0.2, **LIVENESS,
    )  # fmt: skip
    await asyncio.gather(fast.ready(), slow.ready())
    probe = await make_coordinator()
    before = await probe.server_time()
    first = await fast.submit(2, "lynx")
    for job in first:
        await fake.finish(job)
    await fast.resolved(first)  # through the slow worker's confirming fetch
    claimed = await slow.wait(lambda e: e.get("got") is True, count=len(first))
    assert {e["claim"] for e in claimed} == set(first)
    kept = await fast.submit(2, "hare")
    # Three of the slow worker's sweeps see the fast one alive, whatever its clock says.
    swept = len(slow.seen(lambda e: "swept" in e))
    await slow.wait(lambda e: "swept" in e, count=swept + 3)
    assert not [e for e in slow.seen(lambda e: bool(e.get("adopted")))]
    after = await probe.server_time()
    for job in first + kept:
        record = await probe.get_record(job)
        assert record is not None and before <= record.submitted_at <= after
    await fast.kill()
    adopted = (await slow.wait(lambda e: bool(e.get("adopted"))))[0]
    assert sorted(adopted["adopted"]) == sorted(kept)
    # Their true age, on Redis's clock: seconds, not the hours the two clocks disagree by.
    assert all(0 <= age < 600 for age in adopted["ages"])

"""The emulator's callback scheduler on a bad body provider, and its URL check on bad URLs."""

from __future__ import annotations

from ttapi_async.testing import ManualClock
from ttapi_async.testing._hooks import HookDelivery, HookScheduler, is_loopback_url


def test_a_url_that_cannot_be_parsed_is_not_loopback() -> None:
    """An unparsable URL (an unclosed IPv6 bracket) is refused as a callback target."""
    assert is_loopback_url("http://[::1/hook") is False


async def test_a_callback_whose_body_cannot_be_built_is_given_up_and_the_loop_lives_on() -> None:
    """A body provider that raises records "gave_up" with the error; the next one still goes."""
    clock = ManualClock()
    records: list[HookDelivery] = []
    asked: list[str] = []

    def body(job_id: str, end: float) -> None:
        asked.append(job_id)
        if job_id == "bad":
            raise RuntimeError("no body")
        return None  # nothing to deliver for this job

    hooks = HookScheduler(
        clock, body, manual_clock=True, retries=0, backoff=0.0, time_scale=1.0,
        timeout=5.0, record=records.append,
    )  # fmt: skip
    await hooks.drain()  # not started: nothing to wait for
    hooks.schedule(0.0, "bad", 0.0)
    hooks.start()
    try:
        await hooks.drain()
        hooks.schedule(0.0, "good", 0.0)
        assert len(hooks) == 1
        await hooks.drain()
    finally:
        await hooks.close()
    assert asked == ["bad", "good"]
    assert [(r.job_id, r.outcome) for r in records] == [("bad", "gave_up")]
    assert "no body" in (records[0].error or "")

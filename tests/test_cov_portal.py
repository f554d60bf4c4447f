"""The blocking client's loop thread (Portal): stopping it twice, and from inside it."""

from __future__ import annotations

import pytest

from ttapi_async._portal import Portal


def test_stopping_twice_is_a_no_op() -> None:
    """A second stop() of a stopped portal returns at once."""
    portal = Portal(name="cov-portal")
    portal.stop()
    portal.stop()
    assert not portal.thread.is_alive()


def test_the_loop_cannot_stop_itself() -> None:
    """stop() called from the portal's own loop raises RuntimeError instead of deadlocking."""
    portal = Portal(name="cov-portal")

    async def stop_from_inside() -> None:
        portal.stop()

    try:
        with pytest.raises(RuntimeError, match="own event loop"):
            portal.call(stop_from_inside)
    finally:
        portal.stop()


def test_ctrl_c_right_after_the_call_is_queued_still_cancels_it() -> None:
    """A KeyboardInterrupt landing just after the call is handed to the loop (before the
    caller starts waiting) still cancels the task, instead of leaving it running."""
    import asyncio

    portal = Portal(name="cov-portal")

    async def forever() -> None:
        await asyncio.Event().wait()

    async def others() -> int:
        await asyncio.sleep(0)  # let a cancellation that was asked for take effect
        return len(asyncio.all_tasks() - {asyncio.current_task()})

    real = portal._loop.call_soon_threadsafe
    calls = 0

    def queue_then_interrupt(callback, *args):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        handle = real(callback, *args)
        if calls == 1:  # the signal arrives as soon as the call is queued
            raise KeyboardInterrupt
        return handle

    portal._loop.call_soon_threadsafe = queue_then_interrupt  # type: ignore[method-assign]
    try:
        with pytest.raises(KeyboardInterrupt):
            portal.call(forever)
        portal._loop.call_soon_threadsafe = real  # type: ignore[method-assign]
        assert portal.call(others) == 0
    finally:
        portal._loop.call_soon_threadsafe = real  # type: ignore[method-assign]
        portal.stop()

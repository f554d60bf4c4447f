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

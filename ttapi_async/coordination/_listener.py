"""One pub/sub connection per coordinator: this worker's wake channel and the capacity channel."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

__all__ = ["PushListener"]

logger = logging.getLogger("ttapi_async.coordination")

#: Seconds between reconnection attempts while Redis is unreachable.
RECONNECT_EVERY = 0.5


class PushListener:
    """Listen on a fixed set of channels; after any reconnect, say so before passing pushes on.

    A push sent while the connection was down is lost, so ``on_up`` (which re-reads the
    records of pending jobs) runs after every (re)subscription and before any later push.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        on_message: Callable[[str, str], None],
        on_up: Callable[[], Awaitable[None]],
        on_down: Callable[[BaseException], None],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._client = client
        self._on_message = on_message
        self._on_up = on_up
        self._on_down = on_down
        self._sleep = sleep
        self._channels: set[str] = set()
        self._pubsub: aioredis.client.PubSub | None = None
        self._task: asyncio.Task[None] | None = None
        self._changed = False
        self._closing = False
        #: set once the first subscription is confirmed (tests and open() wait on it)
        self.up = asyncio.Event()

    def start(self, channels: set[str]) -> None:
        """Subscribe to ``channels`` and start listening in the background."""
        self._channels = set(channels)
        self._task = asyncio.create_task(self._run(), name="ttapi-coordination-pubsub")

    def set_channels(self, channels: set[str]) -> None:
        """Listen on ``channels`` from now on (the next loop turn resubscribes)."""
        self._channels = set(channels)
        self._changed = True

    async def aclose(self) -> None:
        """Stop listening and close the connection."""
        if self._task is not None:
            # The flag as well as the cancel: on Python 3.11 a cancel that lands as redis-py's
            # wait_for completes is swallowed, and the loop would listen on for ever.
            self._closing = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close_pubsub()

    async def _run(self) -> None:
        while not self._closing:
            try:
                await self._subscribe()
                await self._on_up()
                self.up.set()
                await self._listen()
            except _Resubscribe:
                continue
            except (RedisError, OSError) as exc:
                self.up.clear()
                await self._close_pubsub()
                self._on_down(exc)
                await self._sleep(RECONNECT_EVERY)
            except Exception:
                # Never die silently: a dead listener would leave every push unheard.
                logger.exception("pub/sub listener failed; reconnecting")
                self.up.clear()
                await self._close_pubsub()
                await self._sleep(RECONNECT_EVERY)

    async def _subscribe(self) -> None:
        await self._close_pubsub()
        self._changed = False
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        self._pubsub = pubsub
        await pubsub.subscribe(*sorted(self._channels))

    async def _listen(self) -> None:
        pubsub = self._pubsub
        assert pubsub is not None
        while not self._changed:
            if self._closing:
                return
            message = await pubsub.get_message(timeout=1.0)
            if message is None or message.get("type") != "message":
                continue
            self._on_message(str(message["channel"]), str(message["data"]))
        # The channel set changed (a fenced worker took a new id): resubscribe, resync.
        raise _Resubscribe()

    async def _close_pubsub(self) -> None:
        pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]


class _Resubscribe(RedisError):
    """Leave the listening loop to subscribe again (not an outage)."""

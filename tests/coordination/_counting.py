"""Count what a RedisCoordinator sends Redis, command by command (scripts by name)."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any


class Commands:
    """Wrap a coordinator's client: ``counts`` holds every command sent since ``clear()``."""

    def __init__(self, coordinator: Any) -> None:
        from ttapi_async.coordination import _redis_base

        names = {script.sha: name for name, script in _redis_base._S.items()}
        self.counts: Counter[str] = Counter()
        #: commands answered, by name (``counts`` holds those sent)
        self.answered: Counter[str] = Counter()
        self._waiting: list[tuple[str, int, asyncio.Future[None]]] = []
        client = coordinator.redis
        original = client.execute_command

        async def counted(*args: Any, **kwargs: Any) -> Any:
            command = str(args[0]).upper()
            if command in ("EVALSHA", "EVAL"):
                command = names.get(str(args[1]), command)
            self.counts[command] += 1
            try:
                return await original(*args, **kwargs)
            finally:
                self.answered[command] += 1
                for name, count, future in self._waiting:
                    if name == command and self.answered[name] >= count and not future.done():
                        future.set_result(None)

        client.execute_command = counted

    def clear(self) -> None:
        """Forget what was counted so far."""
        self.counts.clear()
        self.answered.clear()

    async def answered_at_least(self, name: str, count: int) -> None:
        """Return once ``count`` commands ``name`` were answered (bounded: 10 s)."""
        if self.answered[name] >= count:
            return
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((name, count, future))
        await asyncio.wait_for(future, 10)


def on_push(coordinator: Any, kind: str) -> asyncio.Event:
    """Return an event set once the coordinator has handled a push of ``kind``."""
    seen = asyncio.Event()
    handle = coordinator._on_push

    def noting(channel: str, data: str) -> None:
        handle(channel, data)
        if data.partition("\n")[0] == kind:
            seen.set()

    coordinator._on_push = noting
    coordinator._push._on_message = noting
    return seen

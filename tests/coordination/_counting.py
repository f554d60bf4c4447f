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
        client = coordinator.redis
        original = client.execute_command

        async def counted(*args: Any, **kwargs: Any) -> Any:
            command = str(args[0]).upper()
            if command in ("EVALSHA", "EVAL"):
                command = names.get(str(args[1]), command)
            self.counts[command] += 1
            return await original(*args, **kwargs)

        client.execute_command = counted

    def clear(self) -> None:
        """Forget what was counted so far."""
        self.counts.clear()


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

"""The test side of ``_client_worker.py``: start workers, send commands, wait on their events.

Every wait is bounded (``timeout`` seconds) and waits for an event the worker printed,
never for time to pass. Workers are killed by PID at the end of the test.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

WORKER = str(Path(__file__).with_name("_client_worker.py"))
WAIT = 60.0

Event = dict[str, Any]


class ClientWorker:
    """One worker process; its events (JSON lines) are collected as they come."""

    def __init__(self, name: str, process: asyncio.subprocess.Process) -> None:
        self.name = name
        self.process = process
        self.events: list[Event] = []
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())
        self.worker_id = ""

    @classmethod
    async def start(cls, name: str, **config: Any) -> ClientWorker:
        process = await asyncio.create_subprocess_exec(
            sys.executable, WORKER, json.dumps(config),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        return cls(name, process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while raw := await self.process.stdout.readline():
            try:
                event = json.loads(raw)
            except ValueError:
                event = {"text": raw.decode(errors="replace")}
            async with self._changed:
                self.events.append(event)
                self._changed.notify_all()
        async with self._changed:
            self.events.append({"exited": True})
            self._changed.notify_all()

    async def ready(self, timeout: float = WAIT) -> Event:
        """Wait for the worker's ``ready`` event; remember its worker id."""
        event = (await self.wait(lambda e: "ready" in e, timeout=timeout))[0]
        self.worker_id = event["worker"]
        return event

    async def wait(
        self, match: Callable[[Event], bool], count: int = 1, timeout: float = WAIT
    ) -> list[Event]:
        """Return the first ``count`` events that ``match``, waiting at most ``timeout`` s."""

        def found() -> list[Event] | None:
            hits = [e for e in self.events if match(e)]
            if len(hits) >= count:
                return hits[:count]
            if any("exited" in e for e in self.events):
                raise AssertionError(f"worker {self.name} exited; events: {self.recent()}")
            return None

        async def wait_found() -> list[Event]:
            async with self._changed:
                while (hits := found()) is None:
                    await self._changed.wait()
                return hits

        try:
            return await asyncio.wait_for(wait_found(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(
                f"worker {self.name}: {count} matching event(s) not seen within {timeout} s; "
                f"last events: {self.recent()}"
            ) from None

    def recent(self) -> list[Event]:
        """Return the last events but the sweeps (which come every beat), for messages."""
        return [e for e in self.events if "swept" not in e or e.get("adopted")][-20:]

    def seen(self, match: Callable[[Event], bool]) -> list[Event]:
        """Return the events so far that ``match``."""
        return [e for e in self.events if match(e)]

    async def send(self, **command: Any) -> None:
        """Send one command line."""
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        await self.process.stdin.drain()

    async def submit(self, count: int, prefix: str, *, hook: bool = True) -> list[str]:
        """Submit ``count`` jobs; return their ids once every one is submitted."""
        await self.send(submit=count, prefix=prefix, hook=hook)
        events = await self.wait(
            lambda e: str(e.get("prompt", "")).startswith(prefix + " "), count=count
        )
        return [e["submitted"] for e in events]

    async def resolved(self, job_ids: list[str], timeout: float = WAIT) -> dict[str, Event]:
        """Wait until every job in ``job_ids`` resolved here; return their events by id."""
        wanted = set(job_ids)
        events = await self.wait(lambda e: e.get("resolved") in wanted, len(wanted), timeout)
        return {e["resolved"]: e for e in events}

    async def stats(self) -> Event:
        """Ask for and return the worker's counters."""
        before = len(self.seen(lambda e: "stats" in e))
        await self.send(stats=True)
        return (await self.wait(lambda e: "stats" in e, count=before + 1))[-1]

    async def kill(self) -> None:
        """SIGKILL the worker by PID and reap it (bounded)."""
        if self.process.returncode is None:
            os.kill(self.process.pid, signal.SIGKILL)
        await asyncio.wait_for(self.process.wait(), 30)
        await asyncio.wait_for(self._reader, 30)

    async def close(self) -> None:
        """Ask the worker to exit; kill it if it has not within a bounded time."""
        if self.process.returncode is None:
            try:
                await self.send(exit=True)
                await asyncio.wait_for(self.process.wait(), 20)
            except (OSError, asyncio.TimeoutError):
                pass
        await self.kill()

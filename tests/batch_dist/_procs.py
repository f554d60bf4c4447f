"""The test side of ``_batch_runner_proc.py``: start runners, read their events, kill by PID.

Every wait is bounded and waits for an event a runner printed (or its exit), never for
time to pass.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

RUNNER = str(Path(__file__).with_name("_batch_runner_proc.py"))
WAIT = 60.0


class RunnerProcess:
    """One runner process; its JSON events are collected as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.events: list[dict[str, Any]] = []
        self.changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, **config: Any) -> RunnerProcess:
        """Start a runner with ``config`` (see ``_batch_runner_proc``)."""
        process = await asyncio.create_subprocess_exec(
            sys.executable, RUNNER, json.dumps(config),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while raw := await self.process.stdout.readline():
            try:
                self.events.append(json.loads(raw))
            except ValueError:
                self.events.append({"text": raw.decode(errors="replace")})
            self.changed.set()

    def items(self) -> int:
        """Return how many item outcomes the runner has printed."""
        return sum(1 for e in self.events if "item" in e)

    async def wait_items(self, count: int, timeout: float = WAIT) -> None:
        """Return once the runner printed ``count`` outcomes (or exited)."""

        async def until() -> None:
            while self.items() < count and self.process.returncode is None:
                self.changed.clear()
                with_exit = asyncio.ensure_future(self.process.wait())
                changed = asyncio.ensure_future(self.changed.wait())
                await asyncio.wait((with_exit, changed), return_when=asyncio.FIRST_COMPLETED)
                changed.cancel()
                with_exit.cancel()

        await asyncio.wait_for(until(), timeout)

    async def finish(self, timeout: float = WAIT) -> tuple[int, str]:
        """Wait for the runner to exit; return its status and its stderr."""
        assert self.process.stderr is not None
        reading = asyncio.ensure_future(self.process.stderr.read())
        try:
            err = await asyncio.wait_for(asyncio.shield(reading), timeout)
        except asyncio.TimeoutError as exc:
            os.kill(self.process.pid, signal.SIGUSR1)  # it prints where its tasks wait, exits
            try:
                await asyncio.wait_for(asyncio.shield(self.process.wait()), 10)
            except asyncio.TimeoutError:  # its loop is stuck: no dump
                os.kill(self.process.pid, signal.SIGKILL)
            text = (await asyncio.wait_for(reading, 30)).decode(errors="replace")
            await asyncio.wait_for(self.process.wait(), 30)
            raise AssertionError(f"stuck; events {self.events[-3:]}; {text[-6000:]}") from exc
        code = await asyncio.wait_for(self.process.wait(), timeout)
        await asyncio.wait_for(self._reader, timeout)
        return code, err.decode(errors="replace")

    def end(self) -> dict[str, Any]:
        """Return the runner's ``end`` event."""
        return next(e for e in self.events if e.get("end"))

    async def kill(self) -> None:
        """SIGKILL the runner by PID and reap it (bounded)."""
        if self.process.returncode is None:
            os.kill(self.process.pid, signal.SIGKILL)
        await self.finish(timeout=30)

"""End to end: examples/fastapi_app.py under ``uvicorn --workers 4`` with a RedisCoordinator.

``ttapi fake-server`` stands in for the service and calls back to uvicorn's one port, so
the kernel hands each callback to whichever worker accepts it. The app logs every callback
with the worker that took it and names the worker that answered each request.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from _redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
WORKERS = 4
REQUESTS = 16
ROUNDS = 4
WAIT = 90.0
CALLBACK = re.compile(r"ttapi-example: callback job=(\S+) worker=(\d+) status=(\d+)")
READY = re.compile(r"ttapi-example: worker (\d+) ready")


class Uvicorn:
    """``uvicorn examples.fastapi_app:app --workers N`` in its own session, killed by PID."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []
        self._changed = asyncio.Condition()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, port: int, env: dict[str, str]) -> Uvicorn:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "uvicorn", "examples.fastapi_app:app",
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS),
            "--no-access-log",
            cwd=ROOT, env={**os.environ, **env}, start_new_session=True,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
        )  # fmt: skip
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        while raw := await self.process.stdout.readline():
            async with self._changed:
                self.lines.append(raw.decode(errors="replace").rstrip())
                self._changed.notify_all()
        async with self._changed:
            self._changed.notify_all()

    def matches(self, pattern: re.Pattern[str]) -> list[re.Match[str]]:
        return [m for line in self.lines if (m := pattern.search(line))]

    async def wait(self, pattern: re.Pattern[str], count: int) -> list[re.Match[str]]:
        """Wait (bounded) until ``count`` lines match ``pattern``."""

        async def enough() -> list[re.Match[str]]:
            async with self._changed:
                while len(found := self.matches(pattern)) < count:
                    if self._reader.done():
                        raise AssertionError("uvicorn exited:\n" + "\n".join(self.lines[-40:]))
                    await self._changed.wait()
                return found

        try:
            return await asyncio.wait_for(enough(), WAIT)
        except asyncio.TimeoutError:
            raise AssertionError(
                f"{count} lines matching {pattern.pattern!r} not seen:\n"
                + "\n".join(self.lines[-40:])
            ) from None

    async def stop(self) -> None:
        """SIGTERM the process group (uvicorn stops its workers), SIGKILL it if it lingers."""
        if self.process.returncode is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except asyncio.TimeoutError:
                os.killpg(self.process.pid, signal.SIGKILL)
                await asyncio.wait_for(self.process.wait(), 30)
        # Workers left behind by a master that died first would hold the pipe open.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        await asyncio.wait_for(self._reader, 30)


@pytest.fixture
async def uvicorn() -> Any:
    started: list[Uvicorn] = []

    async def start(port: int, env: dict[str, str]) -> Uvicorn:
        server = await Uvicorn.start(port, env)
        started.append(server)
        return server

    yield start
    for server in started:
        await server.stop()


async def test_callbacks_on_other_uvicorn_workers_resolve_the_waiting_request(
    fake_server: Any, uvicorn: Any, redis_server: Any, namespace: str
) -> None:
    """4 uvicorn workers: a request whose callback another worker took returns, one fetch."""
    fake = await fake_server("--job-duration", "1", "--time-scale", "0.5")
    port = free_port()
    server = await uvicorn(
        port,
        {
            "TTAPI_API_KEY": fake.api_key,
            "TTAPI_BASE_URL": fake.url,
            "TTAPI_COORDINATOR": redis_server.url,
            "TTAPI_COORDINATOR_NAMESPACE": namespace,
            "TTAPI_HOOK_URL": f"http://127.0.0.1:{port}/ttapi-hook",
            # No worker polls within the test: only a callback can end a request.
            "TTAPI_SAFETY_POLL": "600",
            "NO_PROXY": "127.0.0.1,localhost",
        },
    )
    ready = await server.wait(READY, WORKERS)
    assert len({m.group(1) for m in ready}) == WORKERS
    answers: list[dict[str, Any]] = []
    # A new connection per request: each round, the kernel picks the accepting workers anew.
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(force_close=True),
        trust_env=False,
        timeout=aiohttp.ClientTimeout(total=WAIT),
    ) as http:

        async def ask(prompt: str) -> dict[str, Any]:
            url = f"http://127.0.0.1:{port}/images"
            async with http.post(url, json={"prompt": prompt}) as resp:
                assert resp.status == 200, await resp.text()
                answer: dict[str, Any] = await resp.json()
                assert answer["worker"] == int(resp.headers["X-TTAPI-Worker"])
                return answer

        crossed: list[dict[str, Any]] = []
        for round_ in range(ROUNDS):  # until some callbacks have landed elsewhere (bounded)
            answers += await asyncio.gather(*(ask(f"fox {round_} {i}") for i in range(REQUESTS)))
            taken = {m.group(1): int(m.group(2)) for m in server.matches(CALLBACK)}
            crossed = [a for a in answers if taken.get(a["job_id"], a["worker"]) != a["worker"]]
            if len(crossed) >= 2:
                break
    assert len(crossed) >= 2, f"every callback landed on its own worker: {answers}"
    callbacks = Counter(m.group(1) for m in server.matches(CALLBACK) if m.group(3) == "200")
    fetches = await fake.fetches()
    for answer in answers:
        assert answer["image_url"].startswith(fake.url)
        # One callback and one fetch: the confirming one, on whichever worker took the
        # callback; the waiting worker never polled, it was told through Redis.
        assert callbacks[answer["job_id"]] == 1
        assert fetches[answer["job_id"]] == 1

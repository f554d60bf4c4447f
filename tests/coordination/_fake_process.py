"""``ttapi fake-server`` in its own process for the multi-process tests; killed by PID.

The fake binds a free port itself (``--port 0``) and prints its URL; the helper reads that
line (bounded), then talks to the admin API (``/_fake/*``) through an aiohttp session.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

START_TIMEOUT = 30.0
FETCH_PATH = "/openai/4o-image/fetch"
SUBMIT_PATH = "/openai/4o-image/generations"


def ttapi_command() -> list[str]:
    """Return the installed ``ttapi`` console script (beside this interpreter), or its module."""
    script = Path(sys.executable).with_name("ttapi")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "ttapi_async.cli"]  # pragma: no cover - an odd install


class FakeProcess:
    """One ``ttapi fake-server`` process and an admin session to it."""

    def __init__(self, process: asyncio.subprocess.Process, url: str, key: str) -> None:
        self.process = process
        self.url = url
        self.api_key = key
        self._session: aiohttp.ClientSession | None = None
        self._drain: asyncio.Task[None] | None = None

    @classmethod
    async def start(cls, *args: str) -> FakeProcess:
        """Start ``ttapi fake-server --port 0 ARGS`` and return once it listens."""
        process = await asyncio.create_subprocess_exec(
            *ttapi_command(), "fake-server", "--port", "0", "--seed", "1", *args,
            stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert process.stdout is not None
        try:
            line = await asyncio.wait_for(process.stdout.readline(), START_TIMEOUT)
        except asyncio.TimeoutError:
            line = b""
        match = re.search(r"(http://\S+) key=(\S+)", line.decode(errors="replace"))
        if match is None:
            if process.returncode is None:
                os.kill(process.pid, signal.SIGKILL)
            await asyncio.wait_for(process.wait(), 30)
            raise RuntimeError(f"the fake did not start: {line!r}")
        fake = cls(process, match.group(1), match.group(2))
        fake._drain = asyncio.create_task(fake._drain_stdout())
        return fake

    async def _drain_stdout(self) -> None:
        assert self.process.stdout is not None
        while await self.process.stdout.read(65536):
            pass

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(trust_env=False)
        return self._session

    async def _get(self, route: str, **params: str) -> Any:
        async with self._http().get(self.url + route, params=params) as resp:
            resp.raise_for_status()
            return await resp.json()

    async def stats(self) -> dict[str, Any]:
        """Return ``GET /_fake/stats``: peak in progress, 499s per product, callbacks per job."""
        result: dict[str, Any] = await self._get("/_fake/stats")
        return result

    async def job(self, job_id: str) -> dict[str, Any]:
        """Return the fake's view of one job (its hook URL, its status...)."""
        view: dict[str, Any] = await self._get(f"/_fake/jobs/{job_id}")
        return view

    async def pending_jobs(self) -> list[str]:
        """Return the ids of the jobs that have not ended."""
        found = []
        for status in ("PENDING_QUEUE", "ON_QUEUE"):
            answer = await self._get("/_fake/jobs", status=status, limit="100000")
            found += [job["id"] for job in answer["jobs"]]
        return found

    async def finish(self, job_id: str, status: str = "SUCCESS") -> None:
        """End a job now (its callback, if it asked for one, falls due)."""
        url = f"{self.url}/_fake/jobs/{job_id}/finish"
        async with self._http().post(url, json={"status": status}) as resp:
            resp.raise_for_status()

    async def fetches(self) -> Counter[str]:
        """Return how many fetches the fake answered, per job id."""
        records = await self._get("/_fake/requests", path=FETCH_PATH, limit="100000")
        return Counter(str(r["params"].get("jobId")) for r in records)

    async def submissions(self) -> int:
        """Return how many submits the fake accepted (each created work)."""
        stats = await self.stats()
        return sum(stats["submissions_by_prompt"].values())

    async def stop(self) -> None:
        """Close the admin session and kill the fake by PID (bounded wait)."""
        if self._session is not None:
            await self._session.close()
            self._session = None
        if self.process.returncode is None:
            os.kill(self.process.pid, signal.SIGKILL)
        await asyncio.wait_for(self.process.wait(), 30)
        if self._drain is not None:
            await asyncio.wait_for(self._drain, 30)

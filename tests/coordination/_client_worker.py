"""A client worker process for the multi-process tests; one JSON config argument.

Each worker runs an ``AsyncTTAPI`` with a ``RedisCoordinator`` and a ``WebhookReceiver``
served on its own port (``listen``); ``hook_url`` is the public URL it hands TTAPI, which
may be another worker's port (a load balancer sent the callback elsewhere). Commands come
on stdin, one JSON object a line; events go to stdout, one JSON object a line:

- ``{"submit": N, "prefix": P, "hook": true}``: submit N jobs, print ``submitted`` for
  each, then ``resolved`` for each as its await returns;
- ``{"resume": [ids]}``: ``resume`` each job here, print ``resolved`` as each await returns;
- ``{"stats": true}``: print the watcher's fetches and the receiver's counters;
- ``{"exit": true}``: close the client and exit.

The coordinator is instrumented (a subclass): every ``settle``, claim (``claim_confirm``,
``claim_callback``) and ``sweep`` it makes is printed, and so is every log record of
``ttapi_async.coordination`` (the fallback's warning, the resync), so that a test waits on
events, never on time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from typing import Any

import tenacity
from aiohttp import web

from ttapi_async import AsyncTTAPI
from ttapi_async._schedule import PollSchedule
from ttapi_async.coordination import JobRecord, LimitSettings, RedisCoordinator, Settled
from ttapi_async.webhooks import WebhookReceiver


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


class Instrumented(RedisCoordinator):
    """A RedisCoordinator that prints what it records, so tests can wait on it."""

    async def settle(self, job_id: str, *, status: str, answer: str) -> Settled:
        settled = await super().settle(job_id, status=status, answer=answer)
        say(settle=job_id, won=settled.won, status=settled.record.status,
            shared=settled.record.shared, worker=self.worker_id)  # fmt: skip
        return settled

    async def claim_confirm(self, job_id: str) -> bool:
        got = await super().claim_confirm(job_id)
        say(claim=job_id, got=got, worker=self.worker_id)
        return got

    async def claim_callback(self, job_id: str) -> tuple[JobRecord | None, bool]:
        record, got = await super().claim_callback(job_id)
        if record is not None and not record.settled:
            say(claim=job_id, got=got, worker=self.worker_id)
        return record, got

    async def sweep(self) -> list[JobRecord]:
        adopted = await super().sweep()
        say(swept=len(adopted), adopted=[r.job_id for r in adopted],
            ages=[r.age for r in adopted], worker=self.worker_id)  # fmt: skip
        return adopted


class _Events(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        say(log=record.levelname, msg=record.getMessage())


def _schedule(config: dict[str, Any]) -> PollSchedule:
    first = float(config.get("first_poll", 3600.0))
    every = float(config.get("poll_every", 3600.0))
    return PollSchedule(
        first_delay=first,
        wait=tenacity.wait_fixed(every),
        learn=False,
        min_interval=min(every, 0.1),
        min_first_delay=min(first, 0.1),
        deadline=7200.0,
        error_backoff=min(every, 1.0),
    )


async def _serve(receiver: WebhookReceiver, port: int) -> web.AppRunner:
    app = web.Application()
    receiver.add_routes(app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner


async def _submit(client: AsyncTTAPI, command: dict[str, Any], tasks: set[Any]) -> None:
    prefix = command.get("prefix", "job")

    async def one(i: int) -> None:
        job = await client.gpt4o.submit(prompt=f"{prefix} {i}", hook=command.get("hook", True))
        say(submitted=job.id, prompt=f"{prefix} {i}")
        try:
            result = await job
        except Exception as exc:
            say(resolved=job.id, error=type(exc).__name__)
        else:
            say(resolved=job.id, url=result.image_url)

    for i in range(int(command["submit"])):
        task = asyncio.create_task(one(i))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def _resume(client: AsyncTTAPI, job_ids: list[str], tasks: set[Any]) -> None:
    async def one(job_id: str) -> None:
        try:
            result = await client.gpt4o.resume(job_id)
        except Exception as exc:
            say(resolved=job_id, error=type(exc).__name__)
        else:
            say(resolved=job_id, url=result.image_url)

    for job_id in job_ids:
        task = asyncio.create_task(one(job_id))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


async def main(config: dict[str, Any]) -> None:
    handler = _Events()
    coordination = logging.getLogger("ttapi_async.coordination")
    coordination.addHandler(handler)
    coordination.setLevel(logging.INFO)
    skew = float(config.get("skew", 0.0))
    cap = int(config.get("cap", 64))
    coordinator = Instrumented(
        config["redis"],
        namespace=config["namespace"],
        limits=LimitSettings(cap=cap, initial=cap),
        heartbeat=float(config.get("heartbeat", 3600.0)),
        dead_after=float(config.get("dead_after", 2.0)),
        # A machine whose clock is off by ``skew``: nothing shared may depend on it.
        clock=lambda: time.monotonic() + skew,
    )
    client = AsyncTTAPI(
        api_key=config["api_key"], base_url=config["base_url"], coordinator=coordinator
    )
    tasks: set[Any] = set()
    async with client:
        client.watcher.configure(schedule=_schedule(config), max_per_second=None)
        receiver = WebhookReceiver(client, public_url=config["hook_url"])
        await client.open_coordinator()
        await receiver.start()  # the token every worker shares, from the coordinator
        runner = await _serve(receiver, int(config["listen"]))
        await coordinator.wait_subscribed()
        say(ready=True, worker=coordinator.worker_id, pid=os.getpid())
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        try:
            while line := await reader.readline():
                command = json.loads(line)
                if "submit" in command:
                    await _submit(client, command, tasks)
                elif "resume" in command:
                    await _resume(client, command["resume"], tasks)
                elif "stats" in command:
                    say(stats=True, fetches=client.watcher.fetches, accepted=receiver.accepted,
                        rejected=receiver.rejected, worker=coordinator.worker_id)  # fmt: skip
                elif "exit" in command:
                    break
        finally:
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await runner.cleanup()
    say(closed=True)


if __name__ == "__main__":
    asyncio.run(main(json.loads(sys.argv[1])))

"""A shared-batch runner process for the multi-process tests; one JSON config argument.

It runs ``run_batch(..., name=...)`` on a ``RedisCoordinator`` with fast beats against a
``ttapi fake-server`` and prints JSON lines: ``ready`` (after planning), ``item`` per
outcome, and ``end`` (its counters, and the store error if Redis stopped it). Its exit
status: 0 when the batch is done, 4 when Redis stopped it, 1 otherwise.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from ttapi_async import AsyncTTAPI
from ttapi_async._schedule import PollSchedule
from ttapi_async.batch import SharedBatchRunner, read_requests
from ttapi_async.coordination import RedisCoordinator

#: How long closing the client may take (see the note where it is used).
CLOSE_TIMEOUT = 15.0


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


#: the exit status after a SIGUSR1 dump
DUMPED = 99


def dump_tasks() -> None:
    # SIGUSR1: where every task waits, then exit (the test asks for it when a runner seems
    # stuck, and waits for this exit instead of sleeping before a SIGKILL).
    for task in asyncio.all_tasks():
        print(f"--- {task!r}", file=sys.stderr)
        task.print_stack(limit=6, file=sys.stderr)
    sys.stderr.flush()
    os._exit(DUMPED)


async def main(config: dict[str, Any]) -> int:
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump_tasks)
    coordinator = RedisCoordinator(
        config["redis"],
        namespace=config["namespace"],
        heartbeat=float(config.get("heartbeat", 0.4)),
        dead_after=float(config.get("dead_after", 4)),
    )
    client = AsyncTTAPI(
        api_key=config["api_key"], base_url=config["base_url"], coordinator=coordinator
    )
    code = 1
    try:
        client.watcher.configure(
            schedule=PollSchedule().scaled(float(config["scale"])), max_per_second=None
        )
        runner = SharedBatchRunner(
            client,
            Path(config["out"]),
            name=config["name"],
            accept_risk=bool(config.get("accept_risk", True)),
            concurrency=int(config.get("concurrency", 40)),
            resubmit_unknown=bool(config.get("resubmit_unknown", False)),
        )
        await runner.aplan(read_requests(Path(config["input"]), kind="gpt4o"))
        say(ready=True, runner=coordinator.worker_id)
        async for outcome in runner.run():
            say(item=outcome.id, state=outcome.state)
        stats = runner.stats
        counts = runner.final_counts or {}
        say(end=True, done=stats.done, unknown=stats.unknown, resumed=stats.resumed,
            store_down=runner.store_down, counts=counts, reason=stats.stopped_reason)  # fmt: skip
        if runner.store_down is not None:
            code = 4
        elif counts and counts.get("done") == stats.total:
            code = 0
    finally:
        try:
            await asyncio.wait_for(client.aclose(), CLOSE_TIMEOUT)
        except asyncio.TimeoutError:
            # The coordinator's heartbeat task can swallow its cancel (a cancel landing in a
            # Redis call): what the batch recorded is in Redis already, so leave.
            say(close_stuck=True)
            os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(asyncio.run(main(json.loads(sys.argv[1]))))

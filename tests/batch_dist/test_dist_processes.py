"""Shared batches across processes: runners killed and restarted, Redis killed, two names.

Real ``redis-server``, ``ttapi fake-server`` in its own process, runner processes killed
by PID; submissions are counted at the fake.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from conftest import batch_states

SCALE = "0.01"  # a 60-second job takes 0.6 s


def prompt_file(folder: Path, n: int, prefix: str = "cat") -> Path:
    path = folder / f"{prefix}.txt"
    path.write_text("".join(f"{prefix} #{i}\n" for i in range(n)))
    return path


async def test_three_runners_with_kills_submit_each_item_once(
    batch_redis: Any, namespace: str, fake_server: Any, runner_procs: Any, tmp_path: Path
) -> None:
    """3 runners on 300 items, one SIGKILLed at random moments 3 times and restarted: every
    item ends done (or unknown, never sent twice), and only unknown ones are sent again."""
    fake = await fake_server(
        "--time-scale", SCALE, "--job-duration", "uniform:30,60", "--max-jobs-in-progress", "60"
    )
    config = dict(
        redis=batch_redis.url, namespace=namespace, name="cats", api_key=fake.api_key,
        base_url=fake.url, scale=float(SCALE), input=str(prompt_file(tmp_path, 300)),
    )  # fmt: skip
    runners = [await runner_procs(out=str(tmp_path / f"out{i}"), **config) for i in range(3)]
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    for _ in range(3):
        victim = rng.randrange(3)
        await runners[victim].wait_items(rng.randint(1, 25))  # a random moment of its run
        await runners[victim].kill()
        runners[victim] = await runner_procs(out=str(tmp_path / f"out{victim}"), **config)
    for runner in runners:
        code, err = await runner.finish()
        assert code in (0, 1), (seed, err[-2000:], runner.events[-2:])
    items = await batch_states(batch_redis.url, namespace, "cats")
    submitted = (await fake.stats())["submissions_by_prompt"]
    unknown = {i for i, f in items.items() if f["state"] == "unknown"}
    assert len(items) == 300
    assert {f["state"] for f in items.values()} <= {"done", "unknown"}, seed
    twice = {f["params"] for f in items.values() if submitted.get(_prompt(f), 0) > 1}
    assert not twice, (seed, twice)
    assert all(submitted.get(_prompt(f), 0) == 1 for f in items.values()
               if f["state"] == "done"), seed  # fmt: skip
    assert len(unknown) <= 3 * 40, seed  # at most what the killed runners had in flight
    for fields in items.values():
        if fields["state"] == "done":
            files = json.loads(fields["files"])
            assert (Path(fields["out"]) / files[0]).is_file()

    # The unknown ones, asked for: sent (again, at most once more), and the batch is done.
    last = await runner_procs(out=str(tmp_path / "last"), resubmit_unknown=True, **config)
    code, err = await last.finish()
    assert code == 0, err[-2000:]
    items = await batch_states(batch_redis.url, namespace, "cats")
    submitted = (await fake.stats())["submissions_by_prompt"]
    assert {f["state"] for f in items.values()} == {"done"}
    assert {_prompt(f) for f in items.values() if submitted[_prompt(f)] > 1} <= {
        _prompt(items[i]) for i in unknown
    }


def _prompt(fields: dict[str, str]) -> str:
    return str(json.loads(fields["params"])["prompt"])


async def test_redis_killed_mid_run_stops_runners_and_a_rerun_finishes(
    durable_redis: Any, namespace: str, fake_server: Any, runner_procs: Any, tmp_path: Path
) -> None:
    """Redis SIGKILLed mid-run: each runner stops with one line and a resume hint (exit 4);
    after Redis returns (its append-only file), a re-run finishes without paying twice."""
    fake = await fake_server(
        "--time-scale", SCALE, "--job-duration", "uniform:30,60", "--max-jobs-in-progress", "40"
    )
    config = dict(
        redis=durable_redis.url, namespace=namespace, name="cats", api_key=fake.api_key,
        base_url=fake.url, scale=float(SCALE), input=str(prompt_file(tmp_path, 120)),
        accept_risk=False,
    )  # fmt: skip
    runners = [await runner_procs(out=str(tmp_path / f"out{i}"), **config) for i in range(2)]
    await runners[0].wait_items(10)
    durable_redis.kill()
    for runner in runners:
        code, err = await runner.finish()
        assert code == 4, err[-2000:]
        message = runner.end()["store_down"]
        assert "\n" not in message and "Redis unreachable" in message
        assert "run the same command again" in message

    durable_redis.start()
    again = [await runner_procs(out=str(tmp_path / f"out{i}"), **config) for i in range(2)]
    for runner in again:
        code, err = await runner.finish()
        assert code in (0, 1), err[-2000:]
    items = await batch_states(durable_redis.url, namespace, "cats")
    submitted = (await fake.stats())["submissions_by_prompt"]
    assert {f["state"] for f in items.values()} <= {"done", "unknown"}
    assert sum(f["state"] == "done" for f in items.values()) >= 80
    assert all(submitted[_prompt(f)] == 1 for f in items.values() if f["state"] == "done")

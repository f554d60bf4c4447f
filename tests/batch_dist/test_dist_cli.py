"""``ttapi batch --name``, ``batch-status`` and ``batch-collect`` against a fake-server process."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

from _fake_process import ttapi_command

SCALE = "0.01"


async def ttapi(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the ``ttapi`` console script; return (status, stdout, stderr), bounded."""
    process = await asyncio.create_subprocess_exec(
        *ttapi_command(), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def is_file(path: str) -> bool:
    return Path(path).is_file()


def copied(copy: Path, source: str) -> bool:
    """Return True when ``copy`` holds the bytes of the runner's file ``source``."""
    return copy.read_bytes() == Path(source).read_bytes()


def prompts(folder: Path, n: int) -> Path:
    path = folder / "prompts.txt"
    path.write_text("".join(f"cli cat #{i}\n" for i in range(n)))
    return path


async def test_cli_runs_reports_and_collects_a_shared_batch(
    batch_redis: Any, namespace: str, fake_server: Any, tmp_path: Path
) -> None:
    """Two ``ttapi batch --name`` runners ($TTAPI_COORDINATOR) do the batch; batch-status
    counts it per runner; batch-collect copies both runners' images into one folder, with
    one manifest naming each file's runner, and the gallery."""
    fake = await fake_server("--time-scale", SCALE, "--job-duration", "uniform:20,40")
    common = ["--base-url", fake.url, "--api-key", fake.api_key, "--poll-scale", SCALE]
    env = {"TTAPI_COORDINATOR": batch_redis.url, "TTAPI_COORDINATOR_NAMESPACE": namespace}
    file = str(prompts(tmp_path, 30))
    runs = await asyncio.gather(*(
        ttapi(*common, "batch", file, "--out", str(tmp_path / f"out{i}"), "--name", "cats",
              "--accept-redis-risk", "--concurrency", "5", env=env)
        for i in range(2)
    ))  # fmt: skip
    for code, _, err in runs:
        assert code == 0, err
    assert "batch 'cats': 30 done, 0 not done, of 30" in runs[0][2]

    code, out, err = await ttapi(*common, "batch-status", "--coordinator", batch_redis.url,
                                 "--name", "cats", "--json", env={"TTAPI_COORDINATOR_NAMESPACE":
                                 namespace})  # fmt: skip
    assert code == 0, err
    status = json.loads(out)
    assert status["counts"]["done"] == 30
    assert sum(r["counts"]["done"] for r in status["runners"]) == 30

    code, out, err = await ttapi(*common, "batch-collect", "--name", "cats", "--out",
                                 str(tmp_path / "all"), env=env)  # fmt: skip
    assert code == 0, err
    assert "30 file(s) copied, 0 already here" in err
    all_ = tmp_path / "all"
    lines = [json.loads(x) for x in (all_ / "manifest.jsonl").read_text().splitlines()]
    assert len(lines) == 30 and {x["state"] for x in lines} == {"done"}
    assert all(is_file(x["paths"][0]) and x["runner"] for x in lines)
    assert {Path(x["out"]).name for x in lines} <= {"out0", "out1"}
    assert all(copied(all_ / x["files"][0], x["paths"][0]) for x in lines)
    assert (all_ / "index.html").read_text().count("<img ") == 30


async def test_cli_refuses_a_redis_that_does_not_fsync(
    batch_redis: Any, namespace: str, fake_server: Any, tmp_path: Path
) -> None:
    """Without --accept-redis-risk, a Redis with persistence off is refused in one line."""
    fake = await fake_server("--time-scale", SCALE)
    code, _, err = await ttapi(
        "--base-url", fake.url, "--api-key", fake.api_key, "batch", str(prompts(tmp_path, 3)),
        "--out", str(tmp_path / "out"), "--coordinator", batch_redis.url, "--name", "cats",
        env={"TTAPI_COORDINATOR_NAMESPACE": namespace},
    )  # fmt: skip
    assert code == 1
    assert err.count("\n") == 1 and "does not persist every write" in err
    assert "appendonly=no" in err and "--accept-redis-risk" in err
    assert (await fake.stats())["submissions_by_prompt"] == {}


async def test_cli_name_without_a_coordinator_is_a_usage_error(tmp_path: Path) -> None:
    """``--name`` with neither --coordinator nor $TTAPI_COORDINATOR: exit 2, one line."""
    env = {"TTAPI_COORDINATOR": ""}
    code, _, err = await ttapi("--api-key", "k", "batch", str(prompts(tmp_path, 1)), "--out",
                               str(tmp_path / "o"), "--name", "cats", env=env)  # fmt: skip
    assert code == 2 and "--coordinator" in err
    code, _, err = await ttapi("--api-key", "k", "batch-status", "--name", "cats", env=env)
    assert code == 2 and "--coordinator" in err

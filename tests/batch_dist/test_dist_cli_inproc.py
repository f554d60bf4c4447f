"""The shared-batch commands run in this process (a thread of their own) against FakeTTAPI."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from _redis_server import free_port

from ttapi_async.cli._app import run
from ttapi_async.testing import Duration, FakeTTAPI

SCALE = "0.002"


def prompts(folder: Path, n: int) -> str:
    path = folder / "prompts.txt"
    path.write_text("".join(f"thread cat #{i}\n" for i in range(n)))
    return str(path)


async def test_batch_status_and_collect_in_process(
    batch_redis: Any, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """batch --name --jsonl ends with the batch's counts; status and collect read them."""
    monkeypatch.setenv("TTAPI_COORDINATOR_NAMESPACE", namespace)
    monkeypatch.setenv("TTAPI_COORDINATOR", batch_redis.url)
    file = prompts(tmp_path, 6)
    async with FakeTTAPI(time_scale=float(SCALE), job_duration=Duration.uniform(5, 15)) as fake:
        common = ["--base-url", fake.url, "--api-key", fake.api_key, "--poll-scale", SCALE]
        code = await asyncio.to_thread(run, [*common, "batch", file, "--out",
                                             str(tmp_path / "o"), "--name", "cats",
                                             "--accept-redis-risk", "--jsonl"])  # fmt: skip
        out = capsys.readouterr()
        assert code == 0, out.err
        summary = json.loads(out.out.splitlines()[-1])
        assert summary["batch"]["done"] == 6
        code = await asyncio.to_thread(run, [*common, "batch", file, "--out",
                                             str(tmp_path / "o"), "--name", "cats",
                                             "--accept-redis-risk"])  # fmt: skip
        out = capsys.readouterr()
        assert code == 0 and "batch 'cats': 6 done, 0 not done, of 6" in out.err
        code = await asyncio.to_thread(run, [*common, "batch-status", "--name", "cats"])
        out = capsys.readouterr()
        assert code == 0 and out.out.startswith("batch 'cats': 6 items: 6 done, 0 failed")
        assert "(left): 6 done" in out.out
        code = await asyncio.to_thread(run, [*common, "batch-status", "--name", "dogs"])
        assert code == 1 and "no shared batch named 'dogs'" in capsys.readouterr().err
        code = await asyncio.to_thread(
            run, [*common, "batch-collect", "--name", "cats", "--out", str(tmp_path / "all")]
        )
        out = capsys.readouterr()
    assert code == 0 and "6 item(s)" in out.err
    assert len((tmp_path / "all" / "manifest.jsonl").read_text().splitlines()) == 6


async def test_redis_down_at_start_is_one_line_and_exit_4(
    namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """No Redis at the URL: the shared batch stops before sending anything, in one line."""
    monkeypatch.setenv("TTAPI_COORDINATOR_NAMESPACE", namespace)
    url = f"redis://127.0.0.1:{free_port()}/0"
    async with FakeTTAPI(time_scale=float(SCALE)) as fake:
        code = await asyncio.to_thread(run, [
            "--base-url", fake.url, "--api-key", fake.api_key, "batch", prompts(tmp_path, 2),
            "--out", str(tmp_path / "o"), "--coordinator", url, "--name", "cats",
        ])  # fmt: skip
        assert fake.stats().submissions_by_prompt == {}
    err = capsys.readouterr().err
    lines = [x for x in err.splitlines() if x.startswith("error:")]
    assert code == 4 and len(lines) == 1
    assert "Redis unreachable" in lines[0] and "run the same command again" in lines[0]

"""The CLI's TTAPI_COORDINATOR, and what importing or building a client loads (no Redis)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest
from _redis_server import RedisServer, free_port
from conftest import API_KEY

from ttapi_async.cli._coordinator import coordinator_from_env
from ttapi_async.testing import FakeTTAPI

PASSWORD = "hunter2-SECRET-pw"


async def run_cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run ``python -m ttapi_async.cli ARGS`` with ``env`` added; return (status, out, err)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ttapi_async.cli", *args,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def test_unset_means_in_process() -> None:
    """Without TTAPI_COORDINATOR the CLI's client coordinates in process."""
    assert coordinator_from_env({}) is None
    assert coordinator_from_env({"TTAPI_COORDINATOR": "  "}) is None


def test_a_url_that_is_not_redis_is_refused_without_its_password() -> None:
    """A non-Redis URL is a ValueError that shows the URL with its password hidden."""
    with pytest.raises(ValueError, match="redis://") as caught:
        coordinator_from_env({"TTAPI_COORDINATOR": f"http://user:{PASSWORD}@example.com/"})
    assert PASSWORD not in str(caught.value)


def test_a_redis_url_builds_a_redis_coordinator_on_its_namespace() -> None:
    """A redis:// URL and a namespace give a RedisCoordinator whose repr hides the password."""
    pytest.importorskip("redis")
    coordinator = coordinator_from_env(
        {
            "TTAPI_COORDINATOR": f"redis://:{PASSWORD}@127.0.0.1:1/0",
            "TTAPI_COORDINATOR_NAMESPACE": "cli-test",
        }
    )
    assert type(coordinator).__name__ == "RedisCoordinator"
    assert getattr(coordinator, "namespace", None) == "cli-test"
    assert PASSWORD not in repr(coordinator)


async def test_cli_submit_records_the_job_in_redis(own_redis: RedisServer, namespace: str) -> None:
    """``ttapi submit`` with TTAPI_COORDINATOR records its job where every worker can read it."""
    from ttapi_async.coordination import RedisCoordinator

    async with FakeTTAPI(api_key=API_KEY) as fake:
        env = {"TTAPI_COORDINATOR": own_redis.url, "TTAPI_COORDINATOR_NAMESPACE": namespace}
        status, out, err = await run_cli(
            "--base-url", fake.url, "--api-key", API_KEY, "-v", "submit", "a fox", env=env
        )
    assert status == 0, err
    job_id = out.strip()
    reader = RedisCoordinator(own_redis.url, namespace=namespace, heartbeat=3600.0)
    await reader.open(API_KEY)
    try:
        record = await reader.get_record(job_id)
    finally:
        await reader.aclose()
    assert record is not None and record.kind == "gpt4o" and not record.settled
    assert PASSWORD not in out + err and API_KEY not in out + err


async def test_unreachable_redis_falls_back_and_never_shows_the_password() -> None:
    """Redis down: the submit still goes through, and the warning hides the URL's password."""
    pytest.importorskip("redis")
    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"
    async with FakeTTAPI(api_key=API_KEY) as fake:
        status, out, err = await run_cli(
            "--base-url", fake.url, "--api-key", API_KEY, "-v", "submit", "a fox",
            env={"TTAPI_COORDINATOR": url},
        )  # fmt: skip
        assert status == 0, err
        assert fake.stats().submissions_by_prompt == {"a fox": 1}
    assert "unreachable" in err and "***" in err
    assert PASSWORD not in out + err


def test_importing_and_building_a_client_loads_no_redis() -> None:
    """Importing the package, its CLI and webhooks and building a client import no redis."""
    code = (
        "import sys, ttapi_async, ttapi_async.cli, ttapi_async.webhooks; "
        "ttapi_async.AsyncTTAPI(api_key='k'); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'redis'))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

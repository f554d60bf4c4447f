"""Without redis-server the Redis tests skip with one line, unless TTAPI_REQUIRE_REDIS=1."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
TARGET = str(HERE / "test_coord_records.py") + "::test_first_terminal_status_wins"


def _run_without_redis_server(require: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TTAPI_REQUIRE_REDIS"}
    env["PATH"] = str(Path(sys.executable).parent)  # no redis-server on it
    if require:
        env["TTAPI_REQUIRE_REDIS"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", TARGET],
        capture_output=True, text=True, timeout=120, env=env, cwd=HERE.parent.parent,
    )  # fmt: skip


@pytest.mark.skipif(
    (Path(sys.executable).parent / "redis-server").exists(), reason="redis-server beside python"
)
@pytest.mark.parametrize("require", [False, True])
def test_missing_redis_server_skips_or_fails(require: bool) -> None:
    """A missing redis-server is a one-line skip, and a failure under TTAPI_REQUIRE_REDIS=1."""
    out = _run_without_redis_server(require)
    if require:
        assert out.returncode == 1, out.stdout
        assert "TTAPI_REQUIRE_REDIS=1 but redis-server not installed" in out.stdout
    else:
        assert out.returncode == 0, out.stdout
        assert "redis-server not installed (apt-get install redis-server)" in out.stdout
        assert "1 skipped" in out.stdout

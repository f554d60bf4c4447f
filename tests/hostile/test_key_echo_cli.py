"""``ttapi -vv`` against a server that quotes the key in broken HTTP prints it nowhere."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest
from _support import API_KEY, GENERATIONS

from hostile.server import HostileServer, raw

FETCH = "/openai/4o-image/fetch"
KEY = API_KEY.encode()
WINDOWS = [API_KEY[i : i + 8] for i in range(len(API_KEY) - 7)]
BROKEN_STATUS = b"HTTX/1.1 " + KEY + b" OK\r\nContent-Length: 2\r\n\r\n{}"
BROKEN_CHUNK = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + KEY + b"\r\nabc\r\n0\r\n\r\n"
)


async def _run_cli(hostile: HostileServer, tmp_path: Path, *args: str) -> tuple[int, str]:
    env = {**os.environ, "TTAPI_API_KEY": API_KEY, "TTAPI_BASE_URL": hostile.url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ttapi_async.cli", "-vv", *args,
        cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(errors="replace")


@pytest.mark.parametrize("answer", [BROKEN_STATUS, BROKEN_CHUNK], ids=["status", "chunk"])
async def test_cli_debug_output_of_a_key_echo_is_clean(
    hostile: HostileServer, tmp_path: Path, answer: bytes
) -> None:
    """``ttapi -vv generate`` and ``fetch`` (retried) print the failure without the key."""
    hostile.on(GENERATIONS, raw(answer))
    hostile.on(FETCH, raw(answer))
    code, out = await _run_cli(hostile, tmp_path, "generate", "a cat", "--model", "gpt-image-1")
    fetch_code, fetch_out = await _run_cli(hostile, tmp_path, "fetch", "job-1")
    assert code != 0 and fetch_code != 0
    assert "malformed HTTP answer" in out
    assert "retrying" in fetch_out  # the DEBUG/INFO lines were printed, and are clean
    for window in WINDOWS:
        assert window not in out + fetch_out

"""`python -m ttapi_async.testing` as a real process: banner, one request, clean shutdown."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import aiohttp
import pytest

from ttapi_async.testing._server_main import build_parser, main


async def test_process_serves_and_stops_on_sigterm() -> None:
    """The process prints its banner once bound, answers, and exits 0 on SIGTERM."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ttapi_async.testing",
        "--port",
        "0",
        "--api-key",
        "proc-key",
        "--manual-clock",
        "--job-duration",
        "fixed:10",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        match = re.fullmatch(
            r"FakeTTAPI listening on (http://127\.0\.0\.1:\d+) key=proc-key\n", line
        )
        assert match, line
        url = match[1]
        async with aiohttp.ClientSession(headers={"TT-API-KEY": "proc-key"}) as s:
            async with s.post(f"{url}/openai/gpt/generations", json={"prompt": "p"}) as resp:
                job_id = (await resp.json())["data"]["job_id"]
            async with s.post(f"{url}/_fake/clock/advance", json={"seconds": 10}) as resp:
                assert resp.status == 200
            async with s.get(f"{url}/_fake/jobs/{job_id}") as resp:
                assert (await resp.json())["status"] == "SUCCESS"
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def test_parser_reads_every_kind_of_option() -> None:
    """The parser turns durations, faults and repeated keys into FakeTTAPI settings."""
    args = build_parser().parse_args(
        [
            "--job-duration",
            "lognormal:45,0.4",
            "--fault",
            "status:/v1/*:0.1:500",
            "--fault",
            "drop_after:/openai/gpt/generations:0.5",
            "--extra-key",
            "k2",
            "--rate-limit",
            "5",
        ]
    )
    settings = vars(args)
    assert settings["job_duration"].kind == "lognormal"
    assert [f.kind for f in settings["faults"]] == ["status", "drop_after"]
    assert settings["extra_keys"] == ["k2"]
    assert settings["rate_limit"] == 5.0
    assert "seed" not in settings  # left out: FakeTTAPI's default stands


def test_main_rejects_bad_settings(capsys: pytest.CaptureFixture[str]) -> None:
    """An invalid setting exits with status 2 and a message, before binding anything."""
    with pytest.raises(SystemExit) as caught:
        main(["--time-scale", "0"])
    assert caught.value.code == 2
    assert "time_scale" in capsys.readouterr().err

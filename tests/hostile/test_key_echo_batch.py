"""``ttapi batch`` against a server that echoes the key: journal, manifest and output clean."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from pathlib import Path

from _support import API_KEY, GENERATIONS

from hostile.server import HostileServer, raw, respond

SUBMIT = "/openai/4o-image/generations"
FETCH = "/openai/4o-image/fetch"
KEY = API_KEY.encode()
WINDOWS = [API_KEY[i : i + 8] for i in range(len(API_KEY) - 7)]
FAILED = {"status": "FAILED", "jobId": "job-1", "message": f"bad TT-API-KEY {API_KEY}"}
BROKEN_STATUS = b"HTTX/1.1 " + KEY + b" OK\r\nContent-Length: 2\r\n\r\n{}"


async def test_batch_of_key_echoes_writes_the_key_nowhere(
    hostile: HostileServer, tmp_path: Path
) -> None:
    """A FAILED job echoing the key and a malformed answer quoting it leave no piece of the
    key in the journal, manifest.jsonl, or ``ttapi -vv batch --jsonl`` stdout and stderr."""
    hostile.on(SUBMIT, respond(200, body={"status": "SUCCESS", "data": {"jobId": "job-1"}}))
    hostile.on(FETCH, respond(200, body=FAILED))
    hostile.on(GENERATIONS, raw(BROKEN_STATUS))
    requests = tmp_path / "r.jsonl"
    requests.write_text(
        '{"id": "job", "kind": "gpt4o", "prompt": "a fox"}\n'
        '{"id": "sync", "kind": "generate", "prompt": "a cat", "model": "gpt-image-1"}\n'
    )
    out = tmp_path / "out"
    env = {**os.environ, "TTAPI_API_KEY": API_KEY, "TTAPI_BASE_URL": hostile.url}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "ttapi_async.cli", "-vv", "--poll-scale", "0.001", "batch",
        str(requests), "--out", str(out), "--jsonl", "--concurrency", "1",
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1, stderr
    conn = sqlite3.connect(out / "journal.sqlite3")
    try:
        states = dict(conn.execute("SELECT id, state FROM items"))
        errors = " ".join(str(e) for (e,) in conn.execute("SELECT error FROM items"))
    finally:
        conn.close()
    assert states == {"job": "failed", "sync": "unknown"}
    assert "***" in errors  # the echoes were recorded, redacted
    files = b"".join(p.read_bytes() for p in out.iterdir() if p.is_file())
    everything = stdout + stderr + files
    for window in WINDOWS:
        assert window.encode() not in everything, f"{window!r} leaked"

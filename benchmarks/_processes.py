"""The processes the multi-process benchmarks start: redis-server, the fake, their children.

Shared by ``bench_workers.py`` and ``bench_batch_dist.py``: every one listens on
127.0.0.1 only, is stopped by PID, and every wait on it is bounded.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request
from collections import Counter
from typing import Any

__all__ = ["KEY", "Child", "Fake", "Redis", "free_port"]

#: The API key of the fake (and of every child's client).
KEY = "tt-bench-" + secrets.token_hex(8)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Redis:
    """A redis-server on a free port, killed by PID: persistence off, or with ``durable``
    the append-only file fsynced on every write (``appendfsync always``)."""

    def __init__(self, durable: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise SystemExit("redis-server is not installed (apt-get install redis-server)")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="bench-redis-")
        persist = ["--appendonly", "yes", "--appendfsync", "always"] if durable else [
            "--appendonly", "no"]  # fmt: skip
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             *persist, "--dir", self.dir],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if "Ready to accept connections" in line:
                break
        else:
            raise RuntimeError("redis-server did not start")
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def commandstats(self) -> Counter[str]:
        out = subprocess.run(
            ["redis-cli", "-p", str(self.port), "info", "commandstats"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        return Counter({m[1]: int(m[2]) for m in re.finditer(r"cmdstat_(\S+?):calls=(\d+)", out)})

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)
        shutil.rmtree(self.dir, ignore_errors=True)


class Fake:
    """``python -m ttapi_async.testing`` on a free port."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ttapi_async.testing", "--port", "0", "--api-key", KEY,
             "--seed", "1", *args],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None
        match = re.search(r"(http://\S+) key=", self.proc.stdout.readline())
        if match is None:
            self.proc.kill()
            raise RuntimeError("the fake did not start")
        self.url = match.group(1)

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/_fake/stats") as resp:
            return json.loads(resp.read())  # type: ignore[no-any-return]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


class Child:
    """One measured process, ``script --child CONFIG``: ``ready`` out, ``go`` in, result out.

    A benchmark subclasses it with ``script = __file__`` (it runs itself as the child).
    """

    script: str = ""

    def __init__(self, config: dict[str, Any]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, self.script, "--child", json.dumps(config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    def line(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        raw = self.proc.stdout.readline()
        if not raw:
            raise RuntimeError(f"a child exited with {self.proc.wait(30)}")
        return json.loads(raw)  # type: ignore[no-any-return]

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

"""A real redis-server for the tests: a free port, persistence off, a temp dir, killed by PID."""

from __future__ import annotations

import os
import random
import selectors
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO

import pytest

#: CI sets this: a missing redis-server is then a failure, not a skip.
REQUIRE = os.environ.get("TTAPI_REQUIRE_REDIS") == "1"
START_TIMEOUT = 20.0


def require_redis() -> str:
    """Return the redis-server path, or skip (fail under TTAPI_REQUIRE_REDIS=1) with one line."""
    path = shutil.which("redis-server")
    reason = None
    if path is None:
        reason = "redis-server not installed (apt-get install redis-server)"
    else:
        try:
            import redis  # noqa: F401
        except ImportError:
            reason = "redis-py not installed (pip install 'ttapi_async[redis]')"
    if reason is not None:
        if REQUIRE:
            pytest.fail(f"TTAPI_REQUIRE_REDIS=1 but {reason}")
        pytest.skip(reason)
    assert path is not None
    return path


def _drain(stream: IO[bytes]) -> None:
    with stream:
        while stream.read(65536):
            pass


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now.

    ``TTAPI_TEST_PORTS=LOW-HIGH`` draws it from that range instead of the kernel's ephemeral
    ports: CI runs two suites at once, and a port one of them found free (and closed, for
    the process that binds it next) could be handed to the other in between.
    """
    span = os.environ.get("TTAPI_TEST_PORTS")
    if span:
        low, high = (int(part) for part in span.split("-"))
        for port in random.sample(range(low, high), min(200, high - low)):
            with socket.socket() as sock:
                try:
                    sock.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process; ``stop``/``start`` again keep the port (an outage and a return)."""

    def __init__(
        self,
        binary: str,
        directory: Path,
        *,
        password: str | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.binary = binary
        #: more redis-server arguments (the batch tests turn the append-only file on)
        self.extra_args = tuple(extra_args)
        self.directory = directory
        self.password = password
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._drainer: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Return the server's URL (with its password, if any)."""
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and return once it accepts connections (bounded wait)."""
        args = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.directory),
            "--daemonize", "no", "--loglevel", "notice",
        ]  # fmt: skip
        if self.password:
            args += ["--requirepass", self.password]
        args += self.extra_args
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert self.process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT
        seen = b""
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            while b"Ready to accept connections" not in seen:
                left = deadline - time.monotonic()
                if left <= 0 or self.process.poll() is not None:
                    self.kill()
                    raise RuntimeError(f"redis-server did not start: {seen[-500:]!r}")
                if selector.select(timeout=left):
                    chunk = os.read(self.process.stdout.fileno(), 4096)
                    if not chunk:
                        continue
                    seen += chunk
        # Drain the log from here on so the pipe never fills; the thread ends at EOF.
        self._drainer = threading.Thread(target=_drain, args=(self.process.stdout,), daemon=True)
        self._drainer.start()

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Stop the server by PID (SIGKILL by default: an outage), waiting a bounded time."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            os.kill(process.pid, sig)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        if self._drainer is not None:
            self._drainer.join(timeout=10)
            self._drainer = None

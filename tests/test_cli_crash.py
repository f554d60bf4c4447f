"""Crash and Ctrl-C tests: the CLI as a process against a fake server in another process."""

from __future__ import annotations

import json
import random
import re
import signal
import sqlite3
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ttapi_async.batch import FolderLock

ITEMS = 36
SCALE = 0.01  # jobs of 20-60 service seconds take 0.2-0.6 s
TIMEOUT = 60


@pytest.fixture
def server() -> Iterator[tuple[str, str]]:
    """Run ``python -m ttapi_async.testing`` on a free port; yield (url, key)."""
    yield from run_server("uniform:20,60")


@pytest.fixture
def slow_server() -> Iterator[tuple[str, str]]:
    """Like ``server``, with jobs of 20-30 s: a run over it stays alive until killed."""
    yield from run_server("uniform:2000,3000")


def run_server(duration: str) -> Iterator[tuple[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ttapi_async.testing", "--port", "0", "--seed", "5",
         "--time-scale", str(SCALE), "--job-duration", duration,
         "--max-jobs-in-progress", "6"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    match = re.search(r"(http://\S+) key=(\S+)", proc.stdout.readline())
    assert match, "the fake server did not start"
    try:
        yield match.group(1), match.group(2)
    finally:
        proc.terminate()
        proc.wait(TIMEOUT)
        proc.stdout.close()


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.txt"
    path.write_text("".join(f"crash prompt {i}\n" for i in range(ITEMS)))
    return path


_STARTED: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def no_batch_left_running() -> Iterator[None]:
    """A test that fails mid-run kills the batch it started (by PID), so no later test
    meets its leftover process or pipe."""
    yield
    while _STARTED:
        proc = _STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait(TIMEOUT)
        if proc.stderr is not None:
            proc.stderr.close()


def start(url: str, key: str, prompts: Path, out: Path, *extra: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "ttapi_async.cli", "--base-url", url, "--api-key", key,
         "--poll-scale", str(SCALE), "batch", str(prompts), "--out", str(out), "--quiet",
         "--concurrency", "8", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    _STARTED.append(proc)
    return proc


def states(out: Path) -> dict[str, str]:
    """Read every item's state from the journal (a reader never blocks the writer in WAL)."""
    path = out / "journal.sqlite3"
    if not path.exists():
        return {}
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return dict(conn.execute("SELECT id, state FROM items"))
    except sqlite3.OperationalError:
        return {}  # the schema is not written yet
    finally:
        conn.close()


def submissions(url: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{url}/_fake/stats", timeout=10) as resp:
        return json.loads(resp.read())["submissions_by_prompt"]  # type: ignore[no-any-return]


def wait_until(proc: subprocess.Popen[str], out: Path, predicate: object, limit: float) -> None:
    """Poll the journal (never sleeping) until ``predicate(states)`` or the process ends."""
    assert callable(predicate)
    deadline = limit
    while deadline > 0:
        try:
            proc.wait(timeout=0.02)
            return
        except subprocess.TimeoutExpired:
            deadline -= 0.02
        if predicate(states(out)):
            return
    raise AssertionError("the batch made no progress in time")


def test_sigkill_five_times_then_every_item_done_once(
    server: tuple[str, str], prompts: Path, tmp_path: Path
) -> None:
    """Killed with SIGKILL at five random points and re-run, the batch ends with every item
    done, and every item not caught mid-submission was submitted exactly once."""
    url, key = server
    out = tmp_path / "out"
    rng = random.Random(20261121)
    caught: set[str] = set()  # ids a kill caught between "submitting" and the job id
    for _ in range(5):
        proc = start(url, key, prompts, out)
        progress = rng.randint(1, 5)
        before = sum(s in ("submitted", "done") for s in states(out).values())

        def moved(now: dict[str, str], before: int = before, progress: int = progress) -> bool:
            return sum(s in ("submitted", "done") for s in now.values()) >= before + progress

        wait_until(proc, out, moved, TIMEOUT)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(TIMEOUT) == -signal.SIGKILL, "the batch ended before the kill"
        proc.stderr.close()  # type: ignore[union-attr]
        caught |= {i for i, s in states(out).items() if s == "submitting"}
    final = start(url, key, prompts, out, *(["--resubmit-unknown"] if caught else []))
    _, err = final.communicate(timeout=TIMEOUT)
    assert final.returncode == 0, err
    assert set(states(out).values()) == {"done"}
    counts = submissions(url)
    assert len(counts) == ITEMS
    for i in range(ITEMS):
        item_id, prompt = f"{i + 1:05d}", f"crash prompt {i}"
        assert counts[prompt] == 1 or (item_id in caught and counts[prompt] == 2), item_id


def test_sigint_stops_cleanly_and_the_rerun_finishes(
    server: tuple[str, str], prompts: Path, tmp_path: Path
) -> None:
    """Ctrl-C exits 130 with no item mid-submission; the re-run finishes, nothing sent twice."""
    url, key = server
    out = tmp_path / "out"
    proc = start(url, key, prompts, out)
    wait_until(proc, out, lambda now: "submitted" in now.values(), TIMEOUT)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 130, err
    left = states(out)
    assert "submitting" not in left.values()
    assert "unknown" not in left.values()
    again = start(url, key, prompts, out)
    _, err = again.communicate(timeout=TIMEOUT)
    assert again.returncode == 0, err
    assert set(states(out).values()) == {"done"}
    assert set(submissions(url).values()) == {1}


def test_a_second_run_on_a_held_folder_exits_two_and_pays_nothing(
    slow_server: tuple[str, str], prompts: Path, tmp_path: Path
) -> None:
    """While one run holds --out, a second says in one line which pid holds it and exits 2,
    having sent nothing; once the holder is killed, the folder's lock is free again."""
    url, key = slow_server
    out = tmp_path / "out"
    first = start(url, key, prompts, out)
    try:
        wait_until(first, out, lambda now: "submitted" in now.values(), TIMEOUT)
        assert first.poll() is None, "the first run ended early"
        second = start(url, key, prompts, out)
        _, err = second.communicate(timeout=TIMEOUT)
        assert second.returncode == 2, err
        assert err.count("\n") == 1 and err.startswith("error: ")
        assert f"pid {first.pid} on " in err
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(TIMEOUT)
        first.stderr.close()  # type: ignore[union-attr]
    assert set(submissions(url).values()) == {1}
    with FolderLock(out) as lock:
        assert lock.held


# A batch whose main coroutine never yields to the event loop once it starts.
STUCK_BATCH = """
import sys
from ttapi_async.batch import _runner

async def spin(self):
    print("spinning", flush=True)
    while True:
        pass

_runner.BatchRunner._resume_submitted = spin
from ttapi_async.cli import main
main(sys.argv[1:])
"""


def test_ctrl_c_stops_a_batch_whose_loop_is_stuck(prompts: Path, tmp_path: Path) -> None:
    """Ctrl-C ends the CLI (exit 130) even while a coroutine holds the loop without yielding."""
    proc = subprocess.Popen(
        [sys.executable, "-c", STUCK_BATCH, "batch", str(prompts), "--out", str(tmp_path / "o"),
         "--fake", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline() == "spinning\n"
    for _ in range(5):
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=10)
            break
        except subprocess.TimeoutExpired:
            continue
    else:
        proc.kill()
        proc.wait(TIMEOUT)
    _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 130, err
    assert err.strip().endswith("interrupted")

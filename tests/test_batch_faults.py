"""The runner under faults: surprising errors, failed watches and saves, full disks.

A stub client stands in for the service (its jobs succeed at once), so each test says
exactly where the fault strikes; the job ids the stub hands out are what was paid for.
"""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path
from typing import Any

from ttapi_async import JobTimeoutError
from ttapi_async.batch import BatchOutcome, BatchRequest, BatchRunner, Journal, JournalWriteError
from ttapi_async.batch._commit import Op
from ttapi_async.batch._progress import summary_lines

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


class StubJob:
    """A job that succeeded at once, or raises ``watch_error`` when awaited."""

    def __init__(self, family: StubFamily, job_id: str) -> None:
        self.family = family
        self.id = job_id
        self.image_url = f"https://cdn.example/{job_id}.png"
        self.quota = 2

    def __await__(self) -> Any:
        async def result() -> StubJob:
            error = self.family.watch_errors.pop(self.id, None)
            if error is not None:
                raise error
            return self

        return result().__await__()

    def cancel(self) -> None:
        pass

    async def save(self, path: str | Path) -> Path:
        self.family.saves += 1
        error = self.family.save_error
        if error is not None and self.family.saves > self.family.saves_before_error:
            raise error
        target = Path(path)
        target.write_bytes(PNG)  # noqa: ASYNC240
        return target


class StubFamily:
    """``client.gpt4o``: hands out job ids (the paid work) and lets tests break things."""

    def __init__(self) -> None:
        self.submitted: dict[str, str] = {}  # prompt -> job id
        self.resumed: list[str] = []
        self.submit_errors: dict[str, BaseException] = {}
        self.watch_errors: dict[str, BaseException] = {}
        self.save_error: BaseException | None = None
        self.saves_before_error = 0
        self.saves = 0

    async def submit(self, *, prompt: str, max_retries: int = 2) -> StubJob:
        error = self.submit_errors.get(prompt)
        if error is not None:
            raise error
        job_id = f"job-{len(self.submitted)}"
        self.submitted[prompt] = job_id
        return StubJob(self, job_id)

    def resume(self, job_id: str, *, age: float | None = None, model: str | None = None) -> StubJob:
        self.resumed.append(job_id)
        return StubJob(self, job_id)


class StubClient:
    def __init__(self) -> None:
        self.gpt4o = StubFamily()


def jobs(n: int) -> list[BatchRequest]:
    return [BatchRequest(f"i{k:02d}", "gpt4o", {"prompt": f"p{k}"}) for k in range(n)]


async def run(runner: BatchRunner, requests: list[BatchRequest]) -> dict[str, BatchOutcome]:
    return {o.id: o async for o in runner.run(requests)}


def journal_states(folder: Path) -> dict[str, tuple[str, str | None]]:
    with Journal.open(folder) as journal:
        return {row.id: (row.state, row.job_id) for row in journal.rows()}


async def test_an_item_raising_anything_ends_unknown_and_the_rest_finish(tmp_path: Path) -> None:
    """A RecursionError from one submission ends that item unknown with its error; the
    others finish, and no item is left "submitting"."""
    client = StubClient()
    client.gpt4o.submit_errors["p1"] = RecursionError("maximum recursion depth exceeded")
    outcomes = await run(BatchRunner(client, tmp_path), jobs(3))  # type: ignore[arg-type]
    states = {k: o.state for k, o in outcomes.items()}
    assert states == {"i00": "done", "i01": "unknown", "i02": "done"}
    assert "RecursionError" in (outcomes["i01"].error or "")
    assert journal_states(tmp_path)["i01"][0] == "unknown"


async def test_a_failed_watch_keeps_the_job_for_the_next_run(tmp_path: Path) -> None:
    """A job whose watch fails ends "submitted" with its id; the next run resumes it, unpaid."""
    client = StubClient()
    client.gpt4o.watch_errors["job-0"] = JobTimeoutError("deadline passed", job_id="job-0")
    first = await run(BatchRunner(client, tmp_path), jobs(1))  # type: ignore[arg-type]
    assert (first["i00"].state, first["i00"].job_id) == ("submitted", "job-0")
    assert journal_states(tmp_path)["i00"] == ("submitted", "job-0")
    second = await run(BatchRunner(client, tmp_path), jobs(1))  # type: ignore[arg-type]
    assert second["i00"].state == "done"
    assert client.gpt4o.resumed == ["job-0"] and len(client.gpt4o.submitted) == 1


async def test_a_surprising_watch_error_keeps_the_job(tmp_path: Path) -> None:
    """Even an error nobody foresaw while watching leaves the paid job recorded."""
    client = StubClient()
    client.gpt4o.watch_errors["job-0"] = KeyError("imageUrl")
    runner = BatchRunner(client, tmp_path)  # type: ignore[arg-type]
    outcomes = await run(runner, jobs(1))
    assert outcomes["i00"].state == "submitted" and "KeyError" in (outcomes["i00"].error or "")
    assert journal_states(tmp_path)["i00"] == ("submitted", "job-0")
    assert runner.stats.still_submitted == 1


async def test_a_failed_save_keeps_the_job_and_the_rerun_fetches_it(tmp_path: Path) -> None:
    """A download that fails leaves the job submitted; the next run saves it, unpaid."""
    client = StubClient()
    client.gpt4o.save_error = PermissionError(errno.EACCES, "Permission denied")
    first = await run(BatchRunner(client, tmp_path), jobs(2))  # type: ignore[arg-type]
    assert {o.state for o in first.values()} == {"submitted"}
    assert all("download failed" in (o.error or "") for o in first.values())
    client.gpt4o.save_error = None
    second = await run(BatchRunner(client, tmp_path), jobs(2))  # type: ignore[arg-type]
    assert {o.state for o in second.values()} == {"done"}
    assert len(client.gpt4o.submitted) == 2


async def test_a_full_disk_stops_the_run_and_keeps_every_paid_job(tmp_path: Path) -> None:
    """ENOSPC while saving stops new submissions; every job the service accepted stays
    recorded (done or submitted), the rest stay pending, and the summary says so."""
    client = StubClient()
    client.gpt4o.save_error = OSError(errno.ENOSPC, "No space left on device")
    client.gpt4o.saves_before_error = 3
    runner = BatchRunner(client, tmp_path, concurrency=4)  # type: ignore[arg-type]
    await run(runner, jobs(40))
    states = journal_states(tmp_path)
    paid = set(client.gpt4o.submitted.values())
    assert paid and len(paid) < 40
    assert {job for state, job in states.values() if state in ("done", "submitted")} == paid
    assert {state for state, _ in states.values()} <= {"done", "submitted", "pending"}
    lines = summary_lines(runner.stats, str(tmp_path))
    assert sum(line.startswith("stopped: disk full") for line in lines) == 1
    assert any("still running" in line and "again" in line for line in lines)


class FullDiskJournal(Journal):
    """A journal whose disk fills at the commit that carries its third job id: from there
    on, while ``full`` is set, every commit fails with "database or disk is full".

    Counting job ids, not commits, makes the strike certain: how the ids group into
    commits depends on scheduling (under load one commit can carry all but the first),
    but the run submits until the journal fails, so the third id always arrives."""

    full = False
    jobs_before = 2
    struck = False
    heal_on_stop = True

    def _apply(self, ops: list[Op], durable: bool) -> list[int]:
        cls = type(self)
        if cls.full and not cls.struck:
            cls.jobs_before -= sum("state='submitted'" in sql for sql, _ in ops)
            cls.struck = cls.jobs_before < 0
        if cls.full and cls.struck:
            full = sqlite3.OperationalError("database or disk is full")
            raise JournalWriteError.of(full, self.path) from full
        return super()._apply(ops, durable)

    @classmethod
    def fill(cls, *, heal_on_stop: bool) -> None:
        cls.full, cls.jobs_before, cls.struck = True, 2, False
        cls.heal_on_stop = heal_on_stop


class FullDiskRunner(BatchRunner):
    journal_type = FullDiskJournal

    def stop(self, reason: str | None = None) -> None:
        super().stop(reason)
        if FullDiskJournal.heal_on_stop:
            FullDiskJournal.full = False  # the user freed space; the end of the run retries


async def test_journal_full_keeps_job_ids_and_writes_them_when_it_can(tmp_path: Path) -> None:
    """Job ids whose commit failed (disk full) are written at the end once the journal can
    take them: every job the service accepted is resumable, none is "unknown"."""
    client = StubClient()
    FullDiskJournal.fill(heal_on_stop=True)
    runner = FullDiskRunner(client, tmp_path, concurrency=4)  # type: ignore[arg-type]
    try:
        await run(runner, jobs(30))
    finally:
        FullDiskJournal.full = False
    states = journal_states(tmp_path)
    paid = set(client.gpt4o.submitted.values())
    assert {job for state, job in states.values() if state in ("done", "submitted")} == paid
    assert runner.stats.stopped_reason is not None and not runner.stats.unrecorded


async def test_journal_that_stays_full_names_the_unrecorded_jobs(tmp_path: Path) -> None:
    """When the journal never takes them, the accepted job ids are listed in the summary."""
    client = StubClient()
    FullDiskJournal.fill(heal_on_stop=False)
    runner = FullDiskRunner(client, tmp_path, concurrency=4)  # type: ignore[arg-type]
    try:
        await run(runner, jobs(30))
    finally:
        FullDiskJournal.full = False
    recorded = {job for _, job in journal_states(tmp_path).values() if job}
    unrecorded = runner.stats.unrecorded
    assert set(client.gpt4o.submitted.values()) == recorded | set(unrecorded.values())
    assert unrecorded
    lines = summary_lines(runner.stats, str(tmp_path))
    assert any("could not be written to the journal" in line for line in lines)


def test_sqlite_full_reads_as_a_full_disk() -> None:
    """SQLite's "database or disk is full" becomes a JournalWriteError with errno ENOSPC."""
    error = JournalWriteError.of(sqlite3.OperationalError("database or disk is full"), "j")
    assert error.disk_full


async def test_batch_records_pass_the_redaction_choke_point(tmp_path: Path) -> None:
    """An error quoting a registered key, raised past the client, reaches neither the
    journal, nor manifest.jsonl, nor the outcome."""
    from ttapi_async._redact import register

    secret = "tt-BATCH-ONLY-SECRET-9f8e7d6c"
    register(secret)
    client = StubClient()
    client.gpt4o.watch_errors["job-0"] = RuntimeError(f"upstream said key={secret}")
    outcomes = await run(BatchRunner(client, tmp_path), jobs(1))  # type: ignore[arg-type]
    assert "***" in (outcomes["i00"].error or "") and secret not in (outcomes["i00"].error or "")
    files = [p for p in tmp_path.iterdir() if p.is_file()]  # noqa: ASYNC240
    for path in files:
        assert secret.encode() not in path.read_bytes(), path.name


async def test_an_id_holding_a_registered_short_key_still_runs(tmp_path: Path) -> None:
    """Redaction touches what a server said, never the id an update is matched by: an id
    holding a registered short key ("zq" in "a/zq") is still claimed and finished."""
    from ttapi_async._redact import register

    register("zq")
    client = StubClient()
    requests = [BatchRequest("a/zq", "gpt4o", {"prompt": "p"})]
    outcomes = await run(BatchRunner(client, tmp_path), requests)  # type: ignore[arg-type]
    assert outcomes["a/zq"].state == "done"


class _NoId:
    """A submit answer whose job id cannot be read."""

    @property
    def id(self) -> str:
        raise RuntimeError("answer without a job id")


async def test_an_answer_without_a_readable_job_id_ends_unknown(tmp_path: Path) -> None:
    """A submission answered with no readable job id (paid, maybe) ends unknown, not stuck
    "submitting" and not failed (which --retry-failed would pay for again)."""
    client = StubClient()

    async def submit(*, prompt: str, max_retries: int = 2) -> _NoId:
        return _NoId()

    client.gpt4o.submit = submit  # type: ignore[method-assign,assignment]
    outcomes = await run(BatchRunner(client, tmp_path), jobs(1))  # type: ignore[arg-type]
    assert outcomes["i00"].state == "unknown" and "RuntimeError" in (outcomes["i00"].error or "")
    assert journal_states(tmp_path)["i00"][0] == "unknown"

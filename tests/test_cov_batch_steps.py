"""The runner's per-item steps on the paths the other batch tests leave untrodden.

A small stub client stands in for the service, so each test says exactly where an item's
life goes wrong; what the stub hands out (job ids, answers) is what was paid for.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import attrs

from ttapi_async import APIConnectionError, QueueFullError
from ttapi_async.batch import BatchOutcome, BatchRequest, BatchRunner, Journal, JournalWriteError
from ttapi_async.batch._commit import Op

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 16


@attrs.define
class Image:
    b64_json: str | None = None
    url: str | None = None

    async def save(self, path: str | Path) -> Path:
        raise PermissionError(13, "Permission denied")


@attrs.define
class Answer:
    data: list[Image]
    usage: Any = None
    output_format: str | None = None


class StubJob:
    """A job that succeeded at once, and saves a PNG."""

    def __init__(self, job_id: str) -> None:
        self.id = job_id
        self.image_url = f"https://cdn.example/{job_id}.png"
        self.quota = 2

    def __await__(self) -> Any:
        async def result() -> StubJob:
            return self

        return result().__await__()

    def cancel(self) -> None:
        pass

    async def save(self, path: str | Path) -> Path:
        target = Path(path)
        target.write_bytes(PNG)  # noqa: ASYNC240
        return target


class StubJobs:
    """``client.gpt4o``; ``submit`` may be replaced by a test."""

    def __init__(self) -> None:
        self.submitted: list[str] = []
        self.resume_error: BaseException | None = None

    async def submit(self, *, prompt: str, max_retries: int = 2) -> StubJob:
        self.submitted.append(prompt)
        return StubJob(f"job-{len(self.submitted) - 1}")

    def resume(self, job_id: str, *, age: float | None = None, model: str | None = None) -> Any:
        if self.resume_error is not None:
            raise self.resume_error
        return StubJob(job_id)


class StubImages:
    """``client.images``: answers each generate with ``answer`` (no max_retries taken)."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.calls = 0

    async def generate(self, *, prompt: str) -> Answer:
        self.calls += 1
        return self.answer


class StubClient:
    def __init__(self, answer: Answer | None = None) -> None:
        self.gpt4o = StubJobs()
        self.images = StubImages(answer or Answer([]))


def jobs(n: int) -> list[BatchRequest]:
    return [BatchRequest(f"i{k:02d}", "gpt4o", {"prompt": f"p{k}"}) for k in range(n)]


async def run(runner: BatchRunner, requests: list[BatchRequest]) -> dict[str, BatchOutcome]:
    return {o.id: o async for o in runner.run(requests)}


def journal_states(folder: Path) -> dict[str, tuple[str, str | None]]:
    with Journal.open(folder) as journal:
        return {row.id: (row.state, row.job_id) for row in journal.rows()}


async def test_an_answer_without_images_ends_unknown(tmp_path: Path) -> None:
    """A synchronous answer holding no image was paid for: the item ends unknown, not failed."""
    client = StubClient(Answer([]))
    requests = [BatchRequest("a", "generate", {"prompt": "p"})]
    outcomes = await run(BatchRunner(client, tmp_path), requests)  # type: ignore[arg-type]
    assert outcomes["a"].state == "unknown"
    assert outcomes["a"].error == "the answer holds no image"


async def test_a_synchronous_answer_that_cannot_be_saved_ends_unknown(tmp_path: Path) -> None:
    """An answer whose image download fails ends unknown (sending again would pay again)."""
    client = StubClient(Answer([Image(url="https://cdn.example/a.png")]))
    requests = [BatchRequest("a", "generate", {"prompt": "p"})]
    outcomes = await run(BatchRunner(client, tmp_path), requests)  # type: ignore[arg-type]
    assert outcomes["a"].state == "unknown"
    assert (outcomes["a"].error or "").startswith("answer received but not saved")
    assert journal_states(tmp_path)["a"][0] == "unknown"


async def test_a_method_without_max_retries_is_called_without_it(tmp_path: Path) -> None:
    """A method that takes no ``max_retries`` is called without one (and its answer is saved)."""
    b64 = "iVBORw0KGgoAAAAAAAAAAAAAAAAAAAAA"
    client = StubClient(Answer([Image(b64_json=b64)]))
    requests = [BatchRequest("a", "generate", {"prompt": "p"})]
    outcomes = await run(BatchRunner(client, tmp_path), requests)  # type: ignore[arg-type]
    assert outcomes["a"].state == "done" and client.images.calls == 1
    assert outcomes["a"].files == (tmp_path / "a.png",)


async def test_arguments_the_method_refuses_fail_the_item_unsent(tmp_path: Path) -> None:
    """A parameter the method does not take fails the item before anything is sent."""
    client = StubClient(Answer([]))
    requests = [BatchRequest("a", "generate", {"prompt": "p", "colour": "red"})]
    outcomes = await run(BatchRunner(client, tmp_path), requests)  # type: ignore[arg-type]
    assert outcomes["a"].state == "failed" and "generate:" in (outcomes["a"].error or "")
    assert client.images.calls == 0


async def test_an_item_retried_until_max_attempts_fails(tmp_path: Path) -> None:
    """A submission that certainly did not reach the service is retried, then given up."""
    client = StubClient()
    calls = 0

    async def submit(*, prompt: str, max_retries: int = 2) -> StubJob:
        nonlocal calls
        calls += 1
        raise APIConnectionError("refused", possibly_submitted=False)

    client.gpt4o.submit = submit  # type: ignore[method-assign]
    runner = BatchRunner(client, tmp_path, max_attempts=3)  # type: ignore[arg-type]
    outcomes = await run(runner, jobs(1))
    assert outcomes["i00"].state == "failed"
    assert (outcomes["i00"].error or "").startswith("gave up after 3 attempts")
    assert calls == 3


async def test_a_refused_item_gives_up_after_max_refusals(tmp_path: Path, monkeypatch: Any) -> None:
    """An item the service keeps refusing (499) fails after MAX_REFUSALS, not forever."""
    from ttapi_async.batch import _steps

    monkeypatch.setattr(_steps, "MAX_REFUSALS", 2)
    client = StubClient()

    async def submit(*, prompt: str, max_retries: int = 2) -> StubJob:
        raise QueueFullError("queue full", status_code=499)

    client.gpt4o.submit = submit  # type: ignore[method-assign]
    outcomes = await run(BatchRunner(client, tmp_path), jobs(1))  # type: ignore[arg-type]
    assert (outcomes["i00"].error or "").startswith("gave up after 2 refusals")


async def test_a_resume_that_raises_keeps_the_recorded_job(tmp_path: Path) -> None:
    """A recorded job whose resume raises stays submitted with its id: nothing is paid again."""
    client = StubClient()
    journal = Journal.open(tmp_path)
    journal.sync_input(jobs(1))
    assert await journal.mark_submitting("i00")
    await journal.mark_submitted("i00", "job-0")
    await journal.aclose()
    client.gpt4o.resume_error = RuntimeError("cannot watch")
    outcomes = await run(BatchRunner(client, tmp_path), jobs(1))  # type: ignore[arg-type]
    assert outcomes["i00"].state == "submitted" and outcomes["i00"].job_id == "job-0"
    assert "unexpected RuntimeError" in (outcomes["i00"].error or "")
    assert client.gpt4o.submitted == []


class ClaimFailsJournal(Journal):
    """A journal whose claim commits fail while ``full`` is set."""

    full = True

    def _apply(self, ops: list[Op], durable: bool) -> list[int]:
        if type(self).full and any("state='submitting'" in sql for sql, _ in ops):
            error = sqlite3.OperationalError("database or disk is full")
            raise JournalWriteError.of(error, self.path) from error
        return super()._apply(ops, durable)


class ClaimFailsRunner(BatchRunner):
    journal_type = ClaimFailsJournal


async def test_a_claim_that_cannot_be_written_sends_nothing(tmp_path: Path) -> None:
    """When the claim commit fails the item is not sent, stays pending, and the run stops."""
    client = StubClient()
    runner = ClaimFailsRunner(client, tmp_path)  # type: ignore[arg-type]
    await run(runner, jobs(2))
    assert client.gpt4o.submitted == []
    assert {state for state, _ in journal_states(tmp_path).values()} == {"pending"}
    assert (runner.stats.stopped_reason or "").startswith("disk full")


async def test_abort_records_a_request_in_flight_as_unknown(tmp_path: Path) -> None:
    """An abort while a paid request is in flight records the item unknown, never pending."""
    client = StubClient()
    sent = asyncio.Event()

    async def submit(*, prompt: str, max_retries: int = 2) -> StubJob:
        sent.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    client.gpt4o.submit = submit  # type: ignore[method-assign]
    runner = BatchRunner(client, tmp_path)  # type: ignore[arg-type]

    async def consume() -> None:
        async for _ in runner.run(jobs(1)):
            pass

    task = asyncio.ensure_future(consume())
    await asyncio.wait_for(sent.wait(), 30)
    runner.abort()
    await asyncio.wait_for(task, 30)
    assert journal_states(tmp_path)["i00"][0] == "unknown"


class ClaimedElsewhereJournal(Journal):
    """A journal in which another writer already claimed item i01."""

    async def mark_submitting(self, item_id: str) -> bool:
        if item_id == "i01":
            return False
        return await super().mark_submitting(item_id)


class ClaimedElsewhereRunner(BatchRunner):
    journal_type = ClaimedElsewhereJournal


async def test_an_item_claimed_by_another_writer_is_left_to_it(tmp_path: Path) -> None:
    """An item another writer of the journal claimed first is not sent here, and is counted."""
    client = StubClient()
    runner = ClaimedElsewhereRunner(client, tmp_path)  # type: ignore[arg-type]
    outcomes = await run(runner, jobs(3))
    assert set(outcomes) == {"i00", "i02"} and client.gpt4o.submitted == ["p0", "p2"]
    assert runner.stats.claimed_elsewhere == 1


class ClaimCrashesJournal(Journal):
    """A journal whose claim of item i00 raises something nobody expected."""

    async def mark_submitting(self, item_id: str) -> bool:
        if item_id == "i00":
            raise RuntimeError("claim bug")
        return await super().mark_submitting(item_id)


class ClaimCrashesRunner(BatchRunner):
    journal_type = ClaimCrashesJournal


async def test_a_claim_that_crashes_leaves_the_item_pending_for_the_next_run(
    tmp_path: Path,
) -> None:
    """An item whose claim raised was never sent: it ends unknown here, but stays pending in
    the journal, so the next run sends it (once)."""
    client = StubClient()
    outcomes = await run(ClaimCrashesRunner(client, tmp_path), jobs(1))  # type: ignore[arg-type]
    assert outcomes["i00"].state == "unknown" and "claim bug" in (outcomes["i00"].error or "")
    assert journal_states(tmp_path)["i00"] == ("pending", None)
    assert client.gpt4o.submitted == []
    again = await run(BatchRunner(client, tmp_path), jobs(1))  # type: ignore[arg-type]
    assert again["i00"].state == "done" and client.gpt4o.submitted == ["p0"]

"""Tests of the batch runner against FakeTTAPI at a fast time scale."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import types
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from ttapi_async import AsyncTTAPI, RateLimitError
from ttapi_async._schedule import PollSchedule
from ttapi_async.batch import (
    BatchOutcome,
    BatchRequest,
    BatchRunner,
    InputChangedError,
    Journal,
    run_batch,
)
from ttapi_async.testing import Duration, FakeTTAPI, FaultRule, ManualClock

SCALE = 0.002  # a 10-second job takes 20 ms

SUBMIT_4O = "/openai/4o-image/generations"


@contextlib.asynccontextmanager
async def fake_and_client(**settings: Any) -> AsyncIterator[tuple[FakeTTAPI, AsyncTTAPI]]:
    """Yield a fast FakeTTAPI and a client whose job polls run at the same speed."""
    settings.setdefault("time_scale", SCALE)
    settings.setdefault("job_duration", Duration.uniform(5, 15))
    async with FakeTTAPI(**settings) as fake, fake.client() as client:
        client.watcher.configure(
            schedule=PollSchedule().scaled(settings["time_scale"]), max_per_second=None
        )
        yield fake, client


def jobs(n: int, prefix: str = "p") -> list[BatchRequest]:
    return [BatchRequest(f"item-{i:03d}", "gpt4o", {"prompt": f"{prefix} {i}"}) for i in range(n)]


async def collect(runner: BatchRunner, requests: list[BatchRequest]) -> list[BatchOutcome]:
    return [o async for o in runner.run(requests)]


def manifest(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]


async def test_job_batch_writes_every_image_and_the_manifest(tmp_path: Path) -> None:
    """Every gpt4o item ends done with its image on disk and one manifest line with its job id."""
    async with fake_and_client() as (fake, client):
        outcomes = await collect(BatchRunner(client, tmp_path), jobs(30))
        counts = fake.stats().submissions_by_prompt
    assert sorted(o.state for o in outcomes) == ["done"] * 30
    assert all(p.is_file() and p.suffix == ".png" for o in outcomes for p in o.files)
    lines = manifest(tmp_path)
    assert len(lines) == 30
    assert all(line["job_id"] and line["quota"] == 2 for line in lines)
    assert set(counts.values()) == {1}


async def test_rerun_skips_done_items(tmp_path: Path) -> None:
    """Running a finished batch again submits nothing and yields nothing."""
    async with fake_and_client() as (fake, client):
        await collect(BatchRunner(client, tmp_path), jobs(5))
        runner = BatchRunner(client, tmp_path)
        again = await collect(runner, jobs(5))
        assert again == [] and runner.stats.already_done == 5
        assert fake.stats().jobs["SUCCESS"] == 5


async def test_submitted_job_is_resumed_not_resubmitted(tmp_path: Path) -> None:
    """An item whose job id is in the journal is watched by id: its prompt is sent once."""
    requests = jobs(1)
    async with fake_and_client() as (fake, client):
        job_id = fake.create_job("p 0")
        with Journal.open(tmp_path) as journal:
            journal.sync_input(requests)
            await journal.mark_submitting("item-000")
            await journal.mark_submitted("item-000", job_id)
        runner = BatchRunner(client, tmp_path)
        (outcome,) = await collect(runner, requests)
        assert (outcome.state, outcome.job_id, runner.stats.resumed) == ("done", job_id, 1)
        assert fake.stats().submissions_by_prompt.get("p 0", 0) == 0  # created without HTTP


async def test_possibly_submitted_item_is_unknown_and_not_resent(tmp_path: Path) -> None:
    """A submit whose answer is lost is "unknown" and stays so on a re-run unless asked."""
    async with fake_and_client(faults=[FaultRule("drop_after", SUBMIT_4O, times=1)]) as (
        fake,
        client,
    ):
        (first,) = await collect(BatchRunner(client, tmp_path, max_attempts=1), jobs(1))
        assert first.state == "unknown" and "may have been" in (first.error or "")
        assert await collect(BatchRunner(client, tmp_path), jobs(1)) == []
        assert fake.stats().submissions_by_prompt["p 0"] == 1
        (last,) = await collect(BatchRunner(client, tmp_path, resubmit_unknown=True), jobs(1))
        assert last.state == "done"
        assert fake.stats().submissions_by_prompt["p 0"] == 2


async def test_failed_job_is_retried_only_when_asked(tmp_path: Path) -> None:
    """A FAILED job is recorded with its reason; --retry-failed submits it again."""
    async with fake_and_client(job_failure_rate=1.0) as (fake, client):
        (first,) = await collect(BatchRunner(client, tmp_path), jobs(1))
        assert first.state == "failed" and "job failed" in (first.error or "")
        assert first.job_id is not None
        assert await collect(BatchRunner(client, tmp_path), jobs(1)) == []
        await collect(BatchRunner(client, tmp_path, retry_failed=True), jobs(1))
        assert fake.stats().submissions_by_prompt["p 0"] == 2


async def test_queue_limit_is_found_and_respected(tmp_path: Path) -> None:
    """Against 4 jobs in progress, 499s shrink the limit and every item still completes."""
    async with fake_and_client(max_jobs_in_progress=4) as (fake, client):
        runner = BatchRunner(client, tmp_path, concurrency=50)
        outcomes = await collect(runner, jobs(40))
        assert sorted(o.state for o in outcomes) == ["done"] * 40
        assert runner.stats.refused > 0
        assert runner.limiters["gpt4o"].limit < 50
        assert set(fake.stats().submissions_by_prompt.values()) == {1}


class _StubJob:
    """A job that has already succeeded, with an image it can save."""

    def __init__(self, job_id: str) -> None:
        self.id = job_id
        self.image_url = f"https://cdn.example/{job_id}.png"
        self.quota = 2

    def __await__(self) -> Any:
        async def result() -> _StubJob:
            return self

        return result().__await__()

    async def save(self, path: str | Path) -> Path:
        target = Path(path)
        target.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 16)  # noqa: ASYNC240
        return target


class _StubFamily:
    """``client.gpt4o`` refusing its first submission with 429 and Retry-After: 7."""

    def __init__(self) -> None:
        self.calls = 0

    async def submit(self, *, prompt: str, max_retries: int = 2) -> _StubJob:
        self.calls += 1
        if self.calls == 1:
            raise RateLimitError("slow down", status_code=429, headers={"Retry-After": "7"})
        return _StubJob(f"job-{self.calls}")


async def test_retry_after_pauses_new_submissions(tmp_path: Path) -> None:
    """A 429 with Retry-After: 7 holds the family's next submission for 7 s of the clock."""
    now = [100.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    client = types.SimpleNamespace(gpt4o=_StubFamily())
    runner = BatchRunner(
        client,  # type: ignore[arg-type]
        tmp_path,
        initial_limit=1,
        clock=lambda: now[0],
        sleep=sleep,
    )
    outcomes = await collect(runner, jobs(2))
    assert sorted(o.state for o in outcomes) == ["done", "done"]
    assert slept == [7.0]
    assert runner.stats.refused == 1


async def test_refusals_without_retry_after_shrink_the_limit(tmp_path: Path) -> None:
    """Two 429s without Retry-After are retried and leave the limit below where it was."""
    async with fake_and_client() as (fake, client):
        fake.fail_next(SUBMIT_4O, n=2, status=429)
        runner = BatchRunner(client, tmp_path, initial_limit=8)
        outcomes = await collect(runner, jobs(8))
        assert sorted(o.state for o in outcomes) == ["done"] * 8
        assert runner.stats.refused == 2
        assert not runner.limiters["gpt4o"].slow_start


async def test_changed_input_is_refused(tmp_path: Path) -> None:
    """Re-running a folder with different prompts raises InputChangedError, sending nothing."""
    async with fake_and_client() as (fake, client):
        await collect(BatchRunner(client, tmp_path), jobs(3))
        with pytest.raises(InputChangedError, match="item-001"):
            await collect(BatchRunner(client, tmp_path), jobs(3, prefix="other"))
        assert sum(fake.stats().submissions_by_prompt.values()) == 3


async def test_stop_leaves_submitted_jobs_for_the_next_run(tmp_path: Path) -> None:
    """stop() after the first outcome ends the run; the next run resumes without resubmitting."""
    async with fake_and_client(job_duration=Duration.uniform(5, 200)) as (fake, client):
        runner = BatchRunner(client, tmp_path, concurrency=10)
        async for _ in runner.run(jobs(30)):
            runner.stop()
        assert runner.stats.interrupted and runner.stats.remaining > 0
        rest = await collect(BatchRunner(client, tmp_path, concurrency=10), jobs(30))
        assert {o.state for o in rest} == {"done"}
        with Journal.open(tmp_path) as journal:
            assert journal.counts()["done"] == 30
        assert set(fake.stats().submissions_by_prompt.values()) == {1}


async def test_generate_items_decode_base64_to_files(tmp_path: Path) -> None:
    """images.generate items write their base64 images and record the token usage."""
    requests = [
        BatchRequest(f"g{i}", "generate", {"prompt": f"g {i}", "model": "gpt-image-1", "n": 2})
        for i in range(3)
    ]
    async with fake_and_client() as (_, client):
        outcomes = [o async for o in run_batch(client, requests, out_dir=tmp_path)]
    assert all(o.state == "done" and len(o.files) == 2 for o in outcomes)
    assert all(o.usage and o.usage["total_tokens"] > 0 for o in outcomes)
    assert (tmp_path / "g0" / "1.png").read_bytes().startswith(b"\x89PNG")


async def test_dalle3_urls_are_downloaded_at_once(tmp_path: Path) -> None:
    """A DALL-E 3 answer's URL is downloaded during the run, not left to expire."""
    requests = [BatchRequest("d", "dalle3", {"prompt": "d", "size": "1024x1024"})]
    async with fake_and_client() as (_, client):
        (outcome,) = [o async for o in run_batch(client, requests, out_dir=tmp_path)]
    assert outcome.state == "done"
    assert outcome.files[0].read_bytes()[:4] in (b"\x89PNG", b"RIFF", b"\xff\xd8\xff\xe0")


async def test_invalid_params_fail_the_item_without_a_request(tmp_path: Path) -> None:
    """A parameter the endpoint rejects client-side fails that item; nothing is sent for it."""
    requests = [BatchRequest("bad", "generate", {"prompt": "x", "size": "3x3"})]
    async with fake_and_client() as (fake, client):
        (outcome,) = [o async for o in run_batch(client, requests, out_dir=tmp_path)]
        assert outcome.state == "failed" and "size" in (outcome.error or "")
        assert fake.stats().requests == 0


async def test_wrong_key_stops_the_batch(tmp_path: Path) -> None:
    """A 401 stops submitting at once (every item would fail alike) and says why."""
    async with fake_and_client() as (fake, _):
        async with AsyncTTAPI(api_key="wrong", base_url=fake.url) as client:
            runner = BatchRunner(client, tmp_path, concurrency=1)
            outcomes = await collect(runner, jobs(20))
        assert outcomes == []
        assert "AuthenticationError" in (runner.stats.stopped_reason or "")
        assert fake.stats().requests < 5


async def test_chaos_every_item_ends_and_no_job_is_submitted_twice(tmp_path: Path) -> None:
    """2,000 items under 429s, 499s, 5xx, dropped connections and failing jobs all end with
    a reason, and no item with a recorded job id was submitted twice."""
    faults = [
        FaultRule("status", SUBMIT_4O, probability=0.02, status=(429,)),
        FaultRule("status", SUBMIT_4O, probability=0.05, status=(500, 502, 503)),
        FaultRule("drop_before", SUBMIT_4O, probability=0.02),
        FaultRule("drop_after", SUBMIT_4O, probability=0.02),
        FaultRule("status", "/openai/4o-image/fetch", probability=0.05),
        FaultRule("drop_before", "/openai/4o-image/fetch", probability=0.02),
    ]
    async with fake_and_client(
        faults=faults,
        max_jobs_in_progress=150,
        job_failure_rate=0.05,
        job_duration=Duration.uniform(5, 15),
    ) as (fake, client):
        # One prompt (the fake renders its image once) and a distinct reference image per
        # item: the fake's jobs, counted per reference, are the submissions per item.
        requests = [
            BatchRequest(
                f"c{i:04d}",
                "gpt4o",
                {"prompt": "chaos", "refer_images": [f"https://img.example/{i}.png"]},
            )
            for i in range(2000)
        ]
        runner = BatchRunner(client, tmp_path, concurrency=300)
        outcomes = await collect(runner, requests)
        counts = collections.Counter(job.refer_images[0] for job in fake.jobs)
    assert len(outcomes) == 2000
    assert len({o.id for o in outcomes}) == 2000
    assert all(o.state == "done" or o.error for o in outcomes)
    states = {o.state for o in outcomes}
    assert states == {"done", "failed", "unknown"}
    with Journal.open(tmp_path) as journal:
        for row in journal.rows():
            ref = row.params["refer_images"][0]
            if row.job_id is not None:
                assert counts[ref] == 1, row
            assert counts[ref] <= 1


async def test_edit_items_upload_their_images(tmp_path: Path) -> None:
    """An edit item reads its image file, sends it, and saves the answer."""
    from ttapi_async.testing._images import ImageSpec, encode_png

    source = tmp_path / "in.png"
    source.write_bytes(encode_png(ImageSpec(64, 64)))
    requests = [BatchRequest("e", "edit", {"prompt": "add a hat", "image": [str(source)]})]
    async with fake_and_client() as (fake, client):
        (outcome,) = [o async for o in run_batch(client, requests, out_dir=tmp_path / "o")]
        assert fake.stats().submissions_by_prompt["add a hat"] == 1
    assert outcome.state == "done", outcome.error
    assert outcome.files[0].is_file()


async def test_job_the_service_does_not_know_fails_and_can_be_retried(tmp_path: Path) -> None:
    """A recorded job id the service answers 404 for ends failed; --retry-failed resubmits."""
    requests = jobs(1)
    with Journal.open(tmp_path) as journal:
        journal.sync_input(requests)
        await journal.mark_submitting("item-000")
        await journal.mark_submitted("item-000", "00000000-0000-4000-8000-000000000000")
    async with fake_and_client() as (fake, client):
        (first,) = await collect(BatchRunner(client, tmp_path), requests)
        assert first.state == "failed" and "does not know job" in (first.error or "")
        (second,) = await collect(BatchRunner(client, tmp_path, retry_failed=True), requests)
        assert second.state == "done"
        assert fake.stats().submissions_by_prompt["p 0"] == 1


async def test_interrupted_summary_counts_the_jobs_still_running(tmp_path: Path) -> None:
    """After a stop, the summary counts the submitted jobs still running apart from the
    items not run, and says a re-run collects them without submitting again."""
    from ttapi_async.batch._progress import summary_lines, summary_record

    async with fake_and_client(job_duration=Duration.uniform(100, 200)) as (_, client):
        runner = BatchRunner(client, tmp_path, concurrency=10)
        async for _ in runner.run(jobs(30)):
            runner.stop()
        stats = runner.stats
        with Journal.open(tmp_path) as journal:
            submitted = journal.counts()["submitted"]
    assert submitted > 0 and stats.still_submitted == submitted
    assert stats.remaining == 30 - stats.finished_items - submitted
    text = "\n".join(summary_lines(stats, str(tmp_path)))
    assert f"{submitted} still running" in text
    assert f"{submitted} submitted job(s) are still running" in text
    assert "not submitted again" in text
    assert summary_record(stats)["still_submitted"] == submitted


async def test_stop_ends_an_items_wait_for_a_lease_and_sends_nothing(tmp_path: Path) -> None:
    """An item waiting for room under the account's limit when the run stops gives the wait
    up and stays pending, unsent: the one lease is held by a job the stop let go (for the
    ambiguous hold, 2 minutes), so waiting on would hang the stop that long."""
    from ttapi_async.coordination import LimitSettings, LocalCoordinator

    coordinator = LocalCoordinator(LimitSettings(cap=1, initial=1))
    async with (
        FakeTTAPI(clock=ManualClock(), job_duration=Duration.fixed(600)) as fake,
        fake.client(coordinator=coordinator) as client,
    ):
        runner = BatchRunner(client, tmp_path, concurrency=2)
        asked: list[str] = []
        acquire = coordinator.acquire_lease

        async def counted(product: str, *, timeout: float | None = None) -> Any:
            asked.append(product)
            return await acquire(product, timeout=timeout)

        coordinator.acquire_lease = counted  # type: ignore[method-assign]

        async def stop_when_the_second_waits() -> None:
            for _ in range(100_000):  # bounded: a few event-loop turns in practice
                if len(asked) == 2 and fake.stats().submissions_by_prompt:
                    runner.stop()
                    return
                await asyncio.sleep(0)
            raise AssertionError("the second item never started its submit")

        stopper = asyncio.ensure_future(stop_when_the_second_waits())
        ended = await asyncio.wait_for(collect(runner, jobs(2)), 30)
        await stopper
        sent = dict(fake.stats().submissions_by_prompt)
    assert ended == []  # one job stays submitted for a resume, one item waits its turn
    assert sum(sent.values()) == 1
    with Journal.open(tmp_path) as journal:
        states = sorted(row.state for row in journal.rows())
    assert states == ["pending", "submitted"]


async def test_an_item_waiting_for_a_lease_is_not_claimed_so_an_abort_leaves_it_pending(
    tmp_path: Path,
) -> None:
    """A job item is marked "submitting" only once it holds its lease: aborted (as a killed
    run is) while it waits, it stays pending (the next run sends it), not unknown."""
    from ttapi_async.coordination import LimitSettings, LocalCoordinator

    coordinator = LocalCoordinator(LimitSettings(cap=1, initial=1))
    async with (
        FakeTTAPI(clock=ManualClock(), job_duration=Duration.fixed(600)) as fake,
        fake.client(coordinator=coordinator) as client,
    ):
        held = await coordinator.acquire_lease("gpt4o")  # the only slot: the item must wait
        asked = asyncio.Event()
        acquire = coordinator.acquire_lease

        async def asking(product: str, *, timeout: float | None = None) -> Any:
            asked.set()
            return await acquire(product, timeout=timeout)

        coordinator.acquire_lease = asking  # type: ignore[method-assign]
        runner = BatchRunner(client, tmp_path, concurrency=1)
        running = asyncio.ensure_future(collect(runner, jobs(1)))
        await asyncio.wait_for(asked.wait(), 30)
        with Journal.open(tmp_path) as journal:
            waiting = [row.state for row in journal.rows()]
        runner.abort()
        ended = await asyncio.wait_for(running, 30)
        sent = dict(fake.stats().submissions_by_prompt)
        await coordinator.release_lease(held)
    with Journal.open(tmp_path) as journal:
        states = [row.state for row in journal.rows()]
    assert waiting == ["pending"] and states == ["pending"]
    assert ended == [] and sent == {} and runner.stats.unknown == 0

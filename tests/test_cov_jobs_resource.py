"""client.gpt4o / client.gpt: argument guards and odd fetch answers, on a local server."""

from __future__ import annotations

from typing import Any

import pytest
from _support import LocalServer, json_answer
from _support import client as client
from _support import server as server
from _support import sleeps as sleeps

from ttapi_async import APIResponseValidationError, AsyncTTAPI, InvalidRequestError, PollSchedule

SUBMIT_4O = "/openai/4o-image/generations"
FETCH_4O = "/openai/4o-image/fetch"
SUBMIT_GPT = "/openai/gpt/generations"
FETCH_GPT = "/openai/gpt/fetch"

SUBMITTED: dict[str, Any] = {"status": "SUCCESS", "message": "ok", "data": {"jobId": "j-1"}}
FINISHED: dict[str, Any] = {
    "status": "SUCCESS",
    "message": "success",
    "jobId": "j-1",
    "data": {"prompt": "a fox", "imageUrl": "https://cdn.example/j-1.png", "quota": 3},
}


async def test_fetch_of_an_empty_job_id_sends_nothing(
    client: AsyncTTAPI, server: LocalServer
) -> None:
    """fetch("") raises InvalidRequestError before any request is sent."""
    with pytest.raises(InvalidRequestError, match="job_id"):
        await client.gpt4o.fetch("")
    assert server.requests == []


def test_resume_of_an_empty_job_id_raises(client: AsyncTTAPI) -> None:
    """resume("") raises InvalidRequestError instead of watching nothing."""
    with pytest.raises(InvalidRequestError, match="job_id"):
        client.gpt4o.resume("")


async def test_a_fetch_answer_without_a_status_is_a_validation_error(
    client: AsyncTTAPI, server: LocalServer
) -> None:
    """A fetch answered with JSON that is no job status raises APIResponseValidationError."""
    server.reply("POST", FETCH_4O, json_answer({"hello": "world"}))
    with pytest.raises(APIResponseValidationError, match="job status"):
        await client.gpt4o.fetch("j-1")


async def test_a_fetch_answer_without_a_job_id_is_read_as_that_job(
    client: AsyncTTAPI, server: LocalServer
) -> None:
    """A status that names no job is the status of the job asked for."""
    server.reply("POST", FETCH_4O, json_answer({"status": "ON_QUEUE", "message": "", "data": None}))
    status = await client.gpt4o.fetch("j-9")
    assert (status.job_id, status.status) == ("j-9", "ON_QUEUE")


async def test_hook_and_hook_url_together_are_refused(
    client: AsyncTTAPI, server: LocalServer
) -> None:
    """submit(hook=True, hook_url=...) raises before anything is sent."""
    with pytest.raises(InvalidRequestError, match="exclusive"):
        await client.gpt4o.submit(prompt="x", hook=True, hook_url="https://example.com/h")
    assert server.requests == []


async def test_extra_body_is_merged_and_validation_can_be_skipped(
    client: AsyncTTAPI, server: LocalServer
) -> None:
    """With validate=False an over-long prompt is sent as given, with extra_body merged in."""
    server.reply("POST", SUBMIT_4O, json_answer(SUBMITTED))
    job = await client.gpt4o.submit(
        prompt="x" * 100_000, validate=False, extra_body={"seed": 7}, deadline=5
    )
    job.cancel()
    body = server.requests[0].json()
    assert body["seed"] == 7 and len(body["prompt"]) == 100_000


async def test_gpt_generate_submits_and_waits(client: AsyncTTAPI, server: LocalServer) -> None:
    """client.gpt.generate() submits to /openai/gpt and returns the fetched result."""
    server.reply("POST", SUBMIT_GPT, json_answer(SUBMITTED))
    server.reply("POST", FETCH_GPT, json_answer(FINISHED))
    client.watcher.configure(
        max_per_second=None, schedule=PollSchedule(first_delay=0.0, learn=False)
    )
    result = await client.gpt.generate(prompt="a fox", model="gpt-image-2")
    assert result.quota == 3 and result.prompt == "a fox"
    assert server.requests[0].json()["model"] == "gpt-image-2"

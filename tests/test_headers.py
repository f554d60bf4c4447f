"""Results, jobs and errors carry the answer's headers and its request id, never a key."""

from __future__ import annotations

from typing import Any

import pytest
from _support import (
    API_KEY,
    DALLE3,
    DALLE3_OK,
    EDITS,
    GENERATION_OK,
    GENERATIONS,
    PNG,
    LocalServer,
    json_answer,
)
from _support import client as client
from _support import server as server
from _support import sleeps as sleeps

from ttapi_async import AsyncTTAPI, BadRequestError, RateLimitError
from ttapi_async._headers import REQUEST_ID_HEADERS, request_id_of

SUBMIT_OK = {"status": "SUCCESS", "message": "success", "data": {"jobId": "job-1"}}
FETCH_OK = {
    "status": "SUCCESS",
    "jobId": "job-1",
    "message": "success",
    "data": {"imageUrl": "https://cdn.example/a.png", "quota": "3", "finishTime": None},
}


async def test_generate_result_has_headers_and_request_id(
    client: AsyncTTAPI, server: LocalServer
) -> None:
    """images.generate's result exposes the response headers and the x-request-id."""
    server.reply(
        "POST",
        GENERATIONS,
        json_answer(GENERATION_OK, **{"x-request-id": "req-42", "x-ratelimit-remaining": "7"}),
    )
    result = await client.images.generate(prompt="a cat", model="gpt-image-1")
    assert result.request_id == "req-42"
    assert result.headers["X-RateLimit-Remaining"] == "7"  # case-insensitive


async def test_edit_and_dalle3_results_have_request_ids(
    client: AsyncTTAPI, server: LocalServer
) -> None:
    """images.edit and dalle3.generate results read the other usual request-id names."""
    server.reply("POST", EDITS, json_answer(GENERATION_OK, **{"request-id": "edit-1"}))
    server.reply("POST", DALLE3, json_answer(DALLE3_OK, **{"apim-request-id": "d3-1"}))
    edited = await client.images.edit(prompt="a hat", image=PNG, model="gpt-image-1")
    made = await client.dalle3.generate(prompt="a cat", size="1024x1024")
    assert (edited.request_id, made.request_id) == ("edit-1", "d3-1")


async def test_job_submit_and_fetch_carry_headers(client: AsyncTTAPI, server: LocalServer) -> None:
    """A submitted Job has the submit's headers; a fetched status and result the fetch's."""
    server.reply(
        "POST", "/openai/4o-image/generations", json_answer(SUBMIT_OK, **{"x-request-id": "s-1"})
    )
    server.reply("POST", "/openai/4o-image/fetch", json_answer(FETCH_OK, **{"x-request-id": "f-1"}))
    job = await client.gpt4o.submit(prompt="a cat")
    status = await client.gpt4o.fetch("job-1")
    assert job.request_id == "s-1" and job.headers["x-request-id"] == "s-1"
    assert status.request_id == "f-1"
    job.cancel()


async def test_status_error_has_request_id(client: AsyncTTAPI, server: LocalServer) -> None:
    """An APIStatusError carries the request id of the answer that raised it."""
    server.reply(
        "POST",
        GENERATIONS,
        json_answer({"error": {"message": "slow down"}}, 429, **{"x-request-id": "rl-9"}),
    )
    with pytest.raises(RateLimitError) as caught:
        await client.images.generate(prompt="a cat", model="gpt-image-1", max_retries=0)
    assert caught.value.request_id == "rl-9"


async def test_echoed_key_in_headers_is_redacted(client: AsyncTTAPI, server: LocalServer) -> None:
    """A key echoed in a response header (or as the request id) never comes out."""
    echoed = {"x-request-id": f"id-{API_KEY}", "x-debug": f"key={API_KEY}"}
    server.reply(
        "POST",
        GENERATIONS,
        json_answer(GENERATION_OK, **echoed),
        json_answer({"error": {"message": "no"}}, 400, **echoed),
    )
    result = await client.images.generate(prompt="a cat", model="gpt-image-1")
    with pytest.raises(BadRequestError) as caught:
        await client.images.generate(prompt="a cat", model="gpt-image-1", max_retries=0)
    for holder in (result, caught.value):
        assert API_KEY not in str(dict(holder.headers))
        assert holder.request_id is not None and API_KEY not in holder.request_id


def test_result_built_by_hand_has_no_headers() -> None:
    """A result not made from an HTTP answer has empty headers and no request id."""
    from ttapi_async import ImagesResponse

    made = ImagesResponse(created=1)
    assert dict(made.headers) == {} and made.request_id is None


@pytest.mark.parametrize("name", REQUEST_ID_HEADERS)
def test_every_request_id_header_is_read(name: str) -> None:
    """Each header name in REQUEST_ID_HEADERS is found, whatever its case."""
    from multidict import CIMultiDict

    headers: Any = CIMultiDict({name.upper(): "abc"})
    assert request_id_of(headers) == "abc"

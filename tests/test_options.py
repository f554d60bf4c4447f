"""Per-call options are type- and range-checked before anything is sent (issue 8, item 5)."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from _support import DALLE3, GENERATION_OK, GENERATIONS, PNG, LocalServer, json_answer
from _support import client as client
from _support import server as server
from _support import sleeps as sleeps

from ttapi_async import AsyncTTAPI, InvalidRequestError
from ttapi_async.batch import BatchRequest, BatchRunner
from ttapi_async.testing import FakeTTAPI

SUBMIT = "/openai/4o-image/generations"
SUBMITTED = {"status": "SUCCESS", "message": "success", "data": {"jobId": "job-1"}}

Call = Callable[[AsyncTTAPI, dict[str, Any]], Awaitable[Any]]


async def _gpt4o(c: AsyncTTAPI, kw: dict[str, Any]) -> Any:
    return await c.gpt4o.submit(prompt="a fox", **kw)


async def _gpt(c: AsyncTTAPI, kw: dict[str, Any]) -> Any:
    return await c.gpt.submit(prompt="a fox", **kw)


async def _generate(c: AsyncTTAPI, kw: dict[str, Any]) -> Any:
    return await c.images.generate(prompt="a cat", model="gpt-image-1", **kw)


async def _dalle3(c: AsyncTTAPI, kw: dict[str, Any]) -> Any:
    return await c.dalle3.generate(prompt="a cat", size="1024x1024", **kw)


async def _edit(c: AsyncTTAPI, kw: dict[str, Any]) -> Any:
    return await c.images.edit(prompt="a hat", image=PNG, model="gpt-image-1", **kw)


async def _edit_json(c: AsyncTTAPI, kw: dict[str, Any]) -> Any:
    return await c.images.edit(
        prompt="a hat", image="https://cdn.example/a.png", model="gpt-image-1", **kw
    )


async def _stream(c: AsyncTTAPI, kw: dict[str, Any]) -> Any:
    return [e async for e in c.images.stream(prompt="a cat", model="gpt-image-1", **kw)]


CALLS: dict[str, Call] = {
    "gpt4o.submit": _gpt4o,
    "gpt.submit": _gpt,
    "images.generate": _generate,
    "dalle3.generate": _dalle3,
    "images.edit": _edit,
    "images.edit-json": _edit_json,
    "images.stream": _stream,
}

BAD_OPTIONS: dict[str, dict[str, Any]] = {
    "timeout-str": {"timeout": "10"},
    "timeout-zero": {"timeout": 0},
    "timeout-negative": {"timeout": -1.0},
    "timeout-nan": {"timeout": math.nan},
    "timeout-inf": {"timeout": math.inf},
    "timeout-bool": {"timeout": True},
    "max_retries-str": {"max_retries": "2"},
    "max_retries-negative": {"max_retries": -1},
    "max_retries-float": {"max_retries": 1.5},
    "max_retries-bool": {"max_retries": True},
    "extra_headers-list": {"extra_headers": [("X-A", "b")]},
    "extra_headers-int-value": {"extra_headers": {"X-A": 1}},
    "extra_headers-crlf": {"extra_headers": {"X-A": "b\r\nX-Injected: 1"}},
    "extra_headers-bad-name": {"extra_headers": {"X A": "b"}},
    "extra_body-nan": {"extra_body": {"seed": math.nan}},
    "extra_body-infinity": {"extra_body": {"nested": {"weight": [math.inf]}}},
    "extra_body-list": {"extra_body": ["seed", 1]},
    "extra_body-int-key": {"extra_body": {1: "x"}},
    "extra_body-not-json": {"extra_body": {"when": object()}},
}
# Options only the paid, non-streaming calls take.
PAID_ONLY: dict[str, dict[str, Any]] = {
    "retry_possibly_submitted-str": {"retry_possibly_submitted": "no"},
}
JOB_ONLY: dict[str, dict[str, Any]] = {
    "deadline-str": {"deadline": "10"},
    "deadline-zero": {"deadline": 0},
    "deadline-negative": {"deadline": -5},
    "deadline-nan": {"deadline": math.nan},
}


def _cases() -> list[Any]:
    cases = []
    for call in CALLS:
        options = dict(BAD_OPTIONS)
        if call != "images.stream":
            options.update(PAID_ONLY)
        if call.startswith("gpt"):
            options.update(JOB_ONLY)
        cases += [pytest.param(call, name, id=f"{call}-{name}") for name in options]
    return cases


ALL_OPTIONS = {**BAD_OPTIONS, **PAID_ONLY, **JOB_ONLY}


@pytest.mark.parametrize(("call", "option"), _cases())
async def test_bad_option_raises_before_anything_is_sent(
    server: LocalServer, client: AsyncTTAPI, call: str, option: str
) -> None:
    """A wrong-typed or out-of-range option raises InvalidRequestError and sends nothing."""
    for path in (SUBMIT, "/openai/gpt/generations", DALLE3):
        server.reply("POST", path, json_answer(SUBMITTED))
    server.reply("POST", GENERATIONS, json_answer(GENERATION_OK))
    with pytest.raises(InvalidRequestError) as info:
        await CALLS[call](client, dict(ALL_OPTIONS[option]))
    assert server.requests == []
    assert info.value.param in {*ALL_OPTIONS[option]}


async def test_gpt4o_submit_deadline_string_pays_nothing(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """``gpt4o.submit(deadline="10")`` used to POST (and pay), then raise TypeError."""
    server.reply("POST", SUBMIT, json_answer(SUBMITTED))
    with pytest.raises(InvalidRequestError, match="deadline"):
        await client.gpt4o.submit(prompt="a fox", deadline="10")  # type: ignore[arg-type]
    assert server.requests == []


async def test_gpt4o_submit_max_retries_string_pays_nothing(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """``max_retries="2"`` is refused before the paid POST, not after its first attempt."""
    server.reply("POST", SUBMIT, json_answer({"error": {"message": "busy"}}, 429))
    with pytest.raises(InvalidRequestError, match="max_retries"):
        await client.gpt4o.submit(prompt="a fox", max_retries="2")  # type: ignore[arg-type]
    assert server.requests == []


@pytest.mark.parametrize(
    "ref",
    [{"file_id": None}, {"file_id": ""}, {"file_id": 7}, {"bogus": "x"}, {}],
    ids=["none", "empty", "int", "unknown-key", "no-key"],
)
async def test_bad_edit_reference_sends_nothing(
    server: LocalServer, client: AsyncTTAPI, ref: dict[str, Any]
) -> None:
    """An edit reference that is not one non-empty image_url/file_id str sends nothing."""
    server.reply("POST", "/v1/images/edits", json_answer(GENERATION_OK))
    with pytest.raises(InvalidRequestError, match="image"):
        await client.images.edit(prompt="a hat", image=ref, model="gpt-image-1")
    assert server.requests == []


@pytest.mark.parametrize("bad", [{"file_id": None}, {"image_url": 3}], ids=["none", "int"])
async def test_bad_mask_reference_sends_nothing(
    server: LocalServer, client: AsyncTTAPI, bad: dict[str, Any]
) -> None:
    """A mask reference is checked like an image reference."""
    with pytest.raises(InvalidRequestError, match="mask"):
        await client.images.edit(
            prompt="a hat", image={"file_id": "file-1"}, mask=bad, model="gpt-image-1"
        )
    assert server.requests == []


async def test_good_options_are_sent(server: LocalServer, client: AsyncTTAPI) -> None:
    """Valid options (an int timeout, None for no limit, 0 retries) still go out as given."""
    server.reply("POST", GENERATIONS, json_answer(GENERATION_OK))
    await client.images.generate(
        prompt="a cat",
        model="gpt-image-1",
        timeout=30,
        max_retries=0,
        retry_possibly_submitted=False,
        extra_headers={"X-Trace": "t-1"},
        extra_body={"seed": 1.5, "tags": ["a"]},
    )
    await client.images.generate(prompt="a cat", model="gpt-image-1", timeout=None)
    first = server.requests[0]
    assert first.headers["X-Trace"] == "t-1"
    assert first.json()["seed"] == 1.5
    assert len(server.requests) == 2


async def test_resume_checks_its_deadline(client: AsyncTTAPI) -> None:
    """``resume(deadline=...)`` is checked like submit's, and job ids must be str."""
    with pytest.raises(InvalidRequestError, match="deadline"):
        client.gpt4o.resume("job-1", deadline=-1)
    with pytest.raises(InvalidRequestError, match="job_id"):
        client.gpt4o.resume(123)  # type: ignore[arg-type]


async def test_batch_item_with_a_bad_option_fails_without_paying(tmp_path: Path) -> None:
    """A JSONL line with ``deadline: "10"`` ends failed, unsent; it is never left submitting."""
    requests = [
        BatchRequest("bad-deadline", "gpt4o", {"prompt": "a fox", "deadline": "10"}),
        BatchRequest("bad-retries", "gpt4o", {"prompt": "a cat", "max_retries": "2"}),
    ]
    async with FakeTTAPI(time_scale=0.002) as fake, fake.client() as c:
        outcomes = [o async for o in BatchRunner(c, tmp_path).run(requests)]
        submitted = fake.stats().submissions_by_prompt
    assert sorted(o.state for o in outcomes) == ["failed", "failed"]
    assert all("InvalidRequestError" in (o.error or "") for o in outcomes)
    assert not submitted

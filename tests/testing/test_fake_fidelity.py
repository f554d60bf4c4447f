"""The emulator answers as the live API does (issue 12): answer fields, partial images, errors."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import aiohttp
import pytest
from fake_helpers import post_json

from ttapi_async.testing import FakeTTAPI, FaultRule, ManualClock

GEN = "/v1/images/generations"


async def _stream(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any]
) -> list[dict[str, Any]]:
    async with session.post(url, json=body) as resp:
        assert resp.status == 200
        text = (await resp.read()).decode()
    return [json.loads(block.split("\n")[1][6:]) for block in text.strip().split("\n\n")]


async def test_gpt_answer_says_what_was_made(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """A GPT generation answers top-level background, output_format, size and quality."""
    body = {
        "prompt": "a cat",
        "model": "gpt-image-1.5",
        "size": "1536x1024",
        "quality": "low",
        "output_format": "jpeg",
    }
    status, answer = await post_json(session, fake_ttapi.url + GEN, body)
    assert status == 200
    picked = {k: answer[k] for k in ("background", "output_format", "size", "quality")}
    assert picked == {
        "background": "opaque",
        "output_format": "jpeg",
        "size": "1536x1024",
        "quality": "low",
    }


async def test_gpt_answer_resolves_auto(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """Defaults and "auto" are answered as the values used, transparent background included."""
    body = {"prompt": "a logo", "model": "gpt-image-1", "background": "transparent"}
    _, answer = await post_json(session, fake_ttapi.url + GEN, body)
    assert (answer["background"], answer["output_format"]) == ("transparent", "png")
    assert (answer["size"], answer["quality"]) == ("1024x1024", "high")


async def test_dalle_answer_has_no_gpt_fields(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """A dall-e-2 answer carries only created and data, as OpenAI's does."""
    _, answer = await post_json(session, fake_ttapi.url + GEN, {"prompt": "p", "size": "256x256"})
    assert set(answer) == {"created", "data"}


async def test_gpt_usage_has_output_token_details(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """GPT usage splits output tokens into image and text tokens, summing to output_tokens."""
    _, answer = await post_json(
        session, fake_ttapi.url + GEN, {"prompt": "p", "model": "gpt-image-1"}
    )
    usage = answer["usage"]
    details = usage["output_tokens_details"]
    assert details["image_tokens"] + details["text_tokens"] == usage["output_tokens"] > 0


async def test_partial_images_vary_but_never_exceed_the_ask(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """By default streams send at most partial_images partials (some fewer), then one completed."""
    counts = []
    for i in range(12):
        body = {"prompt": f"p{i}", "model": "gpt-image-1", "stream": True, "partial_images": 3}
        events = await _stream(session, fake_ttapi.url + GEN, body)
        types = [e["type"] for e in events]
        partials = types.count("image_generation.partial_image")
        assert types == ["image_generation.partial_image"] * partials + [
            "image_generation.completed"
        ]
        assert [e["partial_image_index"] for e in events[:-1]] == list(range(partials))
        counts.append(partials)
    assert max(counts) == 3 and min(counts) < 3


async def test_partial_images_are_seeded(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """The same prompt on a fake of the same seed streams the same number of partials."""
    body = {"prompt": "again", "model": "gpt-image-1", "stream": True, "partial_images": 3, "n": 3}
    first = [e["type"] for e in await _stream(session, fake_ttapi.url + GEN, body)]
    second = [e["type"] for e in await _stream(session, fake_ttapi.url + GEN, body)]
    assert first == second
    assert first.count("image_generation.completed") == 3


@pytest.mark.fake_ttapi(stream_partials="exact")
async def test_partial_images_exact_option(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """stream_partials="exact" always sends every partial asked for."""
    for i in range(6):
        body = {"prompt": f"p{i}", "model": "gpt-image-1", "stream": True, "partial_images": 2}
        types = [e["type"] for e in await _stream(session, fake_ttapi.url + GEN, body)]
        assert types.count("image_generation.partial_image") == 2


def test_stream_partials_rejects_unknown_mode() -> None:
    """An unknown stream_partials mode is refused at construction."""
    with pytest.raises(ValueError):
        FakeTTAPI(stream_partials="some")  # type: ignore[arg-type]


_PART = b'--XX\r\nContent-Disposition: form-data; name="prompt"\r\n\r\n'
_BROKEN_MULTIPART = {
    "header-without-colon": _PART.replace(b"Disposition:", b"Disposition") + b"hi\r\n--XX--\r\n",
    "cut-short": _PART + b"hi",
    "no-boundary-in-body": b"hello world",
    "text-not-utf8": _PART + b"\xff\xfe\r\n--XX--\r\n",
}


@pytest.mark.parametrize("body", list(_BROKEN_MULTIPART.values()), ids=list(_BROKEN_MULTIPART))
async def test_malformed_multipart_is_a_logged_400(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession, body: bytes
) -> None:
    """A multipart body that breaks the framing answers 400 in OpenAI's shape, and is logged."""
    headers = {"Content-Type": "multipart/form-data; boundary=XX"}
    async with session.post(
        f"{fake_ttapi.url}/v1/images/edits", data=body, headers=headers
    ) as resp:
        assert resp.status == 400 and resp.content_type == "application/json"
        error = (await resp.json())["error"]
    assert error["type"] == "invalid_request_error" and "multipart" in error["message"]
    assert [(r.path, r.status) for r in fake_ttapi.requests] == [("/v1/images/edits", 400)]
    assert fake_ttapi.stats().by_endpoint == {"POST /v1/images/edits": {400: 1}}


@pytest.mark.parametrize(
    ("path", "allow"),
    [("/v1/images/generations", "POST"), ("/openai/gpt/fetch", "GET, POST")],
)
async def test_405_names_the_allowed_methods(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession, path: str, allow: str
) -> None:
    """A wrong method answers 405 with an Allow header listing the path's methods."""
    async with session.delete(fake_ttapi.url + path) as resp:
        assert resp.status == 405
        assert resp.headers["Allow"] == allow


@pytest.mark.parametrize("path", ["/v1/nowhere", "/v1/images/generations"])
async def test_v1_checks_the_key_before_the_path(
    fake_ttapi: FakeTTAPI, anon: aiohttp.ClientSession, path: str
) -> None:
    """An unknown /v1 path, or a wrong method, without a valid key answers 401, not 404/405."""
    async with anon.get(fake_ttapi.url + path, headers={"Authorization": "Bearer wrong"}) as resp:
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "invalid_api_key"


async def test_v1_without_a_key_says_so(fake_ttapi: FakeTTAPI, anon: aiohttp.ClientSession) -> None:
    """No key at all on /v1 answers 401 saying no key was given, with a null code as OpenAI's."""
    _, body = await post_json(anon, fake_ttapi.url + GEN, {"prompt": "p"})
    assert body["error"]["code"] is None
    assert "didn't provide an API key" in body["error"]["message"]


async def test_unknown_v1_path_names_method_and_path(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """An unknown /v1 path with a valid key answers 404 code unknown_url naming the request."""
    status, body = await post_json(session, f"{fake_ttapi.url}/v1/images/nowhere", {})
    assert status == 404
    assert body["error"]["code"] == "unknown_url"
    assert "POST /v1/images/nowhere" in body["error"]["message"]


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"prompt": "p", "n": 99}, "invalid_value"),
        ({"prompt": "p", "colour": "red"}, "unknown_parameter"),
        ({"n": 1}, "missing_required_parameter"),
    ],
)
async def test_refused_parameter_has_openai_code(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession, body: dict[str, Any], code: str
) -> None:
    """A refused /v1 parameter answers error.code as OpenAI does."""
    status, answer = await post_json(session, fake_ttapi.url + GEN, body)
    assert status == 400
    assert answer["error"]["code"] == code


@pytest.mark.parametrize("seconds", [5, 5.0])
def test_job_duration_takes_a_number(seconds: float) -> None:
    """FakeTTAPI(job_duration=5) means every job takes exactly 5 seconds."""
    clock = ManualClock()
    fake = FakeTTAPI(clock=clock, job_duration=seconds, queue_share=0.0)
    job_id = fake.create_job("p")
    clock.advance(4.9)
    assert fake.job(job_id).status == "ON_QUEUE"  # type: ignore[union-attr]
    clock.advance(0.1)
    assert fake.job(job_id).status == "SUCCESS"  # type: ignore[union-attr]


@pytest.mark.parametrize("value", ["5", True, [5]])
def test_job_duration_refuses_other_types(value: object) -> None:
    """A job_duration that is neither a Duration nor a number raises TypeError at construction."""
    with pytest.raises(TypeError):
        FakeTTAPI(job_duration=value)  # type: ignore[arg-type]


@pytest.mark.fake_ttapi(time_scale=0.01)
async def test_client_hanging_up_during_delay_is_quiet(
    fake_ttapi: FakeTTAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """A client that hangs up during a delay fault is recorded (status 0) without a traceback."""
    fake_ttapi.add_fault(FaultRule("delay", GEN, delay=20.0))
    logged = asyncio.Event()
    log = fake_ttapi._state.log

    def spy(*args: Any) -> None:
        log(*args)
        logged.set()

    fake_ttapi._state.log = spy  # type: ignore[method-assign]
    body = json.dumps({"prompt": "p", "size": "256x256"}).encode()
    host, port = fake_ttapi.url.removeprefix("http://").split(":")
    _, writer = await asyncio.open_connection(host, int(port))
    head = (
        f"POST {GEN} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {fake_ttapi.api_key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body)
    await writer.drain()
    writer.close()
    await writer.wait_closed()
    with caplog.at_level(logging.DEBUG):
        await asyncio.wait_for(logged.wait(), 10)
    assert [(r.status, r.fault) for r in fake_ttapi.requests] == [(0, "delay")]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


async def test_a_failing_endpoint_is_a_recorded_500(
    fake_ttapi: FakeTTAPI,
    session: aiohttp.ClientSession,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An endpoint that raises answers 500 in the endpoint's error shape, logged and recorded."""

    async def broken(*args: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(fake_ttapi._web.images, "_images", broken)
    with caplog.at_level(logging.ERROR):
        status, body = await post_json(session, fake_ttapi.url + GEN, {"prompt": "p"})
    assert status == 500 and body["error"]["type"] == "server_error"
    assert [(r.path, r.status) for r in fake_ttapi.requests] == [(GEN, 500)]
    assert any("FakeTTAPI failed" in r.getMessage() for r in caplog.records)

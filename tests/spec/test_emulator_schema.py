"""The emulator's /v1 answers conform to the kept copy of OpenAI's Images API schemas."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import pytest
from jsonschema import Draft202012Validator
from spec_schemas import assert_valid, errors, schema, spec, unknown_keys

from ttapi_async.testing import FakeTTAPI, FaultRule, ManualClock
from ttapi_async.testing._images import ImageSpec, encode_png

_EVENT_SCHEMAS = {
    "image_generation.partial_image": "ImageGenPartialImageEvent",
    "image_generation.completed": "ImageGenCompletedEvent",
    "image_edit.partial_image": "ImageEditPartialImageEvent",
    "image_edit.completed": "ImageEditCompletedEvent",
}


@pytest.fixture
async def session(fake_ttapi: FakeTTAPI) -> Any:
    """Yield a bare aiohttp session that sends the fake's key as a Bearer token."""
    headers = {"Authorization": f"Bearer {fake_ttapi.api_key}"}
    async with aiohttp.ClientSession(headers=headers) as s:
        yield s


def _png(width: int = 64, height: int = 64) -> bytes:
    return encode_png(ImageSpec(width, height, prompt="source"))


def _assert_images_response(body: dict[str, Any]) -> None:
    assert_valid("ImagesResponse", body)
    assert not unknown_keys("ImagesResponse", body)
    for item in body["data"]:
        assert not unknown_keys("Image", item)


async def _read_events(resp: aiohttp.ClientResponse) -> list[tuple[str, dict[str, Any]]]:
    assert resp.status == 200 and resp.content_type == "text/event-stream"
    text = (await resp.read()).decode()
    events = []
    for block in text.strip().split("\n\n"):
        event_line, data_line = block.split("\n")
        events.append((event_line.removeprefix("event: "), json.loads(data_line[6:])))
    return events


def _assert_stream(events: list[tuple[str, dict[str, Any]]], union: str) -> None:
    assert events, "no events"
    for name, data in events:
        assert data["type"] == name
        assert_valid(union, data)
        assert_valid(_EVENT_SCHEMAS[name], data)
        assert not unknown_keys(_EVENT_SCHEMAS[name], data)


def test_kept_copy_is_valid_json_schema() -> None:
    """Every kept schema is valid draft 2020-12 JSON Schema, and the copy names its commit."""
    assert len(spec()["commit"]) == 40 and spec()["commit"] in spec()["source"]
    for body in spec()["components"]["schemas"].values():
        Draft202012Validator.check_schema(body)


def test_validator_accepts_spec_example_and_rejects_a_broken_one() -> None:
    """The spec's own ImagesResponse example passes and the same example without `created` fails."""
    example = json.loads(schema("ImagesResponse")["x-oaiMeta"]["example"])
    assert errors("ImagesResponse", example) == []
    del example["created"]
    assert errors("ImagesResponse", example)


@pytest.mark.parametrize(
    "body",
    [
        {"prompt": "a cat"},
        {"prompt": "a cat", "model": "dall-e-2", "size": "256x256", "n": 2},
        {"prompt": "a cat", "model": "dall-e-2", "response_format": "b64_json", "size": "256x256"},
        {"prompt": "a cat", "model": "dall-e-3", "style": "vivid", "quality": "hd"},
        {"prompt": "a cat", "model": "gpt-image-1", "size": "1024x1536", "quality": "low"},
        {"prompt": "a cat", "model": "gpt-image-1.5", "output_format": "jpeg", "quality": "high"},
        {
            "prompt": "a logo",
            "model": "gpt-image-2",
            "background": "transparent",
            "output_format": "webp",
            "output_compression": 80,
        },
    ],
    ids=["default", "dalle2-url", "dalle2-b64", "dalle3", "gpt1", "gpt15-jpeg", "gpt2-webp"],
)
async def test_generation_answer_conforms(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession, body: dict[str, Any]
) -> None:
    """A generation's 200 answer is a valid ImagesResponse with no field the spec lacks."""
    async with session.post(f"{fake_ttapi.url}/v1/images/generations", json=body) as resp:
        assert resp.status == 200
        _assert_images_response(await resp.json())


async def test_multipart_edit_answer_conforms(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """A multipart edit (two image[] parts, gpt-image-1) answers a valid ImagesResponse."""
    form = aiohttp.FormData()
    form.add_field("prompt", "a basket")
    form.add_field("model", "gpt-image-1")
    for i in range(2):
        form.add_field("image[]", _png(), filename=f"{i}.png", content_type="image/png")
    async with session.post(f"{fake_ttapi.url}/v1/images/edits", data=form) as resp:
        assert resp.status == 200
        _assert_images_response(await resp.json())


async def test_dalle2_edit_answer_conforms(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """A dall-e-2 multipart edit with a mask answers a valid ImagesResponse (URLs)."""
    form = aiohttp.FormData()
    form.add_field("prompt", "add a hat")
    form.add_field("model", "dall-e-2")
    form.add_field("size", "256x256")
    form.add_field("image", _png(), filename="a.png", content_type="image/png")
    form.add_field("mask", _png(), filename="m.png", content_type="image/png")
    async with session.post(f"{fake_ttapi.url}/v1/images/edits", data=form) as resp:
        assert resp.status == 200
        _assert_images_response(await resp.json())


async def test_json_edit_answer_conforms(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """A JSON edit with image references answers a valid ImagesResponse."""
    body = {
        "model": "gpt-image-1.5",
        "prompt": "Add a watercolor effect to this image",
        "images": [{"image_url": "https://example.com/source-image.png"}],
        "size": "1024x1024",
        "quality": "high",
    }
    async with session.post(f"{fake_ttapi.url}/v1/images/edits", json=body) as resp:
        assert resp.status == 200
        _assert_images_response(await resp.json())


async def test_generation_stream_events_conform(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """Every event of a streamed generation is a valid ImageGenStreamEvent of its named type."""
    body = {"prompt": "s", "model": "gpt-image-1", "stream": True, "partial_images": 2, "n": 2}
    async with session.post(f"{fake_ttapi.url}/v1/images/generations", json=body) as resp:
        events = await _read_events(resp)
    _assert_stream(events, "ImageGenStreamEvent")
    assert [name for name, _ in events].count("image_generation.completed") == 2


async def test_edit_stream_events_conform(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """Every event of a streamed multipart edit is a valid ImageEditStreamEvent of its type."""
    form = aiohttp.FormData()
    form.add_field("prompt", "a hat")
    form.add_field("model", "gpt-image-1")
    form.add_field("stream", "true")
    form.add_field("partial_images", "1")
    form.add_field("image", _png(), filename="a.png", content_type="image/png")
    async with session.post(f"{fake_ttapi.url}/v1/images/edits", data=form) as resp:
        events = await _read_events(resp)
    _assert_stream(events, "ImageEditStreamEvent")
    assert events[-1][0] == "image_edit.completed"


async def _error_of(resp: aiohttp.ClientResponse, status: int) -> dict[str, Any]:
    assert resp.status == status
    body: dict[str, Any] = await resp.json(content_type=None)
    assert_valid("ErrorResponse", body)
    assert not unknown_keys("Error", body["error"])
    return body


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("POST", "/v1/images/generations", {"json": {"prompt": "p", "n": 99}}, 400),
        ("POST", "/v1/images/generations", {"data": b"{not json"}, 400),
        ("POST", "/v1/images/edits", {"json": {"prompt": "p", "model": "gpt-image-1"}}, 400),
        ("GET", "/v1/images/generations", {}, 405),
        ("POST", "/v1/images/nowhere", {"json": {}}, 404),
    ],
    ids=["bad-param", "bad-json", "edit-without-images", "wrong-method", "unknown-path"],
)
async def test_error_answers_conform(
    fake_ttapi: FakeTTAPI,
    session: aiohttp.ClientSession,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
) -> None:
    """Refusals of /v1 requests are valid ErrorResponse bodies."""
    async with session.request(method, fake_ttapi.url + path, **kwargs) as resp:
        await _error_of(resp, status)


async def test_auth_error_conforms(fake_ttapi: FakeTTAPI) -> None:
    """A wrong key on /v1 is answered 401 with a valid ErrorResponse."""
    async with aiohttp.ClientSession(headers={"Authorization": "Bearer wrong"}) as anon:
        url = f"{fake_ttapi.url}/v1/images/generations"
        async with anon.post(url, json={"prompt": "p"}) as resp:
            await _error_of(resp, 401)


@pytest.mark.fake_ttapi(banned_words=("forbidden",))
async def test_content_policy_error_conforms(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """A prompt refused by the safety stand-in answers a valid ErrorResponse."""
    url = f"{fake_ttapi.url}/v1/images/generations"
    async with session.post(url, json={"prompt": "a forbidden cat"}) as resp:
        body = await _error_of(resp, 400)
    assert body["error"]["code"] == "content_policy_violation"


@pytest.mark.fake_ttapi(clock=ManualClock(), rate_limit=1.0, rate_burst=1)
async def test_rate_limit_error_conforms(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """A request over the rate limit answers 429 with a valid ErrorResponse."""
    url = f"{fake_ttapi.url}/v1/images/generations"
    statuses = []
    for _ in range(2):
        async with session.post(url, json={"prompt": "p", "size": "256x256"}) as resp:
            statuses.append(resp.status)
            if resp.status == 429:
                await _error_of(resp, 429)
    assert statuses == [200, 429]


@pytest.mark.parametrize("status", [500, 503])
async def test_injected_server_error_conforms(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession, status: int
) -> None:
    """An injected server error on /v1 is a valid ErrorResponse."""
    fake_ttapi.add_fault(FaultRule("status", "/v1/*", status=status, times=1))
    url = f"{fake_ttapi.url}/v1/images/generations"
    async with session.post(url, json={"prompt": "p"}) as resp:
        await _error_of(resp, status)


async def test_free_size_is_the_one_known_deviation(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """A gpt-image-2 free size is answered as made, which only the spec's size enum refuses."""
    body = {"prompt": "wide", "model": "gpt-image-2", "size": "1536x864"}
    async with session.post(f"{fake_ttapi.url}/v1/images/generations", json=body) as resp:
        answer = await resp.json()
    assert answer["size"] == "1536x864"
    problems = errors("ImagesResponse", answer)
    assert len(problems) == 1 and problems[0].startswith("size:")

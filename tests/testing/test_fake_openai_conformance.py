"""Conformance: the official openai SDK, pointed at the fake, works as against OpenAI."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import openai
import pytest
from fake_helpers import decode_png

from ttapi_async.testing import FakeTTAPI
from ttapi_async.testing._images import ImageSpec, encode_png


@pytest.fixture
async def sdk(fake_ttapi: FakeTTAPI) -> AsyncIterator[openai.AsyncOpenAI]:
    """Yield an AsyncOpenAI client on the fake's /v1, without retries."""
    client = openai.AsyncOpenAI(
        base_url=fake_ttapi.url + "/v1", api_key=fake_ttapi.api_key, max_retries=0
    )
    async with client:
        yield client


def _png(width: int = 32, height: int = 32) -> bytes:
    return encode_png(ImageSpec(width, height, prompt="upload"))


async def test_sdk_generate(sdk: openai.AsyncOpenAI) -> None:
    """images.generate parses the answer: b64 image of the asked size and usage."""
    result = await sdk.images.generate(prompt="a cute cat", model="gpt-image-1", size="1024x1536")
    assert result.data is not None and result.data[0].b64_json is not None
    assert decode_png(base64.b64decode(result.data[0].b64_json))[:2] == (1024, 1536)
    assert result.usage is not None and result.usage.total_tokens > 0


async def test_sdk_generate_dalle3_url(sdk: openai.AsyncOpenAI) -> None:
    """A dall-e-3 generation gives the SDK a URL and a revised prompt."""
    result = await sdk.images.generate(prompt="a cat", model="dall-e-3", style="vivid")
    assert result.data is not None
    assert result.data[0].url is not None and result.data[0].revised_prompt


async def test_sdk_edit_one_image(sdk: openai.AsyncOpenAI) -> None:
    """images.edit with one image (dall-e-2) is answered."""
    result = await sdk.images.edit(
        image=("a.png", _png(), "image/png"),
        prompt="add a hat",
        model="dall-e-2",
        size="256x256",
        response_format="b64_json",
    )
    assert result.data is not None and result.data[0].b64_json is not None
    assert decode_png(base64.b64decode(result.data[0].b64_json))[:2] == (256, 256)


async def test_sdk_edit_several_images(sdk: openai.AsyncOpenAI, fake_ttapi: FakeTTAPI) -> None:
    """images.edit with a list of images sends image[] parts, all counted by the fake."""
    images = [(f"{i}.png", _png(), "image/png") for i in range(4)]
    result = await sdk.images.edit(image=images, prompt="a gift basket", model="gpt-image-1")
    assert result.usage is not None
    assert result.usage.input_tokens_details.image_tokens == 4 * 323
    assert len(fake_ttapi.requests[-1].params["image"]) == 4


@pytest.mark.fake_ttapi(stream_partials="exact")
async def test_sdk_stream_generate(sdk: openai.AsyncOpenAI) -> None:
    """Streaming generation yields typed partial events then a completed event."""
    stream = await sdk.images.generate(
        prompt="stream", model="gpt-image-1", stream=True, partial_images=3
    )
    events = [event async for event in stream]
    assert [e.type for e in events] == ["image_generation.partial_image"] * 3 + [
        "image_generation.completed"
    ]
    assert [getattr(e, "partial_image_index", None) for e in events[:3]] == [0, 1, 2]
    assert events[-1].usage is not None  # type: ignore[union-attr]


@pytest.mark.fake_ttapi(stream_partials="exact")
async def test_sdk_stream_edit(sdk: openai.AsyncOpenAI) -> None:
    """Streaming edits yield image_edit.* events."""
    stream = await sdk.images.edit(
        image=("a.png", _png(), "image/png"),
        prompt="stream edit",
        model="gpt-image-1",
        stream=True,
        partial_images=1,
    )
    types = [event.type async for event in stream]
    assert types == ["image_edit.partial_image", "image_edit.completed"]


async def test_sdk_bad_request_names_param(sdk: openai.AsyncOpenAI) -> None:
    """A bad size raises BadRequestError whose body names the param."""
    with pytest.raises(openai.BadRequestError) as caught:
        await sdk.images.generate(prompt="a", model="dall-e-3", size="256x256")
    assert caught.value.status_code == 400
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "size"


async def test_sdk_authentication_error(fake_ttapi: FakeTTAPI) -> None:
    """A wrong key raises AuthenticationError."""
    async with openai.AsyncOpenAI(
        base_url=fake_ttapi.url + "/v1", api_key="wrong", max_retries=0
    ) as client:
        with pytest.raises(openai.AuthenticationError):
            await client.images.generate(prompt="a", model="gpt-image-1")


@pytest.mark.fake_ttapi(rate_limit=0.001, rate_burst=1)
async def test_sdk_rate_limit_error(sdk: openai.AsyncOpenAI) -> None:
    """Past the rate limit the SDK raises RateLimitError, with Retry-After in the response."""
    await sdk.images.generate(prompt="a", model="gpt-image-1")
    with pytest.raises(openai.RateLimitError) as caught:
        await sdk.images.generate(prompt="a", model="gpt-image-1")
    assert int(caught.value.response.headers["retry-after"]) >= 1


async def test_sdk_internal_server_error(sdk: openai.AsyncOpenAI, fake_ttapi: FakeTTAPI) -> None:
    """A 503 fault raises InternalServerError."""
    fake_ttapi.fail_next("/v1/images/generations", status=503)
    with pytest.raises(openai.InternalServerError):
        await sdk.images.generate(prompt="a", model="gpt-image-1")

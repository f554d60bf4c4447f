"""``client.images`` and the emulator refuse only what the service refuses (issue 12)."""

from __future__ import annotations

from typing import Any

import pytest
from _examples import SEED_GENERATION_CURL
from _support import EDITS, GENERATION_OK, GENERATIONS, LocalServer, json_answer
from _support import client as client
from _support import server as server
from _support import sleeps as sleeps

from ttapi_async import AsyncTTAPI, BadRequestError, ImagesResponse, InvalidRequestError
from ttapi_async._models import structure
from ttapi_async.testing import FakeTTAPI

EDIT_OK: dict[str, Any] = {"created": 1, "data": [{"b64_json": "aGk="}]}


async def test_seed_body_works_as_generate_keywords(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """The vendor's cURL body, passed as ``generate(**body)``, is sent exactly as written."""
    server.reply("POST", GENERATIONS, json_answer(GENERATION_OK))
    await client.images.generate(**SEED_GENERATION_CURL)
    (request,) = server.requests
    assert request.json() == SEED_GENERATION_CURL


@pytest.mark.parametrize("validate", [True, False])
async def test_generate_stream_true_points_at_images_stream(
    server: LocalServer, client: AsyncTTAPI, validate: bool
) -> None:
    """``generate(stream=True)`` raises InvalidRequestError naming images.stream, sends nothing."""
    with pytest.raises(InvalidRequestError, match=r"images\.stream") as caught:
        await client.images.generate(
            prompt="a cat", model="gpt-image-1", stream=True, validate=validate
        )
    assert caught.value.param == "stream"
    assert server.requests == []


async def test_generate_without_model_sends_gpt_only_params(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """Without model, GPT-only parameters are sent for the service to judge, not refused."""
    server.reply("POST", GENERATIONS, json_answer(GENERATION_OK))
    await client.images.generate(prompt="a cat", background="transparent", output_format="webp")
    assert server.requests[0].json() == {
        "prompt": "a cat",
        "background": "transparent",
        "output_format": "webp",
    }


async def test_edit_moderation_goes_in_the_json_body(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """``images.edit(moderation=...)`` with image URLs sends moderation in the JSON body."""
    server.reply("POST", EDITS, json_answer(EDIT_OK))
    await client.images.edit(
        prompt="a hat", image="https://cdn.example/a.png", model="gpt-image-1", moderation="low"
    )
    body = server.requests[0].json()
    assert body["moderation"] == "low"
    assert body["images"] == [{"image_url": "https://cdn.example/a.png"}]


def test_usage_keeps_output_tokens_details() -> None:
    """``usage.output_tokens_details`` of an answer reaches the typed response."""
    payload = {
        "created": 1,
        "data": [],
        "usage": {
            "input_tokens": 9,
            "output_tokens": 4160,
            "total_tokens": 4169,
            "output_tokens_details": {"image_tokens": 4100, "text_tokens": 60},
        },
    }
    usage = structure(payload, ImagesResponse).usage
    assert usage is not None and usage.output_tokens_details is not None
    assert usage.output_tokens_details.image_tokens == 4100
    assert usage.output_tokens_details.text_tokens == 60


# --- the emulator validates with the same rules ----------------------------------------------


@pytest.mark.parametrize("size", ["4096x2304", "16x48"])
async def test_fake_refuses_gpt_image_2_sizes_out_of_bounds(
    fake_ttapi: FakeTTAPI, size: str
) -> None:
    """The emulator answers 400 (param size) for gpt-image-2 sizes past the documented bounds."""
    async with fake_ttapi.client(validate=False) as c:
        with pytest.raises(BadRequestError) as caught:
            await c.images.generate(prompt="big", model="gpt-image-2", size=size)
    assert caught.value.status_code == 400
    assert caught.value.param == "size"


async def test_fake_serves_the_seed_body(fake_ttapi: FakeTTAPI) -> None:
    """The emulator answers the vendor's cURL body (no model, png with compression 100)."""
    async with fake_ttapi.client() as c:
        response = await c.images.generate(**SEED_GENERATION_CURL)
    assert len(response.data) == 1

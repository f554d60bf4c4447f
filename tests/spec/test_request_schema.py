"""The client's outgoing /v1 request bodies conform to the kept copy of OpenAI's schemas."""

from __future__ import annotations

from typing import Any

import pytest
from _examples import examples_for
from _support import EDITS, GENERATION_OK, GENERATIONS, LocalServer, json_answer, make_png
from _support import client as client
from _support import server as server
from _support import sleeps as sleeps
from hypothesis import given, settings
from spec_schemas import assert_valid, schema, unknown_keys
from test_params import valid_generate_params

from ttapi_async import AsyncTTAPI
from ttapi_async._params import validate_edit_json, validate_generate

EDIT_OK: dict[str, Any] = {"created": 1, "data": [{"b64_json": "aGk="}]}
GENERATE_EXAMPLES = examples_for("generate")
JSON_EDIT_EXAMPLES = examples_for("edit_json")


@pytest.mark.parametrize(
    "body", [e[2] for e in GENERATE_EXAMPLES], ids=[e[0] for e in GENERATE_EXAMPLES]
)
def test_generation_examples_conform_and_pass_validation(body: dict[str, Any]) -> None:
    """Each seed and OpenAI generation example is a CreateImageRequest the validator accepts."""
    assert_valid("CreateImageRequest", body)
    assert not unknown_keys("CreateImageRequest", body)
    validate_generate(dict(body))


@pytest.mark.parametrize(
    "body", [e[2] for e in JSON_EDIT_EXAMPLES], ids=[e[0] for e in JSON_EDIT_EXAMPLES]
)
def test_json_edit_examples_conform_and_pass_validation(body: dict[str, Any]) -> None:
    """Each OpenAI JSON edit example is an EditImageBodyJsonParam the validator accepts."""
    assert_valid("EditImageBodyJsonParam", body)
    validate_edit_json(dict(body))


@settings(max_examples=150, deadline=None)
@given(params=valid_generate_params())
def test_every_accepted_generation_conforms(params: dict[str, Any]) -> None:
    """Whatever generation body the validator accepts is a CreateImageRequest with known keys."""
    validate_generate(params)
    body = {key: value for key, value in params.items() if value is not None}
    assert_valid("CreateImageRequest", body)
    assert not unknown_keys("CreateImageRequest", body)


async def test_generate_sends_a_conforming_body(server: LocalServer, client: AsyncTTAPI) -> None:
    """``images.generate`` with every keyword it has puts a CreateImageRequest on the wire."""
    server.reply("POST", GENERATIONS, json_answer(GENERATION_OK))
    await client.images.generate(
        prompt="a cat",
        model="gpt-image-2",
        n=2,
        size="2048x1152",
        quality="high",
        background="transparent",
        moderation="low",
        output_compression=80,
        output_format="webp",
        user="u-1",
        stream=False,
        partial_images=0,
    )
    body = server.requests[0].json()
    assert_valid("CreateImageRequest", body)
    assert not unknown_keys("CreateImageRequest", body)


async def test_json_edit_sends_a_conforming_body(server: LocalServer, client: AsyncTTAPI) -> None:
    """``images.edit`` with image URLs puts an EditImageBodyJsonParam on the wire."""
    server.reply("POST", EDITS, json_answer(EDIT_OK))
    await client.images.edit(
        prompt="a hat",
        image=["https://cdn.example/a.png", {"file_id": "file-1"}],
        mask={"file_id": "file-m"},
        model="gpt-image-1.5",
        n=1,
        size="1024x1536",
        quality="low",
        background="opaque",
        moderation="low",
        input_fidelity="high",
        output_compression=100,
        output_format="png",
        user="u-1",
    )
    body = server.requests[0].json()
    assert_valid("EditImageBodyJsonParam", body)
    assert not unknown_keys("EditImageBodyJsonParam", body)


@pytest.mark.parametrize("several", [False, True])
async def test_multipart_edit_field_names_are_the_schemas(
    server: LocalServer, client: AsyncTTAPI, several: bool
) -> None:
    """A multipart edit sends only fields CreateImageEditRequest defines (image[] is image)."""
    server.reply("POST", EDITS, json_answer(EDIT_OK))
    png = ("a.png", make_png(16, 16))
    await client.images.edit(
        prompt="a hat",
        image=[png, png] if several else png,
        mask=("m.png", make_png(16, 16)),
        model="gpt-image-1",
        n=2,
        size="1024x1024",
        quality="medium",
        background="auto",
        input_fidelity="low",
        output_compression=90,
        output_format="jpeg",
        user="u-1",
    )
    names = {part.name.removesuffix("[]") for part in server.requests[0].parts()}
    assert names <= set(schema("CreateImageEditRequest")["properties"])
    assert {"image", "mask", "prompt"} <= names

"""``client.images`` and ``client.dalle3``: what goes on the wire and what comes back."""

from __future__ import annotations

import asyncio
import io
import os
from pathlib import Path
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
    PNG_B64,
    CountingSession,
    LocalServer,
    closed_port,
    json_answer,
    make_png,
)
from _support import client as client
from _support import server as server
from _support import sleeps as sleeps
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai import AsyncOpenAI

from ttapi_async import AsyncTTAPI, ImagesResponse, InvalidRequestError

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 60


# --- generate ------------------------------------------------------------------------------


async def test_generate_sends_only_the_given_fields(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """``generate`` posts a JSON body with exactly the fields the caller gave."""
    server.reply("POST", GENERATIONS, json_answer(GENERATION_OK))
    await client.images.generate(
        prompt="a cute cat", model="gpt-image-1", size="1024x1024", quality="high", n=2
    )
    (req,) = server.requests
    assert req.json() == {
        "prompt": "a cute cat",
        "model": "gpt-image-1",
        "size": "1024x1024",
        "quality": "high",
        "n": 2,
    }


async def test_generate_parses_the_documented_answer(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """The documented answer of a generation becomes a typed ImagesResponse."""
    server.reply("POST", GENERATIONS, json_answer(GENERATION_OK))
    r = await client.images.generate(prompt="a cute cat", model="gpt-image-1")
    assert isinstance(r, ImagesResponse)
    assert r.created == 1745818538
    assert r.data[0].url == "https://cdn.example/cat.webp"
    assert r.data[0].revised_prompt == "a cute cat, smiling"
    assert r.usage is not None and r.usage.total_tokens == 4169
    assert r.usage.input_tokens_details is not None
    assert r.usage.input_tokens_details.text_tokens == 9


async def test_generate_extra_body_is_sent_as_is(server: LocalServer, client: AsyncTTAPI) -> None:
    """``extra_body`` fields reach the server untouched."""
    server.reply("POST", GENERATIONS, json_answer(GENERATION_OK))
    await client.images.generate(prompt="a cat", model="gpt-image-1", extra_body={"seed": 7})
    assert server.requests[0].json()["seed"] == 7


async def test_validate_false_reaches_a_new_model(server: LocalServer, client: AsyncTTAPI) -> None:
    """``validate=False`` sends a model the rules do not know yet."""
    server.reply("POST", GENERATIONS, json_answer(GENERATION_OK))
    await client.images.generate(prompt="a cat", model="gpt-image-9", validate=False)
    assert server.requests[0].json()["model"] == "gpt-image-9"


async def test_client_validate_false_applies_to_every_call(server: LocalServer) -> None:
    """``AsyncTTAPI(validate=False)`` skips the rules on calls that do not say otherwise."""
    server.reply("POST", GENERATIONS, json_answer(GENERATION_OK))
    async with AsyncTTAPI(api_key=API_KEY, base_url=server.url, validate=False) as c:
        await c.images.generate(prompt="a cat", model="gpt-image-9")
    assert len(server.requests) == 1


async def test_dalle3_unwraps_the_envelope(server: LocalServer, client: AsyncTTAPI) -> None:
    """``dalle3.generate`` posts to the legacy path and returns the envelope's data."""
    server.reply("POST", DALLE3, json_answer(DALLE3_OK))
    r = await client.dalle3.generate(prompt="a cat", size="1024x1792", quality="hd")
    assert r.created == 1713577682 and r.data[0].url == "https://cdn.example/cat.png"
    assert server.requests[0].json() == {
        "prompt": "a cat",
        "size": "1024x1792",
        "quality": "hd",
        "model": "dall-e-3",
    }


# --- edits: multipart ----------------------------------------------------------------------


def _file_parts(parts: list[Any]) -> list[tuple[str, str | None, str | None, bytes]]:
    return [(p.name, p.filename, p.content_type, p.data) for p in parts if p.filename]


def _text_parts(parts: list[Any]) -> dict[str, str]:
    return {p.name: p.text for p in parts if not p.filename}


@pytest.mark.parametrize(
    ("image", "mask"),
    [
        (("cat.png", PNG, "image/png"), None),
        ([("cat.png", PNG, "image/png")], None),
        ([("a.png", PNG, "image/png"), ("b.jpg", JPEG, "image/jpeg")], None),
        (("cat.png", PNG, "image/png"), ("mask.png", PNG, "image/png")),
        ([("a.png", PNG, "image/png"), ("b.png", PNG, "image/png")], ("m.png", PNG, "image/png")),
    ],
    ids=["one", "list-of-one", "list-of-two", "one-with-mask", "two-with-mask"],
)
async def test_multipart_edit_matches_the_openai_sdk(
    server: LocalServer, client: AsyncTTAPI, image: Any, mask: Any
) -> None:
    """Our multipart edit has the same file parts and fields as the OpenAI SDK's."""
    server.reply("POST", EDITS, json_answer(GENERATION_OK))
    await client.images.edit(prompt="add a hat", image=image, mask=mask, model="gpt-image-1", n=1)
    async with AsyncOpenAI(base_url=server.url + "/v1", api_key=API_KEY, max_retries=0) as oc:
        extra = {"mask": mask} if mask is not None else {}
        await oc.images.edit(prompt="add a hat", image=image, model="gpt-image-1", n=1, **extra)
    ours, theirs = (r.parts() for r in server.requests)
    assert _file_parts(ours) == _file_parts(theirs)
    assert _text_parts(ours) == _text_parts(theirs)


@pytest.mark.parametrize("kind", ["path", "str-path", "bytes", "file", "tuple"])
async def test_edit_accepts_each_input_kind(
    server: LocalServer, client: AsyncTTAPI, tmp_path: Path, kind: str
) -> None:
    """A path, a str path, bytes, a binary file or a tuple each go as one ``image`` part."""
    path = tmp_path / "cat.png"
    path.write_bytes(PNG)
    inputs: dict[str, Any] = {
        "path": path,
        "str-path": str(path),
        "bytes": PNG,
        "file": io.BytesIO(PNG),
        "tuple": ("cat.png", PNG),
    }
    server.reply("POST", EDITS, json_answer(GENERATION_OK))
    await client.images.edit(prompt="a hat", image=inputs[kind], model="gpt-image-1")
    ((name, filename, content_type, data),) = _file_parts(server.requests[0].parts())
    assert (name, content_type, data) == ("image", "image/png", PNG)
    assert filename == ("image.png" if kind in ("bytes", "file") else "cat.png")


async def test_edit_named_file_object_keeps_its_name(
    server: LocalServer, client: AsyncTTAPI, tmp_path: Path
) -> None:
    """A file opened from disk is sent under its base name."""
    path = tmp_path / "photo.png"
    path.write_bytes(PNG)
    server.reply("POST", EDITS, json_answer(GENERATION_OK))
    with path.open("rb") as fh:
        await client.images.edit(prompt="a hat", image=fh, model="gpt-image-1")
    assert _file_parts(server.requests[0].parts())[0][1] == "photo.png"


async def test_edit_sends_fields_as_text_parts(server: LocalServer, client: AsyncTTAPI) -> None:
    """The edit's parameters go as text parts, numbers as decimal strings."""
    server.reply("POST", EDITS, json_answer(GENERATION_OK))
    await client.images.edit(
        prompt="a hat", image=PNG, model="gpt-image-1", n=3, size="1024x1536", quality="low"
    )
    assert _text_parts(server.requests[0].parts()) == {
        "prompt": "a hat",
        "model": "gpt-image-1",
        "n": "3",
        "size": "1024x1536",
        "quality": "low",
    }


async def test_edit_text_file_object_is_rejected(server: LocalServer, client: AsyncTTAPI) -> None:
    """A file opened in text mode raises InvalidRequestError and sends nothing."""
    with pytest.raises(InvalidRequestError, match="binary"):
        await client.images.edit(prompt="a hat", image=io.StringIO("x"), model="gpt-image-1")  # type: ignore[arg-type]
    assert server.requests == []


async def test_edit_missing_file_is_rejected(
    server: LocalServer, client: AsyncTTAPI, tmp_path: Path
) -> None:
    """A path that does not exist raises InvalidRequestError naming it, and sends nothing."""
    with pytest.raises(InvalidRequestError, match=r"nope\.png"):
        await client.images.edit(prompt="a hat", image=tmp_path / "nope.png", model="gpt-image-1")
    assert server.requests == []


# --- edits: JSON form ----------------------------------------------------------------------


async def test_edit_with_urls_sends_the_json_form(server: LocalServer, client: AsyncTTAPI) -> None:
    """URL images and mask go as JSON ``images`` / ``mask`` references."""
    server.reply("POST", EDITS, json_answer(GENERATION_OK))
    await client.images.edit(
        prompt="a hat",
        image=["https://cdn.example/a.png", {"file_id": "file-123"}],
        mask="https://cdn.example/m.png",
        model="gpt-image-1",
        input_fidelity="high",
    )
    (req,) = server.requests
    assert req.headers["Content-Type"] == "application/json"
    assert req.json() == {
        "prompt": "a hat",
        "model": "gpt-image-1",
        "input_fidelity": "high",
        "images": [{"image_url": "https://cdn.example/a.png"}, {"file_id": "file-123"}],
        "mask": {"image_url": "https://cdn.example/m.png"},
    }


async def test_edit_mixing_files_and_urls_is_rejected(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """One edit cannot mix uploaded files and URLs: InvalidRequestError, nothing sent."""
    with pytest.raises(InvalidRequestError, match="mix"):
        await client.images.edit(
            prompt="a hat", image=[PNG, "https://cdn.example/a.png"], model="gpt-image-1"
        )
    assert server.requests == []


async def test_edit_empty_image_list_is_rejected(server: LocalServer, client: AsyncTTAPI) -> None:
    """An empty image list raises InvalidRequestError and sends nothing."""
    with pytest.raises(InvalidRequestError, match="image"):
        await client.images.edit(prompt="a hat", image=[], model="gpt-image-1")
    assert server.requests == []


# --- invalid parameters never leave the machine --------------------------------------------

GPT_EXTRAS = {
    "size": st.sampled_from(["1024x1024", "1536x1024", "1024x1536", "auto"]),
    "quality": st.sampled_from(["auto", "high", "medium", "low"]),
    "background": st.sampled_from(["opaque", "auto"]),
    "moderation": st.sampled_from(["low", "auto"]),
    "output_format": st.sampled_from(["png", "jpeg", "webp"]),
    "n": st.integers(1, 10),
    "user": st.text(min_size=1, max_size=8),
}
DALLE2_EXTRAS = {
    "size": st.sampled_from(["256x256", "512x512", "1024x1024"]),
    "n": st.integers(1, 10),
    "response_format": st.sampled_from(["url", "b64_json"]),
    "quality": st.sampled_from(["standard", "auto"]),
}
DALLE3_EXTRAS = {
    "size": st.sampled_from(["1024x1024", "1792x1024", "1024x1792"]),
    "quality": st.sampled_from(["hd", "standard"]),
    "style": st.sampled_from(["vivid", "natural"]),
    "response_format": st.sampled_from(["url", "b64_json"]),
}
EXTRAS = {"gpt-image-1": GPT_EXTRAS, "dall-e-2": DALLE2_EXTRAS, "dall-e-3": DALLE3_EXTRAS}

# Each of these breaks a rule of the contract's generations on its own, whatever else is given.
ANY_MODEL_BREAKS: list[dict[str, Any]] = [
    {"n": 0},
    {"n": 11},
    {"n": -3},
    {"size": "999x999"},
    {"size": "1024X1024"},
    {"size": ""},
    {"quality": "ultra"},
    {"prompt": 42},
    {"prompt": "x" * 32_001},
    {"model": "gpt-image-9"},
    {"model": "GPT-IMAGE-1"},
    {"background": "sideways"},
    {"output_format": "gif"},
    {"response_format": "base64"},
    {"style": "anime"},
    {"moderation": "none"},
    {"output_compression": 101},
    {"output_compression": -1},
]
MODEL_BREAKS: dict[str, list[dict[str, Any]]] = {
    "gpt-image-1": [
        {"style": "vivid"},
        {"response_format": "url"},
        {"size": "256x256"},
        {"quality": "hd"},
        {"background": "transparent", "output_format": "jpeg"},
    ],
    "dall-e-2": [
        {"background": "opaque"},
        {"moderation": "low"},
        {"output_format": "png"},
        {"quality": "hd"},
        {"size": "1024x1536"},
        {"style": "vivid"},
        {"prompt": "x" * 1_001},
    ],
    "dall-e-3": [
        {"n": 2},
        {"quality": "high"},
        {"size": "512x512"},
        {"prompt": "x" * 4_001},
        {"background": "auto"},
        {"output_format": "webp"},
    ],
}


@st.composite
def invalid_generations(draw: st.DrawFn) -> dict[str, Any]:
    model = draw(st.sampled_from(sorted(EXTRAS)))
    breaks = draw(
        st.lists(st.sampled_from(ANY_MODEL_BREAKS + MODEL_BREAKS[model]), min_size=1, max_size=3)
    )
    params: dict[str, Any] = {"prompt": "a cat", "model": model}
    extras = draw(st.fixed_dictionaries({}, optional=EXTRAS[model]))
    broken_keys = {k for b in breaks for k in b}
    params.update({k: v for k, v in extras.items() if k not in broken_keys})
    # Breaks touching the same keys would overwrite each other: keep the first of each.
    seen: set[str] = set()
    for b in breaks:
        if seen.isdisjoint(b):
            params.update(b)
            seen |= set(b)
    return params


NO_SEND = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


async def _assert_rejected_unsent(call: Any) -> None:
    counting = CountingSession()
    try:
        async with AsyncTTAPI(
            api_key=API_KEY,
            base_url=f"http://127.0.0.1:{closed_port()}",
            session=counting.session,
            max_retries=0,
        ) as c:
            with pytest.raises(InvalidRequestError):
                await call(c)
        assert counting.started == 0
    finally:
        await counting.session.close()


@NO_SEND
@given(params=invalid_generations())
def test_invalid_generation_raises_and_sends_nothing(params: dict[str, Any]) -> None:
    """Any invalid parameter combination raises InvalidRequestError before any request."""
    asyncio.run(_assert_rejected_unsent(lambda c: c.images.generate(**params)))


@NO_SEND
@given(params=invalid_generations())
def test_invalid_stream_raises_and_sends_nothing(params: dict[str, Any]) -> None:
    """``images.stream`` rejects the same combinations before any request."""
    params = {k: v for k, v in params.items() if k not in ("response_format", "style")} | {
        "model": params["model"] if params["model"] != "dall-e-3" else "dall-e-2"
    }
    if params["model"] == "gpt-image-1" and params.keys() <= {"prompt", "model", *GPT_EXTRAS}:
        params["partial_images"] = 4  # dropping fields may have left it valid: break it again

    async def call(c: AsyncTTAPI) -> None:
        async with c.images.stream(**params) as events:
            async for _ in events:
                pass

    asyncio.run(_assert_rejected_unsent(call))


@st.composite
def invalid_edits(draw: st.DrawFn) -> dict[str, Any]:
    model = draw(st.sampled_from(["gpt-image-1", "dall-e-2"]))
    square = make_png(8, 8)
    good_image: Any = ("a.png", square) if model == "dall-e-2" else [("a.png", square)]
    breaks: list[dict[str, Any]] = [
        {"n": 0},
        {"size": "999x999"},
        {"quality": "ultra"},
        {"prompt": 42},
        {"model": "dall-e-3"},
        {"image": ("a.gif", b"GIF89a" + b"\x00" * 40)},
        {"image": ("a.png", b"not an image at all")},
        {"mask": ("m.jpg", JPEG)},
        {"mask": ("m.png", make_png(16, 8))},
        {"input_fidelity": "max"},
        {"output_format": "bmp"},
    ]
    if model == "dall-e-2":
        breaks += [
            {"image": [("a.png", square), ("b.png", square)]},
            {"image": ("wide.png", make_png(16, 8))},
            {"image": ("a.jpg", JPEG)},
            {"background": "opaque"},
            {"prompt": "x" * 1_001},
        ]
    else:
        breaks += [
            {"image": [("a.png", square)] * 17},
            {"response_format": "url"},
            {"background": "transparent", "output_format": "jpeg"},
        ]
    chosen = draw(st.sampled_from(breaks))
    return {"prompt": "a hat", "model": model, "image": good_image} | chosen


@NO_SEND
@given(params=invalid_edits())
def test_invalid_edit_raises_and_sends_nothing(params: dict[str, Any]) -> None:
    """Any invalid multipart edit raises InvalidRequestError before any request."""
    asyncio.run(_assert_rejected_unsent(lambda c: c.images.edit(**params)))


@NO_SEND
@given(
    breaks=st.sampled_from(
        [
            {"size": "1024x1024", "n": 2},
            {"size": "512x512"},
            {"size": "1024x1024", "quality": "auto"},
            {"size": "1024x1024", "prompt": "x" * 4_001},
            {"size": "1024x1024", "model": "dall-e-2"},
            {"size": "1024x1024", "style": "anime"},
        ]
    )
)
def test_invalid_dalle3_raises_and_sends_nothing(breaks: dict[str, Any]) -> None:
    """Any invalid legacy DALL-E 3 request raises InvalidRequestError before any request."""
    params = {"prompt": "a cat"} | breaks
    asyncio.run(_assert_rejected_unsent(lambda c: c.dalle3.generate(**params)))


def test_invalid_request_error_names_param_and_value() -> None:
    """The validation error says which parameter, which value, and what is allowed."""

    async def check() -> None:
        async with AsyncTTAPI(api_key=API_KEY, base_url="http://127.0.0.1:9") as c:
            with pytest.raises(InvalidRequestError) as info:
                await c.images.generate(prompt="a cat", model="dall-e-3", size="512x512")
        assert info.value.param == "size" and info.value.value == "512x512"
        assert "1024x1792" in str(info.value)

    asyncio.run(check())


# --- results: read and save ----------------------------------------------------------------

B64_ANSWER = {"created": 1, "data": [{"b64_json": PNG_B64}], "usage": GENERATION_OK["usage"]}


async def test_b64_result_reads_and_saves(
    server: LocalServer, client: AsyncTTAPI, tmp_path: Path
) -> None:
    """A b64_json image decodes with ``read()`` and writes with ``save()``."""
    server.reply("POST", GENERATIONS, json_answer(B64_ANSWER))
    r = await client.images.generate(prompt="a cat", model="gpt-image-1")
    assert await r.data[0].read() == PNG
    saved = await r.data[0].save(tmp_path / "out" / "cat.png")
    assert saved.read_bytes() == PNG
    assert sorted(p.name for p in saved.parent.iterdir()) == ["cat.png"]


async def test_url_result_downloads_through_the_session(
    server: LocalServer, client: AsyncTTAPI, tmp_path: Path
) -> None:
    """A URL image is downloaded by ``read()`` and ``save()``, without the API key."""
    server.reply(
        "POST", GENERATIONS, json_answer({"created": 1, "data": [{"url": server.url + "/img.png"}]})
    )
    server.reply("GET", "/img.png", _png_answer(PNG))
    r = await client.images.generate(prompt="a cat", model="dall-e-2")
    assert await r.data[0].read() == PNG
    path = await r.data[0].save(tmp_path / "cat.png")
    assert path.read_bytes() == PNG
    downloads = [q for q in server.requests if q.method == "GET"]
    assert len(downloads) == 2 and all("TT-API-KEY" not in q.headers for q in downloads)


def _png_answer(body: bytes, status: int = 200, content_type: str = "image/png") -> Any:
    from aiohttp import web

    return web.Response(body=body, status=status, headers={"Content-Type": content_type})


async def _url_result(server: LocalServer, client: AsyncTTAPI) -> Any:
    server.reply(
        "POST", GENERATIONS, json_answer({"created": 1, "data": [{"url": server.url + "/img"}]})
    )
    r = await client.images.generate(prompt="a cat", model="dall-e-2")
    return r.data[0]


async def test_download_of_non_image_fails_and_leaves_no_file(
    server: LocalServer, client: AsyncTTAPI, tmp_path: Path
) -> None:
    """A URL serving HTML raises APIResponseValidationError and leaves no (partial) file."""
    from ttapi_async import APIResponseValidationError

    server.reply("GET", "/img", _png_answer(b"<html>" + b"x" * 100_000, 200, "text/html"))
    item = await _url_result(server, client)
    with pytest.raises(APIResponseValidationError, match="not a PNG"):
        await item.save(tmp_path / "cat.png")
    assert os.listdir(tmp_path) == []


async def test_download_over_the_cap_fails_and_leaves_no_file(
    server: LocalServer, client: AsyncTTAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A download larger than the size cap raises and leaves no partial file."""
    from ttapi_async import APIResponseValidationError, _downloads

    monkeypatch.setattr(_downloads, "MAX_DOWNLOAD_BYTES", 1000)
    big = PNG + b"\x00" * 5000

    async def chunked(request: Any) -> Any:
        from aiohttp import web

        resp = web.StreamResponse(headers={"Content-Type": "image/png"})
        resp.enable_chunked_encoding()  # no Content-Length: the cap must count bytes
        await resp.prepare(request)
        for start in range(0, len(big), 512):
            await resp.write(big[start : start + 512])
        await resp.write_eof()
        return resp

    server.route("GET", "/img", chunked)
    item = await _url_result(server, client)
    with pytest.raises(APIResponseValidationError, match="cap"):
        await item.save(tmp_path / "cat.png")
    assert os.listdir(tmp_path) == []


async def test_download_with_large_content_length_is_refused_early(
    server: LocalServer, client: AsyncTTAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Content-Length over the cap is refused before the body is read."""
    from ttapi_async import APIResponseValidationError, _downloads

    monkeypatch.setattr(_downloads, "MAX_DOWNLOAD_BYTES", 100)
    server.reply("GET", "/img", _png_answer(PNG + b"\x00" * 500))
    item = await _url_result(server, client)
    with pytest.raises(APIResponseValidationError, match="over the"):
        await item.read()


async def test_download_in_tiny_chunks_still_passes_the_image_check(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """An image whose first chunks are a few bytes each is still recognised."""

    async def trickle(request: Any) -> Any:
        from aiohttp import web

        resp = web.StreamResponse(headers={"Content-Type": "image/png"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for start in range(0, len(PNG), 3):
            await resp.write(PNG[start : start + 3])
            await asyncio.sleep(0)  # let each chunk go out on its own
        await resp.write_eof()
        return resp

    server.route("GET", "/img", trickle)
    item = await _url_result(server, client)
    assert await item.read() == PNG


async def test_download_error_status_is_typed_and_retried(
    server: LocalServer, client: AsyncTTAPI
) -> None:
    """A download answered 503 is retried (downloads are idempotent), then succeeds."""
    server.reply("GET", "/img", _png_answer(b"busy", 503, "text/plain"), _png_answer(PNG))
    item = await _url_result(server, client)
    assert await item.read() == PNG
    assert len([q for q in server.requests if q.method == "GET"]) == 2


async def test_expired_url_raises_not_found(server: LocalServer, client: AsyncTTAPI) -> None:
    """An expired image URL (404) raises NotFoundError."""
    from ttapi_async import NotFoundError

    server.reply("GET", "/img", _png_answer(b"gone", 404, "text/plain"))
    item = await _url_result(server, client)
    with pytest.raises(NotFoundError):
        await item.read()


async def test_result_built_by_hand_cannot_download() -> None:
    """An ImageData not produced by a client raises RuntimeError on ``read()`` of a URL."""
    from ttapi_async import ImageData

    with pytest.raises(RuntimeError, match="not produced by a client"):
        await ImageData(url="https://cdn.example/x.png").read()


async def test_result_with_neither_b64_nor_url_raises() -> None:
    """An ImageData with no image at all raises APIResponseValidationError."""
    from ttapi_async import APIResponseValidationError, ImageData

    with pytest.raises(APIResponseValidationError, match="neither"):
        await ImageData().read()

"""Every endpoint of docs/contract.md over a real socket, with bare aiohttp as the client."""

from __future__ import annotations

import base64
import json
import time

import aiohttp
import pytest
from fake_helpers import decode_png, get_json, post_json

from ttapi_async.testing import Duration, FakeTTAPI, sniff_image


def _png(fake: FakeTTAPI, width: int = 64, height: int = 64) -> bytes:
    from ttapi_async.testing._images import ImageSpec, encode_png

    return encode_png(ImageSpec(width, height, prompt="source"))


async def test_generation_gpt_image_is_decodable_png_of_asked_size(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """A GPT Image generation answers b64 PNGs of the requested size, with usage."""
    status, body = await post_json(
        session,
        f"{fake_ttapi.url}/v1/images/generations",
        {"prompt": "a cat", "model": "gpt-image-1", "size": "1024x1536", "n": 2},
    )
    assert status == 200
    assert len(body["data"]) == 2
    for item in body["data"]:
        assert decode_png(base64.b64decode(item["b64_json"])) == (1024, 1536, 3)
    usage = body["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


async def test_generation_gpt_image_2_free_size(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """gpt-image-2 takes a free WxH size and the image has exactly that size."""
    _, body = await post_json(
        session,
        f"{fake_ttapi.url}/v1/images/generations",
        {"prompt": "wide", "model": "gpt-image-2", "size": "1920x1088"},
    )
    assert decode_png(base64.b64decode(body["data"][0]["b64_json"]))[:2] == (1920, 1088)


async def test_generation_transparent_png_has_alpha(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """background=transparent yields an RGBA PNG."""
    _, body = await post_json(
        session,
        f"{fake_ttapi.url}/v1/images/generations",
        {"prompt": "logo", "model": "gpt-image-1", "background": "transparent"},
    )
    assert decode_png(base64.b64decode(body["data"][0]["b64_json"]))[2] == 4


@pytest.mark.parametrize("fmt", ["jpeg", "webp"])
async def test_generation_output_format(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession, fmt: str
) -> None:
    """output_format jpeg/webp answers a file of that format and size."""
    _, body = await post_json(
        session,
        f"{fake_ttapi.url}/v1/images/generations",
        {"prompt": "p", "model": "gpt-image-1", "output_format": fmt, "size": "1536x1024"},
    )
    info = sniff_image(base64.b64decode(body["data"][0]["b64_json"]))
    assert (info.format, info.width, info.height) == (fmt, 1536, 1024)


async def test_generation_dalle3_url_serves_the_image(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """A dall-e-3 generation answers a URL on the fake that serves the PNG, and a revised prompt."""
    _, body = await post_json(
        session,
        f"{fake_ttapi.url}/v1/images/generations",
        {"prompt": "a cat", "model": "dall-e-3", "size": "1792x1024"},
    )
    item = body["data"][0]
    assert item["url"].startswith(f"{fake_ttapi.url}/_fake/files/")
    assert item["revised_prompt"]
    assert "usage" not in body
    async with session.get(item["url"]) as resp:
        assert resp.content_type == "image/png"
        assert decode_png(await resp.read())[:2] == (1792, 1024)


async def test_generation_dalle2_b64(fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession) -> None:
    """dall-e-2 with response_format=b64_json answers base64 of the asked size."""
    _, body = await post_json(
        session,
        f"{fake_ttapi.url}/v1/images/generations",
        {"prompt": "a cat", "model": "dall-e-2", "size": "256x256", "response_format": "b64_json"},
    )
    assert decode_png(base64.b64decode(body["data"][0]["b64_json"]))[:2] == (256, 256)


@pytest.mark.fake_ttapi(stream_partials="exact")
async def test_generation_stream_events(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """stream=true answers text/event-stream: partial_images partial events, then completed."""
    async with session.post(
        f"{fake_ttapi.url}/v1/images/generations",
        json={"prompt": "s", "model": "gpt-image-1", "stream": True, "partial_images": 2},
    ) as resp:
        assert resp.content_type == "text/event-stream"
        text = (await resp.read()).decode()
    events = []
    for block in text.strip().split("\n\n"):
        event_line, data_line = block.split("\n")
        assert event_line.startswith("event: ") and data_line.startswith("data: ")
        data = json.loads(data_line[6:])
        assert data["type"] == event_line[7:]
        events.append(data)
    assert [e["type"] for e in events] == [
        "image_generation.partial_image",
        "image_generation.partial_image",
        "image_generation.completed",
    ]
    assert [e.get("partial_image_index") for e in events] == [0, 1, None]
    assert "usage" in events[-1]
    assert decode_png(base64.b64decode(events[-1]["b64_json"]))[:2] == (1024, 1024)


async def test_edit_multipart_one_image(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """A multipart edit with one `image` part and a mask answers a decodable image."""
    form = aiohttp.FormData()
    form.add_field("prompt", "add a hat")
    form.add_field("model", "dall-e-2")
    form.add_field("size", "512x512")
    form.add_field("response_format", "b64_json")
    form.add_field("image", _png(fake_ttapi), filename="a.png", content_type="image/png")
    form.add_field("mask", _png(fake_ttapi), filename="m.png", content_type="image/png")
    async with session.post(f"{fake_ttapi.url}/v1/images/edits", data=form) as resp:
        assert resp.status == 200
        body = await resp.json()
    assert decode_png(base64.b64decode(body["data"][0]["b64_json"]))[:2] == (512, 512)


async def test_edit_multipart_several_images(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """A multipart edit with repeated `image[]` parts counts every image in usage."""
    form = aiohttp.FormData()
    form.add_field("prompt", "a basket")
    form.add_field("model", "gpt-image-1")
    form.add_field("n", "2")
    for name in ("a.png", "b.png", "c.png"):
        form.add_field("image[]", _png(fake_ttapi), filename=name, content_type="image/png")
    async with session.post(f"{fake_ttapi.url}/v1/images/edits", data=form) as resp:
        body = await resp.json()
    assert len(body["data"]) == 2
    assert body["usage"]["input_tokens_details"]["image_tokens"] == 3 * 323
    record = fake_ttapi.requests[-1]
    assert record.params["n"] == 2


async def test_edit_json_form_with_image_urls(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """The JSON form of edits (section 7) takes image URLs and answers b64."""
    status, body = await post_json(
        session,
        f"{fake_ttapi.url}/v1/images/edits",
        {
            "prompt": "merge",
            "model": "gpt-image-1",
            "images": [{"image_url": "https://example.com/a.png"}, {"file_id": "file-1"}],
            "input_fidelity": "high",
        },
    )
    assert status == 200
    assert decode_png(base64.b64decode(body["data"][0]["b64_json"]))[:2] == (1024, 1024)


async def test_edit_json_data_url_is_not_logged(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """A data: URL in a JSON edit is logged as its length, never its bytes."""
    data_url = "data:image/png;base64," + base64.b64encode(_png(fake_ttapi)).decode()
    await post_json(
        session,
        f"{fake_ttapi.url}/v1/images/edits",
        {"prompt": "m", "model": "gpt-image-1", "images": [{"image_url": data_url}]},
    )
    logged = fake_ttapi.requests[-1].params["images"][0]["image_url"]
    assert logged == f"data:...({len(data_url)} chars)"


async def test_multipart_upload_logged_without_bytes(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """A multipart upload is logged by filename and size only."""
    form = aiohttp.FormData()
    form.add_field("prompt", "p")
    form.add_field("image", _png(fake_ttapi), filename="a.png", content_type="image/png")
    async with session.post(f"{fake_ttapi.url}/v1/images/edits", data=form) as resp:
        assert resp.status == 200
    assert fake_ttapi.requests[-1].params["image"] == [
        {"filename": "a.png", "size": len(_png(fake_ttapi))}
    ]


async def test_legacy_dalle3_envelope(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """The legacy DALL-E 3 endpoint wraps the answer in TTAPI's SUCCESS envelope."""
    status, body = await post_json(
        session,
        f"{fake_ttapi.url}/openai/v1/images/generations",
        {"prompt": "a cat", "size": "1024x1792", "quality": "hd"},
    )
    assert status == 200
    assert (body["status"], body["message"]) == ("SUCCESS", "success")
    item = body["data"]["data"][0]
    async with session.get(item["url"]) as resp:
        assert decode_png(await resp.read())[:2] == (1024, 1792)


async def test_legacy_dalle3_invalid_size_is_failed_envelope(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """A bad size on the legacy endpoint answers 400 with a FAILED envelope naming size."""
    status, body = await post_json(
        session,
        f"{fake_ttapi.url}/openai/v1/images/generations",
        {"prompt": "a cat", "size": "512x512"},
    )
    assert status == 400
    assert body["status"] == "FAILED" and body["data"] is None
    assert "size" in body["message"]


@pytest.mark.fake_ttapi(business_failure_status=200)
async def test_business_failure_as_200_mode(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """With business_failure_status=200, a FAILED envelope comes back with HTTP 200."""
    status, body = await post_json(
        session, f"{fake_ttapi.url}/openai/4o-image/generations", {"referImages": []}
    )
    assert status == 200
    assert body["status"] == "FAILED"


async def test_validation_error_on_v1_has_openai_shape_and_param(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """An invalid /v1 parameter answers 400 with OpenAI's error object and its param."""
    status, body = await post_json(
        session,
        f"{fake_ttapi.url}/v1/images/generations",
        {"prompt": "a", "model": "gpt-image-1", "n": 11},
    )
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["param"] == "n"
    assert body["error"]["code"] == "invalid_value"


async def test_edit_without_image_names_image(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """A multipart edit without any image answers 400 with param image."""
    form = aiohttp.FormData()
    form.add_field("prompt", "p")
    form.add_field("model", "gpt-image-1")
    async with session.post(f"{fake_ttapi.url}/v1/images/edits", data=form) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["param"] == "image"


async def test_invalid_json_body(fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession) -> None:
    """A body that is not JSON answers 400 in the endpoint's shape."""
    async with session.post(
        f"{fake_ttapi.url}/v1/images/generations",
        data=b"{nope",
        headers={"Content-Type": "application/json"},
    ) as resp:
        assert resp.status == 400
        assert "error" in await resp.json()


@pytest.mark.fake_ttapi(banned_words=("forbidden",))
async def test_banned_word_rejected(fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession) -> None:
    """A banned prompt word answers 400 content_policy_violation on /v1."""
    status, body = await post_json(
        session,
        f"{fake_ttapi.url}/v1/images/generations",
        {"prompt": "something Forbidden", "model": "gpt-image-1"},
    )
    assert status == 400
    assert body["error"]["code"] == "content_policy_violation"


async def test_bearer_auth_on_v1(fake_ttapi: FakeTTAPI, anon: aiohttp.ClientSession) -> None:
    """Authorization: Bearer is accepted on /v1."""
    status, _ = await post_json(
        anon,
        f"{fake_ttapi.url}/v1/images/generations",
        {"prompt": "a", "model": "gpt-image-1"},
        headers={"Authorization": f"Bearer {fake_ttapi.api_key}"},
    )
    assert status == 200


async def test_bearer_auth_refused_outside_v1(
    fake_ttapi: FakeTTAPI, anon: aiohttp.ClientSession
) -> None:
    """Authorization: Bearer is not a TTAPI key outside /v1: 401 with the vendor's envelope."""
    status, body = await post_json(
        anon,
        f"{fake_ttapi.url}/openai/4o-image/generations",
        {"prompt": "a"},
        headers={"Authorization": f"Bearer {fake_ttapi.api_key}"},
    )
    assert status == 401
    assert body == {"status": "FAILED", "message": "Wrong TT-API-KEY or email is not activated."}


@pytest.mark.parametrize(
    "path", ["/v1/images/generations", "/openai/gpt/generations", "/openai/gpt/fetch"]
)
async def test_wrong_key_is_401(
    fake_ttapi: FakeTTAPI, anon: aiohttp.ClientSession, path: str
) -> None:
    """A wrong TT-API-KEY answers 401 in the endpoint's error shape."""
    status, body = await post_json(
        anon, f"{fake_ttapi.url}{path}", {"prompt": "a"}, headers={"TT-API-KEY": "wrong"}
    )
    assert status == 401
    if path.startswith("/v1"):
        assert body["error"]["code"] == "invalid_api_key"
    else:
        assert body["status"] == "FAILED"


@pytest.mark.fake_ttapi(quota_exhausted_keys=("broke",), blocked_keys=("banned",))
async def test_402_and_403_keys(fake_ttapi: FakeTTAPI, anon: aiohttp.ClientSession) -> None:
    """Configured keys answer 402 (no quota) and 403 (blocked)."""
    url = f"{fake_ttapi.url}/openai/gpt/generations"
    s402, _ = await post_json(anon, url, {"prompt": "a"}, headers={"TT-API-KEY": "broke"})
    s403, _ = await post_json(anon, url, {"prompt": "a"}, headers={"TT-API-KEY": "banned"})
    assert (s402, s403) == (402, 403)


async def test_unknown_path_is_404(fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession) -> None:
    """An unknown path answers 404 (OpenAI shape under /v1, envelope elsewhere)."""
    s1, b1 = await get_json(session, f"{fake_ttapi.url}/v1/nothing")
    s2, b2 = await get_json(session, f"{fake_ttapi.url}/openai/nothing")
    assert (s1, s2) == (404, 404)
    assert "error" in b1 and b2["status"] == "FAILED"


async def test_wrong_method_is_405(fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession) -> None:
    """GET on a POST-only endpoint answers 405."""
    status, _ = await get_json(session, f"{fake_ttapi.url}/openai/gpt/generations")
    assert status == 405


@pytest.mark.fake_ttapi(image_bytes=3_000_000)
async def test_image_bytes_pads_answers(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """image_bytes pads each image to about that size and it still decodes."""
    _, body = await post_json(
        session, f"{fake_ttapi.url}/v1/images/generations", {"prompt": "a", "model": "gpt-image-1"}
    )
    data = base64.b64decode(body["data"][0]["b64_json"])
    assert 2_990_000 <= len(data) <= 3_010_000
    assert decode_png(data)[:2] == (1024, 1024)


@pytest.mark.fake_ttapi(image_payload="realistic")
async def test_realistic_payload_is_megabytes(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """image_payload=realistic makes a 1024x1024 PNG weigh megabytes, like the real service's."""
    _, body = await post_json(
        session, f"{fake_ttapi.url}/v1/images/generations", {"prompt": "a", "model": "gpt-image-1"}
    )
    assert len(body["data"][0]["b64_json"]) > 1_000_000
    assert decode_png(base64.b64decode(body["data"][0]["b64_json"]))[:2] == (1024, 1024)


@pytest.mark.fake_ttapi(latency=Duration.fixed(2.0), time_scale=0.05)
async def test_latency_delays_synchronous_answers(
    fake_ttapi: FakeTTAPI, session: aiohttp.ClientSession
) -> None:
    """latency holds a synchronous answer for latency * time_scale seconds."""
    start = time.perf_counter()
    status, _ = await post_json(
        session,
        f"{fake_ttapi.url}/openai/v1/images/generations",
        {"prompt": "slow", "size": "1024x1024"},
    )
    assert status == 200
    assert time.perf_counter() - start >= 0.09

"""The public API's types, checked by mypy (``mypy tests/typing``); never run by pytest.

Each function uses the API as the README does and states the types a user relies on.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO

import aiohttp
from typing_extensions import assert_type

import ttapi_async
from ttapi_async import (
    NOT_GIVEN,
    TTAPI,
    APIConnectionError,
    APIStatusError,
    AsyncTTAPI,
    ImageData,
    ImagesResponse,
    ImageStream,
    ImageStreamEvent,
    InvalidRequestError,
    JobResult,
    JobStatus,
    NotGiven,
    RateLimitError,
    RetryPolicy,
    TTAPIError,
    Usage,
)


async def construct() -> None:
    async with AsyncTTAPI(api_key="k") as client:
        assert_type(client, AsyncTTAPI)
    async with aiohttp.ClientSession() as session:
        borrowed = AsyncTTAPI(
            api_key="k",
            base_url="http://127.0.0.1:8080",
            timeout=None,
            connect_timeout=5.0,
            max_retries=0,
            retry_policy=RetryPolicy(max_retries=1, max_retry_after=10.0),
            max_connections=8,
            default_headers={"X-Team": "art"},
            session=session,
            validate=False,
            proxy="http://proxy.internal:3128",
            trust_env=False,
        )
        await borrowed.aclose()
    assert_type(borrowed.closed, bool)
    assert_type(borrowed.base_url, str)


async def generate(client: AsyncTTAPI) -> None:
    r = await client.images.generate(
        prompt="a cute cat",
        model="gpt-image-1",
        size="1024x1024",
        quality="high",
        n=1,
        timeout=30.0,
        max_retries=NOT_GIVEN,
        retry_possibly_submitted=False,
        extra_headers={"X-Trace": "t"},
        extra_body={"seed": 1},
    )
    assert_type(r, ImagesResponse)
    assert_type(r.created, int)
    assert_type(r.data, tuple[ImageData, ...])
    assert_type(r.data[0].b64_json, str | None)
    assert_type(r.data[0].url, str | None)
    assert_type(r.data[0].revised_prompt, str | None)
    assert_type(r.usage, Usage | None)
    if r.usage is not None:
        assert_type(r.usage.total_tokens, int)
    assert_type(await r.data[0].read(), bytes)
    assert_type(await r.data[0].save("cat.png"), Path)
    assert_type(await r.data[0].save(Path("cat.png")), Path)


async def edit(client: AsyncTTAPI, data: bytes, fh: IO[bytes]) -> None:
    r1 = await client.images.edit(prompt="a hat", image="cat.png", model="gpt-image-1")
    r2 = await client.images.edit(prompt="a hat", image=Path("cat.png"), mask=data)
    r3 = await client.images.edit(prompt="a hat", image=[data, ("b.png", data, "image/png")])
    r4 = await client.images.edit(prompt="a hat", image=fh)
    r5 = await client.images.edit(prompt="a hat", image=[{"image_url": "https://x/a.png"}])
    for r in (r1, r2, r3, r4, r5):
        assert_type(r, ImagesResponse)


async def stream(client: AsyncTTAPI, data: bytes) -> None:
    events = client.images.stream(prompt="a cat", model="gpt-image-1", partial_images=2)
    assert_type(events, ImageStream)
    async with events:
        async for event in events:
            assert_type(event, ImageStreamEvent)
            assert_type(event.type, str)
            assert_type(event.partial_image_index, int | None)
            assert_type(event.b64_json, str | None)
            assert_type(event.completed, bool)
    async for event in client.images.stream_edit(prompt="a hat", image=data):
        assert_type(event, ImageStreamEvent)


async def dalle3(client: AsyncTTAPI) -> None:
    r = await client.dalle3.generate(prompt="a cat", size="1024x1792", quality="hd")
    assert_type(r, ImagesResponse)


async def errors(client: AsyncTTAPI) -> None:
    try:
        await client.images.generate(prompt="a cat")
    except RateLimitError as exc:
        assert_type(exc.status_code, int)
        assert_type(exc.headers.get("Retry-After"), str | None)
        assert_type(exc.param, str | None)
    except APIStatusError as exc:
        assert_type(exc.message, str)
        assert_type(exc.body, object)
    except APIConnectionError as exc:
        assert_type(exc.possibly_submitted, bool)
    except InvalidRequestError as exc:
        assert_type(exc.param, str | None)
        value_error: ValueError = exc
        del value_error
    except TTAPIError as exc:
        assert_type(exc.message, str)


def sentinels() -> None:
    not_given: NotGiven = NOT_GIVEN
    del not_given
    assert_type(ttapi_async.__version__, str)
    policy = RetryPolicy()
    assert_type(policy.backoff(1), float)
    assert_type(policy.max_retries, int)


def blocking(data: bytes) -> None:
    with TTAPI(api_key="k", base_url="http://127.0.0.1:8080", timeout=30.0) as client:
        assert_type(client, TTAPI)
        r = client.images.generate(prompt="a cat", model="gpt-image-1", size="1024x1024")
        assert_type(r, ImagesResponse)
        assert_type(client.save(r.data[0], "cat.png"), Path)
        assert_type(client.read(r.data[0]), bytes)
        assert_type(client.images.edit(prompt="a hat", image=data), ImagesResponse)
        with client.images.stream(prompt="a cat", model="gpt-image-1", partial_images=2) as events:
            for event in events:
                assert_type(event, ImageStreamEvent)
        assert_type(client.dalle3.generate(prompt="a cat", size="1024x1792"), ImagesResponse)
        job = client.gpt4o.submit(prompt="a fox", refer_images=["https://x/a.png"])
        assert_type(job.id, str)
        assert_type(job.result(timeout=900), JobResult)
        assert_type(job.status, JobStatus | None)
        assert_type(client.gpt4o.generate(prompt="a fox"), JobResult)
        assert_type(client.gpt4o.fetch("job-1"), JobStatus)
        assert_type(client.gpt.resume("job-2", age=30.0).result(), JobResult)
        assert_type(client.gpt.submit(prompt="a fox", aspect_ratio="16:9").cancel(), bool)
    client.close()

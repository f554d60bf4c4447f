"""The hostile server itself: it answers what a path was given and records what it was sent."""

from __future__ import annotations

import pytest
from _support import API_KEY, GENERATION_OK, GENERATIONS

from hostile.server import HostileServer, raw, respond
from ttapi_async import APIConnectionError, AsyncTTAPI


async def test_records_each_request_and_answers_in_turn(
    hostile: HostileServer, hostile_client: AsyncTTAPI
) -> None:
    """Registered behaviours answer in turn (the last repeats) and every request is recorded."""
    hostile.on(
        GENERATIONS,
        respond(500, body={"error": {"message": "boom"}}),
        respond(200, body=GENERATION_OK),
    )
    result = await hostile_client.images.generate(prompt="a cat", model="dall-e-2")
    assert result.created == GENERATION_OK["created"]
    sent = hostile.requests_to(GENERATIONS)
    assert [r.method for r in sent] == ["POST", "POST"]
    assert sent[0].headers["TT-API-KEY"] == API_KEY
    assert sent[-1].json()["prompt"] == "a cat"


async def test_raw_bytes_reach_the_client_unchanged(
    hostile: HostileServer, hostile_client: AsyncTTAPI
) -> None:
    """A raw behaviour sends its bytes as they are: a broken status line fails the request."""
    hostile.on(GENERATIONS, raw(b"HTTP/1.1 2OO OK\r\n\r\n"))
    with pytest.raises(APIConnectionError, match="malformed HTTP answer"):
        await hostile_client.images.generate(prompt="a cat", model="dall-e-2")
    assert len(hostile.requests_to(GENERATIONS)) == 1

"""Server-sent events, framed as OpenAI's image streams frame them."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["sse_event"]


def sse_event(event_type: str, data: dict[str, Any]) -> bytes:
    """Frame one event: an ``event:`` line, a ``data:`` line and a blank line."""
    # json.dumps never emits a raw newline, so one data line always suffices.
    payload = json.dumps(data, separators=(",", ":"))
    return f"event: {event_type}\ndata: {payload}\n\n".encode()

"""Read request bodies as the endpoints expect them: JSON, query plus JSON, or multipart."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from .._params import ImageFileInfo
from ._wire import BadBody

__all__ = ["Parsed", "edit_body", "fetch_params", "is_form", "json_body"]

Parsed = tuple[dict[str, Any], list[ImageFileInfo], ImageFileInfo | None]

_HEAD_BYTES = 4096
_INT_FIELDS = frozenset({"n", "output_compression", "partial_images"})
_BOOL_FIELDS = frozenset({"stream"})
_INT_TEXT = re.compile(r"[+-]?\d+")


def is_form(request: web.Request) -> bool:
    """Tell whether the body is a form (multipart or urlencoded), not JSON."""
    return request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded")


def _coerce_form(name: str, text: str) -> Any:
    """Turn multipart text into the JSON type the field has (the SDK sends numbers as text)."""
    if name in _INT_FIELDS and _INT_TEXT.fullmatch(text.strip()):
        return int(text)
    if name in _BOOL_FIELDS and text.strip().lower() in ("true", "false"):
        return text.strip().lower() == "true"
    return text


async def json_body(request: web.Request) -> Parsed:
    """Read a JSON object body (an empty body reads as ``{}``)."""
    raw = await request.read()
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        raise BadBody("We could not parse the JSON body of your request.") from None
    if not isinstance(data, dict):
        raise BadBody("The request body must be a JSON object.")
    return data, [], None


async def fetch_params(request: web.Request) -> Parsed:
    """Read a fetch's parameters: the query string, then a POST's JSON body over it."""
    params: dict[str, Any] = dict(request.query)
    if request.method == "POST" and request.can_read_body:
        body, _, _ = await json_body(request)
        params.update(body)
    return params, [], None


async def edit_body(request: web.Request) -> Parsed:
    """Read an edit: multipart (uploads kept by head and size), urlencoded, or JSON."""
    if request.content_type == "application/x-www-form-urlencoded":
        # A form with no file at all: aiohttp and browsers send it urlencoded.
        form = await request.post()
        fields = {k: _coerce_form(k, v) for k, v in form.items() if isinstance(v, str)}
        return fields, [], None
    if not is_form(request):
        return await json_body(request)
    try:
        return await _read_multipart(request)
    except (ValueError, AssertionError, HttpProcessingError) as exc:
        # aiohttp raises these for a body that breaks the multipart framing (a missing
        # boundary, a header line without a colon, a body cut short); UnicodeDecodeError
        # (a text part that is not UTF-8) is a ValueError too.
        reason = getattr(exc, "message", None) or str(exc)
        reason = " ".join(str(reason).split())
        raise BadBody(f"Could not parse multipart form: {reason}") from None


async def _read_multipart(request: web.Request) -> Parsed:
    reader = await request.multipart()
    params: dict[str, Any] = {}
    images: list[ImageFileInfo] = []
    mask: ImageFileInfo | None = None
    while True:
        part = await reader.next()
        if part is None:
            break
        if not isinstance(part, BodyPartReader):
            raise BadBody("Nested multipart bodies are not supported.")
        name = part.name or ""
        if name in ("image", "image[]", "mask"):
            # Read in chunks and keep only the head: uploads may be 25 MB each.
            head = bytearray()
            size = 0
            while chunk := await part.read_chunk(65536):
                if len(head) < _HEAD_BYTES:
                    head += chunk[: _HEAD_BYTES - len(head)]
                size += len(chunk)
            info = ImageFileInfo(filename=part.filename or name, head=bytes(head), size=size)
            if name == "mask":
                mask = info
            else:
                images.append(info)
            continue
        text = await part.text()
        params[name] = _coerce_form(name, text)
    return params, images, mask

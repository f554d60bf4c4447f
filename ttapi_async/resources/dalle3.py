"""``client.dalle3``: the legacy synchronous DALL-E 3 endpoint, its envelope unwrapped."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .._models import ImagesResponse, bind, structure
from .._params import validate_dalle3
from .._response import maybe_unwrap
from .._types import NOT_GIVEN, NotGiven
from ._base import Resource, compact
from ._checks import check_extra_body

__all__ = ["Dalle3"]

PATH = "/openai/v1/images/generations"


class Dalle3(Resource):
    """Legacy DALL-E 3 (the vendor no longer recommends it; answers in 3-15 s)."""

    async def generate(
        self,
        *,
        prompt: str,
        size: str,
        quality: str | None = None,
        style: str | None = None,
        n: int | None = None,
        model: str | None = "dall-e-3",
        extra_body: Mapping[str, Any] | None = None,
        validate: bool | None = None,
        timeout: float | NotGiven | None = NOT_GIVEN,
        idle_timeout: float | NotGiven | None = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        retry_possibly_submitted: bool | NotGiven = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
    ) -> ImagesResponse:
        """Generate one image; a ``"status": "FAILED"`` answer raises a typed error.

        The returned URLs expire: save them promptly (``await r.data[0].save(path)``).
        """
        body = compact(prompt=prompt, size=size, quality=quality, style=style, n=n, model=model)
        if self._validating(validate):
            validate_dalle3(body)
        if extra_body is not None:
            check_extra_body(extra_body)
            body.update(extra_body)
        client = self._client
        options = self._options(
            timeout, max_retries, retry_possibly_submitted, extra_headers, idle_timeout=idle_timeout
        )
        payload, status, headers = await client._send(
            "POST", PATH, json_body=body, idempotent=False, options=options
        )
        # The contract wraps this endpoint's answer in TTAPI's envelope, but any endpoint may
        # answer in OpenAI's shape: take either, and either error shape.
        data = maybe_unwrap(payload, status_code=status, headers=headers, redact=client._redact)
        response = structure(data, ImagesResponse, status_code=status, redact=client._redact)
        object.__setattr__(response, "_headers", headers)
        client.spent.add_usage("dall-e-3", response.usage)
        return bind(response, client)

"""Steps every endpoint shares: the prompt filter, latency, the public origin, image rendering."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._images import ImageSpec
from ._state import FakeState
from ._wire import OPENAI, Ctx, Reject, envelope_error, openai_error

if TYPE_CHECKING:
    from aiohttp import web

    from ._fake import FakeTTAPI

__all__ = ["Steps", "parse_size", "prompt_of"]


def parse_size(size: object, default: str = "1024x1024") -> tuple[int, int]:
    """Return (width, height) of a ``WxH`` size; ``auto`` or nothing reads as ``default``."""
    text = size if isinstance(size, str) and size != "auto" else default
    width, _, height = text.partition("x")
    return int(width), int(height)


def prompt_of(params: Mapping[str, Any]) -> str:
    """Return the request's prompt, or "" when it has none."""
    prompt = params.get("prompt")
    return prompt if isinstance(prompt, str) else ""


class Steps:
    """Hold the fake and the steps its endpoints share."""

    def __init__(self, fake: FakeTTAPI) -> None:
        self.fake = fake

    @property
    def state(self) -> FakeState:
        """Return the fake's current state (``reset`` replaces it)."""
        return self.fake._state

    def check_prompt(self, ctx: Ctx) -> None:
        """Refuse a prompt holding a banned word, in the family's error shape."""
        words = self.fake.banned_words
        if not words:
            return
        prompt = prompt_of(ctx.params).lower()
        if any(word.lower() in prompt for word in words):
            message = "Your prompt contains words that are not allowed by our safety system."
            if ctx.family == OPENAI:
                raise Reject(
                    openai_error(400, message, param="prompt", code="content_policy_violation")
                )
            raise Reject(envelope_error(self.fake.business_failure_status, message))

    async def latency(self) -> None:
        """Wait the configured extra latency of a synchronous endpoint."""
        latency = self.fake.latency
        if latency is not None:
            seconds = latency.sample(self.state.rng) * self.fake.time_scale
            if seconds > 0:
                await asyncio.sleep(seconds)

    def origin(self, request: web.Request) -> str:
        """Return the fake's public origin (remembered from the first request that names it)."""
        url = self.fake._bound_url
        if url is None:
            url = self.fake._bound_url = f"{request.scheme}://{request.host}"
        return url

    async def render_b64(self, spec: ImageSpec) -> str:
        """Return the image as base64, rendered off the loop when it is costly."""
        cache = self.fake._images
        cached = cache.peek_b64(spec)
        if cached is not None:
            return cached
        if spec.width * spec.height > 512 * 512 or spec.payload != "small" or spec.pad_to:
            # Big or noisy images take tens of milliseconds: keep the loop serving.
            return await asyncio.to_thread(cache.get_b64, spec)
        return cache.get_b64(spec)

    def spec(
        self,
        prompt: str,
        size: tuple[int, int],
        fmt: str = "png",
        *,
        transparent: bool = False,
        variant: int = 0,
        quality: int = 100,
        partial: bool = False,
    ) -> ImageSpec:
        """Describe one image the fake will render, with its seed and payload settings."""
        fake = self.fake
        return ImageSpec(
            size[0],
            size[1],
            fmt,  # type: ignore[arg-type]
            transparent=transparent,
            seed=fake.seed,
            prompt=prompt,
            variant=variant,
            payload="small" if partial else fake.image_payload,
            pad_to=0 if partial else fake.image_bytes,
            quality=quality,
        )

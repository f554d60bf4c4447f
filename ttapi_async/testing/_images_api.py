"""The synchronous image endpoints: /v1 generations and edits (JSON or SSE), and DALL-E 3."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from .._capabilities import GPT_IMAGE_MODELS
from .._params import (
    ImageFileInfo,
    validate_dalle3,
    validate_edit,
    validate_edit_json,
    validate_generate,
)
from ._images import ImageSpec
from ._parse import is_form
from ._sse import sse_event
from ._steps import Steps, parse_size, prompt_of
from ._wire import Answer, Ctx, json_answer

__all__ = ["ImagesAPI"]

_GPT_MODELS = GPT_IMAGE_MODELS
# Per 1024x1024 image, as OpenAI bills gpt-image-1; other sizes scale by area.
_OUTPUT_TOKENS = {"low": 272, "medium": 1056, "high": 4160}
_IMAGE_INPUT_TOKENS = 323
_PARTIAL_IMAGE_TOKENS = 100


def _revise(prompt: str) -> str:
    # DALL-E 3 rewrites prompts; a stable, visibly different text lets tests tell.
    return f"A detailed, high-quality image of: {prompt}"


def _sanitize_refs(value: object) -> object:
    # data: URLs carry the image itself; the log keeps only their length.
    if isinstance(value, str) and value.startswith("data:"):
        return f"data:...({len(value)} chars)"
    if isinstance(value, dict):
        return {k: _sanitize_refs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_sanitize_refs(v) for v in value]
    return value


def _text_tokens(prompt: str) -> int:
    return max(1, (len(prompt) + 3) // 4)


class ImagesAPI(Steps):
    """Answer generations and edits as OpenAI does, and TTAPI's DALL-E 3 in its envelope."""

    async def generations(self, ctx: Ctx) -> Answer:
        """Answer POST /v1/images/generations."""
        validate_generate(ctx.params)
        return await self._images(ctx, "image_generation", input_images=0)

    async def edits(self, ctx: Ctx) -> Answer:
        """Answer POST /v1/images/edits, multipart or JSON."""
        if is_form(ctx.request):
            validate_edit(ctx.params, ctx.images, ctx.mask)
            count = len(ctx.images)
        else:
            validate_edit_json(ctx.params)
            images = ctx.params.get("images")
            count = len(images) if isinstance(images, list) else 1
            ctx.params = _sanitize_refs(ctx.params)  # type: ignore[assignment]
        return await self._images(ctx, "image_edit", input_images=count)

    async def _images(self, ctx: Ctx, event_prefix: str, input_images: int) -> Answer:
        self.check_prompt(ctx)
        params = ctx.params
        prompt = prompt_of(params)
        model = params.get("model") or "dall-e-2"
        gpt = model in _GPT_MODELS
        n = params.get("n") or 1
        size = self._output_size(params.get("size"), ctx.images, gpt)
        fmt = (params.get("output_format") or "png") if gpt else "png"
        transparent = gpt and params.get("background") == "transparent"
        compression = params.get("output_compression")
        quality = compression if isinstance(compression, int) else 100
        self.state.submissions[prompt] += 1
        await self.latency()
        created = int(self.state.wall(self.state.clock()))
        specs = [
            self.spec(prompt, size, fmt, transparent=transparent, variant=i, quality=quality)
            for i in range(n)
        ]
        resolved_quality = params.get("quality") or "auto"
        if resolved_quality == "auto":
            resolved_quality = "high" if gpt else "standard"
        stream = params.get("stream") is True
        partials = [self._partials(params, spec) for spec in specs] if stream else [0] * n
        usage = None
        if gpt:
            usage = self._usage(prompt, size, resolved_quality, input_images, n, sum(partials))
        if stream:
            return await self._stream(
                event_prefix, specs, partials, created, usage, resolved_quality, transparent
            )
        response_format = "b64_json" if gpt else params.get("response_format") or "url"
        data = []
        origin = self.origin(ctx.request)
        now = self.state.clock()
        for spec in specs:
            item: dict[str, Any] = {}
            if response_format == "b64_json":
                item["b64_json"] = await self.render_b64(spec)
            else:
                token = self.state.add_file(spec, now)
                item["url"] = f"{origin}/_fake/files/{token}.{spec.format}"
            if model == "dall-e-3":
                item["revised_prompt"] = _revise(prompt)
            data.append(item)
        body: dict[str, Any] = {"created": created, "data": data}
        if gpt:
            # GPT answers say what was made, as OpenAI's do (dall-e answers do not).
            body["background"] = "transparent" if transparent else "opaque"
            body["output_format"] = fmt
            body["size"] = f"{size[0]}x{size[1]}"
            body["quality"] = resolved_quality
        if usage is not None:
            body["usage"] = usage
        return json_answer(200, body)

    def _partials(self, params: Mapping[str, Any], spec: ImageSpec) -> int:
        """Return how many partial images to stream before ``spec`` completes.

        The service may finish an image before all the partials asked for are made, so by
        default the count varies (seeded by the fake's seed, the prompt and the image's
        index: all of them half the time, fewer otherwise); ``stream_partials="exact"``
        always sends them all.
        """
        asked = int(params.get("partial_images") or 0)
        if asked <= 0 or self.fake.stream_partials == "exact":
            return asked
        rng = random.Random(f"{self.fake.seed}:{spec.prompt}:{spec.variant}:{asked}")
        return asked if rng.random() < 0.5 else rng.randrange(asked)

    def _output_size(self, size: object, images: list[ImageFileInfo], gpt: bool) -> tuple[int, int]:
        if isinstance(size, str) and size != "auto":
            return parse_size(size)
        dims = images[0].dimensions if images else None
        if gpt and dims is not None:
            # OpenAI's "auto" picks the standard size closest to the source's shape.
            width, height = dims
            if width > height * 1.2:
                return 1536, 1024
            if height > width * 1.2:
                return 1024, 1536
        return 1024, 1024

    def _usage(
        self,
        prompt: str,
        size: tuple[int, int],
        quality: str,
        input_images: int,
        n: int,
        partials: int,
    ) -> dict[str, Any]:
        per_image = _OUTPUT_TOKENS.get(quality, _OUTPUT_TOKENS["high"])
        output = round(per_image * size[0] * size[1] / (1024 * 1024)) * n
        output += _PARTIAL_IMAGE_TOKENS * partials
        text = _text_tokens(prompt)
        image = _IMAGE_INPUT_TOKENS * input_images
        return {
            "input_tokens": text + image,
            "input_tokens_details": {"image_tokens": image, "text_tokens": text},
            "output_tokens": output,
            # Every output token of an image model is an image token.
            "output_tokens_details": {"image_tokens": output, "text_tokens": 0},
            "total_tokens": text + image + output,
        }

    async def _stream(
        self,
        prefix: str,
        specs: list[ImageSpec],
        partials: list[int],
        created: int,
        usage: dict[str, Any] | None,
        quality: str,
        transparent: bool,
    ) -> Answer:
        chunks: list[bytes] = []
        for spec, count in zip(specs, partials, strict=True):
            common = {
                "created_at": created,
                "size": f"{spec.width}x{spec.height}",
                "quality": quality,
                "background": "transparent" if transparent else "opaque",
                "output_format": spec.format,
            }
            for index in range(count):
                partial = self.spec(
                    spec.prompt,
                    (spec.width, spec.height),
                    spec.format,
                    transparent=spec.transparent,
                    variant=spec.variant * 100 + index + 1,
                    partial=True,
                )
                kind = f"{prefix}.partial_image"
                event = {
                    "type": kind,
                    "b64_json": await self.render_b64(partial),
                    "partial_image_index": index,
                    **common,
                }
                chunks.append(sse_event(kind, event))
            kind = f"{prefix}.completed"
            event = {"type": kind, "b64_json": await self.render_b64(spec), **common}
            if usage is not None:
                event["usage"] = usage
            chunks.append(sse_event(kind, event))
        return Answer(200, content_type="text/event-stream", chunks=chunks)

    async def dalle3(self, ctx: Ctx) -> Answer:
        """Answer TTAPI's legacy POST /openai/v1/images/generations (DALL-E 3, enveloped)."""
        validate_dalle3(ctx.params)
        self.check_prompt(ctx)
        params = ctx.params
        prompt = prompt_of(params)
        self.state.submissions[prompt] += 1
        await self.latency()
        spec = self.spec(prompt, parse_size(params.get("size")))
        item: dict[str, Any] = {"revised_prompt": _revise(prompt)}
        if params.get("response_format") == "b64_json":
            item["b64_json"] = await self.render_b64(spec)
        else:
            token = self.state.add_file(spec, self.state.clock())
            item["url"] = f"{self.origin(ctx.request)}/_fake/files/{token}.png"
        created = int(self.state.wall(self.state.clock()))
        data = {"created": created, "data": [item]}
        return json_answer(200, {"status": "SUCCESS", "message": "success", "data": data})

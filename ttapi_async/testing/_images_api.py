"""The synchronous image endpoints: /v1 generations and edits (JSON or SSE), and DALL-E 3."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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

_GPT_MODELS = frozenset({"gpt-image-2", "gpt-image-1.5", "gpt-image-1"})
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
        usage = None
        if gpt:
            usage = self._usage(prompt, size, resolved_quality, n, input_images, params)
        if params.get("stream") is True:
            return await self._stream(
                ctx, event_prefix, specs, created, usage, resolved_quality, transparent
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
        if usage is not None:
            body["usage"] = usage
        return json_answer(200, body)

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
        n: int,
        input_images: int,
        params: Mapping[str, Any],
    ) -> dict[str, Any]:
        per_image = _OUTPUT_TOKENS.get(quality, _OUTPUT_TOKENS["high"])
        output = round(per_image * size[0] * size[1] / (1024 * 1024)) * n
        if params.get("stream") is True:
            output += _PARTIAL_IMAGE_TOKENS * int(params.get("partial_images") or 0) * n
        text = _text_tokens(prompt)
        image = _IMAGE_INPUT_TOKENS * input_images
        return {
            "input_tokens": text + image,
            "input_tokens_details": {"image_tokens": image, "text_tokens": text},
            "output_tokens": output,
            "total_tokens": text + image + output,
        }

    async def _stream(
        self,
        ctx: Ctx,
        prefix: str,
        specs: list[ImageSpec],
        created: int,
        usage: dict[str, Any] | None,
        quality: str,
        transparent: bool,
    ) -> Answer:
        partials = int(ctx.params.get("partial_images") or 0)
        chunks: list[bytes] = []
        for spec in specs:
            common = {
                "created_at": created,
                "size": f"{spec.width}x{spec.height}",
                "quality": quality,
                "background": "transparent" if transparent else "opaque",
                "output_format": spec.format,
            }
            for index in range(partials):
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

"""The aiohttp.web application: routes, the request pipeline and every endpoint.

Each API request goes through one pipeline: faults drawn for its path, the
key checked, the rate limit, the body parsed, the endpoint run, then faults
that strike after processing, then the answer written and logged. Endpoints
return an ``Answer`` (status, bytes, headers, or a list of SSE chunks) rather
than writing themselves, so "drop after", "malformed" and "truncate" apply to
every endpoint alike.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import attrs
from aiohttp import BodyPartReader, web

from .._capabilities import GPT_IMAGE_MODELS
from .._errors import InvalidRequestError
from .._params import (
    ImageFileInfo,
    validate_4o_job,
    validate_dalle3,
    validate_edit,
    validate_edit_json,
    validate_generate,
    validate_gpt_job,
)
from ._clock import ManualClock
from ._config import FaultRule
from ._faults import TokenBucket
from ._images import ImageSpec
from ._jobs import SUCCESS
from ._sse import sse_event
from ._state import FakeState

if TYPE_CHECKING:
    from ._fake import FakeTTAPI

__all__ = ["FakeApp"]

OPENAI = "openai"
TTAPI = "ttapi"

_GPT_MODELS = GPT_IMAGE_MODELS
_REASONS = {499: "Queue Full"}
_HEAD_BYTES = 4096
_INT_FIELDS = frozenset({"n", "output_compression", "partial_images"})
_BOOL_FIELDS = frozenset({"stream"})
_INT_TEXT = re.compile(r"[+-]?\d+")
# Per 1024x1024 image, as OpenAI bills gpt-image-1; other sizes scale by area.
_OUTPUT_TOKENS = {"low": 272, "medium": 1056, "high": 4160}
_IMAGE_INPUT_TOKENS = 323
_PARTIAL_IMAGE_TOKENS = 100
_ASPECT_SIZES = {
    "1:1": "1024x1024",
    "3:4": "768x1024",
    "4:3": "1024x768",
    "16:9": "1536x864",
    "9:16": "864x1536",
}
_ENVELOPE_MESSAGES = {
    401: "Wrong TT-API-KEY or email is not activated.",
    402: "Insufficient balance or quota.",
    403: "Your account has been blocked.",
    404: "Not found.",
    405: "Method not allowed.",
    429: "Too many requests, please slow down.",
    499: "Too many jobs in progress for this product: the queue is full.",
    500: "Internal server error, please retry.",
    502: "Bad gateway.",
    503: "Service unavailable, please retry.",
    504: "Gateway timeout.",
}
_OPENAI_ERRORS = {
    # status: (type, code, message)
    401: ("invalid_request_error", "invalid_api_key", _ENVELOPE_MESSAGES[401]),
    402: ("insufficient_quota", "insufficient_quota", _ENVELOPE_MESSAGES[402]),
    403: ("permission_error", "account_blocked", _ENVELOPE_MESSAGES[403]),
    404: ("invalid_request_error", "unknown_url", "Unknown request URL."),
    405: ("invalid_request_error", "method_not_allowed", _ENVELOPE_MESSAGES[405]),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request."),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
    504: ("server_error", None, "Gateway timeout."),
}
# What a broken gateway might put in a 200: valid at first, then not JSON at all.
_MALFORMED = b'{"status": "SUCCESS", "data": <html><body>upstream error</body></html>'


@attrs.define
class Answer:
    """Carry what an endpoint wants written: JSON bytes, or SSE chunks."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] | None = None
    chunks: list[bytes] | None = None


class _BadBody(Exception):
    """The body could not be read as the endpoint expects."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class _Reject(Exception):
    """Stop the pipeline with a ready answer."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.status)
        self.answer = answer


class _Ctx:
    """Carry one request through the pipeline (a plain slots class: it is made per request)."""

    __slots__ = ("family", "images", "key", "mask", "params", "request")

    def __init__(self, request: web.Request, family: str) -> None:
        self.request = request
        self.family = family
        self.key = ""
        self.params: dict[str, Any] = {}
        self.images: list[ImageFileInfo] = []
        self.mask: ImageFileInfo | None = None

    def logged(self) -> dict[str, Any]:
        """Return the params to log: uploads appear by name and size, never by content."""
        if not self.images and self.mask is None:
            return self.params
        logged = dict(self.params)
        if self.images:
            logged["image"] = [{"filename": i.filename, "size": i.size} for i in self.images]
        if self.mask is not None:
            logged["mask"] = {"filename": self.mask.filename, "size": self.mask.size}
        return logged


Handler = Callable[[_Ctx], Awaitable[Answer]]
Parser = Callable[[web.Request], Awaitable[tuple[dict[str, Any], list[ImageFileInfo], Any]]]


# One encoder for the process: json.dumps with options builds a new encoder per call,
# a measurable share of a small answer's cost.
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def _dumps(data: object) -> bytes:
    return _ENCODE(data).encode()


def json_answer(status: int, data: object, headers: dict[str, str] | None = None) -> Answer:
    """Return a JSON answer."""
    return Answer(status, _dumps(data), headers=headers)


def openai_error(
    status: int,
    message: str,
    *,
    type_: str = "invalid_request_error",
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """Return an error in OpenAI's shape."""
    error = {"message": message, "type": type_, "param": param, "code": code}
    return json_answer(status, {"error": error}, headers)


def envelope_error(status: int, message: str, headers: dict[str, str] | None = None) -> Answer:
    """Return an error in TTAPI's envelope."""
    return json_answer(status, {"status": "FAILED", "message": message, "data": None}, headers)


def status_error(family: str, status: int, headers: dict[str, str] | None = None) -> Answer:
    """Return the canned error of ``status`` in the shape of ``family``."""
    if family == OPENAI:
        type_, code, message = _OPENAI_ERRORS.get(status, ("server_error", None, f"HTTP {status}"))
        return openai_error(status, message, type_=type_, code=code, headers=headers)
    if status == 401:
        # The vendor's 401 body, verbatim: it has no "data" key.
        return json_answer(401, {"status": "FAILED", "message": _ENVELOPE_MESSAGES[401]}, headers)
    return envelope_error(status, _ENVELOPE_MESSAGES.get(status, f"HTTP {status}"), headers)


def _parse_size(size: object, default: str = "1024x1024") -> tuple[int, int]:
    text = size if isinstance(size, str) and size != "auto" else default
    width, _, height = text.partition("x")
    return int(width), int(height)


def _prompt(params: Mapping[str, Any]) -> str:
    prompt = params.get("prompt")
    return prompt if isinstance(prompt, str) else ""


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


class FakeApp:
    """Serve the whole contract (docs/contract.md) for one ``FakeTTAPI``."""

    def __init__(self, fake: FakeTTAPI) -> None:
        self.fake = fake
        self.app = web.Application(client_max_size=512 * 1024 * 1024, middlewares=[])
        self._routes()

    @property
    def state(self) -> FakeState:
        """Return the fake's current state (``reset`` replaces it)."""
        return self.fake._state

    # --- routing ----------------------------------------------------------------------

    def _routes(self) -> None:
        add = self.app.router.add_route
        api: list[tuple[str, str, str, Handler, Parser]] = [
            ("POST", "/v1/images/generations", OPENAI, self._generations, self._json_body),
            ("POST", "/v1/images/edits", OPENAI, self._edits, self._edit_body),
            ("POST", "/openai/v1/images/generations", TTAPI, self._dalle3, self._json_body),
            ("POST", "/openai/4o-image/generations", TTAPI, self._submit_4o, self._json_body),
            ("POST", "/openai/4o-image/fetch", TTAPI, self._fetch_4o, self._fetch_params),
            ("GET", "/openai/4o-image/fetch", TTAPI, self._fetch_4o, self._fetch_params),
            ("POST", "/openai/gpt/generations", TTAPI, self._submit_gpt, self._json_body),
            ("POST", "/openai/gpt/fetch", TTAPI, self._fetch_gpt, self._fetch_params),
            ("GET", "/openai/gpt/fetch", TTAPI, self._fetch_gpt, self._fetch_params),
        ]
        for method, path, family, handler, parser in api:
            add(method, path, self._endpoint(path, family, handler, parser))
        add("GET", "/_fake/files/{name}", self._file)
        add("GET", "/_fake/stats", self._admin_stats)
        add("GET", "/_fake/requests", self._admin_requests)
        add("GET", "/_fake/jobs", self._admin_jobs)
        add("GET", "/_fake/jobs/{job_id}", self._admin_job)
        add("POST", "/_fake/jobs/{job_id}/finish", self._admin_finish)
        add("GET", "/_fake/hooks", self._admin_hooks)
        add("POST", "/_fake/reset", self._admin_reset)
        add("POST", "/_fake/faults", self._admin_faults)
        add("POST", "/_fake/clock/advance", self._admin_advance)
        add("*", "/{tail:.*}", self._unknown)

    def _endpoint(
        self, path: str, family: str, handler: Handler, parser: Parser
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def serve(request: web.Request) -> web.StreamResponse:
            return await self._serve(request, path, family, handler, parser)

        return serve

    async def _unknown(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        family = OPENAI if path.startswith("/v1/") else TTAPI
        known = {r.resource.canonical for r in self.app.router.routes() if r.resource}
        status = 405 if path in known else 404
        answer = status_error(family, status)
        if not path.startswith("/_fake/"):
            self.state.log(request.method, path, {}, status, None)
        return _response(answer)

    # --- the pipeline -----------------------------------------------------------------

    async def _serve(
        self, request: web.Request, path: str, family: str, handler: Handler, parser: Parser
    ) -> web.StreamResponse:
        state = self.state
        method = request.method
        strike = state.faults.draw(method, path)
        if strike.delay:
            await asyncio.sleep(strike.delay * self.fake.time_scale)
        ctx = _Ctx(request, family)
        fault: str | None = None
        before = strike.before
        if before is not None and before.kind == "drop_before":
            _drop(request)
            state.log(method, path, {}, 0, "drop_before")
            return web.Response()
        if before is not None:
            fault = "status"
            answer = status_error(family, strike.status)
        else:
            answer = await self._process(ctx, handler, parser)
        after = strike.after
        if after is not None:
            fault = after.kind
            if after.kind == "drop_after":
                _drop(request)
                state.log(method, path, ctx.logged(), 0, fault)
                return web.Response()
            if after.kind == "malformed":
                answer = Answer(200, _MALFORMED)
        if fault is None and strike.delay:
            fault = "delay"
        state.log(method, path, ctx.logged(), answer.status, fault)
        if fault == "truncate":
            return await _write_truncated(request, answer)
        if answer.chunks is not None:
            return await self._write_stream(request, answer)
        return _response(answer)

    async def _process(self, ctx: _Ctx, handler: Handler, parser: Parser) -> Answer:
        try:
            self._authenticate(ctx)
            self._rate_limit(ctx)
            try:
                ctx.params, ctx.images, ctx.mask = await parser(ctx.request)
            except _BadBody as exc:
                return self._invalid(ctx.family, exc.message, exc.param)
            return await handler(ctx)
        except _Reject as exc:
            return exc.answer
        except InvalidRequestError as exc:
            return self._invalid(ctx.family, exc.message, exc.param)

    def _invalid(self, family: str, message: str, param: str | None) -> Answer:
        if family == OPENAI:
            return openai_error(400, message, param=param)
        return envelope_error(self.fake.business_failure_status, message)

    def _authenticate(self, ctx: _Ctx) -> None:
        headers = ctx.request.headers
        key = headers.get("TT-API-KEY")
        if key is None and ctx.family == OPENAI:
            auth = headers.get("Authorization", "")
            if auth[:7].lower() == "bearer ":
                key = auth[7:].strip()
        fake = self.fake
        canonical = fake._keys.get(key) if key is not None else None
        if canonical is None:
            raise _Reject(status_error(ctx.family, 401))
        if canonical in fake._blocked:
            raise _Reject(status_error(ctx.family, 403))
        if canonical in fake._broke:
            raise _Reject(status_error(ctx.family, 402))
        ctx.key = canonical

    def _rate_limit(self, ctx: _Ctx) -> None:
        rate = self.fake.rate_limit
        if rate is None:
            return
        state = self.state
        now = state.clock()
        bucket = state.buckets.get(ctx.key)
        if bucket is None:
            bucket = state.buckets[ctx.key] = TokenBucket(
                rate, self.fake.rate_burst, now, self.fake.time_scale
            )
        wait = bucket.take(now)
        if wait:
            headers = {"Retry-After": str(wait)}
            scale = self.fake.time_scale
            if scale != 1.0:
                # Retry-After counts whole service seconds, as the service would; a client of
                # a time-scaled fake needs the wait in its own time, which retry-after-ms
                # (read first by this client and by the OpenAI SDK) carries.
                headers["retry-after-ms"] = str(max(1, round(wait * scale * 1000)))
            raise _Reject(status_error(ctx.family, 429, headers))

    # --- parsing ----------------------------------------------------------------------

    async def _json_body(
        self, request: web.Request
    ) -> tuple[dict[str, Any], list[ImageFileInfo], Any]:
        raw = await request.read()
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            raise _BadBody("We could not parse the JSON body of your request.") from None
        if not isinstance(data, dict):
            raise _BadBody("The request body must be a JSON object.")
        return data, [], None

    async def _fetch_params(
        self, request: web.Request
    ) -> tuple[dict[str, Any], list[ImageFileInfo], Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            body, _, _ = await self._json_body(request)
            params.update(body)
        return params, [], None

    async def _edit_body(
        self, request: web.Request
    ) -> tuple[dict[str, Any], list[ImageFileInfo], Any]:
        if request.content_type == "application/x-www-form-urlencoded":
            # A form with no file at all: aiohttp and browsers send it urlencoded.
            form = await request.post()
            fields = {k: _coerce_form(k, v) for k, v in form.items() if isinstance(v, str)}
            return fields, [], None
        if not _is_form(request):
            return await self._json_body(request)
        try:
            reader = await request.multipart()
        except (ValueError, AssertionError) as exc:
            raise _BadBody(f"Could not read the multipart body: {exc}") from None
        params: dict[str, Any] = {}
        images: list[ImageFileInfo] = []
        mask: ImageFileInfo | None = None
        while True:
            part = await reader.next()
            if part is None:
                break
            if not isinstance(part, BodyPartReader):
                raise _BadBody("Nested multipart bodies are not supported.")
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

    # --- common steps -----------------------------------------------------------------

    def _check_prompt(self, ctx: _Ctx) -> None:
        words = self.fake.banned_words
        if not words:
            return
        prompt = _prompt(ctx.params).lower()
        if any(word.lower() in prompt for word in words):
            message = "Your prompt contains words that are not allowed by our safety system."
            if ctx.family == OPENAI:
                raise _Reject(
                    openai_error(400, message, param="prompt", code="content_policy_violation")
                )
            raise _Reject(envelope_error(self.fake.business_failure_status, message))

    async def _latency(self) -> None:
        latency = self.fake.latency
        if latency is not None:
            seconds = latency.sample(self.state.rng) * self.fake.time_scale
            if seconds > 0:
                await asyncio.sleep(seconds)

    def _origin(self, request: web.Request) -> str:
        url = self.fake._bound_url
        if url is None:
            url = self.fake._bound_url = f"{request.scheme}://{request.host}"
        return url

    async def _render_b64(self, spec: ImageSpec) -> str:
        cache = self.fake._images
        cached = cache.peek_b64(spec)
        if cached is not None:
            return cached
        if spec.width * spec.height > 512 * 512 or spec.payload != "small" or spec.pad_to:
            # Big or noisy images take tens of milliseconds: keep the loop serving.
            return await asyncio.to_thread(cache.get_b64, spec)
        return cache.get_b64(spec)

    def _spec(
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

    # --- /v1 images -------------------------------------------------------------------

    async def _generations(self, ctx: _Ctx) -> Answer:
        validate_generate(ctx.params)
        return await self._images(ctx, "image_generation", input_images=0)

    async def _edits(self, ctx: _Ctx) -> Answer:
        if _is_form(ctx.request):
            validate_edit(ctx.params, ctx.images, ctx.mask)
            count = len(ctx.images)
        else:
            validate_edit_json(ctx.params)
            images = ctx.params.get("images")
            count = len(images) if isinstance(images, list) else 1
            ctx.params = _sanitize_refs(ctx.params)  # type: ignore[assignment]
        return await self._images(ctx, "image_edit", input_images=count)

    async def _images(self, ctx: _Ctx, event_prefix: str, input_images: int) -> Answer:
        self._check_prompt(ctx)
        params = ctx.params
        prompt = _prompt(params)
        model = params.get("model") or "dall-e-2"
        gpt = model in _GPT_MODELS
        n = params.get("n") or 1
        size = self._output_size(params.get("size"), ctx.images, gpt)
        fmt = (params.get("output_format") or "png") if gpt else "png"
        transparent = gpt and params.get("background") == "transparent"
        compression = params.get("output_compression")
        quality = compression if isinstance(compression, int) else 100
        self.state.submissions[prompt] += 1
        await self._latency()
        created = int(self.state.wall(self.state.clock()))
        specs = [
            self._spec(prompt, size, fmt, transparent=transparent, variant=i, quality=quality)
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
        origin = self._origin(ctx.request)
        now = self.state.clock()
        for spec in specs:
            item: dict[str, Any] = {}
            if response_format == "b64_json":
                item["b64_json"] = await self._render_b64(spec)
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
            return _parse_size(size)
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
        ctx: _Ctx,
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
                partial = self._spec(
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
                    "b64_json": await self._render_b64(partial),
                    "partial_image_index": index,
                    **common,
                }
                chunks.append(sse_event(kind, event))
            kind = f"{prefix}.completed"
            event = {"type": kind, "b64_json": await self._render_b64(spec), **common}
            if usage is not None:
                event["usage"] = usage
            chunks.append(sse_event(kind, event))
        return Answer(200, content_type="text/event-stream", chunks=chunks)

    async def _write_stream(self, request: web.Request, answer: Answer) -> web.StreamResponse:
        resp = web.StreamResponse(status=answer.status)
        resp.content_type = answer.content_type
        resp.headers["Cache-Control"] = "no-cache"
        await resp.prepare(request)
        interval = self.fake.stream_interval * self.fake.time_scale
        for i, chunk in enumerate(answer.chunks or ()):
            if i and interval > 0:
                await asyncio.sleep(interval)
            await resp.write(chunk)
        await resp.write_eof()
        return resp

    # --- legacy DALL-E 3 --------------------------------------------------------------

    async def _dalle3(self, ctx: _Ctx) -> Answer:
        validate_dalle3(ctx.params)
        self._check_prompt(ctx)
        params = ctx.params
        prompt = _prompt(params)
        self.state.submissions[prompt] += 1
        await self._latency()
        spec = self._spec(prompt, _parse_size(params.get("size")))
        item: dict[str, Any] = {"revised_prompt": _revise(prompt)}
        if params.get("response_format") == "b64_json":
            item["b64_json"] = await self._render_b64(spec)
        else:
            token = self.state.add_file(spec, self.state.clock())
            item["url"] = f"{self._origin(ctx.request)}/_fake/files/{token}.png"
        created = int(self.state.wall(self.state.clock()))
        data = {"created": created, "data": [item]}
        return json_answer(200, {"status": "SUCCESS", "message": "success", "data": data})

    # --- jobs -------------------------------------------------------------------------

    async def _submit_4o(self, ctx: _Ctx) -> Answer:
        validate_4o_job(ctx.params)
        return self._submit(ctx, "4o-image", None, "1024x1024", self.fake.submit_id_4o)

    async def _submit_gpt(self, ctx: _Ctx) -> Answer:
        validate_gpt_job(ctx.params)
        params = ctx.params
        model = params.get("model") or "gpt-image-2"
        if params.get("size"):
            size = str(params["size"])
        else:
            size = _ASPECT_SIZES.get(str(params.get("aspect_ratio") or "1:1"), "1024x1024")
        return self._submit(ctx, "gpt", model, size, self.fake.submit_id_gpt)

    def _submit(
        self, ctx: _Ctx, product: str, model: str | None, size: str, spelling: str
    ) -> Answer:
        self._check_prompt(ctx)
        fake = self.fake
        state = self.state
        now = state.clock()
        limit = fake.max_jobs_in_progress
        if limit is not None and state.jobs.in_progress(ctx.key, product, now) >= limit:
            return envelope_error(499, _ENVELOPE_MESSAGES[499])
        params = ctx.params
        prompt = _prompt(params)
        refer = params.get("referImages")
        hook = params.get("hookUrl")
        job = fake._create_job(
            product=product,
            key=ctx.key,
            prompt=prompt,
            refer_images=list(refer) if refer else None,
            hook_url=hook if isinstance(hook, str) and hook else None,
            model=model,
            size=size,
        )
        state.submissions[prompt] += 1
        # Remember the public origin now: callbacks built later carry image URLs.
        self._origin(ctx.request)
        data: dict[str, str] = {}
        if spelling in ("jobId", "both"):
            data["jobId"] = job.id
        if spelling in ("job_id", "both"):
            data["job_id"] = job.id
        return json_answer(200, {"status": "SUCCESS", "message": "success", "data": data})

    async def _fetch_4o(self, ctx: _Ctx) -> Answer:
        return self._fetch(ctx, "4o-image")

    async def _fetch_gpt(self, ctx: _Ctx) -> Answer:
        return self._fetch(ctx, "gpt")

    def _fetch(self, ctx: _Ctx, product: str) -> Answer:
        params = ctx.params
        job_id = params.get("jobId") or params.get("job_id")
        if not isinstance(job_id, str) or not job_id:
            raise InvalidRequestError("jobId is required", param="jobId")
        job = self.state.jobs.get(job_id)
        if job is None or job.product != product or job.key != ctx.key:
            return envelope_error(404, f"Job {job_id} not found.")
        body = self.state.fetch_body(job, self.state.clock(), self._origin(ctx.request))
        return json_answer(200, body)

    # --- files and admin --------------------------------------------------------------

    async def _file(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        token, _, ext = name.rpartition(".")
        state = self.state
        spec = state.file(token, state.clock())
        if spec is None or ext not in ("png", "jpeg", "webp"):
            return _response(status_error(TTAPI, 404))
        data = self.fake._images.peek(spec)
        if data is None:
            data = await asyncio.to_thread(self.fake._images.get, spec)
        return web.Response(body=data, content_type=f"image/{spec.format}")

    async def _admin_stats(self, request: web.Request) -> web.StreamResponse:
        return _response(json_answer(200, self.fake.stats().to_json()))

    async def _admin_requests(self, request: web.Request) -> web.StreamResponse:
        records = list(self.state.requests)
        path = request.query.get("path")
        if path:
            records = [r for r in records if r.path == path]
        limit = request.query.get("limit")
        if limit and limit.isdigit():
            records = records[-int(limit) :] if int(limit) else []
        return _response(json_answer(200, [r.to_json() for r in records]))

    async def _admin_jobs(self, request: web.Request) -> web.StreamResponse:
        state = self.state
        now = state.clock()
        wanted = request.query.get("status")
        limit_text = request.query.get("limit", "1000")
        limit = int(limit_text) if limit_text.isdigit() else 1000
        origin = self._origin(request)
        views: list[dict[str, Any]] = []
        for job in state.jobs:
            if len(views) >= limit:
                break
            if wanted is None or job.status(now) == wanted:
                views.append(state.job_view(job, now, origin).to_json())
        counts = state.jobs.count_by_state(now)
        return _response(json_answer(200, {"counts": counts, "jobs": views}))

    async def _admin_job(self, request: web.Request) -> web.StreamResponse:
        view = self.fake.job(request.match_info["job_id"])
        if view is None:
            return _response(envelope_error(404, "Job not found."))
        return _response(json_answer(200, view.to_json()))

    async def _admin_finish(self, request: web.Request) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else {}
        try:
            self.fake.finish_job(
                request.match_info["job_id"],
                status=body.get("status", SUCCESS),
                message=body.get("message"),
            )
        except KeyError:
            return _response(envelope_error(404, "Job not found."))
        except ValueError as exc:
            return _response(envelope_error(409, str(exc)))
        return await self._admin_job(request)

    async def _admin_hooks(self, request: web.Request) -> web.StreamResponse:
        deliveries = [attrs.asdict(d) for d in self.state.hook_deliveries]
        return _response(json_answer(200, deliveries))

    async def _admin_reset(self, request: web.Request) -> web.StreamResponse:
        self.fake.reset()
        return _response(json_answer(200, {"status": "SUCCESS", "message": "reset"}))

    async def _admin_faults(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        try:
            rules = [FaultRule(**rule) for rule in body.get("rules", [])]
        except (TypeError, ValueError) as exc:
            return _response(envelope_error(400, str(exc)))
        if body.get("append"):
            for rule in rules:
                self.fake.add_fault(rule)
        else:
            self.fake.set_faults(*rules)
        return _response(json_answer(200, [attrs.asdict(r) for r in self.fake.faults_active]))

    async def _admin_advance(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        clock = self.fake.clock
        if not isinstance(clock, ManualClock):
            return _response(envelope_error(409, "the fake does not run on a ManualClock"))
        now = clock.advance(float(body.get("seconds", 0)))
        return _response(json_answer(200, {"now": now}))


def _revise(prompt: str) -> str:
    # DALL-E 3 rewrites prompts; a stable, visibly different text lets tests tell.
    return f"A detailed, high-quality image of: {prompt}"


def _coerce_form(name: str, text: str) -> Any:
    """Turn multipart text into the JSON type the field has (the SDK sends numbers as text)."""
    if name in _INT_FIELDS and _INT_TEXT.fullmatch(text.strip()):
        return int(text)
    if name in _BOOL_FIELDS and text.strip().lower() in ("true", "false"):
        return text.strip().lower() == "true"
    return text


def _is_form(request: web.Request) -> bool:
    return request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded")


def _response(answer: Answer) -> web.Response:
    return web.Response(
        status=answer.status,
        reason=_REASONS.get(answer.status),
        body=answer.body,
        content_type=answer.content_type,
        headers=answer.headers,
    )


def _drop(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        # abort, not close: nothing buffered may reach the client.
        transport.abort()


async def _write_truncated(request: web.Request, answer: Answer) -> web.StreamResponse:
    body = b"".join(answer.chunks) if answer.chunks is not None else answer.body
    resp = web.StreamResponse(status=answer.status, reason=_REASONS.get(answer.status))
    resp.content_type = answer.content_type
    resp.content_length = len(body)
    await resp.prepare(request)
    await resp.write(body[: len(body) // 2])
    transport = request.transport
    if transport is not None:
        # close, not abort: the first half must arrive, then the connection ends.
        transport.close()
    return resp

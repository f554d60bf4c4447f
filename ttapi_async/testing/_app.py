"""The aiohttp.web application: routes and the request pipeline every API request goes through.

Each API request goes through one pipeline: faults drawn for its path, the
key checked, the rate limit, the body parsed, the endpoint run, then faults
that strike after processing, then the answer written and logged. The
endpoints live in ``_images_api`` and ``_jobs_api``, the ``/_fake/*`` routes
in ``_admin``, answers and their writing in ``_wire``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from .._errors import InvalidRequestError
from ._admin import AdminRoutes
from ._faults import TokenBucket
from ._images_api import ImagesAPI
from ._jobs_api import JobsAPI
from ._parse import Parsed, edit_body, fetch_params, json_body
from ._state import FakeState
from ._wire import (
    MALFORMED,
    OPENAI,
    TTAPI,
    Answer,
    BadBody,
    Ctx,
    Reject,
    drop,
    envelope_error,
    openai_error,
    response,
    status_error,
    write_stream,
    write_truncated,
)

if TYPE_CHECKING:
    from ._fake import FakeTTAPI

__all__ = ["FakeApp"]

logger = logging.getLogger("ttapi_async.testing")

# OpenAI's words for a request with no key at all (its code is null there).
_NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization "
    "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
)

Handler = Callable[[Ctx], Awaitable[Answer]]
Parser = Callable[[web.Request], Awaitable[Parsed]]


class FakeApp:
    """Serve the whole contract (docs/contract.md) for one ``FakeTTAPI``."""

    def __init__(self, fake: FakeTTAPI) -> None:
        self.fake = fake
        self.app = web.Application(client_max_size=512 * 1024 * 1024, middlewares=[])
        self.images = ImagesAPI(fake)
        self.jobs = JobsAPI(fake)
        self.admin = AdminRoutes(fake)
        self._methods: dict[str, set[str]] | None = None
        self._routes()

    @property
    def state(self) -> FakeState:
        """Return the fake's current state (``reset`` replaces it)."""
        return self.fake._state

    # --- routing ----------------------------------------------------------------------

    def _routes(self) -> None:
        images, jobs = self.images, self.jobs
        api: list[tuple[str, str, str, Handler, Parser]] = [
            ("POST", "/v1/images/generations", OPENAI, images.generations, json_body),
            ("POST", "/v1/images/edits", OPENAI, images.edits, edit_body),
            ("POST", "/openai/v1/images/generations", TTAPI, images.dalle3, json_body),
            ("POST", "/openai/4o-image/generations", TTAPI, jobs.submit_4o, json_body),
            ("POST", "/openai/4o-image/fetch", TTAPI, jobs.fetch_4o, fetch_params),
            ("GET", "/openai/4o-image/fetch", TTAPI, jobs.fetch_4o, fetch_params),
            ("POST", "/openai/gpt/generations", TTAPI, jobs.submit_gpt, json_body),
            ("POST", "/openai/gpt/fetch", TTAPI, jobs.fetch_gpt, fetch_params),
            ("GET", "/openai/gpt/fetch", TTAPI, jobs.fetch_gpt, fetch_params),
        ]
        router = self.app.router
        for method, path, family, handler, parser in api:
            router.add_route(method, path, self._endpoint(path, family, handler, parser))
        self.admin.add_to(router)
        router.add_route("*", "/{tail:.*}", self._unknown)

    def _endpoint(
        self, path: str, family: str, handler: Handler, parser: Parser
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def serve(request: web.Request) -> web.StreamResponse:
            return await self._serve(request, path, family, handler, parser)

        return serve

    def _allowed(self, path: str) -> list[str]:
        methods = self._methods
        if methods is None:
            methods = self._methods = {}
            for route in self.app.router.routes():
                canonical = route.resource.canonical if route.resource else None
                if canonical and route.method != "*":
                    methods.setdefault(canonical, set()).add(route.method)
        return sorted(methods.get(path, ()))

    async def _unknown(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        method = request.method
        family = OPENAI if path.startswith("/v1/") else TTAPI
        allowed = self._allowed(path)
        answer: Answer | None = None
        if family == OPENAI:
            # OpenAI checks the key before it looks at the path or the method.
            try:
                self._authenticate(Ctx(request, family))
            except Reject as exc:
                answer = exc.answer
        if answer is None and allowed:
            headers = {"Allow": ", ".join(allowed)}
            if family == OPENAI:
                message = f"Invalid method for URL ({method} {path})."
                answer = openai_error(405, message, code="method_not_allowed", headers=headers)
            else:
                answer = status_error(family, 405, headers)
        elif answer is None and family == OPENAI:
            message = (
                f"Unknown request URL: {method} {path}. Please check the URL for typos, "
                "or see the docs at https://platform.openai.com/docs/api-reference/."
            )
            answer = openai_error(404, message, code="unknown_url")
        elif answer is None:
            answer = status_error(family, 404)
        if not path.startswith("/_fake/"):
            self.state.log(method, path, {}, answer.status, None)
        return response(answer)

    # --- the pipeline -----------------------------------------------------------------

    async def _serve(
        self, request: web.Request, path: str, family: str, handler: Handler, parser: Parser
    ) -> web.StreamResponse:
        state = self.state
        method = request.method
        strike = state.faults.draw(method, path)
        if strike.delay:
            await asyncio.sleep(strike.delay * self.fake.time_scale)
        ctx = Ctx(request, family)
        fault: str | None = None
        before = strike.before
        if before is not None and before.kind == "drop_before":
            drop(request)
            state.log(method, path, {}, 0, "drop_before")
            return web.Response()
        if before is not None:
            fault = "status"
            answer = status_error(family, strike.status)
        else:
            try:
                answer = await self._process(ctx, handler, parser)
            except ConnectionResetError:
                # The client hung up (a delay outlived its timeout): normal, so no traceback.
                logger.debug("client hung up on %s %s", method, path)
                state.log(method, path, ctx.logged(), 0, "delay" if strike.delay else None)
                return web.Response()
        after = strike.after
        if after is not None:
            fault = after.kind
            if after.kind == "drop_after":
                drop(request)
                state.log(method, path, ctx.logged(), 0, fault)
                return web.Response()
            if after.kind == "malformed":
                answer = Answer(200, MALFORMED)
        if fault is None and strike.delay:
            fault = "delay"
        state.log(method, path, ctx.logged(), answer.status, fault)
        try:
            if fault == "truncate":
                return await write_truncated(request, answer)
            if answer.chunks is not None:
                interval = self.fake.stream_interval * self.fake.time_scale
                return await write_stream(request, answer, interval)
        except ConnectionResetError:
            logger.debug("client hung up during the answer to %s %s", method, path)
            return web.Response()
        return response(answer)

    async def _process(self, ctx: Ctx, handler: Handler, parser: Parser) -> Answer:
        try:
            self._authenticate(ctx)
            self._rate_limit(ctx)
            try:
                ctx.params, ctx.images, ctx.mask = await parser(ctx.request)
            except BadBody as exc:
                return self._invalid(ctx.family, exc.message, exc.param)
            return await handler(ctx)
        except Reject as exc:
            return exc.answer
        except InvalidRequestError as exc:
            return self._invalid(ctx.family, exc.message, exc.param, _code(ctx, exc))
        except ConnectionResetError:
            raise
        except Exception:
            # A bug of the fake: answer and log it like any request rather than let
            # aiohttp answer a bare text/plain 500 that no record counts.
            logger.exception("FakeTTAPI failed on %s %s", ctx.request.method, ctx.request.path)
            return status_error(ctx.family, 500)

    def _invalid(
        self, family: str, message: str, param: str | None, code: str | None = None
    ) -> Answer:
        if family == OPENAI:
            return openai_error(400, message, param=param, code=code)
        return envelope_error(self.fake.business_failure_status, message)

    def _authenticate(self, ctx: Ctx) -> None:
        headers = ctx.request.headers
        key = headers.get("TT-API-KEY")
        if key is None and ctx.family == OPENAI:
            auth = headers.get("Authorization", "")
            if auth[:7].lower() == "bearer ":
                key = auth[7:].strip()
        fake = self.fake
        canonical = fake._keys.get(key) if key is not None else None
        if canonical is None:
            if key is None and ctx.family == OPENAI:
                raise Reject(openai_error(401, _NO_KEY))
            raise Reject(status_error(ctx.family, 401))
        if canonical in fake._blocked:
            raise Reject(status_error(ctx.family, 403))
        if canonical in fake._broke:
            raise Reject(status_error(ctx.family, 402))
        ctx.key = canonical

    def _rate_limit(self, ctx: Ctx) -> None:
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
            raise Reject(status_error(ctx.family, 429, headers))


def _code(ctx: Ctx, exc: InvalidRequestError) -> str | None:
    """Return the ``error.code`` OpenAI gives a refused parameter."""
    param = exc.param
    if param is None:
        return None
    if param not in ctx.params:
        return "missing_required_parameter"
    if "is not a parameter" in exc.message:
        return "unknown_parameter"
    return "invalid_value"

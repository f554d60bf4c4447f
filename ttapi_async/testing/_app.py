"""The aiohttp.web application: routes and the request pipeline every API request goes through.

Each API request goes through one pipeline: faults drawn for its path, the
key checked, the rate limit, the body parsed, the endpoint run, then faults
that strike after processing, then the answer written and logged. The
endpoints live in ``_images_api`` and ``_jobs_api``, the ``/_fake/*`` routes
in ``_admin``, answers and their writing in ``_wire``.
"""

from __future__ import annotations

import asyncio
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

Handler = Callable[[Ctx], Awaitable[Answer]]
Parser = Callable[[web.Request], Awaitable[Parsed]]


class FakeApp:
    """Serve the whole API.md contract for one ``FakeTTAPI``."""

    def __init__(self, fake: FakeTTAPI) -> None:
        self.fake = fake
        self.app = web.Application(client_max_size=512 * 1024 * 1024, middlewares=[])
        self.images = ImagesAPI(fake)
        self.jobs = JobsAPI(fake)
        self.admin = AdminRoutes(fake)
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

    async def _unknown(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        family = OPENAI if path.startswith("/v1/") else TTAPI
        known = {r.resource.canonical for r in self.app.router.routes() if r.resource}
        status = 405 if path in known else 404
        answer = status_error(family, status)
        if not path.startswith("/_fake/"):
            self.state.log(request.method, path, {}, status, None)
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
            answer = await self._process(ctx, handler, parser)
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
        if fault == "truncate":
            return await write_truncated(request, answer)
        if answer.chunks is not None:
            interval = self.fake.stream_interval * self.fake.time_scale
            return await write_stream(request, answer, interval)
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
            return self._invalid(ctx.family, exc.message, exc.param)

    def _invalid(self, family: str, message: str, param: str | None) -> Answer:
        if family == OPENAI:
            return openai_error(400, message, param=param)
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

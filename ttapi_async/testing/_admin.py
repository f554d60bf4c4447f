"""The ``/_fake/*`` routes: served image files and the admin API tests and benchmarks drive."""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
from aiohttp import web

from ._clock import ManualClock
from ._config import FaultRule
from ._jobs import SUCCESS
from ._steps import Steps
from ._wire import TTAPI, envelope_error, json_answer, response, status_error

__all__ = ["AdminRoutes"]


class AdminRoutes(Steps):
    """Serve image URLs and the admin API (stats, requests, jobs, hooks, faults, clock)."""

    def add_to(self, router: web.UrlDispatcher) -> None:
        """Register every ``/_fake/*`` route on ``router``."""
        add = router.add_route
        add("GET", "/_fake/files/{name}", self.file)
        add("GET", "/_fake/stats", self.stats)
        add("GET", "/_fake/requests", self.requests)
        add("GET", "/_fake/jobs", self.jobs)
        add("GET", "/_fake/jobs/{job_id}", self.job)
        add("POST", "/_fake/jobs/{job_id}/finish", self.finish)
        add("GET", "/_fake/hooks", self.hooks)
        add("POST", "/_fake/reset", self.reset)
        add("POST", "/_fake/faults", self.faults)
        add("POST", "/_fake/clock/advance", self.advance)

    async def file(self, request: web.Request) -> web.StreamResponse:
        """Serve an image URL until it expires."""
        name = request.match_info["name"]
        token, _, ext = name.rpartition(".")
        state = self.state
        spec = state.file(token, state.clock())
        if spec is None or ext not in ("png", "jpeg", "webp"):
            return response(status_error(TTAPI, 404))
        data = self.fake._images.peek(spec)
        if data is None:
            data = await asyncio.to_thread(self.fake._images.get, spec)
        return web.Response(body=data, content_type=f"image/{spec.format}")

    async def stats(self, request: web.Request) -> web.StreamResponse:
        """GET /_fake/stats."""
        return response(json_answer(200, self.fake.stats().to_json()))

    async def requests(self, request: web.Request) -> web.StreamResponse:
        """GET /_fake/requests[?path=...&limit=N]: the last request records."""
        records = list(self.state.requests)
        path = request.query.get("path")
        if path:
            records = [r for r in records if r.path == path]
        limit = request.query.get("limit")
        if limit and limit.isdigit():
            records = records[-int(limit) :] if int(limit) else []
        return response(json_answer(200, [r.to_json() for r in records]))

    async def jobs(self, request: web.Request) -> web.StreamResponse:
        """GET /_fake/jobs[?status=...&limit=N]: counts by state and job views."""
        state = self.state
        now = state.clock()
        wanted = request.query.get("status")
        limit_text = request.query.get("limit", "1000")
        limit = int(limit_text) if limit_text.isdigit() else 1000
        origin = self.origin(request)
        views: list[dict[str, Any]] = []
        for job in state.jobs:
            if len(views) >= limit:
                break
            if wanted is None or job.status(now) == wanted:
                views.append(state.job_view(job, now, origin).to_json())
        counts = state.jobs.count_by_state(now)
        return response(json_answer(200, {"counts": counts, "jobs": views}))

    async def job(self, request: web.Request) -> web.StreamResponse:
        """GET /_fake/jobs/{id}."""
        view = self.fake.job(request.match_info["job_id"])
        if view is None:
            return response(envelope_error(404, "Job not found."))
        return response(json_answer(200, view.to_json()))

    async def finish(self, request: web.Request) -> web.StreamResponse:
        """POST /_fake/jobs/{id}/finish {"status", "message"}: end a job now."""
        body = await request.json() if request.can_read_body else {}
        try:
            self.fake.finish_job(
                request.match_info["job_id"],
                status=body.get("status", SUCCESS),
                message=body.get("message"),
            )
        except KeyError:
            return response(envelope_error(404, "Job not found."))
        except ValueError as exc:
            return response(envelope_error(409, str(exc)))
        return await self.job(request)

    async def hooks(self, request: web.Request) -> web.StreamResponse:
        """GET /_fake/hooks: every callback delivery attempt."""
        deliveries = [attrs.asdict(d) for d in self.state.hook_deliveries]
        return response(json_answer(200, deliveries))

    async def reset(self, request: web.Request) -> web.StreamResponse:
        """POST /_fake/reset."""
        self.fake.reset()
        return response(json_answer(200, {"status": "SUCCESS", "message": "reset"}))

    async def faults(self, request: web.Request) -> web.StreamResponse:
        """POST /_fake/faults {"rules": [...], "append": bool}."""
        body = await request.json()
        try:
            rules = [FaultRule(**rule) for rule in body.get("rules", [])]
        except (TypeError, ValueError) as exc:
            return response(envelope_error(400, str(exc)))
        if body.get("append"):
            for rule in rules:
                self.fake.add_fault(rule)
        else:
            self.fake.set_faults(*rules)
        return response(json_answer(200, [attrs.asdict(r) for r in self.fake.faults_active]))

    async def advance(self, request: web.Request) -> web.StreamResponse:
        """POST /_fake/clock/advance {"seconds": s}: move a ManualClock on."""
        body = await request.json()
        clock = self.fake.clock
        if not isinstance(clock, ManualClock):
            return response(envelope_error(409, "the fake does not run on a ManualClock"))
        now = clock.advance(float(body.get("seconds", 0)))
        return response(json_answer(200, {"now": now}))

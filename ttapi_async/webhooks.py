"""Receive TTAPI's job callbacks safely: a callback only makes the watcher fetch the job now.

TTAPI does not sign callbacks, so anyone who learns a callback URL can post to it. The
receiver therefore

- puts an unguessable token (``secrets.token_urlsafe``) in every ``hookUrl`` it hands
  out and compares it in constant time (``hmac.compare_digest``);
- caps the body size and rejects a bad token or an unknown job without touching any job;
- by default does not believe the body: it asks the watcher to fetch the job at once,
  and only that fetch settles it. ``trust_body=True`` settles a job from a SUCCESS or
  FAILED body directly (one request less per job); its risk: whoever holds the URL
  (a proxy log, a leaked config) can then end your jobs with any image URL they like.

aiohttp::

    receiver = WebhookReceiver(client, public_url="https://example.com/ttapi-hook")
    receiver.add_routes(app)               # POST /ttapi-hook
    job = await client.gpt4o.submit(prompt="...", hook=True)

FastAPI or Starlette::

    @app.post("/ttapi-hook")
    async def ttapi_hook(request: Request) -> Response:
        status, text = await receiver.handle(request.query_params, await request.body())
        return PlainTextResponse(text, status_code=status)

(Starlette reads the whole body before the size check; put a size limit in front of it.)
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ._errors import APIResponseValidationError
from ._models import JobStatus, structure
from ._watcher import JobWatcher

if TYPE_CHECKING:
    from aiohttp import web

    from ._client import AsyncTTAPI

__all__ = ["DEFAULT_MAX_BODY", "WebhookReceiver"]

logger = logging.getLogger("ttapi_async")

#: A job's callback body is well under 4 KB; 64 KB leaves room for long prompts.
DEFAULT_MAX_BODY: Final = 64 * 1024
TOKEN_PARAM: Final = "token"


class WebhookReceiver:
    """Turn TTAPI's job callbacks into "fetch this job now" for a client's watcher.

    ``public_url`` is where TTAPI can reach your handler; the receiver adds
    ``?token=...`` to it. Pass ``token`` to keep the same URL across restarts (jobs
    submitted before a restart then still call back); by default a fresh one is drawn.
    Creating a receiver for a client makes ``submit(..., hook=True)`` use it.
    """

    def __init__(
        self,
        target: AsyncTTAPI | JobWatcher,
        *,
        public_url: str,
        token: str | None = None,
        trust_body: bool = False,
        max_body: int = DEFAULT_MAX_BODY,
    ) -> None:
        parts = urlsplit(public_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"public_url must be an http(s) URL, got {public_url!r}")
        if token is not None and len(token) < 16:
            raise ValueError("token must be at least 16 characters (use secrets.token_urlsafe)")
        if max_body < 1:
            raise ValueError(f"max_body must be >= 1, got {max_body}")
        watcher = target if isinstance(target, JobWatcher) else target.watcher
        self._watcher = watcher
        self._token = token or secrets.token_urlsafe(32)
        self._token_bytes = self._token.encode()
        self.trust_body = trust_body
        self.max_body = max_body
        self.path = parts.path or "/"
        query = [*parse_qsl(parts.query, keep_blank_values=True), (TOKEN_PARAM, self._token)]
        self._hook_url = urlunsplit(parts._replace(query=urlencode(query)))
        #: counters: callbacks accepted, and rejected (bad token, size, body, unknown job)
        self.accepted = 0
        self.rejected = 0
        watcher.receiver = self

    def __repr__(self) -> str:
        # The token is a secret: never in a repr or a log line.
        return f"WebhookReceiver(path={self.path!r}, trust_body={self.trust_body})"

    @property
    def hook_url(self) -> str:
        """Return the URL to give TTAPI as ``hookUrl`` (it holds the secret token)."""
        return self._hook_url

    @property
    def token(self) -> str:
        """Return the secret token (store it to keep the same ``hook_url`` after a restart)."""
        return self._token

    async def handle(self, query: Mapping[str, str], body: bytes) -> tuple[int, str]:
        """Handle one callback; return ``(HTTP status, text)`` for the framework to send.

        403 for a bad or missing token, 413 for a body over ``max_body``, 400 for a body
        that is not a job status, 404 for a job this process is not watching, 200 when
        the job will be fetched now (or, with ``trust_body``, was settled).
        """
        if len(body) > self.max_body:
            return self._reject(413, "body too large")
        given = query.get(TOKEN_PARAM, "")
        if not hmac.compare_digest(given.encode(), self._token_bytes):
            return self._reject(403, "forbidden")
        try:
            status = structure(json.loads(body), JobStatus)
        except (ValueError, UnicodeDecodeError, APIResponseValidationError):
            return self._reject(400, "not a job status")
        watcher = self._watcher
        if watcher.get(status.job_id) is None:
            return self._reject(404, "unknown job")
        self.accepted += 1
        if self.trust_body and status.terminal:
            watcher.deliver(status.job_id, status)
        else:
            watcher.poke(status.job_id)
        return 200, "ok"

    def _reject(self, code: int, text: str) -> tuple[int, str]:
        self.rejected += 1
        logger.info("webhook callback rejected: %d %s", code, text)
        return code, text

    async def aiohttp_handler(self, request: web.Request) -> web.Response:
        """Handle a callback in an aiohttp.web application (reads at most ``max_body + 1``)."""
        from aiohttp import web

        if (request.content_length or 0) > self.max_body:
            code, text = self._reject(413, "body too large")
        else:
            body = await request.content.read(self.max_body + 1)
            code, text = await self.handle(request.query, body)
        return web.Response(status=code, text=text)

    def add_routes(self, app: web.Application, path: str | None = None) -> None:
        """Route ``POST path`` (default: the path of ``public_url``) to this receiver."""
        app.router.add_post(path or self.path, self.aiohttp_handler)

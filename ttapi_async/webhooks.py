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
        status, text = await receiver.handle(request.query_params, request.stream())
        return PlainTextResponse(text, status_code=status)

(``request.stream()`` lets the receiver stop reading past ``max_body``.)

Many workers: give every worker's client a ``RedisCoordinator`` on one namespace. The
token is then the one every worker derives alike (``coordinator.webhook_token()``), and a
callback for a job of any worker is confirmed where it lands: one fetch across workers
(``claim_callback``: the record and the claim in one round trip), whose terminal answer is
recorded and wakes the owning worker, which resolves the job without a fetch of its own.
``await receiver.start()`` reads the token (``submit(hook=True)`` and the first callback do
it too); until then ``hook_url`` and ``token`` raise ``RuntimeError``.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import AsyncIterable, Mapping
from typing import TYPE_CHECKING, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ._bigjson import loads
from ._coord_listener import confirm
from ._coordination import answer_of
from ._errors import APIResponseValidationError
from ._models import JobStatus, structure
from ._watcher import JobWatcher
from .coordination._local import LocalCoordinator

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
        self._client = None if isinstance(target, JobWatcher) else target
        self._parts = parts
        self._token = ""
        self._token_bytes = b""
        self._hook_url = ""
        self.trust_body = trust_body
        self.max_body = max_body
        self.path = parts.path or "/"
        # A shared coordinator's token is read from it (every worker has the same); in one
        # process a fresh one is drawn, as before coordination.
        self._shared = (
            token is None
            and self._client is not None
            and not isinstance(self._client.coordinator, LocalCoordinator)
        )
        if not self._shared:
            self._set_token(token or secrets.token_urlsafe(32))
        #: counters: callbacks accepted, and rejected (bad token, size, body, unknown job)
        self.accepted = 0
        self.rejected = 0
        # job id -> (the job's status object, whether it is the confirming fetch's answer)
        self._asked: dict[str, tuple[object, bool]] = {}
        watcher.receiver = self

    def __repr__(self) -> str:
        # The token is a secret: never in a repr or a log line.
        return f"WebhookReceiver(path={self.path!r}, trust_body={self.trust_body})"

    def _set_token(self, token: str) -> None:
        self._token = token
        self._token_bytes = token.encode()
        parts = self._parts
        query = [*parse_qsl(parts.query, keep_blank_values=True), (TOKEN_PARAM, token)]
        self._hook_url = urlunsplit(parts._replace(query=urlencode(query)))

    async def start(self) -> str:
        """Read the shared token from the client's coordinator if not yet; return ``hook_url``."""
        if not self._token:
            assert self._client is not None
            coordinator = await self._client.open_coordinator()
            self._set_token(await coordinator.webhook_token())
        return self._hook_url

    @property
    def hook_url(self) -> str:
        """Return the URL to give TTAPI as ``hookUrl`` (it holds the secret token)."""
        return self._started(self._hook_url)

    @property
    def token(self) -> str:
        """Return the secret token (store it to keep the same ``hook_url`` after a restart)."""
        return self._started(self._token)

    def _started(self, value: str) -> str:
        if not value:
            raise RuntimeError("the token comes from the coordinator: await receiver.start()")
        return value

    async def handle(
        self, query: Mapping[str, object], body: bytes | AsyncIterable[bytes]
    ) -> tuple[int, str]:
        """Handle one callback; return ``(HTTP status, text)`` for the framework to send.

        ``body`` is the whole body, or an async iterable of its chunks (Starlette's
        ``request.stream()``), read here up to ``max_body + 1`` bytes. 403 for a bad or
        missing token, 413 for a body over ``max_body``, 400 for a body that is not a job
        status, 404 for a job no worker recorded (in one process: one it is not watching),
        200 when the job will be fetched now (or, with ``trust_body``, was settled) or its
        end is already known. Replays cost nothing: a job has at most one confirming fetch
        asked for at a time, and none once it settled.
        """
        if not isinstance(body, (bytes, bytearray, memoryview)):
            body = await _read_capped(body, self.max_body)
        if len(body) > self.max_body:
            return self._reject(413, "body too large")
        if not self._token:
            await self.start()
        given = query.get(TOKEN_PARAM, "")
        try:
            # A token that is not text (a repeated parameter parsed as a list), or text
            # that is not encodable (a lone surrogate), is simply not the token.
            given_bytes = given.encode() if isinstance(given, str) else b""
        except UnicodeEncodeError:
            given_bytes = b""
        if not hmac.compare_digest(given_bytes, self._token_bytes):
            return self._reject(403, "forbidden")
        try:
            # _bigjson: the client's own parser, which refuses NaN and deep nesting.
            status = structure(loads(bytes(body)), JobStatus)
        except (ValueError, UnicodeDecodeError, RecursionError, APIResponseValidationError):
            return self._reject(400, "not a job status")
        watcher = self._watcher
        job = watcher.get(status.job_id)
        if job is None:
            self._asked.pop(status.job_id, None)
            if self._client is not None:
                return await self._elsewhere(self._client, status)
            return self._reject(404, "unknown job")
        self.accepted += 1
        if self.trust_body and status.terminal:
            watcher.deliver(status.job_id, status)
            self._asked.pop(status.job_id, None)
            return 200, "ok"
        if self._confirming(status.job_id, job.status):
            watcher.poke(status.job_id)
        return 200, "ok"

    async def _elsewhere(self, client: AsyncTTAPI, status: JobStatus) -> tuple[int, str]:
        """Handle a callback for a job this process does not watch: maybe another worker's."""
        coordination = client._coordination
        coordinator = await coordination.ready()
        job_id = status.job_id
        # The record and the confirming claim in one round trip where the coordinator can.
        claim_callback = getattr(coordinator, "claim_callback", None)
        if claim_callback is not None and not (self.trust_body and status.terminal):
            record, claimed = await claim_callback(job_id)
        else:
            record, claimed = await coordinator.get_record(job_id), None
        if record is None:
            return self._reject(404, "unknown job")
        self.accepted += 1
        if record.settled:
            return 200, "ok"  # its end is known (and its owner told): nothing to confirm
        if self.trust_body and status.terminal:
            await coordinator.settle(job_id, status=status.status, answer=answer_of(status))
            return 200, "ok"
        if claimed is None:
            claimed = await coordinator.claim_confirm(job_id)
        if claimed:
            coordination.spawn(confirm(client, record), f"confirm job {job_id}")
        return 200, "ok"

    def _confirming(self, job_id: str, seen: object) -> bool:
        """Tell whether a callback for ``job_id`` should ask for a fetch (single flight).

        Every fetch gives the job a new status object. While the job still holds the one
        it had when a fetch was asked for, that fetch has not answered: ask for no other.
        Once it has answered (the job is still pending, or it would be gone), replays ask
        for nothing more until the watcher's own schedule has fetched the job again, so
        callbacks at most double the fetches of a job, whatever their number.
        """
        asked = self._asked
        previous = asked.get(job_id)
        if previous is not None:
            if previous[0] is seen:
                return False
            if not previous[1]:
                asked[job_id] = (seen, True)  # the confirming fetch's answer
                return False
        if len(asked) > 2 * len(self._watcher) + 1024:
            watcher = self._watcher
            self._asked = asked = {k: v for k, v in asked.items() if watcher.get(k) is not None}
        asked[job_id] = (seen, False)
        return True

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
            code, text = await self.handle(request.query, request.content.iter_any())
        return web.Response(status=code, text=text)

    def add_routes(self, app: web.Application, path: str | None = None) -> None:
        """Route ``POST path`` (default: the path of ``public_url``) to this receiver."""
        app.router.add_post(path or self.path, self.aiohttp_handler)


async def _read_capped(chunks: AsyncIterable[bytes], cap: int) -> bytes:
    """Read a body that may arrive in pieces, stopping once it is over ``cap`` bytes."""
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > cap:
            break
    return bytes(body)

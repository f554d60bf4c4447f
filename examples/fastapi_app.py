"""A FastAPI backend on TTAPI that runs as many worker processes (``uvicorn --workers 4``).

``POST /images {"prompt": "..."}`` submits a GPT-4o job with a callback, awaits it and
answers its image URL. ``POST /ttapi-hook`` is where TTAPI calls back. Each worker builds
its own client at startup; with ``TTAPI_COORDINATOR`` set they share, through Redis, who
owns which job and how it ended, the account's jobs-in-progress limit and one webhook
token: a callback that reaches any worker resolves the request waiting on the worker
that submitted the job (README, "Many workers").

Try it against the emulator (and a local Redis)::

    ttapi fake-server --port 8001 --job-duration 5 &
    export TTAPI_API_KEY=tt-fake-key TTAPI_BASE_URL=http://127.0.0.1:8001
    export TTAPI_COORDINATOR=redis://127.0.0.1:6379/0
    export TTAPI_HOOK_URL=http://127.0.0.1:8000/ttapi-hook
    uvicorn examples.fastapi_app:app --port 8000 --workers 4
    curl -s localhost:8000/images -H 'content-type: application/json' -d '{"prompt": "a fox"}'

Environment: ``TTAPI_API_KEY`` and ``TTAPI_BASE_URL`` (read by the client),
``TTAPI_COORDINATOR`` (a Redis URL; unset, each worker keeps to itself),
``TTAPI_COORDINATOR_NAMESPACE`` (workers sharing one namespace share everything; default
``default``), ``TTAPI_HOOK_URL`` (the public URL of ``/ttapi-hook``: your load balancer's,
which may hand the callback to any worker), ``TTAPI_SAFETY_POLL`` (seconds before a job
whose callback is coming is polled anyway; unset, the watcher's own schedule).

Every answer names the worker that served it (``X-TTAPI-Worker``), and every callback is
logged with the worker that took it, so you can watch callbacks cross workers.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from ttapi_async import AsyncTTAPI, JobFailedError, PollSchedule, TTAPIError
from ttapi_async.webhooks import WebhookReceiver

log = logging.getLogger("ttapi_example")
if not log.handlers:  # uvicorn configures its own loggers only
    _handler = logging.StreamHandler(sys.stdout)
    _handler.setFormatter(logging.Formatter("ttapi-example: %(message)s"))
    log.addHandler(_handler)
    log.setLevel(logging.INFO)


class ImageRequest(BaseModel):
    prompt: str


class ImageAnswer(BaseModel):
    job_id: str
    image_url: str
    worker: int


def _coordinator() -> Any:
    url = os.environ.get("TTAPI_COORDINATOR")
    if not url:
        return None  # one worker, or workers that share nothing: in-process coordination
    from ttapi_async.coordination import RedisCoordinator  # pip install 'ttapi_async[redis]'

    namespace = os.environ.get("TTAPI_COORDINATOR_NAMESPACE", "default")
    return RedisCoordinator(url, namespace=namespace)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # Per worker process: uvicorn imports this module and runs the lifespan in each one.
    async with AsyncTTAPI(coordinator=_coordinator()) as client:
        safety = os.environ.get("TTAPI_SAFETY_POLL")
        if safety:
            # Callbacks do the work; a poll only covers a callback that never comes.
            client.watcher.configure(schedule=PollSchedule(first_delay=float(safety)))
        app.state.client = client
        receiver = WebhookReceiver(client, public_url=os.environ["TTAPI_HOOK_URL"])
        await receiver.start()  # with a RedisCoordinator: the token every worker shares
        app.state.receiver = receiver
        log.info("worker %d ready", os.getpid())
        yield


app = FastAPI(title="ttapi_async on many workers", lifespan=lifespan)


@app.post("/images")
async def create_image(body: ImageRequest, request: Request, response: Response) -> ImageAnswer:
    """Submit one job with a callback, wait for it, answer its image URL."""
    client: AsyncTTAPI = request.app.state.client
    try:
        job = await client.gpt4o.submit(prompt=body.prompt, hook=True)
        result = await job
    except JobFailedError as exc:
        raise HTTPException(502, f"job {exc.job_id} failed") from None
    except TTAPIError as exc:
        raise HTTPException(503, type(exc).__name__) from None
    response.headers["X-TTAPI-Worker"] = str(os.getpid())
    return ImageAnswer(job_id=job.id, image_url=result.image_url, worker=os.getpid())


@app.post("/ttapi-hook")
async def ttapi_hook(request: Request) -> PlainTextResponse:
    """Take TTAPI's callback for any worker's job (the receiver checks the token)."""
    receiver: WebhookReceiver = request.app.state.receiver
    seen = bytearray()

    async def body() -> AsyncIterator[bytes]:
        async for chunk in request.stream():
            seen.extend(chunk)  # kept only to name the job in the log line
            yield chunk

    status, text = await receiver.handle(request.query_params, body())
    log.info("callback job=%s worker=%d status=%d", _job_id(seen), os.getpid(), status)
    return PlainTextResponse(text, status_code=status)


def _job_id(body: bytes | bytearray) -> str:
    try:
        return str(json.loads(body).get("jobId", "?"))
    except (ValueError, AttributeError):
        return "?"

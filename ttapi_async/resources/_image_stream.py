"""``ImageStream``: the events of a streamed generation or edit, read as an async iterator."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .._errors import APIConnectionError, APIResponseValidationError, APIStatusError
from .._headers import HasHeaders
from .._models import ImageStreamEvent, excerpt, structure
from .._reading import sse_events
from .._sse import ServerSentEvent
from .._translation import Translating
from .._types import RequestOptions

if TYPE_CHECKING:
    from .._client import AsyncTTAPI, FormFactory

__all__ = ["ImageStream"]


class ImageStream(HasHeaders):
    """An async iterator of ``ImageStreamEvent`` that is also an async context manager.

    ``headers`` and ``request_id`` are the answer's once the first event has been read
    (empty / None before). The stream's ``usage`` is counted in ``client.spent`` once, at
    its first completed event (with ``n`` > 1 every completed event carries the request's).
    """

    def __init__(
        self,
        client: AsyncTTAPI,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        form: FormFactory | None = None,
        options: RequestOptions | None = None,
        prepare: Callable[[], tuple[Mapping[str, Any] | None, FormFactory | None]] | None = None,
        model: str | None = None,
    ) -> None:
        # prepare: builds (json_body, form) from files; run on a worker thread when the stream
        # starts, since reading a file may stall (a network file system) and must not do so
        # on the event loop.
        self._prepare = prepare
        self._client = client
        self._path = path
        self._json_body = json_body
        self._form = form
        self._options = options
        self._stack = contextlib.AsyncExitStack()
        self._events: AsyncIterator[ImageStreamEvent] | None = None
        self._finished = False
        self._model = model
        self._headers: Mapping[str, str] | None = None

    async def __aenter__(self) -> ImageStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __aiter__(self) -> ImageStream:
        return self

    async def __anext__(self) -> ImageStreamEvent:
        if self._finished:
            raise StopAsyncIteration
        try:
            if self._prepare is not None:
                prepare, self._prepare = self._prepare, None
                self._json_body, self._form = await asyncio.to_thread(prepare)
            if self._events is None:
                resp = await self._stack.enter_async_context(
                    self._client._stream(
                        self._path,
                        json_body=self._json_body,
                        form=self._form,
                        options=self._options,
                    )
                )
                self._headers = resp.headers
                idle = self._client._idle_timeout(self._options)
                self._events = self._parse(
                    sse_events(resp, idle=idle, method="POST", path=self._path)
                )
            # Reading happens here, outside _stream's frame: translate aiohttp's errors too.
            with Translating("POST", self._path, self._client.base_url):
                return await self._events.__anext__()
        except BaseException:
            await self.aclose()
            raise

    async def aclose(self) -> None:
        """Stop reading and release the connection."""
        self._finished = True
        events, self._events = self._events, None
        if events is not None and hasattr(events, "aclose"):
            await events.aclose()
        await self._stack.aclose()

    async def _parse(
        self, events: AsyncIterator[ServerSentEvent]
    ) -> AsyncIterator[ImageStreamEvent]:
        redact = self._client._redact
        completed = False
        async for sse in events:
            if sse.data.strip() == "[DONE]":
                return
            try:
                payload = json.loads(sse.data)
            except (ValueError, RecursionError) as exc:  # 100,000 "[" is a RecursionError
                raise APIResponseValidationError(
                    "stream event is not valid JSON", excerpt=excerpt(sse.data, redact=redact)
                ) from exc
            if not isinstance(payload, Mapping):
                raise APIResponseValidationError(
                    "stream event is not a JSON object", excerpt=excerpt(sse.data, redact=redact)
                )
            kind = payload.get("type") or sse.event
            if kind == "error" or payload.get("error") is not None:
                raise _stream_error(payload, redact)
            event = structure({**payload, "type": kind}, ImageStreamEvent, redact=redact)
            if event.completed and not completed:
                self._client.spent.add_usage(self._model, event.usage)
            # Read on after a completed event: with n > 1, each image completes on its own.
            completed = completed or event.completed
            yield event
        if completed:
            return
        # Neither a completed event nor [DONE]: the stream was cut, and the generation it
        # carried may have been billed.
        raise APIConnectionError(
            f"POST {self._path}: the event stream ended before its completed event",
            possibly_submitted=True,
            method="POST",
            url=self._path,
        )


def _stream_error(payload: Mapping[str, Any], redact: Any) -> APIStatusError:
    error = payload.get("error")
    details = error if isinstance(error, Mapping) else payload
    message = str(details.get("message") or "the stream reported an error")
    param = details.get("param")
    return APIStatusError(
        redact(message),
        status_code=200,
        body=redact.value(dict(payload)),
        param=redact(str(param)) if param is not None else None,
        code=redact(str(details.get("code"))) if details.get("code") is not None else None,
    )

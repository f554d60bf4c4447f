"""``client.images``: the OpenAI-compatible ``/v1/images/generations`` and ``/v1/images/edits``."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .._errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    InvalidRequestError,
)
from .._models import ImagesResponse, ImageStreamEvent, bind, excerpt, structure
from .._params import validate_edit, validate_edit_json, validate_generate
from .._reading import sse_events
from .._response import maybe_unwrap
from .._sse import ServerSentEvent
from .._translation import Translating
from .._types import NOT_GIVEN, NotGiven, RequestOptions
from .._uploads import (
    ImageInput,
    build_form,
    is_reference,
    prepare_upload,
    reads_files,
    reference,
)
from ._base import Resource, compact
from ._checks import check_extra_body

if TYPE_CHECKING:
    from .._client import AsyncTTAPI, FormFactory

__all__ = ["ImageStream", "Images"]

GENERATIONS = "/v1/images/generations"
EDITS = "/v1/images/edits"


class Images(Resource):
    """OpenAI-compatible image generation and editing (synchronous on the service's side)."""

    async def generate(
        self,
        *,
        prompt: str,
        model: str | None = None,
        n: int | None = None,
        size: str | None = None,
        quality: str | None = None,
        background: str | None = None,
        moderation: str | None = None,
        output_compression: int | None = None,
        output_format: str | None = None,
        response_format: str | None = None,
        style: str | None = None,
        user: str | None = None,
        stream: bool | None = None,
        partial_images: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
        validate: bool | None = None,
        timeout: float | NotGiven | None = NOT_GIVEN,
        idle_timeout: float | NotGiven | None = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        retry_possibly_submitted: bool | NotGiven = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
    ) -> ImagesResponse:
        """Generate images from a prompt.

        Pass ``model``: left out, the service chooses, and only what no model takes is
        refused here. Parameters are checked against the model's rules first
        (``validate=False`` skips that, to reach a model or value the service added later);
        ``extra_body`` adds fields as they are. ``stream=False`` and ``partial_images`` are
        sent as given (without streaming they change nothing); for ``stream=True`` use
        ``images.stream``.
        """
        if stream is True:
            raise InvalidRequestError(
                "stream=True is not for images.generate, which returns one ImagesResponse; "
                "use images.stream(...) to iterate the events",
                param="stream",
                value=True,
            )
        # compact(...) written out: this is the hot path, and the keyword call plus the
        # comprehension cost three times these tests. Same fields, same order.
        body: dict[str, Any] = {}
        if prompt is not None:
            body["prompt"] = prompt
        if model is not None:
            body["model"] = model
        if n is not None:
            body["n"] = n
        if size is not None:
            body["size"] = size
        if quality is not None:
            body["quality"] = quality
        if background is not None:
            body["background"] = background
        if moderation is not None:
            body["moderation"] = moderation
        if output_compression is not None:
            body["output_compression"] = output_compression
        if output_format is not None:
            body["output_format"] = output_format
        if response_format is not None:
            body["response_format"] = response_format
        if style is not None:
            body["style"] = style
        if user is not None:
            body["user"] = user
        if stream is not None:
            body["stream"] = stream
        if partial_images is not None:
            body["partial_images"] = partial_images
        client = self._client
        if client.validate if validate is None else validate:
            validate_generate(body)
        if extra_body is not None:
            check_extra_body(extra_body)
            body.update(extra_body)
        options = (
            None  # what _options() returns for these, without the call
            if timeout is NOT_GIVEN
            and idle_timeout is NOT_GIVEN
            and max_retries is NOT_GIVEN
            and retry_possibly_submitted is NOT_GIVEN
            and not extra_headers
            else self._options(
                timeout,
                max_retries,
                retry_possibly_submitted,
                extra_headers,
                idle_timeout=idle_timeout,
            )
        )
        # _post_images() written out: one coroutine less per call.
        payload, status, headers = await client._send(
            "POST", GENERATIONS, json_body=body, idempotent=False, options=options
        )
        return _images_response(client, payload, status, headers, body.get("model"))

    def stream(
        self,
        *,
        prompt: str,
        model: str | None = None,
        partial_images: int | None = None,
        n: int | None = None,
        size: str | None = None,
        quality: str | None = None,
        background: str | None = None,
        moderation: str | None = None,
        output_compression: int | None = None,
        output_format: str | None = None,
        user: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        validate: bool | None = None,
        timeout: float | NotGiven | None = NOT_GIVEN,
        idle_timeout: float | NotGiven | None = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
    ) -> ImageStream:
        """Generate with ``stream=true``: iterate partial images, then the completed one.

        Use ``async with client.images.stream(...) as events: async for e in events`` when
        you may stop early; a plain ``async for`` is fine when you read to the end.
        Bad parameters raise here, before anything is sent.
        """
        body = compact(
            prompt=prompt,
            model=model,
            n=n,
            size=size,
            quality=quality,
            background=background,
            moderation=moderation,
            output_compression=output_compression,
            output_format=output_format,
            user=user,
            stream=True,
            partial_images=partial_images,
        )
        if self._validating(validate):
            validate_generate(body)
        if extra_body is not None:
            check_extra_body(extra_body)
            body.update(extra_body)
        options = self._options(
            timeout, max_retries, NOT_GIVEN, extra_headers, idle_timeout=idle_timeout
        )
        return ImageStream(self._client, GENERATIONS, json_body=body, options=options)

    async def edit(
        self,
        *,
        prompt: str,
        image: ImageInput | Sequence[ImageInput],
        mask: ImageInput | None = None,
        model: str | None = None,
        n: int | None = None,
        size: str | None = None,
        quality: str | None = None,
        background: str | None = None,
        moderation: str | None = None,
        input_fidelity: str | None = None,
        output_compression: int | None = None,
        output_format: str | None = None,
        response_format: str | None = None,
        user: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        validate: bool | None = None,
        timeout: float | NotGiven | None = NOT_GIVEN,
        idle_timeout: float | NotGiven | None = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        retry_possibly_submitted: bool | NotGiven = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
    ) -> ImagesResponse:
        """Edit or extend one or more images.

        ``image`` is one input or a list: paths, bytes, binary files or
        ``(filename, bytes[, mime])`` tuples go as multipart, exactly as the OpenAI SDK
        sends them; ``https://`` URLs or ``{"image_url"|"file_id": ...}`` go as the JSON
        form. ``mask`` is a PNG whose transparent pixels mark where to edit. ``moderation``
        belongs to the JSON form (OpenAI's multipart form has no such field).
        """
        fields = compact(
            prompt=prompt,
            model=model,
            n=n,
            size=size,
            quality=quality,
            background=background,
            moderation=moderation,
            input_fidelity=input_fidelity,
            output_compression=output_compression,
            output_format=output_format,
            response_format=response_format,
            user=user,
        )
        options = self._options(
            timeout, max_retries, retry_possibly_submitted, extra_headers, idle_timeout=idle_timeout
        )
        if reads_files([*_as_list(image), mask]):
            # A file's read may stall (a network file system): never on the event loop.
            json_body, form = await asyncio.to_thread(
                self._edit_body, fields, image, mask, validate, extra_body
            )
        else:
            json_body, form = self._edit_body(fields, image, mask, validate, extra_body)
        return await self._post_images(
            EDITS, json_body=json_body, form=form, options=options, model=model
        )

    def stream_edit(
        self,
        *,
        prompt: str,
        image: ImageInput | Sequence[ImageInput],
        mask: ImageInput | None = None,
        model: str | None = None,
        partial_images: int | None = None,
        n: int | None = None,
        size: str | None = None,
        quality: str | None = None,
        background: str | None = None,
        moderation: str | None = None,
        input_fidelity: str | None = None,
        output_compression: int | None = None,
        output_format: str | None = None,
        user: str | None = None,
        extra_body: Mapping[str, Any] | None = None,
        validate: bool | None = None,
        timeout: float | NotGiven | None = NOT_GIVEN,
        idle_timeout: float | NotGiven | None = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
    ) -> ImageStream:
        """Edit with ``stream=true``; events as for ``stream`` (``image_edit.*`` types)."""
        fields = compact(
            prompt=prompt,
            model=model,
            n=n,
            size=size,
            quality=quality,
            background=background,
            moderation=moderation,
            input_fidelity=input_fidelity,
            output_compression=output_compression,
            output_format=output_format,
            user=user,
            stream=True,
            partial_images=partial_images,
        )
        options = self._options(
            timeout, max_retries, NOT_GIVEN, extra_headers, idle_timeout=idle_timeout
        )
        json_body, form = self._edit_body(fields, image, mask, validate, extra_body)
        return ImageStream(self._client, EDITS, json_body=json_body, form=form, options=options)

    # --- helpers -----------------------------------------------------------------------------

    def _edit_body(
        self,
        fields: dict[str, Any],
        image: ImageInput | Sequence[ImageInput],
        mask: ImageInput | None,
        validate: bool | None,
        extra_body: Mapping[str, Any] | None,
    ) -> tuple[dict[str, Any] | None, FormFactory | None]:
        """Return the JSON body (URL references) or a multipart factory (files)."""
        images = _as_list(image)
        listed = _is_sequence_input(image)
        if not images:
            raise InvalidRequestError("image: at least one image is required", param="image")
        checking = self._validating(validate)
        if all(is_reference(i) for i in images) and (mask is None or is_reference(mask)):
            body = {**fields, "images": [reference(i, param="image") for i in images]}
            if mask is not None:
                body["mask"] = reference(mask, param="mask")
            if checking:
                validate_edit_json(body)
            if extra_body is not None:
                check_extra_body(extra_body)
                body.update(extra_body)
            return body, None
        if any(is_reference(i) for i in images) or is_reference(mask):
            raise InvalidRequestError(
                "image: cannot mix files and URLs in one edit; send all files or all URLs",
                param="image",
            )
        uploads = [prepare_upload(i, param="image") for i in images]
        mask_upload = prepare_upload(mask, param="mask") if mask is not None else None
        if checking:
            validate_edit(
                fields, [u.info for u in uploads], mask_upload.info if mask_upload else None
            )
        if extra_body is not None:
            check_extra_body(extra_body)
            fields.update(extra_body)
        # A factory, not a FormData: aiohttp consumes a form when it sends it, so every retry
        # must build its own.
        return None, lambda: build_form(fields, uploads, mask_upload, as_list=listed)

    async def _post_images(
        self,
        path: str,
        *,
        json_body: Mapping[str, Any] | None,
        form: FormFactory | None = None,
        options: RequestOptions | None,
        model: str | None = None,
    ) -> ImagesResponse:
        client = self._client
        payload, status, headers = await client._send(
            "POST", path, json_body=json_body, form=form, idempotent=False, options=options
        )
        return _images_response(client, payload, status, headers, model)


def _images_response(
    client: AsyncTTAPI,
    payload: Any,
    status: int,
    headers: Mapping[str, str],
    model: object,
) -> ImagesResponse:
    """Build the ImagesResponse of an answer (unwrapped if TTAPI wrapped it), bound to client.

    It keeps the answer's headers, and its usage goes into ``client.spent`` under ``model``.
    """
    redact = client._redact
    payload = maybe_unwrap(payload, status_code=status, headers=headers, redact=redact)
    response = structure(payload, ImagesResponse, status_code=status, redact=redact)
    object.__setattr__(response, "_headers", headers)
    client.spent.add_usage(model if isinstance(model, str) else None, response.usage)
    return bind(response, client)


def _is_sequence_input(image: object) -> bool:
    # str and bytes are sequences too, but each is one image; so is a (name, bytes) tuple.
    return isinstance(image, (list, tuple)) and not _is_file_tuple(image)


def _as_list(image: ImageInput | Sequence[ImageInput]) -> list[Any]:
    if _is_sequence_input(image):
        return list(image)  # type: ignore[arg-type]
    return [image]


def _is_file_tuple(value: Sequence[Any]) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) in (2, 3)
        and isinstance(value[0], str)
        and isinstance(value[1], (bytes, bytearray))
    )


class ImageStream:
    """An async iterator of ``ImageStreamEvent`` that is also an async context manager."""

    def __init__(
        self,
        client: AsyncTTAPI,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        form: FormFactory | None = None,
        options: RequestOptions | None = None,
    ) -> None:
        self._client = client
        self._path = path
        self._json_body = json_body
        self._form = form
        self._options = options
        self._stack = contextlib.AsyncExitStack()
        self._events: AsyncIterator[ImageStreamEvent] | None = None
        self._finished = False

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
            if self._events is None:
                resp = await self._stack.enter_async_context(
                    self._client._stream(
                        self._path,
                        json_body=self._json_body,
                        form=self._form,
                        options=self._options,
                    )
                )
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

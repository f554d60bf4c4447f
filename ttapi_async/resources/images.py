"""``client.images``: the OpenAI-compatible ``/v1/images/generations`` and ``/v1/images/edits``."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .._errors import (
    InvalidRequestError,
)
from .._models import ImagesResponse, bind, structure
from .._params import validate_edit, validate_edit_json, validate_generate
from .._response import maybe_unwrap
from .._types import NOT_GIVEN, NotGiven, RequestOptions
from .._uploads import (
    ImageInput,
    build_form,
    is_reference,
    prepare_upload,
    reads_files,
    reference,
)
from .._wire import set_images_headers
from ._base import Resource, compact
from ._checks import check_extra_body
from ._image_stream import ImageStream

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
        return ImageStream(
            self._client, GENERATIONS, json_body=body, options=options, model=_model_of(model)
        )

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
        if reads_files([*_as_list(image), mask]):
            # Files are read (and checked) on a worker thread when the stream starts: a bad
            # file raises at the first event, still before anything is sent.
            return ImageStream(
                self._client,
                EDITS,
                options=options,
                model=_model_of(model),
                prepare=functools.partial(
                    self._edit_body, fields, image, mask, validate, extra_body
                ),
            )
        json_body, form = self._edit_body(fields, image, mask, validate, extra_body)
        return ImageStream(
            self._client,
            EDITS,
            json_body=json_body,
            form=form,
            options=options,
            model=_model_of(model),
        )

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
    if payload.__class__ is not dict or "created" not in payload:  # an answer as OpenAI's is
        payload = maybe_unwrap(payload, status_code=status, headers=headers, redact=redact)
    response = structure(payload, ImagesResponse, status_code=status, redact=redact)
    set_images_headers(response, headers)
    client.spent.add_usage(_model_of(model), response.usage)
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


def _model_of(model: object) -> str | None:
    """Return the model a request names (None: not given, the service's default)."""
    return model if isinstance(model, str) else None

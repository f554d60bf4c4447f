"""Wire objects (attrs) and the one cattrs converter that maps them to and from JSON."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, Protocol, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

from ._errors import APIResponseValidationError
from ._files import decode_b64_to_bytes, decode_b64_to_file
from ._headers import HasHeaders
from ._redact import REDACTOR

__all__ = [
    "ImageData",
    "ImageStreamEvent",
    "ImagesResponse",
    "InputTokensDetails",
    "JobData",
    "JobResult",
    "JobStatus",
    "OutputTokensDetails",
    "Redact",
    "Usage",
    "converter",
    "excerpt",
    "structure",
]

T = TypeVar("T")

#: Statuses after which a job never changes again.
TERMINAL_STATUSES = frozenset({"SUCCESS", "FAILED"})
#: Statuses the contract names as "still running"; any other non-terminal one is treated alike.
PENDING_STATUSES = frozenset({"PENDING_QUEUE", "ON_QUEUE"})

FINISH_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
#: How long TTAPI's image URLs live (the contract: "URLs live 60 minutes").
URL_LIFETIME = dt.timedelta(minutes=60)


class Downloader(Protocol):
    """What a result needs from the client to fetch its image URL."""

    async def _download(self, url: str, *, expires_at: dt.datetime | None = None) -> bytes: ...

    async def _download_to(
        self, url: str, path: Path, *, expires_at: dt.datetime | None = None
    ) -> Path: ...


@attrs.frozen
class InputTokensDetails:
    image_tokens: int = 0
    text_tokens: int = 0


@attrs.frozen
class OutputTokensDetails:
    image_tokens: int = 0
    text_tokens: int = 0


@attrs.frozen
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    input_tokens_details: InputTokensDetails | None = None
    output_tokens_details: OutputTokensDetails | None = None


class _Savable:
    """Mixin: ``read()`` / ``save()`` for something that holds base64 or a URL."""

    # Bound after parsing: responses come out of the converter, then learn which session may
    # download their URLs. Not a constructor argument, so cattrs never sees it.
    _downloader: Downloader | None

    def _source(self) -> tuple[str | None, str | None]:
        raise NotImplementedError

    @property
    def url_expires_at(self) -> dt.datetime | None:
        """Return when the image URL stops working (UTC), where the answer tells; else None.

        TTAPI's URLs live 60 minutes from when the image is made.
        """
        return None

    async def read(self) -> bytes:
        """Return the image bytes: decode base64, or download the URL (they expire)."""
        b64, url = self._source()
        if b64 is not None:
            return decode_b64_to_bytes(b64)
        url = self._require_url(url)
        expires = self.url_expires_at
        return await self._require_downloader()._download(url, expires_at=expires)

    async def save(self, path: str | Path) -> Path:
        """Write the image to ``path`` (atomically: a temporary file renamed into place)."""
        b64, url = self._source()
        target = Path(path)
        if b64 is not None:
            return decode_b64_to_file(b64, target)
        url = self._require_url(url)
        expires = self.url_expires_at
        return await self._require_downloader()._download_to(url, target, expires_at=expires)

    def _require_url(self, url: str | None) -> str:
        if not url:
            raise APIResponseValidationError("this result carries neither b64_json nor a URL")
        return url

    def _require_downloader(self) -> Downloader:
        if self._downloader is None:
            raise RuntimeError(
                "this result was not produced by a client, so it cannot download its URL"
            )
        return self._downloader


@attrs.frozen
class ImageData(_Savable):
    """One generated image: ``b64_json`` (GPT Image models) or ``url`` (DALL-E, expires)."""

    url: str | None = None
    b64_json: str | None = attrs.field(default=None, repr=lambda v: _short_repr(v))
    revised_prompt: str | None = None
    _downloader: Downloader | None = attrs.field(default=None, init=False, eq=False, repr=False)
    # The answer's ``created``, set by bind(): the URL's clock starts there.
    _created: int | None = attrs.field(default=None, init=False, eq=False, repr=False)

    def _source(self) -> tuple[str | None, str | None]:
        return self.b64_json, self.url

    @property
    def url_expires_at(self) -> dt.datetime | None:
        """Return when ``url`` stops working (UTC): 60 minutes after the answer was made."""
        if self.url is None or self._created is None:
            return None
        try:
            made = dt.datetime.fromtimestamp(self._created, tz=dt.timezone.utc)
        except (OverflowError, OSError, ValueError):  # a ``created`` out of any real range
            return None
        return made + URL_LIFETIME


@attrs.frozen
class ImagesResponse(HasHeaders):
    """Answer of ``/v1/images/generations`` and ``/v1/images/edits``.

    ``headers`` and ``request_id`` are the HTTP answer's (see ``HasHeaders``).
    """

    created: int
    data: tuple[ImageData, ...] = ()
    usage: Usage | None = None
    background: str | None = None
    output_format: str | None = None
    quality: str | None = None
    size: str | None = None
    _headers: Mapping[str, str] | None = attrs.field(default=None, init=False, eq=False, repr=False)


@attrs.frozen
class ImageStreamEvent:
    """One server-sent event of a streamed generation or edit."""

    type: str
    b64_json: str | None = attrs.field(default=None, repr=lambda v: _short_repr(v))
    partial_image_index: int | None = None
    created_at: int | None = None
    size: str | None = None
    quality: str | None = None
    background: str | None = None
    output_format: str | None = None
    usage: Usage | None = None

    @property
    def completed(self) -> bool:
        """Return True for the final event (``*.completed``)."""
        return self.type.endswith(".completed")


@attrs.frozen
class JobData:
    """The ``data`` object of a job fetch answer (camelCase on the wire)."""

    prompt: str | None = None
    refer_images: tuple[str, ...] = ()
    image_url: str | None = None
    quota: int = 0
    finish_time: dt.datetime | None = None
    hook_url: str | None = None


@attrs.frozen
class JobStatus(HasHeaders):
    """One fetch of an asynchronous job; also the body TTAPI posts to a ``hookUrl``.

    ``headers`` and ``request_id`` are the fetch's (empty / None for a webhook's body).
    """

    job_id: str
    status: str
    message: str | None = None
    data: JobData | None = None
    _headers: Mapping[str, str] | None = attrs.field(default=None, init=False, eq=False, repr=False)

    @property
    def terminal(self) -> bool:
        """Return True when the job will not change again (SUCCESS or FAILED)."""
        return self.status in TERMINAL_STATUSES

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCESS"

    @property
    def failed(self) -> bool:
        return self.status == "FAILED"


@attrs.frozen
class JobResult(_Savable, HasHeaders):
    """A job that ended SUCCESS: its image URL (expires after 60 minutes) and what it cost.

    ``headers`` and ``request_id`` are those of the fetch that saw it succeed.
    """

    job_id: str
    image_url: str
    quota: int = 0
    finish_time: dt.datetime | None = None
    prompt: str | None = None
    refer_images: tuple[str, ...] = ()
    status: JobStatus | None = attrs.field(default=None, eq=False, repr=False)
    _downloader: Downloader | None = attrs.field(default=None, init=False, eq=False, repr=False)
    _headers: Mapping[str, str] | None = attrs.field(default=None, init=False, eq=False, repr=False)

    def _source(self) -> tuple[str | None, str | None]:
        return None, self.image_url

    @property
    def url_expires_at(self) -> dt.datetime | None:
        """Return when ``image_url`` stops working (UTC), 60 minutes after ``finish_time``.

        None when the finish time is unknown or has no time zone (the vendor's
        ``YYYY-MM-DD HH:MM:SS`` does not say which zone it is in).
        """
        if self.finish_time is None or self.finish_time.tzinfo is None:
            return None
        return self.finish_time + URL_LIFETIME

    @classmethod
    def from_status(cls, status: JobStatus) -> JobResult:
        """Build the result of a SUCCESS fetch; raise if it names no image."""
        data = status.data or JobData()
        if not data.image_url:
            raise APIResponseValidationError(
                f"job {status.job_id} is SUCCESS but its answer has no data.imageUrl"
            )
        result = cls(
            job_id=status.job_id,
            image_url=data.image_url,
            quota=data.quota,
            finish_time=data.finish_time,
            prompt=data.prompt,
            refer_images=data.refer_images,
            status=status,
        )
        object.__setattr__(result, "_headers", status._headers)
        return result


def bind(obj: T, downloader: Downloader) -> T:
    """Attach the session that can download ``obj``'s URLs (and its images')."""
    if isinstance(obj, ImagesResponse):
        for item in obj.data:
            object.__setattr__(item, "_downloader", downloader)
            object.__setattr__(item, "_created", obj.created)
    elif isinstance(obj, _Savable):
        object.__setattr__(obj, "_downloader", downloader)
    return obj


def _short_repr(value: str | None) -> str:
    # base64 bodies run to megabytes: a repr must stay readable in logs and tracebacks.
    if value is None:
        return "None"
    if len(value) <= 32:
        return repr(value)
    return f"<{len(value)} chars of base64>"


# --- the converter -----------------------------------------------------------------------------


def _structure_quota(value: Any, _: Any) -> int:
    # The vendor sends quota as a string holding an integer; tolerate a number, null or "".
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise ValueError(f"quota must be an integer, got {value!r}")
    if isinstance(value, float):
        return int(value)
    return int(str(value).strip())


def _structure_finish_time(value: Any, _: Any) -> dt.datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return dt.datetime.fromtimestamp(value, tz=dt.timezone.utc)
    text = str(value)
    try:
        return dt.datetime.strptime(text, FINISH_TIME_FORMAT)
    except ValueError:
        return dt.datetime.fromisoformat(text)


def _structure_str_tuple(value: Any, _: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def _structure_optional_str(value: Any, _: Any) -> str | None:
    if value is None or value.__class__ is str:
        return value
    if isinstance(value, (dict, list)):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return str(value)


def _structure_int(value: Any, _: Any) -> int:
    if value.__class__ is int:
        return value
    if isinstance(value, bool):  # bool is an int to Python, never to JSON's numbers
        raise TypeError("expected an integer, got a boolean")
    if isinstance(value, float) and not math.isfinite(value):  # 1e400 parses as inf
        raise ValueError(f"expected an integer, got {value!r}")
    return int(value)


def _structure_optional_int(value: Any, _: Any) -> int | None:
    return None if value is None else _structure_int(value, int)


def _is_optional_attrs(t: Any) -> bool:
    args: tuple[Any, ...] = getattr(t, "__args__", ())
    return len(args) == 2 and args[1] is type(None) and attrs.has(args[0])


def _optional_attrs_hook(conv: cattrs.Converter, t: Any) -> Callable[[Any, Any], Any]:
    inner = t.__args__[0]
    hook = conv.get_structure_hook(inner)

    def structure_optional(value: Any, _: Any) -> Any:
        if value is None:
            return None
        if value.__class__ is not dict and not isinstance(value, Mapping):
            raise TypeError(f"expected an object for {inner.__name__}, got {type(value).__name__}")
        return hook(value, inner)

    return structure_optional


def _is_homogeneous_tuple(t: Any) -> bool:
    args: tuple[Any, ...] = getattr(t, "__args__", ())
    return getattr(t, "__origin__", None) is tuple and len(args) == 2 and args[1] is Ellipsis


def _tuple_hook(conv: cattrs.Converter, t: Any) -> Callable[[Any, Any], Any]:
    inner = t.__args__[0]
    hook = conv.get_structure_hook(inner)
    objects = attrs.has(inner)

    def structure_tuple(value: Any, _: Any) -> tuple[Any, ...]:
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"expected an array, got {type(value).__name__}")
        if objects:
            for item in value:
                if item.__class__ is not dict and not isinstance(item, Mapping):
                    raise TypeError(f"expected objects in the array, got {type(item).__name__}")
        return tuple([hook(item, inner) for item in value])

    return structure_tuple


def with_job_id(value: Any) -> Any:
    """Return ``value`` with ``jobId`` set: the vendor's newer documents spell it ``job_id``."""
    if isinstance(value, Mapping) and "jobId" not in value and "job_id" in value:
        return {**value, "jobId": value["job_id"]}
    return value


def _make_converter() -> cattrs.Converter:
    # detailed_validation off: it makes structuring several times slower and the excerpt in
    # APIResponseValidationError already shows what was wrong.
    conv = cattrs.Converter(detailed_validation=False, forbid_extra_keys=False)
    # Hooks for the shapes every model uses, registered before any class's function is
    # generated (generation binds them). They refuse what JSON would never give for an
    # object, an array or a number: cattrs' defaults iterate a string into a tuple of empty
    # objects, take {"url": ...} for a tuple, and read true as 1.
    conv.register_structure_hook_func(lambda t: t == (str | None), _structure_optional_str)
    conv.register_structure_hook_func(lambda t: t == (int | None), _structure_optional_int)
    conv.register_structure_hook(int, _structure_int)
    conv.register_structure_hook_factory(_is_optional_attrs, partial(_optional_attrs_hook, conv))
    conv.register_structure_hook_factory(_is_homogeneous_tuple, partial(_tuple_hook, conv))
    conv.register_structure_hook(
        JobData,
        make_dict_structure_fn(
            JobData,
            conv,
            refer_images=override(rename="referImages", struct_hook=_structure_str_tuple),
            image_url=override(rename="imageUrl"),
            quota=override(struct_hook=_structure_quota),
            finish_time=override(rename="finishTime", struct_hook=_structure_finish_time),
            hook_url=override(rename="hookUrl"),
        ),
    )
    job_status_fn = make_dict_structure_fn(JobStatus, conv, job_id=override(rename="jobId"))

    def structure_job_status(value: Any, cls: Any) -> JobStatus:
        return job_status_fn(with_job_id(value), cls)

    conv.register_structure_hook(JobStatus, structure_job_status)
    return conv


converter = _make_converter()


class Redact(Protocol):
    """Replace a secret in a text (``_redact.Redactor`` is the one in use)."""

    def __call__(self, text: str) -> str: ...


def excerpt(body: object, limit: int = 200, redact: Redact | None = None) -> str:
    """Return the start of a body, short enough for an error message, every key removed.

    Keys are replaced before the text is cut, and a key's start left at the cut goes
    too (``_redact.Redactor.cut``). ``redact`` is kept for callers that pass one; the
    process-wide redactor, which knows every client's key, is always applied.
    """
    if isinstance(body, (bytes, bytearray, memoryview)):
        room = 4 * limit + REDACTOR.margin
        text = bytes(body[: room * 4]).decode("utf-8", "replace")
    else:
        text = str(body)
    if redact is not None and redact is not REDACTOR:
        text = redact(text)
    return REDACTOR.cut(text, limit)


def structure(
    payload: object,
    cls: type[T],
    *,
    status_code: int | None = None,
    redact: Redact | None = None,
) -> T:
    """Build ``cls`` from decoded JSON; a shape that does not fit is a typed error.

    Pass the client's ``redact`` so that an answer echoing the API key cannot put it
    into the error's message.
    """
    # dict first: decoded JSON always is one, and the ABC check costs more than the test.
    if payload.__class__ is not dict and not isinstance(payload, Mapping):
        raise APIResponseValidationError(
            f"expected a JSON object for {cls.__name__}, got {type(payload).__name__}",
            status_code=status_code,
            excerpt=excerpt(payload, redact=redact),
        )
    try:
        return converter.structure(payload, cls)
    # OverflowError: a number too large for what it converts to (a timestamp, say).
    except (
        cattrs.BaseValidationError,
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
        OverflowError,
    ) as exc:
        reason = excerpt(exc, 120, redact=redact)
        raise APIResponseValidationError(
            f"answer does not fit {cls.__name__}: {type(exc).__name__}: {reason}",
            status_code=status_code,
            excerpt=excerpt(payload, redact=redact),
        ) from None  # the cause's text may quote the body (and an echoed key) unredacted

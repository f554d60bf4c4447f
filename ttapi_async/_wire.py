"""Wire objects: the attrs classes an answer becomes, and how a result reads or saves its image."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol, TypeVar

import attrs

from ._errors import APIResponseValidationError
from ._files import decode_b64_to_bytes, decode_b64_to_file
from ._headers import HasHeaders

__all__ = [
    "FINISH_TIME_FORMAT",
    "PENDING_STATUSES",
    "TERMINAL_STATUSES",
    "URL_LIFETIME",
    "Downloader",
    "ImageData",
    "ImageStreamEvent",
    "ImagesResponse",
    "InputTokensDetails",
    "JobData",
    "JobResult",
    "JobStatus",
    "OutputTokensDetails",
    "Usage",
    "bind",
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

    # No instance dict under the slotted wire classes: less memory, and faster to build.
    __slots__ = ()
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

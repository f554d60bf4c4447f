"""The one cattrs converter that maps JSON to the wire objects (``_wire``), and ``structure()``."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Protocol, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override

from ._errors import APIResponseValidationError
from ._redact import REDACTOR
from ._wire import (
    FINISH_TIME_FORMAT,
    PENDING_STATUSES,
    TERMINAL_STATUSES,
    URL_LIFETIME,
    Downloader,
    ImageData,
    ImagesResponse,
    ImageStreamEvent,
    InputTokensDetails,
    JobData,
    JobResult,
    JobStatus,
    OutputTokensDetails,
    Usage,
    bind,
)

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
    "Redact",
    "Usage",
    "bind",
    "converter",
    "excerpt",
    "structure",
    "with_job_id",
]

T = TypeVar("T")


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

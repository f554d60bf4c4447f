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

from ._builders import Builder, FieldSpec, compile_builder
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


# The wire names and hooks that differ from the field's own (camelCase, the vendor's loose
# shapes); the first key present wins (``jobId``, else ``job_id``).
_SPECS: dict[type, dict[str, FieldSpec]] = {
    JobData: {
        "refer_images": FieldSpec(("referImages",), _structure_str_tuple),
        "image_url": FieldSpec(("imageUrl",)),
        "quota": FieldSpec(("quota",), _structure_quota),
        "finish_time": FieldSpec(("finishTime",), _structure_finish_time),
        "hook_url": FieldSpec(("hookUrl",)),
    },
    JobStatus: {"job_id": FieldSpec(("jobId", "job_id"))},
}
# The classes answers become, nested ones before those holding them.
_COMPILED: tuple[type, ...] = (
    InputTokensDetails,
    OutputTokensDetails,
    Usage,
    ImageData,
    ImagesResponse,
    ImageStreamEvent,
    JobData,
    JobStatus,
)


def _unchanged_if(hook: Any, t: Any) -> str | None:
    """Return when ``hook`` would give its value back as it is (see ``compile_builder``)."""
    if hook is _structure_int:
        return "v.__class__ is int"
    if hook is _structure_optional_str:
        return "v is None or v.__class__ is str"
    if hook is _structure_optional_int:
        return "v is None or v.__class__ is int"
    if hook is cattrs.BaseConverter._structure_call and t is str:  # str(v) is v for a str
        return "v.__class__ is str"
    return None


def _make_converter(*, compiled: bool = True) -> cattrs.Converter:
    """Return the converter; ``compiled=False``: cattrs' own functions (the reference)."""
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
    if not compiled:
        _register_cattrs_functions(conv)
        return conv
    for cls in _COMPILED:
        build = compile_builder(
            cls,
            conv.get_structure_hook,
            fast=_unchanged_if,
            builders=BUILDERS,
            specs=_SPECS.get(cls),
        )
        BUILDERS[cls] = build
        conv.register_structure_hook(cls, _as_hook(build))
    return conv


def _as_hook(build: Builder) -> Callable[[Any, Any], Any]:
    def structure_compiled(value: Any, _: Any) -> Any:
        return build(value)

    return structure_compiled


def _register_cattrs_functions(conv: cattrs.Converter) -> None:
    for cls, specs in _SPECS.items():
        overrides = {
            name: override(rename=spec.keys[0], struct_hook=spec.hook)
            for name, spec in specs.items()
        }
        fn: Callable[[Any, Any], Any] = make_dict_structure_fn(
            cls,
            conv,
            **overrides,  # type: ignore[arg-type]
        )
        if cls is JobStatus:
            fn = partial(_with_job_id_first, fn)
        conv.register_structure_hook(cls, fn)


def _with_job_id_first(fn: Callable[[Any, Any], Any], value: Any, cls: Any) -> Any:
    return fn(with_job_id(value), cls)


#: The compiled function of each class in ``_COMPILED`` (``structure()`` calls it directly).
BUILDERS: dict[type, Builder] = {}
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
        build = BUILDERS.get(cls)
        if build is not None:
            return build(payload)  # type: ignore[no-any-return]
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

"""Check every per-call option before anything is sent: a bad one must cost nothing.

A wrong type found after a paid POST (``deadline="10"`` used to raise ``TypeError`` once the
job was submitted, losing its id) is money spent on an error. Each check raises
``InvalidRequestError`` naming the option.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, Final

from .._errors import InvalidRequestError
from .._types import NotGiven

__all__ = [
    "check_deadline",
    "check_extra_body",
    "check_extra_headers",
    "check_idle_timeout",
    "check_lease_timeout",
    "check_max_retries",
    "check_retry_possibly_submitted",
    "check_timeout",
]

# RFC 9110 token characters for a header name; a value may not hold CR, LF or NUL.
_HEADER_NAME: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE: Final = re.compile(r"[\r\n\x00]")


def _positive_seconds(value: object, name: str, *, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequestError(
            f"{name}: must be a number of seconds ({what}), got {type(value).__name__}",
            param=name,
            value=value,
        )
    seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise InvalidRequestError(
            f"{name}: must be a finite number of seconds above 0 ({what}), got {value!r}",
            param=name,
            value=value,
        )
    return seconds


def check_timeout(value: float | NotGiven | None) -> None:
    """Accept NOT_GIVEN, None ("no limit") or seconds > 0; 0 is an error, not "no limit"."""
    if value is None or isinstance(value, NotGiven):
        return
    _positive_seconds(value, "timeout", what="None for no limit")


def check_idle_timeout(value: float | NotGiven | None) -> None:
    """Accept NOT_GIVEN, None ("no idle limit") or seconds > 0, as ``timeout``."""
    if value is None or isinstance(value, NotGiven):
        return
    _positive_seconds(value, "idle_timeout", what="None for no idle limit")


def check_deadline(value: float | None) -> None:
    """Accept None (the watcher's deadline) or seconds > 0."""
    if value is not None:
        _positive_seconds(value, "deadline", what="None for the watcher's")


def check_lease_timeout(value: float | NotGiven | None) -> None:
    """Accept NOT_GIVEN, None (wait as long as it takes) or seconds >= 0 (0: only a free one)."""
    if value is None or isinstance(value, NotGiven):
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidRequestError(
            f"lease_timeout: must be a number of seconds (None to wait as long as it takes), "
            f"got {type(value).__name__}",
            param="lease_timeout",
            value=value,
        )
    if not math.isfinite(value) or value < 0:
        raise InvalidRequestError(
            f"lease_timeout: must be a finite number of seconds >= 0, got {value!r}",
            param="lease_timeout",
            value=value,
        )


def check_max_retries(value: int | NotGiven) -> None:
    """Accept NOT_GIVEN or an int >= 0."""
    if isinstance(value, NotGiven):
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidRequestError(
            f"max_retries: must be an int >= 0, got {type(value).__name__}",
            param="max_retries",
            value=value,
        )
    if value < 0:
        raise InvalidRequestError(
            f"max_retries: must be >= 0, got {value}", param="max_retries", value=value
        )


def check_retry_possibly_submitted(value: bool | NotGiven) -> None:
    """Accept NOT_GIVEN or a bool (a truthy string would silently allow paying twice)."""
    if not isinstance(value, (bool, NotGiven)):
        raise InvalidRequestError(
            f"retry_possibly_submitted: must be True or False, got {type(value).__name__}",
            param="retry_possibly_submitted",
            value=value,
        )


def check_extra_headers(value: Mapping[str, str] | None) -> None:
    """Accept None or a mapping of header names to str values (no CR/LF: no injection)."""
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise InvalidRequestError(
            f"extra_headers: must be a mapping of names to values, got {type(value).__name__}",
            param="extra_headers",
        )
    for name, header in value.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise InvalidRequestError(
                f"extra_headers: {name!r} is not a valid header name", param="extra_headers"
            )
        if not isinstance(header, str) or _BAD_VALUE.search(header):
            # The value is not quoted: it may be a secret.
            raise InvalidRequestError(
                f"extra_headers: the value of {name!r} must be a str without CR, LF or NUL",
                param="extra_headers",
            )


def check_extra_body(value: Mapping[str, Any] | None) -> None:
    """Accept None or a JSON object with str keys; NaN and Infinity are not JSON."""
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise InvalidRequestError(
            f"extra_body: must be a mapping, got {type(value).__name__}", param="extra_body"
        )
    for key in value:
        if not isinstance(key, str):
            raise InvalidRequestError(
                f"extra_body: keys must be str, got {type(key).__name__}", param="extra_body"
            )
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise InvalidRequestError(
            f"extra_body: not valid JSON ({type(exc).__name__}: {exc})", param="extra_body"
        ) from None

"""Turn an HTTP answer into JSON or into the right typed error, for both error shapes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import _bigjson
from ._errors import (
    APIResponseValidationError,
    APIStatusError,
    AuthenticationError,
    BadRequestError,
    InsufficientQuotaError,
    PermissionDeniedError,
    status_error_class,
)
from ._models import excerpt
from ._redact import Redactor

__all__ = [
    "Redactor",
    "decode_json",
    "envelope_failure",
    "maybe_unwrap",
    "payload_error",
    "status_error",
    "unwrap_envelope",
]


def decode_json(body: bytes, *, status_code: int, redact: Redactor) -> Any:
    """Parse a body as JSON; anything else (empty, truncated, HTML) is a typed error."""
    # isspace(), not strip(): strip() would copy a multi-megabyte body just to test it.
    if not body or body.isspace():
        raise APIResponseValidationError("empty response body", status_code=status_code)
    try:
        return _bigjson.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise APIResponseValidationError(
            f"response body is not valid JSON ({type(exc).__name__})",
            status_code=status_code,
            excerpt=excerpt(body, redact=redact),
        ) from exc


# Words in a FAILED envelope's message that point at a more specific error than 400.
_MESSAGE_HINTS: tuple[tuple[tuple[str, ...], type[APIStatusError]], ...] = (
    (("tt-api-key", "api key", "not activated", "unauthorized"), AuthenticationError),
    (("quota", "balance", "insufficient", "credit"), InsufficientQuotaError),
    (("blocked", "banned account", "forbidden"), PermissionDeniedError),
)


def _class_for_message(message: str) -> type[APIStatusError]:
    lowered = message.lower()
    for words, cls in _MESSAGE_HINTS:
        if any(w in lowered for w in words):
            return cls
    return BadRequestError


def envelope_failure(
    payload: Mapping[str, Any], *, status_code: int, headers: Mapping[str, str], redact: Redactor
) -> APIStatusError:
    """Build the error for a TTAPI envelope that says ``"status": "FAILED"``."""
    message = redact(str(payload.get("message") or "request failed"))
    cls = status_error_class(status_code) if status_code >= 400 else _class_for_message(message)
    return cls(message, status_code=status_code, body=redact.value(payload), headers=headers)


def status_error(
    status_code: int, headers: Mapping[str, str], body: bytes, *, redact: Redactor
) -> APIStatusError:
    """Build the error for a 4xx/5xx answer in OpenAI's shape, TTAPI's envelope, or neither."""
    try:
        payload: Any = _bigjson.loads(body) if body and not body.isspace() else None
    except (ValueError, UnicodeDecodeError):  # too deep a nesting is a ValueError there too
        payload = None
    if isinstance(payload, Mapping):
        return payload_error(status_code, headers, payload, redact=redact)
    text = excerpt(body, redact=redact) if body else ""
    message = f"HTTP {status_code}" + (f": {text}" if text else "")
    return status_error_class(status_code)(
        message, status_code=status_code, body=text or None, headers=headers
    )


def payload_error(
    status_code: int, headers: Mapping[str, str], payload: Mapping[str, Any], *, redact: Redactor
) -> APIStatusError:
    """Build the error for a decoded error body, in OpenAI's shape or TTAPI's envelope."""
    cls = status_error_class(status_code)
    error = payload.get("error")
    if isinstance(error, Mapping):
        message = str(error.get("message") or f"HTTP {status_code}")
        code = error.get("code")
        param = error.get("param")
        return cls(
            redact(message),
            status_code=status_code,
            body=redact.value(payload),
            headers=headers,
            param=redact(str(param)) if param is not None else None,
            code=redact(str(code)) if code is not None else None,
        )
    found = payload.get("message") or payload.get("detail") or error
    return cls(
        redact(str(found or f"HTTP {status_code}")),
        status_code=status_code,
        body=redact.value(payload),
        headers=headers,
    )


def unwrap_envelope(
    payload: Any, *, status_code: int, headers: Mapping[str, str], redact: Redactor
) -> Any:
    """Return the ``data`` of a SUCCESS envelope; raise on FAILED or on a body of no known shape."""
    if not isinstance(payload, Mapping) or "status" not in payload:
        raise APIResponseValidationError(
            "expected TTAPI's envelope ({status, message, data})",
            status_code=status_code,
            excerpt=excerpt(payload, redact=redact),
        )
    if payload["status"] != "SUCCESS":
        raise envelope_failure(payload, status_code=status_code, headers=headers, redact=redact)
    return payload.get("data")


def maybe_unwrap(
    payload: Any, *, status_code: int, headers: Mapping[str, str], redact: Redactor
) -> Any:
    """Return an OpenAI-shaped body as is, or unwrap it if TTAPI wrapped it in its envelope.

    The contract lets any endpoint answer in either shape, so ``/v1`` answers are checked too.
    """
    if (payload.__class__ is dict or isinstance(payload, Mapping)) and "created" not in payload:
        if "status" in payload:
            return unwrap_envelope(payload, status_code=status_code, headers=headers, redact=redact)
        if isinstance(payload.get("error"), Mapping):
            # OpenAI's error shape under a 2xx: still an error, never "no images".
            raise payload_error(status_code, headers, payload, redact=redact)
    return payload

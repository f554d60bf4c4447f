"""The redaction choke point on the shapes test_redact leaves out: bytes, tuples, hostile
nesting, grouped errors, unprintable values, and log records with tracebacks."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from _support import API_KEY

from ttapi_async._redact import MASK, REDACTOR, RedactingFilter, Redactor, register, scrub_exception


@pytest.fixture(autouse=True)
def _registered() -> None:
    register(API_KEY)


def test_bytes_and_tuples_inside_a_value_are_redacted() -> None:
    """value() takes the key out of bytes and of plain tuples it holds."""
    r = Redactor([API_KEY])
    clean = r.value({"raw": bytearray(API_KEY.encode()), "pair": (API_KEY, 1)})
    assert clean == {"raw": MASK.encode(), "pair": (MASK, 1)}


def test_hostile_nesting_becomes_a_redacted_repr() -> None:
    """A value nested past 32 levels comes back as its redacted repr, not a RecursionError."""
    nested: Any = [API_KEY]
    for _ in range(40):
        nested = [nested]
    clean = Redactor([API_KEY]).value(nested)
    assert API_KEY not in repr(clean) and MASK in repr(clean)


class _Grouped(Exception):
    """An error carrying others in ``exceptions``, as an ExceptionGroup does."""

    def __init__(self, exceptions: list[BaseException]) -> None:
        super().__init__("group")
        self.exceptions = exceptions


def test_errors_inside_a_group_are_scrubbed() -> None:
    """scrub_exception reaches the errors an exception group holds."""
    inner = ValueError(f"key={API_KEY}")
    scrub_exception(_Grouped([inner]))
    assert API_KEY not in str(inner)


def test_byte_attributes_of_an_error_are_scrubbed() -> None:
    """A bytes attribute of an error (a response body) loses the key."""
    exc = RuntimeError("boom")
    exc.body = API_KEY.encode()  # type: ignore[attr-defined]
    scrub_exception(exc)
    assert exc.body == MASK.encode()  # type: ignore[attr-defined]


class _Unprintable:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_an_attribute_without_a_repr_is_left_alone() -> None:
    """An attribute whose repr raises is kept as it is, and scrubbing does not raise."""
    exc = RuntimeError("boom")
    odd = _Unprintable()
    exc.thing = odd  # type: ignore[attr-defined]
    scrub_exception(exc)
    assert exc.thing is odd  # type: ignore[attr-defined]


def _record(msg: str, args: Any = None, **kw: Any) -> logging.LogRecord:
    return logging.LogRecord("ttapi_async", logging.ERROR, __file__, 1, msg, args, None, **kw)


def test_a_broken_format_string_is_let_through() -> None:
    """A record whose message cannot be formatted passes unchanged, for logging to report."""
    assert REDACTOR.active
    record = _record("%d items", ("not a number",))
    assert RedactingFilter().filter(record) and record.args == ("not a number",)


def test_traceback_text_and_stack_info_are_redacted() -> None:
    """A record's formatted traceback and stack info lose the key."""
    record = _record("failed", sinfo=f"Stack: {API_KEY}")
    record.exc_text = f"Traceback: {API_KEY}"
    RedactingFilter().filter(record)
    assert API_KEY not in record.exc_text and API_KEY not in (record.stack_info or "")

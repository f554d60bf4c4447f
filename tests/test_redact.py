"""The redaction choke point: its rules, and everything that goes through it (issue 8, item 4)."""

from __future__ import annotations

import logging
import re
import traceback
from pathlib import Path
from typing import Any

import attrs
import pytest
from _support import API_KEY

import ttapi_async
from ttapi_async import AsyncTTAPI, JobFailedError, JobTimeoutError
from ttapi_async._errors import APIConnectionError, APIStatusError
from ttapi_async._models import JobStatus, excerpt
from ttapi_async._redact import MASK, RedactingFilter, Redactor, redact, register, scrub_exception


def windows(secret: str, size: int = 8) -> list[str]:
    """Return every run of ``size`` characters of ``secret``: each one is a leak."""
    return [secret[i : i + size] for i in range(len(secret) - size + 1)]


def assert_clean(text: str, secret: str = API_KEY) -> None:
    for piece in windows(secret):
        assert piece not in text, f"{piece!r} leaked in {text!r}"


@pytest.fixture(autouse=True)
def _registered() -> None:
    register(API_KEY)


def test_long_key_is_replaced_everywhere() -> None:
    """A key of 8 characters or more goes even inside a longer word."""
    r = Redactor([API_KEY])
    assert r(f"x{API_KEY}y and {API_KEY}") == f"x{MASK}y and {MASK}"


@pytest.mark.parametrize(
    ("body", "held"),
    [
        (b'{"message": "all fine"}', False),
        (b'{"message": "key tt-LONG-SECRET-1"}', True),
        (b'{"tt-LONG-SECRET-1": 1}', True),
        (b'{"message": "\\u0074t-LONG-SECRET-1"}', True),  # an escape could spell it
        (b'{"message": "x-y"}', True),  # the short key's bytes, even inside a word
    ],
)
def test_may_hold_is_false_only_where_no_secret_can_decode(body: bytes, held: bool) -> None:
    """may_hold() says False only for a JSON text with no secret's bytes and no escape."""
    r = Redactor(["tt-LONG-SECRET-1", "x-y"])
    assert r.may_hold(body) is held


def test_may_hold_is_false_without_secrets() -> None:
    """A redactor that knows no secret never asks for a walk."""
    assert Redactor().may_hold(b'{"a": "\\u0041"}') is False


def test_short_key_spares_ordinary_words() -> None:
    """A one-letter key leaves "blocked" whole, and goes where it stands alone."""
    r = Redactor(["k"])
    assert r("account blocked") == "account blocked"
    assert r("key k rejected; key=k.") == f"key {MASK} rejected; key={MASK}."


def test_short_key_inside_a_dashed_word_is_left() -> None:
    """A short key is a whole token only: dashes and word characters join a word."""
    r = Redactor(["ab12"])
    assert r("x-ab12 ab12_y ab12") == f"x-ab12 ab12_y {MASK}"


def test_cut_redacts_before_cutting() -> None:
    """A key straddling the cut is replaced whole, leaving none of its first characters."""
    r = Redactor([API_KEY])
    text = "x" * 190 + API_KEY + "y" * 50
    cut = r.cut(text, 200)
    assert_clean(cut)
    assert cut.startswith("x" * 190 + MASK)


def test_cut_mid_key_leaves_no_partial_key() -> None:
    """Where the cut itself falls inside a key's first characters, they are replaced."""
    r = Redactor([API_KEY])
    text = "x" * 196 + API_KEY[:6]  # e.g. a body already cut by the server, then by us
    assert r.cut(text + " tail" * 10, 202) == "x" * 196 + MASK + "..."


def test_excerpt_after_an_earlier_key_leaves_no_partial_key() -> None:
    """Two keys: the first one's shorter mask cannot pull half of the second inside the cut."""
    body = (API_KEY + "z" * 180 + API_KEY + "w" * 100).encode()
    assert_clean(excerpt(body))


def test_excerpt_of_a_text_cut_mid_key_by_the_server() -> None:
    """A body that itself ends in the first 13 characters of the key shows none of them."""
    assert excerpt("echo " + API_KEY[:13]) == "echo " + MASK


def test_excerpt_needs_no_redactor_argument() -> None:
    """``excerpt`` with no redactor still applies every registered key (the job-fetch case)."""
    payload = {"unexpected": "x" * 180 + API_KEY}
    text = excerpt(payload)
    assert_clean(text)


def test_value_cleans_attrs_instances() -> None:
    """A JobStatus whose message echoes the key comes back as a clean copy."""
    status = JobStatus(job_id="job-1", status="FAILED", message=f"bad key {API_KEY}")
    clean = redact_value(status)
    assert isinstance(clean, JobStatus) and clean.message == f"bad key {MASK}"


def redact_value(obj: Any) -> Any:
    from ttapi_async._redact import REDACTOR

    return REDACTOR.value(obj)


def test_job_failed_error_is_clean_in_str_repr_and_status() -> None:
    """A FAILED job whose message echoes the key gives a JobFailedError without it."""
    status = JobStatus(job_id="job-1", status="FAILED", message=f"key {API_KEY} refused")
    exc = JobFailedError(status.message or "", job_id="job-1", status=status)
    assert_clean(str(exc) + repr(exc) + repr(exc.status))
    timeout = JobTimeoutError(f"late {API_KEY}", job_id="job-1", status=status)
    assert_clean(str(timeout) + repr(timeout) + repr(timeout.status))


def test_status_error_headers_are_redacted() -> None:
    """A response header echoing the key is kept in ``exc.headers`` without it."""
    exc = APIStatusError(
        "HTTP 400",
        status_code=400,
        headers={"X-Echo": f"key={API_KEY}", f"X-{API_KEY}": "1", "Retry-After": "2"},
    )
    assert_clean(repr(dict(exc.headers)))
    assert exc.headers["retry-after"] == "2"


def test_error_built_while_handling_scrubs_the_chain() -> None:
    """``raise TTAPIError(...) from exc`` leaves no key in any link's str, repr or args."""

    class Quoting(Exception):
        def __init__(self, line: str) -> None:
            super().__init__(line)
            self.line = line

    try:
        try:
            raise KeyError(f"inner {API_KEY}")
        except KeyError:
            raise Quoting(f"bad line {API_KEY}") from None
    except Quoting as exc:
        error = APIConnectionError(f"malformed ({exc})")
        error.__cause__ = exc
    links = [error, error.__cause__, error.__cause__.__context__]
    text = "".join(traceback.format_exception(error))
    text += "".join(repr(e) + str(e) + repr(vars(e)) for e in links if e is not None)
    assert_clean(text)


def test_scrub_replaces_an_attribute_whose_repr_leaks() -> None:
    """An attribute of any type whose repr shows the key is replaced by a clean stand-in."""

    @attrs.define
    class Holder:
        secret: str

    class Odd:
        def __repr__(self) -> str:
            return f"Odd({API_KEY})"

    exc = RuntimeError("x")
    exc.__notes__ = [f"note {API_KEY}"]
    exc.holder = Holder(API_KEY)  # type: ignore[attr-defined]
    exc.odd = Odd()  # type: ignore[attr-defined]
    scrub_exception(exc)
    assert_clean(repr(vars(exc)) + "".join(traceback.format_exception(exc)))
    assert exc.__notes__ == [f"note {MASK}"]


def test_logging_filter_cleans_messages_args_and_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every ttapi_async record loses the key: message, %-args and exception text."""
    logger = logging.getLogger("ttapi_async")
    with caplog.at_level(logging.DEBUG, logger="ttapi_async"):
        logger.info("sent %s with %r", API_KEY, {"k": API_KEY})
        try:
            raise ValueError(f"echo {API_KEY}")
        except ValueError:
            logger.exception("failed")
    assert_clean(caplog.text)
    assert any(isinstance(f, RedactingFilter) for f in logger.filters)


def test_every_package_logger_has_the_filter() -> None:
    """Each logger the package's source names (children too) carries the redacting filter."""
    root = Path(ttapi_async.__file__).parent
    names = set()
    for source in root.rglob("*.py"):
        names |= set(re.findall(r"getLogger\(\"([\w.]+)\"\)", source.read_text()))
    assert "ttapi_async" in names
    for name in names:
        logger = logging.getLogger(name)
        assert any(isinstance(f, RedactingFilter) for f in logger.filters), name


def test_child_logger_records_are_clean(caplog: pytest.LogCaptureFixture) -> None:
    """A record logged through a child logger (coordination, testing) loses the key too."""
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("ttapi_async.coordination").warning("lost %s", API_KEY)
    assert_clean(caplog.text)


def test_redact_is_the_in_package_api() -> None:
    """``_redact.redact`` (for the journal, manifest and CLI) knows every client's key."""
    other = "tt-other-client-key-42"
    AsyncTTAPI(api_key=other, base_url="http://127.0.0.1:9")
    assert redact(f"{other} and {API_KEY}") == f"{MASK} and {MASK}"


def test_redactor_repr_shows_no_key() -> None:
    """The redactor itself never shows what it holds."""
    assert repr(Redactor([API_KEY])) == "Redactor(***)"

"""The wire objects and the one cattrs converter."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import pytest

from ttapi_async import (
    APIResponseValidationError,
    ImageData,
    ImagesResponse,
    ImageStreamEvent,
    JobResult,
    JobStatus,
    Usage,
)
from ttapi_async._models import excerpt, structure


def test_images_response_structures_every_documented_field() -> None:
    """A full generation answer fills every field, nested ones included."""
    r = structure(
        {
            "created": 5,
            "data": [{"b64_json": "QUJD", "revised_prompt": "p"}, {"url": "u"}],
            "usage": {
                "input_tokens": 1,
                "output_tokens": 2,
                "total_tokens": 3,
                "input_tokens_details": {"image_tokens": 4, "text_tokens": 5},
            },
            "background": "opaque",
            "output_format": "png",
            "quality": "high",
            "size": "1024x1024",
        },
        ImagesResponse,
    )
    assert r.created == 5 and len(r.data) == 2
    assert r.data[0].b64_json == "QUJD" and r.data[1].url == "u"
    assert r.usage is not None and r.usage.input_tokens_details is not None
    assert r.usage.input_tokens_details.image_tokens == 4
    assert (r.background, r.output_format, r.quality, r.size) == (
        "opaque",
        "png",
        "high",
        "1024x1024",
    )


def test_images_response_defaults_when_optional_fields_are_absent() -> None:
    """Only ``created`` is required; ``data`` defaults to () and ``usage`` to None."""
    r = structure({"created": 1}, ImagesResponse)
    assert r.data == () and r.usage is None


def test_unknown_fields_are_ignored() -> None:
    """Fields the models do not know are dropped, at every level."""
    r = structure(
        {"created": 1, "new": 1, "data": [{"url": "u", "new": 2}], "usage": {"new": 3}},
        ImagesResponse,
    )
    assert r.data[0].url == "u" and r.usage == Usage()


def test_null_optional_fields_are_none() -> None:
    """JSON nulls in optional fields become None."""
    r = structure(
        {"created": 1, "data": [{"url": None, "b64_json": "x"}], "usage": None}, ImagesResponse
    )
    assert r.data[0].url is None and r.usage is None


@pytest.mark.parametrize(
    "payload",
    [
        [],
        "text",
        None,
        {"data": []},
        {"created": None},
        {"created": "soon"},
        {"created": 1, "data": {"url": "u"}},
        {"created": 1, "data": ["u"]},
        {"created": 1, "usage": []},
        {"created": 1, "usage": {"input_tokens": "many"}},
        {"created": 1, "usage": {"input_tokens": True}},
        {"created": 1, "data": [{"url": ["u"]}]},
    ],
)
def test_shapes_that_do_not_fit_raise_validation_error(payload: Any) -> None:
    """A payload that does not fit ImagesResponse raises APIResponseValidationError."""
    with pytest.raises(APIResponseValidationError):
        structure(payload, ImagesResponse)


def test_models_are_frozen() -> None:
    """Wire objects cannot be changed after parsing."""
    item = ImageData(url="u")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        item.url = "v"  # type: ignore[misc]


def test_long_base64_is_shortened_in_repr() -> None:
    """A multi-megabyte b64_json shows as its length in reprs, not its content."""
    shown = repr(ImageData(b64_json="A" * 10_000))
    assert "10000 chars of base64" in shown and "AAAAAAAAAA" not in shown


def test_short_base64_is_shown_in_repr() -> None:
    """A short b64_json stays visible in its repr."""
    assert "'QUJD'" in repr(ImageData(b64_json="QUJD"))


def test_stream_event_completed_flag() -> None:
    """``completed`` is True only for ``*.completed`` events."""
    assert ImageStreamEvent(type="image_edit.completed").completed
    assert not ImageStreamEvent(type="image_edit.partial_image").completed


FETCH = {
    "status": "SUCCESS",
    "message": "success",
    "jobId": "5ecc5080",
    "data": {
        "prompt": "a cat",
        "referImages": ["https://a"],
        "imageUrl": "https://cdnc.ttapi.io/x.png",
        "quota": "2",
        "finishTime": "2025-03-31 04:25:33",
        "hookUrl": "https://hook",
    },
}


def test_job_status_maps_camel_case() -> None:
    """A fetch answer's camelCase fields land in snake_case attributes."""
    s = structure(FETCH, JobStatus)
    assert s.job_id == "5ecc5080" and s.succeeded and s.terminal
    assert s.data is not None
    assert s.data.image_url == "https://cdnc.ttapi.io/x.png"
    assert s.data.refer_images == ("https://a",)
    assert s.data.quota == 2
    assert s.data.finish_time == dt.datetime(2025, 3, 31, 4, 25, 33)
    assert s.data.hook_url == "https://hook"


def test_job_status_accepts_snake_case_job_id() -> None:
    """The newer spelling ``job_id`` is accepted as well as ``jobId``."""
    payload = {k: v for k, v in FETCH.items() if k != "jobId"} | {"job_id": "j2"}
    assert structure(payload, JobStatus).job_id == "j2"


@pytest.mark.parametrize(("quota", "expected"), [("2", 2), (3, 3), (None, 0), ("", 0), (" 4 ", 4)])
def test_quota_string_becomes_int(quota: Any, expected: int) -> None:
    """``quota`` as a string, a number, null or "" becomes an int."""
    payload = FETCH | {"data": {**FETCH["data"], "quota": quota}}  # type: ignore[dict-item]
    s = structure(payload, JobStatus)
    assert s.data is not None and s.data.quota == expected


def test_pending_status_is_not_terminal() -> None:
    """ON_QUEUE (and any unknown status) is not terminal and not a success."""
    s = structure({"status": "ON_QUEUE", "jobId": "j", "data": None, "message": None}, JobStatus)
    assert not s.terminal and not s.succeeded and not s.failed


def test_job_result_from_success_status() -> None:
    """A SUCCESS fetch becomes a JobResult with its URL, cost and finish time."""
    result = JobResult.from_status(structure(FETCH, JobStatus))
    assert result.image_url == "https://cdnc.ttapi.io/x.png" and result.quota == 2


def test_job_result_without_image_url_raises() -> None:
    """A SUCCESS fetch naming no image raises APIResponseValidationError."""
    payload = FETCH | {"data": {**FETCH["data"], "imageUrl": None}}  # type: ignore[dict-item]
    with pytest.raises(APIResponseValidationError, match="imageUrl"):
        JobResult.from_status(structure(payload, JobStatus))


def test_excerpt_cuts_long_bodies() -> None:
    """``excerpt`` keeps the first 200 characters and marks the cut."""
    text = excerpt(b"x" * 1000)
    assert text == "x" * 200 + "..."


def test_excerpt_redacts_before_cutting() -> None:
    """A secret straddling the cut is removed whole, not left half visible."""
    secret = "SECRET-KEY-0123456789"

    class Redact:
        margin = len(secret)

        def __call__(self, text: str) -> str:
            return text.replace(secret, "***")

    body = ("x" * 190 + secret + "y" * 100).encode()
    text = excerpt(body, redact=Redact())
    assert "SECRET" not in text and text.startswith("x" * 190 + "***")

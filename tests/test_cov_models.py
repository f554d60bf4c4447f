"""Reading job statuses: the loose shapes the vendor may send in a job's ``data``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from ttapi_async import APIResponseValidationError, JobStatus
from ttapi_async._models import structure


def status_with(**data: Any) -> JobStatus:
    payload = {"jobId": "j", "status": "SUCCESS", "message": "ok", "data": data}
    return structure(payload, JobStatus, status_code=200)


def test_a_float_quota_is_read_as_an_integer() -> None:
    """A quota sent as 2.0 reads as 2."""
    assert status_with(quota=2.0).data.quota == 2  # type: ignore[union-attr]


def test_a_boolean_quota_is_refused() -> None:
    """A quota sent as true is a validation error, not 1."""
    with pytest.raises(APIResponseValidationError):
        status_with(quota=True)


def test_an_iso_finish_time_is_read() -> None:
    """A finishTime in ISO 8601 (not the vendor's usual format) is still read."""
    data = status_with(finishTime="2025-04-28T08:15:38+00:00").data
    assert data is not None
    assert data.finish_time == dt.datetime(2025, 4, 28, 8, 15, 38, tzinfo=dt.timezone.utc)


def test_refer_images_as_null_or_one_string() -> None:
    """referImages sent as null reads as no images; as one string, as that one image."""
    assert status_with(referImages=None).data.refer_images == ()  # type: ignore[union-attr]
    one = status_with(referImages="https://example.com/a.png").data
    assert one is not None and one.refer_images == ("https://example.com/a.png",)


def test_a_numeric_prompt_reads_as_text() -> None:
    """A prompt sent as a number reads as its text."""
    assert status_with(prompt=42).data.prompt == "42"  # type: ignore[union-attr]

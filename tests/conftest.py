"""Shared test setup: no test ever sleeps for a real backoff."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ttapi_async import _retry


@pytest.fixture(autouse=True)
def _no_backoff() -> Iterator[None]:
    """Switch backoff sleeps off for every test, and back on after it."""
    _retry.set_testing(True)
    yield
    _retry.set_testing(False)

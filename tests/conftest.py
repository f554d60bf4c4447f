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


_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "WS_PROXY", "WSS_PROXY")


@pytest.fixture(autouse=True)
def _no_proxy_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset proxy variables: clients honour them, and tests talk to loopback servers only."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)

"""The pytest plugin's fake_ttapi fixture and its marker."""

from __future__ import annotations

import pytest

from ttapi_async.testing import FakeTTAPI, ManualClock


async def test_fixture_yields_started_fake(fake_ttapi: FakeTTAPI) -> None:
    """Without settings the fixture serves the defaults on a loopback port."""
    assert fake_ttapi.url.startswith("http://127.0.0.1:")
    assert fake_ttapi.api_key == "tt-fake-key"


@pytest.mark.fake_ttapi(api_key="marked", seed=5)
async def test_marker_sets_options(fake_ttapi: FakeTTAPI) -> None:
    """The fake_ttapi marker's keyword arguments configure the fake."""
    assert (fake_ttapi.api_key, fake_ttapi.seed) == ("marked", 5)


@pytest.mark.fake_ttapi(api_key="marked", seed=5)
@pytest.mark.parametrize("fake_ttapi", [{"seed": 9}], indirect=True)
async def test_indirect_param_wins_over_marker(fake_ttapi: FakeTTAPI) -> None:
    """An indirect parameter overrides the marker, which still supplies the rest."""
    assert (fake_ttapi.api_key, fake_ttapi.seed) == ("marked", 9)


@pytest.mark.fake_ttapi(clock=ManualClock(100.0))
async def test_marker_clock_is_reachable(fake_ttapi: FakeTTAPI) -> None:
    """A ManualClock given to the marker is the fake's clock, so a test can advance it."""
    assert isinstance(fake_ttapi.clock, ManualClock)
    assert fake_ttapi.clock() == 100.0


# The client is written concurrently; a deprecation inside it is not the fake's concern.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
async def test_client_is_wired_to_the_fake(fake_ttapi: FakeTTAPI) -> None:
    """fake.client() returns an AsyncTTAPI pointed at the fake's URL."""
    client = fake_ttapi.client()
    try:
        assert type(client).__name__ == "AsyncTTAPI"
        assert client.base_url == fake_ttapi.url
    finally:
        await client.aclose()

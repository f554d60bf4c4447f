"""The blocking TTAPI client's own surface: repr, base_url, and refusing reuse once closed."""

from __future__ import annotations

import pytest
from _support import closed_port

from ttapi_async import TTAPI


def test_repr_names_the_url_and_whether_closed_and_a_closed_client_is_not_reused() -> None:
    """repr shows base_url and closed; entering a closed client raises RuntimeError."""
    url = f"http://127.0.0.1:{closed_port()}"
    client = TTAPI(api_key="tt-key-for-repr-0123456789", base_url=url)
    assert client.base_url == url
    assert repr(client) == f"TTAPI(base_url={url!r}, closed=False)"
    client.close()
    client.close()  # closing twice is a no-op
    assert repr(client).endswith("closed=True)")
    with pytest.raises(RuntimeError, match="closed"):
        client.__enter__()

"""The Redis client is imported only by the Redis coordinator, never by ``import ttapi_async``."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("module", ["ttapi_async", "ttapi_async.coordination"])
def test_import_does_not_import_redis(module: str) -> None:
    """Importing the package (or its coordination package) leaves ``redis`` out of sys.modules."""
    code = (
        f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'redis'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_coordination_surface_is_sorted_and_complete() -> None:
    """``ttapi_async.coordination.__all__`` is sorted and every name in it resolves."""
    import ttapi_async.coordination as coordination

    names = coordination.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), not n[:1].isupper(), n))
    pytest.importorskip("redis")
    for name in names:
        assert getattr(coordination, name) is not None

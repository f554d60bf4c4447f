"""The shared batch's names: public, sorted, and no Redis client imported for them."""

from __future__ import annotations

import subprocess
import sys


def test_importing_the_batch_package_does_not_import_redis() -> None:
    """``import ttapi_async.batch`` (and its shared errors) leaves redis out of sys.modules."""
    code = (
        "import sys, ttapi_async.batch as b; b.RedisDurabilityError; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'redis'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_shared_runner_is_reached_through_the_package() -> None:
    """``ttapi_async.batch.SharedBatchRunner`` resolves; an unknown name still raises."""
    import pytest

    import ttapi_async.batch as batch
    from ttapi_async.batch._shared_runner import SharedBatchRunner

    assert batch.SharedBatchRunner is SharedBatchRunner
    assert "SharedBatchRunner" in batch.__all__
    with pytest.raises(AttributeError):
        batch.NoSuchName  # noqa: B018

"""A fixture for tests that check, with ``gc.collect()``, that they leave nothing behind."""

from __future__ import annotations

import gc
import sys
import warnings
from collections.abc import Iterator

import pytest


@pytest.fixture
def others_garbage_collected() -> Iterator[None]:
    """Collect what earlier tests left to the garbage collector before this test runs.

    Such a test makes its own ``gc.collect()`` to see that *it* leaves no socket or file
    open; an earlier test's leftovers found by that collection are not its failure, and
    failed it at random (a redis connection of a coordination test, a child process).
    """
    hook = sys.unraisablehook
    sys.unraisablehook = lambda _: None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ResourceWarning)
            gc.collect()
    finally:
        sys.unraisablehook = hook
    yield

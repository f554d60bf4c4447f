"""The ``ttapi`` console script (the ``cli`` extra: click and rich).

Importing this module needs neither; ``main()`` says how to install them when they are
missing, and exits 1.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

__all__ = ["main"]

INSTALL_HINT = (
    "the ttapi command needs the 'cli' extra (click and rich): pip install 'ttapi_async[cli]'"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``ttapi`` command line; return (and exit with) its status."""
    try:
        import click  # noqa: F401
        import rich  # noqa: F401
    except ImportError as exc:
        print(f"error: {INSTALL_HINT} ({exc.name} is missing)", file=sys.stderr)
        raise SystemExit(1) from None
    from ._app import run

    code = run(list(argv) if argv is not None else None)
    raise SystemExit(code)

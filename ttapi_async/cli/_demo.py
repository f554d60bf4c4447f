"""``ttapi batch --demo``: the built-in demo prompts, so a pip install needs no file to try."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import click

__all__ = ["DEMO_PROMPTS", "demo_input"]

#: Shipped inside the package (examples/ is not in the wheel); the same 20 prompts.
DEMO_PROMPTS: Final = Path(__file__).with_name("demo_prompts.txt")


def demo_input(file: Path | None, demo: bool) -> Path:
    """Return the input file of ``ttapi batch``: FILE, or the demo prompts with ``--demo``."""
    if demo and file is not None:
        raise click.UsageError("give FILE or --demo, not both")
    if demo:
        return DEMO_PROMPTS
    if file is None:
        raise click.UsageError("missing FILE (or --demo, for 20 built-in prompts)")
    return file

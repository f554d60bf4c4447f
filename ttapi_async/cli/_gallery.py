"""``ttapi gallery DIR``: rebuild the contact sheet (``index.html``) of a batch's folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

__all__ = ["gallery"]


class _GalleryError(click.ClickException):
    """One line on stderr, exit status 1 (as the other commands report failures)."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


@click.command(short_help="Rebuild index.html, the contact sheet of a batch's output folder.")
@click.argument(
    "directory", type=click.Path(exists=True, file_okay=False, path_type=Path), metavar="DIR"
)
def gallery(directory: Path) -> int:
    """Write DIR/index.html from DIR's manifest.jsonl and journal, and print its path.

    The page opens from disk in any browser: every image as a lazy-loaded thumbnail with
    its prompt and item id, failed and unknown items with their error, a filter by state.
    """
    from ..batch._gallery import gallery_items, write_gallery

    try:
        items = gallery_items(directory)
        if not items:
            raise _GalleryError(f"{directory} has no manifest.jsonl and no journal: not a batch")
        path = write_gallery(directory, items)
    except (OSError, ValueError) as exc:
        raise _GalleryError(str(exc)) from None
    click.echo(str(path))
    return 0

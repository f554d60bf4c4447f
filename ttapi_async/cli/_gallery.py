"""``ttapi gallery DIR``: rebuild the contact sheet (``index.html``) of a batch's folder."""

from __future__ import annotations

from pathlib import Path

import click

__all__ = ["gallery"]


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
    from ._app import CliError

    try:
        items = gallery_items(directory)
        if not items:
            raise CliError(f"{directory} has no manifest.jsonl or journal: not a batch's folder")
        path = write_gallery(directory, items)
    except (OSError, ValueError) as exc:
        raise CliError(str(exc)) from None
    click.echo(str(path))
    return 0

"""The click application behind ``ttapi``: the group and its commands, and ``run``.

The batch command lives in ``_batch``, the one-shot ones (generate, edit, submit, fetch,
fake-server) in ``_oneshot``, the gallery in ``_gallery``; what they share in ``_common``.
"""

from __future__ import annotations

import logging
import sys

import click

from .._redact import RedactingFilter
from ._batch import batch
from ._batch_shared import batch_collect, batch_status
from ._common import EXIT_INTERRUPTED, FAKE_SETTINGS, CliError, UsageError, echo
from ._gallery import gallery
from ._oneshot import edit, fake_server, fetch, generate, submit

__all__ = ["FAKE_SETTINGS", "CliError", "UsageError", "cli", "run"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--api-key",
    envvar="TTAPI_API_KEY",
    show_envvar=True,
    help="Your TTAPI key (never printed).",
)
@click.option(
    "--base-url",
    envvar="TTAPI_BASE_URL",
    show_envvar=True,
    help="Service address (default https://api.ttapi.io).",
)
@click.option(
    "--poll-scale",
    type=click.FloatRange(min=0.0001, max=1.0),
    envvar="TTAPI_POLL_SCALE",
    help="Poll jobs this many times sooner than usual (for a time-scaled fake server).",
)
@click.option("-v", "--verbose", count=True, help="Log requests and retries to stderr (-vv: all).")
@click.version_option(package_name="ttapi_async", prog_name="ttapi")
@click.pass_context
def cli(
    ctx: click.Context,
    api_key: str | None,
    base_url: str | None,
    poll_scale: float | None,
    verbose: int,
) -> None:
    """Generate images with TTAPI's OpenAI image models, one or thousands at a time.

    Try it with no key: ttapi batch --demo --out out/demo --fake
    """
    ctx.obj = {"api_key": api_key, "base_url": base_url, "poll_scale": poll_scale}
    if verbose:
        logging.basicConfig(
            level=logging.DEBUG if verbose > 1 else logging.INFO,
            format="%(asctime)s %(name)s %(levelname)s %(message)s",
            stream=sys.stderr,
        )
        # On the handler: it sees every logger's records (aiohttp's, asyncio's), not only ours.
        for handler in logging.getLogger().handlers:
            handler.addFilter(RedactingFilter())


for _command in (batch, batch_status, batch_collect, generate, edit, submit, fetch, fake_server,
                 gallery):  # fmt: skip
    cli.add_command(_command)


def run(argv: list[str] | None) -> int:
    """Run the click app without letting it exit; return the status."""
    try:
        result = cli.main(args=argv, prog_name="ttapi", standalone_mode=False)
    except click.exceptions.Abort:
        echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except KeyboardInterrupt:
        echo("interrupted", err=True)
        return EXIT_INTERRUPTED
    return int(result or 0)

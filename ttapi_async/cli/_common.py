"""What every ``ttapi`` command shares: one-line errors, redacted output, the client."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any, TypeVar

import click

from .._errors import TTAPIError
from .._redact import redact
from ..batch import (
    BatchInputError,
    InputChangedError,
    OutputFolderError,
    SharedRunnersLiveError,
)

__all__ = [
    "EXIT_INTERRUPTED",
    "FAKE_SETTINGS",
    "CliError",
    "UsageError",
    "arun",
    "echo",
    "open_client",
]

T = TypeVar("T")

#: Exit status after Ctrl-C, as shells report a process ended by SIGINT.
EXIT_INTERRUPTED = 130

# The --fake service: realistic shapes and limits, jobs of ~1-2 s instead of ~40 s.
FAKE_SETTINGS: dict[str, Any] = {
    "time_scale": 0.035,
    "max_jobs_in_progress": 10,
    "seed": 7,
}


def echo(message: str = "", *, err: bool = False) -> None:
    """Print one line through the client's redaction (server text may quote the key)."""
    click.echo(redact(message), err=err)


class CliError(click.ClickException):
    """A failure reported as one line on stderr, exit status 1."""

    def show(self, file: Any = None) -> None:
        echo(f"error: {self.format_message()}", err=True)


class UsageError(CliError):
    """A command that cannot start as given: one line on stderr, exit status 2."""

    exit_code = 2


def arun(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine; turn the library's errors into one clear line."""
    try:
        return asyncio.run(coro)
    except (OutputFolderError, BatchInputError, SharedRunnersLiveError) as exc:
        # The folder or the input cannot be used as they are, or other runs are using them
        # (a folder's lock, a shared batch's live runners under --force); nothing was sent.
        raise UsageError(str(exc)) from None
    except (TTAPIError, InputChangedError) as exc:
        raise CliError(str(exc)) from None
    except OSError as exc:
        text = f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc)
        raise CliError(text) from None


@contextlib.asynccontextmanager
async def open_client(ctx: click.Context, *, fake: bool, **client_kw: Any) -> AsyncIterator[Any]:
    """Yield a client: the configured service, or a FakeTTAPI started in this process.

    With the service, ``$TTAPI_COORDINATOR`` (a redis:// URL) gives the client a
    ``RedisCoordinator`` unless ``coordinator=`` is passed (None: in process). The fake
    lives in this process only: its clients coordinate nothing beyond it.
    """
    from .._client import AsyncTTAPI
    from .._schedule import PollSchedule

    options = ctx.find_root().obj or {}
    if fake:
        from ..testing import FakeTTAPI

        async with FakeTTAPI(**FAKE_SETTINGS) as server, server.client(**client_kw) as client:
            # The fake's jobs run time_scale times faster: so must the polls.
            client.watcher.configure(
                schedule=PollSchedule().scaled(FAKE_SETTINGS["time_scale"]), max_per_second=None
            )
            yield client
        return
    if "coordinator" not in client_kw:
        from ._coordinator import coordinator_from_env

        try:
            client_kw["coordinator"] = coordinator_from_env()
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    async with AsyncTTAPI(
        api_key=options.get("api_key"), base_url=options.get("base_url"), **client_kw
    ) as client:
        scale = options.get("poll_scale")
        if scale is not None:
            client.watcher.configure(schedule=PollSchedule().scaled(scale), max_per_second=None)
        yield client

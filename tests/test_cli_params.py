"""generate, edit and submit reach every API parameter; submit --wait's progress line."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import ttapi_async.testing
from ttapi_async.cli._app import FAKE_SETTINGS, cli
from ttapi_async.cli._params import call_params, progress_text, wait_with_progress
from ttapi_async.testing import FakeTTAPI

SEEN: list[FakeTTAPI] = []


class RecordingFake(FakeTTAPI):
    """A FakeTTAPI that the test can read after the command closed it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        SEEN.append(self)


@pytest.fixture(autouse=True)
def recording_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make --fake fast and keep the emulator each command ran, to read its requests."""
    SEEN.clear()
    monkeypatch.setitem(FAKE_SETTINGS, "time_scale", 0.002)
    monkeypatch.setattr(ttapi_async.testing, "FakeTTAPI", RecordingFake)


def sent(path_part: str) -> dict[str, Any]:
    """Return the body fields of the last request to a path containing ``path_part``."""
    records = [r for r in SEEN[-1].requests if path_part in r.path]
    return records[-1].params


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stderr


def test_generate_named_options_and_param_reach_the_body(tmp_path: Path) -> None:
    """generate's named options and --param pairs (typed or not) are all sent."""
    code, err = run(
        "generate", "a cat", "--model", "gpt-image-1", "--background", "opaque",
        "--moderation", "low", "--output-compression", "50", "--output-format", "jpeg",
        "--user", "u-1", "--param", "n=1", "--param", "quality=high",
        "--out", str(tmp_path), "--fake",
    )  # fmt: skip
    assert code == 0, err
    body = sent("/v1/images/generations")
    assert (body["background"], body["moderation"], body["output_compression"]) == (
        "opaque", "low", 50,
    )  # fmt: skip
    assert (body["user"], body["n"], body["quality"]) == ("u-1", 1, "high")


def test_edit_reaches_input_fidelity_and_output_format(tmp_path: Path) -> None:
    """edit takes --input-fidelity, --output-format and --param."""
    from _support import PNG

    image = tmp_path / "in.png"
    image.write_bytes(PNG)
    code, err = run(
        "edit", "a hat", "-i", str(image), "--model", "gpt-image-1", "--input-fidelity", "high",
        "--output-format", "webp", "--param", "quality=low", "--out", str(tmp_path), "--fake",
    )  # fmt: skip
    assert code == 0, err
    body = sent("/v1/images/edits")
    assert (body["input_fidelity"], body["output_format"], body["quality"]) == (
        "high", "webp", "low",
    )  # fmt: skip


def test_submit_takes_hook_url_and_param(tmp_path: Path) -> None:
    """submit sends --hook-url as hookUrl, and --param pairs; --wait still saves the image."""
    hook = "http://127.0.0.1:9/hook"  # loopback: the job is not awaited, nothing calls it
    code, err = run(
        "submit", "a fox", "--family", "gpt", "--hook-url", hook,
        "--param", "aspect_ratio=16:9", "--out", str(tmp_path), "--fake",
    )  # fmt: skip
    assert code == 0, err
    body = sent("/openai/gpt/generations")
    assert (body["hookUrl"], body["aspect_ratio"]) == (hook, "16:9")
    code, err = run(
        "submit", "a fox", "--param", "referImages=[]", "--out", str(tmp_path), "--fake", "--wait"
    )
    assert code == 0, err
    assert list(tmp_path.glob("*.png"))


def test_help_lists_models_from_capabilities() -> None:
    """The --model help texts name the models of _capabilities."""
    from ttapi_async._capabilities import EDIT_MODELS, GPT_JOB_MODELS

    edit_help = CliRunner().invoke(cli, ["edit", "--help"]).stdout
    submit_help = CliRunner().invoke(cli, ["submit", "--help"]).stdout
    assert all(m in " ".join(edit_help.split()) for m in EDIT_MODELS)
    assert all(m in " ".join(submit_help.split()) for m in GPT_JOB_MODELS)


def test_call_params_routes_unknown_keys_to_extra_body() -> None:
    """A key the method takes is an argument; another goes to extra_body; named ones win."""

    def method(*, prompt: str, size: str | None = None, extra_body: Any = None) -> None: ...

    kwargs = call_params(method, ["size=1x1", "seed=7"], {"size": "2x2", "user": None})
    assert kwargs == {"size": "2x2", "extra_body": {"seed": 7}}


@pytest.mark.parametrize(
    ("eta", "tick", "expected"),
    [
        (None, 0, "| job j: 3s elapsed"),
        (None, 1, "/ job j: 3s elapsed"),
        (12.4, 0, "job j: 3s elapsed, about 12s left"),
    ],
)
def test_progress_text(eta: float | None, tick: int, expected: str) -> None:
    """The wait line shows the expected time left when known, else a spinner."""
    assert progress_text("j", 3.2, eta, tick) == expected


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


async def test_wait_with_progress_draws_and_clears_the_line() -> None:
    """On a terminal the line is drawn while the job runs and erased when it ends."""
    fake = FakeTTAPI(job_duration=ttapi_async.testing.Duration.fixed(0))
    async with fake, fake.client() as client:
        job = await client.gpt4o.submit(prompt="a cat")
        out = _Tty()
        result = await wait_with_progress(job, stream=out, interval=0.01)
    assert result.job_id == job.id
    text = out.getvalue()
    assert f"job {job.id}" in text and text.endswith("\r\x1b[K")


async def test_wait_with_progress_is_silent_off_a_terminal() -> None:
    """Piped stderr gets no progress line (scripts read it)."""
    fake = FakeTTAPI(job_duration=ttapi_async.testing.Duration.fixed(0))
    async with fake, fake.client() as client:
        job = await client.gpt4o.submit(prompt="a cat")
        out = io.StringIO()
        await asyncio.wait_for(wait_with_progress(job, stream=out), 30)
    assert out.getvalue() == ""

"""The one-shot CLI commands on paths test_cli leaves out, against the built-in --fake."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ttapi_async.cli._app import FAKE_SETTINGS, cli


@pytest.fixture(autouse=True)
def fast_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make --fake jobs take milliseconds, and use no key or URL from the machine."""
    monkeypatch.setitem(FAKE_SETTINGS, "time_scale", 0.002)
    monkeypatch.delenv("TTAPI_API_KEY", raising=False)
    monkeypatch.delenv("TTAPI_BASE_URL", raising=False)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_a_second_generate_picks_a_fresh_name(tmp_path: Path) -> None:
    """Generating twice with one --name saves ``stem`` then ``stem-2``, overwriting nothing."""
    args = ("generate", "a cat", "--model", "gpt-image-1", "--out", str(tmp_path), "--fake")
    first = Path(invoke(*args, "--name", "cat")[1].strip())
    second = Path(invoke(*args, "--name", "cat")[1].strip())
    assert (first.stem, second.stem) == ("cat", "cat-2")


def test_force_reuses_the_name(tmp_path: Path) -> None:
    """With --force the same name is written again instead of a fresh one."""
    args = ("generate", "a cat", "--model", "gpt-image-1", "--out", str(tmp_path), "--fake")
    first = invoke(*args, "--name", "cat")[1].strip()
    second = invoke(*args, "--name", "cat", "--force")[1].strip()
    assert first == second


def test_generate_dalle3_saves_the_image(tmp_path: Path) -> None:
    """``generate --dalle3 --fake`` goes through the DALL-E 3 endpoint and saves one image."""
    code, out, err = invoke("generate", "a cat", "--dalle3", "--out", str(tmp_path), "--fake")
    assert code == 0, err
    assert Path(out.strip()).is_file()


def test_submit_fake_without_wait_warns_the_job_is_gone(tmp_path: Path) -> None:
    """``submit --fake`` without --wait prints the id and says the emulator's job ends with it."""
    code, out, err = invoke("submit", "a cat", "--out", str(tmp_path), "--fake")
    assert code == 0 and len(out.strip()) == 36
    assert "add --wait" in err


def test_submit_gpt_family_with_refer_images_waits_and_saves(tmp_path: Path) -> None:
    """``submit --family gpt --refer URL --wait --fake`` saves the finished job's image."""
    code, out, err = invoke(
        "submit", "a cat", "--family", "gpt", "--model", "gpt-image-2",
        "--refer", "https://example.com/a.png", "--wait", "--out", str(tmp_path), "--fake",
    )  # fmt: skip
    assert code == 0, err
    _, path = out.split()
    assert Path(path).read_bytes().startswith(b"\x89PNG")

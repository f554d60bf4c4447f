"""``ttapi batch --demo``: a pip user can try the command with no file and no key."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from ttapi_async.cli._app import cli
from ttapi_async.cli._demo import DEMO_PROMPTS

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "prompts.txt"


def _prompts(path: Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line for line in lines if line.strip() and not line.startswith("#")]


def test_demo_runs_the_built_in_prompts(tmp_path: Path) -> None:
    """``ttapi batch --demo --out DIR --fake`` makes an image for each of the 20 prompts."""
    out = tmp_path / "demo"
    args = ["batch", "--demo", "--out", str(out), "--fake", "-q"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    assert len(list(out.glob("*.png"))) == 20


def test_demo_prompts_are_the_examples(tmp_path: Path) -> None:
    """The packaged demo prompts are examples/prompts.txt's, so the two never drift apart."""
    assert _prompts(DEMO_PROMPTS) == _prompts(EXAMPLES)
    assert len(_prompts(DEMO_PROMPTS)) == 20


def test_demo_and_a_file_together_are_a_usage_error(tmp_path: Path) -> None:
    """FILE and --demo are exclusive; giving neither names both (exit 2)."""
    both = CliRunner().invoke(cli, ["batch", str(EXAMPLES), "--demo", "--out", str(tmp_path)])
    assert both.exit_code == 2 and "not both" in both.stderr
    neither = CliRunner().invoke(cli, ["batch", "--out", str(tmp_path)])
    assert neither.exit_code == 2 and "--demo" in neither.stderr


def test_help_hint_needs_no_file() -> None:
    """``ttapi --help`` suggests a first command that works from a wheel (no examples/)."""
    result = CliRunner().invoke(cli, ["--help"])
    assert "ttapi batch --demo --out out/demo --fake" in result.stdout
    assert "examples/" not in result.stdout

"""``ttapi batch`` on paths test_cli leaves out: --param parsing, --force, an input edited
without changing any request, and a stop under --quiet."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ttapi_async.cli._app import FAKE_SETTINGS, cli

PROMPTS = "a red fox\na lighthouse\n"


@pytest.fixture(autouse=True)
def fast_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make --fake jobs take milliseconds, and use no key or URL from the machine."""
    monkeypatch.setitem(FAKE_SETTINGS, "time_scale", 0.002)
    monkeypatch.delenv("TTAPI_API_KEY", raising=False)
    monkeypatch.delenv("TTAPI_BASE_URL", raising=False)


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_a_param_without_equals_is_a_usage_error(tmp_path: Path) -> None:
    """``--param size`` (no ``=``) exits 2 naming --param, before anything runs."""
    prompts = tmp_path / "p.txt"
    prompts.write_text(PROMPTS)
    code, _, err = invoke("batch", str(prompts), "--out", str(tmp_path / "o"), "--param", "size")
    assert code == 2 and "--param" in err
    assert not (tmp_path / "o").exists()


def test_a_param_that_is_not_json_is_sent_as_text(tmp_path: Path) -> None:
    """``--param style=vivid`` (not JSON) reaches the item as the string "vivid"."""
    prompts = tmp_path / "p.txt"
    prompts.write_text("a red fox\n")
    out = tmp_path / "o"
    code, _, err = invoke(
        "batch", str(prompts), "--out", str(out), "--fake", "--kind", "dalle3",
        "--param", "style=vivid", "--param", "n=1", "--quiet",
    )  # fmt: skip
    assert code == 0, err
    line = json.loads((out / "manifest.jsonl").read_text().splitlines()[0])
    assert line["params"]["style"] == "vivid" and line["params"]["n"] == 1


def test_force_says_how_many_changed_items_it_redoes(tmp_path: Path) -> None:
    """A changed input run with --force says how many changed items will be redone."""
    requests = tmp_path / "r.jsonl"
    requests.write_text(json.dumps({"id": "a", "prompt": "a fox"}) + "\n")
    out = str(tmp_path / "o")
    assert invoke("batch", str(requests), "--out", out, "--fake", "--quiet")[0] == 0
    requests.write_text(json.dumps({"id": "a", "prompt": "a wolf"}) + "\n")
    code, _, err = invoke("batch", str(requests), "--out", out, "--fake", "--force")
    assert code == 0, err
    assert "--force: 1 changed item(s) will be redone" in err


def test_an_edited_file_with_the_same_requests_gets_a_note(tmp_path: Path) -> None:
    """A file edited without changing any request runs, with a note saying so."""
    prompts = tmp_path / "p.txt"
    prompts.write_text(PROMPTS)
    out = str(tmp_path / "o")
    assert invoke("batch", str(prompts), "--out", out, "--fake", "--quiet")[0] == 0
    prompts.write_text("# a comment\n" + PROMPTS)
    code, _, err = invoke("batch", str(prompts), "--out", out, "--fake")
    assert code == 0, err
    assert "changed since the last run, but none of its requests did" in err

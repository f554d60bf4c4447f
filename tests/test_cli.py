"""Tests of the ``ttapi`` command line: click's CliRunner for speed, and the real entry point."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ttapi_async.cli import main
from ttapi_async.cli._app import FAKE_SETTINGS, cli
from ttapi_async.testing import FakeTTAPI

PROMPTS = "a red fox\na lighthouse\n# a comment\na bowl of ramen\n"


@pytest.fixture(autouse=True)
def fast_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make --fake jobs take milliseconds instead of a second or two."""
    monkeypatch.setitem(FAKE_SETTINGS, "time_scale", 0.002)
    monkeypatch.delenv("TTAPI_API_KEY", raising=False)
    monkeypatch.delenv("TTAPI_BASE_URL", raising=False)


@pytest.fixture
def prompts(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.txt"
    path.write_text(PROMPTS)
    return path


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_help_lists_every_command() -> None:
    """``ttapi --help`` names batch, generate, edit, submit, fetch and fake-server."""
    code, out, _ = invoke("--help")
    assert code == 0
    for command in ("batch", "generate", "edit", "submit", "fetch", "fake-server"):
        assert command in out


def test_batch_fake_writes_images_and_exits_zero(prompts: Path, tmp_path: Path) -> None:
    """``ttapi batch FILE --out DIR --fake`` needs no key and writes one image per prompt."""
    out = tmp_path / "out"
    code, _, err = invoke("batch", str(prompts), "--out", str(out), "--fake")
    assert code == 0, err
    assert sorted(p.name for p in out.glob("*.png")) == ["00001.png", "00002.png", "00003.png"]
    assert len((out / "manifest.jsonl").read_text().splitlines()) == 3
    assert "3 done, 0 failed" in err


def test_jsonl_events_go_to_stdout(prompts: Path, tmp_path: Path) -> None:
    """--jsonl writes start, one item per prompt, and summary events as JSON lines."""
    code, out, _ = invoke(
        "batch", str(prompts), "--out", str(tmp_path / "o"), "--fake", "--jsonl", "--quiet"
    )
    events = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert [e["event"] for e in events] == ["start", "item", "item", "item", "summary"]
    assert events[-1]["done"] == 3 and events[-1]["failed"] == 0


def test_rerun_resumes_and_skips_done_items(prompts: Path, tmp_path: Path) -> None:
    """The same command again finds every item done and sends nothing."""
    out = str(tmp_path / "o")
    invoke("batch", str(prompts), "--out", out, "--fake", "--quiet")
    code, stdout, _ = invoke("batch", str(prompts), "--out", out, "--fake", "--jsonl", "-q")
    summary = json.loads(stdout.splitlines()[-1])
    assert code == 0
    assert (summary["already_done"], summary["done"], summary["submit_requests"]) == (3, 0, 0)


def test_changed_input_is_one_line_and_exit_one(prompts: Path, tmp_path: Path) -> None:
    """A changed prompt file over the same folder fails with one explaining line, no traceback."""
    out = str(tmp_path / "o")
    invoke("batch", str(prompts), "--out", out, "--fake", "--quiet")
    prompts.write_text(PROMPTS.replace("lighthouse", "windmill"))
    code, _, err = invoke("batch", str(prompts), "--out", out, "--fake", "--quiet")
    assert code == 1
    assert err.count("\n") == 1 and err.startswith("error: the input differs")
    assert "'00002'" in err and "Traceback" not in err


def test_failed_item_makes_exit_one(tmp_path: Path) -> None:
    """An item the service refuses ends failed, and the exit status says so."""
    requests = tmp_path / "r.jsonl"
    requests.write_text(
        '{"id": "ok", "kind": "gpt4o", "prompt": "fine"}\n'
        '{"id": "bad", "kind": "generate", "prompt": "x", "size": "3x3"}\n'
    )
    code, out, _ = invoke(
        "batch", str(requests), "--out", str(tmp_path / "o"), "--fake", "--jsonl", "-q"
    )
    states = {e["id"]: e["state"] for e in map(json.loads, out.splitlines()) if "id" in e}
    assert code == 1
    assert states == {"ok": "done", "bad": "failed"}


def test_missing_key_is_one_clear_line(prompts: Path, tmp_path: Path) -> None:
    """Without --fake and without a key, the command says how to give one and exits 1."""
    code, _, err = invoke("batch", str(prompts), "--out", str(tmp_path / "o"))
    assert code == 1
    assert err.startswith("error: no API key") and err.count("\n") == 1


def test_usage_error_exits_two(prompts: Path) -> None:
    """A missing required option is a usage error: exit status 2."""
    code, _, err = invoke("batch", str(prompts))
    assert code == 2
    assert "--out" in err


def test_generate_fake_saves_and_prints_the_path(tmp_path: Path) -> None:
    """``ttapi generate --fake`` saves the image and prints where."""
    code, out, _ = invoke(
        "generate", "a cat", "--model", "gpt-image-1", "--out", str(tmp_path), "--fake"
    )
    assert code == 0
    path = Path(out.strip())
    assert path.parent == tmp_path and path.read_bytes().startswith(b"\x89PNG")


def test_submit_fake_wait_prints_job_id_and_path(tmp_path: Path) -> None:
    """``ttapi submit --fake --wait`` prints the job id, then the saved image's path."""
    code, out, err = invoke("submit", "a cat", "--wait", "--out", str(tmp_path), "--fake")
    assert code == 0, err
    job_id, path = out.split()
    assert len(job_id) == 36 and Path(path).is_file()


async def test_fetch_prints_status_json(tmp_path: Path) -> None:
    """``ttapi fetch JOB_ID`` prints the job's status as JSON (run as a real process)."""
    async with FakeTTAPI() as fake:
        job_id = fake.create_job("a cat")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ttapi_async.cli",
            "--base-url",
            fake.url,
            "--api-key",
            fake.api_key,
            "fetch",
            job_id,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err
    status = json.loads(out)
    assert status["job_id"] == job_id and status["status"] in ("PENDING_QUEUE", "ON_QUEUE")


def test_fake_server_passes_its_arguments_through() -> None:
    """``ttapi fake-server --help`` shows the emulator's own options."""
    result = CliRunner().invoke(cli, ["fake-server", "--help"])
    assert result.exit_code == 0
    assert "--max-jobs-in-progress" in result.stdout


def test_main_without_click_says_how_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without the cli extra, ``ttapi`` prints the pip command and exits 1."""
    monkeypatch.setitem(sys.modules, "click", None)
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 1
    assert "pip install 'ttapi_async[cli]'" in capsys.readouterr().err


def test_console_script_runs() -> None:
    """The installed ``ttapi`` script (the real entry point) answers --help."""
    script = Path(sys.executable).with_name("ttapi")
    done = subprocess.run(
        [str(script), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0
    assert "batch" in done.stdout


def test_module_entry_point_runs_a_fake_batch(prompts: Path, tmp_path: Path) -> None:
    """``python -m ttapi_async.cli batch ... --fake`` works end to end as a process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TTAPI_")}
    done = subprocess.run(
        [sys.executable, "-m", "ttapi_async.cli", "batch", str(prompts), "--out",
         str(tmp_path / "o"), "--fake", "--quiet"],
        capture_output=True, text=True, timeout=60, check=False, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "o").glob("*.png"))) == 3


async def test_wrong_key_stops_with_one_line(tmp_path: Path, prompts: Path) -> None:
    """A rejected key stops the batch: exit 1 and one "error:" line, even with --quiet."""
    async with FakeTTAPI() as fake:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "ttapi_async.cli", "--base-url", fake.url,
            "--api-key", "wrong-key", "batch", str(prompts), "--out", str(tmp_path / "o"),
            "--quiet",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    text = err.decode()
    assert proc.returncode == 1
    assert text.startswith("error: AuthenticationError") and text.count("\n") == 1
    assert "wrong-key" not in text


def test_failed_item_with_markup_in_its_id_is_printed_plainly(tmp_path: Path) -> None:
    """An id like "[/]" (rich markup) is shown as text above the bar, never parsed."""
    requests = tmp_path / "r.jsonl"
    requests.write_text('{"id": "[/][bold]x", "kind": "generate", "prompt": "x", "size": "3x3"}\n')
    code, _, err = invoke("batch", str(requests), "--out", str(tmp_path / "o"), "--fake")
    assert code == 1
    assert "failed [/][bold]x: InvalidRequestError" in err


def test_lost_journal_is_refused_in_one_line_exit_two(prompts: Path, tmp_path: Path) -> None:
    """Images left without their journal are refused (exit 2, one line), not paid for again."""
    out = tmp_path / "o"
    invoke("batch", str(prompts), "--out", str(out), "--fake", "--quiet")
    (out / "journal.sqlite3").unlink()
    code, stdout, err = invoke("batch", str(prompts), "--out", str(out), "--fake", "--jsonl")
    assert code == 2 and stdout == ""
    assert err.count("\n") == 1 and "3 image(s)" in err and "--force" in err


def test_corrupt_journal_is_one_line_exit_two(prompts: Path, tmp_path: Path) -> None:
    """A journal that is not a database gives one line and exit 2, no traceback."""
    out = tmp_path / "o"
    out.mkdir()
    (out / "journal.sqlite3").write_bytes(b"garbage" * 1000)
    code, _, err = invoke("batch", str(prompts), "--out", str(out), "--fake", "--quiet")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and "journal.sqlite3" in err


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "holds no request"),
        (b"a cat\ncaf\xe9\n", "not UTF-8"),
        (b'{"id": "\\udc80", "prompt": "x"}\n', "lone surrogate"),
    ],
    ids=["empty", "latin-1", "surrogate"],
)
def test_unusable_input_is_one_line_exit_two(tmp_path: Path, data: bytes, needle: str) -> None:
    """An empty, non-UTF-8 or lone-surrogate input is one line and exit 2; nothing is sent."""
    path = tmp_path / ("r.jsonl" if b"{" in data else "p.txt")
    path.write_bytes(data)
    code, _, err = invoke("batch", str(path), "--out", str(tmp_path / "o"), "--fake")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and needle in err


def test_manifest_gets_the_mode_of_the_images(prompts: Path, tmp_path: Path) -> None:
    """manifest.jsonl is written with the same permission bits as the images beside it."""
    out = tmp_path / "o"
    code, _, err = invoke("batch", str(prompts), "--out", str(out), "--fake", "--quiet")
    assert code == 0, err
    image_modes = {p.stat().st_mode & 0o777 for p in out.glob("*.png")}
    assert image_modes == {(out / "manifest.jsonl").stat().st_mode & 0o777}


def test_generate_help_states_the_default_model() -> None:
    """``ttapi generate --help`` says which model is used when none is given."""
    code, out, _ = invoke("generate", "--help")
    assert code == 0 and "default: dall-e-2" in " ".join(out.split())


def test_generate_never_overwrites_without_force(tmp_path: Path) -> None:
    """A second ``generate`` picks a fresh name; with --force it writes over the first."""
    args = ("generate", "a cat", "--model", "gpt-image-1", "--out", str(tmp_path), "--fake")
    first = Path(invoke(*args)[1].strip())
    before = first.read_bytes()
    second = Path(invoke(*args)[1].strip())
    assert (first.name, second.name) == ("image.png", "image-2.png")
    assert first.read_bytes() == before
    forced = Path(invoke(*args, "--force")[1].strip())
    assert forced == first


def test_submit_fake_without_wait_says_the_job_dies(tmp_path: Path) -> None:
    """``submit --fake`` without --wait warns that its job lives in an emulator that ended."""
    code, out, err = invoke("submit", "a cat", "--out", str(tmp_path), "--fake")
    assert code == 0 and len(out.strip()) == 36
    assert "emulator" in err and "--wait" in err

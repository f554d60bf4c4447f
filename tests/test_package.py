"""What pip users get: the wheel carries the LICENSE, the demo prompts and the metadata."""

from __future__ import annotations

import email.parser
import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """Build the wheel offline (no index, no build isolation) and open it."""
    if importlib.util.find_spec("hatchling") is None:
        pytest.skip("hatchling (the dev extra) is needed to build the wheel offline")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--wheel-dir",
            str(out),
            str(ROOT),
        ],
        check=True,
        timeout=240,
        capture_output=True,
    )
    (built,) = out.glob("ttapi_async-*.whl")
    return zipfile.ZipFile(built)


def _metadata(wheel: zipfile.ZipFile) -> email.message.Message:
    (name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    return email.parser.Parser().parsestr(wheel.read(name).decode())


def test_wheel_carries_the_mit_license(wheel: zipfile.ZipFile) -> None:
    """LICENSE is in the wheel's dist-info and the metadata names MIT and the file."""
    licenses = [n for n in wheel.namelist() if n.endswith(".dist-info/licenses/LICENSE")]
    assert len(licenses) == 1
    assert wheel.read(licenses[0]).decode().startswith("MIT License")
    meta = _metadata(wheel)
    assert meta["License-Expression"] == "MIT"
    assert meta["License-File"] == "LICENSE"


def test_wheel_has_project_urls(wheel: zipfile.ZipFile) -> None:
    """The metadata lists project URLs."""
    assert _metadata(wheel).get_all("Project-URL")


def test_wheel_carries_the_demo_prompts(wheel: zipfile.ZipFile) -> None:
    """``ttapi batch --demo`` works from a wheel: its prompts are package data."""
    assert "ttapi_async/cli/demo_prompts.txt" in wheel.namelist()

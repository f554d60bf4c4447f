"""The README's "Testing your code" blocks, copied verbatim into a fresh user project and run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from ttapi_async.testing.pytest_plugin import MISSING_PYTEST_ASYNCIO

README = Path(__file__).resolve().parent.parent / "README.md"
SECTION = "## Testing your code"


def _blocks(language: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    section = text[start : end if end != -1 else None]
    return re.findall(rf"```{language}\n(.*?)```", section, flags=re.S)


def _project(root: Path, *, config: bool = True) -> Path:
    """Write a user project: the README's pytest config and its tests, as they are."""
    root.mkdir()
    (toml,) = _blocks("toml")
    tests = _blocks("python")[0]
    (root / "pyproject.toml").write_text(toml if config else "", encoding="utf-8")
    (root / "test_readme.py").write_text(tests, encoding="utf-8")
    return root


def _pytest(project: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    run_env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV"))}
    run_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=project,
        env=run_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, proc.stdout + proc.stderr


def test_readme_tests_pass_in_a_fresh_project(tmp_path: Path) -> None:
    """The README's config block and test block make a project whose tests all pass, quietly."""
    code, output = _pytest(_project(tmp_path / "user"))
    assert code == 0, output
    count = len(re.findall(r"^async def test_", _blocks("python")[0], flags=re.M))
    assert count >= 3
    assert re.search(rf"\b{count} passed\b", output), output
    assert "Warning" not in output, output


def test_without_the_config_the_async_tests_do_not_run(tmp_path: Path) -> None:
    """Leaving out the README's asyncio_mode block is what made the examples fail as copied."""
    code, output = _pytest(_project(tmp_path / "user", config=False))
    assert code != 0
    assert "passed" not in output.splitlines()[-1]


def test_without_pytest_asyncio_the_fixture_says_what_is_missing(tmp_path: Path) -> None:
    """With pytest-asyncio absent, asking for fake_ttapi fails naming it, not "not found"."""
    project = _project(tmp_path / "user")
    hidden = tmp_path / "hidden"
    (hidden / "pytest_asyncio").mkdir(parents=True)
    (hidden / "pytest_asyncio" / "__init__.py").write_text(
        "raise ImportError('pytest_asyncio is hidden for this test')\n"
    )
    # -p no:asyncio: pytest-asyncio's own plugin (installed here) is not loaded either.
    code, output = _pytest(project, "-p", "no:asyncio", env={"PYTHONPATH": str(hidden)})
    assert code != 0
    assert MISSING_PYTEST_ASYNCIO in output
    assert "fixture 'fake_ttapi' not found" not in output

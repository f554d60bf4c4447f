"""``ttapi gallery DIR``: rebuilds a folder's index.html from its manifest and journal."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from ttapi_async.cli._app import cli


def test_gallery_rebuilds_the_page_and_prints_its_path(tmp_path: Path) -> None:
    """The command writes DIR/index.html with every manifest item and prints where it is."""
    record = {"id": "cat", "state": "done", "params": {"prompt": "a cat"}, "files": ["cat.png"]}
    (tmp_path / "manifest.jsonl").write_text(json.dumps(record) + "\n")
    result = CliRunner().invoke(cli, ["gallery", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0
    page = tmp_path / "index.html"
    assert result.stdout.strip() == str(page)
    assert 'src="cat.png"' in page.read_text()


def test_gallery_of_a_folder_without_a_batch_is_a_one_line_error(tmp_path: Path) -> None:
    """A folder with neither manifest nor journal exits 1 with one line, and writes nothing."""
    result = CliRunner().invoke(cli, ["gallery", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("error: ") and "not a batch" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "index.html").exists()


def test_help_lists_gallery() -> None:
    """``ttapi --help`` names the gallery command."""
    result = CliRunner().invoke(cli, ["--help"])
    assert "gallery" in result.stdout

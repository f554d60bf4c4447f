"""Tests of outputs: where images go, base64 straight to disk, and the manifest."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from ttapi_async.batch import BatchRequest, Journal
from ttapi_async.batch._outputs import Manifest, image_path, save_b64

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


def test_one_image_is_named_after_the_item(tmp_path: Path) -> None:
    """An item with one image writes DIR/<stem>.<ext>."""
    assert image_path(tmp_path, "cat", 0, 1, ".png") == tmp_path / "cat.png"


def test_several_images_share_a_folder(tmp_path: Path) -> None:
    """An item with n images writes DIR/<stem>/1.<ext> ... n.<ext>: no clash with other stems."""
    assert image_path(tmp_path, "cat", 1, 3, ".png") == tmp_path / "cat" / "2.png"


async def test_base64_is_decoded_to_a_file_named_by_its_format(tmp_path: Path) -> None:
    """A JPEG sent as base64 lands as <stem>.jpg, whatever format was asked, with no temp file."""
    path = await save_b64(base64.b64encode(JPEG).decode(), tmp_path, "x", 0, 1, "png")
    assert path == tmp_path / "x.jpg"
    assert path.read_bytes() == JPEG
    assert [p.name for p in tmp_path.iterdir()] == ["x.jpg"]  # noqa: ASYNC240


async def test_manifest_compacts_to_one_line_per_finished_item(tmp_path: Path) -> None:
    """After a run, manifest.jsonl holds one line per finished item, in input order."""
    requests = [BatchRequest(f"i{i}", "gpt4o", {"prompt": str(i)}) for i in range(3)]
    with Journal.open(tmp_path) as journal:
        journal.sync_input(requests)
        await journal.mark_failed("i2", "boom")
        await journal.mark_done("i0", files=["i0.png"], quota=2, usage=None)
        await journal.drain()
        manifest = Manifest(tmp_path)
        manifest.append({"id": "i0", "state": "failed"})  # an earlier attempt's line
        assert manifest.compact(journal) == 2
    lines = [json.loads(x) for x in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert [(x["id"], x["state"]) for x in lines] == [("i0", "done"), ("i2", "failed")]
    assert lines[0]["files"] == ["i0.png"] and lines[0]["quota"] == 2
    assert lines[1]["error"] == "boom"

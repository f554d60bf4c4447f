"""Tests of output file names: hostile ids never escape the folder or collide."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from ttapi_async.batch import BatchRequest, Journal, safe_stem
from ttapi_async.batch._names import MAX_STEM, reserved_on_windows

HOSTILE = [
    "../../etc/passwd",
    "/etc/passwd",
    "..",
    ".",
    "",
    "CON",
    "con.txt",
    "LPT1",
    "a/b",
    "a\\b",
    "日本語のプロンプト",
    "emoji 🐱",
    "name.",
    "-rf",
    "x" * 1000,
    "nul\x00byte",
    "new\nline",
]


@pytest.mark.parametrize("item_id", HOSTILE)
def test_hostile_ids_give_plain_names_inside_the_folder(item_id: str, tmp_path: Path) -> None:
    """Every hostile id becomes one short [A-Za-z0-9._-] name that stays inside DIR."""
    stem = safe_stem(item_id)
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", stem)
    assert len(stem) <= MAX_STEM + 9
    target = (tmp_path / f"{stem}.png").resolve()
    assert target.parent == tmp_path.resolve()


def test_safe_ids_are_kept() -> None:
    """An id that is already a safe name is used as it is."""
    assert safe_stem("cat-001_v2.final") == "cat-001_v2.final"


def test_ids_that_clean_alike_get_different_names() -> None:
    """ "a/b" and "a_b" would both clean to "a_b": the changed one gets a hash."""
    assert safe_stem("a_b") == "a_b"
    assert safe_stem("a/b") != safe_stem("a_b")
    assert safe_stem("a/b").startswith("a_b-")


def test_reserved_device_names_get_a_hash() -> None:
    """Windows device names (whatever the case or extension) are never used bare."""
    for item_id in ("CON", "con", "Com1.png", "aux"):
        assert safe_stem(item_id) != item_id


def test_journal_separates_names_that_differ_only_in_case(tmp_path: Path) -> None:
    """ "Cat" and "cat" would overwrite each other on a case-insensitive disk: they don't."""
    with Journal.open(tmp_path) as journal:
        journal.sync_input(
            [
                BatchRequest("Cat", "gpt4o", {"prompt": "a"}),
                BatchRequest("cat", "gpt4o", {"prompt": "b"}),
            ]
        )
        stems = [row.stem for row in journal.rows()]
    assert stems[0] == "Cat"
    assert stems[1].casefold() != "cat"


async def test_hostile_ids_are_written_inside_the_folder(tmp_path: Path) -> None:
    """A batch whose ids are hostile writes every image inside DIR, nowhere else."""
    from ttapi_async.batch import run_batch
    from ttapi_async.testing import FakeTTAPI

    out = tmp_path / "out"
    requests = [
        BatchRequest(item_id, "generate", {"prompt": f"p{i}", "model": "gpt-image-1"})
        for i, item_id in enumerate(HOSTILE)
    ]
    async with FakeTTAPI() as fake, fake.client() as client:
        outcomes = [o async for o in run_batch(client, requests, out_dir=out, concurrency=8)]
    assert sorted(o.state for o in outcomes) == ["done"] * len(HOSTILE)
    written = {p.resolve() for o in outcomes for p in o.files}
    assert len(written) == len(HOSTILE)
    assert all(p.parent == out.resolve() for p in written)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # noqa: ASYNC240


DEVICES = ["CON", "PRN", "AUX", "NUL", "COM1", "COM9", "LPT1", "LPT0", "CONIN$", "CLOCK$"]
SUFFIXES = ["", ".txt", ".tar.gz", ".", " ", ".png"]


def windows_device(name: str) -> bool:
    """Windows' own rule, written out apart from the module: the part before the first dot,
    trailing spaces dropped, names a device; or the name ends with a dot or a space."""
    base = name.split(".")[0].rstrip(" ").upper()
    devices = {"CON", "PRN", "AUX", "NUL", "CLOCK$", "CONIN$", "CONOUT$"}
    devices |= {f"{d}{i}" for d in ("COM", "LPT") for i in range(10)}
    return base in devices or name[-1:] in (".", " ")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("case", [str.lower, str.upper, str.title])
def test_written_names_are_never_reserved(device: str, suffix: str, case: Any) -> None:
    """An id naming a Windows device, with any extension and case, never gives a reserved
    file name (nor folder name, for items of several images)."""
    stem = safe_stem(case(device) + suffix)
    for name in (stem, f"{stem}.png", f"{stem}.jpg"):
        assert not windows_device(name), name
        assert not reserved_on_windows(name), name


def test_nul_txt_keeps_a_readable_name() -> None:
    """ "nul.txt" becomes "nul-<hash>.txt": the hash goes before the first dot."""
    assert re.fullmatch(r"nul-[0-9a-f]{8}\.txt", safe_stem("nul.txt"))

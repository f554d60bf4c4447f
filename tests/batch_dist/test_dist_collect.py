"""``ttapi batch-collect``: the images it can reach copied into one folder, safely, once.

The batch's records are written straight into a real redis-server (as runners on several
hosts would have left them), so that each test says exactly which runner, host and folder
hold which file; ``test_dist_cli.py`` collects what real runner processes made.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from conftest import API_KEY

from ttapi_async.cli._app import run
from ttapi_async.coordination import account_id

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 24
HOST = socket.gethostname()


def png(tag: str) -> bytes:
    return PNG + tag.encode()


class Batch:
    """A shared batch's records, written into Redis as its runners would have left them."""

    def __init__(self, url: str, namespace: str, name: str = "cats") -> None:
        self.redis = redis.Redis.from_url(url, decode_responses=True)
        self.base = f"ttapi:{{{namespace}.{account_id(API_KEY)}}}:batch:{name}"
        self.seq = 0

    def item(
        self,
        item_id: str,
        *,
        files: list[Any] | None = None,
        state: str = "done",
        out: Path | str | None = None,
        host: str = HOST,
        runner: str = "r1",
    ) -> None:
        fields = {
            "id": item_id, "seq": str(self.seq), "kind": "gpt4o", "stem": item_id,
            "params": json.dumps({"prompt": f"a cat called {item_id}"}), "state": state,
            "files": json.dumps(files or []), "out": str(out or ""), "host": host,
            "runner": runner,
        }  # fmt: skip
        self.seq += 1
        self.redis.hset(f"{self.base}:item:{item_id}", mapping=fields)
        self.redis.rpush(f"{self.base}:ids", item_id)
        self.redis.sadd(f"{self.base}:runners", runner)

    def close(self) -> None:
        self.redis.close()


@pytest.fixture
def batch(batch_redis: Any, namespace: str) -> Iterator[Batch]:
    made = Batch(batch_redis.url, namespace)
    yield made
    made.close()


@pytest.fixture
def collect(
    batch_redis: Any, namespace: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Callable[..., tuple[int, str]]:  # fmt: skip
    """Return a function running ``ttapi batch-collect --name cats --out OUT ...``:
    (exit status, stderr)."""
    monkeypatch.setenv("TTAPI_COORDINATOR", batch_redis.url)
    monkeypatch.setenv("TTAPI_COORDINATOR_NAMESPACE", namespace)

    def call(out: Path, *args: str) -> tuple[int, str]:
        capsys.readouterr()
        code = run(["--api-key", API_KEY, "batch-collect", "--name", "cats", "--out", str(out),
                    *args])  # fmt: skip
        return code, capsys.readouterr().err

    return call


def lines(out: Path) -> dict[str, dict[str, Any]]:
    records = [json.loads(x) for x in (out / "manifest.jsonl").read_text().splitlines()]
    return {r["id"]: r for r in records}


def runner_folder(root: Path, name: str, files: dict[str, bytes]) -> Path:
    folder = root / name
    for rel, data in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


def tree(root: Path) -> set[str]:
    """Return every path under ``root`` (files, folders, links), relative to it."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def test_copies_the_files_of_two_runners_and_builds_the_gallery(
    batch: Batch, collect: Any, tmp_path: Path
) -> None:
    """Two runners' folders (this host, and another host's seen through a shared mount):
    every image is copied, the manifest points at the copies, index.html shows them."""
    a = runner_folder(tmp_path, "a", {"cat-0.png": png("0"), "cat-1/1.png": png("1a"),
                                      "cat-1/2.png": png("1b")})  # fmt: skip
    b = runner_folder(tmp_path, "mnt-b", {"cat-2.png": png("2")})
    batch.item("cat-0", files=["cat-0.png"], out=a, runner="ra")
    batch.item("cat-1", files=["cat-1/1.png", "cat-1/2.png"], out=a, runner="ra")
    batch.item("cat-2", files=["cat-2.png"], out=b, host="machine-b", runner="rb")
    out = tmp_path / "all"
    code, err = collect(out)
    assert code == 0, err
    assert "4 file(s) copied, 0 already here" in err and "other hosts" not in err
    assert (out / "cat-1" / "2.png").read_bytes() == png("1b")
    assert (out / "cat-2.png").read_bytes() == png("2")
    got = lines(out)
    assert got["cat-1"]["files"] == ["cat-1/1.png", "cat-1/2.png"]
    assert got["cat-2"]["runner"] == "rb" and got["cat-2"]["host"] == "machine-b"
    assert got["cat-2"]["paths"] == [str(b / "cat-2.png")] and "not_collected" not in got["cat-2"]
    page = (out / "index.html").read_text()
    assert 'src="cat-1/2.png"' in page and 'src="cat-2.png"' in page
    assert "a cat called cat-2" in page
    assert "gallery: " in err


def test_no_gallery_writes_none(batch: Batch, collect: Any, tmp_path: Path) -> None:
    """--no-gallery: the manifest and the images, no index.html."""
    a = runner_folder(tmp_path, "a", {"cat-0.png": png("0")})
    batch.item("cat-0", files=["cat-0.png"], out=a)
    code, err = collect(tmp_path / "all", "--no-gallery")
    assert code == 0, err
    assert (tmp_path / "all" / "cat-0.png").is_file()
    assert not (tmp_path / "all" / "index.html").exists()


def test_files_on_other_hosts_are_listed_where_they_are(
    batch: Batch, collect: Any, tmp_path: Path
) -> None:
    """A folder this machine cannot see: the line says runner, host and path, one summary
    line ends the report, exit 0; --require-all makes it exit 5."""
    a = runner_folder(tmp_path, "a", {"cat-0.png": png("0")})
    batch.item("cat-0", files=["cat-0.png"], out=a, runner="ra")
    batch.item("cat-1", files=["cat-1.png"], out="/srv/far/out", host="far-away", runner="rf")
    batch.item("cat-2", files=["cat-2.png"], out="/srv/far/out", host="far-away", runner="rf")
    out = tmp_path / "all"
    code, err = collect(out)
    assert code == 0, err
    assert err.splitlines()[-1] == "2 file(s) on other hosts: 2 on 'far-away' (runner 'rf')"
    far = lines(out)["cat-1"]
    assert far["files"] == [] and (far["runner"], far["host"]) == ("rf", "far-away")
    where = {"file": "cat-1.png", "path": "/srv/far/out/cat-1.png", "reason": "elsewhere"}
    assert far["not_collected"] == [{**where, "detail": "on host 'far-away'"}]
    assert lines(out)["cat-0"]["files"] == ["cat-0.png"]
    code, err = collect(out, "--require-all")
    assert code == 5, err


def test_a_missing_file_is_reported_and_exits_5(batch: Batch, collect: Any, tmp_path: Path) -> None:
    """The runner's folder is here but the file is not (or the folder is gone): reported
    as missing, in the manifest and in one line each; exit 5."""
    a = runner_folder(tmp_path, "a", {"cat-0.png": png("0")})
    batch.item("cat-0", files=["cat-0.png", "cat-0-lost.png"], out=a)
    batch.item("cat-1", files=["cat-1.png"], out=tmp_path / "gone")
    code, err = collect(tmp_path / "all")
    assert code == 5
    assert "missing: item 'cat-0', file 'cat-0-lost.png': no such file in its folder" in err
    assert "missing: item 'cat-1', file 'cat-1.png': its folder is gone from this host" in err
    assert "2 file(s) not collected: 2 missing" in err
    got = lines(tmp_path / "all")
    assert got["cat-0"]["files"] == ["cat-0.png"]
    assert [m["reason"] for m in got["cat-0"]["not_collected"]] == ["missing"]


def test_hostile_records_never_write_outside_the_collect_folder(
    batch: Batch, collect: Any, tmp_path: Path
) -> None:
    """Names from Redis that climb out, are absolute, hidden, reserved, not images, or
    symlinks out of the runner's folder are refused with a line; a symlinked folder in
    the collect folder is not followed; nothing outside it is written."""
    secret = tmp_path / "secret"
    secret.mkdir()
    (secret / "key.png").write_bytes(png("secret"))
    a = runner_folder(tmp_path, "a", {"ok.png": png("ok"), "text.png": b"not an image",
                                      "x.png": png("x"), "d/x.png": png("d")})  # fmt: skip
    (a / "link.png").symlink_to(secret / "key.png")
    os.mkfifo(a / "fifo.png")
    out = tmp_path / "all"
    out.mkdir()
    (out / "d").symlink_to(secret, target_is_directory=True)
    hostile = ["../escape.png", "/tmp/abs.png", "sub/../../x.png", ".hidden.png",
               "manifest.jsonl", "index.html", "link.png", "text.png", "fifo.png", "d/x.png",
               "x.png/", 7, "a\\..\\x.png"]  # fmt: skip
    batch.item("evil", files=["ok.png", *hostile], out=a)
    batch.item("evil-out", files=["x.png"], out="relative/folder")
    outside = {p for p in tree(tmp_path) if not p.startswith("all")}
    code, err = collect(out)
    assert code == 5
    got = lines(out)["evil"]
    assert got["files"] == ["ok.png"]
    reasons = {str(m["file"]): m["reason"] for m in got["not_collected"]}
    assert len(reasons) == len(hostile)
    assert reasons.pop("d/x.png") == "conflict"
    assert set(reasons.values()) == {"refused"}
    assert lines(out)["evil-out"]["not_collected"][0]["reason"] == "refused"
    assert err.count("refused: item 'evil'") == len(hostile) - 1
    assert {p for p in tree(tmp_path) if not p.startswith("all")} == outside
    assert os.listdir(secret) == ["key.png"]
    assert tree(out) == {"d", "ok.png", "manifest.jsonl", "index.html"}


def test_a_second_run_copies_nothing_and_never_overwrites(
    batch: Batch, collect: Any, tmp_path: Path
) -> None:
    """Run twice: the second copies nothing (same files kept, same inodes). A different
    file under a collected name is reported as a conflict and left as it is."""
    a = runner_folder(tmp_path, "a", {"cat-0.png": png("0"), "cat-1.png": png("1")})
    batch.item("cat-0", files=["cat-0.png"], out=a)
    batch.item("cat-1", files=["cat-1.png"], out=a)
    out = tmp_path / "all"
    assert collect(out)[0] == 0
    inodes = {p: (out / p).stat().st_ino for p in ("cat-0.png", "cat-1.png")}
    code, err = collect(out)
    assert code == 0 and "0 file(s) copied, 2 already here" in err
    assert {p: (out / p).stat().st_ino for p in inodes} == inodes
    os.utime(out / "cat-0.png", ns=(0, 0))  # same bytes, another time: compared, kept
    (out / "cat-1.png").write_bytes(png("X"))  # same size, other bytes
    code, err = collect(out)
    assert code == 5
    assert "0 file(s) copied, 1 already here" in err
    assert "conflict: item 'cat-1', file 'cat-1.png'" in err
    assert (out / "cat-1.png").read_bytes() == png("X")
    assert lines(out)["cat-1"]["files"] == []


@pytest.mark.parametrize("retime", [False, True], ids=["same-time", "same-bytes"])
def test_a_file_already_here_is_skipped_without_writing(
    batch: Batch, collect: Any, tmp_path: Path, retime: bool
) -> None:
    """A second run finds the file in its folder (same size and time, or same bytes): it
    is counted as already here and nothing is written beside it, not even a temporary
    file (the no-clobber link alone would keep the file, but only after copying it)."""
    a = runner_folder(tmp_path, "a", {"cat-0/1.png": png("0")})
    batch.item("cat-0", files=["cat-0/1.png"], out=a)
    out = tmp_path / "all"
    assert collect(out)[0] == 0
    if retime:
        os.utime(out / "cat-0" / "1.png", ns=(0, 0))  # no quick check: the bytes are compared
    # A folder's time moves when a name is made in it (and again when it is removed): set
    # it far back, and any temporary file shows. (The manifest is written one folder up.)
    os.utime(out / "cat-0", ns=(10**9, 10**9))
    code, err = collect(out)
    assert code == 0 and "0 file(s) copied, 1 already here" in err
    assert (out / "cat-0").stat().st_mtime_ns == 10**9
    assert os.listdir(out / "cat-0") == ["1.png"]


def test_refuses_a_runners_own_folder(batch: Batch, collect: Any, tmp_path: Path) -> None:
    """--out holding a batch's lock or journal is a runner's folder: exit 2, one line."""
    a = runner_folder(tmp_path, "a", {"cat-0.png": png("0"), ".ttapi-batch.lock": b""})
    batch.item("cat-0", files=["cat-0.png"], out=a)
    code, err = collect(a)
    assert code == 2 and "collect into a folder of its own" in err
    assert not (a / "manifest.jsonl").exists()


def test_an_unknown_batch_is_one_line(collect: Any, tmp_path: Path) -> None:
    """No batch under the name: exit 1, and no folder made."""
    code, err = collect(tmp_path / "all")
    assert code == 1 and "no shared batch named 'cats'" in err
    assert not (tmp_path / "all").exists()


def test_redis_down_is_exit_4(
    collect: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No Redis at the URL: one error line, exit 4, and no manifest."""
    from _redis_server import free_port

    monkeypatch.setenv("TTAPI_COORDINATOR", f"redis://127.0.0.1:{free_port()}/0")
    code, err = collect(tmp_path / "all")
    assert code == 4
    errors = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: Redis unreachable")
    assert not (tmp_path / "all" / "manifest.jsonl").exists()

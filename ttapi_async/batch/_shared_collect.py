"""``batch-collect``: one folder for a shared batch: its manifest, the images it can reach.

Each item's record says which runner, host and folder (``out``) hold its files. Collect
writes one ``manifest.jsonl`` for the whole batch into its own folder and copies into it
every file it can read from this machine: the recorded folder exists here (the same host,
or a shared mount). A file it cannot reach is listed in its item's line as where it is.

What a record names is untrusted input (anyone who can write to the Redis can write it):
a file name is taken only when it is a plain relative image name (no absolute path, no
``..``, no hidden or reserved name, an image suffix); its source must stay inside the
recorded folder once symlinks are resolved, be a regular file of at most
``MAX_DOWNLOAD_BYTES`` and start like an image; its copy goes through no symlink and
replaces nothing: a temporary file beside it, then a hard link (no-clobber) or a rename.
A name already collected is skipped when it holds the same bytes (same size and
modification time, as rsync's quick check, or equal bytes) and reported, never
overwritten, when it differs.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import json
import os
import socket
import stat
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any, Final

import attrs

from .._files import MAX_DOWNLOAD_BYTES, atomic_writer
from .._params import sniff_image_format
from .._redact import redact
from ._errors import OutputFolderError
from ._folder import LOCK_NAME
from ._gallery import GALLERY_NAME, write_gallery
from ._outputs import MANIFEST_NAME, manifest_line
from ._shared import Store, row_of
from ._shared_plan import iter_items
from ._states import DONE, JOURNAL_NAME

__all__ = ["CollectReport", "NotCollected", "check_collect_folder", "collect_batch"]

#: Why a file was not collected: its folder is not on this machine; the folder is here but
#: the file is not; the record's name or the file is not a safe image; a different file
#: holds its name in the collect folder.
ELSEWHERE: Final = "elsewhere"
MISSING: Final = "missing"
REFUSED: Final = "refused"
CONFLICT: Final = "conflict"

_IMAGE_SUFFIXES: Final = frozenset({".png", ".jpg", ".jpeg", ".webp"})
_RESERVED: Final = frozenset(
    n.casefold() for n in (MANIFEST_NAME, GALLERY_NAME, JOURNAL_NAME, LOCK_NAME)
)
_CHUNK: Final = 1 << 20
# No symlink at the last step, and a FIFO opens without waiting (then refused by fstat).
_OPEN: Final = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
#: Items whose files are copied at once (each on a worker thread).
_WINDOW: Final = 16
#: Problems (missing, refused, conflict) kept with their details for the report.
_KEEP: Final = 20

_FIELDS: Final = (
    "id", "seq", "kind", "params", "stem", "state", "job_id", "submits", "error", "files",
    "quota", "usage", "started_at", "submitted_at", "finished_at", "runner", "out", "host",
)  # fmt: skip


@attrs.frozen
class NotCollected:
    """One file of an item that is not in the collect folder, and why."""

    item: str
    file: str
    reason: str
    detail: str
    runner: str | None = None
    host: str | None = None
    #: its full path on ``host`` (None when the record's name was refused)
    path: str | None = None

    def record(self) -> dict[str, Any]:
        """Return it as the manifest lists it."""
        return {"file": self.file, "path": self.path, "reason": self.reason, "detail": self.detail}

    def line(self) -> str:
        """Return one line for a person (names from Redis are quoted with ``repr``)."""
        return f"{self.reason}: item {self.item!r}, file {self.file!r}: {self.detail}"


@attrs.define
class CollectReport:
    """What ``collect_batch`` did: lines written, files copied, files left where they are."""

    out_dir: Path
    items: int = 0
    copied: int = 0
    present: int = 0
    #: files not collected, per reason
    counts: Counter[str] = attrs.field(factory=Counter)
    #: files on other hosts, per (runner, host)
    elsewhere: Counter[tuple[str, str]] = attrs.field(factory=Counter)
    #: the first few files missing, refused or in conflict
    problems: list[NotCollected] = attrs.field(factory=list)
    gallery: Path | None = None

    @property
    def not_here(self) -> int:
        """Return how many files of the batch are not in the collect folder."""
        return sum(self.counts.values())

    @property
    def broken(self) -> int:
        """Return how many files are missing, refused or in conflict (not merely elsewhere)."""
        return self.not_here - self.counts[ELSEWHERE]

    def note(self, miss: NotCollected) -> None:
        """Count one file not collected."""
        self.counts[miss.reason] += 1
        if miss.reason == ELSEWHERE:
            self.elsewhere[(miss.runner or "?", miss.host or "?")] += 1
        elif len(self.problems) < _KEEP:
            self.problems.append(miss)

    def lines(self) -> list[str]:
        """Return the report as a few lines of text, the files on other hosts last."""
        out = [
            f"{self.out_dir / MANIFEST_NAME}: {self.items} item(s); "
            f"{self.copied} file(s) copied, {self.present} already here"
        ]
        out += [miss.line() for miss in self.problems]
        if self.broken > len(self.problems):
            out.append(f"... and {self.broken - len(self.problems)} more (see the manifest)")
        if self.broken:
            shown = ", ".join(f"{n} {r}" for r, n in sorted(self.counts.items()) if r != ELSEWHERE)
            out.append(f"{self.broken} file(s) not collected: {shown}")
        if self.gallery is not None:
            out.append(f"gallery: {self.gallery}")
        if self.elsewhere:
            where = ", ".join(
                f"{n} on {host!r} (runner {runner!r})"
                for (runner, host), n in sorted(self.elsewhere.items())
            )
            out.append(f"{self.counts[ELSEWHERE]} file(s) on other hosts: {where}")
        return out


def _check_name(name: object) -> str | None:
    """Return why a recorded file name may not be collected, or None when it may."""
    if not isinstance(name, str) or not name:
        return "not a file name"
    if "\0" in name or "\\" in name or name.startswith("/") or os.path.isabs(name):
        return "not a relative path"
    parts = PurePosixPath(name).parts
    if any(p in ("", ".", "..") for p in name.split("/")):
        return "a path with '..' or an empty part"
    if any(p.startswith(".") for p in parts):
        return "a hidden name"
    if parts[0].casefold() in _RESERVED:
        return "a name the collect folder keeps for itself"
    if PurePosixPath(name).suffix.lower() not in _IMAGE_SUFFIXES:
        return "not an image name (.png, .jpg, .jpeg, .webp)"
    return None


def _inside(path: str, root: str) -> bool:
    with contextlib.suppress(ValueError):
        return os.path.commonpath([path, root]) == root
    return False


@attrs.frozen
class _Item:
    """What one record says about its files."""

    id: str
    runner: str | None
    host: str | None
    out: str | None
    files: tuple[object, ...]


class _Collector:
    """Copies one item's files into ``dest`` (a worker thread's job: blocking file calls)."""

    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.dest_real = os.path.realpath(dest)
        self.host = socket.gethostname()
        self._folders: dict[str, str | None] = {}

    def folder(self, out: str) -> str | None:
        """Return the recorded folder's real path when this machine can read it."""
        if out not in self._folders:
            real = os.path.realpath(out)
            self._folders[out] = real if os.path.isdir(real) else None
        return self._folders[out]

    def item(self, item: _Item) -> tuple[list[str], list[NotCollected], list[str]]:
        """Return (names collected, files not collected, outcomes of the collected)."""
        got: list[str] = []
        misses: list[NotCollected] = []
        outcomes: list[str] = []
        for name in item.files:
            shown = name if isinstance(name, str) else repr(name)
            why = _check_name(name)
            if why is None and (item.out is None or not os.path.isabs(item.out)):
                why = "the record names no absolute folder"
            if why is not None:
                misses.append(NotCollected(item.id, shown, REFUSED, why, item.runner, item.host))
                continue
            assert isinstance(name, str) and item.out is not None
            path = os.path.join(item.out, name)
            try:
                folder = self.folder(item.out)
                if folder is None:
                    if item.host != self.host:
                        raise _Skip(ELSEWHERE, f"on host {item.host!r}")
                    raise _Skip(MISSING, "its folder is gone from this host")
                outcome = self.file(folder, name)
            except _Skip as skip:
                misses.append(NotCollected(item.id, name, skip.reason, skip.detail,
                                           item.runner, item.host, path))  # fmt: skip
                continue
            except OSError as exc:
                misses.append(NotCollected(item.id, name, MISSING, _os_text(exc),
                                           item.runner, item.host, path))  # fmt: skip
                continue
            got.append(name)
            outcomes.append(outcome)
        return got, misses, outcomes

    def file(self, folder: str, name: str) -> str:
        """Copy ``folder/name`` to ``dest/name``; return "copied" or "present"."""
        source = os.path.join(folder, name)
        real = os.path.realpath(source)
        if not _inside(real, folder):
            raise _Skip(REFUSED, "a symlink out of the runner's folder")
        try:
            fd = os.open(real, _OPEN)
        except FileNotFoundError:
            raise _Skip(MISSING, "no such file in its folder") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _Skip(REFUSED, "a symlink") from None
            raise
        with os.fdopen(fd, "rb") as src:
            info = os.fstat(src.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise _Skip(REFUSED, "not a regular file")
            if info.st_size > MAX_DOWNLOAD_BYTES:
                raise _Skip(REFUSED, f"larger than {MAX_DOWNLOAD_BYTES} bytes")
            if sniff_image_format(src.read(16)) is None:
                raise _Skip(REFUSED, "not a PNG, JPEG or WebP image")
            target = self._target(name)
            if os.path.lexists(target):
                return self._same(src, info, target)
            return self._copy(src, info, target)

    def _target(self, name: str) -> Path:
        # Every folder on the way is made here or checked: none may be a symlink.
        parent = self.dest
        for part in PurePosixPath(name).parts[:-1]:
            parent = parent / part
            if parent.is_symlink():
                raise _Skip(CONFLICT, f"{part!r} in the collect folder is a symlink")
            try:
                parent.mkdir(exist_ok=True)
            except FileExistsError:
                raise _Skip(CONFLICT, f"{part!r} in the collect folder is not a folder") from None
        if not _inside(os.path.realpath(parent), self.dest_real):
            raise _Skip(REFUSED, "its copy would land outside the collect folder")
        return parent / PurePosixPath(name).name

    def _same(self, src: Any, info: os.stat_result, target: Path) -> str:
        have = os.lstat(target)
        if not stat.S_ISREG(have.st_mode):
            raise _Skip(CONFLICT, "its name in the collect folder is not a regular file")
        if (have.st_dev, have.st_ino) == (info.st_dev, info.st_ino):
            return "present"  # the very file (a hard link, or collected into its folder)
        if have.st_size != info.st_size:
            raise _Skip(CONFLICT, "a different file has its name in the collect folder")
        if have.st_mtime_ns == info.st_mtime_ns:
            return "present"
        src.seek(0)
        with open(target, "rb") as fh:
            while True:
                a, b = src.read(_CHUNK), fh.read(_CHUNK)
                if a != b:
                    raise _Skip(CONFLICT, "a different file has its name in the collect folder")
                if not a:
                    return "present"

    def _copy(self, src: Any, info: os.stat_result, target: Path) -> str:
        src.seek(0)
        tmp = target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}.part"
        try:
            with open(tmp, "xb") as out:
                left = MAX_DOWNLOAD_BYTES + 1
                while chunk := src.read(min(_CHUNK, left)):
                    out.write(chunk)
                    left -= len(chunk)
                if left <= 0:
                    raise _Skip(REFUSED, f"larger than {MAX_DOWNLOAD_BYTES} bytes")
            # The source's times: a second run sees the same size and time, and skips it.
            os.utime(tmp, ns=(info.st_atime_ns, info.st_mtime_ns))
            try:
                os.link(tmp, target)  # fails rather than replace what a racing run put there
            except FileExistsError:
                src.seek(0)
                return self._same(src, info, target)
            except OSError:
                os.replace(tmp, target)  # a filesystem without hard links
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return "copied"


class _Skip(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def _os_text(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _files_of(raw: str | None) -> tuple[object, ...]:
    if not raw:
        return ()
    try:
        value = json.loads(raw)
    except ValueError:
        return (raw,)
    return tuple(value) if isinstance(value, list) else (value,)


def check_collect_folder(out_dir: Path) -> None:
    """Raise ``OutputFolderError`` when ``out_dir`` is a batch's own folder (a runner's)."""
    for name in (LOCK_NAME, JOURNAL_NAME):
        if os.path.lexists(out_dir / name):
            raise OutputFolderError(
                f"{out_dir} is a batch's output folder (it holds {name}): collect into a "
                "folder of its own"
            )


async def collect_batch(store: Store, out_dir: Path, *, gallery: bool = False) -> CollectReport:
    """Write ``out_dir/manifest.jsonl`` for the whole batch, copying the files it can reach.

    One line per item, in input order: the local manifest's record, with ``files`` the
    names collected into ``out_dir`` (relative to it, as a local manifest's), plus
    ``runner``, ``host`` and ``out`` (where the runner wrote them), ``paths`` (their full
    paths there) and, when some are not in ``out_dir``, ``not_collected`` (each file's
    name, path, reason and detail). ``gallery=True`` then writes ``index.html`` over the
    collected files.
    Raise ``OutputFolderError`` when ``out_dir`` is a batch's output folder.
    """
    out_dir = Path(out_dir)
    check_collect_folder(out_dir)
    await asyncio.to_thread(out_dir.mkdir, parents=True, exist_ok=True)
    collector = _Collector(out_dir)
    report = CollectReport(out_dir)
    with atomic_writer(out_dir / MANIFEST_NAME) as fh:
        window: list[Mapping[str, str]] = []
        async for values in iter_items(store, _FIELDS):
            fields = {k: v for k, v in zip(_FIELDS, values, strict=True) if v is not None}
            if "id" not in fields:
                continue  # removed meanwhile (a --force re-plan)
            window.append(fields)
            if len(window) >= _WINDOW:
                await _write(window, fh, collector, report)
                window = []
        await _write(window, fh, collector, report)
    if gallery:
        report.gallery = await asyncio.to_thread(write_gallery, out_dir)
    return report


async def _write(
    window: Sequence[Mapping[str, str]], fh: Any, collector: _Collector, report: CollectReport
) -> None:
    items = [
        _Item(
            f["id"], f.get("runner") or None, f.get("host") or None, f.get("out") or None,
            _files_of(f.get("files")) if f.get("state") == DONE else (),
        )
        for f in window
    ]  # fmt: skip
    done = await asyncio.gather(*(asyncio.to_thread(collector.item, i) for i in items))
    for fields, item, (got, misses, outcomes) in zip(window, items, done, strict=True):
        line = _line(fields, item)
        line["files"] = got
        if misses:
            line["not_collected"] = [m.record() for m in misses]
        text = redact(json.dumps(line, ensure_ascii=False, separators=(",", ":")))
        fh.write((text + "\n").encode("utf-8", "backslashreplace"))
        report.items += 1
        report.copied += outcomes.count("copied")
        report.present += outcomes.count("present")
        for miss in misses:
            report.note(miss)


def _line(fields: Mapping[str, str], item: _Item) -> dict[str, Any]:
    try:
        line = manifest_line(row_of(fields), Path("."))
    except (KeyError, TypeError, ValueError):
        # A record this version cannot read: listed, with what it says about itself.
        line = {"id": item.id, "state": fields.get("state"), "error": "unreadable record"}
    safe = [n for n in item.files if _check_name(n) is None]
    line.update(
        runner=item.runner,
        host=item.host,
        out=item.out,
        paths=[os.path.join(item.out, str(n)) for n in safe] if item.out else [],
    )
    return line

"""``index.html``: a contact sheet of what a batch made, one static file beside the images.

Built from ``manifest.jsonl`` and, when the folder still has it, the journal (whose
states are current and which also knows the items not finished yet). The page needs no
server and no script: it opens from disk, thumbnails load lazily as they scroll into
view, and the filter by state is radio buttons and CSS.
"""

from __future__ import annotations

import asyncio
import html
import json
import logging
import os
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import attrs

from ._outputs import MANIFEST_NAME
from ._states import COLUMNS, DONE, FAILED, JOURNAL_NAME, UNKNOWN, ItemRow

__all__ = [
    "GALLERY_NAME",
    "GALLERY_STATES",
    "GalleryItem",
    "GalleryWriter",
    "gallery_items",
    "render_gallery",
    "write_gallery",
]

logger = logging.getLogger("ttapi_async")

GALLERY_NAME: Final = "index.html"
PENDING: Final = "pending"
#: The states the page shows; the journal's in-flight states all show as pending.
GALLERY_STATES: Final = (DONE, FAILED, UNKNOWN, PENDING)
_SHOWN = {DONE: DONE, FAILED: FAILED, UNKNOWN: UNKNOWN}


@attrs.frozen
class GalleryItem:
    """One item of the contact sheet."""

    id: str
    state: str
    prompt: str = ""
    files: tuple[str, ...] = ()
    error: str | None = None
    kind: str | None = None


def _item(record: Mapping[str, Any]) -> GalleryItem:
    params = record.get("params")
    prompt = params.get("prompt") if isinstance(params, Mapping) else None
    files = record.get("files") or ()
    error = record.get("error")
    return GalleryItem(
        id=str(record.get("id", "")),
        state=_SHOWN.get(str(record.get("state")), PENDING),
        prompt=prompt if isinstance(prompt, str) else "",
        files=tuple(str(f) for f in files if isinstance(f, str)),
        error=str(error) if error is not None else None,
        kind=str(record["kind"]) if record.get("kind") is not None else None,
    )


def _manifest_records(path: Path) -> dict[str, Mapping[str, Any]]:
    records: dict[str, Mapping[str, Any]] = {}
    try:
        fh = open(path, encoding="utf-8")  # noqa: SIM115
    except FileNotFoundError:
        return records
    with fh:
        for line in fh:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a line cut by a crash mid-write: the journal still knows it
            if isinstance(record, dict) and "id" in record:
                # During a run lines are appended as items settle: the last one wins.
                records[str(record["id"])] = record
    return records


def _journal_rows(path: Path) -> Iterator[ItemRow]:
    # Read-only and outside the Journal class: a running batch owns the journal (and may
    # hold its write lock); a reader in WAL mode neither waits for it nor blocks it.
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as exc:
        raise ValueError(f"cannot read the journal {path}: {exc}") from None
    try:
        yield from (
            ItemRow.from_db(r) for r in conn.execute(f"SELECT {COLUMNS} FROM items ORDER BY seq")
        )
    except sqlite3.Error as exc:
        raise ValueError(f"cannot read the journal {path}: {exc}") from None
    finally:
        conn.close()


def gallery_items(out_dir: str | Path) -> list[GalleryItem]:
    """Return the items of the batch in ``out_dir``, in input order where the journal knows it."""
    folder = Path(out_dir)
    records = _manifest_records(folder / MANIFEST_NAME)
    if not (folder / JOURNAL_NAME).exists():
        return [_item(r) for r in records.values()]
    items = []
    for row in _journal_rows(folder / JOURNAL_NAME):
        items.append(
            _item(
                {
                    "id": row.id,
                    "kind": row.kind,
                    "state": row.state,
                    "params": row.params,
                    "files": list(row.files),
                    "error": row.error,
                }
            )
        )
        records.pop(row.id, None)
    # Items the manifest has and the journal lost (an input changed with --force): kept.
    items.extend(_item(r) for r in records.values())
    return items


_CSS = """
:root { color-scheme: light dark; --card: 220px; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 1rem 1.5rem; }
h1 { font-size: 1.3rem; margin: 0 0 .5rem; }
.filters { position: absolute; opacity: 0; pointer-events: none; }
nav { margin: .5rem 0 1rem; display: flex; gap: .5rem; flex-wrap: wrap; }
nav label { border: 1px solid #8888; border-radius: 1rem; padding: .15rem .8rem; cursor: pointer; }
main { display: grid; grid-template-columns: repeat(auto-fill, minmax(var(--card), 1fr));
       gap: 1rem; }
figure { margin: 0; border: 1px solid #8884; border-radius: .5rem; overflow: hidden; }
figure .images { display: flex; aspect-ratio: 1; background: #8882; }
figure .images a { flex: 1; min-width: 0; }
figure img { width: 100%; height: 100%; object-fit: cover; display: block; }
figure .placeholder { margin: auto; opacity: .6; }
figcaption { padding: .5rem; overflow-wrap: anywhere; }
.id { font-family: ui-monospace, monospace; font-size: .8rem; opacity: .75; }
.state { float: right; font-size: .75rem; border-radius: .5rem; padding: 0 .4rem; }
.done .state { background: #2a73; } .failed .state { background: #c333; }
.unknown .state { background: #c803; } .pending .state { background: #8883; }
.error { color: #c33; font-family: ui-monospace, monospace; font-size: .8rem;
         white-space: pre-wrap; margin: .3rem 0 0; }
.prompt { margin: .3rem 0 0; }
"""


def _filter_css() -> str:
    rules = [
        f"#show-{state}:checked ~ main figure:not(.{state}) {{ display: none; }}\n"
        f"#show-{state}:checked ~ nav label[for=show-{state}] {{ background: #8884; }}"
        for state in GALLERY_STATES
    ]
    rules.append("#show-all:checked ~ nav label[for=show-all] { background: #8884; }")
    return "\n".join(rules)


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _href(path: str) -> str:
    # Relative to the page; quoted, so a name with "#", "?" or ":" stays a file name.
    return _e(quote(path.replace(os.sep, "/")))


def _card(item: GalleryItem) -> str:
    caption = _e(item.prompt) if item.prompt else "<i>(no prompt)</i>"
    if item.files:
        images = "".join(
            f'<a href="{_href(f)}"><img src="{_href(f)}" loading="lazy" decoding="async" '
            f'alt="{_e(item.prompt)}"></a>'
            for f in item.files
        )
    else:
        images = f'<span class="placeholder">{_e(item.state)}</span>'
    error = f'<p class="error">{_e(item.error)}</p>' if item.error else ""
    return (
        f'<figure class="{_e(item.state)}" id="item-{_e(quote(item.id, safe=""))}">'
        f'<div class="images">{images}</div>'
        f'<figcaption><span class="state">{_e(item.state)}</span>'
        f'<span class="id">{_e(item.id)}</span>'
        f'<p class="prompt">{caption}</p>{error}</figcaption></figure>'
    )


def render_gallery(items: Sequence[GalleryItem], *, title: str = "ttapi batch") -> str:
    """Return the page for ``items``: every string in it is escaped."""
    counts = dict.fromkeys(GALLERY_STATES, 0)
    for item in items:
        counts[item.state] = counts.get(item.state, 0) + 1
    radios = ['<input type="radio" class="filters" name="show" id="show-all" checked>']
    labels = [f'<label for="show-all">all ({len(items)})</label>']
    for state in GALLERY_STATES:
        radios.append(f'<input type="radio" class="filters" name="show" id="show-{state}">')
        labels.append(f'<label for="show-{state}">{state} ({counts[state]})</label>')
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title>",
        f"<style>{_CSS}{_filter_css()}</style></head><body>",
        f"<h1>{_e(title)}</h1><p>{len(items)} items, written {stamp}.</p>",
        *radios,
        f"<nav>{''.join(labels)}</nav>",
        "<main>",
        *(_card(item) for item in items),
        "</main></body></html>",
        "",
    ]
    return "\n".join(parts)


def write_gallery(out_dir: str | Path, items: Iterable[GalleryItem] | None = None) -> Path:
    """Write ``index.html`` into ``out_dir`` atomically (from its manifest and journal)."""
    folder = Path(out_dir)
    listed = list(items) if items is not None else gallery_items(folder)
    page = render_gallery(listed, title=f"ttapi batch: {folder.resolve().name}")
    target = folder / GALLERY_NAME
    # A name of our own rather than mkstemp: the page gets the umask's mode, like the images.
    tmp = folder / f".{GALLERY_NAME}.{uuid.uuid4().hex}.part"
    try:
        with open(tmp, "x", encoding="utf-8") as fh:
            fh.write(page)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target


class GalleryWriter:
    """Keep ``index.html`` current during a run: ``settled()`` per item, ``aclose()`` at the end.

    Rewriting reads every item, so it happens at most every ``interval`` seconds, one write
    at a time, on a worker thread: the event loop never waits for it. A failed rewrite is
    logged; the page is rebuilt by the next one (or by ``ttapi gallery DIR``).
    """

    def __init__(
        self,
        out_dir: str | Path,
        *,
        interval: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.interval = interval
        self._clock = clock
        self._last: float | None = None
        self._writing: asyncio.Future[Path] | None = None

    def settled(self) -> bool:
        """Note that an item settled; start a rewrite if one is due. Return True if started."""
        if self._writing is not None and not self._writing.done():
            return False
        now = self._clock()
        if self._last is not None and now - self._last < self.interval:
            return False
        self._last = now
        self._writing = asyncio.get_running_loop().run_in_executor(
            None, write_gallery, self.out_dir
        )
        self._writing.add_done_callback(_log_failure)
        return True

    async def aclose(self) -> Path:
        """Wait for a rewrite in progress, then write the final page."""
        writing, self._writing = self._writing, None
        if writing is not None:
            await asyncio.gather(writing, return_exceptions=True)
        return await asyncio.get_running_loop().run_in_executor(None, write_gallery, self.out_dir)


def _log_failure(future: asyncio.Future[Path]) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.warning("could not rewrite the gallery: %s", future.exception())

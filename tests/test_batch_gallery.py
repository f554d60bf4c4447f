"""The gallery: ``index.html``, a contact sheet of an output folder, parsed back."""

from __future__ import annotations

import html
import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import attrs
import pytest

from ttapi_async._schedule import PollSchedule
from ttapi_async.batch import BatchRequest, BatchRunner
from ttapi_async.batch._gallery import (
    GalleryItem,
    GalleryWriter,
    gallery_items,
    render_gallery,
    write_gallery,
)
from ttapi_async.testing import Duration, FakeTTAPI

SCRIPT_PROMPT = '<script>alert("x")</script> & a "quoted" cat'


@attrs.define
class Card:
    """One ``<figure>`` as the page shows it."""

    state: str
    anchor: str
    images: list[str] = attrs.Factory(list)
    lazy: list[bool] = attrs.Factory(list)
    item_id: str = ""
    prompt: str = ""
    error: str = ""


class GalleryParser(HTMLParser):
    """Collect the cards, every tag name, and the filter radios of a gallery page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.cards: list[Card] = []
        self.tags: list[str] = []
        self.radios: list[str] = []
        self._field: str | None = None

    def handle_starttag(self, tag: str, attrs_: list[tuple[str, str | None]]) -> None:
        a = dict(attrs_)
        self.tags.append(tag)
        if tag == "figure":
            self.cards.append(Card(state=a.get("class") or "", anchor=a.get("id") or ""))
        elif tag == "img" and self.cards:
            self.cards[-1].images.append(a.get("src") or "")
            self.cards[-1].lazy.append(a.get("loading") == "lazy")
        elif tag == "input" and a.get("type") == "radio":
            self.radios.append(a.get("id") or "")
        elif self.cards and a.get("class") in ("id", "prompt", "error"):
            self._field = a["class"]

    def handle_endtag(self, tag: str) -> None:
        if tag in ("span", "p"):
            self._field = None

    def handle_data(self, data: str) -> None:
        if self._field == "id":
            self.cards[-1].item_id += data
        elif self._field == "prompt":
            self.cards[-1].prompt += data
        elif self._field == "error":
            self.cards[-1].error += data


def parse(page: str) -> GalleryParser:
    parser = GalleryParser()
    parser.feed(page)
    parser.close()
    return parser


async def _run_batch(out: Path) -> None:
    """Run a small batch with done and failed items (a banned word is refused with 400)."""
    requests = [
        BatchRequest("cat-1", "generate", {"prompt": "a cat", "model": "gpt-image-1"}),
        BatchRequest("evil", "generate", {"prompt": SCRIPT_PROMPT, "model": "gpt-image-1"}),
        BatchRequest("bad", "generate", {"prompt": "a forbidden cat", "model": "gpt-image-1"}),
        BatchRequest("fox", "gpt4o", {"prompt": "a fox"}),
        BatchRequest("two", "generate", {"prompt": "two dogs", "model": "gpt-image-1", "n": 2}),
    ]
    async with (
        FakeTTAPI(time_scale=0.002, job_duration=Duration.fixed(5), banned_words="forbidden") as f,
        f.client() as client,
    ):
        client.watcher.configure(schedule=PollSchedule().scaled(0.002), max_per_second=None)
        async for _ in BatchRunner(client, out).run(requests):
            pass


async def test_every_done_item_shows_its_images_and_failed_ones_their_error(
    tmp_path: Path,
) -> None:
    """After a real batch, each done item's files are lazy images and a failure shows its error."""
    await _run_batch(tmp_path)
    page = write_gallery(tmp_path).read_text(encoding="utf-8")
    cards = {c.item_id: c for c in parse(page).cards}
    assert set(cards) == {"cat-1", "evil", "bad", "fox", "two"}
    manifest = [json.loads(x) for x in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    for record in manifest:
        card = cards[record["id"]]
        assert card.state == record["state"]
        if record["state"] == "done":
            assert card.images == record["files"] and all(card.lazy)
            assert all((tmp_path / src).is_file() for src in card.images)
        else:
            assert card.error and card.error == record["error"]
    assert cards["bad"].state == "failed" and not cards["bad"].images
    assert len(cards["two"].images) == 2


async def test_a_script_prompt_stays_text(tmp_path: Path) -> None:
    """A prompt holding ``<script>`` is shown as text: the page has no script element."""
    await _run_batch(tmp_path)
    parsed = parse(write_gallery(tmp_path).read_text(encoding="utf-8"))
    assert "script" not in parsed.tags
    evil = next(c for c in parsed.cards if c.item_id == "evil")
    assert evil.prompt == SCRIPT_PROMPT


def test_hostile_strings_everywhere_are_escaped() -> None:
    """Ids, prompts, errors and file names with markup or quotes never become markup."""
    hostile = '"><img src=x onerror=alert(1)><script>x</script>'
    items = [
        GalleryItem(hostile, "done", prompt=hostile, files=(f"{hostile}.png", "a b#c?.png")),
        GalleryItem("f", "failed", prompt="p", error=hostile),
    ]
    parsed = parse(render_gallery(items, title=hostile))
    assert "script" not in parsed.tags
    assert parsed.tags.count("img") == 2
    done, failed = parsed.cards
    assert done.item_id == hostile and done.prompt == hostile
    assert done.images[1] == "a%20b%23c%3F.png"
    assert failed.error == hostile


def test_manifest_alone_gives_every_state_and_the_filters(tmp_path: Path) -> None:
    """Without a journal, the manifest's last line per item decides; unknown items show errors."""
    lines: list[dict[str, Any]] = [
        {"id": "a", "state": "failed", "params": {"prompt": "first try"}, "error": "boom"},
        {"id": "b", "state": "unknown", "params": {"prompt": "b"}, "error": "timed out"},
        {"id": "a", "state": "done", "params": {"prompt": "a"}, "files": ["a.png"]},
        {"id": "c", "state": "submitted", "params": {"prompt": "c"}},
    ]
    (tmp_path / "manifest.jsonl").write_text(
        "".join(json.dumps(x) + "\n" for x in lines) + '{"id": "cut by a cra'
    )
    parsed = parse(write_gallery(tmp_path).read_text(encoding="utf-8"))
    states = {c.item_id: (c.state, c.error) for c in parsed.cards}
    assert states == {"a": ("done", ""), "b": ("unknown", "timed out"), "c": ("pending", "")}
    assert parsed.radios == ["show-all", "show-done", "show-failed", "show-unknown", "show-pending"]


async def test_journal_adds_pending_items(tmp_path: Path) -> None:
    """Items the journal knows but that have not finished appear as pending, in input order."""
    from ttapi_async.batch import Journal

    journal = Journal.open(tmp_path)
    try:
        journal.sync_input([BatchRequest(f"i{n}", "gpt4o", {"prompt": f"p{n}"}) for n in range(3)])
    finally:
        journal.close()
    items = gallery_items(tmp_path)
    assert [(i.id, i.state, i.prompt) for i in items] == [
        ("i0", "pending", "p0"),
        ("i1", "pending", "p1"),
        ("i2", "pending", "p2"),
    ]


def _temporaries(folder: Path) -> list[Path]:
    return list(folder.glob(".index.html.*"))


async def test_writer_rewrites_at_most_once_per_interval(tmp_path: Path) -> None:
    """GalleryWriter.settled() writes the first time, then only once the interval has passed."""
    now = [100.0]
    writer = GalleryWriter(tmp_path, interval=5.0, clock=lambda: now[0])
    assert writer.settled() is True
    assert writer.settled() is False  # one write at a time
    await writer._writing  # type: ignore[misc]
    assert (tmp_path / "index.html").is_file()
    now[0] = 104.9
    assert writer.settled() is False
    now[0] = 105.0
    assert writer.settled() is True
    assert (await writer.aclose()).name == "index.html"
    assert not _temporaries(tmp_path)


async def test_a_failed_rewrite_is_logged_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A rewrite that cannot write (the folder is gone) logs a warning; the run goes on."""
    writer = GalleryWriter(tmp_path / "gone")
    assert writer.settled() is True
    with pytest.raises(OSError):
        await writer.aclose()
    assert "could not rewrite the gallery" in caplog.text


async def test_the_runner_leaves_a_current_page(tmp_path: Path) -> None:
    """After a batch, index.html lists every item in its final state, written by the runner."""
    await _run_batch(tmp_path)
    cards = {c.item_id: c.state for c in parse((tmp_path / "index.html").read_text()).cards}
    assert cards == {
        "cat-1": "done",
        "evil": "done",
        "bad": "failed",
        "fox": "done",
        "two": "done",
    }


@pytest.mark.parametrize("mode", [0o022, 0o077])
def test_page_mode_follows_the_umask(tmp_path: Path, mode: int) -> None:
    """index.html gets the mode a plain file would (the images' mode), not mkstemp's 600."""
    import os

    old = os.umask(mode)
    try:
        path = write_gallery(tmp_path, [])
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mode


def test_reading_does_not_wait_for_a_batch_holding_the_journal(tmp_path: Path) -> None:
    """The page is built while another connection holds the journal's write lock."""
    from ttapi_async.batch import Journal

    journal = Journal.open(tmp_path)
    try:
        journal.sync_input([BatchRequest("i0", "gpt4o", {"prompt": "p0"})])
        journal._conn.execute("BEGIN IMMEDIATE")
        try:
            assert [i.id for i in gallery_items(tmp_path)] == ["i0"]
        finally:
            journal._conn.execute("ROLLBACK")
    finally:
        journal.close()


CHROMIUM = Path("/usr/bin/chromium")
# Written in the load handler: the window's load event waits for every eager image to load
# or fail, and --dump-dom prints the DOM after it. A broken image has naturalWidth 0.
_PROBE = """
<pre id="probe-result"></pre>
<script>
window.addEventListener("load", () => {
  const out = [...document.images].map(img => [img.getAttribute("src"), img.naturalWidth]);
  document.getElementById("probe-result").textContent = JSON.stringify(out);
});
</script>
"""


@pytest.mark.skipif(not CHROMIUM.exists(), reason="headless Chromium is not installed")
async def test_every_thumbnail_decodes_in_chromium(tmp_path: Path) -> None:
    """Headless Chromium loads the page from disk and decodes every one of its images."""
    import asyncio
    import re

    out = tmp_path / "out"
    await _run_batch(out)
    page = write_gallery(out).read_text(encoding="utf-8")
    expected = [c.images for c in parse(page).cards]
    # A control that must fail, so the probe is known to see a broken image.
    # Eager in the probe's copy only, so that "load" covers every image, scrolled to or not.
    probe = page.replace('loading="lazy"', 'loading="eager"')
    probe = probe.replace("</body>", '<img src="missing.png">' + _PROBE + "</body>")
    (out / "probe.html").write_text(probe, encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        (out / "probe.html").as_uri(),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        dom, _ = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    found = re.search(r'<pre id="probe-result">(.*?)</pre>', dom.decode())
    assert found is not None, dom[-2000:]
    results = json.loads(html.unescape(found.group(1)))
    assert results[-1] == ["missing.png", 0]
    decoded = results[:-1]
    assert [src for src, _ in decoded] == [src for images in expected for src in images]
    assert decoded and all(width > 0 for _, width in decoded)

"""The batch spending cap: the verdict table, the runner's hook, and ``ttapi batch``'s flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_batch_runner import collect, fake_and_client, jobs

from ttapi_async._spent import Spending
from ttapi_async.batch import BatchRequest, BatchRunner
from ttapi_async.batch._budget import Budget, Verdict, verdict
from ttapi_async.cli._app import FAKE_SETTINGS, cli

GO, WAIT, STOP = Verdict.GO, Verdict.WAIT, Verdict.STOP


@pytest.mark.parametrize(
    ("cap", "spent", "finished", "in_flight", "expected"),
    [
        (None, 10**9, 1, 500, GO),  # no cap
        (10, 0, 0, 0, GO),  # the first item: the probe
        (10, 0, 0, 1, WAIT),  # cost unknown: one probe at a time
        (10, 10, 5, 0, STOP),  # spent reached the cap
        (10, 12, 5, 3, STOP),  # ... or passed it
        (10, 2, 1, 0, GO),  # 2 + 1 * 2 = 4
        (10, 2, 1, 3, GO),  # 2 + 4 * 2 = 10: reaching the cap is allowed
        (10, 2, 1, 4, WAIT),  # 2 + 5 * 2 = 12: wait for what is in flight
        (7, 6, 3, 0, STOP),  # 6 + 2 = 8 with nothing in flight: stop
        (10, 0, 3, 50, GO),  # finished items that cost nothing (DALL-E: no tokens)
        (0, 0, 0, 0, STOP),  # a cap of zero submits nothing
    ],
)
def test_verdict_table(
    cap: int | None, spent: int, finished: int, in_flight: int, expected: Verdict
) -> None:
    """One more item goes, waits or stops as spent + in flight at the learned cost says."""
    assert verdict(cap, spent, finished, in_flight) is expected


def test_budget_counts_from_its_start_and_per_meter() -> None:
    """Spending before the budget was made is not counted; jobs and tokens are separate."""
    spent = Spending()
    spent.add_quota("gpt4o", 100)
    budget = Budget(spent, max_quota=5, max_tokens=None)
    assert budget.check("gpt4o") is GO
    budget.begin("gpt4o")
    assert budget.check("gpt4o") is WAIT and budget.check("generate") is GO
    spent.add_quota("gpt4o", 5)
    budget.end("gpt4o")
    assert budget.check("gpt4o") is STOP and budget.reason and "--max-quota 5" in budget.reason


def test_negative_cap_is_refused() -> None:
    """A negative cap is a ValueError, not a budget that never lets anything through."""
    with pytest.raises(ValueError, match="max_quota"):
        Budget(Spending(), max_quota=-1, max_tokens=None)


async def test_quota_cap_stops_submitting_and_leaves_items_pending(tmp_path: Path) -> None:
    """With 2-quota jobs and --max-quota 7, three are done, the rest stay pending, then resume."""
    async with fake_and_client() as (fake, client):
        runner = BatchRunner(client, tmp_path, max_quota=7)
        outcomes = await collect(runner, jobs(10))
        assert [o.state for o in outcomes] == ["done"] * 3
        assert runner.stats.quota == 6 and runner.stats.remaining == 7
        assert runner.stats.capped and "--max-quota 7" in runner.stats.capped
        rest = await collect(BatchRunner(client, tmp_path), jobs(10))
        assert len(rest) == 7 and all(o.ok for o in rest)
        assert set(fake.stats().submissions_by_prompt.values()) == {1}  # none sent twice


async def test_token_cap_stops_synchronous_items(tmp_path: Path) -> None:
    """A token cap stops generate items before their usage would pass it."""
    requests = [
        BatchRequest(f"g{i}", "generate", {"prompt": f"p {i}", "model": "gpt-image-1"})
        for i in range(6)
    ]
    async with fake_and_client() as (_, client):
        probe = await client.images.generate(prompt="probe", model="gpt-image-1")
        assert probe.usage is not None and probe.usage.total_tokens > 0
        cap = int(2.5 * probe.usage.total_tokens)
        runner = BatchRunner(client, tmp_path, max_tokens=cap)
        outcomes = await collect(runner, requests)
    assert 1 <= len(outcomes) < 6 and runner.stats.capped
    assert runner.stats.tokens <= cap


def test_cli_max_quota_exits_3_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ttapi batch --max-quota`` exits 3 and its summary names the cap."""
    monkeypatch.setitem(FAKE_SETTINGS, "time_scale", 0.002)
    prompts = tmp_path / "p.txt"
    prompts.write_text("a\nb\nc\nd\n")
    out = tmp_path / "out"
    args = ["batch", str(prompts), "--out", str(out), "--fake", "--max-quota", "3"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 3, result.stderr
    assert "spending cap reached (--max-quota 3" in result.stderr
    events = CliRunner().invoke(cli, [*args, "--jsonl", "-q"], catch_exceptions=False)
    summary = json.loads(events.stdout.splitlines()[-1])
    assert events.exit_code == 3 and summary["capped"]

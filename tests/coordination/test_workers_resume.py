"""Real processes: a job's end outlives its worker; another process resumes it from the record."""

from __future__ import annotations

from typing import Any

from _redis_server import free_port

NEVER = ("--job-duration", "3600")


async def test_a_job_recorded_by_an_exited_worker_resumes_elsewhere_without_a_fetch(
    fake_server: Any, start_worker: Any
) -> None:
    """A records two jobs' ends and exits; a new process's ``resume`` of them fetches nothing."""
    fake = await fake_server(*NEVER)
    port_a, port_c = free_port(), free_port()
    a = await start_worker(
        "A", fake, listen=port_a, hook_url=f"http://127.0.0.1:{port_a}/ttapi-hook"
    )
    await a.ready()
    jobs = await a.submit(2, "yak")
    for job in jobs:
        await fake.finish(job)
    first = await a.resolved(jobs)
    await a.close()
    fetched = await fake.fetches()
    # A new process, polling at once if it polls at all: only the record can spare it a fetch.
    c = await start_worker(
        "C", fake, listen=port_c, hook_url=f"http://127.0.0.1:{port_c}/ttapi-hook",
        first_poll=0.0, poll_every=0.1,
    )  # fmt: skip
    await c.ready()
    await c.send(resume=jobs)
    again = await c.resolved(jobs)
    assert {j: e.get("url") for j, e in again.items()} == {j: e["url"] for j, e in first.items()}
    assert await fake.fetches() == fetched  # the service saw no fetch since A's

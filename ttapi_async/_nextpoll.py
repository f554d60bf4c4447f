"""When one job is polled next, and what its finish says about its duration."""

from __future__ import annotations

from collections.abc import Iterable

import tenacity

from ._job import FOLLOWER, HINTED, LEARNABLE, Job
from ._schedule import LearnedWait

__all__ = ["bring_forward", "estimate_duration", "next_delay", "unfollow"]


def estimate_duration(job: Job, now: float) -> float:
    """Return the best guess of the duration of a job seen done at ``now``."""
    if job._flags & HINTED:
        return now - job._started  # a callback fetch is close to the finish
    if job._polls == 0:
        # Done at its first poll: it ended any time before. Counting it a late job's
        # worth earlier makes the learned first poll settle where about the share of
        # jobs the schedule allows to be late ends before it, not creep later.
        return (now - job._started) / 1.15
    return (job._prev + now) / 2 - job._started


def next_delay(job: Job, now: float, state: tenacity.RetryCallState) -> float:
    """Return the wait after a poll at ``now`` that found ``job`` pending.

    ``state`` is a reusable ``RetryCallState`` (``poll_state()``) for the tenacity wait.
    """
    wait = job._kind.wait
    # A job submitted on a cold start follows what has been learned since, and so does
    # one whose plan came from durations that have shifted since.
    plan = job._plan
    if plan is None or plan.generation != wait.stats.generation:
        plan = job._plan = wait.plan()
    learnable = job._flags & LEARNABLE
    if plan is not None and learnable and wait.schedule.learn:
        return wait.learned(now - job._started, plan)
    if job._flags & FOLLOWER:
        if not wait.onset_known():
            # The scouts of its kind explore; this one waits for what they find.
            return wait.follow(now - job._started)
        unfollow(job)
    state.attempt_number = job._polls
    if learnable:
        state.start_time = job._started
        state.outcome_timestamp = now
    else:
        state.outcome_timestamp = None
    return wait.delay(state, plan)


def unfollow(job: Job) -> None:
    """Make a follower an ordinary cold job: counted among the pending ages from now on."""
    job._flags &= ~FOLLOWER
    job._kind.wait.pending.add(job._prev - job._started)


def bring_forward(jobs: Iterable[Job], wait: LearnedWait, now: float) -> list[Job]:
    """Return the followers of ``wait``'s kind due after its onset, now the onset is known.

    Each one is an ordinary cold job from now on; the caller polls it at the onset.
    """
    target = wait.onset_target()
    out = []
    for job in list(jobs):
        if job._kind.wait is wait and job._flags & FOLLOWER:
            unfollow(job)
            if job._due is not None and max(now, job._started + target) < job._due:
                out.append(job)
    return out

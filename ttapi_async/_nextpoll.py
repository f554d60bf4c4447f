"""When one job is polled next, and what its finish says about its duration."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

import tenacity

from ._schedule import LearnedWait
from ._watchentry import FOLLOWER, HINTED, LEARNABLE, WatchEntry

__all__ = ["bring_forward", "ended_within", "estimate_duration", "next_delay", "unfollow"]

E = TypeVar("E", bound=WatchEntry)


def estimate_duration(job: WatchEntry, now: float) -> float:
    """Return the best guess of the duration of a job seen done at ``now``."""
    if job.flags & HINTED:
        return now - job.started  # a callback fetch is close to the finish
    if job.polls == 0:
        # Done at its first poll: it ended any time before. Counting it a late job's
        # worth earlier makes the learned first poll settle where about the share of
        # jobs the schedule allows to be late ends before it, not creep later.
        return (now - job.started) / 1.15
    plan = job.plan
    if plan is not None and plan.ages is not None:
        # Jobs on an optimised plan share their poll ages (no jitter between polls): the
        # midpoints of their gaps would pile on a few values, and the quantiles and the
        # shift test read from them would move in steps of a gap. Anywhere in the gap,
        # at random, spreads them (the planner itself reads the gap, not this guess).
        return job.prev + (now - job.prev) * job.kind.wait.rng.random() - job.started
    return (job.prev + now) / 2 - job.started


def ended_within(job: WatchEntry, now: float) -> tuple[float, float]:
    """Return the interval ``(low, high]`` the duration of a job seen done at ``now`` lies in.

    It ended after the last poll that saw it pending (0.0: done at its first poll, any time
    before) and by now; a callback's fetch is close to the finish: about now.
    """
    age = now - job.started
    if job.flags & HINTED:
        return age, age
    return (job.prev - job.started if job.polls else 0.0), age


def next_delay(job: WatchEntry, now: float, state: tenacity.RetryCallState) -> float:
    """Return the wait after a poll at ``now`` that found ``job`` pending.

    ``state`` is a reusable ``RetryCallState`` (``poll_state()``) for the tenacity wait.
    """
    wait = job.kind.wait
    # A job submitted on a cold start follows what has been learned since, and so does
    # one whose plan came from durations that have shifted since, if it was submitted after
    # the jobs that showed the shift. An older one keeps its plan (polled early at worst):
    # a stream's last finishers are its slow jobs and can look like a shift that is none,
    # and the later dense part learned from them would make the jobs still pending late.
    # A plan scaled after a slow-down is refined as the new durations come in: its jobs
    # follow the latest.
    plan = job.plan
    if (
        plan is None
        or plan.scaled
        or (plan.generation != wait.stats.generation and job.started >= wait.stats.shifted_from)
    ):
        plan = job.plan = wait.plan()
    learnable = job.flags & LEARNABLE
    if plan is not None and learnable and wait.schedule.learn:
        return wait.learned(now - job.started, plan)
    if job.flags & FOLLOWER:
        if not wait.onset_known():
            # The scouts of its kind explore; this one waits for what they find.
            return wait.follow(now - job.started)
        unfollow(job)
    state.attempt_number = job.polls
    if learnable:
        state.start_time = job.started
        state.outcome_timestamp = now
    else:
        state.outcome_timestamp = None
    return wait.delay(state, plan)


def unfollow(job: WatchEntry) -> None:
    """Make a follower an ordinary cold job: counted among the pending ages from now on."""
    job.flags &= ~FOLLOWER
    job.kind.wait.pending.add(job.prev - job.started)


def bring_forward(jobs: Iterable[E], wait: LearnedWait, now: float) -> list[E]:
    """Return the followers of ``wait``'s kind due after its onset, now the onset is known.

    Each one is an ordinary cold job from now on; the caller polls it at the onset.
    """
    target = wait.onset_target()
    out = []
    for job in list(jobs):
        if job.kind.wait is wait and job.flags & FOLLOWER:
            unfollow(job)
            if job.due is not None and max(now, job.started + target) < job.due:
                out.append(job)
    return out

"""What the fake tells about itself: request records, job views and counters."""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["FakeStats", "JobView", "RequestRecord"]


@attrs.frozen
class RequestRecord:
    """Record one request the fake received: never image bytes, never a key."""

    #: wall-clock Unix time the request arrived, in the fake's service time
    time: float
    method: str
    path: str
    #: body or query fields; uploads appear as ``{"filename", "size"}``
    params: dict[str, Any]
    #: HTTP status answered; 0 when the connection was dropped without an answer
    status: int
    #: the fault that struck the request, if one did
    fault: str | None = None

    def to_json(self) -> dict[str, Any]:
        """Return this record as JSON-ready data."""
        return attrs.asdict(self)


@attrs.frozen
class JobView:
    """Show one job as it stands at the moment the view was taken."""

    id: str
    product: str
    status: str
    prompt: str
    refer_images: list[str] | None
    hook_url: str | None
    model: str | None
    size: str
    #: wall-clock Unix time of the submission
    submitted_at: float
    #: ``YYYY-MM-DD HH:MM:SS`` (UTC) once the job has ended
    finish_time: str | None
    message: str | None
    quota: str
    image_url: str | None
    #: callbacks delivered for this job (answered 2xx)
    hooks_delivered: int = 0

    def to_json(self) -> dict[str, Any]:
        """Return this view as JSON-ready data."""
        return attrs.asdict(self)


@attrs.frozen
class FakeStats:
    """Count what the fake has served since it started or was last reset."""

    #: requests received on API paths (admin and file paths excluded)
    requests: int
    #: ``"METHOD /path"`` -> {HTTP status (0: dropped) -> count}
    by_endpoint: dict[str, dict[int, int]]
    #: prompt -> how many times work was really created for it (submissions that passed checks)
    submissions_by_prompt: dict[str, int]
    #: job state -> how many jobs are in it now
    jobs: dict[str, int]
    #: hook outcome ("delivered", "retrying", "gave_up", "refused") -> count
    hooks: dict[str, int]
    #: fault kind -> how many requests it struck
    faults: dict[str, int]
    #: product -> the most jobs one key had in progress at once (``max_jobs_in_progress`` caps it)
    peak_in_progress: dict[str, int] = attrs.field(factory=dict)
    #: product -> submits refused 499 because the key had ``max_jobs_in_progress`` running
    queue_full: dict[str, int] = attrs.field(factory=dict)
    #: job id -> callbacks delivered for it (answered 2xx); a job called back twice shows 2
    hooks_delivered: dict[str, int] = attrs.field(factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return the counters as JSON-ready data (status codes become strings)."""
        data = attrs.asdict(self)
        data["by_endpoint"] = {
            endpoint: {str(status): n for status, n in counts.items()}
            for endpoint, counts in self.by_endpoint.items()
        }
        return data

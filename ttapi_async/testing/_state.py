"""Everything the fake remembers between requests, in one object ``reset`` replaces."""

from __future__ import annotations

import functools
import random
import time
from collections import Counter, deque
from typing import Any

from ._clock import Clock
from ._config import FaultRule
from ._faults import FaultPlan, TokenBucket
from ._hooks import HookDelivery
from ._images import ImageSpec
from ._jobs import FAILED, SUCCESS, Job, JobStore
from ._records import FakeStats, JobView, RequestRecord

__all__ = ["FakeState"]

_FINISH_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


@functools.lru_cache(maxsize=4096)
def _format_utc(second: int) -> str:
    # Polls of finished jobs format the same few seconds over and over.
    return time.strftime(_FINISH_TIME_FORMAT, time.gmtime(second))


class FakeState:
    """Hold jobs, served files, counters and logs; turn clock times into wall times."""

    def __init__(
        self,
        *,
        clock: Clock,
        seed: int,
        time_scale: float,
        epoch: float | None,
        job_quota: str,
        url_ttl: float,
        faults: tuple[FaultRule, ...],
        request_log_limit: int,
    ) -> None:
        self.clock = clock
        self.seed = seed
        self.time_scale = time_scale
        self.clock0 = clock()
        self.epoch = time.time() if epoch is None else epoch
        # One generator for every draw (ids, durations, outcomes, faults): a
        # seed and an order of requests reproduce a whole run.
        self.rng = random.Random(seed)
        self.jobs = JobStore(self.rng, time_scale=time_scale)
        self.job_quota = job_quota
        self.url_ttl = url_ttl
        self.faults = FaultPlan(self.rng, faults)
        self.files: dict[str, tuple[float, ImageSpec]] = {}
        self.buckets: dict[str, TokenBucket] = {}
        self.requests: deque[RequestRecord] = deque(maxlen=request_log_limit)
        self.request_count = 0
        self.by_endpoint: dict[str, Counter[int]] = {}
        self.submissions: Counter[str] = Counter()
        self.hook_outcomes: Counter[str] = Counter()
        self.fault_counts: Counter[str] = Counter()
        self.hook_deliveries: list[HookDelivery] = []
        #: product -> submits refused 499 because the key had too many jobs in progress
        self.queue_full: Counter[str] = Counter()
        #: job id -> callbacks delivered (answered 2xx)
        self.hooks_delivered: Counter[str] = Counter()

    # --- time -------------------------------------------------------------------------

    def wall(self, t: float) -> float:
        """Return the Unix time matching clock time ``t`` on the service's time line."""
        return self.epoch + (t - self.clock0) / self.time_scale

    def finish_time(self, t: float) -> str:
        """Format clock time ``t`` as the vendor's ``finishTime`` (UTC)."""
        return _format_utc(int(self.wall(t)))

    # --- records ----------------------------------------------------------------------

    def log(
        self, method: str, path: str, params: dict[str, Any], status: int, fault: str | None
    ) -> None:
        """Count and record one answered (or dropped) request."""
        self.request_count += 1
        endpoint = f"{method} {path}"
        counts = self.by_endpoint.get(endpoint)
        if counts is None:
            counts = self.by_endpoint[endpoint] = Counter()
        counts[status] += 1
        if fault is not None:
            self.fault_counts[fault] += 1
        self.requests.append(
            RequestRecord(self.wall(self.clock()), method, path, params, status, fault)
        )

    def record_hook(self, delivery: HookDelivery) -> None:
        """Keep one hook delivery attempt."""
        self.hook_outcomes[delivery.outcome] += 1
        if delivery.outcome == "delivered":
            self.hooks_delivered[delivery.job_id] += 1
        self.hook_deliveries.append(delivery)

    def stats(self) -> FakeStats:
        """Return a snapshot of every counter."""
        return FakeStats(
            requests=self.request_count,
            by_endpoint={k: dict(v) for k, v in self.by_endpoint.items()},
            submissions_by_prompt=dict(self.submissions),
            jobs=self.jobs.count_by_state(self.clock()),
            hooks=dict(self.hook_outcomes),
            faults=dict(self.fault_counts),
            peak_in_progress=dict(self.jobs.peak_in_progress),
            queue_full=dict(self.queue_full),
            hooks_delivered=dict(self.hooks_delivered),
        )

    # --- files ------------------------------------------------------------------------

    def add_file(self, spec: ImageSpec, now: float) -> str:
        """Serve ``spec`` under a new token until the URL lifetime ends; return the token."""
        if len(self.files) >= 4096:
            self._prune_files(now)
        token = f"{self.rng.getrandbits(64):016x}"
        self.files[token] = (now + self.url_ttl * self.time_scale, spec)
        return token

    def _prune_files(self, now: float) -> None:
        for token in [t for t, (expires, _) in self.files.items() if expires <= now]:
            del self.files[token]

    def file(self, token: str, now: float) -> ImageSpec | None:
        """Return the image behind ``token`` while its URL lives, else None."""
        if token.startswith("job-"):
            job = self.jobs.get(token[4:])
            if job is None or job.status(now) != SUCCESS:
                return None
            if now >= job.end() + self.url_ttl * self.time_scale:
                return None
            return self.job_image(job)
        entry = self.files.get(token)
        if entry is None or now >= entry[0]:
            return None
        return entry[1]

    # --- jobs -------------------------------------------------------------------------

    def job_image(self, job: Job) -> ImageSpec:
        """Return the image a successful job produced."""
        width, _, height = job.size.partition("x")
        # Seeded by the fake's seed through the image module, not the job id:
        # the same prompt gives the same picture, as tests of determinism expect.
        return ImageSpec(int(width), int(height), "png", seed=self.seed, prompt=job.prompt)

    def fetch_body(self, job: Job, now: float, origin: str) -> dict[str, Any]:
        """Return the fetch answer (and hook body) of ``job`` at ``now``."""
        status = job.status(now)
        ended = status in (SUCCESS, FAILED)
        if status == SUCCESS:
            message: str | None = "success"
        elif status == FAILED:
            message = job.message
        else:
            message = None
        return {
            "status": status,
            "message": message,
            "jobId": job.id,
            "data": {
                "prompt": job.prompt,
                "referImages": job.refer_images if job.refer_images is not None else [],
                "imageUrl": f"{origin}/_fake/files/job-{job.id}.png" if status == SUCCESS else None,
                "quota": "0" if status == FAILED else self.job_quota,
                "finishTime": self.finish_time(job.end()) if ended else None,
                "hookUrl": job.hook_url,
            },
        }

    def job_view(self, job: Job, now: float, origin: str) -> JobView:
        """Return a snapshot of ``job`` at ``now``."""
        body = self.fetch_body(job, now, origin)
        data = body["data"]
        return JobView(
            id=job.id,
            product=job.product,
            status=body["status"],
            prompt=job.prompt,
            refer_images=job.refer_images,
            hook_url=job.hook_url,
            model=job.model,
            size=job.size,
            submitted_at=self.wall(job.submitted_at),
            finish_time=data["finishTime"],
            message=body["message"],
            quota=data["quota"],
            image_url=data["imageUrl"],
            hooks_delivered=self.hooks_delivered.get(job.id, 0),
        )

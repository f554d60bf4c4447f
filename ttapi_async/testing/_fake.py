"""FakeTTAPI: the emulator's public face, its configuration and its lifecycle."""

from __future__ import annotations

from collections.abc import Iterable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal

import attrs
from aiohttp import web

from ._app import FakeApp
from ._clock import Clock, ManualClock
from ._config import (
    Duration,
    FaultRule,
    default_clock,
    positive,
    share,
    to_duration,
    to_optional_duration,
    to_rules,
    to_strings,
)
from ._control import JobControl
from ._hooks import HookDelivery, HookScheduler
from ._images import ImageCache
from ._manual import ClockDriver
from ._records import FakeStats, JobView, RequestRecord
from ._state import FakeState

if TYPE_CHECKING:
    from .._client import AsyncTTAPI

__all__ = ["FakeTTAPI"]

IdSpelling = Literal["jobId", "job_id", "both"]


# Frozen, so one shared default instance is safe.
_DEFAULT_JOB_DURATION = Duration.lognormal(40.0, 0.35)
_SPELLINGS = attrs.validators.in_(("jobId", "job_id", "both"))


@attrs.define(kw_only=True, eq=False)
class FakeTTAPI(JobControl):
    """Emulate TTAPI's image API (every endpoint of docs/contract.md) on a local port.

    ::

        async with FakeTTAPI(clock=ManualClock(), job_duration=Duration.fixed(30)) as fake:
            async with fake.client() as client:
                ...

    Every argument is keyword-only and every duration is in *service seconds*:
    the fake's clock sees ``seconds * time_scale``.

    Most settings are read per request and may be changed on a running fake
    (``fake.job_failure_rate = 1.0``, ``fake.max_jobs_in_progress = 2``...).
    Fixed at construction: keys, host, port, seed, time_scale, clock, epoch,
    the hook settings and the image cache size; ``job_quota``, ``url_ttl``,
    ``request_log_limit`` and ``faults`` take effect at ``reset()``. Faults
    change at runtime through ``set_faults``/``add_fault``/``fail_next``.
    A new rate limit applies to keys not seen yet (or after ``reset()``).
    """

    #: the key every endpoint accepts (``TT-API-KEY``, or ``Authorization: Bearer`` on /v1)
    api_key: str = attrs.field(default="tt-fake-key", repr=False)
    #: more accepted keys (each with its own rate bucket and job limits)
    extra_keys: tuple[str, ...] = attrs.field(default=(), converter=to_strings, repr=False)
    #: keys that authenticate but are answered 402 (balance or quota insufficient)
    quota_exhausted_keys: tuple[str, ...] = attrs.field(
        default=(), converter=to_strings, repr=False
    )
    #: keys that authenticate but are answered 403 (account blocked)
    blocked_keys: tuple[str, ...] = attrs.field(default=(), converter=to_strings, repr=False)
    host: str = "127.0.0.1"
    #: 0 binds a free port; read the result from ``url``
    port: int = 0
    #: seeds the one generator behind job ids, durations, outcomes and faults
    seed: int = 0
    #: clock seconds per service second: 0.01 makes a 60 s job last 0.6 s
    time_scale: float = attrs.field(default=1.0, validator=positive)
    #: "now" in seconds (default ``time.monotonic``); pass a ``ManualClock`` in tests
    clock: Clock = attrs.field(default=None, converter=default_clock)
    #: the Unix time the clock's start stands for (default: the wall clock at creation)
    epoch: float | None = None
    #: "small" compresses to kilobytes; "realistic" weighs what a real PNG does (MBs)
    image_payload: Literal["small", "realistic"] = attrs.field(
        default="small", validator=attrs.validators.in_(("small", "realistic"))
    )
    #: pad every image to about this many bytes (0: no padding)
    image_bytes: int = 0
    #: budget of the rendered-image cache
    image_cache_bytes: int = 96 * 1024 * 1024
    #: how long image URLs live (the vendor: 60 minutes)
    url_ttl: float = attrs.field(default=3600.0, validator=positive)
    #: extra time the synchronous endpoints take before answering (None: none)
    latency: Duration | None = attrs.field(default=None, converter=to_optional_duration)
    #: pause between server-sent events
    stream_interval: float = 0.0
    #: partial images a stream sends: "varied" (seeded: all asked half the time, fewer
    #: otherwise, as the service may finish first) or "exact" (always ``partial_images``)
    stream_partials: Literal["varied", "exact"] = attrs.field(
        default="varied", validator=attrs.validators.in_(("varied", "exact"))
    )
    #: how long a job takes from submission to its end (a number: always that many seconds)
    job_duration: Duration = attrs.field(default=_DEFAULT_JOB_DURATION, converter=to_duration)
    #: the share of that time spent PENDING_QUEUE before ON_QUEUE
    queue_share: float = attrs.field(default=0.2, validator=share)
    #: the probability that a job ends FAILED
    job_failure_rate: float = attrs.field(default=0.0, validator=share)
    #: ``message`` of a FAILED job
    job_failure_message: str = "job failed"
    #: ``quota`` of a job that did not fail ("0" when it did)
    job_quota: str = "2"
    #: how a 4o-image submit names the id: ``data.jobId``, ``data.job_id`` or both
    submit_id_4o: IdSpelling = attrs.field(default="jobId", validator=_SPELLINGS)
    #: how a gpt-family submit names the id
    submit_id_gpt: IdSpelling = attrs.field(default="job_id", validator=_SPELLINGS)
    #: jobs in progress per key per product before submits get 499 (None: no limit)
    max_jobs_in_progress: int | None = None
    #: requests per service second per key before 429 (None: no limit)
    rate_limit: float | None = None
    #: requests a key may make at once before the rate applies
    rate_burst: int = 10
    #: faults active from the start
    faults: tuple[FaultRule, ...] = attrs.field(default=(), converter=to_rules)
    #: HTTP status of a business failure (FAILED envelope) outside /v1; the vendor also uses 200
    business_failure_status: int = 400
    #: prompt words refused with 400 (a stand-in for the vendor's banned words)
    banned_words: tuple[str, ...] = attrs.field(default=(), converter=to_strings)
    #: how many times a failed callback is retried
    hook_retries: int = 3
    #: service seconds before the first retry of a callback, doubling after
    hook_backoff: float = 1.0
    #: real seconds one callback POST may take
    hook_timeout: float = 5.0
    #: how many request records to keep (the counters keep counting past it)
    request_log_limit: int = 10_000
    #: on a ManualClock, real seconds the clock may stand still while a job of ``client()``
    #: is pending before that job fails saying so (None: wait forever)
    manual_clock_stall: float | None = 5.0

    _state: FakeState = attrs.field(init=False, repr=False)
    _images: ImageCache = attrs.field(init=False, repr=False)
    _web: FakeApp = attrs.field(init=False, repr=False)
    _hooks: HookScheduler = attrs.field(init=False, repr=False)
    _keys: dict[str, str] = attrs.field(init=False, repr=False)
    _blocked: frozenset[str] = attrs.field(init=False, repr=False)
    _broke: frozenset[str] = attrs.field(init=False, repr=False)
    _sizes: dict[str, str] = attrs.field(init=False, repr=False, factory=dict)
    _runner: web.AppRunner | None = attrs.field(init=False, repr=False, default=None)
    _bound_url: str | None = attrs.field(init=False, repr=False, default=None)
    _drivers: list[ClockDriver] = attrs.field(init=False, repr=False, factory=list)

    def __attrs_post_init__(self) -> None:
        keys = (self.api_key, *self.extra_keys, *self.quota_exhausted_keys, *self.blocked_keys)
        # Requests carry fresh header strings; jobs keep the configured object,
        # so 100,000 jobs share one key string.
        self._keys = {key: key for key in keys}
        self._blocked = frozenset(self.blocked_keys)
        self._broke = frozenset(self.quota_exhausted_keys)
        self._images = ImageCache(self.image_cache_bytes)
        self._state = self._new_state()
        self._hooks = HookScheduler(
            self.clock,
            self._hook_body,
            manual_clock=isinstance(self.clock, ManualClock),
            retries=self.hook_retries,
            backoff=self.hook_backoff,
            time_scale=self.time_scale,
            timeout=self.hook_timeout,
            record=self._record_hook,
        )
        self._web = FakeApp(self)
        # Signals, not start(): a user who mounts ``fake.app`` in their own
        # server gets the hook loop started and stopped with it too.
        self._web.app.on_startup.append(self._on_startup)
        self._web.app.on_cleanup.append(self._on_cleanup)

    def _new_state(self) -> FakeState:
        return FakeState(
            clock=self.clock,
            seed=self.seed,
            time_scale=self.time_scale,
            epoch=self.epoch,
            job_quota=self.job_quota,
            url_ttl=self.url_ttl,
            faults=self.faults,
            request_log_limit=self.request_log_limit,
        )

    # --- lifecycle --------------------------------------------------------------------

    @property
    def app(self) -> web.Application:
        """Return the aiohttp application, to mount in a server of your own."""
        return self._web.app

    @property
    def url(self) -> str:
        """Return the base URL, e.g. ``http://127.0.0.1:54321`` (no trailing slash)."""
        if self._runner is None or self._bound_url is None:
            raise RuntimeError("FakeTTAPI is not started: use 'async with' or await start()")
        return self._bound_url

    async def start(self) -> None:
        """Bind ``host:port`` and start serving."""
        if self._runner is not None:
            raise RuntimeError("FakeTTAPI is already started")
        # A short shutdown: a handler held by a delay fault must not hold close() for 60 s.
        runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, shutdown_timeout=1.0
        )
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        port = runner.addresses[0][1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self._bound_url = f"http://{host}:{port}"

    async def close(self) -> None:
        """Stop serving and stop delivering callbacks; safe to call twice."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        self._bound_url = None

    async def __aenter__(self) -> FakeTTAPI:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _on_startup(self, app: web.Application) -> None:
        self._hooks.start()
        if isinstance(self.clock, ManualClock):
            self.clock.subscribe(self._hooks.wake)

    async def _on_cleanup(self, app: web.Application) -> None:
        for driver in self._drivers:
            driver.stop()
        self._drivers.clear()
        if isinstance(self.clock, ManualClock):
            self.clock.unsubscribe(self._hooks.wake)
        await self._hooks.close()

    def client(self, **kwargs: Any) -> AsyncTTAPI:
        """Return an ``AsyncTTAPI`` wired to this fake; ``kwargs`` go to its constructor.

        Its job watcher keeps the fake's time: it reads a ``ManualClock`` when the fake
        has one (advancing the clock then drives both), and its poll schedule is scaled by
        ``time_scale``, so a "60 s" job at 0.01 is polled as often as the real one would be.
        On a ManualClock, a job is fetched as soon as an advance passes its end (jobs with a
        ``hookUrl`` wait for their callback), so ``clock.advance(6)`` then ``await job``
        finishes a 5 s job; and a job left pending while the clock stands still for
        ``manual_clock_stall`` real seconds fails with an error saying so, never hangs.
        On scaled time, the lease of a submit whose outcome is unknown is held for the
        scaled time too.
        """
        from .._client import AsyncTTAPI
        from .._schedule import PollSchedule

        client = AsyncTTAPI(api_key=self.api_key, base_url=self.url, **kwargs)
        if isinstance(self.clock, ManualClock):
            client.watcher.configure(clock=self.clock)
            self._drivers = [d for d in self._drivers if not d.watcher.closed]
            self._drivers.append(ClockDriver(self, client.watcher, self.clock))
        if self.time_scale != 1.0:
            client.watcher.configure(schedule=PollSchedule().scaled(self.time_scale))
            # A submit whose outcome is unknown holds its lease about as long as a job
            # may run, on the fake's time too (unscaled, a chaos run waits 2 minutes).
            client._coordination.ambiguous_hold *= self.time_scale
        return client

    # --- introspection ----------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """Return the records of the latest requests, oldest first."""
        return list(self._state.requests)

    def stats(self) -> FakeStats:
        """Return the counters: per endpoint and status, per prompt, jobs by state, hooks."""
        return self._state.stats()

    @property
    def jobs(self) -> list[JobView]:
        """Return a view of every job as it stands now."""
        state = self._state
        now = self.clock()
        origin = self._bound_url or ""
        return [state.job_view(job, now, origin) for job in state.jobs]

    def job(self, job_id: str) -> JobView | None:
        """Return a view of one job, or None if there is no such job."""
        job = self._state.jobs.get(job_id)
        if job is None:
            return None
        return self._state.job_view(job, self.clock(), self._bound_url or "")

    @property
    def hook_deliveries(self) -> list[HookDelivery]:
        """Return every callback attempt so far (delivered, retrying, gave up, refused)."""
        return list(self._state.hook_deliveries)

    @property
    def faults_active(self) -> tuple[FaultRule, ...]:
        """Return the fault rules in force (spent one-shot rules are gone)."""
        return self._state.faults.rules

    def reset(self) -> None:
        """Forget jobs, files, records and counters; restore the configured faults."""
        self._hooks.clear()
        self._state = self._new_state()

    # --- control ----------------------------------------------------------------------

    def set_faults(self, *rules: FaultRule) -> None:
        """Replace the active fault rules."""
        self._state.faults.set(rules)

    def add_fault(self, rule: FaultRule) -> None:
        """Add one fault rule after the active ones."""
        self._state.faults.add(rule)

    def clear_faults(self) -> None:
        """Remove every fault rule."""
        self._state.faults.set(())

    def fail_next(
        self,
        path: str,
        n: int = 1,
        status: int | Iterable[int] = 503,
        *,
        method: str | None = None,
    ) -> None:
        """Answer the next ``n`` requests to ``path`` with ``status`` in the path's error shape."""
        statuses = (status,) if isinstance(status, int) else tuple(status)
        self.add_fault(FaultRule("status", path, status=statuses, method=method, times=n))

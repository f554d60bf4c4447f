"""``client.gpt4o`` and ``client.gpt``: asynchronous image jobs, one machinery for both.

A family is described by a ``JobFamily`` (its paths, its validator, which fields it
takes); ``JobResource`` does the rest: submit, fetch, resume, generate. A third family
is a ``JobFamily`` and a subclass whose ``submit`` names its fields.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final

import attrs
from cattrs.gen import make_dict_structure_fn, override

from .._errors import APIResponseValidationError, InvalidRequestError
from .._job import Job, attach_headers
from .._models import JobResult, JobStatus, bind, converter, excerpt, structure, with_job_id
from .._params import validate_4o_job, validate_gpt_job
from .._response import envelope_failure, unwrap_envelope
from .._types import NOT_GIVEN, NotGiven, RequestOptions
from .._wire import set_status_headers
from ._base import Resource, compact
from ._checks import check_deadline, check_extra_body, check_lease_timeout
from ._leased import submit_leased

if TYPE_CHECKING:
    from .._client import AsyncTTAPI

__all__ = [
    "CLAIMS_BEFORE_SEND",
    "GPT",
    "GPT4O_FAMILY",
    "GPT_FAMILY",
    "GPT4o",
    "JobFamily",
    "JobResource",
]


@attrs.frozen
class JobFamily:
    """What differs between two asynchronous job families: names, paths, rules."""

    #: the client attribute (``gpt4o``), used in messages and as the learning key
    name: str
    submit_path: str
    fetch_path: str
    #: checks a submit body keyed by wire names; raises InvalidRequestError
    validate: Callable[[Mapping[str, Any]], None]
    #: the model the service uses when none is given (None: the family has no models)
    default_model: str | None = None


GPT4O_FAMILY = JobFamily(
    "gpt4o", "/openai/4o-image/generations", "/openai/4o-image/fetch", validate_4o_job
)
GPT_FAMILY = JobFamily(
    "gpt", "/openai/gpt/generations", "/openai/gpt/fetch", validate_gpt_job, "gpt-image-2"
)


@attrs.frozen
class _Submitted:
    """``data`` of a SUCCESS submit: the new job's id (``jobId`` or ``job_id``)."""

    job_id: str


_submitted_fn = make_dict_structure_fn(_Submitted, converter, job_id=override(rename="jobId"))


def _structure_submitted(value: Any, cls: Any) -> _Submitted:
    return _submitted_fn(with_job_id(value), cls)


converter.register_structure_hook(_Submitted, _structure_submitted)

# Polls made by the watcher are not retried inside the request: the watcher reschedules
# them itself, without holding a fetch slot through a backoff sleep.
_POLL_OPTIONS = RequestOptions(max_retries=0)


class JobResource(Resource):
    """Submit, fetch, resume and wait for the jobs of one family."""

    family: ClassVar[JobFamily]

    def __init__(self, client: AsyncTTAPI) -> None:
        super().__init__(client)
        self._poll_fn = self._poll
        self._results: dict[str, Callable[[JobStatus], JobResult]] = {}

    # --- one request each ------------------------------------------------------------------

    async def fetch(
        self,
        job_id: str,
        *,
        timeout: float | NotGiven | None = NOT_GIVEN,
        idle_timeout: float | NotGiven | None = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
    ) -> JobStatus:
        """Fetch a job's status once (no waiting); polls are retried freely.

        A job that ended FAILED is a ``JobStatus`` whose ``status`` is ``"FAILED"``, not
        an error; a request the service refused (a bad key answered with a FAILED
        envelope and no job) raises.
        """
        return await self._fetch(
            job_id,
            self._options(
                timeout, max_retries, NOT_GIVEN, extra_headers, idle_timeout=idle_timeout
            ),
        )

    async def _poll(self, job_id: str) -> JobStatus:
        coordination = self._client._coordination
        known = await coordination.before_poll(job_id, self._last_status)
        if known is not None:
            return known
        status = await self._fetch(job_id, _POLL_OPTIONS)
        if status.terminal:
            # First terminal status wins, on every worker: resolve from the one recorded.
            return await coordination.settle(status)
        return status

    def _last_status(self, job_id: str) -> JobStatus | None:
        job = self._client.watcher.get(job_id)
        return None if job is None else job.status

    async def _fetch(self, job_id: str, options: RequestOptions | None) -> JobStatus:
        if not isinstance(job_id, str) or not job_id:
            raise InvalidRequestError(
                "job_id: must be a non-empty str", param="jobId", value=job_id
            )
        client = self._client
        payload, status, headers = await client._send(
            "POST",
            self.family.fetch_path,
            json_body={"jobId": job_id},
            idempotent=True,
            options=options,
            # A job's message may echo the key (a FAILED "invalid key ..."): the status, which
            # job.status, updates() and JobFailedError.status show, is built from a clean copy.
            redacted=True,
        )
        is_object = payload.__class__ is dict or isinstance(payload, Mapping)  # dict: cheap
        if not is_object or "status" not in payload:
            raise APIResponseValidationError(
                "expected a job status ({status, jobId, data})",
                status_code=status,
                excerpt=excerpt(payload, redact=client._redact),
            )
        names_job = "jobId" in payload or "job_id" in payload
        if not names_job:
            if payload["status"] == "FAILED" and not payload.get("data"):
                # No job in it: the request itself was refused (a bad key answered as 200).
                raise envelope_failure(
                    payload, status_code=status, headers=headers, redact=client._redact
                )
            payload = {**payload, "jobId": client._redact(job_id)}
        job_status = structure(payload, JobStatus, status_code=status, redact=client._redact)
        set_status_headers(job_status, headers)
        return job_status

    async def _submit(
        self,
        body: dict[str, Any],
        *,
        hook: bool,
        validate: bool | None,
        extra_body: Mapping[str, Any] | None,
        options: RequestOptions | None,
        deadline: float | None,
        lease_timeout: float | NotGiven | None = NOT_GIVEN,
    ) -> Job:
        client = self._client
        if hook:
            if "hookUrl" in body:
                raise InvalidRequestError(
                    "hook=True and hook_url are exclusive: pass one", param="hookUrl"
                )
            receiver = client.watcher.receiver
            if receiver is not None:
                await receiver.start()  # a shared token is read from the coordinator
            body["hookUrl"] = client.watcher.hook_url()
        check_deadline(deadline)  # used after the paid POST: checked before it
        check_lease_timeout(lease_timeout)
        if self._validating(validate):
            self.family.validate(body)
        if extra_body is not None:
            check_extra_body(extra_body)
            body.update(extra_body)
        key = self._key(body.get("model"))
        job_id, headers, lease = await submit_leased(
            client,
            self.family.submit_path,
            body,
            product=self.family.name,
            parse=self._parse_submitted,
            options=options,
            lease_timeout=(
                client.lease_timeout if isinstance(lease_timeout, NotGiven) else lease_timeout
            ),
        )
        try:
            await client._coordination.record(job_id, kind=key, lease=lease)
        finally:
            # Even if cancelled meanwhile: watched, the job settles and frees its lease.
            job = self._watch(job_id, key, 0.0, deadline)
        attach_headers(job, headers)
        return job

    def _parse_submitted(self, payload: Any, status: int, headers: Mapping[str, str]) -> str:
        redact = self._client._redact
        data = unwrap_envelope(payload, status_code=status, headers=headers, redact=redact)
        return structure(data, _Submitted, status_code=status, redact=redact).job_id

    def resume(
        self,
        job_id: str,
        *,
        age: float | None = None,
        model: str | None = None,
        deadline: float | None = None,
    ) -> Job:
        """Watch a job submitted earlier (by this process or another); sends nothing now.

        ``age`` is how many seconds ago it was submitted, if known; the first fetch then
        comes when jobs like it usually finish, else at once. The coordinator's record is
        read first: a job whose end any worker recorded resolves from it, with no fetch.
        ``deadline`` (seconds from now) overrides the watcher's.
        """
        if not isinstance(job_id, str) or not job_id:
            raise InvalidRequestError(
                "job_id: must be a non-empty str", param="jobId", value=job_id
            )
        check_deadline(deadline)
        job = self._watch(job_id, self._key(model), age, deadline)
        if not job.done():
            # Its first poll reads the job's record: one that settled costs no fetch.
            self._client._coordination.resumed.add(job_id)
        return job

    def _key(self, model: object) -> str:
        family = self.family
        if family.default_model is None:
            return family.name
        return f"{family.name}:{model or family.default_model}"

    def _watch(self, job_id: str, key: str, age: float | None, deadline: float | None) -> Job:
        return self._client.watcher.watch(
            job_id,
            key=key,
            fetch=self._poll_fn,
            age=age,
            deadline=deadline,
            make_result=self._result_for(key),
            resume_hint=f"client.{self.family.name}.resume",
        )

    def _result_for(self, key: str) -> Callable[[JobStatus], JobResult]:
        # One factory per product key, made once: a settled job's quota is counted under it.
        made = self._results.get(key)
        if made is None:
            spent = self._client.spent

            def made(status: JobStatus) -> JobResult:
                result = bind(JobResult.from_status(status), self._client)
                spent.add_quota(key, result.quota)
                return result

            self._results[key] = made
        return made


class GPT4o(JobResource):
    """GPT-4o image jobs (``/openai/4o-image/*``); the vendor says stability may vary."""

    family = GPT4O_FAMILY

    async def submit(
        self,
        *,
        prompt: str,
        refer_images: Sequence[str] | None = None,
        hook_url: str | None = None,
        hook: bool = False,
        extra_body: Mapping[str, Any] | None = None,
        validate: bool | None = None,
        deadline: float | None = None,
        timeout: float | NotGiven | None = NOT_GIVEN,
        idle_timeout: float | NotGiven | None = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        retry_possibly_submitted: bool | NotGiven = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        lease_timeout: float | NotGiven | None = NOT_GIVEN,
    ) -> Job:
        """Submit a job (a paid request, never resent blindly) and return its ``Job``.

        ``hook=True`` asks TTAPI to call the client's ``WebhookReceiver`` when the job
        ends (the watcher then fetches it at once); ``hook_url`` names any URL instead.
        ``deadline`` (seconds) overrides how long the watcher waits for it.
        ``lease_timeout`` (seconds; default the client's) bounds the wait for room under
        the product's jobs-in-progress limit: ``LeaseTimeoutError``, nothing sent.
        """
        body = compact(
            prompt=prompt,
            referImages=list(refer_images) if refer_images is not None else None,
            hookUrl=hook_url,
        )
        options = self._options(
            timeout, max_retries, retry_possibly_submitted, extra_headers, idle_timeout=idle_timeout
        )
        return await self._submit(
            body,
            hook=hook,
            validate=validate,
            extra_body=extra_body,
            options=options,
            deadline=deadline,
            lease_timeout=lease_timeout,
        )

    async def generate(
        self,
        *,
        prompt: str,
        refer_images: Sequence[str] | None = None,
        hook_url: str | None = None,
        hook: bool = False,
        extra_body: Mapping[str, Any] | None = None,
        validate: bool | None = None,
        deadline: float | None = None,
        timeout: float | NotGiven | None = NOT_GIVEN,
        idle_timeout: float | NotGiven | None = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        retry_possibly_submitted: bool | NotGiven = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        lease_timeout: float | NotGiven | None = NOT_GIVEN,
    ) -> JobResult:
        """Submit a job and wait for its result (``JobFailedError``, ``JobTimeoutError``)."""
        job = await self.submit(
            prompt=prompt,
            refer_images=refer_images,
            hook_url=hook_url,
            hook=hook,
            extra_body=extra_body,
            validate=validate,
            deadline=deadline,
            timeout=timeout,
            idle_timeout=idle_timeout,
            max_retries=max_retries,
            retry_possibly_submitted=retry_possibly_submitted,
            extra_headers=extra_headers,
            lease_timeout=lease_timeout,
        )
        return await job


class GPT(JobResource):
    """The newer GPT image job family (``/openai/gpt/*``): several models, one pattern."""

    family = GPT_FAMILY

    async def submit(
        self,
        *,
        prompt: str,
        model: str | None = None,
        aspect_ratio: str | None = None,
        size: str | None = None,
        refer_images: Sequence[str] | None = None,
        hook_url: str | None = None,
        hook: bool = False,
        extra_body: Mapping[str, Any] | None = None,
        validate: bool | None = None,
        deadline: float | None = None,
        timeout: float | NotGiven | None = NOT_GIVEN,
        idle_timeout: float | NotGiven | None = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        retry_possibly_submitted: bool | NotGiven = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        lease_timeout: float | NotGiven | None = NOT_GIVEN,
    ) -> Job:
        """Submit a job and return its ``Job``; ``model`` defaults to gpt-image-2.

        ``aspect_ratio`` is for gpt-image-2 only, ``size`` (``WxH``) for gpt-image-2-plus
        only; both are checked before anything is sent. ``hook``, ``hook_url``,
        ``deadline`` and ``lease_timeout`` as for ``client.gpt4o.submit``.
        """
        body = compact(
            prompt=prompt,
            model=model,
            aspect_ratio=aspect_ratio,
            size=size,
            referImages=list(refer_images) if refer_images is not None else None,
            hookUrl=hook_url,
        )
        options = self._options(
            timeout, max_retries, retry_possibly_submitted, extra_headers, idle_timeout=idle_timeout
        )
        return await self._submit(
            body,
            hook=hook,
            validate=validate,
            extra_body=extra_body,
            options=options,
            deadline=deadline,
            lease_timeout=lease_timeout,
        )

    async def generate(
        self,
        *,
        prompt: str,
        model: str | None = None,
        aspect_ratio: str | None = None,
        size: str | None = None,
        refer_images: Sequence[str] | None = None,
        hook_url: str | None = None,
        hook: bool = False,
        extra_body: Mapping[str, Any] | None = None,
        validate: bool | None = None,
        deadline: float | None = None,
        timeout: float | NotGiven | None = NOT_GIVEN,
        idle_timeout: float | NotGiven | None = NOT_GIVEN,
        max_retries: int | NotGiven = NOT_GIVEN,
        retry_possibly_submitted: bool | NotGiven = NOT_GIVEN,
        extra_headers: Mapping[str, str] | None = None,
        lease_timeout: float | NotGiven | None = NOT_GIVEN,
    ) -> JobResult:
        """Submit a job and wait for its result (``JobFailedError``, ``JobTimeoutError``)."""
        job = await self.submit(
            prompt=prompt,
            model=model,
            aspect_ratio=aspect_ratio,
            size=size,
            refer_images=refer_images,
            hook_url=hook_url,
            hook=hook,
            extra_body=extra_body,
            validate=validate,
            deadline=deadline,
            timeout=timeout,
            idle_timeout=idle_timeout,
            max_retries=max_retries,
            retry_possibly_submitted=retry_possibly_submitted,
            extra_headers=extra_headers,
            lease_timeout=lease_timeout,
        )
        return await job


#: The submits that await ``_leased.before_send`` right before their POST, after the wait
#: for a lease (a caller may then claim its item as late as that; any other callable is
#: claimed for before it is called).
CLAIMS_BEFORE_SEND: Final = frozenset({GPT4o.submit, GPT.submit})

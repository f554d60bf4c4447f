"""The job endpoints: 4o-image and gpt submits (499 past the account's limit) and fetches."""

from __future__ import annotations

from .._errors import InvalidRequestError
from .._params import validate_4o_job, validate_gpt_job
from ._steps import Steps, prompt_of
from ._wire import ENVELOPE_MESSAGES, Answer, Ctx, envelope_error, json_answer

__all__ = ["JobsAPI"]

_ASPECT_SIZES = {
    "1:1": "1024x1024",
    "3:4": "768x1024",
    "4:3": "1024x768",
    "16:9": "1536x864",
    "9:16": "864x1536",
}


class JobsAPI(Steps):
    """Create jobs on submit and answer their status on fetch, in TTAPI's envelope."""

    async def submit_4o(self, ctx: Ctx) -> Answer:
        """Answer POST /openai/4o-image/generations."""
        validate_4o_job(ctx.params)
        return self._submit(ctx, "4o-image", None, "1024x1024", self.fake.submit_id_4o)

    async def submit_gpt(self, ctx: Ctx) -> Answer:
        """Answer POST /openai/gpt/generations."""
        validate_gpt_job(ctx.params)
        params = ctx.params
        model = params.get("model") or "gpt-image-2"
        if params.get("size"):
            size = str(params["size"])
        else:
            size = _ASPECT_SIZES.get(str(params.get("aspect_ratio") or "1:1"), "1024x1024")
        return self._submit(ctx, "gpt", model, size, self.fake.submit_id_gpt)

    def _submit(
        self, ctx: Ctx, product: str, model: str | None, size: str, spelling: str
    ) -> Answer:
        self.check_prompt(ctx)
        fake = self.fake
        state = self.state
        now = state.clock()
        limit = fake.max_jobs_in_progress
        if limit is not None and state.jobs.in_progress(ctx.key, product, now) >= limit:
            state.queue_full[product] += 1
            return envelope_error(499, ENVELOPE_MESSAGES[499])
        params = ctx.params
        prompt = prompt_of(params)
        refer = params.get("referImages")
        hook = params.get("hookUrl")
        job = fake._create_job(
            product=product,
            key=ctx.key,
            prompt=prompt,
            refer_images=list(refer) if refer else None,
            hook_url=hook if isinstance(hook, str) and hook else None,
            model=model,
            size=size,
        )
        state.submissions[prompt] += 1
        # Remember the public origin now: callbacks built later carry image URLs.
        self.origin(ctx.request)
        data: dict[str, str] = {}
        if spelling in ("jobId", "both"):
            data["jobId"] = job.id
        if spelling in ("job_id", "both"):
            data["job_id"] = job.id
        return json_answer(200, {"status": "SUCCESS", "message": "success", "data": data})

    async def fetch_4o(self, ctx: Ctx) -> Answer:
        """Answer /openai/4o-image/fetch."""
        return self._fetch(ctx, "4o-image")

    async def fetch_gpt(self, ctx: Ctx) -> Answer:
        """Answer /openai/gpt/fetch."""
        return self._fetch(ctx, "gpt")

    def _fetch(self, ctx: Ctx, product: str) -> Answer:
        params = ctx.params
        job_id = params.get("jobId") or params.get("job_id")
        if not isinstance(job_id, str) or not job_id:
            raise InvalidRequestError("jobId is required", param="jobId")
        job = self.state.jobs.get(job_id)
        if job is None or job.product != product or job.key != ctx.key:
            return envelope_error(404, f"Job {job_id} not found.")
        body = self.state.fetch_body(job, self.state.clock(), self.origin(ctx.request))
        return json_answer(200, body)

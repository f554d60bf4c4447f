"""Check request parameters against each model's documented rules before anything is sent.

Client-side validation is there to catch a mistake before it is paid for, so it refuses
only what the service refuses: docs/contract.md lists each rule and where it is documented,
and the decisions taken where the documents are silent. A request without ``model`` is
checked against what *any* of the endpoint's models takes, never against a guessed default.

Every ``validate_*`` function is pure and synchronous: it returns ``None`` or raises
:class:`~ttapi_async._errors.InvalidRequestError` whose ``param`` is the wire name of the
offending field (the emulator copies it into OpenAI's ``error.param``) and whose message
names that field, the bad value and what would have been allowed. A key whose value is
``None`` counts as not given; a key the endpoint does not know is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from ._capabilities import (
    DALLE3,
    EDIT_MODELS,
    GENERATE_MODELS,
    GPT_IMAGE_MODELS,
    GPT_JOB_DEFAULT_MODEL,
    GPT_JOB_MODEL_ROWS,
    GPT_JOB_MODELS,
    IMAGE_MODEL_ROWS,
    IMAGE_MODELS,
    JSON_EDIT_MODELS,
    MASK_RULE,
    ImageModel,
    JobModel,
    any_model,
)
from ._checks import (
    Check,
    check_edit_size,
    check_fields,
    check_generate_size,
    check_image_ref,
    check_image_refs,
    check_int_range,
    check_model,
    check_n,
    check_quality,
    check_size_against,
    check_stream,
    check_string,
    check_uploads,
    check_url,
    check_url_list,
    enum,
    fail,
    given,
    prompt_check,
    reject_unknown,
    require,
)
from ._errors import InvalidRequestError
from ._sniff import ImageFileInfo, image_dimensions, sniff_image_format

__all__ = [
    "GPT_IMAGE_MODELS",
    "IMAGE_MODELS",
    "ImageFileInfo",
    "image_dimensions",
    "sniff_image_format",
    "validate_4o_job",
    "validate_dalle3",
    "validate_edit",
    "validate_edit_json",
    "validate_generate",
    "validate_gpt_job",
]

_ALPHA_FORMATS: Final = ("png", "webp")  # what background=transparent can be saved as
_DEFAULT_OUTPUT_FORMAT: Final = "png"

# The rows a request without model is checked against, one per endpoint.
_ANY_GENERATE: Final = any_model(GENERATE_MODELS)
_ANY_EDIT: Final = any_model(EDIT_MODELS, edits=True)
_ANY_JSON_EDIT: Final = any_model(JSON_EDIT_MODELS, edits=True)

# stream is model-specific only when True (check_stream): stream=False is fine anywhere.
_IMAGE_MODEL_SPECIFIC: Final = _ANY_GENERATE.params - {"stream"}
_GPT_JOB_MODEL_SPECIFIC: Final = frozenset().union(
    *(row.params for row in GPT_JOB_MODEL_ROWS.values())
)


def _image_takers(param: str) -> list[str]:
    return [name for name, row in IMAGE_MODEL_ROWS.items() if row.takes(param)]


def _job_takers(param: str) -> list[str]:
    return [name for name, row in GPT_JOB_MODEL_ROWS.items() if row.takes(param)]


# ---------------------------------------------------------------------------------------------
# Endpoint tables (order = order of checking)
# ---------------------------------------------------------------------------------------------


def _check_compression(param: str, value: Any, row: ImageModel) -> None:
    # Any output_format: the docs say the value "only applies" to jpeg and webp, and their
    # own examples send the default 100 with png (docs/contract.md, "output_compression").
    check_int_range(param, value, 0, 100, row)


def _check_partial_images(param: str, value: Any, row: ImageModel) -> None:
    check_int_range(param, value, 0, 3, row)


_COMMON_IMAGE_FIELDS: Final[Mapping[str, Check]] = {
    "prompt": prompt_check(),
    "n": check_n,
    "quality": check_quality,
    "response_format": enum(("url", "b64_json")),
    "output_format": enum(("png", "jpeg", "webp")),
    "output_compression": _check_compression,
    "background": enum(("transparent", "opaque", "auto")),
    "stream": check_stream,
    "partial_images": _check_partial_images,
    "user": check_string,
}
_MODERATIONS: Final = ("low", "auto")
_INPUT_FIDELITIES: Final = ("high", "low")
_GENERATE_FIELDS: Final[Mapping[str, Check]] = {
    **_COMMON_IMAGE_FIELDS,
    "size": check_generate_size,
    "moderation": enum(_MODERATIONS),
    "style": enum(("vivid", "natural")),
}
# The multipart form has no moderation field in OpenAI's schema; the JSON body has one.
_EDIT_FIELDS: Final[Mapping[str, Check]] = {
    **_COMMON_IMAGE_FIELDS,
    "size": check_edit_size,
    "input_fidelity": enum(_INPUT_FIDELITIES),
}
_EDIT_JSON_FIELDS: Final[Mapping[str, Check]] = {
    **_EDIT_FIELDS,
    "prompt": prompt_check(min_chars=1),  # the JSON schema's minLength
    "moderation": enum(_MODERATIONS),
    "images": check_image_refs,
    "mask": check_image_ref,
}
_LEGACY_DALLE3_FIELDS: Final[Mapping[str, Check]] = {
    "prompt": prompt_check(),
    "size": check_generate_size,
    "n": check_n,
    "quality": enum(("standard", "hd")),
    "style": enum(("vivid", "natural")),
    "response_format": enum(("url", "b64_json")),
}


def _check_job_size(param: str, value: Any, row: JobModel) -> None:
    check_size_against(param, value, (), (row.size,) if row.size else (), row)


# The job endpoints document no prompt limit: we check only that there is one.
_4O_JOB_FIELDS: Final[Mapping[str, Check]] = {
    "prompt": prompt_check(limited=False),
    "referImages": check_url_list,
    "hookUrl": check_url,
}
_GPT_JOB_FIELDS: Final[Mapping[str, Check]] = {
    **_4O_JOB_FIELDS,
    "aspect_ratio": enum(("1:1", "3:4", "4:3", "16:9", "9:16")),
    "size": _check_job_size,
}

# ---------------------------------------------------------------------------------------------
# Checks across fields: (given, row) -> None
# ---------------------------------------------------------------------------------------------


def _transparent_needs_alpha(given: Mapping[str, Any], row: ImageModel) -> None:
    output_format = given.get("output_format", _DEFAULT_OUTPUT_FORMAT)
    if given.get("background") == "transparent" and output_format not in _ALPHA_FORMATS:
        fail(
            "background",
            "transparent",
            f"needs output_format {' or '.join(_ALPHA_FORMATS)}, "
            f"not {output_format!r}; allowed with it: opaque, auto",
        )


_IMAGE_COMBINATIONS: Final[tuple[Callable[[Mapping[str, Any], ImageModel], None], ...]] = (
    _transparent_needs_alpha,
)


def _check_image_request(
    given: Mapping[str, Any],
    fields: Mapping[str, Check],
    models: Sequence[str],
    any_row: ImageModel,
    endpoint: str,
    required: Sequence[str],
) -> ImageModel:
    reject_unknown(given, {"model", *fields}, endpoint)
    model = check_model(given, models, endpoint)
    row = IMAGE_MODEL_ROWS[model] if model is not None else any_row
    require(given, *required)
    check_fields(given, fields, row, _IMAGE_MODEL_SPECIFIC, _image_takers)
    for combination in _IMAGE_COMBINATIONS:
        combination(given, row)
    return row


# ---------------------------------------------------------------------------------------------
# Public validators
# ---------------------------------------------------------------------------------------------


def validate_generate(params: Mapping[str, Any]) -> None:
    """Check a ``POST /v1/images/generations`` body (docs/contract.md, generations).

    ``stream=True`` and ``partial_images`` are GPT Image only, as on OpenAI; ``stream=False``
    is fine anywhere. gpt-image-2 also takes a free ``WxH`` (edges multiples of 16, aspect
    ratio within 1:3..3:1, at most 3840x2160 and at least 655,360 pixels).
    """
    key = _memo_key(params)
    row = _VALID_GENERATE.get(key) if key is not None else None
    if row is not None:
        # Every parameter but the prompt was found valid before, for this model: no check
        # reads the prompt but its own, so only that one can fail now, and it would have
        # been the first to fail in the full run too.
        prompt = params.get("prompt")
        if prompt is None:
            raise InvalidRequestError("prompt is required", param="prompt", value=None)
        _GENERATE_FIELDS["prompt"]("prompt", prompt, row)
        return
    row = _check_image_request(
        given(params),
        _GENERATE_FIELDS,
        GENERATE_MODELS,
        _ANY_GENERATE,
        "image generation",
        ("prompt",),
    )
    if key is not None:
        if len(_VALID_GENERATE) >= _MEMO_MAX:
            _VALID_GENERATE.clear()
        _VALID_GENERATE[key] = row


# Speed only: the sets of parameters other than the prompt (model, size, quality, ...) that
# validate_generate found valid, mapped to their model's row. Calls repeat the same few
# settings with new prompts; a set seen before needs only its prompt checked. Each value is
# keyed with its exact type (True == 1 == 1.0 to a dict, never to the rules); values of any
# other type are not remembered at all.
_MemoKey = tuple[tuple[str, type, object], ...]
_VALID_GENERATE: dict[_MemoKey, ImageModel] = {}
_MEMO_MAX: Final = 256
_MEMO_TYPES: Final = frozenset({str, int, float, bool})


def _memo_key(params: Mapping[str, Any]) -> _MemoKey | None:
    """Return the given parameters but the prompt, each with its type; None: not memoizable."""
    key = []
    for name, value in params.items():
        if value is None or name == "prompt":
            continue  # None is "not given" (see given())
        cls = value.__class__
        if cls not in _MEMO_TYPES or name.__class__ is not str:
            return None
        key.append((name, cls, value))
    return tuple(key)


def validate_edit(
    params: Mapping[str, Any],
    images: Sequence[ImageFileInfo],
    mask: ImageFileInfo | None,
) -> None:
    """Check a multipart ``POST /v1/images/edits`` request (docs/contract.md, edits).

    ``params`` holds the form fields (without ``image``/``mask``). Upload formats are judged
    by magic bytes, never by file name; "MB" is MiB. The mask must match the first image's
    dimensions when both are readable from their heads.
    """
    row = _check_image_request(
        given(params), _EDIT_FIELDS, EDIT_MODELS, _ANY_EDIT, "image edits", ("prompt",)
    )
    assert row.uploads is not None  # every model of EDIT_MODELS has an upload rule
    check_uploads(images, mask, rule=row.uploads, mask_rule=MASK_RULE, row=row)


def validate_edit_json(params: Mapping[str, Any]) -> None:
    """Check a JSON ``POST /v1/images/edits`` body with image references (docs/contract.md).

    Only GPT Image models take this form. ``images[].image_url`` may be an http(s) or a
    ``data:`` URL, as on OpenAI.
    """
    _check_image_request(
        given(params),
        _EDIT_JSON_FIELDS,
        JSON_EDIT_MODELS,
        _ANY_JSON_EDIT,
        "image edits with JSON images",
        ("prompt", "images"),
    )


def validate_dalle3(params: Mapping[str, Any]) -> None:
    """Check a legacy ``POST /openai/v1/images/generations`` body (docs/contract.md).

    ``size`` is required there; ``model``, if given, must be ``dall-e-3``; quality is
    ``standard`` or ``hd`` (no ``auto`` on this endpoint).
    """
    params = given(params)
    endpoint = "the legacy DALL-E 3 endpoint"
    reject_unknown(params, {"model", *_LEGACY_DALLE3_FIELDS}, endpoint)
    check_model(params, (DALLE3,), endpoint)
    require(params, "prompt", "size")
    check_fields(params, _LEGACY_DALLE3_FIELDS, IMAGE_MODEL_ROWS[DALLE3], (), _image_takers)


def validate_4o_job(params: Mapping[str, Any]) -> None:
    """Check a ``POST /openai/4o-image/generations`` body, keyed by wire (camelCase) names.

    An empty ``referImages`` list is accepted and means "no reference images".
    """
    params = given(params)
    reject_unknown(params, _4O_JOB_FIELDS, "GPT-4o image jobs")
    require(params, "prompt")
    check_fields(params, _4O_JOB_FIELDS, None, (), _job_takers)


def validate_gpt_job(params: Mapping[str, Any]) -> None:
    """Check a ``POST /openai/gpt/generations`` body (docs/contract.md), by wire names.

    ``model`` defaults to ``gpt-image-2``, as documented; ``aspect_ratio`` is gpt-image-2
    only and ``size`` gpt-image-2-plus only, with every bound the contract gives for it.
    """
    params = given(params)
    endpoint = "GPT image jobs"
    reject_unknown(params, {"model", *_GPT_JOB_FIELDS}, endpoint)
    model = check_model(params, GPT_JOB_MODELS, endpoint) or GPT_JOB_DEFAULT_MODEL
    require(params, "prompt")
    check_fields(
        params, _GPT_JOB_FIELDS, GPT_JOB_MODEL_ROWS[model], _GPT_JOB_MODEL_SPECIFIC, _job_takers
    )

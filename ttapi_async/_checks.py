"""The small checks the validators are built from, and the messages they fail with.

A field check is ``(param, value, row) -> None`` where ``row`` is the model's row of
``_capabilities`` (or None where the endpoint has no per-model rules); it raises
:class:`~ttapi_async._errors.InvalidRequestError` whose ``param`` is the wire name.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Final, NoReturn, TypeGuard
from urllib.parse import urlsplit

from ._capabilities import MIB, ImageModel, SizeRule, UploadRule
from ._errors import InvalidRequestError
from ._sniff import ImageFileInfo

__all__ = [
    "Check",
    "check_fields",
    "check_uploads",
    "enum",
    "fail",
    "given",
    "reject_unknown",
    "require",
]

_SHOW_MAX_CHARS: Final = 60
_URL_SCHEMES: Final = ("http", "https")
_IMAGE_REF_KEYS: Final = ("image_url", "file_id")
# JSON edits take data: URLs too, as OpenAI's images[].image_url does.
_IMAGE_REF_URL_SCHEMES: Final = ("http", "https", "data")
_FORMAT_NAMES: Final = {"png": "PNG", "jpeg": "JPEG", "webp": "WebP"}
# ASCII digits only (\d would take other scripts' digits); 6 digits keeps int() cheap.
_WXH: Final = re.compile(r"([1-9][0-9]{0,5})x([1-9][0-9]{0,5})")

Check = Callable[[str, Any, Any], None]

# ---------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------


def show(value: object) -> str:
    """Return ``repr(value)`` cut to a length that keeps long prompts out of messages."""
    text = repr(value)
    if len(text) <= _SHOW_MAX_CHARS:
        return text
    return text[: _SHOW_MAX_CHARS - 3] + "..."


def fail(param: str, value: object, problem: str, *, label: str | None = None) -> NoReturn:
    """Raise InvalidRequestError for ``param`` (``label`` names a part of it: ``images[2]``)."""
    shown = label or param
    raise InvalidRequestError(f"{shown}={show(value)} {problem}", param=param, value=value)


def listing(allowed: Iterable[str]) -> str:
    """Return the allowed values as one comma-separated string."""
    return ", ".join(allowed)


def _label(row: Any) -> str:
    return row.label if row is not None else ""


def _not_allowed(param: str, value: object, allowed: Iterable[str], row: Any) -> NoReturn:
    fail(param, value, f"is not allowed{_label(row)}; allowed: {listing(allowed)}")


# ---------------------------------------------------------------------------------------------
# Field checks
# ---------------------------------------------------------------------------------------------


def _is_int(value: object) -> TypeGuard[int]:
    # bool is not an int here: n=True is a mistake, never 1.
    return isinstance(value, int) and not isinstance(value, bool)


def check_int_range(param: str, value: object, low: int, high: int, row: Any) -> None:
    """Check that ``value`` is an int (not a bool) from ``low`` to ``high``."""
    if not _is_int(value):
        fail(param, value, f"must be an integer from {low} to {high}{_label(row)}")
    if not low <= value <= high:
        only = f"exactly {low}" if low == high else f"from {low} to {high}"
        fail(param, value, f"is out of range{_label(row)}; allowed: {only}")


def enum(allowed: Sequence[str]) -> Check:
    """Return a check for one of ``allowed``, the same for every model."""

    def check(param: str, value: Any, row: Any) -> None:
        if not (isinstance(value, str) and value in allowed):
            _not_allowed(param, value, allowed, row=None)

    return check


def check_quality(param: str, value: Any, row: ImageModel) -> None:
    """Check a quality against the model's qualities."""
    if not (isinstance(value, str) and value in row.qualities):
        _not_allowed(param, value, row.qualities, row)


def check_string(param: str, value: Any, row: Any) -> None:
    """Check that ``value`` is a string."""
    if not isinstance(value, str):
        fail(param, value, "must be a string")


def prompt_check(*, min_chars: int = 0, limited: bool = True) -> Check:
    """Return a prompt check: a string of ``min_chars`` or more, within the row's limit
    (``limited=False``: the endpoint documents none)."""

    def check(param: str, value: Any, row: Any) -> None:
        if not isinstance(value, str):
            fail(param, value, "must be a string")
        if len(value) < min_chars:
            fail(param, value, f"must be at least {min_chars} character long")
        if not limited or len(value) <= row.prompt_max:
            return
        # The value is shown cut short: a 32,000-character prompt has no place in a message.
        limit = f"{row.prompt_max:,}"
        who = f"model {row.name!r} allows at most" if row.name else "no model allows more than"
        fail(param, value, f"is {len(value):,} characters long; {who} {limit}")

    return check


def check_n(param: str, value: Any, row: ImageModel) -> None:
    """Check n against the model's maximum."""
    check_int_range(param, value, 1, row.max_n, row)


def check_stream(param: str, value: Any, row: ImageModel) -> None:
    """Check stream: a bool, and True only for a model that streams."""
    if not isinstance(value, bool):
        fail(param, value, "must be a bool (True or False)")
    if value and not row.takes("stream"):
        fail(param, value, f"is not supported{row.label}; streaming needs a GPT Image model")


def _parse_wxh(value: object) -> tuple[int, int] | None:
    match = _WXH.fullmatch(value) if isinstance(value, str) else None
    return (int(match[1]), int(match[2])) if match else None


def check_size_against(
    param: str, value: Any, fixed: Sequence[str], free: Sequence[SizeRule], row: Any
) -> None:
    """Check a size: one of ``fixed``, or a ``WxH`` that one of the ``free`` rules allows."""
    if isinstance(value, str) and value in fixed:
        return
    if not free:
        _not_allowed(param, value, fixed, row)
    described = "; or ".join(rule.describe() for rule in free)
    choices = f"{listing(fixed)}, or {described}" if fixed else described
    parsed = _parse_wxh(value)
    if parsed is None:
        problem = "is not a WxH size"
    else:
        problems = [rule.problem(*parsed) for rule in free]
        if None in problems:
            return
        problem = problems[0] or ""
    fail(param, value, f"is not allowed{_label(row)}: {problem}; allowed: {choices}")


def check_generate_size(param: str, value: Any, row: ImageModel) -> None:
    """Check a generation size against the model's sizes."""
    check_size_against(param, value, row.sizes, row.free_sizes, row)


def check_edit_size(param: str, value: Any, row: ImageModel) -> None:
    """Check an edit size against the model's edit sizes."""
    check_size_against(param, value, row.edit_sizes or row.sizes, row.free_sizes, row)


def _is_url(value: object, schemes: Sequence[str]) -> bool:
    if not isinstance(value, str) or any(ch.isspace() for ch in value):
        return False
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        return False
    return parts.scheme == "data" or bool(parts.netloc)


def check_url(param: str, value: Any, row: Any) -> None:
    """Check an http(s) URL."""
    if not _is_url(value, _URL_SCHEMES):
        fail(param, value, "must be an http(s) URL")


def check_url_list(param: str, value: Any, row: Any) -> None:
    """Check a list of http(s) URLs."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        fail(param, value, "must be a list of http(s) URLs")
    for index, item in enumerate(value):
        if not _is_url(item, _URL_SCHEMES):
            fail(param, item, "must be an http(s) URL", label=f"{param}[{index}]")


def _image_ref_problem(value: object) -> str | None:
    keys = " or ".join(repr(key) for key in _IMAGE_REF_KEYS)
    if not isinstance(value, Mapping) or len(value) != 1:
        return f"must be a dict with exactly one key, {keys}"
    ((key, ref),) = value.items()
    if key not in _IMAGE_REF_KEYS:
        return f"must be a dict with exactly one key, {keys}"
    if not isinstance(ref, str) or not ref.strip():
        return f"must hold a non-empty string as {key!r}"
    if key == "image_url" and not _is_url(ref, _IMAGE_REF_URL_SCHEMES):
        return "must hold an http(s) or data: URL as 'image_url'"
    return None


def check_image_ref(param: str, value: Any, row: Any) -> None:
    """Check one ``{"image_url": ...}`` or ``{"file_id": ...}`` reference."""
    problem = _image_ref_problem(value)
    if problem is not None:
        fail(param, value, problem)


def check_image_refs(param: str, value: Any, row: ImageModel) -> None:
    """Check a list of image references, as many as the model's uploads allow."""
    limit = row.uploads.max_count if row.uploads else 0
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        fail(param, value, "must be a list of {'image_url': ...} or {'file_id': ...} dicts")
    if not 1 <= len(value) <= limit:
        fail(param, value, f"holds {len(value)} images; allowed: 1 to {limit}")
    for index, item in enumerate(value):
        problem = _image_ref_problem(item)
        if problem is not None:
            fail(param, item, problem, label=f"{param}[{index}]")


# ---------------------------------------------------------------------------------------------
# Shared steps
# ---------------------------------------------------------------------------------------------


def given(params: Mapping[str, Any]) -> dict[str, Any]:
    """Return the parameters that are given: a key whose value is None counts as absent."""
    return {key: value for key, value in params.items() if value is not None}


def reject_unknown(given: Mapping[str, Any], known: Collection[str], endpoint: str) -> None:
    """Reject a key the endpoint does not know: a typo would otherwise go unnoticed."""
    for key, value in given.items():
        if key in known:
            continue
        name = str(key)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise InvalidRequestError(
            f"{name!r} is not a parameter of {endpoint}; known: {listing(sorted(known))}{hint}",
            param=name,
            value=value,
        )


def check_model(given: Mapping[str, Any], allowed: Sequence[str], endpoint: str) -> str | None:
    """Return the given model, or None when none is given; refuse a model not ``allowed``."""
    model = given.get("model")
    if model is None:
        return None
    if not (isinstance(model, str) and model in allowed):
        fail("model", model, f"is not allowed for {endpoint}; allowed: {listing(allowed)}")
    return model


def require(given: Mapping[str, Any], *names: str) -> None:
    """Refuse a request missing one of ``names``."""
    for name in names:
        if name not in given:
            raise InvalidRequestError(f"{name} is required", param=name, value=None)


def check_fields(
    given: Mapping[str, Any],
    fields: Mapping[str, Check],
    row: Any,
    model_specific: Collection[str],
    takers: Callable[[str], Sequence[str]],
) -> None:
    """Run each given field's check, in table order; a model-specific field must be taken.

    ``takers(param)`` lists the models that take ``param``, for the message.
    """
    for name, check in fields.items():
        if name not in given:
            continue
        value = given[name]
        if name in model_specific and not row.takes(name):
            fail(
                name,
                value,
                f"is not supported{row.label}; allowed models: {listing(takers(name))}",
            )
        check(name, value, row)


# ---------------------------------------------------------------------------------------------
# Uploads
# ---------------------------------------------------------------------------------------------


def _check_upload(
    param: str, label: str, info: ImageFileInfo, rule: UploadRule, row: ImageModel
) -> None:
    named = f"{label} {show(info.filename)}"
    image_format = info.format
    if image_format not in rule.formats:
        found = (
            f"a {_FORMAT_NAMES[image_format]} file"
            if image_format
            else "not a PNG, JPEG or WebP file"
        )
        raise InvalidRequestError(
            f"{named} is {found} (judged by its first bytes, not its name){row.label}; "
            f"allowed: {', '.join(rule.formats)}",
            param=param,
            value=info.filename,
        )
    if info.size >= rule.max_bytes:
        raise InvalidRequestError(
            f"{named} is {info.size:,} bytes{row.label}; "
            f"allowed: under {rule.max_bytes // MIB} MB ({rule.max_bytes:,} bytes)",
            param=param,
            value=info.filename,
        )
    dimensions = info.dimensions
    if rule.square and dimensions is not None and dimensions[0] != dimensions[1]:
        raise InvalidRequestError(
            f"{named} is {dimensions[0]}x{dimensions[1]}{row.label}; allowed: square only",
            param=param,
            value=info.filename,
        )


def check_uploads(
    images: Sequence[ImageFileInfo],
    mask: ImageFileInfo | None,
    *,
    rule: UploadRule,
    mask_rule: UploadRule,
    row: ImageModel,
) -> None:
    """Check the uploads of a multipart edit against the model's rule and the mask rule."""
    if not 1 <= len(images) <= rule.max_count:
        allowed = "exactly 1" if rule.max_count == 1 else f"1 to {rule.max_count}"
        raise InvalidRequestError(
            f"image: {len(images)} images given{row.label}; allowed: {allowed}",
            param="image",
            value=len(images),
        )
    for index, info in enumerate(images):
        _check_upload("image", f"image[{index}]", info, rule, row)
    if mask is None:
        return
    _check_upload("mask", "mask", mask, mask_rule, row)
    # Skipped when either side is unreadable: the server still checks it.
    image_size, mask_size = images[0].dimensions, mask.dimensions
    if image_size is not None and mask_size is not None and image_size != mask_size:
        raise InvalidRequestError(
            f"mask {show(mask.filename)} is {mask_size[0]}x{mask_size[1]}; "
            f"it must match the first image, {image_size[0]}x{image_size[1]}",
            param="mask",
            value=mask.filename,
        )

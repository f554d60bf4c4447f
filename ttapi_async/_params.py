"""Check request parameters against the per-model rules of API.md before anything is sent.

Every ``validate_*`` function is pure and synchronous: it returns ``None`` or raises
:class:`~ttapi_async._errors.InvalidRequestError` whose ``param`` is the wire name of the
offending field (the emulator copies it into OpenAI's ``error.param``) and whose message
names that field, the bad value and what would have been allowed.

Conventions shared by every validator:

- A key whose value is ``None`` counts as "not given".
- A key the endpoint does not know is rejected: a typo (``mode`` for ``model``) would
  otherwise be dropped or ignored by the server without a word.
- ``bool`` is not an ``int`` here: ``n=True`` is a mistake, never 1.
- The rules are data (the tables below); the checks are small functions over them.
"""

from __future__ import annotations

import difflib
import re
import struct
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any, Final, NoReturn, TypeGuard
from urllib.parse import urlsplit

import attrs

from ttapi_async._errors import InvalidRequestError

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

# ---------------------------------------------------------------------------------------------
# Rule tables
# ---------------------------------------------------------------------------------------------

_GPT_ORDER: Final = ("gpt-image-2", "gpt-image-1.5", "gpt-image-1")
_DALLE_ORDER: Final = ("dall-e-2", "dall-e-3")
_IMAGE_ORDER: Final = _GPT_ORDER + _DALLE_ORDER

GPT_IMAGE_MODELS: Final[frozenset[str]] = frozenset(_GPT_ORDER)
_DALLE_MODELS: Final[frozenset[str]] = frozenset(_DALLE_ORDER)
IMAGE_MODELS: Final[frozenset[str]] = GPT_IMAGE_MODELS | _DALLE_MODELS

# The older doc defaults a missing model to dall-e-2 (the newest marks it required); we follow
# the server's fallback so that what we accept is what it would do.
_DEFAULT_IMAGE_MODEL: Final = "dall-e-2"
_EDIT_MODELS: Final = GPT_IMAGE_MODELS | {"dall-e-2"}

_GPT_JOB_ORDER: Final = (
    "gpt-4o-image",
    "gpt-image-1",
    "gpt-image-1.5",
    "gpt-image-2",
    "gpt-image-2-plus",
)
_DEFAULT_GPT_JOB_MODEL: Final = "gpt-image-2"
_DALLE3: Final = "dall-e-3"

_PROMPT_MAX_CHARS: Final[Mapping[str, int]] = {
    **dict.fromkeys(_GPT_ORDER, 32_000),
    "dall-e-2": 1_000,
    "dall-e-3": 4_000,
}
_MAX_N: Final[Mapping[str, int]] = {**dict.fromkeys(_IMAGE_ORDER, 10), "dall-e-3": 1}

_GPT_SIZES: Final = ("1024x1024", "1536x1024", "1024x1536", "auto")
_DALLE2_SIZES: Final = ("256x256", "512x512", "1024x1024")
_DALLE3_SIZES: Final = ("1024x1024", "1792x1024", "1024x1792")
_GENERATE_SIZES: Final[Mapping[str, tuple[str, ...]]] = {
    **dict.fromkeys(_GPT_ORDER, _GPT_SIZES),
    "dall-e-2": _DALLE2_SIZES,
    "dall-e-3": _DALLE3_SIZES,
}
_EDIT_SIZES: Final[Mapping[str, tuple[str, ...]]] = {
    **dict.fromkeys(_GPT_ORDER, _GPT_SIZES),
    "dall-e-2": _DALLE2_SIZES,
}
# The legacy endpoint's doc lists 1024x1792 before 1792x1024; same set either way.
_LEGACY_DALLE3_SIZES: Final[Mapping[str, tuple[str, ...]]] = {_DALLE3: _DALLE3_SIZES}

_QUALITIES: Final[Mapping[str, tuple[str, ...]]] = {
    **dict.fromkeys(_GPT_ORDER, ("auto", "high", "medium", "low")),
    "dall-e-2": ("auto", "standard"),
    "dall-e-3": ("auto", "hd", "standard"),
}

_BACKGROUNDS: Final = ("transparent", "opaque", "auto")
_MODERATIONS: Final = ("low", "auto")
_OUTPUT_FORMATS: Final = ("png", "jpeg", "webp")
_RESPONSE_FORMATS: Final = ("url", "b64_json")
_STYLES: Final = ("vivid", "natural")
_INPUT_FIDELITIES: Final = ("high", "low")
_LEGACY_QUALITIES: Final = ("standard", "hd")
_ASPECT_RATIOS: Final = ("1:1", "3:4", "4:3", "16:9", "9:16")

_DEFAULT_OUTPUT_FORMAT: Final = "png"
_ALPHA_FORMATS: Final = ("png", "webp")  # what background=transparent can be saved as
_LOSSY_FORMATS: Final = ("jpeg", "webp")  # what output_compression applies to
_COMPRESSION_RANGE: Final = (0, 100)
_PARTIAL_IMAGES_RANGE: Final = (0, 3)

# Parameters only some models take; any non-None value for another model is an error.
# stream is not here: stream=False is the default everywhere, only stream=True is GPT-only.
_IMAGE_ONLY_FOR: Final[Mapping[str, frozenset[str]]] = {
    "background": GPT_IMAGE_MODELS,
    "moderation": GPT_IMAGE_MODELS,
    "output_compression": GPT_IMAGE_MODELS,
    "output_format": GPT_IMAGE_MODELS,
    "partial_images": GPT_IMAGE_MODELS,
    "input_fidelity": GPT_IMAGE_MODELS,
    "response_format": _DALLE_MODELS,
    "style": frozenset({_DALLE3}),
}
_GPT_JOB_ONLY_FOR: Final[Mapping[str, frozenset[str]]] = {
    "aspect_ratio": frozenset({"gpt-image-2"}),
    "size": frozenset({"gpt-image-2-plus"}),
}

_MIB: Final = 1024 * 1024
_MAX_EDIT_IMAGES: Final = 16
_URL_SCHEMES: Final = ("http", "https")
_IMAGE_REF_KEYS: Final = ("image_url", "file_id")
# JSON edits take data: URLs too, as OpenAI's images[].image_url does.
_IMAGE_REF_URL_SCHEMES: Final = ("http", "https", "data")

_SHOW_MAX_CHARS: Final = 60


@attrs.frozen
class _FreeSizeRule:
    """Bounds for a free ``WxH`` size string."""

    multiple: int
    min_edge: int
    max_ratio: int
    max_edge: int | None = None
    pixels: tuple[int, int] | None = None

    def problem(self, width: int, height: int) -> str | None:
        """Return why ``width x height`` breaks the rule, or None."""
        short, long = sorted((width, height))
        if width % self.multiple or height % self.multiple:
            return f"width and height must be multiples of {self.multiple}"
        if short < self.min_edge:
            return f"each edge must be at least {self.min_edge}"
        if self.max_edge is not None and long > self.max_edge:
            return f"the longest edge must be at most {self.max_edge}"
        if long > self.max_ratio * short:
            return f"the aspect ratio must be between 1:{self.max_ratio} and {self.max_ratio}:1"
        if self.pixels is not None and not self.pixels[0] <= width * height <= self.pixels[1]:
            return f"width*height must be {self.pixels[0]:,} to {self.pixels[1]:,} pixels"
        return None

    def describe(self) -> str:
        """Return the rule in words, for "allowed:" in messages."""
        parts = [f"any WxH with edges multiples of {self.multiple} and >= {self.min_edge}"]
        if self.max_edge is not None:
            parts.append(f"longest edge <= {self.max_edge}")
        parts.append(f"aspect ratio between 1:{self.max_ratio} and {self.max_ratio}:1")
        if self.pixels is not None:
            parts.append(f"{self.pixels[0]:,} to {self.pixels[1]:,} pixels")
        return ", ".join(parts)


# gpt-image-2 on /v1: the contract gives only "/16" and "1:3..3:1". The 16 px floor is ours
# (a smaller multiple of 16 is 0); we set no ceiling so the server, not us, judges big sizes.
_GPT_IMAGE_2_FREE_SIZE: Final = _FreeSizeRule(multiple=16, min_edge=16, max_ratio=3)
# gpt-image-2-plus on /openai/gpt: every bound is from the contract (section 6).
_GPT_IMAGE_2_PLUS_SIZE: Final = _FreeSizeRule(
    multiple=16, min_edge=16, max_ratio=3, max_edge=3840, pixels=(655_360, 8_294_400)
)
_FREE_SIZES: Final[Mapping[str, _FreeSizeRule]] = {"gpt-image-2": _GPT_IMAGE_2_FREE_SIZE}
# ASCII digits only (\d would take other scripts' digits); 6 digits keeps int() cheap.
_WXH: Final = re.compile(r"([1-9][0-9]{0,5})x([1-9][0-9]{0,5})")


@attrs.frozen
class _UploadRule:
    """What one model accepts as edit uploads."""

    max_count: int
    max_bytes: int  # exclusive: the docs say "smaller than"
    formats: tuple[str, ...]
    square: bool


# "MB" read as MiB, the more generous reading: the server has the final word on the edge case.
_GPT_UPLOADS: Final = _UploadRule(
    max_count=_MAX_EDIT_IMAGES, max_bytes=25 * _MIB, formats=("png", "webp", "jpeg"), square=False
)
_UPLOAD_RULES: Final[Mapping[str, _UploadRule]] = {
    **dict.fromkeys(_GPT_ORDER, _GPT_UPLOADS),
    "dall-e-2": _UploadRule(max_count=1, max_bytes=4 * _MIB, formats=("png",), square=True),
}
_MASK_RULE: Final = _UploadRule(max_count=1, max_bytes=4 * _MIB, formats=("png",), square=False)

# ---------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------


def _show(value: object) -> str:
    """Return ``repr(value)`` cut to a length that keeps long prompts out of messages."""
    text = repr(value)
    if len(text) <= _SHOW_MAX_CHARS:
        return text
    return text[: _SHOW_MAX_CHARS - 3] + "..."


def _fail(param: str, value: object, problem: str, *, label: str | None = None) -> NoReturn:
    # `label` names a part of `param` (``images[2]``); `param` stays the wire field's name.
    shown = label or param
    raise InvalidRequestError(f"{shown}={_show(value)} {problem}", param=param, value=value)


def _listing(allowed: Iterable[str]) -> str:
    return ", ".join(allowed)


def _for_model(model: str | None) -> str:
    return f" for model {model!r}" if model else ""


def _not_allowed(param: str, value: object, allowed: Iterable[str], model: str | None) -> NoReturn:
    _fail(param, value, f"is not allowed{_for_model(model)}; allowed: {_listing(allowed)}")


def _in_order(names: Collection[str], order: Sequence[str]) -> list[str]:
    return [name for name in order if name in names] + sorted(set(names) - set(order))


# ---------------------------------------------------------------------------------------------
# Field checks: (param, value, model) -> None
# ---------------------------------------------------------------------------------------------

_Check = Callable[[str, Any, str], None]


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int_range(param: str, value: object, low: int, high: int, model: str) -> None:
    if not _is_int(value):
        _fail(param, value, f"must be an integer from {low} to {high}{_for_model(model)}")
    if not low <= value <= high:
        only = f"exactly {low}" if low == high else f"from {low} to {high}"
        _fail(param, value, f"is out of range{_for_model(model)}; allowed: {only}")


def _enum(allowed: Sequence[str]) -> _Check:
    def check(param: str, value: Any, model: str) -> None:
        if not (isinstance(value, str) and value in allowed):
            _not_allowed(param, value, allowed, model=None)

    return check


def _enum_per_model(table: Mapping[str, Sequence[str]]) -> _Check:
    def check(param: str, value: Any, model: str) -> None:
        allowed = table[model]
        if not (isinstance(value, str) and value in allowed):
            _not_allowed(param, value, allowed, model)

    return check


def _prompt_check(max_chars: Mapping[str, int]) -> _Check:
    def check(param: str, value: Any, model: str) -> None:
        if not isinstance(value, str):
            _fail(param, value, "must be a string")
        if not value.strip():
            _fail(param, value, "must not be empty")
        limit = max_chars.get(model)
        if limit is not None and len(value) > limit:
            # The value is shown cut short: a 32,000-character prompt has no place in a message.
            _fail(
                param,
                value,
                f"is {len(value):,} characters long; model {model!r} allows at most {limit:,}",
            )

    return check


def _check_n(param: str, value: Any, model: str) -> None:
    _check_int_range(param, value, 1, _MAX_N[model], model)


def _check_compression(param: str, value: Any, model: str) -> None:
    _check_int_range(param, value, *_COMPRESSION_RANGE, model)


def _check_partial_images(param: str, value: Any, model: str) -> None:
    _check_int_range(param, value, *_PARTIAL_IMAGES_RANGE, model)


def _check_stream(param: str, value: Any, model: str) -> None:
    if not isinstance(value, bool):
        _fail(param, value, "must be a bool (True or False)")
    if value and model not in GPT_IMAGE_MODELS:
        _fail(
            param,
            value,
            f"is not supported{_for_model(model)}; streaming needs one of: {_listing(_GPT_ORDER)}",
        )


def _check_user(param: str, value: Any, model: str) -> None:
    if not isinstance(value, str):
        _fail(param, value, "must be a string")


def _parse_wxh(value: object) -> tuple[int, int] | None:
    match = _WXH.fullmatch(value) if isinstance(value, str) else None
    return (int(match[1]), int(match[2])) if match else None


def _size_check(fixed: Mapping[str, Sequence[str]], free: Mapping[str, _FreeSizeRule]) -> _Check:
    def check(param: str, value: Any, model: str) -> None:
        allowed = fixed.get(model, ())
        if isinstance(value, str) and value in allowed:
            return
        rule = free.get(model)
        if rule is None:
            _not_allowed(param, value, allowed, model)
        choices = f"{_listing(allowed)}, or {rule.describe()}" if allowed else rule.describe()
        parsed = _parse_wxh(value)
        problem = "is not a WxH size" if parsed is None else rule.problem(*parsed)
        if problem is not None:
            _fail(param, value, f"is not allowed{_for_model(model)}: {problem}; allowed: {choices}")

    return check


def _free_size_check(rule: _FreeSizeRule) -> _Check:
    return _size_check({}, {model: rule for model in _GPT_JOB_ORDER})


def _is_url(value: object, schemes: Sequence[str]) -> bool:
    if not isinstance(value, str) or any(ch.isspace() for ch in value):
        return False
    parts = urlsplit(value)
    if parts.scheme not in schemes:
        return False
    return parts.scheme == "data" or bool(parts.netloc)


def _check_url(param: str, value: Any, model: str) -> None:
    if not _is_url(value, _URL_SCHEMES):
        _fail(param, value, "must be an http(s) URL")


def _check_url_list(param: str, value: Any, model: str) -> None:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        _fail(param, value, "must be a list of http(s) URLs")
    for index, item in enumerate(value):
        if not _is_url(item, _URL_SCHEMES):
            _fail(param, item, "must be an http(s) URL", label=f"{param}[{index}]")


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


def _check_image_ref(param: str, value: Any, model: str) -> None:
    problem = _image_ref_problem(value)
    if problem is not None:
        _fail(param, value, problem)


def _check_image_refs(param: str, value: Any, model: str) -> None:
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Sequence):
        _fail(param, value, "must be a list of {'image_url': ...} or {'file_id': ...} dicts")
    if not 1 <= len(value) <= _MAX_EDIT_IMAGES:
        _fail(param, value, f"holds {len(value)} images; allowed: 1 to {_MAX_EDIT_IMAGES}")
    for index, item in enumerate(value):
        problem = _image_ref_problem(item)
        if problem is not None:
            _fail(param, item, problem, label=f"{param}[{index}]")


# ---------------------------------------------------------------------------------------------
# Combination checks: (given, model) -> None
# ---------------------------------------------------------------------------------------------

_Combination = Callable[[Mapping[str, Any], str], None]


def _transparent_needs_alpha(given: Mapping[str, Any], model: str) -> None:
    output_format = given.get("output_format", _DEFAULT_OUTPUT_FORMAT)
    if given.get("background") == "transparent" and output_format not in _ALPHA_FORMATS:
        _fail(
            "background",
            "transparent",
            f"needs output_format {' or '.join(_ALPHA_FORMATS)}, "
            f"not {output_format!r}; allowed with it: opaque, auto",
        )


def _compression_needs_lossy_format(given: Mapping[str, Any], model: str) -> None:
    output_format = given.get("output_format", _DEFAULT_OUTPUT_FORMAT)
    if "output_compression" in given and output_format not in _LOSSY_FORMATS:
        _fail(
            "output_compression",
            given["output_compression"],
            f"only applies to output_format {' or '.join(_LOSSY_FORMATS)}, "
            f"not {output_format!r} (png is the default)",
        )


def _partial_images_need_stream(given: Mapping[str, Any], model: str) -> None:
    if given.get("partial_images", 0) > 0 and given.get("stream") is not True:
        _fail(
            "partial_images",
            given["partial_images"],
            "needs stream=True; allowed without streaming: 0",
        )


_IMAGE_COMBINATIONS: Final[tuple[_Combination, ...]] = (
    _transparent_needs_alpha,
    _compression_needs_lossy_format,
    _partial_images_need_stream,
)

# ---------------------------------------------------------------------------------------------
# Endpoint tables (order = order of checking)
# ---------------------------------------------------------------------------------------------

_COMMON_IMAGE_FIELDS: Final[Mapping[str, _Check]] = {
    "prompt": _prompt_check(_PROMPT_MAX_CHARS),
    "n": _check_n,
    "quality": _enum_per_model(_QUALITIES),
    "response_format": _enum(_RESPONSE_FORMATS),
    "output_format": _enum(_OUTPUT_FORMATS),
    "output_compression": _check_compression,
    "background": _enum(_BACKGROUNDS),
    "stream": _check_stream,
    "partial_images": _check_partial_images,
    "user": _check_user,
}
_GENERATE_FIELDS: Final[Mapping[str, _Check]] = {
    **_COMMON_IMAGE_FIELDS,
    "size": _size_check(_GENERATE_SIZES, _FREE_SIZES),
    "moderation": _enum(_MODERATIONS),
    "style": _enum(_STYLES),
}
_EDIT_FIELDS: Final[Mapping[str, _Check]] = {
    **_COMMON_IMAGE_FIELDS,
    "size": _size_check(_EDIT_SIZES, _FREE_SIZES),
    "input_fidelity": _enum(_INPUT_FIDELITIES),
}
_EDIT_JSON_FIELDS: Final[Mapping[str, _Check]] = {
    **_EDIT_FIELDS,
    "images": _check_image_refs,
    "mask": _check_image_ref,
}
_LEGACY_DALLE3_FIELDS: Final[Mapping[str, _Check]] = {
    "prompt": _prompt_check(_PROMPT_MAX_CHARS),
    "size": _size_check(_LEGACY_DALLE3_SIZES, {}),
    "n": _check_n,
    "quality": _enum(_LEGACY_QUALITIES),
    "style": _enum(_STYLES),
    "response_format": _enum(_RESPONSE_FORMATS),
}
# The job endpoints document no prompt limit: we check only that there is one.
_4O_JOB_FIELDS: Final[Mapping[str, _Check]] = {
    "prompt": _prompt_check({}),
    "referImages": _check_url_list,
    "hookUrl": _check_url,
}
_GPT_JOB_FIELDS: Final[Mapping[str, _Check]] = {
    **_4O_JOB_FIELDS,
    "aspect_ratio": _enum(_ASPECT_RATIOS),
    "size": _free_size_check(_GPT_IMAGE_2_PLUS_SIZE),
}

# ---------------------------------------------------------------------------------------------
# Shared steps
# ---------------------------------------------------------------------------------------------


def _given(params: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in params.items() if value is not None}


def _reject_unknown(given: Mapping[str, Any], known: Collection[str], endpoint: str) -> None:
    for key, value in given.items():
        if key in known:
            continue
        name = str(key)
        close = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise InvalidRequestError(
            f"{name!r} is not a parameter of {endpoint}; known: {_listing(sorted(known))}{hint}",
            param=name,
            value=value,
        )


def _resolve_model(
    given: Mapping[str, Any],
    allowed: Collection[str],
    order: Sequence[str],
    default: str,
    endpoint: str,
) -> str:
    if "model" not in given:
        if default not in allowed:
            choices = _listing(_in_order(allowed, order))
            raise InvalidRequestError(
                f"model is not given and its default {default!r} is not allowed for {endpoint}; "
                f"allowed: {choices}",
                param="model",
                value=None,
            )
        return default
    model = given["model"]
    if not (isinstance(model, str) and model in allowed):
        # Built only here: the list of choices costs more than the whole check that passes.
        choices = _listing(_in_order(allowed, order))
        _fail("model", model, f"is not allowed for {endpoint}; allowed: {choices}")
    return model


def _require(given: Mapping[str, Any], *names: str) -> None:
    for name in names:
        if name not in given:
            raise InvalidRequestError(f"{name} is required", param=name, value=None)


def _check_fields(
    given: Mapping[str, Any],
    fields: Mapping[str, _Check],
    model: str,
    only_for: Mapping[str, frozenset[str]],
    order: Sequence[str],
) -> None:
    for name, check in fields.items():
        if name not in given:
            continue
        value = given[name]
        models = only_for.get(name)
        if models is not None and model not in models:
            _fail(
                name,
                value,
                f"is not supported{_for_model(model)}; "
                f"allowed models: {_listing(_in_order(models, order))}",
            )
        check(name, value, model)


def _check_combinations(
    given: Mapping[str, Any], model: str, rules: Iterable[_Combination]
) -> None:
    for rule in rules:
        rule(given, model)


def _check_image_request(
    given: Mapping[str, Any],
    fields: Mapping[str, _Check],
    models: Collection[str],
    endpoint: str,
    required: Sequence[str],
) -> str:
    _reject_unknown(given, {"model", *fields}, endpoint)
    model = _resolve_model(given, models, _IMAGE_ORDER, _DEFAULT_IMAGE_MODEL, endpoint)
    _require(given, *required)
    _check_fields(given, fields, model, _IMAGE_ONLY_FOR, _IMAGE_ORDER)
    _check_combinations(given, model, _IMAGE_COMBINATIONS)
    return model


# ---------------------------------------------------------------------------------------------
# Uploads
# ---------------------------------------------------------------------------------------------

_PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI: Final = b"\xff\xd8\xff"
# JPEG start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) share the range.
_JPEG_SOF_MARKERS: Final = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RSTn, SOI, EOI.
_JPEG_STANDALONE_MARKERS: Final = frozenset({0x01, *range(0xD0, 0xDA)})
_JPEG_SOS: Final = 0xDA
_FORMAT_NAMES: Final = {"png": "PNG", "jpeg": "JPEG", "webp": "WebP"}


def sniff_image_format(head: bytes) -> str | None:
    """Return "png", "jpeg" or "webp" from a file's first bytes, or None for anything else."""
    if head.startswith(_PNG_SIGNATURE):
        return "png"
    if head.startswith(_JPEG_SOI):
        return "jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    return None


def _png_dimensions(head: bytes) -> tuple[int, int] | None:
    if len(head) < 24 or head[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", head[16:24])
    return width, height


def _webp_dimensions(head: bytes) -> tuple[int, int] | None:
    chunk, data = head[12:16], head[20:30]
    if len(data) < 10:
        return None
    if chunk == b"VP8X":  # canvas size minus one, 24-bit little-endian
        return (
            int.from_bytes(data[4:7], "little") + 1,
            int.from_bytes(data[7:10], "little") + 1,
        )
    if chunk == b"VP8L" and data[0] == 0x2F:  # 14-bit width-1 and height-1 after the signature
        bits = int.from_bytes(data[1:5], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 " and data[3:6] == b"\x9d\x01\x2a":  # key frame start code, then sizes
        width, height = struct.unpack("<HH", data[6:10])
        return width & 0x3FFF, height & 0x3FFF
    return None


def _jpeg_dimensions(head: bytes) -> tuple[int, int] | None:
    # Walk the marker segments that fit in `head`; the frame header usually follows EXIF, so
    # it is found only when the caller passed enough bytes.
    pos = 2
    while pos + 4 <= len(head):
        if head[pos] != 0xFF:
            return None
        marker = head[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _JPEG_STANDALONE_MARKERS:
            pos += 2
            continue
        if marker == _JPEG_SOS:
            return None
        if marker in _JPEG_SOF_MARKERS:
            if pos + 9 > len(head):
                return None
            height, width = struct.unpack(">HH", head[pos + 5 : pos + 9])
            return width, height
        (length,) = struct.unpack(">H", head[pos + 2 : pos + 4])
        pos += 2 + length
    return None


_DIMENSION_READERS: Final[Mapping[str, Callable[[bytes], tuple[int, int] | None]]] = {
    "png": _png_dimensions,
    "webp": _webp_dimensions,
    "jpeg": _jpeg_dimensions,
}


def image_dimensions(head: bytes) -> tuple[int, int] | None:
    """Return (width, height) read from a PNG, WebP or JPEG head, or None when unreadable.

    PNG needs 24 bytes, WebP 30; JPEG is found only if its frame header lies within ``head``.
    A zero width or height (a corrupt header) counts as unreadable.
    """
    image_format = sniff_image_format(head)
    reader = _DIMENSION_READERS.get(image_format) if image_format else None
    size = reader(head) if reader else None
    if size is None or 0 in size:
        return None
    return size


@attrs.frozen
class ImageFileInfo:
    """Describe one upload by its name, first bytes and size, without holding it in memory."""

    filename: str
    #: at least the first 64 bytes (fewer if the file is shorter)
    head: bytes = attrs.field(repr=False)
    #: total size in bytes
    size: int

    @property
    def format(self) -> str | None:
        """Return "png", "jpeg" or "webp" by magic bytes, or None."""
        return sniff_image_format(self.head)

    @property
    def dimensions(self) -> tuple[int, int] | None:
        """Return (width, height) when the head shows them, else None."""
        return image_dimensions(self.head)


def _check_upload(
    param: str, label: str, info: ImageFileInfo, rule: _UploadRule, model: str
) -> None:
    named = f"{label} {_show(info.filename)}"
    image_format = info.format
    if image_format not in rule.formats:
        found = (
            f"a {_FORMAT_NAMES[image_format]} file"
            if image_format
            else "not a PNG, JPEG or WebP file"
        )
        raise InvalidRequestError(
            f"{named} is {found} (judged by its first bytes, not its name){_for_model(model)}; "
            f"allowed: {', '.join(rule.formats)}",
            param=param,
            value=info.filename,
        )
    if info.size >= rule.max_bytes:
        raise InvalidRequestError(
            f"{named} is {info.size:,} bytes{_for_model(model)}; "
            f"allowed: under {rule.max_bytes // _MIB} MB ({rule.max_bytes:,} bytes)",
            param=param,
            value=info.filename,
        )
    dimensions = info.dimensions
    if rule.square and dimensions is not None and dimensions[0] != dimensions[1]:
        raise InvalidRequestError(
            f"{named} is {dimensions[0]}x{dimensions[1]}{_for_model(model)}; allowed: square only",
            param=param,
            value=info.filename,
        )


def _check_uploads(images: Sequence[ImageFileInfo], mask: ImageFileInfo | None, model: str) -> None:
    rule = _UPLOAD_RULES[model]
    if not 1 <= len(images) <= rule.max_count:
        allowed = "exactly 1" if rule.max_count == 1 else f"1 to {rule.max_count}"
        raise InvalidRequestError(
            f"image: {len(images)} images given{_for_model(model)}; allowed: {allowed}",
            param="image",
            value=len(images),
        )
    for index, info in enumerate(images):
        _check_upload("image", f"image[{index}]", info, rule, model)
    if mask is None:
        return
    _check_upload("mask", "mask", mask, _MASK_RULE, model)
    # Skipped when either side is unreadable: the server still checks it.
    image_size, mask_size = images[0].dimensions, mask.dimensions
    if image_size is not None and mask_size is not None and image_size != mask_size:
        raise InvalidRequestError(
            f"mask {_show(mask.filename)} is {mask_size[0]}x{mask_size[1]}; "
            f"it must match the first image, {image_size[0]}x{image_size[1]}",
            param="mask",
            value=mask.filename,
        )


# ---------------------------------------------------------------------------------------------
# Public validators
# ---------------------------------------------------------------------------------------------


def validate_generate(params: Mapping[str, Any]) -> None:
    """Check a ``POST /v1/images/generations`` body (API.md section 1).

    A missing ``model`` is taken as ``dall-e-2``, the older doc's default (the newest marks
    the field required; the server falls back rather than fails). ``stream=True`` and
    ``partial_images`` are GPT Image only, as on OpenAI; ``stream=False`` is fine anywhere.
    gpt-image-2 also takes a free ``WxH``: edges multiples of 16 and at least 16, aspect ratio
    within 1:3..3:1; no upper bound is checked here, the server judges large sizes.
    """
    key = _memo_key(params)
    model = _VALID_GENERATE.get(key) if key is not None else None
    if model is not None:
        # Every parameter but the prompt was found valid before, for this model: no check
        # reads the prompt but its own, so only that one can fail now, and it would have
        # been the first to fail in the full run too.
        prompt = params.get("prompt")
        if prompt is None:
            raise InvalidRequestError("prompt is required", param="prompt", value=None)
        _GENERATE_FIELDS["prompt"]("prompt", prompt, model)
        return
    model = _check_image_request(
        _given(params), _GENERATE_FIELDS, IMAGE_MODELS, "image generation", ("prompt",)
    )
    if key is not None:
        if len(_VALID_GENERATE) >= _MEMO_MAX:
            _VALID_GENERATE.clear()
        _VALID_GENERATE[key] = model


# Speed only: the sets of parameters other than the prompt (model, size, quality, ...) that
# validate_generate found valid, mapped to their model. Calls repeat the same few settings
# with new prompts; a set seen before needs only its prompt checked. Each value is keyed
# with its exact type (True == 1 == 1.0 to a dict, never to the rules); values of any other
# type are not remembered at all.
_MemoKey = tuple[tuple[str, type, object], ...]
_VALID_GENERATE: dict[_MemoKey, str] = {}
_MEMO_MAX: Final = 256
_MEMO_TYPES: Final = frozenset({str, int, float, bool})


def _memo_key(params: Mapping[str, Any]) -> _MemoKey | None:
    """Return the given parameters but the prompt, each with its type; None: not memoizable."""
    key = []
    for name, value in params.items():
        if value is None or name == "prompt":
            continue  # None is "not given" (see _given)
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
    """Check a multipart ``POST /v1/images/edits`` request (API.md section 2).

    ``params`` holds the form fields (without ``image``/``mask``); a missing ``model`` is
    ``dall-e-2``. Upload formats are judged by magic bytes, never by file name; "MB" is MiB.
    The mask must match the first image's dimensions when both are readable from their heads.
    """
    model = _check_image_request(
        _given(params), _EDIT_FIELDS, _EDIT_MODELS, "image edits", ("prompt",)
    )
    _check_uploads(images, mask, model)


def validate_edit_json(params: Mapping[str, Any]) -> None:
    """Check a JSON ``POST /v1/images/edits`` body with image references (API.md section 7).

    Only GPT Image models take this form, so a missing ``model`` (default ``dall-e-2``) is an
    error. ``images[].image_url`` may be an http(s) or a ``data:`` URL, as on OpenAI.
    """
    _check_image_request(
        _given(params),
        _EDIT_JSON_FIELDS,
        GPT_IMAGE_MODELS,
        "image edits with JSON images",
        ("prompt", "images"),
    )


def validate_dalle3(params: Mapping[str, Any]) -> None:
    """Check a legacy ``POST /openai/v1/images/generations`` body (API.md section 3).

    ``size`` is required there; ``model``, if given, must be ``dall-e-3``; quality is
    ``standard`` or ``hd`` (no ``auto`` on this endpoint).
    """
    given = _given(params)
    endpoint = "the legacy DALL-E 3 endpoint"
    _reject_unknown(given, {"model", *_LEGACY_DALLE3_FIELDS}, endpoint)
    model = _resolve_model(given, {_DALLE3}, _DALLE_ORDER, _DALLE3, endpoint)
    _require(given, "prompt", "size")
    _check_fields(given, _LEGACY_DALLE3_FIELDS, model, {}, _DALLE_ORDER)


def validate_4o_job(params: Mapping[str, Any]) -> None:
    """Check a ``POST /openai/4o-image/generations`` body, keyed by wire (camelCase) names.

    An empty ``referImages`` list is accepted and means "no reference images".
    """
    given = _given(params)
    _reject_unknown(given, _4O_JOB_FIELDS, "GPT-4o image jobs")
    _require(given, "prompt")
    _check_fields(given, _4O_JOB_FIELDS, "gpt-4o-image", {}, ())


def validate_gpt_job(params: Mapping[str, Any]) -> None:
    """Check a ``POST /openai/gpt/generations`` body (API.md section 6), by wire names.

    ``model`` defaults to ``gpt-image-2``; ``aspect_ratio`` is gpt-image-2 only and ``size``
    gpt-image-2-plus only, with every bound the contract gives for it.
    """
    given = _given(params)
    endpoint = "GPT image jobs"
    _reject_unknown(given, {"model", *_GPT_JOB_FIELDS}, endpoint)
    model = _resolve_model(
        given, frozenset(_GPT_JOB_ORDER), _GPT_JOB_ORDER, _DEFAULT_GPT_JOB_MODEL, endpoint
    )
    _require(given, "prompt")
    _check_fields(given, _GPT_JOB_FIELDS, model, _GPT_JOB_ONLY_FOR, _GPT_JOB_ORDER)

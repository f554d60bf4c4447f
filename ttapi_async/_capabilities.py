"""The models and what each one takes: one row per model, read by the validator and the
emulator, and the one model list for anything else that names models (the CLI help).

Adding a model is adding a row to ``IMAGE_MODEL_ROWS`` or ``GPT_JOB_MODEL_ROWS``. Every
number here comes from docs/contract.md, which says where each one is documented.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final

import attrs

__all__ = [
    "DALLE3",
    "EDIT_MODELS",
    "GENERATE_MODELS",
    "GPT_IMAGE_2_SIZE",
    "GPT_IMAGE_MODELS",
    "GPT_JOB_DEFAULT_MODEL",
    "GPT_JOB_MODELS",
    "GPT_JOB_MODEL_ROWS",
    "IMAGE_MODELS",
    "IMAGE_MODEL_ROWS",
    "JSON_EDIT_MODELS",
    "MASK_RULE",
    "ImageModel",
    "JobModel",
    "SizeRule",
    "UploadRule",
    "any_model",
]

MIB: Final = 1024 * 1024


@attrs.frozen
class SizeRule:
    """Bounds for a free ``WxH`` size string."""

    multiple: int
    max_ratio: int
    max_edge: int
    pixels: tuple[int, int]

    def problem(self, width: int, height: int) -> str | None:
        """Return why ``width x height`` (both positive) breaks the rule, or None."""
        short, long = sorted((width, height))
        if width % self.multiple or height % self.multiple:
            return f"width and height must be multiples of {self.multiple}"
        if long > self.max_edge:
            return f"the longest edge must be at most {self.max_edge}"
        if long > self.max_ratio * short:
            return f"the aspect ratio must be between 1:{self.max_ratio} and {self.max_ratio}:1"
        if not self.pixels[0] <= width * height <= self.pixels[1]:
            return f"width*height must be {self.pixels[0]:,} to {self.pixels[1]:,} pixels"
        return None

    def describe(self) -> str:
        """Return the rule in words, for "allowed:" in messages."""
        return (
            f"any WxH with edges multiples of {self.multiple}, longest edge <= {self.max_edge}, "
            f"aspect ratio between 1:{self.max_ratio} and {self.max_ratio}:1, "
            f"{self.pixels[0]:,} to {self.pixels[1]:,} pixels"
        )


@attrs.frozen
class UploadRule:
    """What one model accepts as edit uploads."""

    max_count: int
    max_bytes: int  # exclusive: the docs say "less than"
    formats: tuple[str, ...]
    square: bool


# gpt-image-2's free sizes, on /v1 and as gpt-image-2-plus on /openai/gpt: /16, 1:3..3:1, at
# most 3840x2160 (the longest edge 3840, 8,294,400 pixels), at least 655,360 pixels.
GPT_IMAGE_2_SIZE: Final = SizeRule(
    multiple=16, max_ratio=3, max_edge=3840, pixels=(655_360, 8_294_400)
)

# "MB" read as MiB, the more generous reading: the server has the final word on the edge case.
_GPT_UPLOADS: Final = UploadRule(
    max_count=16, max_bytes=50 * MIB, formats=("png", "webp", "jpeg"), square=False
)
_DALLE2_UPLOADS: Final = UploadRule(max_count=1, max_bytes=4 * MIB, formats=("png",), square=True)
MASK_RULE: Final = UploadRule(max_count=1, max_bytes=4 * MIB, formats=("png",), square=False)

_GPT_SIZES: Final = ("1024x1024", "1536x1024", "1024x1536", "auto")
_GPT_QUALITIES: Final = ("auto", "high", "medium", "low")
# The parameters only GPT Image models take. stream is one: stream=True needs it, while
# stream=False is the default and fine for every model.
_GPT_PARAMS: Final = frozenset(
    {
        "background",
        "moderation",
        "output_compression",
        "output_format",
        "stream",
        "partial_images",
        "input_fidelity",
    }
)


@attrs.frozen
class ImageModel:
    """One model of ``/v1/images/*``: its limits and the parameters only some models take."""

    #: None for the "any model" row a request without ``model`` is checked against
    name: str | None
    prompt_max: int
    max_n: int
    sizes: tuple[str, ...]
    qualities: tuple[str, ...]
    #: the model-specific parameters this model takes (the rest are common to all)
    params: frozenset[str]
    free_sizes: tuple[SizeRule, ...] = ()
    #: None: the model does not edit
    uploads: UploadRule | None = None
    #: its edit sizes when they differ from its generation sizes
    edit_sizes: tuple[str, ...] | None = None
    json_edits: bool = False

    def takes(self, param: str) -> bool:
        """Return True if this model takes the model-specific ``param``."""
        return param in self.params

    @property
    def label(self) -> str:
        """Return " for model 'x'" (or " for any model"), for messages."""
        return f" for model {self.name!r}" if self.name else " for any model"


def _gpt(name: str, *, free_sizes: tuple[SizeRule, ...] = ()) -> ImageModel:
    return ImageModel(
        name=name,
        prompt_max=32_000,
        max_n=10,
        sizes=_GPT_SIZES,
        qualities=_GPT_QUALITIES,
        params=_GPT_PARAMS,
        free_sizes=free_sizes,
        uploads=_GPT_UPLOADS,
        json_edits=True,
    )


DALLE3: Final = "dall-e-3"

#: In the order messages and help list them.
IMAGE_MODEL_ROWS: Final[Mapping[str, ImageModel]] = {
    row.name: row
    for row in (
        _gpt("gpt-image-2", free_sizes=(GPT_IMAGE_2_SIZE,)),
        _gpt("gpt-image-1.5"),
        _gpt("gpt-image-1"),
        ImageModel(
            name="dall-e-2",
            prompt_max=1_000,
            max_n=10,
            sizes=("256x256", "512x512", "1024x1024"),
            qualities=("auto", "standard"),
            params=frozenset({"response_format"}),
            uploads=_DALLE2_UPLOADS,
        ),
        ImageModel(
            name=DALLE3,
            prompt_max=4_000,
            max_n=1,
            sizes=("1024x1024", "1792x1024", "1024x1792"),
            qualities=("auto", "hd", "standard"),
            params=frozenset({"response_format", "style"}),
        ),
    )
    if row.name is not None
}

GENERATE_MODELS: Final = tuple(IMAGE_MODEL_ROWS)
EDIT_MODELS: Final = tuple(name for name, row in IMAGE_MODEL_ROWS.items() if row.uploads)
JSON_EDIT_MODELS: Final = tuple(name for name, row in IMAGE_MODEL_ROWS.items() if row.json_edits)
IMAGE_MODELS: Final[frozenset[str]] = frozenset(GENERATE_MODELS)
GPT_IMAGE_MODELS: Final[frozenset[str]] = frozenset(JSON_EDIT_MODELS)


def _ordered_union(groups: Iterable[Iterable[str]]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(item for group in groups for item in group))


def any_model(names: Iterable[str], *, edits: bool = False) -> ImageModel:
    """Return the row a request without ``model`` is checked against: what any of ``names`` takes.

    Each limit is the loosest among them, so the row refuses only what every one refuses.
    """
    rows = [IMAGE_MODEL_ROWS[name] for name in names]
    uploads = [row.uploads for row in rows if row.uploads is not None]
    sizes = [(row.edit_sizes or row.sizes) if edits else row.sizes for row in rows]
    return ImageModel(
        name=None,
        prompt_max=max(row.prompt_max for row in rows),
        max_n=max(row.max_n for row in rows),
        sizes=_ordered_union(sizes),
        qualities=_ordered_union(row.qualities for row in rows),
        params=frozenset().union(*(row.params for row in rows)),
        free_sizes=tuple(dict.fromkeys(rule for row in rows for rule in row.free_sizes)),
        uploads=UploadRule(
            max_count=max(rule.max_count for rule in uploads),
            max_bytes=max(rule.max_bytes for rule in uploads),
            formats=_ordered_union(rule.formats for rule in uploads),
            square=all(rule.square for rule in uploads),
        )
        if uploads
        else None,
        json_edits=any(row.json_edits for row in rows),
    )


@attrs.frozen
class JobModel:
    """One model of the ``/openai/gpt`` job family."""

    name: str
    #: the model-specific parameters this model takes (wire names)
    params: frozenset[str] = frozenset()
    size: SizeRule | None = None

    def takes(self, param: str) -> bool:
        """Return True if this model takes the model-specific ``param``."""
        return param in self.params

    @property
    def label(self) -> str:
        """Return " for model 'x'", for messages."""
        return f" for model {self.name!r}"


GPT_JOB_MODEL_ROWS: Final[Mapping[str, JobModel]] = {
    row.name: row
    for row in (
        JobModel("gpt-4o-image"),
        JobModel("gpt-image-1"),
        JobModel("gpt-image-1.5"),
        JobModel("gpt-image-2", frozenset({"aspect_ratio"})),
        JobModel("gpt-image-2-plus", frozenset({"size"}), size=GPT_IMAGE_2_SIZE),
    )
}
GPT_JOB_MODELS: Final = tuple(GPT_JOB_MODEL_ROWS)
# Documented as the default (contract section 6), so a job without model is checked as it.
GPT_JOB_DEFAULT_MODEL: Final = "gpt-image-2"

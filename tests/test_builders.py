"""The compiled structuring functions build what cattrs' own functions build, and refuse alike."""

from __future__ import annotations

import math
from typing import Any

import attrs
import pytest

from ttapi_async import ImageData, ImagesResponse, JobStatus, Usage
from ttapi_async._builders import FieldSpec, compile_builder
from ttapi_async._models import _COMPILED, _SPECS, BUILDERS, _make_converter, converter

REFERENCE = _make_converter(compiled=False)  # cattrs' generated functions, same hooks

# Values JSON can hold (and a few it cannot), tried in every field of every class.
VALUES: list[Any] = [
    None,
    "",
    "x",
    " 7 ",
    "2025-03-31 04:25:33",
    0,
    3,
    -1,
    2**70,
    1.5,
    2.0,
    math.inf,
    True,
    False,
    [],
    ["a", "b"],
    [{"url": "u"}],
    [1],
    {},
    {"image_tokens": 4, "text_tokens": "5"},
    {"url": "u", "revised_prompt": 1},
]

BASES: dict[type, dict[str, Any]] = {
    ImagesResponse: {
        "created": 1,
        "data": [{"url": "u", "revised_prompt": "p"}],
        "usage": {"input_tokens": 1, "input_tokens_details": {"text_tokens": 1}},
    },
    JobStatus: {
        "jobId": "j",
        "status": "ON_QUEUE",
        "message": None,
        "data": {"prompt": "p", "referImages": ["https://a"], "quota": "2", "imageUrl": None},
    },
}


def _keys(cls: type) -> list[str]:
    specs = _SPECS.get(cls, {})
    keys: list[str] = []
    for field in attrs.fields(cls):
        if field.init:
            keys += specs.get(field.name, FieldSpec((field.name,))).keys
    return keys


def _payloads(cls: type) -> list[Any]:
    """Return a base answer, then it with one field absent or changed, for every field.

    Only objects: ``structure()`` refuses anything else before either function sees it.
    """
    base = BASES.get(cls, {})
    found: list[Any] = [base, {}]
    for key in _keys(cls):
        found.append({k: v for k, v in base.items() if k != key})
        found += [{**base, key: value} for value in VALUES]
    return found


def _outcome(build: Any, payload: Any) -> tuple[str, Any]:
    try:
        built = build(payload)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        return "raises", type(exc)
    return "builds", (built, repr(built))


@pytest.mark.parametrize("cls", _COMPILED, ids=lambda c: c.__name__)
def test_compiled_and_cattrs_functions_agree_on_every_shape(cls: type) -> None:
    """For each answer shape tried, both build equal objects or both raise the same type."""
    for payload in _payloads(cls):
        compiled = _outcome(BUILDERS[cls], payload)
        reference = _outcome(lambda p: REFERENCE.structure(p, cls), payload)
        assert compiled == reference, payload


def test_the_converter_structures_through_the_compiled_functions() -> None:
    """``converter.structure`` takes the compiled path too: one way to read an answer."""
    payload = {"created": 1, "data": [{"url": "u"}]}
    assert converter.structure(payload, ImagesResponse) == BUILDERS[ImagesResponse](payload)


def test_a_compiled_object_is_frozen_and_equal_to_one_built_by_init() -> None:
    """A compiled ImageData is an ImageData like any other: equal, hashable, frozen."""
    built = BUILDERS[ImageData]({"url": "u", "revised_prompt": "p"})
    assert built == ImageData(url="u", revised_prompt="p")
    assert hash(built) == hash(ImageData(url="u", revised_prompt="p"))
    assert built._downloader is None and built._created is None
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        built.url = "v"  # type: ignore[misc]


def test_job_id_is_read_from_its_newer_spelling_only_when_the_older_is_absent() -> None:
    """``jobId`` wins over ``job_id``; ``job_id`` is read when ``jobId`` is absent."""
    both = BUILDERS[JobStatus]({"jobId": "a", "job_id": "b", "status": "ON_QUEUE"})
    only = BUILDERS[JobStatus]({"job_id": "b", "status": "ON_QUEUE"})
    assert (both.job_id, only.job_id) == ("a", "b")


def test_a_class_with_a_validator_is_not_compiled() -> None:
    """A field with a validator is refused at compile time, not silently skipped."""

    @attrs.frozen
    class Checked:
        n: int = attrs.field(validator=attrs.validators.instance_of(int))

    with pytest.raises(TypeError, match="validators"):
        compile_builder(Checked, converter.get_structure_hook, fast=lambda h, t: None, builders={})


def test_usage_defaults_fill_absent_counts() -> None:
    """Absent token counts are 0 and absent details None, as the class's defaults say."""
    assert BUILDERS[Usage]({}) == Usage()

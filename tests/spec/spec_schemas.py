"""Load the kept copy of OpenAI's Images API schemas and validate documents against them."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

SPEC_PATH = Path(__file__).with_name("openai_images.json")
_URI = "urn:openai-images"


@functools.cache
def spec() -> dict[str, Any]:
    """Return the kept copy (its ``source`` and ``commit`` say where it came from)."""
    data: dict[str, Any] = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    return data


def schema(name: str) -> dict[str, Any]:
    """Return the named schema as written in the spec."""
    found: dict[str, Any] = spec()["components"]["schemas"][name]
    return found


@functools.cache
def _registry() -> Registry[Any]:
    resource = Resource.from_contents(spec(), default_specification=DRAFT202012)
    return Registry().with_resource(_URI, resource)


@functools.cache
def validator(name: str) -> Draft202012Validator:
    """Return a validator for the named schema, its $refs resolved within the copy."""
    ref = {"$ref": f"{_URI}#/components/schemas/{name}"}
    return Draft202012Validator(ref, registry=_registry())


def errors(name: str, instance: object) -> list[str]:
    """Return every way ``instance`` breaks the named schema (empty: it conforms)."""
    found = validator(name).iter_errors(instance)
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in found]


def assert_valid(name: str, instance: object) -> None:
    """Fail with every violation listed unless ``instance`` conforms to the named schema."""
    problems = errors(name, instance)
    assert not problems, f"not a valid {name}:\n" + "\n".join(problems)


def unknown_keys(name: str, instance: dict[str, Any]) -> set[str]:
    """Return the top-level keys of ``instance`` that the named object schema does not define."""
    defined = set(schema(name).get("properties", {}))
    return set(instance) - defined

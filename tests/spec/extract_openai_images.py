"""Copy the Images API schemas out of OpenAI's openapi.json (run by hand, not by pytest).

Usage:
    python tests/spec/extract_openai_images.py OPENAPI_JSON COMMIT > tests/spec/openai_images.json
"""

from __future__ import annotations

import json
import sys
from typing import Any

ROOTS = (
    "CreateImageRequest",
    "CreateImageEditRequest",
    "EditImageBodyJsonParam",
    "CreateImageVariationRequest",
    "ImagesResponse",
    "ImageGenStreamEvent",
    "ImageEditStreamEvent",
    "ErrorResponse",
)
PREFIX = "#/components/schemas/"


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(PREFIX):
            found.add(ref[len(PREFIX) :])
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def extract(spec: dict[str, Any]) -> dict[str, Any]:
    """Return the roots and every schema they reach through $ref, by name."""
    schemas = spec["components"]["schemas"]
    wanted: dict[str, Any] = {}
    todo = list(ROOTS)
    while todo:
        name = todo.pop()
        if name not in wanted:
            wanted[name] = schemas[name]
            todo.extend(_refs(schemas[name]))
    return dict(sorted(wanted.items()))


def main() -> None:
    path, commit = sys.argv[1], sys.argv[2]
    with open(path, encoding="utf-8") as f:
        spec = json.load(f)
    out = {
        "source": "https://github.com/openai/openai-openapi/blob/" + commit + "/openapi.json",
        "commit": commit,
        "openapi": spec["openapi"],
        "components": {"schemas": extract(spec)},
    }
    json.dump(out, sys.stdout, indent=1, sort_keys=False, ensure_ascii=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

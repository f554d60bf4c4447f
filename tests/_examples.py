"""The vendor's seed examples and OpenAI's spec examples, as request bodies a test can send.

Each example is (name, endpoint, body). Placeholders of the vendor's generated cURL bodies
are kept where they are valid values ("<string>" is a string) and replaced where the
generator's filler breaks a documented bound: "n": 123 becomes 1 (n is 1..10).
"""

from __future__ import annotations

from typing import Any

#: endpoint names: "generate", "edit_json", "edit_multipart" (form fields only), "dalle3",
#: "4o_job"
Example = tuple[str, str, dict[str, Any]]

SEED_GENERATION_CURL: dict[str, Any] = {
    # seeds/001 (docs.ttapi.io, POST /v1/images/generations, cURL), "n": 123 -> 1
    "prompt": "<string>",
    "background": "auto",
    "moderation": "auto",
    "n": 1,
    "output_compression": 100,
    "output_format": "png",
    "partial_images": 0,
    "quality": "auto",
    "size": "auto",
    "stream": False,
    "user": "<string>",
}

EXAMPLES: list[Example] = [
    ("seed 001 generations cURL", "generate", SEED_GENERATION_CURL),
    (
        "seed 000 generations python",
        "generate",
        {"prompt": "a cute cat", "model": "gpt-image-1", "size": "1024x1024"},
    ),
    (
        "seed 000 edits python (openai SDK, multipart)",
        "edit_multipart",
        {"model": "gpt-image-1", "prompt": "Generate a photorealistic image of a gift basket"},
    ),
    ("seed 000/002 legacy dall-e-3", "dalle3", {"prompt": "a cute cat", "size": "1024x1024"}),
    (
        "seed 000/002 4o-image job",
        "4o_job",
        {
            "prompt": "Draw a flat photo of a model wearing the clothes",
            "referImages": [
                "https://cdn.ttapi.io/demo/2025-03-30/5d17dd5207daeeac86bcecd2d6405a0.jpg"
            ],
            "hookUrl": "https://webhook-test.com/b129b43b6619f977b3227387fc290f7d",
        },
    ),
    (
        "openai createImage 'Generate image'",
        "generate",
        {"model": "gpt-image-1.5", "prompt": "A cute baby sea otter", "n": 1, "size": "1024x1024"},
    ),
    (
        "openai createImage 'Streaming'",
        "generate",
        {
            "model": "gpt-image-1.5",
            "prompt": "A cute baby sea otter",
            "n": 1,
            "size": "1024x1024",
            "stream": True,
        },
    ),
    (
        "openai createImageEdit multipart_edit",
        "edit_multipart",
        {
            "model": "gpt-image-1.5",
            "prompt": "Add a watercolor effect to this image",
            "size": "1024x1024",
            "quality": "high",
        },
    ),
    (
        "openai createImageEdit json_with_url",
        "edit_json",
        {
            "model": "gpt-image-1.5",
            "prompt": "Add a watercolor effect to this image",
            "images": [{"image_url": "https://example.com/source-image.png"}],
            "size": "1024x1024",
            "quality": "high",
        },
    ),
    (
        "openai createImageEdit json_with_file_id",
        "edit_json",
        {
            "model": "gpt-image-1.5",
            "prompt": "Replace the background with a snowy mountain scene",
            "images": [{"file_id": "file-abc123"}],
            "mask": {"file_id": "file-mask123"},
            "output_format": "png",
            "output_compression": 100,
        },
    ),
]


def examples_for(*endpoints: str) -> list[Example]:
    """Return the examples of the given endpoints."""
    return [example for example in EXAMPLES if example[1] in endpoints]

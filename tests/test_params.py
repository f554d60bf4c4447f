"""Tests for ttapi_async._params: the client-side rules of docs/contract.md."""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Callable, Mapping
from typing import Any

import pytest
from _examples import EXAMPLES
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ttapi_async import _params
from ttapi_async._errors import InvalidRequestError
from ttapi_async._params import (
    GPT_IMAGE_MODELS,
    IMAGE_MODELS,
    ImageFileInfo,
    image_dimensions,
    sniff_image_format,
    validate_4o_job,
    validate_dalle3,
    validate_edit,
    validate_edit_json,
    validate_generate,
    validate_gpt_job,
)

MIB = 1024 * 1024
HYPOTHESIS = settings(max_examples=200, deadline=None)

# ---------------------------------------------------------------------------------------------
# Image builders
# ---------------------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def make_png(width: int, height: int) -> bytes:
    """Build a real, decodable RGBA PNG of the given size (all pixels transparent)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    rows = b"".join(b"\x00" + b"\x00" * (4 * width) for _ in range(height))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(rows))
        + _chunk(b"IEND", b"")
    )


def make_jpeg_head(width: int, height: int) -> bytes:
    """Build a JPEG head: SOI, a JFIF APP0 segment, then a baseline SOF0 frame header."""
    app0 = b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = struct.pack(">BHHB", 8, height, width, 3) + b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return (
        b"\xff\xd8"
        + b"\xff\xe0"
        + struct.pack(">H", len(app0) + 2)
        + app0
        + b"\xff\xc0"
        + struct.pack(">H", len(sof0) + 2)
        + sof0
    )


def _riff(chunk: bytes, payload: bytes) -> bytes:
    body = b"WEBP" + chunk + struct.pack("<I", len(payload)) + payload
    return b"RIFF" + struct.pack("<I", len(body)) + body


def make_webp_vp8x(width: int, height: int) -> bytes:
    """Build an extended-format WebP head (VP8X canvas size)."""
    payload = b"\x10\x00\x00\x00" + (width - 1).to_bytes(3, "little")
    return _riff(b"VP8X", payload + (height - 1).to_bytes(3, "little"))


def make_webp_vp8l(width: int, height: int) -> bytes:
    """Build a lossless WebP head (VP8L 14-bit sizes)."""
    bits = (width - 1) | ((height - 1) << 14)
    return _riff(b"VP8L", b"\x2f" + bits.to_bytes(4, "little") + b"\x00" * 8)


def make_webp_vp8(width: int, height: int, scale: int = 0) -> bytes:
    """Build a lossy WebP head (VP8 key frame); `scale` fills the 2 upscaling bits of each size."""
    sizes = struct.pack("<HH", width | scale << 14, height | scale << 14)
    frame = b"\x30\x01\x00" + b"\x9d\x01\x2a" + sizes
    return _riff(b"VP8 ", frame + b"\x00" * 8)


GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + b"\x00" * 20


def info(data: bytes, filename: str = "image.png", size: int | None = None) -> ImageFileInfo:
    """Describe an upload the way the client does: name, first 64 bytes, total size."""
    return ImageFileInfo(
        filename=filename, head=data[:64], size=len(data) if size is None else size
    )


def error_of(func: Callable[..., None], *args: Any) -> InvalidRequestError:
    """Call func and return the InvalidRequestError it raises (fail if it raises none)."""
    with pytest.raises(InvalidRequestError) as caught:
        func(*args)
    return caught.value


def gen(**params: Any) -> dict[str, Any]:
    """Build a generations body around a short valid prompt."""
    return {"prompt": "a cute cat", **params}


# ---------------------------------------------------------------------------------------------
# Model tables
# ---------------------------------------------------------------------------------------------


def test_model_sets() -> None:
    """The public model sets hold exactly the models of the contract's generations."""
    assert sorted(GPT_IMAGE_MODELS) == ["gpt-image-1", "gpt-image-1.5", "gpt-image-2"]
    assert sorted(IMAGE_MODELS - GPT_IMAGE_MODELS) == ["dall-e-2", "dall-e-3"]


# ---------------------------------------------------------------------------------------------
# /v1/images/generations
# ---------------------------------------------------------------------------------------------

VALID_GENERATE = [
    gen(model="gpt-image-1", size="1024x1024", quality="high", n=10),
    gen(model="gpt-image-1.5", size="auto", quality="auto", moderation="low", user="u-1"),
    gen(model="gpt-image-2", size="2048x1152"),
    gen(model="gpt-image-2", size="1024x640"),
    gen(model="gpt-image-2", size="3840x2160"),
    gen(model="gpt-image-2", size="1536x1024", background="transparent"),
    gen(model="gpt-image-1", background="transparent", output_format="webp"),
    gen(model="gpt-image-1", output_format="jpeg", output_compression=0),
    gen(model="gpt-image-1", output_format="webp", output_compression=100),
    gen(model="gpt-image-1", stream=True, partial_images=3),
    gen(model="gpt-image-1", stream=False, partial_images=0),
    gen(model="dall-e-2", size="256x256", quality="standard", response_format="url", n=3),
    gen(model="dall-e-2", stream=False),
    gen(model="dall-e-3", size="1792x1024", quality="hd", style="natural", n=1),
    gen(model="dall-e-3", response_format="b64_json", prompt="p" * 4000),
    gen(model="gpt-image-1", prompt="p" * 32000),
    gen(prompt="p" * 1000),
    gen(prompt="p" * 32000),
    gen(model="gpt-image-1", size=None, background=None, n=None),
]


@pytest.mark.parametrize("params", VALID_GENERATE)
def test_generate_accepts_valid(params: dict[str, Any]) -> None:
    """Each documented valid combination passes validate_generate."""
    validate_generate(params)


INVALID_GENERATE = [
    # (params, param the error must name)
    ({"model": "gpt-image-1"}, "prompt"),
    (gen(prompt=42), "prompt"),
    (gen(model="gpt-image-1", prompt="p" * 32001), "prompt"),
    (gen(model="dall-e-3", prompt="p" * 4001), "prompt"),
    (gen(prompt="p" * 32001), "prompt"),
    (gen(model="dall-e-2", prompt="p" * 1001), "prompt"),
    (gen(model="gpt-5"), "model"),
    (gen(model="GPT-IMAGE-1"), "model"),
    (gen(model="gpt-image-2-plus"), "model"),
    (gen(model=1), "model"),
    (gen(model="gpt-image-1", n=0), "n"),
    (gen(model="gpt-image-1", n=11), "n"),
    (gen(model="gpt-image-1", n=2.0), "n"),
    (gen(model="gpt-image-1", n="2"), "n"),
    (gen(model="dall-e-3", n=2), "n"),
    (gen(model="gpt-image-1", quality="hd"), "quality"),
    (gen(model="dall-e-3", quality="high"), "quality"),
    (gen(model="dall-e-2", quality="hd"), "quality"),
    (gen(model="gpt-image-1", size="1792x1024"), "size"),
    (gen(model="gpt-image-1", size="2048x1152"), "size"),
    (gen(model="gpt-image-1.5", size="2048x1152"), "size"),
    (gen(model="dall-e-2", size="auto"), "size"),
    (gen(model="dall-e-3", size="1024x1536"), "size"),
    (gen(model="gpt-image-1", size="1024x1024 "), "size"),
    (gen(model="dall-e-2", background="auto"), "background"),
    (gen(model="dall-e-3", moderation="low"), "moderation"),
    (gen(model="dall-e-2", output_format="png"), "output_format"),
    (gen(model="dall-e-3", output_compression=50), "output_compression"),
    (gen(model="dall-e-2", partial_images=0), "partial_images"),
    (gen(model="gpt-image-1", background="clear"), "background"),
    (gen(model="gpt-image-1", moderation="high"), "moderation"),
    (gen(model="gpt-image-1", output_format="jpg"), "output_format"),
    (gen(model="gpt-image-1", response_format="url"), "response_format"),
    (gen(model="gpt-image-1", style="vivid"), "style"),
    (gen(model="dall-e-2", style="vivid"), "style"),
    (gen(model="dall-e-3", style="vibrant"), "style"),
    (gen(model="dall-e-2", response_format="json"), "response_format"),
    (gen(model="gpt-image-1", background="transparent", output_format="jpeg"), "background"),
    (gen(model="gpt-image-1", output_format="jpeg", output_compression=101), "output_compression"),
    (gen(model="gpt-image-1", output_format="jpeg", output_compression=-1), "output_compression"),
    (gen(model="gpt-image-1", stream=True, partial_images=4), "partial_images"),
    (gen(model="gpt-image-1", stream=True, partial_images=-1), "partial_images"),
    (gen(model="gpt-image-1", stream="true"), "stream"),
    (gen(model="gpt-image-1", stream=1), "stream"),
    (gen(model="dall-e-2", stream=True), "stream"),
    (gen(model="gpt-image-1", user=5), "user"),
    (gen(model="gpt-image-2", size="4096x2304"), "size"),
    (gen(model="gpt-image-2", size="16x48"), "size"),
]


@pytest.mark.parametrize(("params", "param"), INVALID_GENERATE)
def test_generate_rejects_invalid(params: dict[str, Any], param: str) -> None:
    """Each rule violation raises InvalidRequestError whose param names the offending field."""
    assert error_of(validate_generate, params).param == param


def test_generate_message_names_param_value_and_allowed() -> None:
    """The message names the parameter, the bad value, the model and every allowed value."""
    error = error_of(validate_generate, gen(model="gpt-image-1", size="2048x2048"))
    assert str(error) == (
        "size='2048x2048' is not allowed for model 'gpt-image-1'; "
        "allowed: 1024x1024, 1536x1024, 1024x1536, auto"
    )
    assert error.param == "size"
    assert error.value == "2048x2048"


def test_error_is_a_value_error() -> None:
    """InvalidRequestError can be caught as ValueError, as documented."""
    with pytest.raises(ValueError, match="quality"):
        validate_generate(gen(model="dall-e-2", quality="high"))


def test_model_only_param_message_lists_models() -> None:
    """A param sent to a model lacking it names the param, the model and the models taking it."""
    message = str(error_of(validate_generate, gen(model="dall-e-3", background="opaque")))
    assert "background='opaque'" in message
    assert "'dall-e-3'" in message
    assert "gpt-image-2, gpt-image-1.5, gpt-image-1" in message


@pytest.mark.parametrize("key", ["mode", "image", "Prompt", "refer_images"])
def test_generate_rejects_unknown_key(key: str) -> None:
    """A key the endpoint does not know is rejected and named, never silently sent."""
    error = error_of(validate_generate, {**gen(model="gpt-image-1"), key: "x"})
    assert error.param == key
    assert repr(key) in str(error)


def test_unknown_key_suggests_close_match() -> None:
    """A near-miss of a known key points at the key the caller probably meant."""
    message = str(error_of(validate_generate, {"prompt": "a cat", "mode": "gpt-image-1"}))
    assert "did you mean 'model'?" in message


@pytest.mark.parametrize(
    ("params", "param"),
    [
        (gen(model="gpt-image-1", n=True), "n"),
        (gen(model="gpt-image-1", n=False), "n"),
        (
            gen(model="gpt-image-1", output_format="jpeg", output_compression=True),
            "output_compression",
        ),
        (gen(model="gpt-image-1", stream=True, partial_images=True), "partial_images"),
    ],
)
def test_bool_is_not_an_int(params: dict[str, Any], param: str) -> None:
    """True/False are rejected where an integer is expected, though bool subclasses int."""
    assert error_of(validate_generate, params).param == param


def test_none_values_count_as_absent() -> None:
    """A key set to None is treated as not given, even one the model would reject."""
    validate_generate(gen(model="dall-e-2", background=None, style=None, output_compression=None))


def test_long_prompt_is_truncated_in_message() -> None:
    """A too-long prompt is reported by its length, with at most ~60 of its characters."""
    prompt = "word " * 7000
    error = error_of(validate_generate, gen(model="gpt-image-1", prompt=prompt))
    message = str(error)
    assert "35,000 characters" in message
    assert "32,000" in message
    assert "word " * 13 not in message
    assert len(message) < 200


def test_any_long_value_is_truncated_in_message() -> None:
    """Any bad value is cut short in the message, so an unknown huge field cannot flood logs."""
    message = str(error_of(validate_generate, gen(model="gpt-image-1", user=["u" * 500])))
    assert len(message) < 150


@pytest.mark.parametrize(
    "size", ["2048x1152", "1152x2048", "1024x640", "3072x1024", "1008x3024", "2160x3840"]
)
def test_gpt_image_2_accepts_free_sizes(size: str) -> None:
    """gpt-image-2 takes any WxH with edges /16, ratio within 1:3..3:1, within the pixel bounds."""
    validate_generate(gen(model="gpt-image-2", size=size))


@pytest.mark.parametrize(
    ("size", "reason"),
    [
        ("1000x1000", "multiples of 16"),
        ("4096x1024", "longest edge"),
        ("3072x1008", "aspect ratio"),
        ("1024x3088", "aspect ratio"),
        ("4096x2304", "longest edge"),
        ("3840x2176", "pixels"),
        ("16x48", "pixels"),
        ("512x512", "pixels"),
        ("0x1024", "not a WxH"),
        ("2048X1152", "not a WxH"),
        ("2048x1152px", "not a WxH"),
        ("-16x16", "not a WxH"),
        ("big", "not a WxH"),
    ],
)
def test_gpt_image_2_rejects_bad_free_sizes(size: str, reason: str) -> None:
    """gpt-image-2 rejects a free size that breaks a bound, and the message says which."""
    error = error_of(validate_generate, gen(model="gpt-image-2", size=size))
    assert error.param == "size"
    assert reason in str(error)
    assert repr(size) in str(error)


# ---------------------------------------------------------------------------------------------
# Never refuse what the service accepts (issue 12)
# ---------------------------------------------------------------------------------------------

_VALIDATORS: Mapping[str, Callable[[dict[str, Any]], None]] = {
    "generate": validate_generate,
    "edit_json": validate_edit_json,
    "edit_multipart": lambda params: validate_edit(params, [info(make_png(1024, 1024))], None),
    "dalle3": validate_dalle3,
    "4o_job": validate_4o_job,
}


@pytest.mark.parametrize(
    ("endpoint", "body"), [example[1:] for example in EXAMPLES], ids=[e[0] for e in EXAMPLES]
)
def test_seed_and_openai_examples_pass(endpoint: str, body: dict[str, Any]) -> None:
    """Every request example of the vendor's seeds and of OpenAI's spec passes validation."""
    _VALIDATORS[endpoint](dict(body))


@pytest.mark.parametrize("output_format", ["png", None])
@pytest.mark.parametrize("compression", [0, 50, 100])
def test_output_compression_with_png_is_accepted(
    output_format: str | None, compression: int
) -> None:
    """output_compression 0..100 with png (given or by default) is accepted: it "only applies"
    to jpeg and webp, and the documented default 100 comes with png in the docs' examples."""
    for model in ("gpt-image-1", None):
        validate_generate(
            gen(model=model, output_format=output_format, output_compression=compression)
        )
    validate_edit_json(edit_json(output_format=output_format, output_compression=compression))


def test_edit_json_accepts_moderation() -> None:
    """A JSON edit takes moderation, as OpenAI's JSON edit body does; a bad value is named."""
    validate_edit_json(edit_json(moderation="low"))
    validate_edit_json(edit_json(moderation="auto"))
    assert error_of(validate_edit_json, edit_json(moderation="none")).param == "moderation"


@pytest.mark.parametrize(
    "params",
    [
        gen(background="transparent", output_format="webp", moderation="low"),
        gen(stream=True, partial_images=2, quality="high"),
        gen(size="2048x1152"),
        gen(style="vivid", n=1),
        gen(response_format="url", size="256x256"),
        gen(prompt="p" * 4000, size="1792x1024"),
    ],
)
def test_missing_model_is_checked_against_any_model(params: dict[str, Any]) -> None:
    """Without model, a generation that some model takes is sent, not checked as dall-e-2's."""
    validate_generate(params)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        (gen(size="1000x1000"), "size"),
        (gen(quality="ultra"), "quality"),
        (gen(n=11), "n"),
        (gen(prompt="p" * 32001), "prompt"),
        (gen(background="transparent", output_format="jpeg"), "background"),
        (gen(model=None, size="4096x2304"), "size"),
    ],
)
def test_missing_model_refuses_what_every_model_refuses(params: dict[str, Any], param: str) -> None:
    """Without model, what no model takes is still refused, and the message says "any model"."""
    error = error_of(validate_generate, params)
    assert error.param == param
    assert "'dall-e-2'" not in str(error)


def test_missing_model_message_says_any_model() -> None:
    """A size no model takes, with no model given, is reported against "any model"."""
    message = str(error_of(validate_generate, gen(size="999x999")))
    assert "for any model" in message
    assert "256x256" in message and "1792x1024" in message


def test_json_edit_without_model_is_accepted() -> None:
    """A JSON edit without model is sent: the service picks its GPT Image default."""
    validate_edit_json({"prompt": "x", "images": [{"file_id": "file-1"}], "moderation": "low"})
    validate_edit({"prompt": "x", "input_fidelity": "high"}, [info(PNG_WIDE)], None)


def test_partial_images_without_stream_is_accepted() -> None:
    """partial_images without stream=True is sent: the docs say it is used when streaming,
    not that it is refused otherwise (docs/contract.md)."""
    validate_generate(gen(model="gpt-image-1", partial_images=2))
    validate_generate(gen(model="gpt-image-1", stream=False, partial_images=3))


def test_empty_prompt_is_refused_only_where_documented() -> None:
    """An empty prompt is refused in JSON edits (the schema's minLength 1), sent elsewhere."""
    validate_generate(gen(model="gpt-image-1", prompt=""))
    validate_generate(gen(prompt="   "))
    validate_gpt_job({"prompt": ""})
    assert error_of(validate_edit_json, edit_json(prompt="")).param == "prompt"
    validate_edit_json(edit_json(prompt=" "))


def test_response_format_on_gpt_models_is_refused() -> None:
    """response_format on a GPT Image model is refused: the live API answers "Unknown
    parameter" (docs/contract.md), so sending it would only fail later."""
    for model in sorted(GPT_IMAGE_MODELS):
        assert error_of(validate_generate, gen(model=model, response_format="b64_json")).param == (
            "response_format"
        )


@pytest.mark.parametrize("size", ["4096x2304", "3856x2160", "3840x2176", "16x48", "1008x640"])
def test_gpt_image_2_sizes_have_documented_bounds(size: str) -> None:
    """gpt-image-2 refuses sizes past 3840x2160 and under 655,360 pixels, on every endpoint."""
    assert error_of(validate_generate, gen(model="gpt-image-2", size=size)).param == "size"
    edit = {"prompt": "x", "model": "gpt-image-2", "size": size}
    assert error_of(validate_edit, edit, [info(PNG_1024)], None).param == "size"
    assert error_of(validate_edit_json, edit_json(model="gpt-image-2", size=size)).param == "size"


PNG_1024 = make_png(1024, 1024)
PNG_WIDE = make_png(512, 256)


def edit_json(**params: Any) -> dict[str, Any]:
    """Build a JSON edits body with one image URL and gpt-image-1."""
    return {
        "prompt": "x",
        "model": "gpt-image-1",
        "images": [{"image_url": "https://example.com/a.png"}],
        **params,
    }


# ---------------------------------------------------------------------------------------------
# /v1/images/edits (multipart)
# ---------------------------------------------------------------------------------------------

PNG_512 = make_png(512, 512)
JPEG_1024 = make_jpeg_head(1024, 1024)
WEBP_1024 = make_webp_vp8x(1024, 1024)


def test_edit_accepts_gpt_uploads() -> None:
    """GPT Image edits take up to 16 PNG/JPEG/WebP files of any shape plus a matching mask."""
    images = [info(PNG_1024), info(JPEG_1024, "a.jpg"), info(WEBP_1024, "b.webp")] * 5
    images.append(info(PNG_WIDE))
    validate_edit(
        {"prompt": "add a hat", "model": "gpt-image-1", "input_fidelity": "high", "n": 2},
        images,
        info(make_png(1024, 1024), "mask.png"),
    )


def test_edit_accepts_dalle2_square_png() -> None:
    """dall-e-2 edits take one square PNG and a same-size PNG mask."""
    validate_edit(
        {"prompt": "add a hat", "model": "dall-e-2", "size": "512x512", "response_format": "url"},
        [info(PNG_512)],
        info(make_png(512, 512), "mask.png"),
    )


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"model": "gpt-image-1"}, "prompt"),
        ({"prompt": "x", "model": "dall-e-3"}, "model"),
        ({"prompt": "x", "model": "gpt-image-1", "size": "1792x1024"}, "size"),
        ({"prompt": "x", "model": "dall-e-2", "size": "auto"}, "size"),
        ({"prompt": "x", "model": "dall-e-2", "input_fidelity": "high"}, "input_fidelity"),
        ({"prompt": "x", "model": "gpt-image-1", "input_fidelity": "max"}, "input_fidelity"),
        ({"prompt": "x", "model": "gpt-image-1", "response_format": "url"}, "response_format"),
        ({"prompt": "x", "model": "gpt-image-1", "style": "vivid"}, "style"),
        ({"prompt": "x", "model": "gpt-image-1", "moderation": "low"}, "moderation"),
        ({"prompt": "x", "model": "gpt-image-1", "mask": "m.png"}, "mask"),
        ({"prompt": "x", "model": "gpt-image-1", "output_compression": 101}, "output_compression"),
        ({"prompt": "p" * 32001}, "prompt"),
        ({"prompt": "p" * 1001, "model": "dall-e-2"}, "prompt"),
    ],
)
def test_edit_rejects_invalid_params(params: dict[str, Any], param: str) -> None:
    """Edit form fields follow the generation rules with the edit size and model tables."""
    assert error_of(validate_edit, params, [info(PNG_1024)], None).param == param


def test_edit_gpt_image_2_free_size() -> None:
    """gpt-image-2 edits take the same free WxH sizes as its generations."""
    validate_edit(
        {"prompt": "x", "model": "gpt-image-2", "size": "2048x1152"}, [info(PNG_1024)], None
    )
    error = error_of(
        validate_edit,
        {"prompt": "x", "model": "gpt-image-2", "size": "4096x2304"},
        [info(PNG_1024)],
        None,
    )
    assert error.param == "size"


GPT_EDIT = {"prompt": "x", "model": "gpt-image-1"}
DALLE2_EDIT = {"prompt": "x", "model": "dall-e-2"}


@pytest.mark.parametrize(
    ("params", "images", "mask", "param", "fragment"),
    [
        (GPT_EDIT, [], None, "image", "0 images"),
        (GPT_EDIT, [info(PNG_1024)] * 17, None, "image", "1 to 16"),
        (GPT_EDIT, [info(GIF, "cat.png")], None, "image", "not a PNG, JPEG or WebP"),
        (GPT_EDIT, [info(b"", "empty.png")], None, "image", "not a PNG, JPEG or WebP"),
        (GPT_EDIT, [info(PNG_1024, size=50 * MIB)], None, "image", "under 50 MB"),
        (DALLE2_EDIT, [info(PNG_512)] * 2, None, "image", "exactly 1"),
        (DALLE2_EDIT, [info(PNG_WIDE)], None, "image", "512x256"),
        (DALLE2_EDIT, [info(JPEG_1024, "photo.png")], None, "image", "JPEG"),
        (DALLE2_EDIT, [info(WEBP_1024)], None, "image", "WebP"),
        (DALLE2_EDIT, [info(PNG_512, size=4 * MIB)], None, "image", "under 4 MB"),
        (GPT_EDIT, [info(PNG_1024)], info(JPEG_1024, "mask.png"), "mask", "JPEG"),
        (GPT_EDIT, [info(PNG_1024)], info(PNG_1024, "mask.png", size=4 * MIB), "mask", "4 MB"),
        (GPT_EDIT, [info(PNG_1024)], info(PNG_512, "mask.png"), "mask", "1024x1024"),
        (DALLE2_EDIT, [info(PNG_512)], info(PNG_1024, "mask.png"), "mask", "512x512"),
    ],
)
def test_edit_rejects_bad_uploads(
    params: dict[str, Any],
    images: list[ImageFileInfo],
    mask: ImageFileInfo | None,
    param: str,
    fragment: str,
) -> None:
    """Upload count, format by magic bytes, size limit, squareness and mask shape are enforced."""
    error = error_of(validate_edit, params, images, mask)
    assert error.param == param
    assert fragment in str(error)


def test_edit_sizes_just_under_limits_pass() -> None:
    """Files one byte under 50 MiB (GPT) and 4 MiB (dall-e-2, mask) are accepted."""
    validate_edit(GPT_EDIT, [info(PNG_1024, size=50 * MIB - 1)], info(PNG_1024, size=4 * MIB - 1))
    validate_edit(DALLE2_EDIT, [info(PNG_512, size=4 * MIB - 1)], None)


def test_edit_format_is_judged_by_bytes_not_name() -> None:
    """A PNG named .jpg passes dall-e-2's PNG-only rule; the message says bytes decide."""
    validate_edit(DALLE2_EDIT, [info(PNG_512, "actually.jpg")], None)
    message = str(error_of(validate_edit, DALLE2_EDIT, [info(JPEG_1024, "fake.png")], None))
    assert "'fake.png'" in message
    assert "first bytes" in message


def test_edit_mask_check_skipped_when_dimensions_unreadable() -> None:
    """When the first image's size is not in its head, the mask size check is skipped."""
    jpeg_without_frame = b"\xff\xd8\xff\xe1" + b"\xff\xff" + b"\x00" * 100
    assert image_dimensions(jpeg_without_frame[:64]) is None
    validate_edit(GPT_EDIT, [info(jpeg_without_frame, "exif.jpg")], info(PNG_512, "mask.png"))


def test_edit_mask_matches_first_image_only() -> None:
    """The mask is compared with the first image, not the later ones."""
    validate_edit(GPT_EDIT, [info(PNG_512), info(PNG_1024)], info(make_png(512, 512)))


# ---------------------------------------------------------------------------------------------
# /v1/images/edits (JSON, section 7)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        edit_json(),
        edit_json(images=[{"file_id": "file-abc"}] * 16, mask={"file_id": "file-m"}),
        edit_json(images=[{"image_url": "data:image/png;base64,iVBORw0KGgo="}]),
        edit_json(model="gpt-image-2", size="2048x1152", input_fidelity="low"),
        edit_json(mask={"image_url": "http://example.com/m.png"}, quality="low"),
        edit_json(moderation="low", background="opaque", output_format="webp"),
        edit_json(model=None, prompt=" "),
    ],
)
def test_edit_json_accepts_valid(params: dict[str, Any]) -> None:
    """JSON edits take 1..16 image_url/file_id refs, an optional ref mask and input_fidelity."""
    validate_edit_json(params)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"prompt": "x", "model": "gpt-image-1"}, "images"),
        (edit_json(images=[]), "images"),
        (edit_json(images=[{"file_id": "f"}] * 17), "images"),
        (edit_json(images={"file_id": "f"}), "images"),
        (edit_json(images="https://example.com/a.png"), "images"),
        (edit_json(images=[{"url": "https://example.com/a.png"}]), "images"),
        (edit_json(images=[{"image_url": "a.png"}]), "images"),
        (edit_json(images=[{"file_id": ""}]), "images"),
        (edit_json(images=[{"file_id": "f", "image_url": "https://e.com/a"}]), "images"),
        (edit_json(mask=[{"file_id": "f"}]), "mask"),
        (edit_json(mask={"file_id": 3}), "mask"),
        (edit_json(input_fidelity="medium"), "input_fidelity"),
        (edit_json(model="dall-e-2"), "model"),
        (edit_json(prompt=""), "prompt"),
        (edit_json(moderation="high"), "moderation"),
        (edit_json(response_format="url"), "response_format"),
        (edit_json(image=[{"file_id": "f"}]), "image"),
    ],
)
def test_edit_json_rejects_invalid(params: dict[str, Any], param: str) -> None:
    """Bad image refs, counts, fidelity and non-GPT models are rejected and named."""
    assert error_of(validate_edit_json, params).param == param


def test_edit_json_names_bad_item_index() -> None:
    """The message points at the offending list item, while param stays the wire field."""
    error = error_of(
        validate_edit_json, edit_json(images=[{"file_id": "ok"}, {"file_id": "ok"}, {"id": "x"}])
    )
    assert error.param == "images"
    assert str(error).startswith("images[2]=")


# ---------------------------------------------------------------------------------------------
# Legacy DALL-E 3 (section 3)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"prompt": "a cat", "size": "1024x1024"},
        {"prompt": "p" * 4000, "size": "1024x1792", "model": "dall-e-3", "n": 1},
        {"prompt": "a cat", "size": "1792x1024", "quality": "hd", "style": "vivid"},
        {"prompt": "a cat", "size": "1792x1024", "quality": "standard", "response_format": "url"},
    ],
)
def test_dalle3_accepts_valid(params: dict[str, Any]) -> None:
    """The legacy endpoint takes prompt + required size, with optional dall-e-3 extras."""
    validate_dalle3(params)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"prompt": "a cat"}, "size"),
        ({"size": "1024x1024"}, "prompt"),
        ({"prompt": "p" * 4001, "size": "1024x1024"}, "prompt"),
        ({"prompt": "a cat", "size": "512x512"}, "size"),
        ({"prompt": "a cat", "size": "auto"}, "size"),
        ({"prompt": "a cat", "size": "1024x1024", "model": "dall-e-2"}, "model"),
        ({"prompt": "a cat", "size": "1024x1024", "n": 2}, "n"),
        ({"prompt": "a cat", "size": "1024x1024", "n": True}, "n"),
        ({"prompt": "a cat", "size": "1024x1024", "quality": "auto"}, "quality"),
        ({"prompt": "a cat", "size": "1024x1024", "style": "calm"}, "style"),
        ({"prompt": "a cat", "size": "1024x1024", "response_format": "png"}, "response_format"),
        ({"prompt": "a cat", "size": "1024x1024", "background": "auto"}, "background"),
    ],
)
def test_dalle3_rejects_invalid(params: dict[str, Any], param: str) -> None:
    """The legacy endpoint's required size, dall-e-3-only model and enums are enforced."""
    assert error_of(validate_dalle3, params).param == param


def test_dalle3_size_message_lists_sizes() -> None:
    """A bad legacy size names the three sizes the endpoint allows."""
    message = str(error_of(validate_dalle3, {"prompt": "a cat", "size": "512x512"}))
    assert "size='512x512'" in message
    assert "1024x1024, 1792x1024, 1024x1792" in message


# ---------------------------------------------------------------------------------------------
# GPT-4o jobs (section 4)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"prompt": "a cat"},
        {"prompt": "猫", "referImages": ["https://cdn.ttapi.io/a.jpg", "http://x.org/b.png"]},
        {"prompt": "a cat", "referImages": [], "hookUrl": "https://hooks.example.com/t"},
    ],
)
def test_4o_job_accepts_valid(params: dict[str, Any]) -> None:
    """A 4o-image job takes a prompt, optional reference URLs and an optional hook URL."""
    validate_4o_job(params)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({}, "prompt"),
        ({"prompt": 5}, "prompt"),
        ({"prompt": "a cat", "referImages": "https://cdn.ttapi.io/a.jpg"}, "referImages"),
        ({"prompt": "a cat", "referImages": ["ftp://cdn.ttapi.io/a.jpg"]}, "referImages"),
        ({"prompt": "a cat", "referImages": ["https://"]}, "referImages"),
        ({"prompt": "a cat", "referImages": [42]}, "referImages"),
        ({"prompt": "a cat", "hookUrl": "hooks.example.com"}, "hookUrl"),
        ({"prompt": "a cat", "hookUrl": "https://a b.com"}, "hookUrl"),
        ({"prompt": "a cat", "hook_url": "https://hooks.example.com"}, "hook_url"),
        ({"prompt": "a cat", "model": "gpt-image-1"}, "model"),
    ],
)
def test_4o_job_rejects_invalid(params: dict[str, Any], param: str) -> None:
    """A 4o-image job rejects a missing prompt, non-http(s) URLs and snake_case keys."""
    assert error_of(validate_4o_job, params).param == param


# ---------------------------------------------------------------------------------------------
# GPT jobs (section 6)
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"prompt": "a cat"},
        {"prompt": "a cat", "aspect_ratio": "16:9"},
        {"prompt": "a cat", "model": "gpt-image-2", "aspect_ratio": "3:4"},
        {"prompt": "a cat", "model": "gpt-4o-image", "referImages": ["https://e.com/a.png"]},
        {"prompt": "a cat", "model": "gpt-image-1.5", "hookUrl": "https://e.com/h"},
        {"prompt": "a cat", "model": "gpt-image-2-plus", "size": "3840x2160"},
        {"prompt": "a cat", "model": "gpt-image-2-plus", "size": "1024x640"},
        {"prompt": "a cat", "model": "gpt-image-2-plus", "size": "2048x2048"},
    ],
)
def test_gpt_job_accepts_valid(params: dict[str, Any]) -> None:
    """A gpt job takes its five models, aspect_ratio on gpt-image-2 and size on -plus."""
    validate_gpt_job(params)


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"model": "gpt-image-2"}, "prompt"),
        ({"prompt": "a cat", "model": "dall-e-3"}, "model"),
        ({"prompt": "a cat", "aspect_ratio": "2:1"}, "aspect_ratio"),
        ({"prompt": "a cat", "model": "gpt-image-1", "aspect_ratio": "1:1"}, "aspect_ratio"),
        ({"prompt": "a cat", "model": "gpt-image-2-plus", "aspect_ratio": "1:1"}, "aspect_ratio"),
        ({"prompt": "a cat", "size": "1024x1024"}, "size"),
        ({"prompt": "a cat", "model": "gpt-image-1", "size": "1024x1024"}, "size"),
        ({"prompt": "a cat", "referImages": ["not a url"]}, "referImages"),
    ],
)
def test_gpt_job_rejects_invalid(params: dict[str, Any], param: str) -> None:
    """A gpt job rejects unknown models and aspect_ratio/size on the wrong model."""
    assert error_of(validate_gpt_job, params).param == param


@pytest.mark.parametrize(
    ("size", "reason"),
    [
        ("1000x1000", "multiples of 16"),
        ("3856x1296", "longest edge"),
        ("3840x2176", "pixels"),
        ("2336x3552", "pixels"),  # the smallest /16 area above 8,294,400
        ("512x512", "pixels"),
        ("1008x640", "pixels"),
        ("3072x1008", "aspect ratio"),
        ("auto", "not a WxH"),
    ],
)
def test_gpt_image_2_plus_size_bounds(size: str, reason: str) -> None:
    """gpt-image-2-plus sizes outside the edge, ratio or pixel bounds fail with the reason."""
    error = error_of(validate_gpt_job, {"prompt": "a", "model": "gpt-image-2-plus", "size": size})
    assert error.param == "size"
    assert reason in str(error)


# ---------------------------------------------------------------------------------------------
# Magic bytes and dimensions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (make_png(3, 2), "png"),
        (make_jpeg_head(10, 10), "jpeg"),
        (b"\xff\xd8\xff\xe0", "jpeg"),
        (make_webp_vp8x(4, 4), "webp"),
        (make_webp_vp8l(4, 4), "webp"),
        (GIF, None),
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", None),
        (b"\x89PNG", None),
        (b"", None),
        (b"<svg xmlns='http://www.w3.org/2000/svg'/>", None),
    ],
)
def test_sniff_image_format(head: bytes, expected: str | None) -> None:
    """Formats come from magic bytes; lookalikes and truncated signatures give None."""
    assert sniff_image_format(head[:64]) == expected


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (make_png(3, 2), (3, 2)),
        (make_png(1024, 1536), (1024, 1536)),
        (make_webp_vp8x(1536, 1024), (1536, 1024)),
        (make_webp_vp8x(16383, 5), (16383, 5)),
        (make_webp_vp8l(300, 200), (300, 200)),
        (make_webp_vp8l(16384, 1), (16384, 1)),
        (make_webp_vp8(640, 480), (640, 480)),
        (make_webp_vp8(640, 480, scale=3), (640, 480)),
        (make_jpeg_head(1792, 1024), (1792, 1024)),
        (make_png(3, 2)[:20], None),
        (make_webp_vp8x(4, 4)[:26], None),
        (b"\xff\xd8\xff\xe1\xff\xff" + b"\x00" * 58, None),
        (b"\xff\xd8\xff\xda\x00\x08" + b"\x00" * 58, None),
        # fill bytes and a standalone marker before the frame header are stepped over
        (b"\xff\xd8\xff\xff\xff\xd0" + make_jpeg_head(40, 30)[2:], (40, 30)),
        (b"\xff\xd8\xff\xe0\x00\x04" + b"\x00" * 58, None),  # a segment not followed by FF
        (make_jpeg_head(40, 30)[:26], None),  # the frame header cut short
        (_riff(b"VP8 ", b"\x00" * 4), None),
        (_riff(b"ALPH", b"\x00" * 20), None),
        (GIF, None),
        (
            b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 5, 8, 6, 0, 0, 0)),
            None,
        ),
    ],
)
def test_image_dimensions(head: bytes, expected: tuple[int, int] | None) -> None:
    """PNG IHDR, the three WebP variants and an early JPEG frame header give (width, height)."""
    assert image_dimensions(head[:64]) == expected


def test_png_builder_is_a_real_png() -> None:
    """The test PNG decompresses to exactly height rows of (1 + 4*width) bytes."""
    data = make_png(5, 3)
    idat_length = struct.unpack(">I", data[33:37])[0]
    assert data[37:41] == b"IDAT"
    assert len(zlib.decompress(data[41 : 41 + idat_length])) == 3 * (1 + 4 * 5)
    assert data.endswith(_chunk(b"IEND", b""))


def test_image_file_info_properties() -> None:
    """ImageFileInfo reports format and dimensions from its head and keeps bytes out of repr."""
    described = info(make_png(7, 9), "photo.jpg")
    assert described.format == "png"
    assert described.dimensions == (7, 9)
    assert "head" not in repr(described)
    assert info(GIF, "x.gif").format is None


# ---------------------------------------------------------------------------------------------
# Property tests (hypothesis)
# ---------------------------------------------------------------------------------------------

_PROMPT_LIMITS: Mapping[str, int] = {
    "gpt-image-2": 32000,
    "gpt-image-1.5": 32000,
    "gpt-image-1": 32000,
    "dall-e-2": 1000,
    "dall-e-3": 4000,
}
_FIXED_SIZES: Mapping[str, list[str]] = {
    "gpt-image-2": ["1024x1024", "1536x1024", "1024x1536", "auto"],
    "gpt-image-1.5": ["1024x1024", "1536x1024", "1024x1536", "auto"],
    "gpt-image-1": ["1024x1024", "1536x1024", "1024x1536", "auto"],
    "dall-e-2": ["256x256", "512x512", "1024x1024"],
    "dall-e-3": ["1024x1024", "1792x1024", "1024x1792"],
}
_DELETE = object()  # corruption that removes the key


@st.composite
def free_sizes(draw: st.DrawFn) -> str:
    """Draw a gpt-image-2 free size: edges /16, ratio within 1:3..3:1, within the pixel bounds."""
    width = draw(st.integers(1, 240))
    height = draw(st.integers(math.ceil(width / 3), min(width * 3, 240)))
    assume(655_360 <= width * height * 256 <= 8_294_400)
    return f"{width * 16}x{height * 16}"


@st.composite
def valid_generate_params(draw: st.DrawFn) -> dict[str, Any]:
    """Draw a generations body that satisfies every rule of section 1."""
    model = draw(st.sampled_from(sorted(IMAGE_MODELS)))
    params: dict[str, Any] = {"prompt": draw(st.text(max_size=30))}
    if draw(st.integers(0, 3)):
        params["model"] = model  # left out, the body is checked against any model: still valid

    def maybe(key: str, strategy: st.SearchStrategy[Any]) -> None:
        choice = draw(st.sampled_from(["skip", "none", "set"]))
        if choice != "skip":
            params[key] = None if choice == "none" else draw(strategy)

    sizes = st.sampled_from(_FIXED_SIZES[model])
    maybe("size", st.one_of(sizes, free_sizes()) if model == "gpt-image-2" else sizes)
    maybe("n", st.just(1) if model == "dall-e-3" else st.integers(1, 10))
    maybe("user", st.text(max_size=10))
    if model in GPT_IMAGE_MODELS:
        maybe("quality", st.sampled_from(["auto", "high", "medium", "low"]))
        maybe("moderation", st.sampled_from(["low", "auto"]))
        maybe("output_format", st.sampled_from(["png", "jpeg", "webp"]))
        output_format = params.get("output_format") or "png"
        backgrounds = ["opaque", "auto"] + (["transparent"] if output_format != "jpeg" else [])
        maybe("background", st.sampled_from(backgrounds))
        maybe("output_compression", st.integers(0, 100))
        maybe("stream", st.booleans())
        maybe("partial_images", st.integers(0, 3))
    else:
        qualities = ["auto", "standard"] + (["hd"] if model == "dall-e-3" else [])
        maybe("quality", st.sampled_from(qualities))
        maybe("response_format", st.sampled_from(["url", "b64_json"]))
        maybe("stream", st.just(False))
        if model == "dall-e-3":
            maybe("style", st.sampled_from(["vivid", "natural"]))
    return params


# Values invalid for the key whatever the model and the other fields are.
_ALWAYS_INVALID: Mapping[str, list[Any]] = {
    "prompt": [_DELETE, 42, b"a cat", ["a cat"]],
    "model": ["gpt-5", "DALL-E-2", "", 3, "gpt-image-2-plus", "gpt-4o-image"],
    "n": [0, 11, -1, True, False, 1.0, "1"],
    "quality": ["ultra", "", 1, "HD", "Auto"],
    "size": ["1024x1023", "1000x1000", "4096x2304", "big", "1024*1024", 1024, "0x0", " auto"],
    "background": ["clear", True, "Transparent"],
    "moderation": ["high", "", 0],
    "output_format": ["gif", "PNG", "jpg"],
    "output_compression": [-1, 101, True, 50.5, "80"],
    "partial_images": [-1, 4, True, 1.0],
    "stream": ["true", 1, 0],
    "response_format": ["json", "URL", 1],
    "style": ["vivid!", "", 2],
    "user": [5, ["u"], b"u"],
    "mode": ["gpt-image-1"],
    "image": ["cat.png"],
    "sizes": ["1024x1024"],
}
# Values valid elsewhere but not for this family of models.
_GPT_INVALID: Mapping[str, list[Any]] = {"response_format": ["url"], "style": ["vivid"]}
_DALLE_INVALID: Mapping[str, list[Any]] = {
    "background": ["auto"],
    "moderation": ["auto"],
    "output_format": ["png"],
    "output_compression": [100],
    "partial_images": [0],
    "stream": [True],
}


@st.composite
def invalid_generate_params(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """Draw a valid body, then corrupt one field; return it with the corrupted key."""
    params = draw(valid_generate_params())
    model = params.get("model")
    pools: dict[str, list[Any]] = {key: list(values) for key, values in _ALWAYS_INVALID.items()}
    if model is not None:  # without a model, only what every model refuses is refused
        family = _GPT_INVALID if model in GPT_IMAGE_MODELS else _DALLE_INVALID
        for key, values in family.items():
            pools.setdefault(key, []).extend(values)
        if model != "dall-e-3":
            pools["style"].append("natural")
        else:
            pools["n"].append(2)
    pools["prompt"].append("a" * (_PROMPT_LIMITS[model or "gpt-image-1"] + 1))
    key = draw(st.sampled_from(sorted(pools)))
    value = draw(st.sampled_from(pools[key]))
    if value is _DELETE:
        del params[key]
    else:
        params[key] = value
    return params, key


@HYPOTHESIS
@given(valid_generate_params())
def test_valid_generate_combinations_pass(params: dict[str, Any]) -> None:
    """Any combination drawn within the section 1 rules passes validate_generate."""
    validate_generate(params)


@HYPOTHESIS
@given(invalid_generate_params())
def test_one_invalid_field_is_caught_and_named(case: tuple[dict[str, Any], str]) -> None:
    """A valid body with one field corrupted raises InvalidRequestError naming that field."""
    params, key = case
    error = error_of(validate_generate, params)
    assert error.param == key
    assert key in str(error)


def _plus_size_ok(width: int, height: int) -> bool:
    """State the gpt-image-2-plus size rule independently of the module, as an oracle."""
    return (
        width % 16 == 0
        and height % 16 == 0
        and max(width, height) <= 3840
        and max(width, height) <= 3 * min(width, height)
        and 655_360 <= width * height <= 8_294_400
    )


@HYPOTHESIS
@given(st.integers(1, 4000), st.integers(1, 4000), st.booleans())
def test_gpt_image_2_plus_size_matches_oracle(width: int, height: int, snap: bool) -> None:
    """validate_gpt_job accepts a gpt-image-2-plus size exactly when the contract's bounds hold."""
    if snap:  # most random sizes are not multiples of 16; snap half of them to reach the bounds
        width, height = max(16, width // 16 * 16), max(16, height // 16 * 16)
    params = {"prompt": "a", "model": "gpt-image-2-plus", "size": f"{width}x{height}"}
    if _plus_size_ok(width, height):
        validate_gpt_job(params)
    else:
        assert error_of(validate_gpt_job, params).param == "size"


@HYPOTHESIS
@given(st.integers(1, 4000), st.integers(1, 4000), st.booleans())
def test_gpt_image_2_free_size_matches_oracle(width: int, height: int, snap: bool) -> None:
    """validate_generate accepts a gpt-image-2 WxH exactly when the documented bounds hold."""
    if snap:
        width, height = max(16, width // 16 * 16), max(16, height // 16 * 16)
    size = f"{width}x{height}"
    params = gen(model="gpt-image-2", size=size)
    if _plus_size_ok(width, height) or size in _FIXED_SIZES["gpt-image-2"]:
        validate_generate(params)
    else:
        assert error_of(validate_generate, params).param == "size"


# ---------------------------------------------------------------------------------------------
# validate_generate's memo of valid settings (speed only: it must never change an outcome)
# ---------------------------------------------------------------------------------------------


def _outcome(params: Mapping[str, Any]) -> tuple[str, object, str] | None:
    """Return (param, value, message) of the error validate_generate raises, or None."""
    try:
        validate_generate(params)
    except InvalidRequestError as exc:
        return (str(exc.param), exc.value, str(exc))
    return None


class _Str(str):
    pass


prompts = st.one_of(
    st.text(max_size=20),
    st.sampled_from(["", "   ", "p" * 1001, "p" * 4001, "p" * 32001]),
    st.none(),
    st.integers(),
    st.just(["a"]),
)


@HYPOTHESIS
@given(params=valid_generate_params(), prompt=prompts, drop_prompt=st.booleans())
def test_generate_memo_gives_the_full_checks_outcome(
    params: dict[str, Any], prompt: Any, drop_prompt: bool
) -> None:
    """With the settings remembered as valid, any new prompt fails or passes exactly as the
    full checks (memo emptied) say: same parameter, value and message."""
    validate_generate(params)  # remembered now (when memoizable)
    if drop_prompt:
        changed = {k: v for k, v in params.items() if k != "prompt"}
    else:
        changed = {**params, "prompt": prompt}
    remembered = _outcome(changed)
    _params._VALID_GENERATE.clear()
    assert remembered == _outcome(changed)


@pytest.mark.parametrize(
    ("valid", "invalid", "param"),
    [
        ({"n": 1}, {"n": True}, "n"),  # True == 1 to a dict key, never to the rules
        ({"n": 2}, {"n": 2.0}, "n"),
        ({"quality": "high"}, {"quality": _Str("high")}, None),  # a str subclass: not memoized
    ],
)
def test_generate_memo_tells_types_apart(
    valid: dict[str, Any], invalid: dict[str, Any], param: str | None
) -> None:
    """A value equal to a remembered one but of another type is checked in full."""
    validate_generate(gen(model="gpt-image-1", **valid))
    params = gen(model="gpt-image-1", **invalid)
    remembered = _outcome(params)
    _params._VALID_GENERATE.clear()
    assert remembered == _outcome(params)
    if param is not None:
        assert remembered is not None and remembered[0] == param


def test_generate_memo_stays_bounded() -> None:
    """Many distinct valid settings never grow the memo past its cap."""
    for i in range(_params._MEMO_MAX * 2):
        validate_generate(gen(model="gpt-image-1", user=f"user-{i}"))
        assert len(_params._VALID_GENERATE) <= _params._MEMO_MAX


def test_generate_memo_does_not_skip_unknown_or_invalid() -> None:
    """Only a fully valid set is remembered: an invalid one fails every time."""
    bad = gen(model="gpt-image-1", size="2048x2048")
    for _ in range(2):
        assert error_of(validate_generate, bad).param == "size"
    validate_generate(gen(model="gpt-image-1", size="1024x1024"))
    assert error_of(validate_generate, {"model": "gpt-image-1", "size": "1024x1024"}).param == (
        "prompt"
    )
    assert error_of(validate_generate, gen(model="gpt-image-1", size="1024x1024", k=1)).param == (
        "k"
    )

"""The large-answer JSON path returns exactly what ``json.loads`` returns."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ttapi_async import _bigjson

B64 = base64.b64encode(os.urandom(_bigjson.BIG_BODY_BYTES)).decode()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(["b64_json", 'x"b64_json', "b64_json ", "url", "data", "k"]),
            inner,
            max_size=4,
        )
    ),
    max_leaves=12,
)
b64_values = st.sampled_from([B64, B64[:100], "", "QUJD", B64 + "/+=="])


@st.composite
def documents(draw: st.DrawFn) -> Any:
    """Build a JSON document with b64_json values (big and small) in random places."""
    items = draw(
        st.lists(
            st.fixed_dictionaries(
                {"b64_json": b64_values}, optional={"revised_prompt": st.text(max_size=30)}
            ),
            min_size=1,
            max_size=3,
        )
    )
    doc: dict[str, Any] = {"created": 1, "data": items, "other": draw(json_values)}
    return doc


@settings(max_examples=200, deadline=None)
@given(
    doc=documents(),
    separators=st.sampled_from([(",", ":"), (", ", ": "), (",", " :  ")]),
    ensure_ascii=st.booleans(),
)
def test_fast_path_equals_json_loads(
    doc: Any, separators: tuple[str, str], ensure_ascii: bool
) -> None:
    """Whatever the layout or the other content, ``loads`` equals ``json.loads``."""
    body = json.dumps(doc, separators=separators, ensure_ascii=ensure_ascii).encode()
    assert _bigjson.loads(body) == json.loads(body)


def test_fast_path_lifts_the_value_out_of_the_scanner() -> None:
    """A large answer is parsed through the lifted skeleton (the fast path is taken)."""
    body = json.dumps({"created": 1, "data": [{"b64_json": B64}]}).encode()
    lifted = _bigjson._lift(body)
    assert lifted is not None
    skeleton, values = lifted
    assert len(skeleton) < 200 and list(values.values()) == [B64]


def test_escaped_value_falls_back_to_json_loads() -> None:
    """A value with an escape (``\\/``) is parsed by json.loads, unescaped."""
    body = ('{"data": [{"b64_json": "' + B64.replace("/", "\\/") + '"}]}').encode()
    assert _bigjson._lift(body) is None
    assert _bigjson.loads(body)["data"][0]["b64_json"] == B64


def test_key_inside_a_string_is_not_lifted() -> None:
    """Text that merely mentions b64_json inside a string value is left alone."""
    doc = {"note": 'say "b64_json": "x" here', "pad": B64}
    body = json.dumps(doc).encode()
    assert _bigjson.loads(body) == doc


def test_null_b64_json_is_kept() -> None:
    """``"b64_json": null`` in a large body stays None."""
    doc = {"data": [{"b64_json": None, "url": "u"}], "pad": B64}
    assert _bigjson.loads(json.dumps(doc).encode()) == doc


@pytest.mark.parametrize(
    "body",
    [
        b'{"data": [{"b64_json": "' + B64.encode(),
        b'{"data": [{"b64_json": "' + B64.encode() + b'"}',
        b'{"data": [{"b64_json": "' + B64.encode() + b'"}]}]',
    ],
    ids=["unterminated-string", "unclosed-object", "trailing-bracket"],
)
def test_malformed_large_body_still_raises(body: bytes) -> None:
    """A truncated or malformed large body raises ValueError as json.loads does."""
    with pytest.raises(ValueError):
        _bigjson.loads(body)


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": 1}',
        b"[1, 2]",
        '{"é": "\u00e9"}'.encode(),
        b'{"s": "\xed\xa0\x80"}',
        b'\xef\xbb\xbf{"bom": true}',
        '{"utf16": 1}'.encode("utf-16-le"),
        '{"utf16": 1}'.encode("utf-16"),
        b"  {}",
        b"3",
    ],
    ids=["object", "array", "utf8", "surrogate", "bom", "utf16le", "utf16", "space", "number"],
)
def test_small_bodies_parse_as_json_loads_does(body: bytes) -> None:
    """Small bodies in any encoding json.loads accepts give json.loads's result."""
    assert _bigjson.loads(body) == json.loads(body)


# --- the small-body fast path and dumps(): the json module's results and errors --------------


@settings(max_examples=300, deadline=None)
@given(value=json_values, pad=st.sampled_from(["", " ", "\n\t\r ", "\x0b", " x", "]"]))
def test_small_text_parses_and_fails_as_json_loads_does(value: Any, pad: str) -> None:
    """Trailing whitespace, extra data and odd spaces: the same value or the same error."""
    text = json.dumps({"v": value}) + pad
    try:
        expected: Any = json.loads(text)
    except ValueError as exc:
        with pytest.raises(type(exc)) as caught:
            _bigjson.loads(text.encode())
        assert str(caught.value) == str(exc)
    else:
        assert _bigjson.loads(text.encode()) == expected


@pytest.mark.parametrize(
    "body",
    [b'{"a": ', b'{"a": 1,}', b"[1, 2", b'{"a": tru}', b'{"a": 1}}', b"{"],
)
def test_small_malformed_body_raises_json_loads_error(body: bytes) -> None:
    """Each malformed small body raises what json.loads raises (type and message)."""
    with pytest.raises(ValueError) as expected:
        json.loads(body)
    with pytest.raises(type(expected.value)) as caught:
        _bigjson.loads(body)
    assert str(caught.value) == str(expected.value)


@pytest.mark.parametrize(
    "body",
    [b"[" * 5000, b"[" * 100_000, b'{"b64_json": "' + b"A" * 70_000 + b'", "x": ' + b"[" * 100_000],
    ids=["small", "big", "big-with-b64"],
)
def test_nesting_too_deep_is_a_value_error(body: bytes) -> None:
    """Nesting past the recursion limit raises ValueError, never RecursionError (issue 8.7)."""
    with pytest.raises(ValueError, match="nested too deeply"):
        _bigjson.loads(body)


def test_nesting_is_limited_even_where_json_loads_would_take_it() -> None:
    """Valid JSON nested past MAX_DEPTH is refused; at MAX_DEPTH, and in strings, it is not."""
    limit = _bigjson.MAX_DEPTH
    assert _bigjson.loads(b"[" * limit + b"]" * limit) == json.loads(b"[" * limit + b"]" * limit)
    with pytest.raises(ValueError, match="nested too deeply"):
        _bigjson.loads(b"[" * (limit + 1) + b"]" * (limit + 1))
    in_string = json.dumps({"a": "[" * 500 + '\\"', "b": '"[{', "c": [[1]]}).encode()
    assert _bigjson.loads(in_string) == json.loads(in_string)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("pad", [0, 70_000], ids=["small", "big"])
def test_nan_and_infinity_are_not_json(literal: str, pad: int) -> None:
    """NaN and Infinity, which json.loads accepts, are refused with ValueError (issue 8.7)."""
    body = f'{{"pad": "{"A" * pad}", "created": {literal}}}'.encode()
    with pytest.raises(ValueError, match="not a JSON number"):
        _bigjson.loads(body)


@settings(max_examples=300, deadline=None)
@given(
    body=st.dictionaries(
        st.text(max_size=8),
        json_values | st.floats(allow_nan=True, allow_infinity=True),
        max_size=6,
    )
)
def test_dumps_equals_json_dumps(body: dict[str, Any]) -> None:
    """Request bodies are byte for byte what json.dumps(...).encode() gives."""
    assert _bigjson.dumps(body) == json.dumps(body).encode()


def test_dumps_raises_json_dumps_errors() -> None:
    """A circular body or an unencodable value raises json.dumps's own error, every time."""
    circular: dict[str, Any] = {}
    circular["self"] = circular
    for _ in range(2):  # the second call must not see state left by the first
        with pytest.raises(ValueError, match="Circular reference detected"):
            _bigjson.dumps(circular)
        with pytest.raises(TypeError, match="not JSON serializable"):
            _bigjson.dumps({"x": object()})
    assert _bigjson.dumps({"x": [1, "é"]}) == json.dumps({"x": [1, "é"]}).encode()


def test_dumps_of_non_dict_is_json_dumps() -> None:
    assert _bigjson.dumps([1, {"a": None}]) == b'[1, {"a": null}]'  # type: ignore[arg-type]

"""Parse JSON answers that carry megabytes of base64 without running them through the scanner.

``json.loads`` walks every character of a string value looking for quotes and escapes; for
a 2 MB ``b64_json`` that walk is most of the cost of a call. Base64 holds no quote and no
backslash, so a ``b64_json`` value can be lifted out with two ``find`` calls, the small
rest parsed as usual, and the value put back: the result is what ``json.loads`` returns.

Why a match is always a real key and a whole string value (for valid JSON): inside a JSON
string every ``"`` is escaped, so the unescaped ``"`` right after ``b64_json`` closes a
string; a string followed by ``:`` is a key; the ``"`` after the colon opens its value; and
with no backslash before the next ``"``, that ``"`` closes it. Anything unusual (an escape,
a non-ASCII byte, no closing quote) falls back to plain ``json.loads``.
"""

from __future__ import annotations

import json
import json.encoder
import json.scanner
import re
import secrets
from typing import Any, Final

__all__ = ["BIG_BODY_BYTES", "dumps", "loads"]

#: Bodies at least this long take the fast path; smaller ones gain nothing from it.
BIG_BODY_BYTES: Final = 64 * 1024

_KEY: Final = re.compile(rb'"b64_json"\s*:\s*"')
# Per process and unguessable: no answer can contain a string equal to a placeholder.
_PLACEHOLDER: Final = f"\x00ttapi-b64-{secrets.token_hex(8)}-"
_PLACEHOLDER_JSON: Final = json.dumps(_PLACEHOLDER)[1:-1].encode()


# json.loads(text) and json.dumps(obj) with their default settings, minus what they redo on
# every call: loads' type checks and two whitespace regexes, dumps' building of a new C
# encoder. Both are the json module's own C parts, so the results are the same; anything
# they do not take (an error, a circular structure, a type json cannot encode) is handed to
# json.loads / json.dumps, so that errors are json's own too.
def _not_json(name: str) -> Any:
    # json accepts NaN and Infinity by default; they are not JSON, and an answer holding one
    # would only fail later, in arithmetic, as an OverflowError or a comparison gone wrong.
    raise ValueError(f"{name} is not a JSON number")


_scan: Final = json.scanner.make_scanner(
    json.JSONDecoder(parse_constant=_not_json)  # type: ignore[arg-type]
)
_TRAILING_SPACE: Final = re.compile(r"[ \t\n\r]*")
_DEFAULT_ENCODER: Final = json.JSONEncoder()
_c_encode: Final = (
    json.encoder.c_make_encoder(  # type: ignore[attr-defined]
        # No markers dict: one shared across calls could keep ids after a failed call. A
        # circular structure then ends in RecursionError, and json.dumps reports it as json.
        None,
        _DEFAULT_ENCODER.default,
        json.encoder.encode_basestring_ascii,
        None,  # indent
        _DEFAULT_ENCODER.key_separator,
        _DEFAULT_ENCODER.item_separator,
        False,  # sort_keys
        False,  # skipkeys
        True,  # allow_nan
    )
    if json.encoder.c_make_encoder is not None  # type: ignore[attr-defined]
    else None
)


def dumps(obj: Any) -> bytes:
    """Return ``json.dumps(obj).encode()`` (the request bodies' encoding)."""
    if _c_encode is not None and obj.__class__ is dict:
        try:
            return "".join(_c_encode(obj, 0)).encode()
        except Exception:  # RecursionError included: json.dumps raises json's own error
            pass
    return json.dumps(obj).encode()


def _loads_text(text: str) -> Any:
    """Return ``json.loads(text)`` for a text that starts with ``{`` or ``[``."""
    try:
        obj, end = _scan(text, 0)
    except Exception:  # StopIteration, JSONDecodeError, RecursionError: json's own error
        return json.loads(text, parse_constant=_not_json)
    if end != len(text):
        rest = _TRAILING_SPACE.match(text, end)
        if rest is None or rest.end() != len(text):
            return json.loads(text, parse_constant=_not_json)  # "Extra data"
    return obj


#: Deeper nesting is refused. Answers nest 5 levels at most; what walks a decoded answer
#: (redaction, the converter, excerpts) recurses, and 900 levels would end in RecursionError.
MAX_DEPTH: Final = 64
_STRUCTURE: Final = re.compile(rb'\\.|["\[\]{}]', re.DOTALL)


def _check_depth(data: bytes) -> None:
    # Counting openers is C-fast; only a body with more of them than the limit (never a real
    # answer) is walked, token by token, skipping strings and their escapes.
    if data.count(b"[") + data.count(b"{") <= MAX_DEPTH:
        return
    depth = 0
    in_string = False
    for match in _STRUCTURE.finditer(data):
        token = match.group()
        if token == b'"':
            in_string = not in_string
        elif in_string:
            continue
        elif token in (b"[", b"{"):
            depth += 1
            if depth > MAX_DEPTH:
                raise ValueError(f"JSON nested too deeply (over {MAX_DEPTH} levels)")
        elif token in (b"]", b"}"):
            depth -= 1


def loads(body: bytes) -> Any:
    """Return ``json.loads(body)``, faster when the body holds large ``b64_json`` values.

    Stricter than ``json.loads`` in two ways, both raising ``ValueError``: ``NaN`` and
    ``Infinity`` are refused (they are not JSON), and so is nesting over ``MAX_DEPTH``
    levels (100,000 ``[`` would otherwise be a ``RecursionError``, here or later).
    """
    try:
        if len(body) >= BIG_BODY_BYTES:
            return _loads_big(body)
        # _check_depth's first test, inline: every answer passes it (this is the hot path).
        if body.count(b"[") + body.count(b"{") > MAX_DEPTH:
            _check_depth(body)
        if body[:1] in (b"{", b"[") and body[1:2] != b"\x00":
            # UTF-8 (the JSON RFC's only encoding): skip json's encoding sniffing. The error
            # handler is the one json.loads(bytes) uses, so both accept the same bodies.
            return _loads_text(body.decode("utf-8", "surrogatepass"))
        return json.loads(body, parse_constant=_not_json)
    except RecursionError:  # not reached past _check_depth; kept as the last line of defence
        raise ValueError("JSON nested too deeply") from None


def _loads_big(body: bytes) -> Any:
    lifted = _lift(body)
    if lifted is None:
        _check_depth(body)
        return json.loads(body, parse_constant=_not_json)
    skeleton, values = lifted
    _check_depth(skeleton)

    def restore(obj: dict[str, Any]) -> dict[str, Any]:
        for key, value in obj.items():
            if value.__class__ is str and value.startswith(_PLACEHOLDER):
                obj[key] = values[value]
        return obj

    return json.loads(skeleton, object_hook=restore, parse_constant=_not_json)


def _lift(body: bytes) -> tuple[bytes, dict[str, str]] | None:
    """Return the body with each b64_json value replaced by a placeholder, and the values."""
    view = memoryview(body)
    pieces: list[bytes | memoryview] = []
    values: dict[str, str] = {}
    pos = 0
    while (match := _KEY.search(body, pos)) is not None:
        start = match.end()
        end = body.find(b'"', start)
        if end < 0 or body.find(b"\\", start, end) >= 0:
            return None
        try:
            value = str(view[start:end], "ascii")  # decodes from the buffer: one copy, not two
        except UnicodeDecodeError:
            return None
        name = f"{_PLACEHOLDER}{len(values)}"
        values[name] = value
        pieces += (view[pos:start], _PLACEHOLDER_JSON, str(len(values) - 1).encode())
        pos = end
    if not values:
        return None
    pieces.append(view[pos:])
    return b"".join(pieces), values

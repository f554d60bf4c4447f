"""The one place API keys are taken out of whatever leaves the client.

Every client registers its key here. Errors (message, repr, attributes and their cause and
context chain), every record of the ``ttapi_async`` logger, and what the batch runner and
the CLI write pass through ``REDACTOR``. Keys stay registered for the life of the process:
an error printed after its client closed must still be clean.

Rules (README, "Errors", says the same):

- a key of ``SHORT_KEY`` characters or more is replaced wherever it appears;
- a shorter key is replaced only where it stands alone (not inside a longer word), so a
  one-letter key cannot turn "blocked" into "bloc***ed";
- where text is cut (an excerpt), a key's first ``MIN_PARTIAL`` or more characters left
  at the cut, or at the end of the excerpt, are replaced too.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any, Final

import attrs

__all__ = [
    "LOGGERS",
    "MASK",
    "MIN_PARTIAL",
    "REDACTOR",
    "SHORT_KEY",
    "RedactingFilter",
    "Redactor",
    "redact",
    "register",
    "scrub_exception",
]

MASK: Final = "***"
SHORT_KEY: Final = 8
MIN_PARTIAL: Final = 4
# How many exceptions of one chain (causes, contexts, groups) are scrubbed at most.
_MAX_CHAIN: Final = 64


class Redactor:
    """Replace secrets in text and in the values that hold text (see the module's rules)."""

    __slots__ = ("_encoded", "_lock", "_long", "_short", "_short_re", "margin")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._lock = threading.Lock()
        self._long: tuple[str, ...] = ()
        self._short: tuple[str, ...] = ()
        self._short_re: re.Pattern[str] | None = None
        self._encoded: tuple[bytes, ...] = ()  # every secret, as UTF-8 (see may_hold)
        #: how many characters past a cut a secret could reach
        self.margin = 0
        for secret in secrets:
            self.add(secret)

    def __repr__(self) -> str:
        return "Redactor(***)"

    def add(self, secret: str) -> None:
        """Start replacing ``secret`` (an empty one is ignored)."""
        if not secret or secret in self._long or secret in self._short:
            return
        with self._lock:
            if len(secret) >= SHORT_KEY:
                # Longest first: a key that contains another is replaced whole.
                self._long = tuple(sorted({*self._long, secret}, key=len, reverse=True))
            else:
                self._short = tuple(sorted({*self._short, secret}, key=len, reverse=True))
                words = "|".join(map(re.escape, self._short))
                self._short_re = re.compile(rf"(?<![\w-])(?:{words})(?![\w-])")
            self.margin = max(self.margin, len(secret))
            self._encoded = (*self._encoded, secret.encode("utf-8", "surrogatepass"))

    @property
    def active(self) -> bool:
        """Return True when there is a secret to replace."""
        return bool(self._long or self._short)

    def __call__(self, text: str) -> str:
        for secret in self._long:
            if secret in text:
                text = text.replace(secret, MASK)
        pattern = self._short_re
        if pattern is not None:
            text = pattern.sub(MASK, text)
        return text

    def may_hold(self, body: bytes) -> bool:
        """Return False when the JSON text ``body`` cannot decode to anything holding a secret.

        Decoded JSON holds a secret's characters only where its text holds the secret's
        bytes, unless an escape (``\\u0041`` for ``A``) spells them otherwise: a body with
        no backslash and no secret's bytes needs no walk through ``value()``.
        """
        # find(), not ``in``: for bytes, ``in`` first tries its operand as an integer and
        # raises and clears a TypeError every time, which costs more than the search.
        if body.find(b"\\") >= 0:
            return bool(self._encoded)
        for secret in self._encoded:  # noqa: SIM110 - a loop: any() and its generator cost more
            if body.find(secret) >= 0:
                return True
        return False

    def leaks(self, text: str) -> bool:
        """Return True when ``text`` holds a secret (as the rules define one)."""
        return self(text) != text

    def cut(self, text: str, limit: int) -> str:
        """Return ``text`` redacted and cut to ``limit`` characters (``...`` marks a cut).

        Redacted before it is cut, and a key's start left at a cut is replaced too; so is
        one at the very end, where the text may have been cut before (by the server).
        """
        room = 4 * limit + self.margin
        text = self._trim_partial(self(text[:room] if len(text) > room else text))
        if len(text) <= limit:
            return text
        return self._trim_partial(text[:limit]) + "..."

    def _trim_partial(self, text: str) -> str:
        for secret in self._long:
            for size in range(min(len(secret) - 1, len(text)), MIN_PARTIAL - 1, -1):
                if text.endswith(secret[:size]):
                    return text[:-size] + MASK
        return text

    def value(self, obj: Any) -> Any:
        """Return ``obj`` with the secrets replaced in every string it holds.

        Mappings come back as dicts, tuples as tuples, attrs instances as copies; an
        object holding no secret comes back as itself.
        """
        if not self.active:
            return obj
        return self._value(obj, 0)

    def _value(self, obj: Any, depth: int) -> Any:
        if isinstance(obj, str):
            return self(obj)
        if depth > 32:  # a hostile nesting gets a repr, never a RecursionError
            return self(repr(obj))
        if isinstance(obj, (bytes, bytearray)):
            return self._bytes(bytes(obj))
        if isinstance(obj, Mapping):
            return {self(str(k)): self._value(v, depth + 1) for k, v in obj.items()}
        if isinstance(obj, list):
            return [self._value(v, depth + 1) for v in obj]
        if isinstance(obj, tuple) and not hasattr(obj, "_fields"):
            return tuple(self._value(v, depth + 1) for v in obj)
        if attrs.has(type(obj)) and self.leaks(repr(obj)):
            changes = {
                a.alias: self._value(getattr(obj, a.name), depth + 1)
                for a in attrs.fields(type(obj))
                if a.init
            }
            return attrs.evolve(obj, **changes)
        return obj

    def _bytes(self, data: bytes) -> bytes:
        for secret in (*self._long, *self._short):
            raw = secret.encode("utf-8", "surrogatepass")
            if len(secret) >= SHORT_KEY and raw in data:
                data = data.replace(raw, MASK.encode())
        return data

    def headers(self, headers: Mapping[str, str] | None) -> Any:
        """Return response or request headers with every secret replaced, same shape."""
        if headers is None or not self.active:
            return headers
        items = [(str(k), str(v)) for k, v in headers.items()]
        if not any(self.leaks(f"{k}: {v}") for k, v in items):
            return headers
        from multidict import CIMultiDict, CIMultiDictProxy  # a dependency; only on a leak

        clean: CIMultiDict[str] = CIMultiDict((self(k), self(v)) for k, v in items)
        return CIMultiDictProxy(clean) if isinstance(headers, CIMultiDictProxy) else clean


#: The process-wide redactor: every client's key, and what everything leaving passes through.
REDACTOR: Final = Redactor()


def register(secret: str) -> None:
    """Make ``redact`` (and everything that uses it) replace ``secret`` from now on."""
    REDACTOR.add(secret)


def redact(text: str) -> str:
    """Return ``text`` with every registered key replaced (journal, manifest, CLI output)."""
    return REDACTOR(text)


class _Opaque:
    """Stands in for an exception attribute whose repr would show a key."""

    __slots__ = ("_text",)

    def __init__(self, text: str) -> None:
        self._text = text

    def __repr__(self) -> str:
        return self._text

    __str__ = __repr__


def scrub_exception(exc: BaseException | None) -> None:
    """Replace secrets, in place, in ``exc`` and every exception chained to it.

    Covers ``args``, string, header and tuple attributes, and whatever in an attribute's
    repr would show a key: the text a traceback or ``repr`` prints of any link.
    """
    if exc is None or not REDACTOR.active:
        return
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo and len(seen) < _MAX_CHAIN:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        for link in (current.__cause__, current.__context__):
            if link is not None:
                todo.append(link)
        grouped = getattr(current, "exceptions", None)  # an ExceptionGroup (cattrs raises them)
        if isinstance(grouped, (tuple, list)):
            todo.extend(e for e in grouped if isinstance(e, BaseException))
        _scrub_one(current, todo)


def _scrub_one(exc: BaseException, todo: list[BaseException]) -> None:
    args = tuple(_scrubbed(a, todo) for a in exc.args)
    if _changed(args, exc.args):
        with contextlib.suppress(TypeError, AttributeError):  # args a C type cannot take
            exc.args = args
    try:
        slots = vars(exc)
    except TypeError:
        return
    for name, value in list(slots.items()):
        clean = _scrubbed(value, todo)
        if clean is not value:
            slots[name] = clean


def _scrubbed(value: Any, todo: list[BaseException]) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, BaseException):
        todo.append(value)
        return value
    if isinstance(value, str):
        return REDACTOR(value)
    if isinstance(value, (bytes, bytearray)):
        return REDACTOR._bytes(bytes(value))
    if isinstance(value, Mapping):
        return REDACTOR.headers(value)
    if hasattr(value, "_fields") and hasattr(value, "_replace"):  # a named tuple
        changes = {f: _scrubbed(getattr(value, f), todo) for f in value._fields}
        if any(changes[f] is not getattr(value, f) for f in value._fields):
            return value._replace(**changes)
        return value
    if attrs.has(type(value)):
        return REDACTOR.value(value)
    if isinstance(value, tuple):
        items = tuple(_scrubbed(v, todo) for v in value)
        return items if _changed(items, value) else value
    if isinstance(value, list):  # __notes__, among others
        listed = [_scrubbed(v, todo) for v in value]
        return listed if _changed(tuple(listed), tuple(value)) else value
    try:
        shown = repr(value)
    except Exception:
        return value
    return _Opaque(REDACTOR(shown)) if REDACTOR.leaks(shown) else value


def _changed(new: tuple[Any, ...], old: tuple[Any, ...]) -> bool:
    return any(a is not b for a, b in zip(new, old, strict=True))


class RedactingFilter(logging.Filter):
    """A logging filter that takes registered keys out of a record, its args and traceback.

    Installed on every logger in ``LOGGERS``; add it to any other logger or handler that
    may see a key.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not REDACTOR.active:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: let logging report it as usual
            return True
        clean = REDACTOR(message)
        if clean != message or record.args:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            scrub_exception(record.exc_info[1])
        if record.exc_text:
            record.exc_text = REDACTOR(record.exc_text)
        if record.stack_info:
            record.stack_info = REDACTOR(record.stack_info)
        return True


#: The package's loggers. A filter on a logger sees only the records logged through that
#: logger itself, not its children's: each one gets its own (a test checks the list).
LOGGERS: Final = (
    "ttapi_async",
    "ttapi_async.batch",
    "ttapi_async.cli",
    "ttapi_async.coordination",
    "ttapi_async.testing",
)
_FILTER: Final = RedactingFilter()
for _name in LOGGERS:
    logging.getLogger(_name).addFilter(_FILTER)

"""Structuring functions for the wire classes, compiled once per class, faster than cattrs'.

cattrs' generated function gathers an answer's fields into a dict and calls the class with
``**`` it; a frozen attrs ``__init__`` then sets each field through ``object.__setattr__``.
On the hot path (a generation's four objects, a fetch's two) that was most of the client's
own CPU. The function compiled here does what they do, minus that overhead: it makes the
instance with ``object.__new__`` and sets each slot through the slot's own descriptor (what
``object.__setattr__`` ends in), so the result is the same frozen object, equal to one
built by ``__init__``. Each field is converted by the converter's own hook for its type (or
its override), called only when the value is not already what the hook would return (an
``int`` for ``int``, ``None`` or a ``str`` for ``str | None``); nested wire classes are built
by their own compiled function. What cattrs refuses, this refuses, with the same exception
types (``structure()`` turns them into ``APIResponseValidationError``).
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from typing import Any, Final

import attrs

__all__ = ["Builder", "FieldSpec", "compile_builder"]

Builder = Callable[[Any], Any]
Hook = Callable[[Any, Any], Any]


@attrs.frozen
class FieldSpec:
    """How one field is read: under which keys (the first present wins), with which hook."""

    keys: tuple[str, ...]
    hook: Hook | None = None


_MISSING: Final = object()


def _optional_arg(t: Any) -> Any:
    """Return ``X`` for ``X | None``, else None."""
    args: tuple[Any, ...] = getattr(t, "__args__", ())
    if len(args) == 2 and args[1] is type(None):
        return args[0]
    return None


def _tuple_arg(t: Any) -> Any:
    """Return ``X`` for ``tuple[X, ...]``, else None."""
    args: tuple[Any, ...] = getattr(t, "__args__", ())
    if getattr(t, "__origin__", None) is tuple and len(args) == 2 and args[1] is Ellipsis:
        return args[0]
    return None


def _slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    for klass in cls.__mro__:
        descriptor = klass.__dict__.get(name)
        if descriptor is not None:
            if not isinstance(descriptor, types.MemberDescriptorType):
                break
            setter: Callable[[Any, Any], None] = descriptor.__set__
            return setter
    raise TypeError(f"{cls.__name__}.{name} is not a slot: no builder can set it")


def compile_builder(
    cls: type,
    hook_for: Callable[[Any], Hook],
    *,
    fast: Callable[[Hook, Any], str | None],
    builders: Mapping[type, Builder],
    specs: Mapping[str, FieldSpec] | None = None,
) -> Builder:
    """Return a function that builds ``cls`` from a decoded JSON object.

    ``hook_for(type)`` is the converter's hook for a field's type; ``specs`` renames a
    field or overrides its hook. ``fast(hook, type)`` is the condition under which the hook
    would return its argument unchanged (``v`` names the value), or None: only values
    failing it go through the hook. ``builders`` holds the compiled functions of the nested classes.
    """
    if not attrs.has(cls) or getattr(cls, "__attrs_post_init__", None) is not None:
        raise TypeError(f"{cls.__name__}: only attrs classes without post-init are compiled")
    attrs.resolve_types(cls)
    specs = specs or {}
    namespace: dict[str, Any] = {
        "cls": cls,
        "new": object.__new__,
        "Mapping": Mapping,
        "M": _MISSING,
    }
    lines = [
        "def build(o):",
        "    if o.__class__ is not dict and not isinstance(o, Mapping):",
        f"        raise TypeError('expected an object for {cls.__name__}, got '"
        " + type(o).__name__)",
        "    self = new(cls)",
    ]
    fields = list(enumerate(attrs.fields(cls)))
    # Required fields last, as in cattrs' function: a body wrong in two fields fails alike.
    fields.sort(key=lambda pair: pair[1].init and pair[1].default is attrs.NOTHING)
    for index, field in fields:
        if field.validator is not None or field.converter is not None:
            raise TypeError(f"{cls.__name__}.{field.name}: validators are not compiled")
        if isinstance(field.default, attrs.Factory):  # type: ignore[arg-type]
            raise TypeError(f"{cls.__name__}.{field.name}: factories are not compiled")
        setter, default = f"s{index}", f"d{index}"
        namespace[setter] = _slot_setter(cls, field.name)
        namespace[default] = field.default
        if not field.init:
            lines.append(f"    {setter}(self, {default})")
            continue
        if field.alias != field.name:
            raise TypeError(f"{cls.__name__}.{field.name}: aliased fields are not compiled")
        spec = specs.get(field.name, FieldSpec((field.name,)))
        hook = spec.hook or hook_for(field.type)
        namespace[f"h{index}"], namespace[f"t{index}"] = hook, field.type
        required = field.default is attrs.NOTHING
        value, unchanged = _convert(
            index, field.type, hook, spec.hook is not None, fast, builders, namespace
        )
        if not required and len(spec.keys) == 1 and _keeps(unchanged, field.default):
            # The default converts to itself: an absent field may read as its default.
            lines.append(f"    v = o.get({spec.keys[0]!r}, {default})")
            lines.append(f"    {setter}(self, {value})")
            continue
        lines += _read(index, spec.keys, required)
        if required:
            lines.append(f"    {setter}(self, {value})")
        else:
            lines.append(f"    {setter}(self, {default} if v is M else {value})")
    lines.append("    return self")
    source = "\n".join(lines)
    code = compile(source, f"<ttapi_async builder {cls.__qualname__}>", "exec")
    exec(code, namespace)  # our own source, built from the class's fields
    build: Builder = namespace["build"]
    return build


def _read(index: int, keys: tuple[str, ...], required: bool) -> list[str]:
    """Return the lines that put the field's value (or M, when it is absent) in ``v``."""
    lines = [f"    v = o.get({keys[0]!r}, M)"]
    for key in keys[1:]:
        lines.append(f"    if v is M: v = o.get({key!r}, M)")
    if required:
        # The KeyError cattrs' function raises for a missing required field.
        lines.append(f"    if v is M: raise KeyError({keys[0]!r})")
    return lines


def _keeps(unchanged: str | None, default: Any) -> bool:
    """Return True when ``default`` meets the condition ``unchanged`` (on ``v``)."""
    if unchanged is None:
        return False
    return bool(eval(unchanged, {}, {"v": default}))  # our own condition, on a constant


def _convert(
    index: int,
    t: Any,
    hook: Hook,
    overridden: bool,
    fast: Callable[[Hook, Any], str | None],
    builders: Mapping[type, Builder],
    namespace: dict[str, Any],
) -> tuple[str, str | None]:
    """Return the expression that converts ``v`` as ``hook`` would, and when it is ``v``."""
    call = f"h{index}(v, t{index})"
    if not overridden:
        inner = _optional_arg(t)
        if inner is not None and inner in builders:
            namespace[f"b{index}"] = builders[inner]
            return f"(None if v is None else b{index}(v))", "v is None"
        item = _tuple_arg(t)
        if item is not None and item in builders:
            namespace[f"b{index}"] = builders[item]
            return (
                f"(tuple(map(b{index}, v)) if v.__class__ is list or isinstance(v, tuple) "
                f"else {call})",  # the hook raises the error for what is not an array
                None,
            )
    condition = fast(hook, t)
    if condition is not None:
        return f"(v if {condition} else {call})", condition
    return call, None

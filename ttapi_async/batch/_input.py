"""Batch input: ``BatchRequest`` and the readers for JSONL and plain-text prompt files."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Final, Literal, get_args

import attrs

__all__ = [
    "FAMILY_OF",
    "KINDS",
    "BatchInputError",
    "BatchRequest",
    "Kind",
    "file_fingerprint",
    "read_requests",
]

Kind = Literal["generate", "edit", "dalle3", "gpt4o", "gpt"]
KINDS: Final[tuple[str, ...]] = get_args(Kind)

#: Which limit an item counts against: the service limits jobs in progress per product.
FAMILY_OF: Final[Mapping[str, str]] = {
    "generate": "images",
    "edit": "images",
    "dalle3": "dalle3",
    "gpt4o": "gpt4o",
    "gpt": "gpt",
}
#: Kinds whose request creates a job that is polled; the others answer synchronously.
JOB_KINDS: Final = frozenset({"gpt4o", "gpt"})

# Flags that give defaults apply only to kinds that take the parameter.
_TAKES: Final[Mapping[str, frozenset[str]]] = {
    "model": frozenset({"generate", "edit", "gpt", "dalle3"}),
    "size": frozenset({"generate", "edit", "gpt", "dalle3"}),
    "quality": frozenset({"generate", "edit", "dalle3"}),
}


class BatchInputError(ValueError):
    """Raise when an input file or a request cannot be used; nothing has been sent."""


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _check_kind(_: object, __: object, value: str) -> None:
    if value not in KINDS:
        raise BatchInputError(f"unknown kind {value!r}: use one of {', '.join(KINDS)}")


def _check_id(_: object, __: object, value: str) -> None:
    if not isinstance(value, str):
        raise BatchInputError(f"an id must be a string, got {type(value).__name__}")
    _check_unicode(value, "the id")


def _check_params(_: object, __: object, value: Mapping[str, Any]) -> None:
    _check_unicode(value, "the request")


def _check_unicode(value: Any, where: str, depth: int = 0) -> None:
    """Refuse a lone surrogate (JSON's "\\udc80"): it is not text, and no journal stores it."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise BatchInputError(
                f"{where} holds a lone surrogate ({value[exc.start]!r} at character "
                f"{exc.start}), which is not valid Unicode"
            ) from None
    elif depth < 32 and isinstance(value, Mapping):
        for key, item in value.items():
            _check_unicode(key, where, depth + 1)
            _check_unicode(item, where, depth + 1)
    elif depth < 32 and isinstance(value, (list, tuple)):
        for item in value:
            _check_unicode(item, where, depth + 1)


@attrs.frozen
class BatchRequest:
    """One item of a batch: an id unique in the batch, which endpoint, and its parameters.

    ``params`` are the keyword arguments of the matching client method
    (``client.images.generate``, ``images.edit``, ``dalle3.generate``, ``gpt4o.submit`` or
    ``gpt.submit``), for example ``{"prompt": "a cat", "size": "1024x1024"}``.
    """

    id: str = attrs.field(validator=_check_id)
    kind: Kind = attrs.field(validator=_check_kind)
    params: Mapping[str, Any] = attrs.field(
        factory=dict, converter=dict, hash=False, validator=_check_params
    )

    @property
    def family(self) -> str:
        """Return the product whose limits this item counts against."""
        return FAMILY_OF[self.kind]

    @property
    def is_job(self) -> bool:
        """Return True when the request creates an asynchronous job."""
        return self.kind in JOB_KINDS

    def canonical_params(self) -> str:
        """Return the parameters as canonical JSON (sorted keys)."""
        return _canonical(self.params)

    def fingerprint(self) -> str:
        """Return a hash of the kind and parameters: what "the same request" means."""
        text = f"{self.kind}\n{self.canonical_params()}"
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def file_fingerprint(path: str | Path) -> str:
    """Return the SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _defaults_for(kind: str, defaults: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in defaults.items():
        if value is None:
            continue
        takes = _TAKES.get(key)
        if takes is None or kind in takes:
            out[key] = value
    if kind == "dalle3":
        out.setdefault("size", "1024x1024")  # the legacy endpoint requires a size
    return out


def _is_jsonl(path: Path) -> bool:
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return True
    if path.suffix.lower() == ".txt":
        return False
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        for line in fh:
            if line.strip() and not line.lstrip().startswith("#"):
                return line.lstrip().startswith("{")
    return False


def read_requests(
    path: str | Path,
    *,
    kind: str = "gpt4o",
    defaults: Mapping[str, Any] | None = None,
) -> Iterator[BatchRequest]:
    """Yield the requests of a JSONL file or a plain-text prompt file, lazily.

    JSONL: one object per line, ``{"id": ..., "kind": ..., "prompt": ..., <params>}`` or
    ``{"id": ..., "kind": ..., "params": {...}}``; ``id`` defaults to the line number and
    ``kind`` to ``kind``. Plain text: one prompt per line (blank lines and ``#`` comments
    are skipped), ids ``00001``, ``00002``... in prompt order. ``defaults`` (``model``,
    ``size``, ``quality``, or any parameter) fill what a line leaves out, for kinds that
    take them. Duplicate ids are an error.
    """
    if kind not in KINDS:
        raise BatchInputError(f"unknown kind {kind!r}: use one of {', '.join(KINDS)}")
    source = Path(path)
    if not source.is_file():
        raise BatchInputError(f"input file {str(source)!r} does not exist")
    given = dict(defaults or {})
    reader = _read_jsonl if _is_jsonl(source) else _read_text
    seen: dict[str, int] = {}
    for lineno, request in reader(source, kind, given):
        first = seen.setdefault(request.id, lineno)
        if first != lineno:
            raise BatchInputError(
                f"{source}:{lineno}: id {request.id!r} is already used on line {first}"
            )
        yield request
    if not seen:
        raise BatchInputError(f"{source} holds no request (it is empty, or only comments)")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """Yield (line number, text) of a UTF-8 file, without a leading BOM.

    Decoded line by line so that a byte that is not UTF-8 is reported with its line.
    """
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]  # a BOM (Windows editors write one) is no part of the prompt
            try:
                yield lineno, raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise BatchInputError(
                    f"{path}:{lineno}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at "
                    f"column {exc.start + 1}); save the file as UTF-8"
                ) from None


def _read_text(
    path: Path, kind: str, defaults: Mapping[str, Any]
) -> Iterator[tuple[int, BatchRequest]]:
    base = _defaults_for(kind, defaults)
    count = 0
    for lineno, line in _lines(path):
        prompt = line.strip()
        if not prompt or prompt.startswith("#"):
            continue
        count += 1
        params = {**base, "prompt": prompt}
        yield lineno, BatchRequest(f"{count:05d}", kind, params)  # type: ignore[arg-type]


def _read_jsonl(
    path: Path, kind: str, defaults: Mapping[str, Any]
) -> Iterator[tuple[int, BatchRequest]]:
    for lineno, line in _lines(path):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            obj = json.loads(text)
        except (ValueError, RecursionError) as exc:
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise BatchInputError(f"{path}:{lineno}: not valid JSON ({reason})") from None
        if not isinstance(obj, dict):
            raise BatchInputError(f"{path}:{lineno}: expected a JSON object")
        try:
            yield lineno, _request_of(obj, lineno, kind, defaults, path.parent)
        except BatchInputError as exc:
            raise BatchInputError(f"{path}:{lineno}: {exc}") from None


def _request_of(
    obj: dict[str, Any], lineno: int, kind: str, defaults: Mapping[str, Any], base: Path
) -> BatchRequest:
    obj = dict(obj)
    item_id = obj.pop("id", None)
    if item_id is None:
        item_id = f"line-{lineno:05d}"
    elif isinstance(item_id, (int, float)) and not isinstance(item_id, bool):
        item_id = str(item_id)
    elif not isinstance(item_id, str):
        raise BatchInputError(f"id must be a string or a number, got {item_id!r}")
    item_kind = obj.pop("kind", kind)
    if item_kind not in KINDS:
        raise BatchInputError(f"unknown kind {item_kind!r}: use one of {', '.join(KINDS)}")
    params = obj.pop("params", None)
    if params is None:
        params = obj
    elif not isinstance(params, dict) or obj:
        raise BatchInputError('"params" must be an object, and the only other keys id and kind')
    if not isinstance(params.get("prompt"), str) or not params["prompt"].strip():
        raise BatchInputError("a non-empty string prompt is required")
    merged = {**_defaults_for(item_kind, defaults), **params}
    if item_kind == "edit":
        merged = _resolve_images(merged, base)
    return BatchRequest(item_id, item_kind, merged)


def _resolve_images(params: dict[str, Any], base: Path) -> dict[str, Any]:
    # Relative image paths in an edit are read relative to the input file, not the cwd.
    def resolve(value: Any) -> Any:
        if isinstance(value, str) and not value.startswith(("http://", "https://", "data:")):
            return str(base / value) if not Path(value).is_absolute() else value
        return value

    out = dict(params)
    for key in ("image", "mask"):
        value = out.get(key)
        if isinstance(value, list):
            out[key] = [resolve(v) for v in value]
        elif value is not None:
            out[key] = resolve(value)
    return out

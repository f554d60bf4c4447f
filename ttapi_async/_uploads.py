"""Image inputs for edits: paths, bytes, file objects or tuples, read once and described."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any, Union

import aiohttp
import attrs

from ._errors import InvalidRequestError
from ._params import ImageFileInfo, sniff_image_format

__all__ = [
    "MAX_UPLOAD_BYTES",
    "ImageInput",
    "Upload",
    "build_form",
    "is_reference",
    "prepare_upload",
    "reads_files",
    "reference",
]

#: What ``images.edit`` accepts for one image: a path, raw bytes, a binary file object,
#: ``(filename, bytes)`` or ``(filename, bytes, mime)``; or, for the JSON form, an
#: ``http(s)://`` URL or ``{"image_url": ...}`` / ``{"file_id": ...}``.
ImageInput = Union[
    str,
    "os.PathLike[str]",
    bytes,
    IO[bytes],
    tuple[str, bytes],
    tuple[str, bytes, str],
    Mapping[str, str],
]

_REFERENCE_KEYS = frozenset({"image_url", "file_id"})
_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}
#: The most an upload may take, read or not: over twice the largest any model accepts
#: (25 MB, gpt-image models), so the per-model check (``_params``) still judges files the
#: size of a real image, and even with validation off no /dev/zero can fill the memory.
MAX_UPLOAD_BYTES = 64 * 1024 * 1024


@attrs.frozen
class Upload:
    """One file part of a multipart edit, held in memory so a retry can send it again."""

    filename: str
    data: bytes = attrs.field(repr=lambda v: f"<{len(v)} bytes>")
    mime: str

    @property
    def info(self) -> ImageFileInfo:
        return ImageFileInfo(filename=self.filename, head=self.data[:65536], size=len(self.data))


def is_reference(value: object) -> bool:
    """Return True for an image given by URL or file id (the JSON form of edits)."""
    if isinstance(value, str):
        return value.startswith(("http://", "https://", "data:"))
    return isinstance(value, Mapping)


def reads_files(values: Sequence[object]) -> bool:
    """Return True when preparing ``values`` reads a path or a file object (I/O that may stall)."""
    return any(
        (isinstance(v, (str, os.PathLike)) and not is_reference(v)) or hasattr(v, "read")
        for v in values
    )


def reference(value: object, *, param: str) -> dict[str, str]:
    """Return the JSON form of a URL or ``{"image_url"|"file_id": ...}`` reference."""
    if isinstance(value, str):
        return {"image_url": value}
    if isinstance(value, Mapping):
        # Checked, never str()-ed: {"file_id": None} used to go out as "None".
        if len(value) != 1 or next(iter(value)) not in _REFERENCE_KEYS:
            raise InvalidRequestError(
                f'{param}: a reference is {{"image_url": ...}} or {{"file_id": ...}}, '
                f"got the keys {sorted(map(str, value))}",
                param=param,
            )
        ((key, ref),) = value.items()
        if not isinstance(ref, str) or not ref.strip():
            raise InvalidRequestError(
                f"{param}: {key} must be a non-empty str, got {type(ref).__name__}",
                param=param,
            )
        return {key: ref}
    raise InvalidRequestError(
        f"{param}: cannot mix files and URLs in one edit", param=param, value=type(value).__name__
    )


def prepare_upload(value: Any, *, param: str) -> Upload:
    """Read one image input into an ``Upload``; raise ``InvalidRequestError`` if unusable."""
    name: str | None = None
    mime: str | None = None
    if isinstance(value, tuple):
        if len(value) not in (2, 3) or not isinstance(value[1], (bytes, bytearray)):
            raise InvalidRequestError(
                f"{param}: a tuple must be (filename, bytes) or (filename, bytes, mime)",
                param=param,
            )
        name, data = str(value[0]), bytes(value[1])
        if len(value) == 3:
            mime = str(value[2])
    elif isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
    elif isinstance(value, (str, os.PathLike)):
        path = Path(value)
        data = _read_path(path, param=param)
        name = path.name
    elif hasattr(value, "read"):
        data = _read_file_object(value, param=param)
        name = os.path.basename(str(getattr(value, "name", ""))) or None
    else:
        raise InvalidRequestError(
            f"{param}: expected a path, bytes, a binary file or a (name, bytes) tuple, "
            f"got {type(value).__name__}",
            param=param,
        )
    fmt = sniff_image_format(data[:64])
    if name is None:
        name = f"image.{fmt or 'png'}"
    if mime is None:
        mime = _MIME.get(fmt or "", "application/octet-stream")
    return Upload(filename=name, data=data, mime=mime)


def _too_big(param: str, what: str, size: int | None) -> InvalidRequestError:
    told = f"is {size:,} bytes" if size is not None else "is larger than that"
    return InvalidRequestError(
        f"{param}: {what} {told}; no model takes an upload over {MAX_UPLOAD_BYTES:,} bytes",
        param=param,
    )


def _not_regular(param: str, what: str) -> InvalidRequestError:
    return InvalidRequestError(
        f"{param}: {what} is not a regular file (a device, pipe or socket could block "
        "or never end); read it into bytes yourself if you mean it",
        param=param,
    )


def _read_path(path: Path, *, param: str) -> bytes:
    """Read a regular file of at most MAX_UPLOAD_BYTES; refuse anything else unread.

    Opened with O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer,
    with the whole event loop stopped. What was opened is then checked with fstat, so a
    file swapped for a FIFO after a stat() cannot slip through either.
    """
    shown = repr(str(path))
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise InvalidRequestError(
            f"{param}: cannot read {shown}: {exc.strerror}", param=param
        ) from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(param, shown)
        if info.st_size > MAX_UPLOAD_BYTES:
            raise _too_big(param, shown, info.st_size)
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(MAX_UPLOAD_BYTES + 1)  # the file may have grown since fstat
    except OSError as exc:
        raise InvalidRequestError(
            f"{param}: cannot read {shown}: {exc.strerror}", param=param
        ) from exc
    finally:
        os.close(fd)
    if len(data) > MAX_UPLOAD_BYTES:
        raise _too_big(param, shown, None)
    return data


def _read_file_object(value: Any, *, param: str) -> bytes:
    """Read an open binary file: a regular file (or an in-memory one) up to the cap."""
    what = (
        repr(os.path.basename(str(getattr(value, "name", ""))))
        if hasattr(value, "name")
        else "the file"
    )
    try:
        fd = value.fileno()
    except (AttributeError, OSError, ValueError):  # io.BytesIO and friends have none
        fd = None
    if isinstance(fd, int):
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            mode = None
        if mode is not None and not stat.S_ISREG(mode):
            raise _not_regular(param, what)
    data = value.read(MAX_UPLOAD_BYTES + 1)
    if not isinstance(data, bytes):
        raise InvalidRequestError(
            f"{param}: file objects must be opened in binary mode ('rb')", param=param
        )
    if len(data) > MAX_UPLOAD_BYTES:
        raise _too_big(param, what, None)
    return data


def _form_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def build_form(
    fields: Mapping[str, Any],
    images: Sequence[Upload],
    mask: Upload | None,
    *,
    as_list: bool | None = None,
) -> aiohttp.FormData:
    """Build the multipart body as the OpenAI SDK sends it.

    A single image goes in a part named ``image``; a list (even of one) goes in one
    ``image[]`` part per file, as the SDK does. ``as_list=None`` means "a list when
    there are several".
    """
    form = aiohttp.FormData()
    for key, value in fields.items():
        form.add_field(key, _form_value(value))
    listed = len(images) != 1 if as_list is None else as_list
    image_field = "image[]" if listed else "image"
    for upload in images:
        form.add_field(image_field, upload.data, filename=upload.filename, content_type=upload.mime)
    if mask is not None:
        form.add_field("mask", mask.data, filename=mask.filename, content_type=mask.mime)
    return form

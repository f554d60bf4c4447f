"""File names from item ids: safe on every filesystem, never a path out of the output folder."""

from __future__ import annotations

import hashlib
import re
from typing import Final

__all__ = ["MAX_STEM", "reserved_on_windows", "safe_stem", "stem_key"]

#: Longest stem kept from an id; leaves room under the usual 255-byte name limit for a hash,
#: an index, an extension and the ``.NAME.XXXX.part`` temporary name.
MAX_STEM: Final = 96

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
# Device names Windows reserves whatever the extension ("CON.png" cannot be created there).
_RESERVED: Final = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CLOCK$", "CONIN$", "CONOUT$"}
    | {f"COM{i}" for i in range(10)}
    | {f"LPT{i}" for i in range(10)}
)


def _digest(item_id: str) -> str:
    return hashlib.sha256(item_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]


def safe_stem(item_id: str) -> str:
    """Return a file stem for ``item_id``: ``[A-Za-z0-9._-]`` only, short, never hidden.

    An id that is already safe is kept as it is; any other gets its cleaned form plus a short
    hash of the original, so two ids that clean to the same text still get distinct names.
    """
    stem = _UNSAFE.sub("_", item_id)
    # Leading dots make hidden files (or "." and ".."); a leading dash reads as an option;
    # Windows drops trailing dots.
    stem = stem.lstrip("._-").rstrip(".")
    stem = stem[:MAX_STEM].rstrip(".")
    if stem == item_id and stem and not reserved_on_windows(stem):
        return stem
    # The hash goes before the first dot: Windows reads "nul.txt-1a2b.png" as NUL whatever
    # follows the dot, but "nul-1a2b.txt.png" is an ordinary name.
    head, dot, tail = stem.partition(".")
    return f"{head or 'item'}-{_digest(item_id)}{dot}{tail}"


def reserved_on_windows(name: str) -> bool:
    """Return True when Windows would treat ``name`` as a device, or cannot keep it as is.

    A device name (CON, NUL, COM1...) is reserved with any extension and any case ("nul.txt",
    "Con.tar.gz"), and with spaces before the dot; a trailing dot or space is dropped.
    """
    base = name.split(".", 1)[0].rstrip(" ")
    return base.upper() in _RESERVED or name.endswith((".", " "))


def stem_key(stem: str) -> str:
    """Return the form two stems collide under on case-insensitive filesystems."""
    return stem.casefold()

"""File names from item ids: safe on every filesystem, never a path out of the output folder."""

from __future__ import annotations

import hashlib
import re
from typing import Final

__all__ = ["MAX_STEM", "safe_stem", "stem_key"]

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
    reserved = stem.split(".", 1)[0].upper() in _RESERVED
    if stem == item_id and stem and not reserved:
        return stem
    return f"{stem or 'item'}-{_digest(item_id)}"


def stem_key(stem: str) -> str:
    """Return the form two stems collide under on case-insensitive filesystems."""
    return stem.casefold()

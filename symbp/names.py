"""Which names a spec may use: Python identifiers that cannot clash with the generated module."""

from __future__ import annotations

import keyword

from symbp.errors import SpecError
from symbp.program import RESERVED


def check_name(name: object, what: str, *, key: str | None = None) -> str:
    """Return ``name`` if it can name a value, a function or a module; else raise SpecError."""
    if not isinstance(name, str) or not name:
        raise SpecError(f"a {what} must be a non-empty string", key=key)
    if not name.isidentifier() or not name.isascii():
        raise SpecError(
            f"{name!r} is not a valid {what}: use letters, digits and _, not a leading digit",
            key=key,
        )
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise SpecError(f"{name!r} is a Python keyword and cannot be a {what}; rename it", key=key)
    if name.startswith("__") and name.endswith("__"):
        raise SpecError(f"{name!r}: names with double underscores are not allowed", key=key)
    if name in RESERVED:
        raise SpecError(
            f"{name!r} is used by the generated module itself; choose another {what}", key=key
        )
    return name

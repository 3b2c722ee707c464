"""symbp: derive, explain and generate backpropagation code from a small model spec."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import types
    from pathlib import Path

__version__ = "0.1.0"


def report(*args, **kwargs):
    """The redundancy report of a spec (see :func:`symbp.redundancy.report`)."""
    from symbp.redundancy import report as _report

    return _report(*args, **kwargs)


def load_module(path: str | Path, *, trust: bool = False) -> types.ModuleType:
    """Import the module ``symbp generate`` wrote at ``path``, after verifying its header (see
    :func:`symbp.loader.load_module`); ``trust=True`` runs an edited one anyway."""
    from symbp.loader import load_module as _load_module

    return _load_module(path, trust=trust)


def __getattr__(name: str):
    # The refusal's exception, without importing NumPy on ``import symbp``.
    if name == "UnverifiedModule":
        from symbp.gradcheck import UnverifiedModule

        return UnverifiedModule
    raise AttributeError(f"module 'symbp' has no attribute {name!r}")

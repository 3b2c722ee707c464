"""``symbp.load_module``: import a generated module from its path, as ``symbp check`` does.

A module is code: it runs only if its provenance header verifies (symbp wrote it and nobody
changed it since), and then exactly the bytes that verified run (see
:func:`symbp.gradcheck.load_module`). ``trust=True`` runs a hand-written or edited module
anyway, as ``symbp check --trust`` does.
"""

from __future__ import annotations

import types
from pathlib import Path

from symbp.errors import SpecError
from symbp.gradcheck import UnverifiedModule
from symbp.gradcheck import load_module as _load_verified

API = ("PARAM_SHAPES", "INPUT_SHAPES", "init_params", "forward", "loss_and_grad")
"""What every generated module defines, and what training and checking use."""

__all__ = ["API", "UnverifiedModule", "load_module"]


def load_module(path: str | Path, *, trust: bool = False) -> types.ModuleType:
    """The generated module at ``path``, imported without touching ``sys.path``.

    Raises :class:`UnverifiedModule` (nothing ran) for a file whose symbp header is missing or
    does not match its contents, unless ``trust``; ``SpecError`` (a ``ValueError``) for a
    file that cannot be read or does not define the module API.
    """
    module = _load_verified(path, trust=trust, how_to_trust="pass trust=True")
    missing = [name for name in API if not hasattr(module, name)]
    if missing:
        raise SpecError(f"not a symbp module: it lacks {', '.join(missing)}", where=str(path))
    return module

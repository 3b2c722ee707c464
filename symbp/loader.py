"""``symbp.load_module``: import a generated module from its path, as ``symbp check`` does.

A module is code: it runs only if its provenance header verifies (symbp wrote it and nobody
changed it since), and then exactly the bytes that verified run (see :func:`load_verified`).
``trust=True`` runs a hand-written or edited module anyway, as ``symbp check --trust`` does.
"""

from __future__ import annotations

import itertools
import sys
import types
from pathlib import Path

from symbp.errors import SpecError
from symbp.files import read_regular
from symbp.provenance import Provenance, provenance

API = ("PARAM_SHAPES", "INPUT_SHAPES", "init_params", "forward", "loss_and_grad")
"""What every generated module defines, and what training and checking use."""

__all__ = [
    "API",
    "UnverifiedModule",
    "load_module",
    "load_source",
    "load_verified",
    "module_from_source",
]
_counter = itertools.count()


def load_module(
    path: str | Path, *, trust: bool = False, how_to_trust: str = "pass trust=True"
) -> types.ModuleType:
    """The generated module at ``path``, imported without touching ``sys.path``.

    Raises :class:`UnverifiedModule` (nothing ran) for a file whose symbp header is missing or
    does not match its contents, unless ``trust``; ``SpecError`` (a ``ValueError``) for a
    file that cannot be read or does not define the module API.
    """
    module = load_verified(path, trust=trust, how_to_trust=how_to_trust)
    missing = [name for name in API if not hasattr(module, name)]
    if missing:
        raise SpecError(f"not a symbp module: it lacks {', '.join(missing)}", where=str(path))
    return module


MAX_MODULE_BYTES = 100_000_000


class UnverifiedModule(Exception):
    """The file does not verify as a module symbp wrote and nobody edited: it was not run."""


def load_verified(
    path: str | Path, *, trust: bool = False, how_to_trust: str = "add --trust"
) -> types.ModuleType:
    """Import a generated module from a file, under a fresh name so reloading is safe.

    The file is read once; unless ``trust``, its provenance header must verify (symbp wrote it
    and nobody changed it) before anything runs, and then exactly the bytes that verified run:
    the file is not read again, so it cannot be swapped in between. ``how_to_trust`` is the
    refusal's advice: the command's flag, or ``symbp.load_module``'s ``trust=True``.
    """
    path = Path(path)
    data = read_regular(path, MAX_MODULE_BYTES, "the module", ".py module")
    if len(data) > MAX_MODULE_BYTES:
        raise SpecError(f"the module is larger than {MAX_MODULE_BYTES} bytes", where=str(path))
    if not trust:
        found = provenance(data)
        if found is not Provenance.OURS:
            why = (
                "its symbp header does not match its contents"
                if found is Provenance.EDITED
                else "it has no symbp header"
            )
            raise UnverifiedModule(
                f"{path} was {found.value} ({why}), so it was not run; regenerate it with "
                f"symbp generate, or {how_to_trust} to run its code anyway"
            )
    return module_from_source(data.decode("utf-8"), path.stem, str(path))


def load_source(source: str, stem: str, *, trust: bool = False) -> types.ModuleType:
    """A module from text symbp wrote (as another process received it): run only if its
    header verifies, unless ``trust``; :class:`UnverifiedModule` otherwise."""
    found = provenance(source.encode("utf-8"))
    if not trust and found is not Provenance.OURS:
        raise UnverifiedModule(
            f"the module {stem} was {found.value}, so it was not run; regenerate it with "
            "symbp generate, or pass trust=True to run its code anyway"
        )
    return module_from_source(source, stem)


def module_from_source(source: str, stem: str, filename: str = "<symbp>") -> types.ModuleType:
    """A module made by running ``source`` (symbp's own, verified output) in a fresh namespace.

    The module keeps its source as ``__symbp_source__``, so that :mod:`symbp.dask` can send
    exactly these bytes to the workers, which verify them again (:func:`load_source`)."""
    name = f"_symbp_checked_{stem}_{next(_counter)}"
    code = compile(source, filename, "exec", dont_inherit=True)
    module = types.ModuleType(name)
    module.__file__ = filename
    module.__symbp_source__ = source  # type: ignore[attr-defined]
    sys.modules[name] = module
    try:
        exec(code, module.__dict__)  # symbp's verified output or a --trust module, never spec text
    finally:
        sys.modules.pop(name, None)
    return module

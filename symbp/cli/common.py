"""What the commands share: deriving a spec and rendering its module, with any unexpected
error turned into one line naming the spec, and the check before a module is written."""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from symbp.analysis.verify import NotVerifiable, VerificationError, verify_source
from symbp.cli.guard import CheckError
from symbp.derivation import Derivation, derive
from symbp.emit import array_api_module, numpy_module
from symbp.errors import SpecError
from symbp.front.spec import load

TARGETS: dict[str, Callable[[Derivation], str]] = {
    "numpy": numpy_module.generate,
    "array-api": array_api_module.generate,
}
"""What ``generate --target`` writes: the NumPy module (the default, fastest on NumPy), or the
array API module (any array library, through array-api-compat)."""
SUFFIXES = {"numpy": "", "array-api": "_array_api"}
"""The default file name's ending: ``generated/<name><suffix>.py``."""


def derive_spec(spec: Path) -> Derivation:
    """The derivation of the spec file ``spec``."""
    with internal_errors(spec):
        return derive(load(spec))


def render_module(derivation: Derivation, spec: Path, target: str = "numpy") -> str:
    """The module's text: the NumPy module, or the array API module."""
    with internal_errors(spec):
        return TARGETS[target](derivation)


def require_target(target: str) -> None:
    """The array API module imports array-api-compat, and is run before it is written."""
    if target == "array-api" and importlib.util.find_spec("array_api_compat") is None:
        raise SpecError(
            "--target array-api needs array-api-compat: pip install 'symbp[array-api]'"
        )


@contextlib.contextmanager
def internal_errors(spec: Path) -> Iterator[None]:
    """Report an unexpected error while deriving or writing ``spec`` as one line naming it."""
    try:
        yield
    except (SpecError, RecursionError, MemoryError):
        raise
    except Exception as err:
        raise SpecError(
            f"internal error while processing the spec: {type(err).__name__}: {err}; "
            "please report it (rerun with --debug for the traceback)",
            where=str(spec),
        ) from err


def verify_module(source: str, spec: Path) -> None:
    """The module's gradient against its own loss, before it is written (analysis.verify)."""
    try:
        verify_source(source, spec.stem)
    except VerificationError as err:
        raise CheckError(
            f"internal error: the derived {err.what} of {spec} disagrees with finite "
            f"differences ({err}); please report this spec"
        ) from err
    except NotVerifiable as err:
        click.echo(
            f"symbp: warning: {spec}: not verified: {err}; run `symbp check` on it", err=True
        )

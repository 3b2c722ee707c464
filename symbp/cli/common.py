"""What the commands share: deriving a spec and rendering its module, with any unexpected
error turned into one line naming the spec, and the check before a module is written."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import click

from symbp.analysis.verify import NotVerifiable, VerificationError, verify_source
from symbp.cli.guard import CheckError
from symbp.derivation import Derivation, derive
from symbp.emit.numpy_module import generate
from symbp.errors import SpecError
from symbp.front.spec import load


def derive_spec(spec: Path) -> Derivation:
    """The derivation of the spec file ``spec``."""
    with internal_errors(spec):
        return derive(load(spec))


def render_module(derivation: Derivation, spec: Path) -> str:
    """The NumPy module's text."""
    with internal_errors(spec):
        return generate(derivation)


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

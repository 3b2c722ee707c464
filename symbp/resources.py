"""Files shipped with symbp: ``templates/`` and ``examples/`` of a checkout, or the copies
packed into the installed wheel."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def _shipped(name: str) -> Path:
    packaged = Path(str(resources.files("symbp"))) / name
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / name


def templates_dir() -> Path:
    """The Jinja templates of the emitters."""
    return _shipped("templates")


def examples_dir() -> Path:
    """The example specs."""
    return _shipped("examples")


def example_specs() -> list[Path]:
    """Every example spec, sorted by file name."""
    return sorted(examples_dir().glob("*.toml"))


SCRIPTS = ("train_digits.py", "train_dask.py")
"""Files besides the specs that a newcomer runs as they are."""


def example_files() -> list[Path]:
    """The example specs, then the scripts, as shipped (``symbp examples`` copies them)."""
    return [*example_specs(), *(examples_dir() / name for name in SCRIPTS)]

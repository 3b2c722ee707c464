"""The example specs shipped with symbp (``examples/`` in a checkout, packed into the wheel)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def examples_dir() -> Path:
    packaged = Path(str(resources.files("symbp"))) / "examples"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "examples"


def example_specs() -> list[Path]:
    """Every example spec, sorted by file name."""
    return sorted(examples_dir().glob("*.toml"))

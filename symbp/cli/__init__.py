"""The ``symbp`` command."""

from symbp.cli.main import main

__all__ = ["main"]

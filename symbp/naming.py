"""All generated names in one place: adjoints ``dX``, contributions, temporaries."""

from __future__ import annotations


def adjoint(name: str) -> str:
    """The cotangent of a value: ``dW1`` for ``W1`` (``\\bar{W}_1`` in LaTeX)."""
    return "d" + name


def contribution(name: str, child: str, uses: int) -> str:
    """A child's contribution to a cotangent; the cotangent itself when it is the only one."""
    return adjoint(name) if uses <= 1 else f"{adjoint(name)}_{child}"


def layer(kind: str, index: int) -> str:
    """Network values by layer, as in the seeds: ``W1``, ``b1``, ``Z1``, ``A1``."""
    return f"{kind}{index}"

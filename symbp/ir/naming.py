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


NETWORK_FIXED = ("X", "T", "m", "L", "E", "P", "l2")
"""A network's inputs, batch size, data loss, loss with L2, prediction and L2 weight."""
NETWORK_LAYER_KINDS = "WbZARS"
"""Per layer: weights, biases, pre-activation, activation, squared norm, softmax."""


def network_values(depth: int) -> list[str]:
    """Every value name a network of ``depth`` layers may use (see :mod:`symbp.lower.network`)."""
    layers = [layer(kind, i) for i in range(depth + 1) for kind in NETWORK_LAYER_KINDS]
    return [*NETWORK_FIXED, *layers]


def derived(value: str) -> tuple[str, ...]:
    """Names the generated code may give a value and what it derives from it: the value, its
    cotangent ``d<value>`` and their temporaries ``<base>_...``; for logits ``Z...`` also the
    softmax ``S...`` the fused cross-entropy's backward pass computes."""
    names = [value, adjoint(value)]
    if value.startswith("Z"):
        names += ["S" + value[1:], adjoint("S" + value[1:])]
    return tuple(names)

"""Names: the ones a spec may use, and the ones symbp makes (adjoints ``dX``, contributions,
layer values ``W1``).

A spec's names must be Python identifiers that cannot clash with the generated module. Its
functions hold the spec's values, sizes and constants as local
variables, and call module-level helpers (``sigmoid``, ``softmax``, ``_params``, the spec's own
``[functions]``), NumPy (``np``) and Python built-ins (``float``, ``zip``, ``isinstance``). A
value named like any of these would shadow it, and a function named like a value would be
shadowed by it; both are refused here, with a message that says what to do.
"""

from __future__ import annotations

import builtins
import functools
import keyword
import sys
from collections.abc import Callable, Collection

from sympy.printing.printer import Printer

from symbp.errors import SpecError
from symbp.ir.functions import builtin_table
from symbp.ir.ops import HELPER_SOURCES, step_calls

RESERVED = frozenset(
    {
        "np",
        "numpy",
        "params",
        "cache",
        "grads",
        "forward",
        "backward",
        "loss_and_grad",
        "predict",
        "hvp",
        "loss_grad_hvp",
        "hessian",
        "hv",
        "init_params",
        "PARAM_SHAPES",
        "loss",
        "rng",
        "dtype",
        "self",
    }
)
"""Names the generated module uses itself; a spec may not use them for its values."""

GENERATED = RESERVED | {"dims", "INPUT_SHAPES", "INPUT_KINDS"}
"""Names the generated module defines or uses as locals, beyond :data:`RESERVED`."""

BUILTINS = frozenset(dir(builtins))
"""Python's built-ins: the generated module's helpers call some of them (``zip``, ``float``)."""

AMBIGUOUS = frozenset({"l", "O", "I"})
"""Names read as 1 or 0: the generated module must pass ``ruff check`` (E741, E743)."""

MODULES = frozenset({*sys.stdlib_module_names, "numpy", "sympy", "symbp"})
"""Module names a generated ``<name>.py`` would hide from imports in its directory."""


@functools.cache
def helper_names() -> frozenset[str]:
    """Functions the generated module may define or steps may call: the built-in elementwise
    functions, the fused losses and their helpers (``softmax``), ``sum`` and ``mean``."""
    return frozenset({*step_calls(builtin_table()), *HELPER_SOURCES})


@functools.cache
def sympy_names() -> frozenset[str]:
    """Class names SymPy's printers treat specially (``gamma``, ``Max``, ``E``): a user function
    is a SymPy function class of its own name, so it would print as SymPy's, not as itself.
    (symbp's printers subclass SymPy's and print no class SymPy's do not.)"""
    names: set[str] = set()
    stack = [Printer]
    while stack:
        cls = stack.pop()
        stack += cls.__subclasses__()
        names.update(a.removeprefix("_print_") for a in dir(cls) if a.startswith("_print_"))
        for table in ("_kf", "known_functions", "known_constants"):
            known = getattr(cls, table, None)
            if isinstance(known, dict):
                names.update(known)
    return frozenset(n for n in names if n.isidentifier())


def check_function_name(name: object, *, key: str | None = None) -> str:
    """Return ``name`` if it can name a ``[functions]`` entry; else raise SpecError."""
    name = check_name(name, "function name", key=key, value=False)
    if name in sympy_names():
        raise SpecError(
            f"{name!r} is the name of a SymPy function or class, which SymPy would print as "
            "its own; choose another function name",
            key=key,
        )
    return name


def _identifier(name: object, what: str, key: str | None) -> str:
    if not isinstance(name, str) or not name:
        raise SpecError(f"a {what} must be a non-empty string", key=key)
    if not name.isidentifier() or not name.isascii():
        raise SpecError(
            f"{name!r} is not a valid {what}: use letters, digits and _, not a leading digit",
            key=key,
        )
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise SpecError(f"{name!r} is a Python keyword and cannot be a {what}; rename it", key=key)
    if name.startswith("__") and name.endswith("__"):
        raise SpecError(f"{name!r}: names with double underscores are not allowed", key=key)
    if name in RESERVED:
        raise SpecError(
            f"{name!r} is used by the generated module itself; choose another {what}", key=key
        )
    return name


def check_module_name(name: object, *, key: str | None = "name") -> str:
    """Return ``name`` if it can name the generated module; else raise SpecError."""
    name = _identifier(name, "model name", key)
    if name in MODULES:
        raise SpecError(
            f"{name!r} is the name of a Python module, and {name}.py would hide it from "
            "imports in its directory; choose another model name",
            key=key,
        )
    return name


def check_name(name: object, what: str, *, key: str | None = None, value: bool = True) -> str:
    """Return ``name`` if it can name a value, a size or a function; else raise SpecError.

    ``value``: the name holds a value, whose gradient the backward pass calls ``d<name>``.
    """
    name = _identifier(name, what, key)
    if name.startswith("_"):
        raise SpecError(
            f"{name!r}: names starting with _ are kept for the generated module's helpers; "
            "rename it",
            key=key,
        )
    if name in GENERATED:
        raise SpecError(
            f"{name!r} is used by the generated module itself; choose another {what}", key=key
        )
    if name in AMBIGUOUS:
        raise SpecError(
            f"{name!r} reads like 1 or 0, and linters reject it in the generated module; "
            f"choose another {what}",
            key=key,
        )
    if name in helper_names():
        raise SpecError(f"{name!r} is a built-in function name; choose another {what}", key=key)
    if name in BUILTINS:
        raise SpecError(
            f"{name!r} is a Python built-in, which the generated module may call; "
            f"choose another {what}",
            key=key,
        )
    gradient = adjoint(name)
    if value and (gradient in GENERATED or gradient in BUILTINS or gradient in helper_names()):
        raise SpecError(
            f"{name!r}: its gradient would be named {gradient!r}, which the generated module "
            f"uses itself; choose another {what}",
            key=key,
        )
    return name


def clashes(function: str, value: str) -> str | None:
    """The name the generated code derives from ``value`` that ``function`` would collide with.

    A user function is a module-level helper of its own name; a value is a local variable, and
    so are the names derived from it (its gradient, its temporaries). None if they are apart.
    """
    for base in derived(value):
        if function == base or function.startswith(base + "_"):
            return base
    return None


# ---- the names symbp makes -------------------------------------------------------


def adjoint(name: str) -> str:
    """The cotangent of a value: ``dW1`` for ``W1`` (``\\bar{W}_1`` in LaTeX)."""
    return "d" + name


def contribution(name: str, child: str, uses: int, naming: Callable[[str], str] = adjoint) -> str:
    """A child's contribution to a cotangent; the cotangent itself when it is the only one."""
    return naming(name) if uses <= 1 else f"{naming(name)}_{child}"


def second_adjoint(name: str, cotangents: Collection[str]) -> str:
    """A value's adjoint in the second reverse pass of a Hessian-vector product, ∂g/∂v for
    g = ⟨∇L, V⟩. For a cotangent ``dX`` of the first pass that adjoint is the tangent
    Ẋ = (∂X/∂θ)·V, named ``tX``; for any other value ``X`` it is named ``hX`` (for a
    parameter, its block of H·V)."""
    if name in cotangents and name.startswith("d"):
        return "t" + name[1:]
    return "h" + name


def direction(param: str) -> str:
    """The entry of a Hessian-vector product's direction V for ``param``."""
    return "V_" + param


def layer_name(kind: str, index: int) -> str:
    """Network values by layer, as in the seeds: ``W1``, ``b1``, ``Z1``, ``A1``."""
    return f"{kind}{index}"


NETWORK_FIXED = ("X", "T", "m", "L", "E", "P", "l2")
"""A network's inputs, batch size, data loss, loss with L2, prediction and L2 weight."""
NETWORK_LAYER_KINDS = "WbZARS"
"""Per layer: weights, biases, pre-activation, activation, squared norm, softmax."""


def network_values(depth: int) -> list[str]:
    """Every value name a network of ``depth`` layers may use (see :mod:`symbp.lower.network`)."""
    layers = [layer_name(kind, i) for i in range(depth + 1) for kind in NETWORK_LAYER_KINDS]
    return [*NETWORK_FIXED, *layers]


def derived(value: str) -> tuple[str, ...]:
    """Names the generated code may give a value and what it derives from it: the value, its
    cotangent ``d<value>`` and their temporaries ``<base>_...``; for logits ``Z...`` also the
    softmax ``S...`` the fused cross-entropy's backward pass computes."""
    names = [value, adjoint(value)]
    if value.startswith("Z"):
        names += ["S" + value[1:], adjoint("S" + value[1:])]
    return tuple(names)

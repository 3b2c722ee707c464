"""The Program: an ordered list of single assignments ``name = op(args)`` over shaped values.

Forward and backward passes are both Programs; every output (NumPy module, LaTeX, report) is
printed from one. A dimension is an integer or a named size such as the batch ``m``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import sympy

Dim = int | str
Shape = tuple[Dim, ...]
Role = Literal["input", "param", "const", "value"]


def shape_text(shape: Shape) -> str:
    """A shape as users write it in specs: ``scalar``, ``n``, ``m x n``."""
    return " x ".join(str(d) for d in shape) if shape else "scalar"


def dim_expr(dim: Dim) -> sympy.Expr:
    """A dimension as a SymPy number or positive integer symbol (for ``1/m`` in expressions)."""
    return sympy.Integer(dim) if isinstance(dim, int) else dim_symbol(dim)


def dim_symbol(name: str) -> sympy.Symbol:
    return sympy.Symbol(name, integer=True, positive=True)


def broadcast_shapes(*shapes: Shape) -> Shape:
    """NumPy broadcasting of shapes whose dimensions may be names; raises ValueError."""
    rank = max((len(s) for s in shapes), default=0)
    out: list[Dim] = []
    for axis in range(rank):
        dims = {s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0}
        dims.discard(1)
        if len(dims) > 1:
            raise ValueError(
                "shapes " + ", ".join(f"({shape_text(s)})" for s in shapes) + " do not broadcast"
            )
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def size_expr(shape: Shape) -> sympy.Expr:
    """The number of entries of a shape, as a SymPy expression of its named dimensions."""
    return sympy.Mul(*(dim_expr(d) for d in shape))


@dataclass(frozen=True)
class Var:
    """A named value: its shape and its role (a function argument, a parameter, or computed)."""

    name: str
    shape: Shape
    role: Role = "value"
    default: float | None = None
    doc: str = ""

    @property
    def symbol(self) -> sympy.Symbol:
        return sympy.Symbol(self.name)


@dataclass(frozen=True)
class Eqn:
    """One assignment ``out = op(*args; attrs)``. Attributes are hashable (value numbering)."""

    out: str
    op: str
    args: tuple[str, ...]
    attrs: tuple[tuple[str, Any], ...] = ()

    def attr(self, key: str, default: Any = None) -> Any:
        for k, v in self.attrs:
            if k == key:
                return v
        return default

    @property
    def key(self) -> tuple:
        return (self.op, self.args, self.attrs)

    @property
    def reads(self) -> tuple[str, ...]:
        """The values the assignment reads: its arguments, and names in its attributes (the
        constant value a ``fill`` holds may be a value of constants)."""
        named = dict.fromkeys(self.args)
        for _, value in self.attrs:
            if isinstance(value, sympy.Basic):
                symbols = sorted(value.free_symbols, key=lambda s: s.name)
                named.update(dict.fromkeys(s.name for s in symbols if not s.is_integer))
        return tuple(named)


@dataclass
class Program:
    """Values, assignments in topological order, and what the program computes.

    ``loss`` names the scalar the gradient is taken of. After backprop, ``grads`` maps each
    parameter to the value holding its gradient and ``n_forward`` counts the forward
    assignments (the rest is the backward pass).
    """

    name: str
    vars: dict[str, Var]
    eqns: list[Eqn]
    loss: str
    inputs: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)
    consts: list[str] = field(default_factory=list)
    grads: dict[str, str] = field(default_factory=dict)
    n_forward: int | None = None
    description: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def forward_eqns(self) -> list[Eqn]:
        return self.eqns if self.n_forward is None else self.eqns[: self.n_forward]

    @property
    def backward_eqns(self) -> list[Eqn]:
        return [] if self.n_forward is None else self.eqns[self.n_forward :]

    def producer(self) -> dict[str, Eqn]:
        return {e.out: e for e in self.eqns}

    def dims(self) -> list[str]:
        """The named dimensions, in first-appearance order over inputs, params and values."""
        seen: dict[str, None] = {}
        for var in self.vars.values():
            for d in var.shape:
                if isinstance(d, str):
                    seen.setdefault(d)
        return list(seen)

    def shape(self, name: str) -> Shape:
        return self.vars[name].shape

    def ranks(self) -> dict[str, int]:
        """Each value's number of axes (0 for a scalar): what the document's printer needs to
        choose between ⊙ and juxtaposition."""
        return {n: len(v.shape) for n, v in self.vars.items()}

    def arrays(self) -> set[str]:
        """Names whose values are NumPy arrays when the module runs: inputs, parameters and
        what is computed from an array. Constants, and elementwise values of constants alone,
        are Python numbers."""
        found = {n for n in (*self.inputs, *self.params)}
        for eqn in self.eqns:
            if eqn.op != "ewise" or found.intersection(eqn.args):
                found.add(eqn.out)
        return found

    def __str__(self) -> str:
        lines = [f"program {self.name}:"]
        for group, names in (("in", self.inputs), ("param", self.params), ("const", self.consts)):
            for n in names:
                lines.append(f"  {group} {n}: {shape_text(self.vars[n].shape)}")
        for i, eqn in enumerate(self.eqns):
            if i == self.n_forward:
                lines.append("  -- backward --")
            args = ", ".join(eqn.args)
            attrs = "".join(f"; {k}={v}" for k, v in eqn.attrs)
            lines.append(
                f"  {eqn.out} = {eqn.op}({args}{attrs})  # {shape_text(self.shape(eqn.out))}"
            )
        lines.append(f"  loss {self.loss}")
        for p, g in self.grads.items():
            lines.append(f"  grad {p} = {g}")
        return "\n".join(lines)


def active_values(eqns: list[Eqn], params: Iterable[str], loss: str) -> tuple[set[str], set[str]]:
    """Values that depend on a parameter, and values the loss depends on.

    Their intersection is where backprop gives cotangents: values on a path from a parameter
    to the loss.
    """
    depends = set(params)
    for eqn in eqns:
        if depends.intersection(eqn.args):
            depends.add(eqn.out)
    reaches = {loss}
    for eqn in reversed(eqns):
        if eqn.out in reaches:
            reaches.update(eqn.args)
    return depends, reaches


def with_eqns(program: Program, eqns: list[Eqn], **changes: Any) -> Program:
    """A copy of ``program`` with new assignments (vars are copied, not shared)."""
    return replace(program, vars=dict(program.vars), eqns=eqns, **changes)

"""The Program: an ordered list of single assignments ``name = op(args)`` over shaped values.

Forward and backward passes are both Programs; every output (NumPy module, LaTeX, report) is
printed from one. A dimension is an integer or a named size such as the batch ``m``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import sympy

from symbp.errors import SpecError

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


class Builder:
    """Appends assignments to a Program, reusing an identical ``op(args)`` instead of repeating it.

    Shapes come from the op registry, so a shape error is found where the assignment is made.
    """

    def __init__(self, program: Program):
        self.program = program
        self._numbered: dict[tuple, str] = {e.key: e.out for e in program.eqns}

    @property
    def vars(self) -> dict[str, Var]:
        return self.program.vars

    def fresh(self, hint: str) -> str:
        """A name not yet used, ``hint`` itself when free, else ``hint_2``, ``hint_3``, …"""
        if hint not in self.vars and not _reserved(hint):
            return hint
        k = 2
        while f"{hint}_{k}" in self.vars or _reserved(f"{hint}_{k}"):
            k += 1
        return f"{hint}_{k}"

    def emit(
        self,
        op: str,
        args: Iterable[str],
        attrs: Mapping[str, Any] | Iterable[tuple[str, Any]] = (),
        *,
        name: str,
        exact_name: bool = False,
        doc: str = "",
    ) -> str:
        """Add ``name = op(args)`` unless the same assignment exists; return the value's name."""
        from symbp.ir.ops import OPS

        items = tuple(sorted(attrs.items())) if isinstance(attrs, Mapping) else tuple(attrs)
        eqn_key = (op, tuple(args), items)
        if eqn_key in self._numbered:
            existing = self._numbered[eqn_key]
            if exact_name and existing != name:
                return self.alias(existing, name, doc=doc)
            return existing
        shapes = [self.vars[a].shape for a in eqn_key[1]]
        shape = OPS[op].shape(shapes, dict(items))
        if exact_name:
            if name in self.vars:
                raise SpecError(f"'{name}' is assigned twice; each name may be assigned once")
            out = name
        else:
            out = self.fresh(name)
        self.vars[out] = Var(out, shape, "value", doc=doc)
        self.program.eqns.append(Eqn(out, op, eqn_key[1], items))
        self._numbered[eqn_key] = out
        return out

    def alias(self, existing: str, name: str, *, doc: str = "") -> str:
        """``name = existing``: a step that repeats an earlier one (or names a value again)
        gets its own name, without computing anything twice."""
        if name in self.vars:
            raise SpecError(f"'{name}' is assigned twice; each name may be assigned once")
        self.vars[name] = replace(self.vars[existing], name=name, role="value", doc=doc)
        expr = sympy.Symbol(existing)
        self.program.eqns.append(Eqn(name, "ewise", (existing,), (("expr", expr),)))
        return name

    def declare(self, var: Var) -> None:
        self.vars[var.name] = var

    def ewise(
        self,
        expr: sympy.Expr,
        *,
        name: str,
        exact_name: bool = False,
        doc: str = "",
        shape_of: Iterable[str] = (),
    ) -> str:
        """Assign an elementwise expression over value names, sharing repeated subexpressions.

        Subexpressions that occur twice (``sympy.cse``) become values of their own, so that
        nothing is computed twice; value numbering then reuses them across assignments.
        ``shape_of`` names values the result is broadcast against although SymPy simplified
        them away (``W - W`` is a zero array of W's shape, not the number 0).
        """
        if expr.has(sympy.Piecewise):
            expr = sympy.piecewise_fold(expr)
        replacements, (reduced,) = sympy.cse(
            expr, symbols=sympy.numbered_symbols("_cse"), optimizations=None
        )
        mapping: dict[sympy.Symbol, sympy.Expr] = {}
        k = 0
        for tmp, sub in replacements:
            sub = sub.xreplace(mapping)
            if not any(s.name in self.vars for s in sub.free_symbols):
                mapping[tmp] = sub
                continue
            k += 1
            mapping[tmp] = sympy.Symbol(self.ewise(sub, name=f"{name}_{k}"))
        reduced = reduced.xreplace(mapping)
        args = tuple(sorted(s.name for s in reduced.free_symbols if s.name in self.vars))
        shape = broadcast_shapes(*(self.vars[a].shape for a in args))
        witnesses = []
        for witness in sorted(set(shape_of) - set(args)):
            wider = broadcast_shapes(shape, self.vars[witness].shape)
            if wider != shape:
                witnesses.append(witness)
                shape = wider
        if witnesses:
            args = tuple(sorted({*args, *witnesses}))
        elif isinstance(reduced, sympy.Symbol) and reduced.name in self.vars and not exact_name:
            return reduced.name
        return self.emit(
            "ewise", args, {"expr": reduced}, name=name, exact_name=exact_name, doc=doc
        )


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
        "init_params",
        "PARAM_SHAPES",
        "loss",
        "rng",
        "dtype",
        "self",
    }
)
"""Names the generated module uses itself; a spec may not use them for its values."""


def _reserved(name: str) -> bool:
    return name in RESERVED


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


def used_names(eqns: Iterable[Eqn]) -> Iterator[str]:
    for eqn in eqns:
        yield from eqn.args


def with_eqns(program: Program, eqns: list[Eqn], **changes: Any) -> Program:
    """A copy of ``program`` with new assignments (vars are copied, not shared)."""
    return replace(program, vars=dict(program.vars), eqns=eqns, **changes)

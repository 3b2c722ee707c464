"""Reverse mode: the gradient Program from a forward Program.

Seed the loss's cotangent with 1, walk the assignments backwards, and give each value the sum
of its children's vector-Jacobian products: v̄ᵢ = Σ_{j ∈ Ch(i)} v̄ⱼ ∂vⱼ/∂vᵢ. Only values on a
path from a parameter to the loss get a cotangent. The rules live in :mod:`symbp.ops`; this walk
only routes cotangents and decides which of them become named values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import sympy

from symbp import naming
from symbp.errors import SpecError
from symbp.ops import OPS, Lazy
from symbp.program import Builder, Program, Shape, active_values, broadcast_shapes, with_eqns


def backprop(program: Program) -> Program:
    """Append the backward pass to ``program``; ``grads`` maps each parameter to its gradient."""
    forward = list(program.eqns)
    active = _active_values(program)
    out = with_eqns(program, list(forward), n_forward=len(forward), grads={})
    ctx = _Backward(out)
    uses = Counter(a for e in forward if e.out in active for a in e.args if a in active)
    pending: dict[str, list[Lazy]] = {program.loss: [Lazy(sympy.Integer(1), ())]}
    for eqn in reversed(forward):
        if eqn.out not in active or eqn.out not in pending:
            continue
        g = ctx.total(eqn.out, pending.pop(eqn.out))
        needs = [a in active for a in eqn.args]
        names = [naming.contribution(a, eqn.out, uses[a]) for a in eqn.args]
        for arg, piece in zip(eqn.args, OPS[eqn.op].vjp(ctx, eqn, g, needs, names), strict=True):
            if piece is not None:
                pending.setdefault(arg, []).append(piece)
    for param in program.params:
        g = ctx.total(param, pending.pop(param))
        out.grads[param] = ctx.full(g, param, naming.adjoint(param))
    return out


def _active_values(program: Program) -> set[str]:
    """Values on a path from some parameter to the loss; a parameter off every path is an error."""
    depends, reaches = active_values(program.eqns, program.params, program.loss)
    unused = [p for p in program.params if p not in reaches]
    if unused:
        listed = ", ".join(f"'{p}'" for p in unused)
        noun = "parameter" if len(unused) == 1 else "parameters"
        raise SpecError(
            f"the loss '{program.loss}' does not depend on {noun} {listed}; "
            "use it in a step or remove it from params"
        )
    return depends & reaches


class _Backward:
    """The VJP context: turns lazy cotangents into named values only where one is needed."""

    def __init__(self, program: Program):
        self.program = program
        self.builder = Builder(program)

    def shape(self, name: str) -> Shape:
        return self.program.vars[name].shape

    def _array_names(self, expr: sympy.Expr) -> list[str]:
        return [
            s.name
            for s in expr.free_symbols
            if s.name in self.program.vars and self.program.vars[s.name].role != "const"
        ]

    def total(self, name: str, pieces: list[Lazy]) -> Lazy:
        """The cotangent of ``name``: its contributions summed, named ``d<name>`` unless trivial.

        A cotangent that is a name already, or made of constants only (λ, 1/m), stays an
        expression and is written into the lines that use it.
        """
        expr = sympy.Add(*(p.expr for p in pieces))
        shape = broadcast_shapes(*(p.shape for p in pieces))
        lazy = Lazy(expr, shape)
        if expr.is_Symbol or not self._array_names(expr):
            return lazy
        return Lazy(sympy.Symbol(self.var(lazy, naming.adjoint(name))), shape)

    def var(self, g: Lazy, name: str) -> str:
        if g.expr.is_Symbol and g.expr.name in self.program.vars:
            return g.expr.name
        return self.builder.ewise(g.expr, name=name)

    def full(self, g: Lazy, like: str, name: str) -> str:
        """``g`` as an array of exactly the shape of ``like``."""
        target = self.shape(like)
        if not g.expr.free_symbols - _dims(g.expr):
            return self.builder.emit("fill", [like], {"value": g.expr}, name=name)
        gv = self.var(g, name)
        if self.shape(gv) == target:
            return gv
        return self.builder.emit("broadcast", [gv, like], {}, name=name)

    def op(self, op: str, args: Sequence[str], attrs: dict[str, Any], name: str) -> str:
        return self.builder.emit(op, args, attrs, name=name)

    def unbroadcast(self, g: Lazy, shape: Shape, name: str) -> Lazy:
        """Sum ``g`` over the axes NumPy broadcast it along, so that it fits ``shape``."""
        if len(g.shape) <= len(shape) and all(
            d == t or d == 1 for d, t in zip(g.shape[::-1], shape[::-1], strict=False)
        ):
            return g
        if not shape:
            return Lazy(sympy.Symbol(self.op("sum", [self.var(g, name + "_all")], {}, name)), ())
        current = self.var(g, name + "_full")
        extra = len(self.shape(current)) - len(shape)
        for _ in range(extra):
            current = self.op("sum", [current], {"axis": 0}, name)
        for axis, (d, t) in enumerate(zip(self.shape(current), shape, strict=True)):
            if t == 1 and d != 1:
                current = self.op("sum", [current], {"axis": axis, "keepdims": True}, name)
        return Lazy(sympy.Symbol(current), shape)


def _dims(expr: sympy.Expr) -> set[sympy.Symbol]:
    return {s for s in expr.free_symbols if s.is_integer}

"""Reverse mode: the gradient Program from a forward Program.

Seed the loss's cotangent with 1, walk the assignments backwards, and give each value the sum
of its children's vector-Jacobian products: v̄ᵢ = Σ_{j ∈ Ch(i)} v̄ⱼ ∂vⱼ/∂vᵢ. Only values on a
path from a parameter to the loss get a cotangent. The rules live in :mod:`symbp.ir.ops`; this walk
only routes cotangents and decides which of them become named values.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import sympy

from symbp.ir.builder import Builder
from symbp.ir.names import adjoint, contribution
from symbp.ir.ops import OPS
from symbp.ir.primitive import Lazy
from symbp.ir.program import (
    Eqn,
    Program,
    Shape,
    active_values,
    broadcast_shapes,
    dim_expr,
    with_eqns,
)


def backprop(program: Program, naming: Callable[[str], str] = adjoint) -> Program:
    """Append the backward pass to ``program``; ``grads`` maps each parameter to its gradient.

    ``naming`` names a value's cotangent (``dW1``); the second pass of a Hessian-vector
    product names its own (:mod:`symbp.ad.hvp`)."""
    forward = list(program.eqns)
    active = _active_values(program)
    out = with_eqns(program, list(forward), n_forward=len(forward), grads={})
    ctx = _Backward(out, naming)
    uses = Counter(a for e in forward if e.out in active for a in e.args if a in active)
    pending: dict[str, list[Lazy]] = {program.loss: [Lazy(sympy.Integer(1), ())]}
    for eqn in reversed(forward):
        if eqn.out not in active or eqn.out not in pending:
            continue
        g = ctx.total(eqn.out, pending.pop(eqn.out))
        if g.expr == 0:
            # Contributions that cancel (the second pass of p2 − (c + p2)) pass nothing on.
            continue
        needs = [a in active for a in eqn.args]
        names = [contribution(a, eqn.out, uses[a], naming) for a in eqn.args]
        for arg, piece in zip(eqn.args, OPS[eqn.op].vjp(ctx, eqn, g, needs, names), strict=True):
            if piece is not None:
                pending.setdefault(arg, []).append(piece)
    for param in program.params:
        # A parameter whose every path was multiplied by zero (W - W) gets no contribution.
        g = ctx.total(param, pending.pop(param, []))
        grad = ctx.full(g, param, naming(param))
        if not ctx.owned(grad) or grad in out.grads.values():
            # The caller gets arrays of its own: never a parameter, an input, the cache, a view
            # of one, or the array of another gradient.
            grad = ctx.op("copy", [grad], {"of": param}, naming(param))
        out.grads[param] = grad
    return _without_dead(out)


def _without_dead(program: Program) -> Program:
    """Drop backward assignments no gradient reads (a cotangent that was multiplied by 0)."""
    needed = set(program.grads.values())
    kept = []
    for eqn in reversed(program.backward_eqns):
        if eqn.out in needed:
            needed.update(eqn.args)
            kept.append(eqn)
    removed = {e.out for e in program.backward_eqns} - {e.out for e in kept}
    program.eqns = program.forward_eqns + kept[::-1]
    for name in removed:
        del program.vars[name]
    return program


def _active_values(program: Program) -> set[str]:
    """Values on a path from some parameter to the loss (a parameter off every path, whose
    uses SymPy cancelled, gets a zero gradient)."""
    depends, reaches = active_values(program.eqns, program.params, program.loss)
    return depends & reaches


class _Backward:
    """The VJP context: turns lazy cotangents into named values only where one is needed."""

    def __init__(self, program: Program, naming: Callable[[str], str] = adjoint):
        self.program = program
        self.naming = naming
        self.builder = Builder(program)
        self.first_backward = len(program.eqns)
        self.numbers = set(program.vars) - program.arrays()
        """Forward values that are Python numbers: constants and what is computed from them."""

    @property
    def produced(self) -> dict[str, Eqn]:
        return {e.out: e for e in self.program.eqns[self.first_backward :]}

    def shape(self, name: str) -> Shape:
        return self.program.vars[name].shape

    def _array_names(self, expr: sympy.Expr) -> list[str]:
        """The arrays ``expr`` reads (not constants, nor values of constants alone)."""
        return [
            s.name
            for s in expr.free_symbols
            if s.name in self.program.vars and s.name not in self.numbers
        ]

    def actual_shape(self, expr: sympy.Expr) -> Shape:
        """The shape of ``expr`` computed as written: the broadcast of the values it reads.

        A cotangent's own shape may be larger (the cotangent of a sum is 1, for every entry).
        """
        return broadcast_shapes(*(self.shape(n) for n in self._array_names(expr)))

    def owned(self, name: str) -> bool:
        """Whether ``name`` is a new array the backward pass made (not a view or another name
        of a parameter, an input or a cached forward value)."""
        eqn = self.produced.get(name)
        if eqn is None:
            return False
        op = OPS[eqn.op]
        alias = eqn.op == "ewise" and eqn.attr("expr").is_Symbol
        return op.fresh and not op.view and not alias

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
        return Lazy(sympy.Symbol(self.var(lazy, self.naming(name))), shape)

    def var(self, g: Lazy, name: str) -> str:
        if g.expr.is_Symbol and g.expr.name in self.program.vars:
            return g.expr.name
        return self.builder.ewise(g.expr, name=name)

    def full(self, g: Lazy, like: str, name: str) -> str:
        """``g`` as an array of exactly the shape of ``like``."""
        target = self.shape(like)
        if not self._array_names(g.expr):
            return self.builder.emit("fill", [like], {"value": g.expr}, name=name)
        gv = self.var(g, name)
        if self.shape(gv) == target:
            return gv
        return self.builder.emit("broadcast", [gv, like], {}, name=name)

    def op(self, op: str, args: Sequence[str], attrs: dict[str, Any], name: str) -> str:
        return self.builder.emit(op, args, attrs, name=name)

    def unbroadcast(self, g: Lazy, shape: Shape, name: str) -> Lazy:
        """Sum ``g`` over the axes NumPy broadcast it along, so that it fits ``shape``.

        Along an axis the expression does not vary on (the cotangent 1 of a sum, a bias row
        added to a batch), the sum of its n equal entries is n times one of them: no array is
        made for it.
        """
        if len(g.shape) <= len(shape) and all(
            d == t or d == 1 for d, t in zip(g.shape[::-1], shape[::-1], strict=False)
        ):
            return g
        actual = self.actual_shape(g.expr)
        extra = len(g.shape) - len(shape)
        scale: sympy.Expr = sympy.Integer(1)
        summed = False
        for i, d in enumerate(g.shape):
            k = i - (len(g.shape) - len(actual))  # the same axis in ``actual``, if it has it
            reduced = i < extra or (shape[i - extra] == 1 and d != 1)
            varies = k >= 0 and actual[k] != 1
            if reduced and not varies:
                scale *= dim_expr(d)
            summed |= reduced and k >= 0 and (varies or i < extra)
        if not summed:
            return Lazy(g.expr * scale, shape)
        if not shape:
            total = self.op("sum", [self.var(g, name + "_all")], {}, name)
            return Lazy(sympy.Symbol(total) * scale, ())
        current = self.var(g, name + "_full")
        leading = len(actual) - len(shape)
        now = actual[leading:]
        kept = [
            axis
            for axis, d in enumerate(now)
            if shape[axis - len(now) + len(shape)] == 1 and d != 1
        ]
        steps = [({"axis": 0}) for _ in range(leading)]
        steps += [{"axis": axis, "keepdims": True} for axis in kept]
        for k, attrs in enumerate(steps):
            # Only the last sum is the cotangent: the ones before it are partial sums.
            last = k == len(steps) - 1
            current = self.op("sum", [current], attrs, name if last else name + "_part")
        return Lazy(sympy.Symbol(current) * scale, shape)

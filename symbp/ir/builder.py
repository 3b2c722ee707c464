"""Building a Program one assignment at a time, reusing an identical assignment instead of
repeating it (value numbering) and sharing repeated elementwise subexpressions."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

import sympy

from symbp.errors import SpecError
from symbp.ir.names import RESERVED
from symbp.ir.ops import OPS
from symbp.ir.program import Eqn, Program, Var, broadcast_shapes


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
        if hint not in self.vars and hint not in RESERVED:
            return hint
        k = 2
        while f"{hint}_{k}" in self.vars or f"{hint}_{k}" in RESERVED:
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
        replacements, reduced = [], expr
        if _may_share(expr):
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


def _may_share(expr: sympy.Expr) -> bool:
    """Whether ``sympy.cse`` could find anything in ``expr``: a subtree that occurs twice, or
    two sums (two products) that could share some of their terms. Most assignments of a
    backward pass (``dA * dZ_1``, ``1 - A**2``) have neither, and cse costs a deep network's
    derivation a third of its time."""
    seen: set[sympy.Basic] = set()
    sums = products = 0
    for node in sympy.preorder_traversal(expr):
        if node.is_Atom:
            continue
        if node in seen:
            return True
        seen.add(node)
        sums += isinstance(node, sympy.Add)
        products += isinstance(node, sympy.Mul)
    return sums > 1 or products > 1

"""Numbers for SymPy expressions: a random point for a Program's leaves, and evaluation there
to 50 digits (mpmath), each distinct subexpression once.

The redundancy report checks naive against backprop gradients with these, and the line
verifier of the LaTeX document checks every side of every displayed equation with them.
"""

from __future__ import annotations

from collections.abc import Mapping

import mpmath
import numpy as np
import sympy

from symbp.analysis.scalar import separator
from symbp.ir.functions import ARGUMENTS, FunctionTable

AGREEMENT_DIGITS = 50


class Evaluator:
    """Evaluates expressions at one point to 50 digits, each distinct subtree once.

    The naive gradients repeat subtrees massively (that is the point of the report), so
    memoizing by subtree keeps the check linear in the number of distinct subexpressions.
    """

    def __init__(
        self,
        point: dict,
        functions: FunctionTable | None,
        definitions: Mapping[sympy.Symbol, sympy.Expr] | None = None,
    ):
        self.values = {k: mpmath.mpf(v.p) / v.q for k, v in point.items()}
        self.functions = {e.cls: e for e in (functions or {}).values() if e.cls is not None}
        self.definitions = definitions or {}
        """Symbols that stand for expressions (a shared view's entries), evaluated on demand."""

    def __call__(self, expr):
        with mpmath.workdps(AGREEMENT_DIGITS):
            return self._eval(expr)

    def _eval(self, expr):
        if expr in self.values:
            return self.values[expr]
        value = self._compute(expr)
        self.values[expr] = value
        return value

    def _compute(self, expr):
        if expr.is_Symbol and expr in self.definitions:
            return self._eval(self.definitions[expr])
        if isinstance(expr, sympy.logic.boolalg.Boolean):  # a mask held as a value: 1 or 0
            return mpmath.mpf(1 if self._condition(expr) else 0)
        if expr.is_Rational:
            return mpmath.mpf(expr.p) / expr.q
        if expr.is_Number or expr.is_NumberSymbol:
            return mpmath.mpf(str(sympy.N(expr, AGREEMENT_DIGITS + 5)))
        if expr.is_Add:
            return mpmath.fsum(self._eval(a) for a in expr.args)
        if expr.is_Mul:
            return mpmath.fprod(self._eval(a) for a in expr.args)
        if expr.is_Pow:
            return self._eval(expr.base) ** self._eval(expr.exp)
        if isinstance(expr, sympy.Piecewise):
            for value, condition in expr.args:
                if condition is sympy.true or self._condition(condition):
                    return self._eval(value)
            raise ValueError("no Piecewise branch applies")
        entry = self.functions.get(type(expr))
        if entry is None:
            raise ValueError(f"cannot evaluate {type(expr).__name__}")
        if entry.evaluate is not None:  # one of mpmath's, at the working precision
            return entry.evaluate(*(self._eval(a) for a in expr.args))
        return self._eval(entry.body.xreplace(dict(zip(ARGUMENTS, expr.args, strict=False))))

    def _condition(self, condition) -> bool:
        if isinstance(condition, sympy.And | sympy.Or):
            test = all if isinstance(condition, sympy.And) else any
            return test(self._condition(c) for c in condition.args)
        if isinstance(condition, sympy.Not):
            return not self._condition(condition.args[0])
        if condition in (sympy.true, sympy.false):
            return bool(condition)
        if condition.is_Symbol and condition in self.definitions:
            return self._condition(self.definitions[condition])  # a shared view's mask
        lhs, rhs = self._eval(condition.lhs), self._eval(condition.rhs)
        return {">": lhs > rhs, ">=": lhs >= rhs, "<": lhs < rhs, "<=": lhs <= rhs}[
            condition.rel_op
        ]


def random_point(program, symbols, kinds, sizes, rng) -> dict:
    point = {s: sympy.Rational(rng.randint(-90, 90), 37) for s in symbols}
    for name, kind in kinds.items():
        shape = [sizes[d] if isinstance(d, str) else d for d in program.shape(name)]
        rows = int(np.prod(shape[:-1])) if len(shape) > 1 else 1
        width = shape[-1] if shape else 1
        for row in range(rows):
            hot = rng.randrange(width)
            for col in range(width):
                idx = ([row] if len(shape) > 1 else []) + ([col] if shape else [])
                label = separator(program).join([name, *map(str, idx)]) if idx else name
                symbol = sympy.Symbol(label)
                if kind == "one-hot":
                    point[symbol] = sympy.Integer(int(col == hot))
                elif kind == "probability":
                    point[symbol] = sympy.Rational(rng.randint(1, 9), 10)
    return point

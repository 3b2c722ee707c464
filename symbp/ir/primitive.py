"""What a primitive is: the record every op fills in, and what its VJP rule works with.

An op's record holds all of its knowledge: its shape rule, its meaning on SymPy scalars, its
vector-Jacobian product, its NumPy form (and how it writes into an existing array), its form in
the array API standard (for any array library), and its LaTeX and text forms, forward and
backward. :mod:`symbp.ir.ops` and :mod:`symbp.ir.losses`
hold the records; :data:`symbp.ir.ops.OPS` indexes them; the completeness test checks each.

VJP rules receive the cotangent as a :class:`Lazy` expression and return one per argument
(``None`` where no gradient is needed). Elementwise contributions stay lazy so that the
backward pass can sum them in one line; a rule that needs an array asks the context for one.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import sympy

from symbp.errors import SpecError
from symbp.ir.program import Eqn, Program, Shape


@dataclass(frozen=True)
class Lazy:
    """A cotangent (contribution) not yet assigned to a name: an expression and its shape.

    The expression is over value names (SymPy symbols); its shape broadcasts to the shape of
    the value it is the cotangent of.
    """

    expr: sympy.Expr
    shape: Shape


class VJPContext(Protocol):
    """What a VJP rule may ask of the backward pass being built."""

    def shape(self, name: str) -> Shape: ...

    def var(self, g: Lazy, name: str) -> str: ...

    def full(self, g: Lazy, like: str, name: str) -> str: ...

    def op(self, op: str, args: Sequence[str], attrs: dict[str, Any], name: str) -> str: ...

    def unbroadcast(self, g: Lazy, shape: Shape, name: str) -> Lazy: ...

    def actual_shape(self, expr: sympy.Expr) -> Shape: ...


class Printers(Protocol):
    """The expression printers the code and LaTeX generators hand to op forms."""

    def numpy(self, expr: sympy.Expr) -> str: ...

    def numpy_value(self, expr: sympy.Expr, args: Sequence[str]) -> str: ...

    functions: Any
    """The function table (its entries' LaTeX names, for σ′ and tanh′)."""

    def latex(self, expr: sympy.Expr) -> str: ...

    def latex_symbol(self, name: str, bar: bool = False) -> str: ...

    def numpy_into(self, expr: sympy.Expr, buffer: str) -> str | None: ...

    def array_api(self, expr: sympy.Expr) -> str: ...

    def array_api_value(self, expr: sympy.Expr, args: Sequence[str]) -> str: ...

    def rank(self, name: str) -> int: ...

    def latex_name(self, name: str) -> str: ...

    def text(self, expr: sympy.Expr) -> str: ...


def sym(name: str) -> sympy.Symbol:
    return sympy.Symbol(name)


def partial_derivative(expr, args: Sequence[str], wrt: str, out: sympy.Symbol) -> sympy.Expr:
    """∂expr/∂wrt, with ``expr`` itself rewritten as ``out`` (so tanh' reads 1 − out²).

    The arguments are renamed by position before differentiating, so the same function in
    every layer is differentiated once (SymPy's diff is the hot spot of deep networks)."""
    if expr.is_Add and sym(wrt) in _lone_terms(expr):
        # A sum's partial in one of its terms is 1 when no other term reads it: the sum of a
        # Hessian-vector product's inner products has one term per parameter, and sympy.diff
        # in each would be quadratic in their number.
        return sympy.Integer(1)
    slots = {sym(a): sympy.Symbol(f"x·{i}") for i, a in enumerate(args)}
    slots[out] = sympy.Symbol("out·")
    back = {v: k for k, v in slots.items()}
    partial = _canonical_partial(expr.xreplace(slots), slots[sym(wrt)], slots[out])
    return partial.xreplace(back)


@functools.lru_cache(maxsize=256)
def _lone_terms(expr: sympy.Add) -> frozenset[sympy.Symbol]:
    """The names that are terms of the sum ``expr`` and occur in no other term."""
    seen: dict[sympy.Symbol, int] = {}
    for term in expr.args:
        for symbol in term.free_symbols:
            seen[symbol] = seen.get(symbol, 0) + 1
    return frozenset(t for t in expr.args if t.is_Symbol and seen[t] == 1)


@functools.lru_cache(maxsize=4096)
def _canonical_partial(expr, wrt, out):
    partial = sympy.diff(expr, wrt)
    partial = partial if expr.is_Symbol else partial.subs(expr, out)
    # The product rule leaves sums of products with a factor in common (the second pass of a
    # Hessian-vector product meets them: ∂(a·b(1 − b))/∂b = a(1 − b) − ab): the common
    # factor is taken out where that saves operations, a(1 − 2b).
    factored = sympy.factor_terms(partial)
    return factored if sympy.count_ops(factored) < sympy.count_ops(partial) else partial


class Op:
    """Base class: subclasses fill in every form; the completeness test checks them all."""

    name: ClassVar[str]
    arity: ClassVar[int | None] = None

    def shape(self, shapes: list[Shape], attrs: dict[str, Any]) -> Shape:
        raise NotImplementedError

    def scalar(self, args: list[np.ndarray], attrs: dict[str, Any]) -> np.ndarray:
        """The op on object arrays of SymPy scalars; ``attrs["names"]`` holds the arg names."""
        raise NotImplementedError

    def vjp(
        self, ctx: VJPContext, eqn: Eqn, g: Lazy, needs: list[bool], names: list[str]
    ) -> list[Lazy | None]:
        raise NotImplementedError

    def numpy(self, args: list[str], attrs: dict[str, Any], pr: Printers) -> str:
        raise NotImplementedError

    def display(self, args: list[str], attrs: dict[str, Any], shapes: Sequence[Shape]) -> Any:
        """The assignment's right-hand side as the document displays it: a SymPy expression
        over the argument names and the nodes of :mod:`symbp.ir.display`, which the LaTeX
        printer prints and the line verifier evaluates. ``shapes`` are the arguments'."""
        raise NotImplementedError

    def display_adjoint(self, eqn: Eqn, i: int, program: Program) -> tuple[Any, Any]:
        """Argument ``i``'s share of the adjoint, v̄ⱼ ∂vⱼ/∂vᵢ, as display expressions: the
        derivative by the function's name (σ′(z)), or None where there is none, and the
        product as computed."""
        raise NotImplementedError

    def latex(self, args: list[str], attrs: dict[str, Any], pr: Printers) -> str:
        """The forward form in LaTeX (``attrs["shapes"]``, if given, holds the arguments')."""
        return pr.latex(self.display(args, attrs, attrs.get("shapes", ())))

    def latex_adjoint(self, eqn: Eqn, i: int, program: Program, pr: Printers) -> tuple[str, str]:
        """:meth:`display_adjoint` in LaTeX ("" where there is no named form)."""
        named, product = self.display_adjoint(eqn, i, program)
        return ("" if named is None else pr.latex(named)), pr.latex(product)

    def statements(
        self, out: str, args: list[str], attrs: dict[str, Any], pr: Printers
    ) -> list[str]:
        """The assignment as NumPy statements; one line unless an op can avoid a temporary."""
        return [f"{out} = {self.numpy(args, attrs, pr)}"]

    fresh: ClassVar[bool] = False
    """Whether the NumPy form returns a new array (one a later assignment may write into)."""
    elementwise: ClassVar[bool] = False
    """Whether the result may overwrite an argument of its own shape while reading it."""
    view: ClassVar[bool] = False
    """Whether the NumPy form returns a view of its argument (which must then stay intact)."""

    def aliases(self, eqn: Eqn, pr: Printers) -> bool:
        """Whether this assignment's NumPy form is a view or another name of an argument."""
        return self.view

    def into(
        self, out: str, buffer: str, args: list[str], attrs: dict[str, Any], pr: Printers
    ) -> list[str] | None:
        """The assignment written into ``buffer``'s array (``out=``), or None if it cannot be."""
        return None

    def text(self, args: list[str], attrs: dict[str, Any], pr: Printers) -> str:
        raise NotImplementedError

    helpers: ClassVar[tuple[str, ...]] = ()
    """Names of module-level helper functions the NumPy form calls."""

    def array_api(self, args: list[str], attrs: dict[str, Any], pr: Printers) -> str:
        """The assignment's right-hand side in the array API standard: functions of the
        namespace ``xp`` and the standard's operators, reading its arguments and writing none
        (arrays of some libraries cannot be written)."""
        raise NotImplementedError

    array_api_helpers: ClassVar[dict[str, str]] = {}
    """Module-level helpers the array API form calls, by name, with their source (each takes
    the namespace ``xp`` first)."""


def check_arity(op: Op, shapes: list[Shape]) -> None:
    if op.arity is not None and len(shapes) != op.arity:
        raise SpecError(f"{op.name} takes {op.arity} arguments, got {len(shapes)}")

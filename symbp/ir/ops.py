"""The primitive registry: for each op, its shape rule, scalar meaning, VJP, NumPy and LaTeX forms.

Adding an op is one class here (plus its tests). Elementwise arithmetic and functions are one
op, ``ewise``, whose attribute is a SymPy expression over the argument names: its VJP is
``sympy.diff`` of that expression, rewritten to reuse the forward output where it appears
(σ′ = y(1 − y)), so elementwise rules never need writing by hand.

VJP rules receive the cotangent as a :class:`Lazy` expression and return one per argument
(``None`` where no gradient is needed). Elementwise contributions stay lazy so that the
backward pass can sum them in one line; a rule that needs an array asks the context for one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import numpy as np
import sympy

from symbp.errors import SpecError
from symbp.ir.program import Eqn, Shape, broadcast_shapes, dim_expr, shape_text, size_expr


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

    def latex(self, expr: sympy.Expr) -> str: ...

    def numpy_into(self, expr: sympy.Expr, buffer: str) -> str | None: ...

    def latex_name(self, name: str) -> str: ...

    def text(self, expr: sympy.Expr) -> str: ...


def _sym(name: str) -> sympy.Symbol:
    return sympy.Symbol(name)


def _partial(expr, args: Sequence[str], wrt: str, out: sympy.Symbol) -> sympy.Expr:
    """∂expr/∂wrt, with ``expr`` itself rewritten as ``out`` (so tanh' reads 1 − out²).

    The arguments are renamed by position before differentiating, so the same function in
    every layer is differentiated once (SymPy's diff is the hot spot of deep networks)."""
    slots = {_sym(a): sympy.Symbol(f"x·{i}") for i, a in enumerate(args)}
    slots[out] = sympy.Symbol("out·")
    back = {v: k for k, v in slots.items()}
    partial = _canonical_partial(expr.xreplace(slots), slots[_sym(wrt)], slots[out])
    return partial.xreplace(back)


@functools.lru_cache(maxsize=4096)
def _canonical_partial(expr, wrt, out):
    partial = sympy.diff(expr, wrt)
    return partial if expr.is_Symbol else partial.subs(expr, out)


def fused_loss_attrs(shape: Shape, reduction: str) -> dict[str, Any]:
    """Attributes of a fused loss: the batch count its sum is divided by, if any.

    Rows of a 2-D input are samples; a vector or a scalar is one sample.
    """
    if reduction not in ("mean", "sum"):
        raise SpecError(f"unknown reduction '{reduction}'; use 'mean' or 'sum'")
    if reduction == "sum" or len(shape) < 2:
        return {"reduction": reduction}
    return {"reduction": reduction, "count": dim_expr(shape[0])}


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

    def latex(self, args: list[str], attrs: dict[str, Any], pr: Printers) -> str:
        raise NotImplementedError

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


def _check_arity(op: Op, shapes: list[Shape]) -> None:
    if op.arity is not None and len(shapes) != op.arity:
        raise SpecError(f"{op.name} takes {op.arity} arguments, got {len(shapes)}")


class Ewise(Op):
    """Elementwise expression over its arguments, with NumPy broadcasting."""

    name = "ewise"

    def shape(self, shapes, attrs):
        try:
            return broadcast_shapes(*shapes)
        except ValueError as err:
            raise SpecError(f"elementwise operation: {err}") from None

    def scalar(self, args, attrs):
        expr = attrs["expr"]
        symbols = [_sym(n) for n in attrs["names"]]
        arrays = np.broadcast_arrays(*args) if args else []
        out = np.empty(arrays[0].shape if arrays else (), dtype=object)
        for idx in np.ndindex(out.shape):
            out[idx] = expr.xreplace({s: a[idx] for s, a in zip(symbols, arrays, strict=True)})
        return out

    def vjp(self, ctx, eqn, g, needs, names):
        expr = eqn.attr("expr")
        out_symbol = _sym(eqn.out)
        out_shape = ctx.shape(eqn.out)
        results: list[Lazy | None] = []
        for arg, need, name in zip(eqn.args, needs, names, strict=True):
            if not need:
                results.append(None)
                continue
            partial = _partial(expr, eqn.args, arg, out_symbol)
            if partial == 0:  # an argument SymPy simplified away (W - W) gets nothing
                results.append(None)
                continue
            contribution = Lazy(g.expr * partial, broadcast_shapes(g.shape, out_shape))
            results.append(ctx.unbroadcast(contribution, ctx.shape(arg), name))
        return results

    def numpy(self, args, attrs, pr):
        return pr.numpy_value(attrs["expr"], args)

    fresh = True
    elementwise = True

    def aliases(self, eqn, pr):
        return self.numpy(list(eqn.args), dict(eqn.attrs), pr).isidentifier()

    def into(self, out, buffer, args, attrs, pr):
        code = pr.numpy_into(attrs["expr"], buffer)
        return None if code is None else [f"{out} = {code}"]

    def latex(self, args, attrs, pr):
        return pr.latex(attrs["expr"])

    def text(self, args, attrs, pr):
        return pr.text(attrs["expr"])


def _matmul_shape(a: Shape, b: Shape, ta: bool, tb: bool) -> Shape:
    if ta and len(a) == 2:
        a = (a[1], a[0])
    if tb and len(b) == 2:
        b = (b[1], b[0])
    if not a or not b or len(a) > 2 or len(b) > 2:
        raise SpecError(f"@ needs vectors or matrices, got ({shape_text(a)}) @ ({shape_text(b)})")
    inner_a = a[-1]
    inner_b = b[0]
    if inner_a != inner_b:
        raise SpecError(
            f"shapes ({shape_text(a)}) @ ({shape_text(b)}) do not match: "
            f"{inner_a} columns against {inner_b} rows"
        )
    return a[:-1] + b[1:]


def _t(name: str, transposed: bool) -> str:
    return f"{name}.T" if transposed else name


class MatMul(Op):
    """Matrix product ``op(A) @ op(B)``, where ``op`` transposes a matrix when flagged."""

    name = "matmul"
    arity = 2

    def shape(self, shapes, attrs):
        _check_arity(self, shapes)
        return _matmul_shape(shapes[0], shapes[1], attrs.get("ta", False), attrs.get("tb", False))

    def scalar(self, args, attrs):
        a, b = args
        if attrs.get("ta", False) and a.ndim == 2:
            a = a.T
        if attrs.get("tb", False) and b.ndim == 2:
            b = b.T
        return np.asarray(np.dot(a, b), dtype=object)

    def vjp(self, ctx, eqn, g, needs, names):
        a, b = eqn.args
        ta, tb = eqn.attr("ta", False), eqn.attr("tb", False)
        ra, rb = len(ctx.shape(a)), len(ctx.shape(b))
        if ra == 1 and rb == 1:
            return [
                Lazy(g.expr * _sym(b), ctx.shape(a)) if needs[0] else None,
                Lazy(g.expr * _sym(a), ctx.shape(b)) if needs[1] else None,
            ]
        gv = ctx.full(g, eqn.out, "d" + eqn.out)
        da = db = None
        if needs[0]:
            if ra == 1:
                da = ctx.op(
                    "matmul", [b, gv], {"ta": False, "tb": False} | _flags(tb, False), names[0]
                )
            elif rb == 1:
                da = ctx.op("outer", [b, gv] if ta else [gv, b], {}, names[0])
            elif not ta:
                da = ctx.op("matmul", [gv, b], _flags(False, not tb), names[0])
            else:
                da = ctx.op("matmul", [b, gv], _flags(tb, True), names[0])
        if needs[1]:
            if rb == 1:
                db = ctx.op("matmul", [a, gv], _flags(not ta, False), names[1])
            elif ra == 1:
                db = ctx.op("outer", [gv, a] if tb else [a, gv], {}, names[1])
            elif not tb:
                db = ctx.op("matmul", [a, gv], _flags(not ta, False), names[1])
            else:
                db = ctx.op("matmul", [gv, a], _flags(True, ta), names[1])
        return [
            Lazy(_sym(da), ctx.shape(a)) if da else None,
            Lazy(_sym(db), ctx.shape(b)) if db else None,
        ]

    def numpy(self, args, attrs, pr):
        return f"{_t(args[0], attrs.get('ta', False))} @ {_t(args[1], attrs.get('tb', False))}"

    fresh = True

    def into(self, out, buffer, args, attrs, pr):
        a, b = _t(args[0], attrs.get("ta", False)), _t(args[1], attrs.get("tb", False))
        return [f"{out} = np.matmul({a}, {b}, out={buffer})"]

    def latex(self, args, attrs, pr):
        return " ".join(
            pr.latex_name(a) + ("^{\\top}" if attrs.get(k, False) else "")
            for a, k in zip(args, ("ta", "tb"), strict=True)
        )

    def text(self, args, attrs, pr):
        return " ".join(
            a + ("ᵀ" if attrs.get(k, False) else "")
            for a, k in zip(args, ("ta", "tb"), strict=True)
        )


def _flags(ta: bool, tb: bool) -> dict[str, bool]:
    return {k: v for k, v in (("ta", ta), ("tb", tb)) if v}


class Outer(Op):
    """Outer product of two vectors (the VJP of a matrix-vector product)."""

    name = "outer"
    arity = 2

    def shape(self, shapes, attrs):
        _check_arity(self, shapes)
        a, b = shapes
        if len(a) != 1 or len(b) != 1:
            raise SpecError("outer needs two vectors")
        return (a[0], b[0])

    def scalar(self, args, attrs):
        return np.asarray(np.outer(args[0], args[1]), dtype=object)

    def vjp(self, ctx, eqn, g, needs, names):
        a, b = eqn.args
        gv = ctx.full(g, eqn.out, "d" + eqn.out)
        da = ctx.op("matmul", [gv, b], {}, names[0]) if needs[0] else None
        db = ctx.op("matmul", [gv, a], {"ta": True}, names[1]) if needs[1] else None
        return [
            Lazy(_sym(da), ctx.shape(a)) if da else None,
            Lazy(_sym(db), ctx.shape(b)) if db else None,
        ]

    def numpy(self, args, attrs, pr):
        return f"np.outer({args[0]}, {args[1]})"

    fresh = True

    def into(self, out, buffer, args, attrs, pr):
        return [f"{out} = np.outer({args[0]}, {args[1]}, out={buffer})"]

    def latex(self, args, attrs, pr):
        return f"{pr.latex_name(args[0])} {pr.latex_name(args[1])}^{{\\top}}"

    def text(self, args, attrs, pr):
        return f"{args[0]} {args[1]}ᵀ"


class Affine(Op):
    """A layer's pre-activation ``A @ W + b``, the bias broadcast over the rows (the batch)."""

    name = "affine"
    arity = 3

    def shape(self, shapes, attrs):
        _check_arity(self, shapes)
        a, w, b = shapes
        out = _matmul_shape(a, w, False, False)
        if len(a) != 2 or len(w) != 2 or b != out[-1:]:
            raise SpecError(
                f"affine needs (m x k) @ (k x n) + (n), got ({shape_text(a)}), "
                f"({shape_text(w)}), ({shape_text(b)})"
            )
        return out

    def scalar(self, args, attrs):
        a, w, b = args
        return np.asarray(np.dot(a, w) + b[None, :], dtype=object)

    def vjp(self, ctx, eqn, g, needs, names):
        a, w, b = eqn.args
        gv = ctx.full(g, eqn.out, "d" + eqn.out)
        out: list[Lazy | None] = [None, None, None]
        if needs[0]:
            out[0] = Lazy(_sym(ctx.op("matmul", [gv, w], {"tb": True}, names[0])), ctx.shape(a))
        if needs[1]:
            out[1] = Lazy(_sym(ctx.op("matmul", [a, gv], {"ta": True}, names[1])), ctx.shape(w))
        if needs[2]:
            out[2] = Lazy(_sym(ctx.op("sum", [gv], {"axis": 0}, names[2])), ctx.shape(b))
        return out

    def numpy(self, args, attrs, pr):
        return f"{args[0]} @ {args[1]} + {args[2]}"

    def statements(self, out, args, attrs, pr):
        # The product is a fresh array: adding the bias in place saves a second (m x n) array.
        return [f"{out} = {args[0]} @ {args[1]}", f"{out} += {args[2]}"]

    fresh = True

    def into(self, out, buffer, args, attrs, pr):
        return [f"{out} = np.matmul({args[0]}, {args[1]}, out={buffer})", f"{out} += {args[2]}"]

    def latex(self, args, attrs, pr):
        a, w, b = (pr.latex_name(x) for x in args)
        return f"{a} {w} + \\mathbf{{1}} {b}^{{\\top}}"

    def text(self, args, attrs, pr):
        return f"{args[0]} {args[1]} + 1 {args[2]}ᵀ"


class Transpose(Op):
    name = "transpose"
    arity = 1
    view = True

    def shape(self, shapes, attrs):
        _check_arity(self, shapes)
        (a,) = shapes
        return tuple(reversed(a))

    def scalar(self, args, attrs):
        return np.asarray(args[0].T, dtype=object)

    def vjp(self, ctx, eqn, g, needs, names):
        gv = ctx.full(g, eqn.out, "d" + eqn.out)
        return [Lazy(_sym(ctx.op("transpose", [gv], {}, names[0])), ctx.shape(eqn.args[0]))]

    def numpy(self, args, attrs, pr):
        return f"{args[0]}.T"

    def latex(self, args, attrs, pr):
        return f"{pr.latex_name(args[0])}^{{\\top}}"

    def text(self, args, attrs, pr):
        return f"{args[0]}ᵀ"


def _reduced_shape(shape: Shape, axis: int | None, keepdims: bool) -> Shape:
    if axis is None:
        return tuple(1 for _ in shape) if keepdims else ()
    if not -len(shape) <= axis < len(shape):
        raise SpecError(f"axis={axis} is out of range for a value of shape ({shape_text(shape)})")
    axis %= len(shape)
    if keepdims:
        return (*shape[:axis], 1, *shape[axis + 1 :])
    return shape[:axis] + shape[axis + 1 :]


def _axis_kw(attrs: dict[str, Any]) -> str:
    parts = []
    if attrs.get("axis") is not None:
        parts.append(f", axis={attrs['axis']}")
    if attrs.get("keepdims"):
        parts.append(", keepdims=True")
    return "".join(parts)


def _reduction(method: str, arg: str, attrs: dict[str, Any]) -> str:
    """``A.sum(axis=0)``: along an axis the argument is an array, and the method skips
    ``np.sum``'s Python wrapper (a microsecond a call, which small batches notice). A value
    reduced whole may be a Python float (a constant), so that stays ``np.sum(a)``."""
    if attrs.get("axis") is None:
        return f"np.{method}({arg}{_axis_kw(attrs)})"
    return f"{arg}.{method}({_axis_kw(attrs)[2:]})"


def _spread(ctx: VJPContext, g: Lazy, source: Shape, axis: int | None, keepdims: bool, name: str):
    """The cotangent of a reduction's input: ``g`` broadcast back over the reduced axis.

    ``g`` lines up with the input's axes after the reduced one; where it has axes before it,
    a new axis of length 1 goes between (``dv[:, None]``)."""
    if axis is None or keepdims:
        return Lazy(g.expr, g.shape)
    axis %= len(source)
    spread = (*source[:axis], 1, *source[axis + 1 :])
    before = axis - (len(source) - 1 - len(ctx.actual_shape(g.expr)))
    if before <= 0:
        return Lazy(g.expr, spread)
    gv = ctx.var(g, name)
    return Lazy(_sym(ctx.op("expand_dims", [gv], {"axis": before}, name + "_col")), spread)


class Sum(Op):
    """Sum over all entries or along one axis."""

    name = "sum"
    arity = 1
    fresh = True

    def shape(self, shapes, attrs):
        _check_arity(self, shapes)
        return _reduced_shape(shapes[0], attrs.get("axis"), attrs.get("keepdims", False))

    def scalar(self, args, attrs):
        axis = attrs.get("axis")
        out = np.sum(args[0], axis=axis, keepdims=attrs.get("keepdims", False))
        return np.asarray(out, dtype=object)

    def vjp(self, ctx, eqn, g, needs, names):
        source = ctx.shape(eqn.args[0])
        return [_spread(ctx, g, source, eqn.attr("axis"), eqn.attr("keepdims", False), names[0])]

    def numpy(self, args, attrs, pr):
        return _reduction("sum", args[0], attrs)

    def latex(self, args, attrs, pr):
        axis = attrs.get("axis")
        under = {None: "", 0: "_{\\text{rows}}", 1: "_{\\text{cols}}"}.get(axis, f"_{{{axis}}}")
        return f"\\sum{under} {pr.latex_name(args[0])}"

    def text(self, args, attrs, pr):
        return f"Σ{'' if attrs.get('axis') is None else '_axis' + str(attrs['axis'])} {args[0]}"


class Mean(Op):
    """Mean over all entries or along one axis."""

    name = "mean"
    arity = 1
    fresh = True

    def shape(self, shapes, attrs):
        _check_arity(self, shapes)
        return _reduced_shape(shapes[0], attrs.get("axis"), False)

    def scalar(self, args, attrs):
        a = args[0]
        axis = attrs.get("axis")
        count = a.size if axis is None else a.shape[axis]
        return np.asarray(np.sum(a, axis=axis) / sympy.Integer(count), dtype=object)

    def vjp(self, ctx, eqn, g, needs, names):
        source = ctx.shape(eqn.args[0])
        axis = eqn.attr("axis")
        count = size_expr(source) if axis is None else dim_expr(source[axis])
        scaled = Lazy(g.expr / count, g.shape)
        return [_spread(ctx, scaled, source, axis, False, names[0])]

    def numpy(self, args, attrs, pr):
        return _reduction("mean", args[0], attrs)

    def latex(self, args, attrs, pr):
        return f"\\operatorname{{mean}}\\left({pr.latex_name(args[0])}\\right)"

    def text(self, args, attrs, pr):
        return f"mean({args[0]})"


class ExpandDims(Op):
    """A new axis of length 1 (so a per-row cotangent broadcasts over a row's entries)."""

    name = "expand_dims"
    arity = 1
    view = True

    def shape(self, shapes, attrs):
        (a,) = shapes
        axis = attrs["axis"]
        return (*a[:axis], 1, *a[axis:])

    def scalar(self, args, attrs):
        return np.expand_dims(args[0], attrs["axis"])

    def vjp(self, ctx, eqn, g, needs, names):
        gv = ctx.full(g, eqn.out, "d" + eqn.out)
        return [
            Lazy(
                _sym(ctx.op("sum", [gv], {"axis": eqn.attr("axis")}, names[0])),
                ctx.shape(eqn.args[0]),
            )
        ]

    def numpy(self, args, attrs, pr):
        index = ", ".join("None" if i == attrs["axis"] else ":" for i in range(attrs["axis"] + 1))
        return f"{args[0]}[{index}]"

    def latex(self, args, attrs, pr):
        return pr.latex_name(args[0])

    def text(self, args, attrs, pr):
        return args[0]


class SumSquares(Op):
    """‖A‖² = Σ A², the L2 penalty of one weight matrix."""

    name = "sum_squares"
    arity = 1

    def shape(self, shapes, attrs):
        _check_arity(self, shapes)
        return ()

    def scalar(self, args, attrs):
        # One Add of all the terms: adding them one at a time is quadratic in SymPy.
        return np.asarray(sympy.Add(*(x**2 for x in args[0].flat)), dtype=object)

    def vjp(self, ctx, eqn, g, needs, names):
        a = eqn.args[0]
        return [Lazy(2 * g.expr * _sym(a), ctx.shape(a))]

    def numpy(self, args, attrs, pr):
        return f"np.vdot({args[0]}, {args[0]})"

    def latex(self, args, attrs, pr):
        return f"\\lVert {pr.latex_name(args[0])} \\rVert^{{2}}"

    def text(self, args, attrs, pr):
        return f"‖{args[0]}‖²"


class Copy(Op):
    """A new array holding ``a``: a gradient the caller may change in place without changing
    a parameter, an input, the cache or another gradient."""

    name = "copy"
    arity = 1
    fresh = True

    def shape(self, shapes, attrs):
        _check_arity(self, shapes)
        return shapes[0]

    def scalar(self, args, attrs):
        return np.array(args[0], dtype=object)

    def vjp(self, ctx, eqn, g, needs, names):
        return [g if needs[0] else None]

    def numpy(self, args, attrs, pr):
        return f"{args[0]}.copy()"

    def latex(self, args, attrs, pr):
        return pr.latex_name(args[0])

    def text(self, args, attrs, pr):
        return args[0]


class Fill(Op):
    """An array shaped like ``like`` holding one value (a constant cotangent, materialized)."""

    name = "fill"
    arity = 1
    fresh = True

    def shape(self, shapes, attrs):
        return shapes[0]

    def scalar(self, args, attrs):
        out = np.empty(args[0].shape, dtype=object)
        out[...] = attrs["value"]
        return out

    def vjp(self, ctx, eqn, g, needs, names):
        return [None]

    def numpy(self, args, attrs, pr):
        return f"np.full_like({args[0]}, {pr.numpy(attrs['value'])})"

    def latex(self, args, attrs, pr):
        return pr.latex(attrs["value"])

    def text(self, args, attrs, pr):
        return pr.text(attrs["value"])


class Broadcast(Op):
    """``g`` broadcast to the shape of ``like`` as a new array."""

    name = "broadcast"
    arity = 2
    fresh = True

    def shape(self, shapes, attrs):
        return shapes[1]

    def scalar(self, args, attrs):
        return np.array(np.broadcast_to(args[0], args[1].shape), dtype=object)

    def vjp(self, ctx, eqn, g, needs, names):
        source = ctx.shape(eqn.args[0])
        return [ctx.unbroadcast(g, source, names[0]) if needs[0] else None, None]

    def numpy(self, args, attrs, pr):
        return f"np.broadcast_to({args[0]}, {args[1]}.shape).copy()"

    def latex(self, args, attrs, pr):
        return pr.latex_name(args[0])

    def text(self, args, attrs, pr):
        return args[0]


_SOFTMAX_HELPER = '''def softmax(Z):
    """softmax(z)_k = exp(z_k) / Σ_j exp(z_j), shifted by max z so that no exp overflows."""
    E = np.exp(Z - Z.max(axis=-1, keepdims=True))
    E /= E.sum(axis=-1, keepdims=True)
    return E
'''

_SOFTMAX_CE_HELPER = '''def softmax_cross_entropy(Z, T):
    """Σ_i −Σ_k T_ik log softmax(Z_i)_k, through log-sum-exp so that no exp overflows."""
    log_S = Z - Z.max(axis=-1, keepdims=True)
    log_S -= np.log(np.exp(log_S).sum(axis=-1, keepdims=True))
    return -np.vdot(T, log_S)
'''

_SIGMOID_BCE_HELPER = '''def sigmoid_binary_cross_entropy(Z, T):
    """Σ −[T log σ(Z) + (1 − T) log(1 − σ(Z))] = Σ softplus(Z) − T·Z, on logits Z."""
    return np.sum(np.logaddexp(0, Z) - T * Z)
'''

HELPER_SOURCES: dict[str, str] = {
    "softmax": _SOFTMAX_HELPER,
    "softmax_cross_entropy": _SOFTMAX_CE_HELPER,
    "sigmoid_binary_cross_entropy": _SIGMOID_BCE_HELPER,
}
"""Module-level helpers the NumPy forms of ops call (functions add their own)."""


class Softmax(Op):
    """Softmax along the last axis (the backward pass of the fused cross-entropy uses it)."""

    name = "softmax"
    arity = 1
    helpers = ("softmax",)
    fresh = True

    def shape(self, shapes, attrs):
        return shapes[0]

    def scalar(self, args, attrs):
        a = args[0]
        e = np.vectorize(sympy.exp, otypes=[object])(a)
        return e / np.sum(e, axis=-1, keepdims=True)

    def vjp(self, ctx, eqn, g, needs, names):
        s = _sym(eqn.out)
        gs = ctx.var(Lazy(g.expr * s, ctx.shape(eqn.out)), names[0] + "_S")
        total = ctx.op("sum", [gs], {"axis": -1, "keepdims": True}, names[0] + "_sum")
        return [Lazy(s * (g.expr - _sym(total)), ctx.shape(eqn.out))]

    def numpy(self, args, attrs, pr):
        return f"softmax({args[0]})"

    def latex(self, args, attrs, pr):
        return f"\\operatorname{{softmax}}\\left({pr.latex_name(args[0])}\\right)"

    def text(self, args, attrs, pr):
        return f"softmax({args[0]})"


class FusedLoss(Op):
    """A loss on logits or outputs ``(Z, T)``: per-sample losses summed over outputs, then
    averaged over the batch (``reduction="mean"``, the 1/m applied once) or summed."""

    arity = 2
    symbol: ClassVar[str]
    latex_body: ClassVar[str]
    text_body: ClassVar[str]

    def shape(self, shapes, attrs):
        _check_arity(self, shapes)
        z, t = shapes
        if z != t:
            raise SpecError(
                f"{self.name} needs its two arguments to have one shape, got "
                f"({shape_text(z)}) and ({shape_text(t)})"
            )
        return ()

    def per_entry(self, z: sympy.Expr, t: sympy.Expr) -> sympy.Expr:
        raise NotImplementedError

    def scalar(self, args, attrs):
        z, t = args
        count = 1 if attrs.get("reduction", "mean") == "sum" or z.ndim < 2 else z.shape[0]
        total = self.scalar_total(z, t)
        return np.asarray(total / sympy.Integer(count), dtype=object)

    def scalar_total(self, z: np.ndarray, t: np.ndarray) -> sympy.Expr:
        return sympy.Add(*(self.per_entry(a, b) for a, b in zip(z.flat, t.flat, strict=True)))

    def gradient(self, ctx: VJPContext, z: str) -> sympy.Expr:
        """∂(per-sample loss)/∂z as an expression over names (before the 1/m and ḡ)."""
        raise NotImplementedError

    def vjp(self, ctx, eqn, g, needs, names):
        z, t = eqn.args
        if needs[1]:
            raise SpecError(
                f"the target (second argument) of {self.name} may not depend on parameters"
            )
        count = eqn.attr("count") or sympy.Integer(1)
        residual = self.gradient(ctx, z) - _sym(t)
        return [Lazy(g.expr * residual / count, ctx.shape(z)), None]

    def _scale(self, code: str, args: list[str], attrs: dict[str, Any], pr: Printers) -> str:
        count = attrs.get("count")
        return code if count is None else f"{code} / {pr.numpy(count)}"

    def latex(self, args, attrs, pr):
        z, t = (pr.latex_name(a) for a in args)
        count = attrs.get("count")
        scale = "" if count is None else f"\\frac{{1}}{{{pr.latex(count)}}}"
        return scale + self.latex_body.format(z=z, t=t)

    def text(self, args, attrs, pr):
        count = attrs.get("count")
        scale = "" if count is None else f"(1/{pr.text(count)}) "
        return scale + self.text_body.format(z=args[0], t=args[1])


class SoftmaxCrossEntropy(FusedLoss):
    name = "softmax_cross_entropy"
    helpers = ("softmax_cross_entropy",)
    latex_body = r"\sum_{{i,k}} -{t}_{{ik}} \log \operatorname{{softmax}}({z}_{{i}})_{{k}}"
    text_body = "Σ_i −Σ_k {t}_ik log softmax({z}_i)_k"

    def scalar_total(self, z, t):
        zz = np.atleast_2d(z)
        tt = np.atleast_2d(t)
        terms = []
        for zi, ti in zip(zz, tt, strict=True):
            lse = sympy.log(sympy.Add(*(sympy.exp(v) for v in zi)))
            terms += [-tk * (zk - lse) for zk, tk in zip(zi, ti, strict=True)]
        return sympy.Add(*terms)

    def gradient(self, ctx, z):
        return _sym(
            ctx.op("softmax", [z], {}, "S" + z[1:] if z.startswith("Z") else z + "_softmax")
        )

    def numpy(self, args, attrs, pr):
        return self._scale(f"softmax_cross_entropy({args[0]}, {args[1]})", args, attrs, pr)


class SigmoidBinaryCrossEntropy(FusedLoss):
    name = "sigmoid_binary_cross_entropy"
    helpers = ("sigmoid_binary_cross_entropy",)
    latex_body = r"\sum -\left[{t} \log \sigma({z}) + (1 - {t}) \log(1 - \sigma({z}))\right]"
    text_body = "Σ −[{t} log σ({z}) + (1 − {t}) log(1 − σ({z}))]"

    def per_entry(self, z, t):
        from symbp.ir.functions import builtin_table

        softplus = builtin_table()["softplus"]
        return softplus(z) - t * z

    def gradient(self, ctx, z):
        from symbp.ir.functions import builtin_table

        return builtin_table()["sigmoid"](_sym(z))

    def numpy(self, args, attrs, pr):
        return self._scale(f"sigmoid_binary_cross_entropy({args[0]}, {args[1]})", args, attrs, pr)


class SquaredError(FusedLoss):
    name = "squared_error"
    latex_body = r"\sum \tfrac{{1}}{{2}} \left({z} - {t}\right)^{{2}}"
    text_body = "Σ ½ ({z} − {t})²"

    def per_entry(self, z, t):
        return (z - t) ** 2 / 2

    def gradient(self, ctx, z):
        return _sym(z)

    def numpy(self, args, attrs, pr):
        count = attrs.get("count")
        half = "2" if count is None else f"(2 * {pr.numpy(count)})"
        # The first argument depends on a parameter, so it is a NumPy array or scalar.
        return f"(({args[0]} - {args[1]}) ** 2).sum() / {half}"


OPS: dict[str, Op] = {
    op.name: op
    for op in (
        Ewise(),
        MatMul(),
        Outer(),
        Affine(),
        Transpose(),
        Sum(),
        Mean(),
        ExpandDims(),
        SumSquares(),
        Copy(),
        Fill(),
        Broadcast(),
        Softmax(),
        SoftmaxCrossEntropy(),
        SigmoidBinaryCrossEntropy(),
        SquaredError(),
    )
}
"""Every primitive, by name."""

FUSED_LOSSES: dict[str, FusedLoss] = {
    name: op for name, op in OPS.items() if isinstance(op, FusedLoss)
}

LossFactory = Callable[[str, str], Eqn]

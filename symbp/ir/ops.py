"""The ops: elementwise expressions, matrix products, reductions and the arrays the backward
pass makes, one record each (see :mod:`symbp.ir.primitive`); and :data:`OPS`, every primitive
by name, the fused losses of :mod:`symbp.ir.losses` included.

Elementwise arithmetic and functions are one op, ``ewise``, whose attribute is a SymPy
expression over the argument names: its VJP is ``sympy.diff`` of that expression, rewritten to
reuse the forward output where it appears (σ′ = y(1 − y)), so elementwise rules never need
writing by hand.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import sympy

from symbp.errors import SpecError
from symbp.ir.display import (
    Bar,
    MatProd,
    MeanAll,
    Norm2,
    Ones,
    OnesLike,
    Tr,
    prime,
    spread,
    sum_to,
)
from symbp.ir.display import Softmax as DSoftmax
from symbp.ir.functions import FunctionTable
from symbp.ir.losses import LOSSES
from symbp.ir.primitive import Lazy, Op, VJPContext, check_arity, partial_derivative, sym
from symbp.ir.program import Eqn, Shape, broadcast_shapes, dim_expr, shape_text, size_expr


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
        symbols = [sym(n) for n in attrs["names"]]
        arrays = np.broadcast_arrays(*args) if args else []
        out = np.empty(arrays[0].shape if arrays else (), dtype=object)
        for idx in np.ndindex(out.shape):
            out[idx] = expr.xreplace({s: a[idx] for s, a in zip(symbols, arrays, strict=True)})
        return out

    def vjp(self, ctx, eqn, g, needs, names):
        expr = eqn.attr("expr")
        out_symbol = sym(eqn.out)
        out_shape = ctx.shape(eqn.out)
        results: list[Lazy | None] = []
        for arg, need, name in zip(eqn.args, needs, names, strict=True):
            if not need:
                results.append(None)
                continue
            partial = partial_derivative(expr, eqn.args, arg, out_symbol)
            if partial == 0:  # an argument SymPy simplified away (W - W) gets nothing
                results.append(None)
                continue
            contribution = Lazy(g.expr * partial, broadcast_shapes(g.shape, out_shape))
            results.append(ctx.unbroadcast(contribution, ctx.shape(arg), name))
        return results

    def numpy(self, args, attrs, pr):
        return pr.numpy_value(attrs["expr"], args)

    def array_api(self, args, attrs, pr):
        return pr.array_api_value(attrs["expr"], args)

    fresh = True
    elementwise = True

    def aliases(self, eqn, pr):
        return self.numpy(list(eqn.args), dict(eqn.attrs), pr).isidentifier()

    def into(self, out, buffer, args, attrs, pr):
        code = pr.numpy_into(attrs["expr"], buffer)
        return None if code is None else [f"{out} = {code}"]

    def text(self, args, attrs, pr):
        return pr.text(attrs["expr"])

    def display(self, args, attrs, shapes):
        return attrs["expr"]

    def display_adjoint(self, eqn, i, program):
        out, arg = eqn.out, eqn.args[i]
        g = Bar(sym(out))
        expr = eqn.attr("expr")
        partial = sympy.diff(expr, sym(arg))
        if not expr.is_Symbol:
            partial = partial.subs(expr, sym(out))
        named = None
        functions = program.meta.get("functions")
        entry = (
            functions.by_class(type(expr))
            if functions is not None and isinstance(expr, sympy.Function)
            else None
        )
        if (
            entry is not None
            and entry.arity == 1  # max′ of one argument would mean nothing
            and entry.latex
            and "{x}" not in entry.latex  # a form around its argument has no name to prime
            and expr.args[0] == sym(arg)
        ):
            named = g * prime(entry.name)(sym(arg))
        product = g * partial
        source, target = program.shape(out), program.shape(arg)
        if source != target:
            # The value was broadcast over the child's shape: its adjoint sums the copies.
            product = sum_to(product, source, target)
            named = None if named is None else sum_to(named, source, target)
        return named, product


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


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.dot`` of object arrays of SymPy scalars, each entry one ``Add`` (NumPy adds the
    products one at a time, which SymPy makes quadratic in the inner size)."""
    left = a if a.ndim == 2 else a[None, :]
    right = b if b.ndim == 2 else b[:, None]
    out = np.empty((left.shape[0], right.shape[1]), dtype=object)
    for i in range(left.shape[0]):
        for j in range(right.shape[1]):
            out[i, j] = sympy.Add(*(left[i, k] * right[k, j] for k in range(left.shape[1])))
    if b.ndim == 1:
        out = out[:, 0]
    if a.ndim == 1:
        out = out[0]
    return np.asarray(out, dtype=object)


def _t(name: str, transposed: bool) -> str:
    return f"{name}.T" if transposed else name


def _matrix_t(name: str, transposed: bool, pr) -> str:
    """``name.T`` for a flagged matrix: the standard defines ``.T`` for matrices only (NumPy's
    ``.T`` of a vector is the vector)."""
    return _t(name, transposed and pr.rank(name) == 2)


class MatMul(Op):
    """Matrix product ``op(A) @ op(B)``, where ``op`` transposes a matrix when flagged."""

    name = "matmul"
    arity = 2

    def shape(self, shapes, attrs):
        check_arity(self, shapes)
        return _matmul_shape(shapes[0], shapes[1], attrs.get("ta", False), attrs.get("tb", False))

    def scalar(self, args, attrs):
        a, b = args
        if attrs.get("ta", False) and a.ndim == 2:
            a = a.T
        if attrs.get("tb", False) and b.ndim == 2:
            b = b.T
        return _dot(a, b)

    def vjp(self, ctx, eqn, g, needs, names):
        """C = op(A) op(B), op transposing where flagged: the textbook's two lines,
        Ā = C̄ op(B)ᵀ and B̄ = op(A)ᵀ C̄, each transposed back where its factor was; with a
        vector factor the product is an outer product, and of two vectors c̄ times the other."""
        a, b = eqn.args
        ta, tb = eqn.attr("ta", False), eqn.attr("tb", False)
        ra, rb = len(ctx.shape(a)), len(ctx.shape(b))
        if ra == 1 and rb == 1:  # c = a · b
            return [
                Lazy(g.expr * sym(b), ctx.shape(a)) if needs[0] else None,
                Lazy(g.expr * sym(a), ctx.shape(b)) if needs[1] else None,
            ]
        c = ctx.full(g, eqn.out, "d" + eqn.out)
        grads: list[str | None] = [None, None]
        if needs[0]:  # Ā = C̄ op(B)ᵀ
            if rb == 1:
                grads[0] = ctx.op("outer", [b, c] if ta else [c, b], {}, names[0])
            elif ra == 1 or ta:
                grads[0] = ctx.op("matmul", [b, c], _flags(tb, ra == 2), names[0])
            else:
                grads[0] = ctx.op("matmul", [c, b], _flags(False, not tb), names[0])
        if needs[1]:  # B̄ = op(A)ᵀ C̄
            if ra == 1:
                grads[1] = ctx.op("outer", [c, a] if tb else [a, c], {}, names[1])
            elif tb and rb == 2:
                grads[1] = ctx.op("matmul", [c, a], _flags(True, ta), names[1])
            else:
                grads[1] = ctx.op("matmul", [a, c], _flags(not ta, False), names[1])
        return [
            None if grad is None else Lazy(sym(grad), ctx.shape(arg))
            for grad, arg in zip(grads, eqn.args, strict=True)
        ]

    def numpy(self, args, attrs, pr):
        return f"{_t(args[0], attrs.get('ta', False))} @ {_t(args[1], attrs.get('tb', False))}"

    def array_api(self, args, attrs, pr):
        a = _matrix_t(args[0], attrs.get("ta", False), pr)
        return f"{a} @ {_matrix_t(args[1], attrs.get('tb', False), pr)}"

    fresh = True

    def into(self, out, buffer, args, attrs, pr):
        a, b = _t(args[0], attrs.get("ta", False)), _t(args[1], attrs.get("tb", False))
        return [f"{out} = np.matmul({a}, {b}, out={buffer})"]

    def text(self, args, attrs, pr):
        return " ".join(
            a + ("ᵀ" if attrs.get(k, False) else "")
            for a, k in zip(args, ("ta", "tb"), strict=True)
        )

    def display(self, args, attrs, shapes):
        a, b = sym(args[0]), sym(args[1])
        ra, rb = (len(s) for s in shapes) if shapes else (2, 2)
        if ra == 1:  # a vector on the left is a column: x @ B is Bᵀx, and a @ b is aᵀb
            return MatProd(Tr(_op(b, attrs.get("tb", False), rb)), a)
        return MatProd(_op(a, attrs.get("ta", False), ra), _op(b, attrs.get("tb", False), rb))

    def display_adjoint(self, eqn, i, program):
        """Ā = C̄ op(B)ᵀ and B̄ = op(A)ᵀ C̄, transposed back where the factor was."""
        a, b = sym(eqn.args[0]), sym(eqn.args[1])
        ta, tb = eqn.attr("ta", False), eqn.attr("tb", False)
        ra, rb = len(program.shape(eqn.args[0])), len(program.shape(eqn.args[1]))
        g = Bar(sym(eqn.out))
        if ra == 1 and rb == 1:
            return None, g * (b if i == 0 else a)
        op_a, op_b = _op(a, ta, ra), _op(b, tb, rb)
        if i == 0:
            if ra == 1:  # c = op(B)ᵀ a
                return None, MatProd(op_b, g)
            grad = MatProd(g, Tr(op_b))
            return None, Tr(grad) if ta else grad
        grad = MatProd(a, Tr(g)) if ra == 1 else MatProd(Tr(op_a), g)
        return None, Tr(grad) if tb and rb == 2 else grad


def _op(name: sympy.Symbol, transposed: bool, rank: int) -> sympy.Expr:
    """A product's factor as the product reads it: transposed where flagged (a matrix)."""
    return Tr(name) if transposed and rank == 2 else name


def _flags(ta: bool, tb: bool) -> dict[str, bool]:
    return {k: v for k, v in (("ta", ta), ("tb", tb)) if v}


class Outer(Op):
    """Outer product of two vectors (the VJP of a matrix-vector product)."""

    name = "outer"
    arity = 2

    def shape(self, shapes, attrs):
        check_arity(self, shapes)
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
            Lazy(sym(da), ctx.shape(a)) if da else None,
            Lazy(sym(db), ctx.shape(b)) if db else None,
        ]

    def numpy(self, args, attrs, pr):
        return f"np.outer({args[0]}, {args[1]})"

    def array_api(self, args, attrs, pr):
        return f"xp.expand_dims({args[0]}, axis=-1) * {args[1]}"

    fresh = True

    def into(self, out, buffer, args, attrs, pr):
        return [f"{out} = np.outer({args[0]}, {args[1]}, out={buffer})"]

    def text(self, args, attrs, pr):
        return f"{args[0]} {args[1]}ᵀ"

    def display(self, args, attrs, shapes):
        return MatProd(sym(args[0]), Tr(sym(args[1])))

    def display_adjoint(self, eqn, i, program):
        g, other = Bar(sym(eqn.out)), sym(eqn.args[1 - i])
        return None, (MatProd(g, other) if i == 0 else MatProd(Tr(g), other))


class Affine(Op):
    """A layer's pre-activation ``A @ W + b``, the bias broadcast over the rows (the batch)."""

    name = "affine"
    arity = 3

    def shape(self, shapes, attrs):
        check_arity(self, shapes)
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
        return np.asarray(_dot(a, w) + b[None, :], dtype=object)

    def vjp(self, ctx, eqn, g, needs, names):
        a, w, b = eqn.args
        gv = ctx.full(g, eqn.out, "d" + eqn.out)
        out: list[Lazy | None] = [None, None, None]
        if needs[0]:
            out[0] = Lazy(sym(ctx.op("matmul", [gv, w], {"tb": True}, names[0])), ctx.shape(a))
        if needs[1]:
            out[1] = Lazy(sym(ctx.op("matmul", [a, gv], {"ta": True}, names[1])), ctx.shape(w))
        if needs[2]:
            out[2] = Lazy(sym(ctx.op("sum", [gv], {"axis": 0}, names[2])), ctx.shape(b))
        return out

    def numpy(self, args, attrs, pr):
        return f"{args[0]} @ {args[1]} + {args[2]}"

    def array_api(self, args, attrs, pr):
        return self.numpy(args, attrs, pr)  # operators the standard defines

    def statements(self, out, args, attrs, pr):
        # The product is a fresh array: adding the bias in place saves a second (m x n) array.
        return [f"{out} = {args[0]} @ {args[1]}", f"{out} += {args[2]}"]

    fresh = True

    def into(self, out, buffer, args, attrs, pr):
        return [f"{out} = np.matmul({args[0]}, {args[1]}, out={buffer})", f"{out} += {args[2]}"]

    def text(self, args, attrs, pr):
        return f"{args[0]} {args[1]} + 1 {args[2]}ᵀ"

    def display(self, args, attrs, shapes):
        a, w, b = (sym(x) for x in args)
        rows = dim_expr(shapes[0][0]) if shapes else sympy.Symbol("m")
        return MatProd(a, w) + MatProd(Ones(rows), Tr(b))

    def display_adjoint(self, eqn, i, program):
        a, w, _ = (sym(x) for x in eqn.args)
        g = Bar(sym(eqn.out))
        if i == 0:
            return None, MatProd(g, Tr(w))
        if i == 1:
            return None, MatProd(Tr(a), g)
        return None, MatProd(Tr(g), Ones(dim_expr(program.shape(eqn.args[0])[0])))


class Transpose(Op):
    name = "transpose"
    arity = 1
    view = True

    def shape(self, shapes, attrs):
        check_arity(self, shapes)
        (a,) = shapes
        return tuple(reversed(a))

    def scalar(self, args, attrs):
        return np.asarray(args[0].T, dtype=object)

    def vjp(self, ctx, eqn, g, needs, names):
        gv = ctx.full(g, eqn.out, "d" + eqn.out)
        return [Lazy(sym(ctx.op("transpose", [gv], {}, names[0])), ctx.shape(eqn.args[0]))]

    def numpy(self, args, attrs, pr):
        return f"{args[0]}.T"

    def array_api(self, args, attrs, pr):
        return _matrix_t(args[0], True, pr)

    def text(self, args, attrs, pr):
        return f"{args[0]}ᵀ"

    def display(self, args, attrs, shapes):
        return Tr(sym(args[0]))

    def display_adjoint(self, eqn, i, program):
        return None, Tr(Bar(sym(eqn.out)))


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
    return Lazy(sym(ctx.op("expand_dims", [gv], {"axis": before}, name + "_col")), spread)


def _summed(a: sympy.Symbol, shape: Shape, axis: int | None, keepdims: bool) -> sympy.Expr:
    """A sum written with vectors of ones: 𝟏ᵀa, 𝟏ᵀA𝟏 (all entries), Aᵀ𝟏 (the rows, a column
    vector), 𝟏ᵀA (the rows, kept as a row) and A𝟏 (the columns)."""
    if not shape:
        return a
    ones = [Ones(dim_expr(d)) for d in shape]
    if len(shape) == 1:
        return MatProd(Tr(ones[0]), a)
    if axis is None:
        return MatProd(MatProd(Tr(ones[0]), a), ones[1])
    if axis % 2 == 0:
        return MatProd(Tr(ones[0]), a) if keepdims else MatProd(Tr(a), ones[0])
    return MatProd(a, ones[1])


def _spread_display(g: sympy.Expr, program, eqn: Eqn, arg: str) -> sympy.Expr:
    """A reduction's adjoint written with 𝟏: ḡ over every entry, 𝟏ḡᵀ down the rows (the sum
    of each column), ḡ𝟏ᵀ along the columns (the sum of each row)."""
    source = program.shape(arg)
    axis = eqn.attr("axis")
    if axis is None or len(source) != 2:
        return spread(g, program.shape(eqn.out), source, arg)
    if axis % 2 == 0:
        return MatProd(Ones(dim_expr(source[0])), g if eqn.attr("keepdims") else Tr(g))
    return MatProd(g, Tr(Ones(dim_expr(source[1]))))


class Sum(Op):
    """Sum over all entries or along one axis."""

    name = "sum"
    arity = 1
    fresh = True

    def shape(self, shapes, attrs):
        check_arity(self, shapes)
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

    def array_api(self, args, attrs, pr):
        return f"xp.sum({args[0]}{_axis_kw(attrs)})"

    def text(self, args, attrs, pr):
        return f"Σ{'' if attrs.get('axis') is None else '_axis' + str(attrs['axis'])} {args[0]}"

    def display(self, args, attrs, shapes):
        shape = shapes[0] if shapes else ("m", "n")
        return _summed(sym(args[0]), shape, attrs.get("axis"), attrs.get("keepdims", False))

    def display_adjoint(self, eqn, i, program):
        g, arg = Bar(sym(eqn.out)), eqn.args[0]
        return None, _spread_display(g, program, eqn, arg)


class Mean(Op):
    """Mean over all entries or along one axis."""

    name = "mean"
    arity = 1
    fresh = True

    def shape(self, shapes, attrs):
        check_arity(self, shapes)
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

    def array_api(self, args, attrs, pr):
        return f"xp.mean({args[0]}{_axis_kw(attrs)})"

    def text(self, args, attrs, pr):
        return f"mean({args[0]})"

    def display(self, args, attrs, shapes):
        shape = shapes[0] if shapes else ("m", "n")
        axis = attrs.get("axis")
        if axis is None:
            return MeanAll(sym(args[0]))
        return _summed(sym(args[0]), shape, axis, False) / dim_expr(shape[axis])

    def display_adjoint(self, eqn, i, program):
        arg = eqn.args[0]
        source = program.shape(arg)
        axis = eqn.attr("axis")
        count = size_expr(source) if axis is None else dim_expr(source[axis])
        return None, _spread_display(Bar(sym(eqn.out)) / count, program, eqn, arg)


class _ItsArgument(Op):
    """An op whose value is, in the mathematics, its argument (a copy, a new axis of length
    1): it prints as the argument, and the argument's adjoint is the output's."""

    def text(self, args, attrs, pr):
        return args[0]

    def display(self, args, attrs, shapes):
        return sym(args[0])

    def display_adjoint(self, eqn, i, program):
        return None, Bar(sym(eqn.out))


class ExpandDims(_ItsArgument):
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
                sym(ctx.op("sum", [gv], {"axis": eqn.attr("axis")}, names[0])),
                ctx.shape(eqn.args[0]),
            )
        ]

    def numpy(self, args, attrs, pr):
        index = ", ".join("None" if i == attrs["axis"] else ":" for i in range(attrs["axis"] + 1))
        return f"{args[0]}[{index}]"

    def display(self, args, attrs, shapes):
        # A new trailing axis leaves a column a column; a new first axis makes a vector a row.
        rank = len(shapes[0]) if shapes else 1
        return Tr(sym(args[0])) if attrs["axis"] == 0 and rank == 1 else sym(args[0])

    def display_adjoint(self, eqn, i, program):
        g = Bar(sym(eqn.out))
        rank = len(program.shape(eqn.args[0]))
        return None, (Tr(g) if eqn.attr("axis") == 0 and rank == 1 else g)

    def array_api(self, args, attrs, pr):
        return f"xp.expand_dims({args[0]}, axis={attrs['axis']})"


class SumSquares(Op):
    """‖A‖² = Σ A², the L2 penalty of one weight matrix."""

    name = "sum_squares"
    arity = 1

    def shape(self, shapes, attrs):
        check_arity(self, shapes)
        return ()

    def scalar(self, args, attrs):
        # One Add of all the terms: adding them one at a time is quadratic in SymPy.
        return np.asarray(sympy.Add(*(x**2 for x in args[0].flat)), dtype=object)

    def vjp(self, ctx, eqn, g, needs, names):
        a = eqn.args[0]
        return [Lazy(2 * g.expr * sym(a), ctx.shape(a))]

    def numpy(self, args, attrs, pr):
        return f"np.vdot({args[0]}, {args[0]})"

    def array_api(self, args, attrs, pr):
        flat = f"xp.reshape({args[0]}, (-1,))"  # a dot product: no temporary of its size
        return f"xp.vecdot({flat}, {flat})"

    def text(self, args, attrs, pr):
        return f"‖{args[0]}‖²"

    def display(self, args, attrs, shapes):
        return Norm2(sym(args[0]))

    def display_adjoint(self, eqn, i, program):
        return None, 2 * Bar(sym(eqn.out)) * sym(eqn.args[i])


class Copy(_ItsArgument):
    """A new array holding ``a``: a gradient the caller may change in place without changing
    a parameter, an input, the cache or another gradient."""

    name = "copy"
    arity = 1
    fresh = True

    def shape(self, shapes, attrs):
        check_arity(self, shapes)
        return shapes[0]

    def scalar(self, args, attrs):
        return np.array(args[0], dtype=object)

    def vjp(self, ctx, eqn, g, needs, names):
        return [g if needs[0] else None]

    def numpy(self, args, attrs, pr):
        return f"{args[0]}.copy()"

    def array_api(self, args, attrs, pr):
        return f"xp.asarray({args[0]}, copy=True)"


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

    def array_api(self, args, attrs, pr):
        value = attrs["value"]
        if value.is_number:  # full_like takes a Python number
            return f"xp.full_like({args[0]}, {float(value)!r})"
        return f"xp.zeros_like({args[0]}) + ({pr.array_api(value)})"  # constants are arrays

    def text(self, args, attrs, pr):
        return pr.text(attrs["value"])

    def display(self, args, attrs, shapes):
        value = attrs["value"]
        return value * OnesLike(sym(args[0])) if not shapes or shapes[0] else value

    def display_adjoint(self, eqn, i, program):
        return None, sympy.Integer(0)  # a constant: its argument gives only its shape


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

    def array_api(self, args, attrs, pr):
        return f"xp.zeros_like({args[1]}) + {args[0]}"  # a new array of like's shape and dtype

    def text(self, args, attrs, pr):
        return args[0]

    def display(self, args, attrs, shapes):
        source, target = shapes if shapes else ((), ("m", "n"))
        return spread(sym(args[0]), source, target, args[1])

    def display_adjoint(self, eqn, i, program):
        if i == 1:
            return None, sympy.Integer(0)  # ``like`` gives only the shape
        source = program.shape(eqn.out)
        return None, sum_to(Bar(sym(eqn.out)), source, program.shape(eqn.args[0]))


_SOFTMAX_HELPER = '''def softmax(Z):
    """softmax(z)_k = exp(z_k) / Σ_j exp(z_j), shifted by max z so that no exp overflows."""
    E = np.exp(Z - Z.max(axis=-1, keepdims=True))
    E /= E.sum(axis=-1, keepdims=True)
    return E
'''

_SOFTMAX_ARRAY_API = '''def softmax(xp, Z):
    """softmax(z)_k = exp(z_k) / Σ_j exp(z_j), shifted by max z so that no exp overflows."""
    E = xp.exp(Z - xp.max(Z, axis=-1, keepdims=True))
    return E / xp.sum(E, axis=-1, keepdims=True)
'''


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
        s = sym(eqn.out)
        gs = ctx.var(Lazy(g.expr * s, ctx.shape(eqn.out)), names[0] + "_S")
        total = ctx.op("sum", [gs], {"axis": -1, "keepdims": True}, names[0] + "_sum")
        return [Lazy(s * (g.expr - sym(total)), ctx.shape(eqn.out))]

    def numpy(self, args, attrs, pr):
        return f"softmax({args[0]})"

    def array_api(self, args, attrs, pr):
        return f"softmax(xp, {args[0]})"

    array_api_helpers: ClassVar[dict[str, str]] = {"softmax": _SOFTMAX_ARRAY_API}

    def text(self, args, attrs, pr):
        return f"softmax({args[0]})"

    def display(self, args, attrs, shapes):
        return DSoftmax(sym(args[0]))

    def display_adjoint(self, eqn, i, program):
        g, s = Bar(sym(eqn.out)), sym(eqn.out)
        shape = program.shape(eqn.out)
        ones = Ones(dim_expr(shape[-1]))
        if len(shape) == 2:  # each row's Σ ḡ⊙s, spread along the row
            total = MatProd(MatProd(g * s, ones), Tr(ones))
        else:
            total = MatProd(Tr(ones), g * s)
        return None, s * (g - total)


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
        *LOSSES.values(),
    )
}
"""Every primitive, by name."""

HELPER_SOURCES: dict[str, str] = {
    "softmax": _SOFTMAX_HELPER,
    **{name: source for loss in LOSSES.values() for name, source in loss.helper_sources.items()},
}
"""Module-level helpers the NumPy forms of ops call (functions add their own)."""


REDUCTIONS = (Sum.name, Mean.name)


def step_calls(functions: FunctionTable) -> tuple[str, ...]:
    """The names a step may call: the elementwise functions, the reductions and the losses."""
    return (*functions, *REDUCTIONS, *LOSSES)

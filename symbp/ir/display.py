"""The mathematics the document displays, as SymPy expressions that can also be evaluated.

A displayed equation is never only text: each of its sides is a SymPy expression over value
names (``Symbol("W1")``) built from ordinary arithmetic (elementwise, with NumPy broadcasting)
and the unevaluated nodes below (a matrix product, a transpose, a vector of ones, an adjoint,
a derivative...). The LaTeX printer (:mod:`symbp.emit.printing`) prints these nodes; the line
verifier (:mod:`symbp.analysis.lines`) evaluates them on concrete small arrays of SymPy
scalars, so that every side of every line can be checked against every other at random points.

Conventions the nodes follow (and the document states once): a vector is a column; ``Tr`` of
a vector is a row; a matrix product with a vector on the right gives a vector; elementwise
arithmetic between arrays broadcasts as NumPy does (a vector added to a matrix is added to
each row).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import sympy

from symbp.ir.program import Shape, dim_expr


class Node(sympy.Function):
    """An unevaluated node of the displayed mathematics. Subclasses say how many arguments
    they take; printing and evaluation dispatch on the class."""

    is_commutative = True

    def _eval_derivative(self, s):  # only FView is ever differentiated
        raise TypeError(f"{type(self).__name__} is displayed, not differentiated")


class Bar(Node):
    """The adjoint v̄ = ∂(loss)/∂v of the named value ``v`` (a Symbol)."""

    nargs = 1


class MatProd(Node):
    """The matrix product ``a b`` (a vector is a column; a vector on the right gives a vector)."""

    nargs = 2


class Tr(Node):
    """The transpose ``aᵀ`` (of a vector: a row). Transposes of transposes and of products
    are rewritten, so that ``(A B)ᵀ`` prints as ``Bᵀ Aᵀ``."""

    nargs = 1

    @classmethod
    def eval(cls, a):
        if isinstance(a, Tr):
            return a.args[0]
        if isinstance(a, MatProd):
            return MatProd(Tr(a.args[1]), Tr(a.args[0]))
        if a.is_Number:
            return a
        return None


class Ones(Node):
    """𝟏, a column of ``n`` ones (``n`` a size: an Integer or a size symbol)."""

    nargs = 1


class OnesLike(Node):
    """𝟏 of the shape of the named value ``v``: a scalar spread over every entry."""

    nargs = 1


class Softmax(Node):
    """softmax along the last axis (of each row of a matrix)."""

    nargs = 1


class MeanAll(Node):
    """The mean of every entry."""

    nargs = 1


class Norm2(Node):
    """‖a‖², the sum of the squares of every entry."""

    nargs = 1


class ChainTerm(Node):
    """``v̄ⱼ ∂vⱼ/∂vᵢ`` for the child ``vⱼ`` and the value ``vᵢ`` (Symbols): the vector-Jacobian
    product of the child's own assignment, a value of ``vᵢ``'s shape."""

    nargs = 2


class Deriv(Node):
    """∂f/∂x: the derivative of the scalar ``f`` with respect to ``x`` (a value, or an entry of
    one), through every path from ``x`` to ``f``."""

    nargs = 2


class LocalDeriv(Node):
    """∂f/∂x of ``f``'s own assignment alone (seed 004's ∂vⱼ/∂vᵢ): the other arguments of that
    assignment held fixed, nothing upstream of it followed."""

    nargs = 2


class Entry(Node):
    """Entry ``(i, j)`` (or ``(i,)``) of an array expression: ``(A)_{ij}``."""

    nargs = (2, 3)


class IndexSum(Node):
    """``Σ_k body`` over the index ``k`` from 0 to ``n − 1``: arguments (body, k, n)."""

    nargs = 3


class Plus(Node):
    """A sum kept in the order it is written (the chain rule's terms, child by child)."""

    nargs = None


class Times(Node):
    """A product kept in the order it is written (∂C/∂aⱼ ∂aⱼ/∂zᵢ, σ′(z)(w₃ ∂C/∂z′ + …))."""

    nargs = None


class Ident(Node):
    """The Kronecker delta ``I_{ij}``: 1 where the two indices agree, else 0."""

    nargs = 2


class Mark(Node):
    """A repeated subexpression, marked where it is written (an underbrace labelled with its
    number, which the text counts): its value is the expression's."""

    nargs = 2


class Inner(Node):
    """⟨a, b⟩, the sum of the products of two arrays' entries (of one shape)."""

    nargs = 2


class Tangent(Node):
    """∂_V x: the derivative of the value ``x`` (a Symbol) along the direction V of the
    parameters, (∂x/∂θ)·V, of ``x``'s shape."""

    nargs = 1


class HessVec(Node):
    """(H V)_p: parameter ``p``'s block of the Hessian of the loss times the direction V."""

    nargs = 1


class Column(Node):
    """A vector as the m × 1 matrix the code keeps it as (a row's sum, a new trailing axis):
    printed as the vector it is, it combines with a matrix along each column."""

    nargs = 1


class Named(Node):
    """A node that carries a name in its class (a function, a loss, a notation's symbol):
    :func:`named_class` makes one class per name, so that SymPy can hash and compare it."""

    name: str = ""
    rank: int = -1
    title = "{name}"


def named_class(base: type, name: str, nargs: int = 1, rank: int = -1) -> type:
    """The subclass of ``base`` for ``name`` (the same name is the same class); ``rank`` is the
    rank of its value where the class fixes it (a notation's symbol)."""
    return _named_class(base, name, nargs, rank)


@functools.cache
def _named_class(base: type, name: str, nargs: int, rank: int) -> type:
    # The class's own name is how SymPy's text printer writes it (the report's sigmoid_prime).
    title = base.title.format(name=name)
    return type(title, (base,), {"name": name, "nargs": nargs, "rank": rank})


class FPrime(Named):
    """f′(u) for the function named by the class (``prime("sigmoid")(z)`` is σ′(z))."""

    title = "{name}_prime"


class FView(Named):
    """f(u) for the function named by the class, whose derivative is :class:`FPrime`: the
    naive derivation differentiates through it and keeps σ′(u) as one subexpression."""

    def fdiff(self, argindex=1):
        return prime(self.name)(self.args[0])

    def _eval_derivative(self, s):
        return sympy.Function._eval_derivative(self, s)


class LossTerm(Named):
    """A fused loss of ``(z, t)``, divided by ``count`` (1 for a sum): arguments (z, t, count)."""

    title = "LossTerm_{name}"


class Symbolic(Named):
    """A network quantity by layer, as a seed writes it (seed 002's z^l, δ^l; seed 003's Zᵢ,
    Gᵢ): the class names its kind (:data:`NETWORK_KINDS`); the arguments are the layer (an
    integer, or the symbol l and its neighbours l ± 1) and the sample (an integer or the symbol
    x for one sample, a column vector; :data:`BATCH` for the batch in rows, as the code holds
    it; :data:`COLUMNS` for the batch in columns, seed 002's bold matrices). A notation
    chooses how each kind prints."""

    title = "Symbolic_{name}"


class LayerFn(Named):
    """Layer l's activation σ_l (``"sigma"``) or its derivative σ′_l (``"sigma_prime"``),
    applied to each entry of the second argument."""

    title = "LayerFn_{name}"


NETWORK_KINDS = {
    "act": "layer l's output (l = 0: the input X)",
    "pre": "layer l's pre-activation",
    "W": "layer l's weights",
    "b": "layer l's biases",
    "target": "the targets",
    "pred": "the prediction from the last layer (the loss's softmax or σ of the logits)",
    "act_adj": "∂C/∂(layer l's output), C the data loss (per sample: that sample's)",
    "pre_adj": "∂C/∂(layer l's pre-activation)",
    "cost": "the data loss C (per sample: C_x)",
    "cost_grad": "∇ₐC, the data loss's gradient with respect to the prediction",
}
"""What each kind of :class:`Symbolic` means; the line verifier evaluates them so."""

BATCH = sympy.Symbol("batch·")
"""The sample argument of a :class:`Symbolic` that stands for the batch, in rows."""
COLUMNS = sympy.Symbol("columns·")
SAMPLE = sympy.Symbol("x", integer=True, nonnegative=True)
"""The sample argument of a :class:`Symbolic` that stands for "one sample" (not written)."""
"""The sample argument of a :class:`Symbolic` that stands for the batch, in columns."""


def plus(*terms: sympy.Expr) -> sympy.Expr:
    """``terms`` summed in their order; one term is itself, none is 0."""
    if not terms:
        return sympy.Integer(0)
    return terms[0] if len(terms) == 1 else Plus(*terms)


def times(*factors: sympy.Expr) -> sympy.Expr:
    """``factors`` multiplied in their order; one factor is itself."""
    return factors[0] if len(factors) == 1 else Times(*factors)


def prime(name: str) -> type:
    return named_class(FPrime, name)


def view(name: str) -> type:
    return named_class(FView, name)


def loss_term(name: str) -> type:
    return named_class(LossTerm, name, 3)


def symbolic(kind: str, rank: int) -> type:
    """The class of a network quantity ``kind`` (its value has ``rank`` axes)."""
    return named_class(Symbolic, kind, 2, rank)


def layer_fn(kind: str) -> type:
    """σ_l (``"sigma"``) or σ′_l (``"sigma_prime"``) as a node of (layer, argument)."""
    return named_class(LayerFn, kind, 2)


def rank(expr: sympy.Basic, ranks: Mapping[str, int]) -> int:
    """How many axes ``expr`` has (0 for a scalar), from the ranks of the names it reads: what
    the printer needs to choose between ⊙ and juxtaposition, and to write (·)^{∘2}."""
    if isinstance(expr, sympy.Symbol):
        return ranks.get(expr.name, 0)
    if isinstance(expr, Bar):
        return rank(expr.args[0], ranks)
    if isinstance(expr, Ones):
        return 1
    if isinstance(expr, OnesLike | Softmax):
        return max(rank(expr.args[0], ranks), 1)
    if isinstance(expr, MeanAll | Norm2 | LossTerm | Entry | Ident | Inner):
        return 0
    if isinstance(expr, Tr):
        return 2 if rank(expr.args[0], ranks) else 0
    if isinstance(expr, Column):
        return 2
    if isinstance(expr, MatProd):
        left, right = (rank(a, ranks) for a in expr.args)
        row = isinstance(expr.args[0], Tr) and rank(expr.args[0].args[0], ranks) == 1
        if right == 1 and (row or left == 0):
            return 0
        return 1 if right == 1 else 2
    if isinstance(expr, ChainTerm | Deriv | LocalDeriv | Tangent | HessVec):
        return rank(expr.args[-1], ranks)
    if isinstance(expr, Symbolic):
        return expr.rank
    if isinstance(expr, LayerFn):
        return rank(expr.args[1], ranks)
    if isinstance(expr, IndexSum):
        return rank(expr.args[0], ranks)
    if isinstance(expr, Plus | Times):
        return max((rank(a, ranks) for a in expr.args), default=0)
    if expr.is_Atom:
        return 0
    return max((rank(a, ranks) for a in expr.args), default=0)


# ---- sums and broadcasts, written with 𝟏 ----------------------------------------------


def sum_to(expr: sympy.Expr, source: Shape, target: Shape) -> sympy.Expr:
    """``expr`` of shape ``source`` summed over the axes NumPy broadcast ``target`` along
    (the adjoint of a broadcast), written with vectors of ones: 𝟏ᵀ v̄, Āᵀ𝟏, Ā𝟏, 𝟏ᵀ Ā 𝟏."""
    if tuple(source) == tuple(target) or len(source) > 2:
        return expr
    aligned = [None] * (len(source) - len(target)) + list(target)[-len(source) :]
    summed = [t is None or (t == 1 and s != 1) for s, t in zip(source, aligned, strict=True)]
    ones = [Ones(dim_expr(d)) for d in source]
    if len(source) == 1:
        return MatProd(Tr(ones[0]), expr) if summed[0] else expr
    rows, cols = summed
    if rows and cols:
        return MatProd(MatProd(Tr(ones[0]), expr), ones[1])
    if rows:  # each column's sum: a vector (target n) or a row (target 1 × n)
        return MatProd(Tr(expr), ones[0]) if len(target) == 1 else MatProd(Tr(ones[0]), expr)
    if cols:
        return MatProd(expr, ones[1])
    return expr


def spread(expr: sympy.Expr, source: Shape, target: Shape, like: str) -> sympy.Expr:
    """``expr`` of shape ``source`` repeated over the shape ``target`` (of the value ``like``):
    a scalar times 𝟏, a vector as the rows (𝟏 vᵀ) or the columns (v 𝟏ᵀ) of a matrix."""
    if tuple(source) == tuple(target):
        return expr
    if not source or all(d == 1 for d in source):
        return expr * OnesLike(sympy.Symbol(like))
    if len(source) == 1 and len(target) == 2:
        return MatProd(Ones(dim_expr(target[0])), Tr(expr))
    if len(source) == 2 and len(target) == 2 and source[1] == 1:
        return MatProd(expr, Tr(Ones(dim_expr(target[1]))))
    if len(source) == 2 and len(target) == 2 and source[0] == 1:
        return MatProd(Ones(dim_expr(target[0])), expr)
    return expr * OnesLike(sympy.Symbol(like))


# ---- displayed lines ----------------------------------------------------------------------


@dataclass(frozen=True)
class Line:
    """One displayed equation: its LaTeX, and the sides it states equal, evaluable.

    ``sides`` are what is printed, in order (``v̄ = … = …``). Where they hold a general symbol
    (seed 002's layer l, a sample x), ``instances`` are the same sides with that symbol given
    each value it stands for, and those are what the verifier evaluates; otherwise the sides
    themselves are. ``indices`` are free index symbols (``i``, ``j`` of ∂J/∂W_ij) with their
    ranges: every side is evaluated at every index and compared entry by entry. ``defines``
    are symbols the line introduces (CSE names ``c₀``), with their values, for later lines.
    ``sizes`` fixes the named sizes the line is about (the naive derivation's batch of one),
    where they are not the verifier's own.
    """

    tex: str
    sides: tuple[sympy.Expr, ...]
    instances: tuple[tuple[sympy.Expr, ...], ...] | None = None
    indices: tuple[tuple[sympy.Symbol, sympy.Expr], ...] = ()
    defines: tuple[tuple[sympy.Symbol, sympy.Expr], ...] = field(default=())
    sizes: tuple[tuple[str, int], ...] | None = None

    def evaluable(self) -> Sequence[tuple[sympy.Expr, ...]]:
        """The sides to evaluate: each instance, or the sides as printed."""
        return self.instances if self.instances is not None else (self.sides,)


# ---- across a process boundary ---------------------------------------------------------------


def freeze(expr: sympy.Basic, functions) -> tuple:
    """``expr`` as nested tuples of names and numbers, which pickle (the classes of the table's
    functions and of named nodes are made at run time, so SymPy's own pickling cannot name
    them): how a stage run in a child process (:mod:`symbp.limits`) hands expressions back."""
    if isinstance(expr, sympy.Symbol):
        return ("symbol", expr.name, tuple(sorted(expr.assumptions0.items())))
    if isinstance(expr, sympy.Integer):
        return ("integer", int(expr))
    if isinstance(expr, sympy.Rational):
        return ("rational", int(expr.p), int(expr.q))
    if isinstance(expr, sympy.Float):
        return ("float", str(expr), expr._prec)
    args = tuple(freeze(a, functions) for a in expr.args)
    entry = functions.by_class(type(expr)) if isinstance(expr, sympy.Function) else None
    if entry is not None:
        return ("function", entry.name, args)
    if isinstance(expr, Named):
        base = next(c for c in type(expr).__mro__[1:] if c.__dict__.get("name") is None)
        return ("named", base.__name__, expr.name, expr.rank, len(expr.args), args)
    if isinstance(expr, Node):
        return ("node", type(expr).__name__, args)
    if expr.is_Atom:
        return ("atom", type(expr).__name__)
    return ("sympy", type(expr).__name__, args)


def thaw(tree: tuple, functions) -> sympy.Basic:
    """The expression :func:`freeze` wrote, with the same table's functions."""
    kind = tree[0]
    if kind == "symbol":
        return sympy.Symbol(tree[1], **dict(tree[2]))
    if kind == "integer":
        return sympy.Integer(tree[1])
    if kind == "rational":
        return sympy.Rational(tree[1], tree[2])
    if kind == "float":
        return sympy.Float(tree[1], precision=tree[2])
    if kind == "atom":
        return getattr(sympy, tree[1]) if tree[1] not in _ATOMS else _ATOMS[tree[1]]
    args = [thaw(a, functions) for a in tree[-1]]
    if kind == "function":
        return functions[tree[1]].cls(*args)
    if kind == "named":
        _, base, name, rank_, nargs, _ = tree
        return named_class(globals()[base], name, nargs, rank_)(*args)
    if kind == "node":
        return globals()[tree[1]](*args)
    cls = getattr(sympy, tree[1], None) or _CLASSES[tree[1]]
    return cls(*args)


_CLASSES = {"ExprCondPair": sympy.functions.elementary.piecewise.ExprCondPair}


_ATOMS = {
    "BooleanTrue": sympy.true,
    "BooleanFalse": sympy.false,
    "Pi": sympy.pi,
    "Exp1": sympy.E,
    "ImaginaryUnit": sympy.I,
    "Half": sympy.S.Half,
    "One": sympy.S.One,
    "Zero": sympy.S.Zero,
    "NegativeOne": sympy.S.NegativeOne,
    "Infinity": sympy.oo,
    "NegativeInfinity": -sympy.oo,
    "NaN": sympy.nan,
}

"""Elementwise functions: each defined once, by a SymPy body, with its derivative derived by SymPy.

An entry gives the body (the mathematics), how it reads in LaTeX, and how the generated NumPy
module computes it without overflow. Everything else is derived: the derivative comes from
``sympy.diff`` of the body, and where that derivative is a polynomial in the function's own
output (σ′ = σ(1 − σ), tanh′ = 1 − tanh²) or in another function of the table
(softplus′ = σ), it is rewritten so, which lets the backward pass reuse the cached activation.

Functions are SymPy ``Function`` subclasses whose ``fdiff`` is that derived derivative, so the
naive ``sympy.diff`` of an expanded loss and the backprop rules share one derivative.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import mpmath
import sympy

Z = sympy.Symbol("z")
"""The argument of every function body."""
W = sympy.Symbol("w")
"""The second argument of a function of two (``maximum(z, w)``)."""
ARGUMENTS = (Z, W)

_FIT_POINTS = [
    sympy.Rational(p, 10) for p in (-17, -6, 3, 11, 23, -25, 7, -2, 15, -9, -31, -13, 19, 5)
]
_FIT_DEGREE = 2


@dataclass(frozen=True)
class NumpyForm:
    """How generated code computes a function: an expression template and an optional helper.

    ``expr`` is a format string over ``{x}`` (and ``{y}``, a second argument). ``helper`` is
    the source of a small function the generated module defines when it uses this one
    (``def sigmoid(x): ...``), so the stable formula is written once, with its equation in the
    docstring.
    """

    expr: str
    helper: str | None = None
    needs: tuple[str, ...] = ()
    out: str | None = None
    """The same written into an existing array, over ``{x}`` and ``{out}``, where NumPy can."""


@dataclass(frozen=True)
class ArrayApiForm:
    """How code for any array library computes a function: a template over ``{x}`` (and
    ``{y}``) calling only the array API standard's functions, in a namespace named ``xp``.

    Its ``helper`` is a module-level function that takes the namespace first
    (``def sigmoid(xp, x): ...``); ``needs`` names the helpers the template calls besides.
    """

    expr: str
    helper: str | None = None
    needs: tuple[str, ...] = ()


STANDARD_UFUNCS = frozenset(
    {"exp", "log", "sqrt", "tanh", "abs", "sin", "cos", "log1p", "expm1", "maximum", "minimum"}
)
"""NumPy ufuncs that the array API standard has under the same name and meaning, so that a
function computed by one of them has ``xp.<name>`` as its array API form."""


@dataclass(frozen=True)
class ElementwiseFunction:
    """One elementwise function, all that symbp knows of it: its body (the mathematics, from
    which SymPy derives the derivative), its LaTeX name, how NumPy computes it, how it is
    evaluated to 50 digits, what it costs to differentiate, and whether it is an activation.
    """

    name: str
    body: sympy.Expr
    latex: str
    """Its LaTeX: a name the argument follows in brackets (``\\tanh``), or a form around
    ``{x}`` (``\\sqrt{{{x}}}``, ``\\left|{x}\\right|``)."""
    numpy: NumpyForm
    description: str
    array_api: ArrayApiForm = field(default=ArrayApiForm("{x}"))
    """Its form in the array API standard; derived from ``numpy`` for a standard ufunc."""
    cls: type[sympy.Function] = field(compare=False, repr=False, default=None)  # type: ignore[assignment]
    user: bool = False
    arity: int = 1
    activation: bool = False
    """Whether a ``[network]`` layer may name it as its activation."""
    cost: int = 1
    """How much a call grows the derivative of a ``[functions]`` body that makes it (see
    :data:`symbp.front.spec.FUNCTION_BUDGET`): 2 for the piecewise ones, whose derivatives
    double the cases, and those whose derivatives are large (GELU, SiLU) or slow (log)."""
    evaluate: Callable | None = field(compare=False, repr=False, default=None)
    """The function at 50 digits (an mpmath function) where it is one of SymPy's own; None
    where the report evaluates it through its body."""

    def __call__(self, *args: sympy.Expr) -> sympy.Expr:
        return self.cls(*args)


def _diff_body(body: sympy.Expr, wrt: sympy.Symbol = Z) -> sympy.Expr:
    derivative = sympy.diff(body, wrt)
    if derivative.has(sympy.Piecewise):
        derivative = sympy.piecewise_fold(derivative)
    return derivative


def _numeric(expr: sympy.Expr, point: sympy.Rational) -> sympy.Float | None:
    value = sympy.N(expr.subs(Z, point), 40)
    if not value.is_real or not value.is_finite:
        return None
    return value


def _fit_polynomial(
    target: sympy.Expr, basis: sympy.Expr, written: sympy.Expr, points: Iterable[sympy.Rational]
) -> sympy.Expr | None:
    """Write ``target(z)`` as c0 + c1·b(z) + c2·b(z)² with small rational c, if it is one, in
    ``written`` (the function's own call, which the backward pass has as an output).

    The coefficients come from a least-squares-free exact solve at three points and are then
    checked at every other point to 30 digits, so a coincidence cannot pass.
    """
    samples = []
    for p in points:
        t, b = _numeric(target, p), _numeric(basis, p)
        if t is None or b is None:
            return None
        samples.append((t, b))
    if len(samples) < _FIT_DEGREE + 4:
        return None
    for degree in range(_FIT_DEGREE + 1):
        fit, check = samples[: degree + 1], samples[degree + 1 :]
        matrix = sympy.Matrix([[b**k for k in range(degree + 1)] for _, b in fit])
        if abs(matrix.det()) < 1e-12:
            continue
        coeffs = matrix.LUsolve(sympy.Matrix([t for t, _ in fit]))
        exact = [sympy.nsimplify(c, rational=True, tolerance=1e-25) for c in coeffs]
        if any(sympy.denom(c) > 1000 or abs(sympy.numer(c)) > 10**6 for c in exact):
            continue
        if all(abs(sum(c * b**k for k, c in enumerate(exact)) - t) < 1e-30 for t, b in check):
            a = sympy.Symbol("a")
            return _readable_polynomial(sympy.Poly(list(reversed(exact)), a)).subs(a, written)
    return None


def _readable_polynomial(poly: sympy.Poly) -> sympy.Expr:
    """The shortest form of a small polynomial, factored as the seeds write it (σ(1 − σ)).

    A negative leading coefficient is absorbed by flipping one linear factor (a − 1 → 1 − a).
    """
    expanded = poly.as_expr()
    coeff, factors = poly.factor_list()
    terms = [f.as_expr() ** k for f, k in factors]
    if coeff < 0:
        for i, (f, k) in enumerate(factors):
            if f.degree() == 1 and k % 2 == 1:
                terms[i] = (-f.as_expr()) * f.as_expr() ** (k - 1)
                coeff = -coeff
                break
    factored = sympy.Mul(coeff, *terms)
    return min((factored, expanded), key=sympy.count_ops)


def _branch_points(condition: sympy.Basic, bases) -> list[sympy.Rational]:
    """The fit points where ``condition`` holds, table functions in it evaluated by body."""
    bodies = {type(w): b for b, w in bases if isinstance(w, sympy.Function) and w.args == (Z,)}
    for _ in range(len(bodies) + 1):
        expanded = condition.replace(
            lambda e: type(e) in bodies, lambda e: bodies[type(e)].subs(Z, e.args[0])
        )
        if expanded == condition:
            break
        condition = expanded
    return [p for p in _FIT_POINTS if bool(condition.subs(Z, p))]


def _rewrite(derivative: sympy.Expr, bases: Iterable[tuple[sympy.Expr, sympy.Expr]]):
    """Rewrite a derivative in the first basis function it is a polynomial of, branch by branch.

    ``bases`` pairs a body (for evaluation) with the expression to write (``f(z)``).
    """
    bases = list(bases)
    if isinstance(derivative, sympy.Piecewise):
        pieces = []
        taken = sympy.false
        for branch, condition in derivative.args:
            region = sympy.And(condition, sympy.Not(taken))
            points = _branch_points(region, bases)
            written = _condition_in_output(condition, bases[0])
            pieces.append((_rewrite_smooth(branch, bases, points), written))
            taken = sympy.Or(taken, condition)
        return sympy.Piecewise(*pieces)
    return _rewrite_smooth(derivative, bases, _FIT_POINTS)


def _condition_in_output(condition: sympy.Basic, basis: tuple[sympy.Expr, sympy.Expr]):
    """``z > 0`` as ``f(z) > 0`` where SymPy proves the two hold for the same real z.

    For relu, leaky_relu and elu this lets the backward pass read the cached activation
    instead of the pre-activation, which then need not be kept.
    """
    body, written = basis
    if not isinstance(condition, sympy.core.relational.Relational) or condition.lhs != Z:
        return condition
    if not condition.rhs.is_number:
        return condition
    level = body.subs(Z, condition.rhs)
    if not level.is_number:
        return condition
    try:
        same = sympy.solveset(condition.func(body, level), Z, sympy.S.Reals) == sympy.solveset(
            condition, Z, sympy.S.Reals
        )
    except (NotImplementedError, TypeError, ValueError):
        return condition
    return condition.func(written, level) if same else condition


def _rewrite_smooth(derivative, bases, points):
    if derivative.is_number or derivative.has(sympy.Piecewise):
        return derivative
    for body, written in bases:
        fitted = _fit_polynomial(derivative, body, written, points)
        if fitted is not None:
            return fitted
    return derivative


def _make_class(
    name: str, body: sympy.Expr, arity: int, derivative: Callable[..., sympy.Expr]
) -> type:
    def fdiff(self, argindex=1):
        if not 1 <= argindex <= arity:
            raise sympy.ArgumentIndexError(self, argindex)
        return derivative(argindex, *self.args)

    def _eval_evalf(self, prec):
        # A constant argument (softplus(1) in a step) folds to a number through the body.
        return body.subs(dict(zip(ARGUMENTS, self.args, strict=False)))._eval_evalf(prec)

    namespace = {
        "nargs": arity,
        "fdiff": fdiff,
        "_eval_evalf": _eval_evalf,
        "__module__": __name__,
    }
    return type(name, (sympy.Function,), namespace)


class FunctionTable(Mapping[str, ElementwiseFunction]):
    """The functions a model may use: the built-ins plus the spec's own ``[functions]``."""

    def __init__(self, entries: Iterable[ElementwiseFunction]):
        self._entries = {e.name: e for e in entries}

    def __getitem__(self, name: str) -> ElementwiseFunction:
        return self._entries[name]

    def __iter__(self):
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def by_class(self, cls: type) -> ElementwiseFunction | None:
        """The entry whose SymPy class (or SymPy built-in) is ``cls``."""
        for entry in self._entries.values():
            if entry.cls is cls:
                return entry
        return None

    def extended(self, definitions: Mapping[str, tuple[sympy.Expr, str, int]]) -> FunctionTable:
        """A new table with user functions ``name -> (body in z, description, cost)`` added;
        a user function may be a network's activation."""
        entries = list(self._entries.values())
        for name, (body, description, cost) in definitions.items():
            entries.append(
                _define(
                    name,
                    body,
                    latex=r"\operatorname{" + name.replace("_", r"\_") + "}",
                    numpy=None,
                    description=description,
                    known=entries,
                    activation=True,
                    cost=cost,
                )
            )
        return FunctionTable(entries)


def _define(
    name: str,
    body: sympy.Expr,
    *,
    latex: str,
    numpy: NumpyForm | None,
    description: str,
    known: list[ElementwiseFunction],
    builtin: type | None = None,
    arity: int = 1,
    activation: bool = False,
    cost: int = 1,
    evaluate: Callable | None = None,
    array_api: ArrayApiForm | None = None,
) -> ElementwiseFunction:
    """Build an entry: derive the derivative once, rewrite it, and make the SymPy class."""
    if builtin is not None:
        cls = builtin
    else:
        holder: dict[str, type] = {}

        @functools.cache
        def derivative_template(argindex: int) -> sympy.Expr:
            raw = _diff_body(body, ARGUMENTS[argindex - 1])
            if arity > 1:
                return raw
            bases = [(body, holder["cls"](Z))]
            bases += [(e.body, e.cls(Z)) for e in known if e.cls is not None and e.arity == 1]
            return _rewrite(raw, bases)

        def derivative(argindex: int, *args: sympy.Expr) -> sympy.Expr:
            return derivative_template(argindex).subs(dict(zip(ARGUMENTS, args, strict=False)))

        cls = _make_class(name, body, arity, derivative)
        holder["cls"] = cls
    user = numpy is None
    if numpy is None:  # the emitters print the helper from the body
        numpy = NumpyForm(expr=name + "({x})", helper=None)
        array_api = ArrayApiForm(expr=name + "(xp, {x})")
    return ElementwiseFunction(
        name=name,
        body=body,
        latex=latex,
        numpy=numpy,
        description=description,
        array_api=array_api or _standard_form(name, numpy),
        cls=cls,
        user=user,
        arity=arity,
        activation=activation,
        cost=cost,
        evaluate=evaluate,
    )


def _ufunc(name: str) -> NumpyForm:
    """A NumPy ufunc of one argument, which can write into an existing array."""
    return NumpyForm(f"np.{name}({{x}})", out=f"np.{name}({{x}}, out={{out}})")


def _standard_form(name: str, numpy: NumpyForm) -> ArrayApiForm:
    """The array API form of a function NumPy computes by one of :data:`STANDARD_UFUNCS`; any
    other function states its own (an entry without one fails here, when the table is built)."""
    for ufunc in STANDARD_UFUNCS:
        for arguments in ("{x}", "{x}, {y}"):
            if numpy.expr == f"np.{ufunc}({arguments})":
                return ArrayApiForm(f"xp.{ufunc}({arguments})")
    raise ValueError(f"the function {name} has no array API form")


_SIGMOID_HELPER = '''def sigmoid(x):
    """σ(x) = 1 / (1 + exp(−x)), through exp(−|x|) so that no exp overflows."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1, e) / (1 + e)
'''

_SIGMOID_ARRAY_API = '''def sigmoid(xp, x):
    """σ(x) = 1 / (1 + exp(−x)), through exp(−|x|) so that no exp overflows."""
    e = xp.exp(-xp.abs(x))
    return xp.where(x >= 0, 1.0, e) / (1 + e)
'''

_GELU_C = math.sqrt(2 / math.pi)


def _builtin_entries() -> list[ElementwiseFunction]:
    """The built-in table, in the order users see it in ``--help`` and errors."""
    entries: list[ElementwiseFunction] = []

    def add(name, body, latex, numpy, description, **record):
        entries.append(
            _define(
                name,
                body,
                latex=latex,
                numpy=numpy,
                description=description,
                known=list(entries),
                **record,
            )
        )

    add("exp", sympy.exp(Z), r"\exp", _ufunc("exp"), "e^z", builtin=sympy.exp, evaluate=mpmath.exp)
    log = {"builtin": sympy.log, "evaluate": mpmath.log, "cost": 2}
    add("log", sympy.log(Z), r"\log", _ufunc("log"), "natural log", **log)
    add("sqrt", sympy.sqrt(Z), r"\sqrt{{{x}}}", _ufunc("sqrt"), "square root")
    add("identity", Z, "", NumpyForm("{x}"), "z", activation=True, array_api=ArrayApiForm("{x}"))
    add(
        "sigmoid",
        1 / (1 + sympy.exp(-Z)),
        r"\sigma",
        NumpyForm("sigmoid({x})", _SIGMOID_HELPER),
        "logistic σ(z) = 1/(1 + e^−z)",
        activation=True,
        array_api=ArrayApiForm("sigmoid(xp, {x})", _SIGMOID_ARRAY_API),
    )
    sigmoid = entries[-1].cls
    tanh = {"builtin": sympy.tanh, "evaluate": mpmath.tanh, "activation": True}
    add("tanh", sympy.tanh(Z), r"\tanh", _ufunc("tanh"), "tanh z", **tanh)
    add(
        "relu",
        sympy.Piecewise((Z, Z > 0), (0, True)),
        r"\operatorname{relu}",
        NumpyForm("np.maximum({x}, 0)", out="np.maximum({x}, 0, out={out})"),
        "max(z, 0); derivative 0 at z = 0",
        activation=True,
        cost=2,
        array_api=ArrayApiForm("xp.maximum({x}, 0.0)"),
    )
    add(
        "leaky_relu",
        sympy.Piecewise((Z, Z > 0), (Z / 100, True)),
        r"\operatorname{lrelu}",
        NumpyForm("np.where({x} > 0, {x}, 0.01 * {x})"),
        "z for z > 0, 0.01·z otherwise",
        activation=True,
        cost=2,
        array_api=ArrayApiForm("xp.where({x} > 0, {x}, 0.01 * {x})"),
    )
    softplus = sympy.log(1 + sympy.exp(Z))
    add(
        "softplus",
        softplus,
        r"\operatorname{softplus}",
        NumpyForm("np.logaddexp(0, {x})", out="np.logaddexp(0, {x}, out={out})"),
        "log(1 + e^z)",
        activation=True,
        array_api=ArrayApiForm("xp.logaddexp(0.0, {x})"),
    )
    softplus_of = entries[-1].cls
    add(
        "silu",
        Z * sigmoid(Z),
        r"\operatorname{silu}",
        NumpyForm("{x} * sigmoid({x})", needs=("sigmoid",)),
        "z·σ(z) (swish)",
        activation=True,
        cost=2,
        array_api=ArrayApiForm("{x} * sigmoid(xp, {x})", needs=("sigmoid",)),
    )
    add(
        "gelu",
        Z
        / 2
        * (1 + sympy.tanh(sympy.sqrt(2 / sympy.pi) * (Z + sympy.Rational(44715, 10**6) * Z**3))),
        r"\operatorname{gelu}",
        NumpyForm(
            "0.5 * {x} * (1 + np.tanh(" + repr(_GELU_C) + " * {x} * (1 + 0.044715 * {x} * {x})))"
        ),
        "GELU, tanh approximation",
        activation=True,
        cost=2,
        array_api=ArrayApiForm(
            "0.5 * {x} * (1 + xp.tanh(" + repr(_GELU_C) + " * {x} * (1 + 0.044715 * {x} * {x})))"
        ),
    )
    add(
        "elu",
        sympy.Piecewise((Z, Z > 0), (sympy.exp(Z) - 1, True)),
        r"\operatorname{elu}",
        NumpyForm("np.where({x} > 0, {x}, np.expm1(np.minimum({x}, 0)))"),
        "z for z > 0, e^z − 1 otherwise (α = 1)",
        activation=True,
        cost=2,
        array_api=ArrayApiForm("xp.where({x} > 0, {x}, xp.expm1(xp.minimum({x}, 0.0)))"),
    )
    add(
        "mish",
        Z * sympy.tanh(softplus_of(Z)),  # of the table's softplus: mish′ uses σ, not e^z
        r"\operatorname{mish}",
        NumpyForm("{x} * np.tanh(np.logaddexp(0, {x}))"),
        "z·tanh(softplus(z))",
        activation=True,
        cost=2,
        array_api=ArrayApiForm("{x} * xp.tanh(xp.logaddexp(0.0, {x}))"),
    )
    add(
        "abs",
        sympy.Piecewise((Z, Z > 0), (-Z, Z < 0), (0, True)),
        r"\left|{x}\right|",
        _ufunc("abs"),
        "|z|; derivative 0 at z = 0",
        cost=2,
        evaluate=mpmath.fabs,
    )
    add(
        "sin",
        sympy.sin(Z),
        r"\sin",
        _ufunc("sin"),
        "sin z",
        builtin=sympy.sin,
        evaluate=mpmath.sin,
    )
    add(
        "cos",
        sympy.cos(Z),
        r"\cos",
        _ufunc("cos"),
        "cos z",
        builtin=sympy.cos,
        evaluate=mpmath.cos,
    )
    add(
        "log1p",
        sympy.log(1 + Z),
        r"\operatorname{log1p}",
        _ufunc("log1p"),
        "log(1 + z), exact for small z",
        cost=2,
        evaluate=mpmath.log1p,
    )
    add(
        "expm1",
        sympy.exp(Z) - 1,
        r"\operatorname{expm1}",
        _ufunc("expm1"),
        "e^z − 1, exact for small z",
        evaluate=mpmath.expm1,
    )
    for name, op, test, latex in (
        ("maximum", ">=", Z >= W, r"\max"),
        ("minimum", "<=", Z <= W, r"\min"),
    ):
        add(
            name,
            sympy.Piecewise((Z, test), (W, True)),
            latex,
            NumpyForm(f"np.{name}({{x}}, {{y}})", out=f"np.{name}({{x}}, {{y}}, out={{out}})"),
            f"{name[:3]}(z, w), elementwise; at a tie (z {op} w holds) the gradient goes to z",
            arity=2,
            cost=2,
        )
    return entries


@functools.cache
def builtin_table() -> FunctionTable:
    """The built-in functions; built once per process (derivatives are derived lazily)."""
    return FunctionTable(_builtin_entries())


ACTIVATIONS = tuple(name for name, entry in builtin_table().items() if entry.activation)
"""The built-in functions a ``[network]`` layer may name (a ``[functions]`` entry may too)."""


def derivative(entry: ElementwiseFunction, arg: sympy.Expr = Z) -> sympy.Expr:
    """The derivative of ``entry`` at ``arg``, in the form the backward pass uses."""
    return sympy.diff(entry.cls(Z), Z).subs(Z, arg)

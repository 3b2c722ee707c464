"""The line verifier: every displayed equation of the document, evaluated at random points.

A :class:`~symbp.ir.display.Line` holds the sides it states equal as SymPy expressions (see
:mod:`symbp.ir.display`). A :class:`Scene` is the derivation at small concrete sizes: every
value of the Program as an object array of SymPy symbols (the scalarized view, shared), and
the true adjoints v̄ = ∂f/∂v, which it computes on its own by a reverse sweep over the forward
assignments, entry by entry, from each op's scalar meaning (never from symbp's VJP rules). A
side is evaluated into such an array; every side of a line must then have the same shape and,
at each random point, the same entries to 50 digits. A side that cannot be evaluated fails.

This is the document's equivalent of the finite-difference check: the printed LaTeX is made
from the same expressions, so a line that prints ``c̄ = p̄`` for a scalar and a vector, or a
product in the wrong order, fails here.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import mpmath
import numpy as np
import sympy

from symbp.analysis.numeric import Evaluator, random_point
from symbp.analysis.scalar import (
    concrete_attrs,
    concrete_shape,
    concrete_sizes,
    entry_symbols,
    scalarize,
    size_values,
)
from symbp.derivation import Derivation
from symbp.ir import display as d
from symbp.ir.functions import derivative
from symbp.ir.losses import LOSSES
from symbp.ir.names import layer_name
from symbp.ir.ops import OPS
from symbp.ir.program import Eqn

BATCH = 2
"""The batch size lines are evaluated at: more than one sample, so that a missing 1/m or a
missing sum over the batch shows."""
SIZE = 3
"""Every other named size: unlike the batch, so that a transposed product has the wrong shape."""
DATA_LOSS = "L"
"""A network's data loss (seed 002's C, seed 003's ℓ), before any L2 term (ir.names)."""
POINTS = 3
TOLERANCE = mpmath.mpf("1e-30")


class Unevaluable(Exception):
    """A side the verifier cannot evaluate (an unknown name, a node it has no rule for)."""


@dataclass
class Verification:
    """How many lines (instances counted once per line) were checked, and what failed."""

    lines: int = 0
    instances: int = 0
    failures: list[str] = field(default_factory=list)


def _canonical(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A vector is a column and a scalar is 1 × 1, as the document writes them."""
    if not shape:
        return (1, 1)
    if len(shape) == 1:
        return (shape[0], 1)
    return shape


def _array(value) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    out = np.empty((), dtype=object)
    out[()] = sympy.sympify(value)
    return out


def _elementwise(func: Callable, *arrays: np.ndarray) -> np.ndarray:
    arrays = np.broadcast_arrays(*arrays) if arrays else ()
    out = np.empty(arrays[0].shape if arrays else (), dtype=object)
    for idx in np.ndindex(out.shape):
        out[idx] = func(*(a[idx] for a in arrays))
    return out


def _zeros_like(a: np.ndarray) -> np.ndarray:
    out = np.empty(a.shape, dtype=object)
    out[...] = sympy.Integer(0)
    return out


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Object matrices multiplied with one ``Add`` per entry (adding terms one at a time is
    quadratic in SymPy)."""
    out = np.empty((a.shape[0], b.shape[1]), dtype=object)
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            out[i, j] = sympy.Add(*(a[i, k] * b[k, j] for k in range(a.shape[1])))
    return out


def _as_matrix(a: np.ndarray) -> np.ndarray:
    if a.ndim == 2:
        return a
    if a.ndim == 1:
        return a[:, None]
    return a.reshape(1, 1)


class Scene:
    """A derivation at concrete sizes: values, definitions and adjoints, as SymPy arrays."""

    def __init__(self, derivation: Derivation, sizes: Mapping[str, int] | None = None):
        self.derivation = derivation
        program = self.program = derivation.program
        self.sizes = dict(sizes) if sizes is not None else concrete_sizes(program, BATCH, SIZE)
        self.dims = size_values(self.sizes)
        shared = scalarize(program, self.sizes, program.eqns, shared=True)
        self.values: dict[str, np.ndarray] = shared.values
        self.definitions: dict[sympy.Symbol, sympy.Expr] = {
            s: e for name in shared.definitions for s, e in shared.definitions[name]
        }
        self.producer: dict[str, Eqn] = {e.out: e for e in program.forward_eqns}
        self.leaves = {
            s
            for n in (*program.inputs, *program.params, *program.consts)
            for s in self.values[n].flat
            if isinstance(s, sympy.Symbol)
        }
        """The entries of inputs, parameters and constants (``W1_0_1``): a written-out
        expression is over these."""
        self.directions: dict[str, np.ndarray] = {}
        """Each parameter's block of a direction V (entries ``V·W1·0·1``, leaves of their own):
        what the Hessian-vector product's lines are evaluated along."""
        self._direction_of: dict[sympy.Symbol, sympy.Symbol] = {}
        for param, name in derivation.hvp.directions.items():
            self.directions[param] = entry_symbols(f"V·{param}", self._shape_of(param), "·")
            self.values[name] = self.directions[param]
            for p_entry, v_entry in zip(
                self.values[param].flat, self.directions[param].flat, strict=True
            ):
                self._direction_of[p_entry] = v_entry
        self._tangents: dict[sympy.Basic, sympy.Expr] = {}
        self.defined: dict[sympy.Symbol, np.ndarray] = {}
        self._memo: dict[sympy.Basic, np.ndarray] = {}
        self._local: dict[Eqn, tuple] = {}
        self._sweeps: dict[object, dict[str, np.ndarray]] = {}
        self._evaluators: list[Evaluator] = []
        self.symbolic: Callable[[Scene, str, sympy.Expr, sympy.Expr], np.ndarray] | None = None
        """How a notation's symbols (seed 002's z^l, δ^l) evaluate; set by whoever uses them."""

    # ---- points ---------------------------------------------------------------------------

    def evaluators(self, points: int = POINTS, seed: int = 0) -> list[Evaluator]:
        """One 50-digit evaluator per random point (targets drawn as their loss assumes)."""
        while len(self._evaluators) < points:
            rng = random.Random(seed * 1000 + len(self._evaluators))
            program = self.program
            leaves = [
                s
                for n in (*program.inputs, *program.params, *program.consts)
                for s in self.values[n].flat
                if isinstance(s, sympy.Symbol)
            ]
            leaves += [s for block in self.directions.values() for s in block.flat]
            point = random_point(program, leaves, program.meta.get("kinds", {}), self.sizes, rng)
            self._evaluators.append(Evaluator(point, self.derivation.functions, self.definitions))
        return self._evaluators[:points]

    # ---- evaluation of display expressions --------------------------------------------

    def array(self, expr: sympy.Basic) -> np.ndarray:
        """``expr`` as an object array of SymPy scalars over the Program's entry symbols."""
        if expr in self._memo:
            return self._memo[expr]
        value = self._compute(expr)
        self._memo[expr] = value
        return value

    def _compute(self, expr: sympy.Basic) -> np.ndarray:
        if isinstance(expr, sympy.Symbol):
            if expr in self.defined:
                return self.defined[expr]
            if expr in self.dims:
                return _array(self.dims[expr])
            if expr.name in self.values:
                return self.values[expr.name]
            if expr in self.leaves:
                return _array(expr)
            raise Unevaluable(f"the name {expr.name!r} is not defined")
        if isinstance(expr, d.Node):
            for cls in type(expr).__mro__:
                rule = getattr(self, f"_node_{cls.__name__}", None)
                if rule is not None:
                    return rule(expr, *expr.args)
            raise Unevaluable(f"no rule for {type(expr).__name__}")
        if isinstance(expr, sympy.Indexed | sympy.Derivative | sympy.Integral):
            raise Unevaluable(f"no rule for {type(expr).__name__}")
        if expr.is_Atom:
            return _array(expr)
        args = [self.array(a) for a in expr.args]
        return _elementwise(lambda *xs: expr.func(*xs), *args)

    def _size(self, n: sympy.Expr) -> int:
        value = sympy.sympify(n).xreplace(self.dims)
        if not value.is_Integer:
            raise Unevaluable(f"the size {n} is not known")
        return int(value)

    def _shape_of(self, name: str) -> tuple[int, ...]:
        return concrete_shape(self.program.shape(name), self.sizes)

    # array algebra
    def _node_MatProd(self, node, a, b):
        left, right = self.array(a), self.array(b)
        if _as_matrix(left).shape[1] != _as_matrix(right).shape[0]:
            raise Unevaluable("the factors of a product do not fit")
        product = _matmul(_as_matrix(left), _as_matrix(right))
        if right.ndim < 2:
            product = product[:, 0]
        return product

    def _node_Tr(self, node, a):
        value = self.array(a)
        if value.ndim == 2:
            return value.T
        if value.ndim == 1:
            return value[None, :]
        return value

    def _node_Ones(self, node, n):
        out = np.empty((self._size(n),), dtype=object)
        out[...] = sympy.Integer(1)
        return out

    def _node_OnesLike(self, node, v):
        out = np.empty(self.array(v).shape, dtype=object)
        out[...] = sympy.Integer(1)
        return out

    def _node_Softmax(self, node, a):
        value = self.array(a)
        e = _elementwise(sympy.exp, value)
        total = np.sum(e, axis=-1, keepdims=True)
        return _elementwise(lambda x, s: x / s, e, total)

    def _node_MeanAll(self, node, a):
        value = self.array(a)
        return _array(sympy.Add(*value.flat) / max(value.size, 1))

    def _node_Norm2(self, node, a):
        return _array(sympy.Add(*(x**2 for x in self.array(a).flat)))

    def _node_Ident(self, node, i, j):
        return _array(sympy.Integer(int(self._size(i) == self._size(j))))

    def _node_Entry(self, node, a, *index):
        return self._entry(self.array(a), index)

    def _entry(self, value: np.ndarray, index: Sequence[sympy.Expr]) -> np.ndarray:
        idx = tuple(self._size(i) for i in index)
        if value.ndim == 1 and len(idx) == 2 and idx[1] == 0:
            idx = idx[:1]
        if value.ndim == 0 and all(i == 0 for i in idx):
            return value
        try:
            return _array(value[idx])
        except IndexError:
            raise Unevaluable(f"entry {idx} of an array of shape {value.shape}") from None

    def _node_IndexSum(self, node, body, k, n):
        terms = [self.array(body.xreplace({k: sympy.Integer(v)})) for v in range(self._size(n))]
        if not terms:
            return _array(0)
        return _elementwise(lambda *xs: sympy.Add(*xs), *terms)

    # functions by name
    def _node_FPrime(self, node, u):
        entry = self.derivation.functions[node.name]
        return _elementwise(lambda x: derivative(entry, x), self.array(u))

    def _node_FView(self, node, u):
        entry = self.derivation.functions[node.name]
        return _elementwise(entry.cls, self.array(u))

    def _node_LossTerm(self, node, z, t, count):
        loss = LOSSES[node.name]
        total = loss.scalar_total(self.array(z), self.array(t))
        return _array(total / self.array(count)[()])

    def _node_Plus(self, node, *terms):
        return _elementwise(lambda *xs: sympy.Add(*xs), *(self.array(t) for t in terms))

    def _node_Times(self, node, *factors):
        return _elementwise(lambda *xs: sympy.Mul(*xs), *(self.array(f) for f in factors))

    def _node_Mark(self, node, inner, label):
        return self.array(inner)

    # a network's quantities by layer (the seeds' notations)
    def _network(self):
        network = self.derivation.model.network
        if network is None:
            raise Unevaluable("a layer's quantity, of a model that has no layers")
        return network

    def _layer_value(self, kind: str, layer: int) -> str:
        """The Program's name for a network quantity (symbp's own names, ir.names)."""
        network = self._network()
        if not 0 <= layer <= len(network.layers):
            raise Unevaluable(f"layer {layer} of a network of {len(network.layers)}")
        if kind in ("act", "act_adj"):
            if layer == 0:
                return "X"
            identity = network.layers[layer - 1].activation == "identity"
            return layer_name("Z" if identity else "A", layer)
        if kind in ("pre", "pre_adj"):
            return layer_name("Z", layer)
        name = layer_name(kind, layer)
        if name not in self.values:
            raise Unevaluable(f"{name} is not a value of this network")
        return name

    def _node_Symbolic(self, node, layer, sample):
        kind = node.name
        network = self._network()
        if kind == "cost_grad" and not _is_batch(sample):
            return self._cost_grad(self._size(sample))
        if kind in ("target", "pred", "cost", "cost_grad"):
            value = self._output(kind)
        elif kind in ("act_adj", "pre_adj") and not _is_batch(sample):
            x = self._size(sample)
            name = self._layer_value(kind, self._size(layer))
            return self._sample_adjoints(x).get(name, self._zeros(name))[x]
        elif kind in ("act_adj", "pre_adj"):
            name = self._layer_value(kind, self._size(layer))
            value = self.adjoint(DATA_LOSS, sympy.Symbol(name))
        else:
            value = self.values[self._layer_value(kind, self._size(layer))]
        if kind in ("W", "b"):
            return value
        if kind == "cost" and not _is_batch(sample):
            loss = LOSSES[network.loss]
            z = self.values[self._loss_input()]
            x = self._size(sample)
            return _array(loss.scalar_total(z[x], self.values["T"][x]))
        if sample == d.BATCH or kind == "cost":
            return value
        if sample == d.COLUMNS:
            return value.T if value.ndim == 2 else value
        return _array(value[self._size(sample)])

    def _output(self, kind: str) -> np.ndarray:
        """The targets, the prediction and the data loss, for the whole batch."""
        network = self._network()
        if kind == "target":
            return self.values["T"]
        if kind == "cost":
            return self.values[DATA_LOSS]
        if kind == "cost_grad":
            return self._cost_grad(None)
        z = sympy.Symbol(self._loss_input())
        return self.array(LOSSES[network.loss].display_prediction(z))

    def _cost_grad(self, x: int | None) -> np.ndarray:
        """∇ₐC: the data loss (of sample x, or of the batch, with its 1/m) differentiated with
        respect to the prediction a, from the loss written in a (seed 002's C(a))."""
        loss = LOSSES[self._network().loss]
        prediction, targets = self._output("pred"), self.values["T"]
        scale = self._loss_scale()
        if x is not None:
            prediction, targets, scale = prediction[x], targets[x], sympy.Integer(1)
        fresh = entry_symbols("α·", prediction.shape)
        total = loss.of_prediction(fresh, targets)
        substitution = dict(zip(fresh.flat, prediction.flat, strict=True))
        out = np.empty(prediction.shape, dtype=object)
        for idx in np.ndindex(out.shape):
            out[idx] = (sympy.diff(total, fresh[idx]) * scale).xreplace(substitution)
        return out

    def _loss_input(self) -> str:
        """What the data loss is taken of: the logits of a loss that applies its own softmax
        or σ, the last layer's output otherwise."""
        return self.producer[DATA_LOSS].args[0]

    def _loss_scale(self) -> sympy.Expr:
        """1/m for a mean over the batch, 1 for a sum (the data loss's own attribute)."""
        eqn = self.producer[DATA_LOSS]
        count = eqn.attr("count")
        return sympy.Integer(1) if count is None else 1 / sympy.sympify(count).xreplace(self.dims)

    def _sample_adjoints(self, x: int) -> dict[str, np.ndarray]:
        """∂C_x/∂v for sample x's own loss C_x: seeded at the logits, row x alone, from the
        loss's per-sample meaning differentiated here."""
        network = self._network()
        z_name = self._loss_input()
        z = self.values[z_name]
        fresh = entry_symbols("ζ·", z.shape[1:])
        cost = LOSSES[network.loss].scalar_total(fresh, self.values["T"][x])
        substitution = dict(zip(fresh.flat, z[x].flat, strict=True))
        seed = self._zeros(z_name)
        for j in range(z.shape[1]):
            seed[x, j] = sympy.diff(cost, fresh[j]).xreplace(substitution)
        return self.sweep(("sample", x), {z_name: seed})

    def _node_LayerFn(self, node, layer, argument):
        network = self._network()
        entry = self.derivation.functions[network.layers[self._size(layer) - 1].activation]
        value = self.array(argument)
        if node.name == "sigma":
            return _elementwise(entry.cls, value)
        return _elementwise(lambda v: derivative(entry, v), value)

    # derivatives
    def _node_Bar(self, node, v):
        return self.adjoint(self.program.loss, v)

    def _node_ChainTerm(self, node, child, value):
        eqn = self.producer.get(child.name)
        if eqn is None or value.name not in eqn.args:
            raise Unevaluable(f"{value.name} is not an argument of {child.name}'s assignment")
        g = self.adjoint(self.program.loss, child)
        return self._vjp(eqn, value.name, g)

    def _node_Deriv(self, node, f, x):
        at, x = (x.args[1:], x.args[0]) if isinstance(x, d.Entry) else ((), x)
        if isinstance(f, d.Symbolic) and f.name == "cost" and _is_batch(f.args[1]):
            f = sympy.Symbol(DATA_LOSS)
        if isinstance(f, sympy.Symbol) and self._shape_of(f.name) == ():
            name = self._program_name(x)
            value = self.adjoint(f.name, sympy.Symbol(name))
            return self._entry(_transposed(value, x), at) if at else _transposed(value, x)
        if isinstance(f, d.Symbolic) and f.name == "cost" and not _is_batch(f.args[1]):
            sample = self._size(f.args[1])
            if isinstance(x, d.Symbolic) and x.name == "pred":
                value = self._cost_grad(sample)
            else:
                name = self._program_name(x)
                value = self._sample_adjoints(sample).get(name, self._zeros(name))
                if x.name not in ("W", "b"):
                    value = _array(value[sample])
            return self._entry(value, at) if at else value
        if isinstance(f, d.Entry) and isinstance(f.args[0], d.Symbolic):
            return self._prediction_jacobian(f, x, at)
        raise Unevaluable(f"∂{f}/∂{x}")

    def _program_name(self, x: sympy.Basic) -> str:
        if isinstance(x, sympy.Symbol):
            return x.name
        if isinstance(x, d.Symbolic):
            return self._layer_value(x.name, self._size(x.args[0]))
        raise Unevaluable(f"∂/∂{x}: a value of the Program is needed")

    def _prediction_jacobian(self, f: d.Entry, x: sympy.Basic, at) -> np.ndarray:
        """∂a_j/∂z_i of one sample's prediction a = softmax(z) (or σ(z)), from the loss's
        prediction applied to fresh logits."""
        pred, j = f.args[0], f.args[1:]
        if not (pred.name == "pred" and isinstance(x, d.Symbolic) and x.name == "pre"):
            raise Unevaluable("∂(an entry of the prediction)/∂(the logits) only")
        network = self._network()
        sample = self._size(pred.args[1])
        z = self.values[self._loss_input()][sample]
        fresh = entry_symbols("ζ·", z.shape)
        logits = sympy.Symbol("ζ·logits")  # fresh logits, the same for every sample
        self.defined[logits] = fresh
        a = self.array(LOSSES[network.loss].display_prediction(logits))
        entry = self._entry(a, j)[()]
        substitution = dict(zip(fresh.flat, z.flat, strict=True))
        out = np.empty(z.shape, dtype=object)
        for idx in np.ndindex(z.shape):
            out[idx] = sympy.diff(entry, fresh[idx]).xreplace(substitution)
        return self._entry(out, at) if at else out

    def _node_LocalDeriv(self, node, f, x):
        out_name, out_idx = _name_and_index(f, self._size)
        arg_name, arg_idx = _name_and_index(x, self._size)
        eqn = self.producer.get(out_name)
        if eqn is None:
            raise Unevaluable(f"{out_name} is not computed by an assignment")
        fresh, partials = self._jacobian(eqn)
        total = sympy.Integer(0)
        substitution = self._substitution(eqn, fresh)
        for pos, arg in enumerate(eqn.args):
            if arg != arg_name:
                continue
            for oi, ai, partial in partials[pos]:
                if oi == out_idx and ai == arg_idx:
                    total += partial.xreplace(substitution)
        return _array(total)

    # ---- adjoints ---------------------------------------------------------------------------

    # ---- second order: derivatives along the direction V ------------------------------

    def _node_Inner(self, node, a, b):
        left, right = self.array(a), self.array(b)
        if _canonical(left.shape) != _canonical(right.shape):
            raise Unevaluable(f"⟨·, ·⟩ of shapes {left.shape} and {right.shape}")
        return _array(sympy.Add(*(x * y for x, y in zip(left.flat, right.flat, strict=True))))

    def _node_Column(self, node, x):
        value = self.array(x)
        if value.ndim > 1:
            raise Unevaluable(f"a column of an array of shape {value.shape}")
        return value.reshape((value.size, 1))

    def _node_Tangent(self, node, x):
        if not isinstance(x, sympy.Symbol) or x.name not in self.producer:
            raise Unevaluable(f"the tangent of {x} (a value of the forward pass is needed)")
        return self._tangent_array(self.values[x.name])

    def _node_HessVec(self, node, p):
        if not isinstance(p, sympy.Symbol) or p.name not in self.directions:
            raise Unevaluable(f"(H V) of {p} (a parameter is needed)")
        return self._tangent_array(self.adjoint(self.program.loss, p))

    def _tangent_array(self, value: np.ndarray) -> np.ndarray:
        out = np.empty(value.shape, dtype=object)
        for idx in np.ndindex(value.shape):
            out[idx] = self.tangent(sympy.sympify(value[idx]))
        return out

    def tangent(self, expr: sympy.Expr) -> sympy.Expr:
        """(∂expr/∂θ)·V by forward accumulation: a parameter's entry has its entry of V as
        tangent, every other leaf 0, and a defined symbol (a shared value's entry, an entry
        of a true adjoint) the tangent of its definition, as a symbol of its own. This is
        the verifier's own second order: forward over its own reverse sweep, with SymPy's
        derivatives, sharing nothing with symbp's Hessian-vector product Program."""
        if expr in self._tangents:
            return self._tangents[expr]
        if expr.is_Symbol:
            if expr in self._direction_of:
                result: sympy.Expr = self._direction_of[expr]
            elif expr in self.definitions:
                result = self.tangent(self.definitions[expr])
                if not result.is_Atom:
                    symbol = sympy.Symbol(f"τ·{expr.name}")
                    self.definitions[symbol] = result
                    result = symbol
            else:
                result = sympy.Integer(0)
        elif expr.is_Atom:
            result = sympy.Integer(0)
        else:
            terms = [(s, self.tangent(s)) for s in sorted(expr.free_symbols, key=str)]
            result = sympy.Add(*(_diff(expr, s) * t for s, t in terms if t != 0))
        self._tangents[expr] = result
        return result

    def adjoint(self, of: str, value: sympy.Basic) -> np.ndarray:
        """∂(of)/∂value for the scalar value ``of``: zeros where ``value`` does not reach it."""
        if not isinstance(value, sympy.Symbol) or value.name not in self.values:
            raise Unevaluable(f"the adjoint of {value} (a value of the Program is needed)")
        sweep = self.sweep(("of", of), {of: _array(sympy.Integer(1))})
        return sweep.get(value.name, self._zeros(value.name))

    def _zeros(self, name: str) -> np.ndarray:
        out = np.empty(self.values[name].shape, dtype=object)
        out[...] = sympy.Integer(0)
        return out

    def sweep(self, key: object, seed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Reverse accumulation from ``seed`` (cotangents of some values) through the forward
        assignments: every value upstream gets Σ over its uses of the local vector-Jacobian
        products, entry by entry. Each finished adjoint entry becomes a symbol of its own."""
        if key in self._sweeps:
            return self._sweeps[key]
        tag = len(self._sweeps)
        adjoints = {name: np.asarray(g, dtype=object) for name, g in seed.items()}
        for eqn in reversed(self.program.forward_eqns):
            if eqn.out not in adjoints:
                continue
            g = self._symbols(tag, eqn.out, adjoints[eqn.out])
            adjoints[eqn.out] = g
            for arg in dict.fromkeys(eqn.args):
                piece = self._vjp(eqn, arg, g)
                adjoints[arg] = piece if arg not in adjoints else _array(adjoints[arg] + piece)
        for name in adjoints:
            adjoints[name] = self._symbols(tag, name, adjoints[name])
        self._sweeps[key] = adjoints
        return adjoints

    def _symbols(self, tag: int, name: str, g: np.ndarray) -> np.ndarray:
        out = np.empty(g.shape, dtype=object)
        for idx in np.ndindex(g.shape):
            value = sympy.sympify(g[idx])
            if value.is_Atom:
                out[idx] = value
                continue
            label = "·".join([f"ā{tag}", name, *map(str, idx)])
            symbol = sympy.Symbol(label)
            self.definitions[symbol] = value
            out[idx] = symbol
        return out

    def _jacobian(self, eqn: Eqn) -> tuple:
        """The assignment applied to fresh symbols, and its nonzero partial derivatives: for
        each argument position, (output entry, argument entry, ∂) over the fresh symbols."""
        if eqn in self._local:
            return self._local[eqn]
        fresh = [
            entry_symbols(f"φ{pos}·", self._shape_of(arg)) for pos, arg in enumerate(eqn.args)
        ]
        where = {
            s: (pos, idx)
            for pos, array in enumerate(fresh)
            for idx in np.ndindex(array.shape)
            for s in [array[idx]]
        }
        out = np.asarray(OPS[eqn.op].scalar(fresh, concrete_attrs(eqn, self.dims)), dtype=object)
        partials: list[list] = [[] for _ in eqn.args]
        for oi in np.ndindex(out.shape):
            e = sympy.sympify(out[oi]).xreplace(self.dims)
            terms = [(t, t.free_symbols) for t in (e.args if e.is_Add else (e,))]
            for s in sorted(e.free_symbols & where.keys(), key=str):
                # Only the terms of a sum that hold the symbol: a product's entry is a sum of
                # many terms, and SymPy would differentiate every one of them.
                partial = sympy.Add(*(_diff(t, s) for t, free in terms if s in free))
                if partial != 0:
                    pos, ai = where[s]
                    partials[pos].append((oi, ai, partial))
        result = (fresh, partials)
        self._local[eqn] = result
        return result

    def _substitution(self, eqn: Eqn, fresh: list[np.ndarray]) -> dict:
        mapping = {}
        for arg, array in zip(eqn.args, fresh, strict=True):
            actual = self.values[arg]
            for idx in np.ndindex(array.shape):
                mapping[array[idx]] = actual[idx]
        return mapping

    def _vjp(self, eqn: Eqn, arg: str, g: np.ndarray) -> np.ndarray:
        """Σ over ``arg``'s positions in ``eqn`` of ḡ ∂out/∂arg, an array of arg's shape."""
        fresh, partials = self._jacobian(eqn)
        substitution = self._substitution(eqn, fresh)
        g = np.broadcast_to(np.asarray(g, dtype=object), self._shape_of(eqn.out))
        terms: dict[tuple, list] = {}
        for pos, name in enumerate(eqn.args):
            if name != arg:
                continue
            for oi, ai, partial in partials[pos]:
                weight = g[oi]
                if weight != 0:
                    terms.setdefault(ai, []).append(weight * partial.xreplace(substitution))
        out = self._zeros(arg)
        for ai, parts in terms.items():
            out[ai] = sympy.Add(*parts)
        return out

    # ---- checking ---------------------------------------------------------------------------

    def sides(self, line: d.Line, sides: Sequence[sympy.Expr]) -> list[np.ndarray]:
        """Each side as an array; with free indices, entry by entry over their ranges."""
        if not line.indices:
            return [self.array(s) for s in sides]
        symbols = [i for i, _ in line.indices]
        ranges = [range(self._size(n)) for _, n in line.indices]
        shape = tuple(len(r) for r in ranges)
        arrays = []
        for side in sides:
            out = np.empty(shape, dtype=object)
            for values in itertools.product(*ranges):
                given = dict(zip(symbols, map(sympy.Integer, values), strict=True))
                entry = self.array(side.xreplace(given))
                if entry.size != 1:
                    raise Unevaluable("an entry of an index form is not a scalar")
                out[values] = entry.flat[0]
            arrays.append(out)
        return arrays

    def check(self, line: d.Line, points: int = POINTS, seed: int = 0) -> list[str]:
        """What is wrong with ``line``: nothing, or one message per failed instance."""
        problems = []
        for symbol, expr in line.defines:  # a definition line states its own symbol's value
            try:
                self.defined[symbol] = self.array(expr)
            except (Unevaluable, KeyError, TypeError, ValueError) as err:
                return [f"the definition of {symbol} cannot be evaluated: {err}"]
        for instance in line.evaluable():
            if len(instance) < 2:
                problems.append("fewer than two sides")
                continue
            try:
                arrays = self.sides(line, instance)
            except (Unevaluable, KeyError, TypeError, ValueError) as err:
                problems.append(f"cannot be evaluated: {err}")
                continue
            # A side that is the number 0 is the zero array of the others' shape ("= 0").
            full = next((a for a, side in zip(arrays, instance, strict=True) if side != 0), None)
            if full is not None:
                arrays = [
                    _zeros_like(full) if side == 0 else a
                    for a, side in zip(arrays, instance, strict=True)
                ]
            shapes = [_canonical(a.shape) for a in arrays]
            if len(set(shapes)) > 1:
                problems.append(f"sides of different shapes {shapes}")
                continue
            problems += self._compare(arrays, points, seed)
        return problems

    def _compare(self, arrays: list[np.ndarray], points: int, seed: int) -> list[str]:
        first = [sympy.sympify(x) for x in arrays[0].flat]
        for evaluate in self.evaluators(points, seed):
            try:
                reference = [evaluate(x) for x in first]
                for k, other in enumerate(arrays[1:], start=1):
                    for i, x in enumerate(other.flat):
                        a, b = reference[i], evaluate(sympy.sympify(x))
                        if abs(a - b) > TOLERANCE * max(abs(a), abs(b), 1):
                            return [
                                f"side {k + 1} differs from side 1 at entry {i}: "
                                f"{mpmath.nstr(b, 12)} ≠ {mpmath.nstr(a, 12)}"
                            ]
            except (ValueError, TypeError, ZeroDivisionError) as err:
                return [f"cannot be evaluated at a point: {err}"]
        return []


def _transposed(value: np.ndarray, x: sympy.Basic) -> np.ndarray:
    """A value in the batch's columns where ``x`` asks for it (seed 002's bold matrices)."""
    kind = x.name if isinstance(x, d.Symbolic) else ""
    if kind not in ("W", "b", "") and x.args[1] == d.COLUMNS and value.ndim == 2:
        return value.T
    return value


def _is_batch(sample: sympy.Basic) -> bool:
    return sample in (d.BATCH, d.COLUMNS)


def _diff(term: sympy.Expr, s: sympy.Symbol) -> sympy.Expr:
    """∂term/∂s, at once where ``term`` is ``s`` or a product with ``s`` as one plain factor
    (the terms of a matrix product's entries), else by SymPy."""
    if term == s:
        return sympy.Integer(1)
    if term.is_Pow and term.base == s and term.exp.is_Number:
        return term.exp * s ** (term.exp - 1)
    if term.is_Mul:
        others = [f for f in term.args if f != s]
        if len(others) == len(term.args) - 1 and not any(s in f.free_symbols for f in others):
            return sympy.Mul(*others)
    return sympy.diff(term, s)


def _name_and_index(expr: sympy.Basic, size: Callable) -> tuple[str, tuple]:
    if isinstance(expr, sympy.Symbol):
        return expr.name, ()
    if isinstance(expr, d.Entry) and isinstance(expr.args[0], sympy.Symbol):
        return expr.args[0].name, tuple(size(i) for i in expr.args[1:])
    raise Unevaluable(f"∂ of {expr}: a value or an entry of one is needed")


def verify(
    derivation: Derivation,
    lines: Iterable[d.Line],
    *,
    points: int = POINTS,
    seed: int = 0,
    scene: Scene | None = None,
) -> Verification:
    """Check every line in order (a line may define a symbol later ones use); a line that
    fixes its own sizes is checked in a scene of those sizes."""
    scenes: dict[tuple | None, Scene] = {}
    if scene is not None:
        scenes[None] = scene
    result = Verification()
    for line in lines:
        key = line.sizes
        if key not in scenes:
            scenes[key] = Scene(derivation, None if key is None else dict(key))
        result.lines += 1
        result.instances += len(line.evaluable())
        for problem in scenes[key].check(line, points, seed):
            result.failures.append(f"{line.tex}: {problem}")
    return result

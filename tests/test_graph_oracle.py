"""The differential oracle: random valid graphs against an evaluation written here.

Each drawn graph is two things built side by side: the spec text symbp reads, and a NumPy
function of this file that computes the same loss from the same steps (its own reference
implementations of every function and loss; nothing of symbp's lowering, SymPy forms or
printers). The generated module's loss must equal that function's, and its gradients must equal
central differences of that function, at batch sizes 1 and 3, in float64; in float32 the
gradients keep the dtype. Its Hessian-vector product must equal central differences of its
gradient entry by entry, and ⟨u, H·v⟩ the mixed second difference of that function. Graphs
cover NumPy broadcasting between scalars, (n,), (1, n), (n, 1) and (m, n) operands in either
position, for parameters, inputs, constants and intermediate values; every elementwise operator
and function; ``@`` and ``.T``; ``sum`` and ``mean`` with and without ``axis``; the fused
losses; values used several times; aliases, repeated steps, numbers, ``[constants]`` and
``[functions]``. Half of the graphs name an ``output`` step, whose ``predict`` must return that
step's value as evaluated here.
"""

from __future__ import annotations

import inspect
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symbp.analysis.gradcheck import check_hvp

EXAMPLES = int(os.environ.get("SYMBP_ORACLE_EXAMPLES", "500"))
SLOW_EXAMPLES = 5000
Dim = int | str
Shape = tuple[Dim, ...]


# ---- reference implementations, written for this test ------------------------------------


def _sigmoid(xp, x):
    return 0.5 * (1 + xp.tanh(x / 2))


def _softplus(xp, x):
    return xp.logaddexp(0, x)


def _gelu(xp, x):
    return 0.5 * x * (1 + xp.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


REFERENCE: dict[str, Callable] = {
    "exp": lambda xp, x: xp.exp(x),
    "log": lambda xp, x: xp.log(x),
    "sqrt": lambda xp, x: xp.sqrt(x),
    "tanh": lambda xp, x: xp.tanh(x),
    "sigmoid": _sigmoid,
    "identity": lambda xp, x: x,
    "relu": lambda xp, x: xp.where(x > 0, x, 0.0),
    "leaky_relu": lambda xp, x: xp.where(x > 0, x, 0.01 * x),
    "softplus": _softplus,
    "silu": lambda xp, x: x * _sigmoid(xp, x),
    "gelu": _gelu,
    "elu": lambda xp, x: xp.where(x > 0, x, xp.expm1(xp.minimum(x, 0))),
    "mish": lambda xp, x: x * xp.tanh(_softplus(xp, x)),
    "abs": lambda xp, x: xp.abs(x),
    "sin": lambda xp, x: xp.sin(x),
    "cos": lambda xp, x: xp.cos(x),
    "log1p": lambda xp, x: xp.log1p(x),
    "expm1": lambda xp, x: xp.expm1(x),
}
"""Each function as this test computes it (``xp`` is NumPy, or jax.numpy), independently of
symbp's NumPy forms."""

USER_FUNCTIONS = {
    "bump": ("1 / (1 + z**2)", lambda xp, z: 1 / (1 + z**2)),
    "swish": ("z * sigmoid(z)", lambda xp, z: z * _sigmoid(xp, z)),
    "lsq": ("log(1 + z**2)", lambda xp, z: xp.log(1 + z**2)),
}
"""``[functions]`` entries: the body symbp reads, and the same function for this test."""

TWO_ARGUMENTS = {
    "maximum": lambda xp, x, y: xp.maximum(x, y),
    "minimum": lambda xp, x, y: xp.minimum(x, y),
}
"""Elementwise functions of two arrays, broadcast against each other."""


def _log_softmax(xp, z):
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


def _batch(z) -> int:
    return z.shape[0] if z.ndim == 2 else 1


LOSSES = {
    "softmax_cross_entropy": lambda xp, z, t: -(t * _log_softmax(xp, z)).sum() / _batch(z),
    "sigmoid_binary_cross_entropy": lambda xp, z, t: (_softplus(xp, z) - t * z).sum() / _batch(z),
    "squared_error": lambda xp, z, t: ((z - t) ** 2).sum() / 2 / _batch(z),
}


# ---- expressions: spec text and NumPy evaluation side by side ----------------------------


@dataclass(frozen=True)
class Expr:
    text: str
    shape: Shape
    run: Callable[[dict, object], np.ndarray]
    """The value from the named values ``env``, computed with ``xp`` (NumPy or jax.numpy)."""
    arrays: frozenset[str] = frozenset()
    """The declared inputs and parameters the expression reads (for the final loss)."""


def broadcast(a: Shape, b: Shape) -> Shape | None:
    """NumPy's rule, on dimensions that are integers or names; None if they do not broadcast."""
    out: list[Dim] = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x != y and 1 not in (x, y):
            return None
        out.append(y if x == 1 else x)
    return tuple(reversed(out))


def shape_text(shape: Shape) -> str:
    return " x ".join(map(str, shape)) if shape else "scalar"


@dataclass
class Graph:
    """A spec under construction and the evaluation of its steps."""

    inputs: dict[str, Shape] = field(default_factory=dict)
    params: dict[str, Shape] = field(default_factory=dict)
    constants: dict[str, float] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)
    functions: dict[str, str] = field(default_factory=dict)
    steps: list[tuple[str, Expr]] = field(default_factory=list)
    values: dict[str, Expr] = field(default_factory=dict)
    output: str | None = None
    """The step ``predict`` returns, if the spec names one."""

    def name(self, base: str) -> str:
        return f"{base}{len(self.steps) + len(self.inputs) + len(self.params) + 1}"

    def declare(self, group: dict, name: str, shape: Shape) -> Expr:
        group[name] = shape
        expr = Expr(name, shape, lambda env, xp, n=name: env[n], frozenset({name}))
        self.values[name] = expr
        return expr

    def assign(self, expr: Expr, name: str | None = None) -> Expr:
        name = name or self.name("v")
        self.steps.append((name, expr))
        value = Expr(name, expr.shape, lambda env, xp, n=name: env[n], expr.arrays)
        self.values[name] = value
        return value

    def spec(self) -> str:
        def table(group: dict) -> str:
            return ", ".join(f'{k} = "{shape_text(v)}"' for k, v in group.items())

        lines = ['name = "oracle"']
        if self.functions:
            lines.append("[functions]")
            lines += [f'{k} = "{v}"' for k, v in self.functions.items()]
        lines.append("[graph]")
        if self.inputs:
            lines.append(f"inputs = {{ {table(self.inputs)} }}")
        lines.append(f"params = {{ {table(self.params)} }}")
        if self.constants:
            body = ", ".join(f"{k} = {v!r}" for k, v in self.constants.items())
            lines.append(f"constants = {{ {body} }}")
        lines.append("steps = [")
        lines += [f'  "{name} = {expr.text}",' for name, expr in self.steps]
        lines.append("]")
        lines.append(f'loss = "{self.steps[-1][0]}"')
        if self.output:
            lines.append(f'output = "{self.output}"')
        return "\n".join(lines) + "\n"

    def evaluate(self, env: dict, xp=np) -> dict:
        """Every value the steps compute from inputs, parameters and constants in ``env``."""
        env = dict(env)
        for name, expr in self.steps:
            env[name] = expr.run(env, xp)
        return env

    def loss(self, env: dict, xp=np):
        """The loss the steps compute from inputs, parameters and constants in ``env``."""
        value = self.evaluate(env, xp)[self.steps[-1][0]]
        return float(value) if xp is np else value


def binary(op: str, a: Expr, b: Expr) -> Expr:
    shape = broadcast(a.shape, b.shape)
    assert shape is not None
    fn = {
        "+": lambda x, y: x + y,
        "-": lambda x, y: x - y,
        "*": lambda x, y: x * y,
        "/": lambda x, y: x / y,
    }[op]
    return Expr(
        f"({a.text} {op} {b.text})",
        shape,
        lambda env, xp: fn(a.run(env, xp), b.run(env, xp)),
        a.arrays | b.arrays,
    )


def apply(function: str, a: Expr) -> Expr:
    """``function(a)``, its argument made valid for it (log of 1 + a², exp of tanh a)."""
    if function in USER_FUNCTIONS:
        ref = USER_FUNCTIONS[function][1]
        return Expr(
            f"{function}({a.text})", a.shape, lambda env, xp: ref(xp, a.run(env, xp)), a.arrays
        )
    ref = REFERENCE[function]
    if function in ("exp", "expm1"):
        return Expr(
            f"{function}(tanh({a.text}))",
            a.shape,
            lambda env, xp: ref(xp, xp.tanh(a.run(env, xp))),
            a.arrays,
        )
    if function in ("log", "sqrt", "log1p"):
        return Expr(
            f"{function}(1 + {a.text}**2)",
            a.shape,
            lambda env, xp: ref(xp, 1 + a.run(env, xp) ** 2),
            a.arrays,
        )
    return Expr(
        f"{function}({a.text})", a.shape, lambda env, xp: ref(xp, a.run(env, xp)), a.arrays
    )


def apply2(function: str, a: Expr, b: Expr) -> Expr:
    """``maximum(a, b)`` or ``minimum(a, b)``, broadcast."""
    shape = broadcast(a.shape, b.shape)
    assert shape is not None
    ref = TWO_ARGUMENTS[function]
    return Expr(
        f"{function}({a.text}, {b.text})",
        shape,
        lambda env, xp: ref(xp, a.run(env, xp), b.run(env, xp)),
        a.arrays | b.arrays,
    )


def matmul(a: Expr, b: Expr) -> Expr | None:
    sa, sb = a.shape, b.shape
    if not sa or not sb or sa[-1] != sb[0]:
        return None
    shape = sa[:-1] + sb[1:]
    return Expr(
        f"({a.text} @ {b.text})",
        shape,
        lambda env, xp: a.run(env, xp) @ b.run(env, xp),
        a.arrays | b.arrays,
    )


def transpose(a: Expr) -> Expr:
    return Expr(
        f"{a.text}.T", tuple(reversed(a.shape)), lambda env, xp: a.run(env, xp).T, a.arrays
    )


def reduce(kind: str, a: Expr, axis: int | None) -> Expr:

    def fn(xp, x, axis=None):
        return xp.sum(x, axis=axis) if kind == "sum" else xp.mean(x, axis=axis)

    if axis is None:
        return Expr(f"{kind}({a.text})", (), lambda env, xp: fn(xp, a.run(env, xp)), a.arrays)
    shape = a.shape[: axis % len(a.shape)] + a.shape[axis % len(a.shape) + 1 :]
    return Expr(
        f"{kind}({a.text}, axis={axis})",
        shape,
        lambda env, xp: fn(xp, a.run(env, xp), axis=axis),
        a.arrays,
    )


def positive(a: Expr) -> Expr:
    """``(1 + a**2)``: a denominator or a base of a fractional power that is never zero."""
    return Expr(f"(1 + {a.text}**2)", a.shape, lambda env, xp: 1 + a.run(env, xp) ** 2, a.arrays)


def number(value: float) -> Expr:
    return Expr(repr(value), (), lambda env, xp: value)


# ---- the strategy --------------------------------------------------------------------------

STEP_KINDS = (
    *("binary", "binary", "binary", "function", "function", "matmul", "transpose", "reduce"),
    *("power", "negate", "alias", "repeat", "number", "number", "function2"),
)
"""What a step does, elementwise operators most often."""


@st.composite
def graphs(draw) -> Graph:
    g = Graph()
    n = draw(st.sampled_from(["n", 3]))
    k = draw(st.sampled_from(["k", 2]))
    param_shapes = [(), (n,), (1, n), (n, 1), (n, n), (n, k), (k,)]
    input_shapes = [("m", n), ("m", 1), (), (n,), ("m",)]
    for _ in range(draw(st.integers(1, 3))):
        g.declare(g.params, g.name("p"), draw(st.sampled_from(param_shapes)))
    if draw(st.booleans()):
        g.declare(g.inputs, g.name("x"), ("m", n))
    for _ in range(draw(st.integers(0, 2))):
        g.declare(g.inputs, g.name("x"), draw(st.sampled_from(input_shapes)))
    if draw(st.booleans()):
        name = g.name("c")
        g.constants[name] = draw(st.sampled_from([0.5, -1.25, 2.0]))
        g.values[name] = Expr(name, (), lambda env, xp, c=name: env[c])
    if draw(st.booleans()):
        chosen = draw(st.sampled_from(sorted(USER_FUNCTIONS)))
        g.functions[chosen] = USER_FUNCTIONS[chosen][0]
    functions = sorted(REFERENCE) + sorted(g.functions)

    for _ in range(draw(st.integers(1, 7))):
        pool = list(g.values.values())
        kind = draw(st.sampled_from(STEP_KINDS))
        a = draw(st.sampled_from(pool))
        if kind == "binary":
            partners = [b for b in pool if broadcast(a.shape, b.shape) is not None]
            # Operands of two different shapes most of the time: broadcasting is the point.
            unlike = [b for b in partners if b.shape != a.shape]
            b = draw(st.sampled_from(unlike if unlike and draw(st.booleans()) else partners))
            op = draw(st.sampled_from(["+", "-", "*", "/"]))
            if op == "/":
                b = positive(b)
            first, second = (a, b) if draw(st.booleans()) else (b, a)
            if op == "/" and first is b:
                first, second = a, b
            g.assign(binary(op, first, second))
        elif kind == "function":
            g.assign(apply(draw(st.sampled_from(functions)), a))
        elif kind == "function2":
            b = draw(st.sampled_from([b for b in pool if broadcast(a.shape, b.shape) is not None]))
            g.assign(apply2(draw(st.sampled_from(sorted(TWO_ARGUMENTS))), a, b))
        elif kind == "matmul":
            pairs = [(x, y) for x in pool for y in pool if matmul(x, y) is not None]
            if pairs:
                x, y = draw(st.sampled_from(pairs))
                product = matmul(x, y)
                assert product is not None
                # A product of sums can grow; tanh keeps the loss where differences resolve it.
                g.assign(apply("tanh", product) if product.shape else product)
        elif kind == "transpose" and len(a.shape) == 2:
            g.assign(transpose(a))
        elif kind == "reduce":
            axes = [None, *range(-len(a.shape), len(a.shape))]
            g.assign(
                reduce(draw(st.sampled_from(["sum", "mean"])), a, draw(st.sampled_from(axes)))
            )
        elif kind == "power":
            p = draw(st.sampled_from([2, 3, 0.5, -1]))
            base = a if p in (2, 3) else positive(a)
            g.assign(
                Expr(
                    f"{base.text}**{p}",
                    a.shape,
                    lambda env, xp, base=base, p=p: base.run(env, xp) ** p,
                    a.arrays,
                )
            )
        elif kind == "negate":
            g.assign(Expr(f"-{a.text}", a.shape, lambda env, xp, a=a: -a.run(env, xp), a.arrays))
        elif kind == "alias" and a.text in g.values and g.steps:
            g.assign(a)
        elif kind == "repeat" and g.steps:
            _, again = draw(st.sampled_from(g.steps))
            g.assign(again)
        elif kind == "number":
            op = draw(st.sampled_from(["+", "-", "*", "/"]))
            c = number(draw(st.sampled_from([2.0, -0.5, 3])))
            if op == "/":
                g.assign(binary(op, a, c) if draw(st.booleans()) else binary(op, c, positive(a)))
            else:
                g.assign(binary(op, a, c) if draw(st.booleans()) else binary(op, c, a))

    terms = []
    computed = [g.values[name] for name, _ in g.steps] or list(g.values.values())
    for value in draw(st.lists(st.sampled_from(computed), min_size=1, max_size=2)):
        terms.append(draw(loss_term(g, value)))
    reached = frozenset().union(*(t.arrays for t in terms))
    for name in g.params:
        if name not in reached:
            p = g.values[name]
            terms.append(reduce("mean", apply("tanh", p), None))
    total = terms[0]
    for term in terms[1:]:
        total = binary("+", total, term)
    g.assign(total, name="E")
    if draw(st.booleans()):  # predict returns a step, on the loss's path or not
        g.output = draw(st.sampled_from([name for name, _ in g.steps]))
    return g


@st.composite
def loss_term(draw, g: Graph, value: Expr) -> Expr:
    """A scalar from ``value``: a fused loss against a new target input, or a reduction."""
    choice = draw(st.sampled_from(["sum", "mean", "softmax", "bce", "squared"]))
    squashed = apply("tanh", value)
    if choice in ("sum", "mean") or (choice == "softmax" and not value.shape):
        return reduce("sum" if choice == "sum" else "mean", squashed, None)
    loss = {"softmax": "softmax_cross_entropy", "bce": "sigmoid_binary_cross_entropy"}.get(
        choice, "squared_error"
    )
    target = g.name("t")
    g.declare(g.inputs, target, value.shape)
    g.kinds[target] = {"softmax": "one-hot", "bce": "probability"}.get(choice, "real")
    logits = binary("*", number(3.0), squashed)
    fn = LOSSES[loss]
    return Expr(
        f"{loss}({logits.text}, {target})",
        (),
        lambda env, xp: fn(xp, logits.run(env, xp), env[target]),
        logits.arrays,
    )


# ---- the comparison --------------------------------------------------------------------------


def concrete(shape: Shape, sizes: dict[str, int]) -> tuple[int, ...]:
    return tuple(sizes[d] if isinstance(d, str) else d for d in shape)


def draw_point(g: Graph, sizes: dict[str, int], rng: np.random.Generator):
    params = {
        n: np.asarray(0.7 * rng.standard_normal(concrete(s, sizes))) for n, s in g.params.items()
    }
    inputs = {}
    for name, shape in g.inputs.items():
        dims = concrete(shape, sizes)
        kind = g.kinds.get(name, "real")
        if kind == "one-hot":
            classes = dims[-1] if dims else 1
            inputs[name] = np.eye(classes)[rng.integers(0, classes, size=dims[:-1])]
        elif kind == "probability":
            inputs[name] = rng.uniform(0.05, 0.95, size=dims)
        else:
            inputs[name] = np.asarray(rng.standard_normal(dims))
    return params, inputs


def finite_differences(
    loss: Callable[[dict], float], params: dict, name: str, idx
) -> float | None:
    """Fourth-order central difference in one entry, or None where two step sizes disagree
    (a ReLU kink lies inside the step)."""
    estimates = []
    for h in (1e-3, 2.5e-4):
        values = []
        original = params[name][idx]
        for shift in (2, 1, -1, -2):
            params[name][idx] = original + shift * h
            values.append(loss(params))
        params[name][idx] = original
        estimates.append((-values[0] + 8 * values[1] - 8 * values[2] + values[3]) / (12 * h))
    scale = max(1.0, abs(estimates[0]))
    if abs(estimates[0] - estimates[1]) > 1e-6 * scale:
        return None
    return estimates[1]


def check_graph(g: Graph, build_module) -> float:
    """Compare the module of ``g`` with the evaluation; return the worst relative error."""
    worst = 0.0
    module, _ = build_module(g.spec())
    sizes_list = [{"m": 1, "n": 4, "k": 2}, {"m": 3, "n": 2, "k": 3}]
    for sizes in sizes_list:
        rng = np.random.default_rng(len(g.steps) + sizes["m"])
        params, inputs = draw_point(g, sizes, rng)
        args = [inputs[n] for n in g.inputs]

        def reference(p, inputs=inputs):
            return g.loss({**p, **inputs, **g.constants})

        expected = reference(params)
        assert np.isfinite(expected), g.spec()
        loss, grads = module.loss_and_grad(params, *args)
        assert abs(float(loss) - expected) <= 1e-9 * max(1.0, abs(expected)), (
            f"{g.spec()}\nsizes {sizes}: loss {float(loss)!r}, expected {expected!r}"
        )
        assert set(grads) == set(params)
        for name, value in params.items():
            grad = grads[name]
            assert np.shape(grad) == value.shape, (g.spec(), name, np.shape(grad))
            assert np.asarray(grad).dtype == np.float64, (g.spec(), name, np.asarray(grad).dtype)
            assert not np.shares_memory(grad, value), (g.spec(), name)
            for other in [*params.values(), *inputs.values()]:
                assert not np.shares_memory(grad, other), (g.spec(), name)
            for idx in np.ndindex(value.shape):
                fd = finite_differences(reference, params, name, idx)
                if fd is None:
                    continue
                bp = float(np.asarray(grad)[idx])
                error = abs(fd - bp) / max(abs(fd), abs(bp), 1e-3)
                worst = max(worst, error)
                assert error <= 1e-6, (
                    f"{g.spec()}\nsizes {sizes}: d{name}{list(idx)} = {bp!r}, "
                    f"finite differences {fd!r}"
                )
        if g.output:
            check_predict(g, module, params, inputs)
        check_second_order(g, module, params, inputs, reference, sizes)
        # float32 in, float32 out: the gradients and H·V keep the parameters' dtype.
        small = {n: v.astype(np.float32) for n, v in params.items()}
        small_args = [np.asarray(a, dtype=np.float32) for a in args]
        _, grads32, hv32 = module.loss_grad_hvp(small, *small_args, small)
        for name in params:
            assert np.asarray(grads32[name]).dtype == np.float32, (g.spec(), name)
            assert np.asarray(hv32[name]).dtype == np.float32, (g.spec(), name)
    return worst


MIXED = (np.array([-2, -1, 1, 2]), np.array([1.0, -8, 8, -1]))
"""The fourth-order central stencil in each of two directions: Σᵢⱼ cᵢcⱼ f(iH, jH) / (12H)²
is ∂²f/∂s∂t at 0 to O(H⁴)."""


def mixed_difference(f: Callable[[float, float], float], h: float) -> float:
    steps, weights = MIXED
    total = sum(
        wi * wj * f(si * h, sj * h)
        for si, wi in zip(steps, weights, strict=True)
        for sj, wj in zip(steps, weights, strict=True)
    )
    return total / (12 * h) ** 2


def check_second_order(g: Graph, module, params: dict, inputs: dict, reference, sizes) -> None:
    """H·V two ways: entry by entry against central differences of the module's gradient
    (itself checked against this file's evaluation above), and ⟨u, H·v⟩ against the mixed
    second difference of this file's evaluation at two steps, extrapolated, where the two
    agree (no kink lies within them)."""
    result = check_hvp(module, batch=sizes["m"], seed=len(g.steps), sizes=sizes)
    assert result.ok, f"{g.spec()}\nsizes {sizes}\n{result.table()}"
    rng = np.random.default_rng(len(g.steps))
    u, v = ({n: 0.5 * rng.standard_normal(p.shape) for n, p in params.items()} for _ in range(2))
    hv = module.hvp(params, *(inputs[n] for n in g.inputs), v)
    analytic = sum(float(np.vdot(u[n], hv[n])) for n in params)

    def f(s: float, t: float) -> float:
        return reference({n: p + s * u[n] + t * v[n] for n, p in params.items()})

    coarse, fine = mixed_difference(f, 1e-2), mixed_difference(f, 5e-3)
    if abs(coarse - fine) > 1e-4 * max(abs(fine), 1e-3):
        return  # a kink within the steps: the entrywise check above covers this graph
    extrapolated = fine + (fine - coarse) / 15  # the h⁴ terms cancel (Richardson)
    error = abs(extrapolated - analytic) / max(abs(extrapolated), abs(analytic), 1e-3)
    assert error <= 1e-6, (
        f"{g.spec()}\nsizes {sizes}: ⟨u, Hv⟩ = {analytic!r}, differences {extrapolated!r}"
    )


def check_predict(g: Graph, module, params: dict, inputs: dict) -> None:
    """``predict`` takes only inputs the output's steps name, and returns the output's value
    as this test computes it from all of them."""
    signature = inspect.signature(module.predict).parameters
    taken = [n for n, p in signature.items() if p.kind is p.POSITIONAL_OR_KEYWORD][1:]
    steps = dict(g.steps)
    named, pending = set(), [g.output]  # the names the output's step texts use, transitively
    while pending:
        for word in re.findall(r"[A-Za-z_]\w*", steps[pending.pop()].text):
            if word not in named:
                named.add(word)
                pending += [word] if word in steps else []
    assert set(taken) <= named & set(g.inputs), (g.spec(), taken)
    expected = g.evaluate({**params, **inputs, **g.constants})[g.output]
    got = module.predict(params, *(inputs[n] for n in taken))
    assert np.shape(got) == np.shape(expected), (g.spec(), np.shape(got))
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12, err_msg=g.spec())


ORACLE_SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}


@settings(max_examples=EXAMPLES, **ORACLE_SETTINGS)
@given(g=graphs())
def test_random_graphs_match_an_independent_evaluation(build_module, g):
    check_graph(g, build_module)


@pytest.mark.slow
@settings(max_examples=SLOW_EXAMPLES, **ORACLE_SETTINGS)
@given(g=graphs())
def test_many_random_graphs_match_an_independent_evaluation(build_module, g):
    check_graph(g, build_module)


JAX_EXAMPLES = 100


@settings(max_examples=JAX_EXAMPLES, **ORACLE_SETTINGS)
@given(g=graphs())
def test_random_graphs_match_jax_grad(build_module, g):
    """A second, independent engine: jax.grad of the same steps (when JAX is installed)."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    module, _ = build_module(g.spec())
    params, inputs = draw_point(g, {"m": 3, "n": 2, "k": 3}, np.random.default_rng(5))

    def loss(p):
        return g.loss({**p, **inputs, **g.constants}, jnp)

    point = {n: jnp.asarray(v) for n, v in params.items()}
    expected = jax.grad(loss)(point)
    _, grads = module.loss_and_grad(params, *(inputs[n] for n in g.inputs))
    for name in params:
        np.testing.assert_allclose(
            grads[name], np.asarray(expected[name]), rtol=1e-9, atol=1e-12, err_msg=g.spec()
        )
    # H·V: JAX's forward-over-reverse, jvp of grad, against symbp's reverse-over-reverse.
    rng = np.random.default_rng(6)
    V = {n: rng.standard_normal(p.shape) for n, p in params.items()}
    _, expected_hv = jax.jvp(
        jax.grad(loss), (point,), ({n: jnp.asarray(v) for n, v in V.items()},)
    )
    hv = module.hvp(params, *(inputs[n] for n in g.inputs), V)
    scale = max(
        1.0, *(float(np.max(np.abs(np.asarray(h)), initial=0)) for h in expected_hv.values())
    )
    for name in params:
        np.testing.assert_allclose(
            hv[name],
            np.asarray(expected_hv[name]),
            rtol=1e-8,
            atol=1e-11 * scale,
            err_msg=g.spec(),
        )

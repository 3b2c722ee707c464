"""Every primitive is complete: each op and each function has every form, its NumPy form
computes its meaning, its VJP agrees with finite differences, its displayed forms (forward and
adjoint) are true as the line verifier evaluates them, and its LaTeX compiles.

The op registry and the function table are iterated, so a new op or function is tested here
the moment it is added (and fails here if a form is missing).
"""

from __future__ import annotations

import itertools
import shutil
import subprocess

import mpmath
import numpy as np
import pytest
import sympy

from symbp.ad.backprop import backprop
from symbp.analysis.gradcheck import check_hvp, check_module
from symbp.analysis.lines import verify
from symbp.analysis.scalar import entry_symbols
from symbp.derivation import Derivation
from symbp.emit import array_api_module
from symbp.emit.latex import printers_for
from symbp.emit.numpy_module import generate
from symbp.front.spec import loads
from symbp.ir.builder import Builder
from symbp.ir.display import ChainTerm, Line
from symbp.ir.functions import ARGUMENTS, builtin_table
from symbp.ir.losses import LOSSES
from symbp.ir.ops import OPS, REDUCTIONS, step_calls
from symbp.ir.primitive import Op
from symbp.ir.program import Program, Var
from symbp.loader import module_from_source
from tests.array_backends import backend, params_and_inputs, running

FORMS = ("shape", "scalar", "vjp", "numpy", "array_api", "display", "text", "display_adjoint")
TABLE = builtin_table()

# Each op applied once: (parameter shapes, input shapes, attributes, how the args are named).
# The loss of the test program is sum(out · R) for a random input R of the output's shape.
CASES: dict[str, list[tuple[dict, dict, dict]]] = {
    "ewise": [
        ({"a": (2, 3), "b": (3,)}, {}, {"expr": sympy.Symbol("a") * sympy.Symbol("b")}),
        (  # a Piecewise, as relu′ is in a backward pass (its own derivative is 0 off the kink)
            {"a": (2, 3), "b": (3,)},
            {},
            {
                "expr": sympy.Piecewise(
                    (sympy.Symbol("a") ** 2 * sympy.Symbol("b"), sympy.Symbol("a") > 0),
                    (sympy.Symbol("b") ** 3, True),
                )
            },
        ),
    ],
    "matmul": [
        ({"a": (2, 3), "b": (3, 4)}, {}, {}),
        ({"a": (3, 2), "b": (3, 4)}, {}, {"ta": True}),
        ({"a": (2, 3), "b": (4, 3)}, {}, {"tb": True}),
        ({"a": (3,), "b": (3, 4)}, {}, {}),
        ({"a": (2, 3), "b": (3,)}, {}, {}),
        ({"a": (3,), "b": (3,)}, {}, {}),
    ],
    "outer": [({"a": (3,), "b": (4,)}, {}, {})],
    "affine": [({"a": (2, 3), "b": (3, 4), "c": (4,)}, {}, {})],
    "transpose": [({"a": (2, 3)}, {}, {})],
    "sum": [
        ({"a": (2, 3)}, {}, {}),
        ({"a": (2, 3)}, {}, {"axis": 0}),
        ({"a": (2, 3)}, {}, {"axis": 1, "keepdims": True}),
    ],
    "mean": [({"a": (2, 3)}, {}, {}), ({"a": (2, 3)}, {}, {"axis": 1})],
    "expand_dims": [({"a": (3,)}, {}, {"axis": 1}), ({"a": (3,)}, {}, {"axis": 0})],
    "sum_squares": [({"a": (2, 3)}, {}, {})],
    "copy": [({"a": (2, 3)}, {}, {})],
    "fill": [({"a": (2, 3)}, {}, {"value": sympy.Integer(2)})],
    "broadcast": [({"a": (3,)}, {"like": (2, 3)}, {})],
    "softmax": [({"a": (2, 3)}, {}, {})],
    **{
        name: [({"a": (2, 3)}, {"t": (2, 3)}, {"count": sympy.Integer(2), "reduction": "mean"})]
        for name in LOSSES
    },
}


def test_every_op_has_every_form():
    for name, op in OPS.items():
        missing = [f for f in FORMS if getattr(type(op), f) is getattr(Op, f)]
        assert not missing, f"{name} lacks {missing}"
        assert name in CASES, f"add a case for the op {name} to this test"


def program_of(name: str, params: dict, inputs: dict, attrs: dict) -> Program:
    """``out = op(params..., inputs...)``, and the loss sum(out · R)."""
    variables = {n: Var(n, s, "param") for n, s in params.items()}
    variables |= {n: Var(n, s, "input") for n, s in inputs.items()}
    program = Program(
        "primitive",
        variables,
        [],
        "",
        inputs=list(inputs),
        params=list(params),
        meta={"kind": "graph", "init": {}},
    )
    if name in LOSSES and LOSSES[name].target_kind != "real":
        program.meta["kinds"] = {"t": LOSSES[name].target_kind}
    builder = Builder(program)
    out = builder.emit(name, [*params, *inputs], attrs, name="out")
    shape = program.shape(out)
    program.vars["R"] = Var("R", shape, "input")
    program.inputs.append("R")
    product = builder.ewise(sympy.Symbol(out) * sympy.Symbol("R"), name="prod")
    program.loss = builder.emit("sum", [product], {}, name="L") if shape else product
    return program


def derivation_of(program: Program) -> Derivation:
    model = loads(
        'name = "primitive"\n[graph]\nparams = { w = "scalar" }\nsteps = ["L = w"]\nloss = "L"\n'
    )
    return Derivation(model, backprop(program), None, TABLE)


def inputs_for(module, rng) -> list[np.ndarray]:
    out = []
    for name, shape in module.INPUT_SHAPES.items():
        if name == "t":  # a loss target: one-hot rows
            out.append(np.eye(shape[-1])[rng.integers(0, shape[-1], size=shape[0])])
        else:
            out.append(rng.standard_normal(shape))
    return out


CASE_LIST = [(name, case) for name, cases in CASES.items() for case in cases]


@pytest.mark.parametrize(("name", "case"), CASE_LIST, ids=[n for n, _ in CASE_LIST])
def test_numpy_form_computes_the_scalar_meaning(name, case):
    """The NumPy module's value of the op equals its ``scalar`` rule (SymPy entries)."""
    params, inputs, attrs = case
    program = program_of(name, params, inputs, attrs)
    derivation = derivation_of(program)
    module = module_from_source(generate(derivation), "primitive")
    rng = np.random.default_rng(3)
    values = {n: rng.standard_normal(s) for n, s in params.items()}
    args = inputs_for(module, rng)
    forward = dict(zip(module.INPUT_SHAPES, args, strict=True)) | values
    eqn = next(e for e in program.eqns if e.out == "out")
    symbols = {n: entry_symbols(n, np.shape(forward[n])) for n in eqn.args}
    meaning = OPS[name].scalar(
        [symbols[a] for a in eqn.args], {**dict(eqn.attrs), "names": eqn.args}
    )
    point = {
        s: v
        for n in eqn.args
        for s, v in zip(np.ravel(symbols[n]), np.ravel(forward[n]), strict=True)
    }
    expected = np.vectorize(lambda e: float(sympy.sympify(e).xreplace(point)))(meaning)
    loss, _ = module.forward(values, *args)
    r = args[-1]
    np.testing.assert_allclose(float(loss), float(np.sum(expected * r)), rtol=1e-10)


@pytest.mark.parametrize(("name", "case"), CASE_LIST, ids=[n for n, _ in CASE_LIST])
def test_vjp_agrees_with_finite_differences(name, case):
    params, inputs, attrs = case
    derivation = derivation_of(program_of(name, params, inputs, attrs))
    module = module_from_source(generate(derivation), "primitive")
    result = check_module(module, seed=1)
    assert result.ok, result.table()


@pytest.mark.parametrize(("name", "case"), CASE_LIST, ids=[n for n, _ in CASE_LIST])
def test_array_api_form_equals_the_numpy_form(name, case):
    """The op's array API form (and those of its VJP's ops), on array-api-strict at the
    2024.12 standard, gives the NumPy module's loss and gradients."""
    b = backend("array-api-strict")
    derivation = derivation_of(program_of(name, *case))
    reference = module_from_source(generate(derivation), "primitive")
    module = module_from_source(array_api_module.generate(derivation), "primitive")
    rng = np.random.default_rng(4)
    values = {n: rng.standard_normal(s) for n, s in case[0].items()}
    args = inputs_for(reference, rng)
    expected_loss, expected = reference.loss_and_grad(values, *args)
    with running(b):
        p, x = params_and_inputs(b, values, args)
        loss, grads = module.loss_and_grad(p, *x)
        np.testing.assert_allclose(b.numpy(loss), expected_loss, rtol=1e-13)
        for n, grad in expected.items():
            np.testing.assert_allclose(b.numpy(grads[n]), grad, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize(("name", "case"), CASE_LIST, ids=[n for n, _ in CASE_LIST])
def test_second_order_agrees_with_finite_differences_of_the_gradient(name, case):
    """The HVP Program takes the VJP of every op the backward pass made (outer products,
    softmax, fills, broadcasts, sums with keepdims, expand_dims, copies): H·V of each case
    against finite differences of its gradient, and H·V symmetric."""
    params, inputs, attrs = case
    derivation = derivation_of(program_of(name, params, inputs, attrs))
    module = module_from_source(generate(derivation), "primitive")
    result = check_hvp(module, seed=1)
    assert result.ok, result.table()
    rng = np.random.default_rng(2)
    point = {n: rng.standard_normal(s) for n, s in params.items()}
    args = inputs_for(module, rng)
    u, v = ({n: rng.standard_normal(s) for n, s in params.items()} for _ in range(2))
    uhv = sum(float(np.vdot(u[n], h)) for n, h in module.hvp(point, *args, v).items())
    vhu = sum(float(np.vdot(v[n], h)) for n, h in module.hvp(point, *args, u).items())
    assert abs(uhv - vhu) <= 1e-10 * max(1.0, abs(uhv))


def test_every_function_has_every_form():
    for name, entry in TABLE.items():
        assert isinstance(entry.body, sympy.Expr), name
        assert entry.numpy.expr.count("{x}") >= 1 or name == "identity", name
        assert entry.array_api.expr.count("{x}") >= 1, name
        assert "np." not in entry.array_api.expr + (entry.array_api.helper or ""), name
        assert entry.cost >= 1 and entry.arity in (1, 2), name
        assert entry.latex or name == "identity", name
        assert entry.description, name
        if entry.activation:
            assert entry.arity == 1, name


def test_the_names_a_step_may_call_come_from_the_records():
    calls = step_calls(TABLE)
    assert set(calls) == {*TABLE, *REDUCTIONS, *LOSSES}
    assert len(calls) == len(set(calls))


def values_of(entry, rng, count=8):
    return [
        tuple(sympy.Rational(int(rng.integers(-2500, 2500)), 1000) for _ in range(entry.arity))
        for _ in range(count)
    ]


@pytest.mark.parametrize("name", list(TABLE))
def test_function_evaluation_matches_the_body(name):
    """The 50-digit evaluation (mpmath, where the record has one) equals the body."""
    entry = TABLE[name]
    rng = np.random.default_rng(0)
    for point in values_of(entry, rng):
        if (name in ("log", "sqrt") and point[0] <= 0) or (name == "log1p" and point[0] <= -1):
            continue
        body = entry.body.xreplace(dict(zip(ARGUMENTS, point, strict=False)))
        expected = sympy.N(body, 40)
        if entry.evaluate is not None:
            with mpmath.workdps(40):
                got = entry.evaluate(*(mpmath.mpf(p.p) / p.q for p in point))
            assert abs(float(got) - float(expected)) <= 1e-12 * max(1, abs(float(expected)))
        called = sympy.N(entry(*point), 40)
        assert abs(called - expected) < 1e-25, (name, point)


@pytest.mark.parametrize("name", list(TABLE))
def test_function_module_value_and_gradient(name, build_module):
    """In a generated module, each function computes its body and differentiates right."""
    entry = TABLE[name]
    argument = "1 + x**2" if name in ("log", "sqrt", "log1p") else "x"
    call = f"{name}({argument}, y)" if entry.arity == 2 else f"{name}({argument})"
    module, _ = build_module(
        'name = "fn"\n[graph]\nparams = { x = "5", y = "5" }\n'
        f'steps = ["v = {call}", "L = sum(v * v) + sum(y**2)"]\nloss = "L"\n'
    )
    rng = np.random.default_rng(4)
    x, y = rng.uniform(-2, 2, 5), rng.uniform(-2, 2, 5)
    loss, _ = module.loss_and_grad({"x": x, "y": y})
    xs = 1 + x**2 if argument != "x" else x
    expected = 0.0
    for xi, yi in zip(xs, y, strict=True):
        values = dict(zip(ARGUMENTS, (sympy.Float(xi, 30), sympy.Float(yi, 30)), strict=False))
        expected += float(sympy.N(entry.body.xreplace(values), 30)) ** 2
    expected += float(np.sum(y**2))
    assert float(loss) == pytest.approx(expected, rel=1e-12)
    assert check_module(module, seed=2).ok


@pytest.mark.parametrize(("name", "case"), CASE_LIST, ids=[n for n, _ in CASE_LIST])
def test_every_displayed_form_is_true(name, case):
    """The op's forward display equals its value, and each argument's share of the adjoint
    (by name and as computed) equals v̄ⱼ ∂vⱼ/∂vᵢ, at random points: the forms the document
    prints are checked here for every op, whatever example uses them."""
    params, inputs, attrs = case
    program = program_of(name, params, inputs, attrs)
    derivation = derivation_of(program)
    program = derivation.program
    eqn = next(e for e in program.eqns if e.out == "out")
    shapes = [program.shape(a) for a in eqn.args]
    out = sympy.Symbol("out")
    lines = [Line("forward", (out, OPS[name].display(list(eqn.args), dict(eqn.attrs), shapes)))]
    for i, arg in enumerate(eqn.args):
        if program.vars[arg].role != "param":
            continue  # a loss's target: never differentiated
        named, product = OPS[name].display_adjoint(eqn, i, program)
        term = ChainTerm(out, sympy.Symbol(arg))
        lines.append(
            Line(f"adjoint {i}", (term, product, *([named] if named is not None else [])))
        )
    result = verify(derivation, lines)
    assert result.lines == len(lines)
    assert not result.failures, result.failures


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed")
def test_every_latex_form_compiles(tmp_path):
    """One document with every op's forward form and adjoint, and every function."""
    lines = []
    for name, cases in CASES.items():
        for params, inputs, attrs in cases:
            program = program_of(name, params, inputs, attrs)
            derivation = derivation_of(program)
            pr = printers_for(derivation)
            eqn = next(e for e in program.eqns if e.out == "out")
            shapes = [program.shape(a) for a in eqn.args]
            forward = OPS[name].latex(list(eqn.args), {**dict(eqn.attrs), "shapes": shapes}, pr)
            lines.append(rf"\mathrm{{out}} &= {forward}")
            for i in range(len(eqn.args)):
                named, product = OPS[name].latex_adjoint(eqn, i, derivation.program, pr)
                lines += [f"&= {named}" for _ in [named] if named] + [f"&= {product}"]
    z, w = sympy.symbols("z w")
    pr = printers_for(derivation)
    for entry in TABLE.values():
        lines.append(f"&= {pr.latex(entry(*(z, w)[: entry.arity]))}")
        lines.append(f"&= {pr.latex(sympy.diff(entry(*(z, w)[: entry.arity]), z))}")
    body = " \\\\\n".join(lines)
    tex = tmp_path / "forms.tex"
    tex.write_text(
        "\\documentclass{article}\n\\usepackage{amsmath,amssymb}\n\\begin{document}\n"
        f"\\begin{{align*}}\n{body}\n\\end{{align*}}\n\\end{{document}}\n"
    )
    run = subprocess.run(
        ["pdflatex", "-halt-on-error", "-interaction=nonstopmode", tex.name],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-3000:]


def test_activations_are_the_flagged_functions():
    from symbp.ir.functions import ACTIVATIONS

    assert set(ACTIVATIONS) == {n for n, e in TABLE.items() if e.activation}
    assert list(itertools.islice(ACTIVATIONS, 3)) == ["identity", "sigmoid", "tanh"]

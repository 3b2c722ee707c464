"""Every displayed line is true: the line verifier over every example in every notation.

Each line of a document holds its sides as SymPy expressions (``symbp.ir.display``); the
verifier (``symbp.analysis.lines``) evaluates them on small concrete arrays and compares them
at random points, with the true adjoints computed entry by entry from each op's scalar
meaning. These tests run it over every example × notation, show that it catches the false
lines an earlier document printed, and check what a reader needs besides truth: every symbol
defined before it is used.
"""

from __future__ import annotations

import functools

import pytest
import sympy
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings

from symbp.analysis.lines import Scene, verify
from symbp.cli import main
from symbp.derivation import Derivation, derive
from symbp.emit.latex import Section, document, printers_for, render_latex
from symbp.emit.latex_hvp import hvp_section
from symbp.emit.latex_notation import NOTATIONS
from symbp.errors import SpecError
from symbp.front.spec import load, loads
from symbp.ir import display as d
from symbp.ir.display import Line
from symbp.resources import example_specs
from tests.conftest import ROOT
from tests.test_graph_oracle import graphs

GRAPHS = [p.stem for p in example_specs() if load(p).graph is not None]
CASES = [
    (p.stem, notation)
    for p in example_specs()
    for notation in NOTATIONS
    if not (p.stem in GRAPHS and notation == "seed002")
]


@functools.cache
def derivation_of(stem: str) -> Derivation:
    return derive(load(ROOT / "examples" / f"{stem}.toml"))


@functools.cache
def scene_of(stem: str) -> Scene:
    """One scene per example, shared by its notations (the scene depends on the model only)."""
    return Scene(derivation_of(stem))


@functools.cache
def document_of(stem: str, notation: str):
    return document(derivation_of(stem), notation, sections=[hvp_section])


@pytest.mark.parametrize(("stem", "notation"), CASES, ids=[f"{s}-{n}" for s, n in CASES])
def test_every_line_of_every_document_is_true(stem, notation):
    """Both sides (every side) of every displayed line agree, in shape and at 3 random
    points to 50 digits; a line that cannot be evaluated fails."""
    derivation = derivation_of(stem)
    lines = document_of(stem, notation).lines()
    result = verify(derivation, lines, scene=scene_of(stem))
    assert result.lines == len(lines) > 15
    assert not result.failures, "\n\n".join(result.failures[:5])


@pytest.mark.parametrize("stem", GRAPHS)
def test_seed002_is_refused_for_a_graph_and_seed003_applies(stem):
    """A notation asked of a [graph]: seed 002's (a network's layers in column vectors) is
    refused with the reason; seed 003's, backprop on any computation graph, applies."""
    with pytest.raises(SpecError, match=r"--notation seed002 writes the layers of a \[network\]"):
        document(derivation_of(stem), "seed002")
    assert document_of(stem, "seed003").lines()


# ---------------------------------------------------------------- it catches false lines


def _check(derivation: Derivation, *sides: sympy.Basic) -> list[str]:
    return verify(derivation, [Line("", tuple(sides))]).failures


def test_a_vector_set_equal_to_a_scalar_fails():
    """swish_regression's scalar c is added to every entry of p: c̄ = 𝟏ᵀp̄, not c̄ = p̄ (the
    line an earlier document printed); the verifier sees the shapes differ."""
    swish = derivation_of("swish_regression")
    c, p = sympy.Symbol("c"), sympy.Symbol("p")
    assert "sides of different shapes" in _check(swish, d.Bar(c), d.Bar(p))[0]
    ones = d.Ones(sympy.Symbol("m", integer=True, positive=True))
    assert not _check(swish, d.Bar(c), d.MatProd(d.Tr(ones), d.Bar(p)))
    assert "c̄" not in render_latex(swish)  # the document's own line is the sum
    tex = render_latex(swish)
    assert r"\bar{c} &= \bar{p}\,\frac{\partial p}{\partial c}" in tex
    assert r"&= {\mathbf{1}}^{\top} \bar{p}" in tex


def test_a_negation_is_not_a_subtraction():
    """A step that negates a sum: its adjoint is −L̄ (an earlier document printed L̄ − 1)."""
    derivation = derive(
        loads(
            'name = "neg"\n[graph]\nparams = { W = "3 x 2" }\n'
            'steps = ["s = sum(W * W)", "L = -s"]\nloss = "L"\n'
        )
    )
    s, loss = sympy.Symbol("s"), sympy.Symbol("L")
    assert _check(derivation, d.Bar(s), d.Bar(loss) - 1)
    assert not _check(derivation, d.Bar(s), -d.Bar(loss))
    tex = render_latex(derivation)
    assert r"\bar{s} &= \bar{L}\,\frac{\partial L}{\partial s} \nonumber \\" in tex
    assert r"&= - \bar{L}" in tex and r"\bar{L} - 1" not in tex
    assert not verify(derivation, document(derivation).lines()).failures


def test_a_product_in_the_wrong_order_fails():
    softmax = derivation_of("softmax_two_layer")
    a1, dz2 = sympy.Symbol("A1"), sympy.Symbol("dZ2")
    w2 = sympy.Symbol("W2")
    assert not _check(softmax, d.Bar(w2), d.MatProd(d.Tr(a1), dz2))
    assert "different shapes" in _check(softmax, d.Bar(w2), d.MatProd(d.Tr(dz2), a1))[0]
    assert "differs" in _check(softmax, d.Bar(w2), 2 * d.MatProd(d.Tr(a1), dz2))[0]


def test_a_missing_one_over_m_fails():
    """The 1/m of the mean, applied once: dropping it is caught (the batch has 2 samples)."""
    softmax = derivation_of("softmax_two_layer")
    z2, t = sympy.Symbol("Z2"), sympy.Symbol("T")
    m = sympy.Symbol("m", integer=True, positive=True)
    assert not _check(softmax, d.Bar(z2), (d.Softmax(z2) - t) / m)
    assert "differs" in _check(softmax, d.Bar(z2), d.Softmax(z2) - t)[0]


def test_a_line_that_cannot_be_evaluated_fails():
    logistic = derivation_of("logistic_l2")
    assert "cannot be evaluated" in _check(logistic, sympy.Symbol("w"), sympy.Symbol("nope"))[0]
    assert "fewer than two sides" in _check(logistic, sympy.Symbol("w"))[0]


# ---------------------------------------------------------------- readable, not only true


def _free_names(expr: sympy.Basic, names: set[str]) -> set[str]:
    return {s.name for s in expr.free_symbols if s.name in names}


@pytest.mark.parametrize(("stem", "notation"), CASES, ids=[f"{s}-{n}" for s, n in CASES])
def test_every_symbol_is_defined_before_it_is_used(stem, notation):
    """A value is used only after the line that computes it (inputs, parameters and constants
    are in the table); a share v̄^{(j)} only after its own line; a code temporary never (the
    mathematics writes it out)."""
    derivation = derivation_of(stem)
    program = derivation.program
    doc = document_of(stem, notation)
    names = doc.notation.names
    defined = {*program.inputs, *program.params, *program.consts, *doc.notation.hidden}
    forward = {e.out for e in program.forward_eqns}
    backward = {e.out for e in program.backward_eqns}
    seen_tex = ""
    for line in doc.lines():
        first = line.sides[0]
        if isinstance(first, sympy.Symbol) and first.name in forward:
            defined.add(first.name)  # the line that computes it
        used = set().union(*(_free_names(s, set(program.vars)) for s in line.sides))
        for name in used:
            if name in backward:
                assert name in doc.notation.adjoints, (name, line.tex)
                if name not in {"d" + v for v in program.vars}:  # a share v̄^{(j)}
                    assert names[name] + " &=" in seen_tex, (name, line.tex)
            else:
                assert name in defined, (name, line.tex)
        seen_tex += line.tex + "\n"


def test_a_section_from_elsewhere_is_verified_with_the_rest():
    """Another part of symbp (the HVP derivation) adds a section through ``sections=``: its
    lines are printed, handed to the verifier, and a false one is caught."""
    logistic = derivation_of("logistic_l2")
    w, z, x = (sympy.Symbol(n) for n in "wzx")

    def ours(writer):
        section = Section("A section of its own")
        section.text("The weight's share through z, twice over:")
        section.show([writer.equation([2 * d.ChainTerm(z, w), 2 * d.Bar(z) * x])])
        return section

    def wrong(writer):
        section = Section("A wrong one")
        section.show([writer.equation([d.ChainTerm(z, w), d.Bar(z)])])
        return section

    doc = document(logistic, sections=[ours])
    assert doc.sections[-2].title == "A section of its own"  # before the cost table
    assert not verify(logistic, doc.lines()).failures
    tex = render_latex(logistic, sections=[ours])
    assert r"\section{A section of its own}" in tex
    assert r"2 \bar{z}\,\frac{\partial z}{\partial w} &= 2 \bar{z} x" in tex
    bad = document(logistic, sections=[wrong]).lines()
    assert len(verify(logistic, bad).failures) == 1
    assert printers_for(logistic).latex(d.Bar(z)) == r"\bar{z}"


def test_cli_says_which_notations_exist():
    result = CliRunner().invoke(main, ["latex", "--help"])
    assert "seed002" in result.output and "seed003" in result.output


# ---------------------------------------------------------------- beyond the examples

SHAPES = {
    "a row times a column, less a scalar": (
        'inputs = { X = "m x 3", r = "1 x 3", c = "m x 1" }\n'
        'params = { W = "3 x 3", s = "scalar" }\n'
        'steps = ["A = X @ W + r * c - s", "L = sum(A**2) / 2"]'
    ),
    "sums and means along an axis": (
        'inputs = { X = "m x 3" }\nparams = { W = "3 x 4", v = "4" }\n'
        'steps = ["H = tanh(X @ W)", "s = sum(H, axis=1)", "q = mean(H, axis=0)", '
        '"L = sum(s**2) + sum(q * v)"]'
    ),
    "vectors on either side of a product": (
        'inputs = { x = "3", t = "scalar" }\nparams = { W = "3 x 2", u = "2", a = "3" }\n'
        'steps = ["h = relu(x @ W)", "y = h @ u + a @ x", "L = (y - t)**2"]'
    ),
    "transposes, abs and maximum": (
        'inputs = { X = "m x 3" }\nparams = { W = "3 x 3", b = "3" }\n'
        'steps = ["Y = X @ W.T + b", "Z = Y.T @ X", "L = sum(abs(Z)) + sum(maximum(Y, X))"]'
    ),
    "a size-1 axis summed away": (
        'params = { p1 = "3 x 2", p2 = "3 x 1" }\n'
        'steps = ["v5 = p1 * p1", "v6 = sum(p2, axis=-2)", "v7 = v6 * v5", "E = sum(tanh(v7))"]'
    ),
}


@pytest.mark.parametrize("body", SHAPES.values(), ids=SHAPES.keys())
def test_documents_of_graphs_of_every_shape_are_true(body):
    """Broadcasting rows, columns and scalars, reductions along either axis, vectors on the
    left of a product, transposes of parameters and of values, functions of two arguments."""
    loss = "E" if '"E = ' in body else "L"
    derivation = derive(loads(f'name = "g"\n[graph]\n{body}\nloss = "{loss}"\n'))
    result = verify(derivation, document(derivation, sections=[hvp_section]).lines())
    assert result.lines > 10 and not result.failures, "\n".join(result.failures[:3])


def _random_graph_document_is_true(g) -> None:
    derivation = derive(loads(g.spec()))
    doc = document(derivation, timeout=30, sections=[hvp_section])
    result = verify(derivation, doc.lines())
    assert not result.failures, g.spec() + "\n".join(result.failures[:3])


@pytest.mark.slow
@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(g=graphs())
def test_documents_of_300_random_graphs_are_true(g):
    """The long run of the test below (pytest -m slow)."""
    _random_graph_document_is_true(g)


@settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
@given(g=graphs())
def test_documents_of_random_graphs_are_true(g):
    """The graph oracle's random graphs: every line of each one's document is true, the
    Hessian-vector product's section included."""
    _random_graph_document_is_true(g)


NETWORKS = {
    "one layer, sigmoid cross-entropy, summed": (
        [(2, "identity", True)],
        "sigmoid_binary_cross_entropy",
        "sum",
        None,
    ),
    "three layers, squared error through a sigmoid, mixed biases, L2": (
        [(3, "tanh", True), (3, "relu", False), (2, "sigmoid", True)],
        "squared_error",
        "mean",
        0.01,
    ),
    "two layers without biases, softmax, L2": (
        [(3, "softplus", False), (3, "identity", False)],
        "softmax_cross_entropy",
        "mean",
        0.1,
    ),
    "two layers, the second without bias, sigmoid cross-entropy": (
        [(3, "tanh", True), (2, "identity", False)],
        "sigmoid_binary_cross_entropy",
        "mean",
        None,
    ),
}


@pytest.mark.parametrize("notation", NOTATIONS)
@pytest.mark.parametrize("case", NETWORKS.values(), ids=NETWORKS.keys())
def test_documents_of_networks_of_every_kind_are_true(case, notation):
    """Seed 002's and seed 003's statements for every loss, with and without biases (mixed
    too), L2 and either reduction, one layer to three: each general statement at every
    layer and sample, each statement for the model."""
    layers, loss, reduction, l2 = case
    rows = ", ".join(
        f'{{ units = {u}, activation = "{a}", bias = {str(b).lower()} }}' for u, a, b in layers
    )
    text = (
        f'name = "n"\n[network]\ninputs = 2\nlayers = [{rows}]\nloss = "{loss}"\n'
        f'reduction = "{reduction}"\n' + (f"l2 = {l2}\n" if l2 else "")
    )
    derivation = derive(loads(text))
    result = verify(derivation, document(derivation, notation, sections=[hvp_section]).lines())
    assert result.lines > 15 and not result.failures, "\n".join(result.failures[:3])


MASK_AS_A_VALUE = """name = "mask"
[graph]
inputs = { x2 = "m x n" }
params = { p1 = "n x 1" }
steps = ["v3 = p1 + p1", "v4 = maximum(p1, v3)", "v6 = maximum(v3, v4)", "E = sum(tanh(v6))"]
loss = "E"
"""


def test_a_mask_held_as_a_value_is_evaluated():
    """Regression (found by the random graphs in CI): the HVP program keeps maximum's mask
    (p₁ ≥ v₃) ∨ (v₃ ≥ v₄) as a value of its own; the verifier evaluates it as 1 or 0."""
    derivation = derive(loads(MASK_AS_A_VALUE))
    lines = document(derivation, sections=[hvp_section]).lines()
    assert any(isinstance(line.sides[-1], sympy.logic.boolalg.BooleanFunction) for line in lines)
    result = verify(derivation, lines)
    assert not result.failures, result.failures[:3]

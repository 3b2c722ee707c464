"""The seeds' statements: seed 001's and seed 003's networks as examples (their modules
against the seeds' closed forms), ``bias = false``, and every document compiled and read back
(BP1–BP4, cases 1 and 2, the repetition counts), with no overfull line in any log."""

from __future__ import annotations

import functools
import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from symbp.analysis.gradcheck import check_module
from symbp.derivation import derive
from symbp.emit.drawing import draw
from symbp.emit.latex import render_latex
from symbp.emit.latex_hvp import hvp_section
from symbp.errors import SpecError
from symbp.front.spec import load, loads
from symbp.resources import example_specs
from tests.conftest import ROOT
from tests.test_graph_oracle import graphs
from tests.test_latex import compile_and_read, squeeze
from tests.test_latex_lines import CASES

PAGES: dict[str, int] = {}


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


# ---------------------------------------------------------------- seed 001


def test_seed001_example_against_its_cases(build_module):
    """lee_backprop: the forward pass gives ∂z/∂w (the input on w's edge), the backward pass
    ∂C/∂z′ and ∂C/∂z″ by case 1 and ∂C/∂z by case 2, written here from the seed."""
    text = (ROOT / "examples" / "lee_backprop.toml").read_text()
    module, _ = build_module(text)
    rng = np.random.default_rng(11)
    for _ in range(5):
        p = {k: rng.normal() for k in ("w1", "w2", "b", "w3", "b_p", "w4", "b_pp")}
        x1, x2, t1, t2 = rng.normal(size=4)
        z = p["w1"] * x1 + p["w2"] * x2 + p["b"]
        a = sigmoid(z)
        z_p, z_pp = p["w3"] * a + p["b_p"], p["w4"] * a + p["b_pp"]
        y1, y2 = sigmoid(z_p), sigmoid(z_pp)
        dz_p = y1 * (1 - y1) * (y1 - t1)  # case 1: z′ feeds the output y₁
        dz_pp = y2 * (1 - y2) * (y2 - t2)
        dz = a * (1 - a) * (p["w3"] * dz_p + p["w4"] * dz_pp)  # case 2
        expected = {
            "w1": x1 * dz,  # ∂z/∂w₁ = x₁, the input on w₁'s edge
            "w2": x2 * dz,
            "b": dz,
            "w3": a * dz_p,
            "b_p": dz_p,
            "w4": a * dz_pp,
            "b_pp": dz_pp,
        }
        loss, grads = module.loss_and_grad(p, x1, x2, t1, t2)
        assert loss == pytest.approx(((y1 - t1) ** 2 + (y2 - t2) ** 2) / 2, rel=1e-12)
        for k, v in expected.items():
            assert grads[k] == pytest.approx(v, rel=1e-10, abs=1e-14), k


# ---------------------------------------------------------------- seed 003 and bias = false


def test_seed003_network_without_biases_against_the_closed_form(build_module):
    """cmu_two_layer: h(X) = relu(XW₁)W₂, no biases; ∇W₂ = σ(XW₁)ᵀ(S − I_y)/m and
    ∇W₁ = Xᵀ((S − I_y)/m W₂ᵀ ∘ σ′(XW₁)) (seed 003)."""
    module, derivation = build_module((ROOT / "examples" / "cmu_two_layer.toml").read_text())
    assert list(module.PARAM_SHAPES) == ["W1", "W2"]
    assert derivation.program.params == ["W1", "W2"]
    rng = np.random.default_rng(5)
    params = module.init_params(rng=0)
    assert set(params) == {"W1", "W2"}
    m = 7
    x = rng.normal(size=(m, 4))
    y = rng.integers(0, 3, size=m)
    onehot = np.eye(3)[y]
    hidden = np.maximum(x @ params["W1"], 0)
    logits = hidden @ params["W2"]
    s = np.exp(logits - logits.max(axis=1, keepdims=True))
    s /= s.sum(axis=1, keepdims=True)
    g = (s - onehot) / m
    loss, grads = module.loss_and_grad(params, x, y)
    assert loss == pytest.approx(-np.sum(onehot * np.log(s)) / m, rel=1e-12)
    np.testing.assert_allclose(grads["W2"], hidden.T @ g, rtol=1e-10, atol=1e-14)
    relu_prime = (x @ params["W1"] > 0).astype(float)
    np.testing.assert_allclose(
        grads["W1"], x.T @ ((g @ params["W2"].T) * relu_prime), rtol=1e-10, atol=1e-14
    )


def test_bias_false_in_a_spec():
    """``bias = false`` drops a layer's bias from the spec, the Program, the module and its
    initialization; anything but a boolean is refused, naming the key."""
    spec = (
        'name = "nb"\n[network]\ninputs = 3\nlayers = [\n'
        '  { units = 4, activation = "tanh", bias = false },\n'
        '  { units = 2, activation = "identity" },\n]\nloss = "squared_error"\n'
    )
    derivation = derive(loads(spec))
    assert derivation.program.params == ["W1", "W2", "b2"]
    assert [e.op for e in derivation.program.forward_eqns][:3] == ["matmul", "ewise", "affine"]
    with pytest.raises(SpecError, match=r"network\.layers\[0\]\.bias: must be true or false"):
        loads(spec.replace("bias = false", 'bias = "no"'))


def test_bias_false_module_checks(build_module):
    spec = (
        'name = "nb2"\n[network]\ninputs = 3\nlayers = [\n'
        '  { units = 4, activation = "sigmoid", bias = false },\n'
        '  { units = 2, activation = "identity", bias = false },\n]\n'
        'loss = "softmax_cross_entropy"\nl2 = 0.01\n'
    )
    module, _ = build_module(spec)
    assert check_module(module, seed=3).ok
    assert set(module.init_params(rng=1)) == {"W1", "W2"}


# ---------------------------------------------------------------- every document, read back


@functools.cache
def _pdf(stem: str, notation: str, directory) -> tuple[str, int, str]:
    derivation = derive(load(ROOT / "examples" / f"{stem}.toml"))
    (directory / f"{stem}-graph.pdf").write_bytes(draw(derivation, "pdf", titled=False))
    text = render_latex(derivation, notation, sections=[hvp_section])
    return compile_and_read(text, directory, f"{stem}-{notation}")


@pytest.mark.tex
@pytest.mark.parametrize(("stem", "notation"), CASES, ids=[f"{s}-{n}" for s, n in CASES])
def test_every_document_compiles_without_an_overfull_line(stem, notation, tmp_path):
    text, pages, log = _pdf(stem, notation, tmp_path)
    overfull = re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)
    assert not overfull, f"{stem} {notation}: overfull lines {overfull}"
    assert "Overfull \\vbox" not in log
    flat = squeeze(text)
    assert "Howtoreadthis" in flat and "Thenaivederivation" in flat
    assert "TheHessian-vectorproduct" in flat  # every document compiles with --hvp's section
    network = load(ROOT / "examples" / f"{stem}.toml").network
    if network is not None and notation == "seed002":
        for bp in ("(BP1", "(BP4)"):
            assert bp in flat, bp
        if len(network.layers) > 1:
            assert "(BP2)" in flat
        if any(layer.bias for layer in network.layers):
            assert "(BP3)" in flat
        assert re.search(r"C=(1m)?.?xCx", flat)  # the batch's cost: the mean of the Cₓ
        if network.loss == "softmax_cross_entropy":
            assert "δL=aL−t(" in flat and "∂aLj∂zLi=aLjIji−aLi" in flat
    if network is not None and notation == "seed003":
        assert "Gi=∂ℓ∂Zi" not in flat  # G is defined, once, in words
        # pdftotext keeps a bracket of normal size and drops a large one
        assert re.search(r"Zi\+1=σi\(?ZiWi", flat) and re.search(r"Gi=\(?Gi\+1⊙σ′i\(?ZiWi", flat)
    PAGES[f"{stem}-{notation}"] = pages


@pytest.mark.tex
def test_seed_statements_read_back(tmp_path):
    """What a lecturer checks against the seeds, in the PDFs' text."""
    logistic, _, _ = _pdf("logistic_l2", "seed003", tmp_path)
    flat = squeeze(logistic)
    assert "(1)4times:b+wx" in flat and "(2)twice:(σ(b+wx)−t)σ′(b+wx)" in flat
    assert "6times:b+wx" in flat and "6times:σ(b+wx)" in flat
    assert "∂E∂z=σ′(z)∂E∂y=σ′(z)(y−t)(case1)" in flat
    lee, _, _ = _pdf("lee_backprop", "seed003", tmp_path)
    flat = squeeze(lee)
    assert "∂z∂w1=x1" in flat and "∂z′∂w3=a" in flat  # the input on the weight's edge
    assert "∂C∂z′=σ′z′∂C∂y1=σ′z′(y1−t1)(case1)" in flat
    assert "∂C∂z=σ′(z)∂C∂a=σ′(z)w3∂C∂z′+w4∂C∂z′′(case2)" in flat
    cmu, _, _ = _pdf("cmu_two_layer", "seed003", tmp_path)
    flat = squeeze(cmu)
    # pdftotext drops the large brackets: Gᵢ = (G_{i+1} ⊙ σ′ᵢ(ZᵢWᵢ)) Wᵢᵀ, ∇W₂ = σ(XW₁)ᵀ(S − I_y)/m
    assert "Gi=Gi+1⊙σ′i(ZiWi)Wi⊤(" in flat and "∂ℓ∂Wi=Zi⊤Gi+1⊙σ′i(ZiWi)(" in flat
    assert "∂ℓ∂W2=relu(Z1W1)⊤S−Iym" in flat


@pytest.mark.tex
def test_every_example_has_a_document(tmp_path):
    assert {p.stem for p in example_specs()} <= {s for s, _ in CASES}


SHARE_OF_A_SHARE = """name = "userfn"
[functions]
cube = "z**3 + sin(z)"
[graph]
inputs = { X = "m x 3", T = "m x 2" }
params = { W = "3 x 2", c = "scalar" }
steps = ["Z = cube(X @ W) * c", "D = Z - T", "L = mean(D**2) + c**2"]
loss = "L"
"""


@pytest.mark.tex
def test_a_share_of_a_share_compiles(tmp_path):
    """Regression: ĉ's share through Z̄ had a share of its own, printed {{ĉ}^{(Z̄)}}^{(all)},
    which TeX refuses (double superscript); it is ĉ^{(Z̄)(all)}."""
    text = render_latex(derive(loads(SHARE_OF_A_SHARE)), sections=[hvp_section])
    assert r"{\hat{c}}^{(\bar{Z}_{\mathrm{cube}})(\text{all})}" in text
    flat = squeeze(compile_and_read(text, tmp_path, "userfn")[0])
    assert "TheHessian-vectorproduct" in flat


@pytest.mark.tex
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(g=graphs())
def test_hvp_documents_of_random_graphs_compile(g, tmp_path_factory):
    """Every name the HVP section makes (tangents, hats, shares of shares, their powers and
    transposes) is LaTeX that compiles (pdflatex halts on the first error)."""
    text = render_latex(derive(loads(g.spec())), timeout=30, sections=[hvp_section])
    directory = tmp_path_factory.mktemp("hvp")
    flat = squeeze(compile_and_read(text, directory, "g")[0])
    assert "TheHessian-vectorproduct" in flat, g.spec()


LONG_BRANCHES = """name = "branches"
[graph]
params = { p1 = "n x 1" }
steps = ["v2 = abs(p1)", "v7 = gelu(p1)", "E = sum(tanh(v2)) + sum(tanh(v7))"]
loss = "E"
"""


@pytest.mark.tex
def test_a_piecewise_with_long_branches_breaks_them_over_rows(tmp_path):
    """Regression: p̄'s cases (abs′ beside gelu′) ran 161pt off the page in one row each; each
    branch's value now breaks over rows of its own, and every line stays true."""
    derivation = derive(loads(LONG_BRANCHES))
    text = render_latex(derivation)
    assert r"\begin{cases} \begin{aligned}[t] &" in text
    _, _, log = compile_and_read(text, tmp_path, "branches")
    widths = [float(w) for w in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]
    assert max(widths, default=0) < 40, widths

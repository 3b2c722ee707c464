"""[graph] specs: seed 004's closed forms, the graph examples, constants, sizes."""

from __future__ import annotations

import numpy as np
import pytest

from symbp.build import derive
from symbp.codegen import generate
from symbp.gradcheck import check_module, load_module
from symbp.spec import load
from tests.conftest import ROOT

GRAPH_EXAMPLES = ["logistic_l2", "residual_block", "tied_autoencoder", "swish_regression"]


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    out = tmp_path_factory.mktemp("graphs")
    loaded = {}
    for name in GRAPH_EXAMPLES:
        derivation = derive(load(ROOT / "examples" / f"{name}.toml"))
        path = out / f"{name}.py"
        path.write_text(generate(derivation), encoding="utf-8")
        loaded[name] = load_module(path)
    return loaded


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


@pytest.mark.parametrize(
    ("w", "b", "x", "t", "lam"), [(0.3, -0.2, 1.5, 1.0, 0.1), (-1.2, 0.7, -0.4, 0.0, 2.5)]
)
def test_seed004_closed_forms(modules, w, b, x, t, lam):
    """∂E/∂w = (σ(wx+b) − t)σ′(wx+b)x + λw and ∂E/∂b = (σ(wx+b) − t)σ′(wx+b) (seed 004)."""
    module = modules["logistic_l2"]
    params = {"w": np.float64(w), "b": np.float64(b)}
    loss, grads = module.loss_and_grad(params, x, t, lam=lam)
    s = _sigmoid(w * x + b)
    shared = (s - t) * s * (1 - s)
    assert loss == pytest.approx(0.5 * (s - t) ** 2 + lam * 0.5 * w**2, rel=1e-14)
    assert grads["w"] == pytest.approx(shared * x + lam * w, rel=1e-13)
    assert grads["b"] == pytest.approx(shared, rel=1e-13)
    assert np.shape(grads["w"]) == ()


def test_constants_are_keywords_with_their_defaults(modules):
    module = modules["logistic_l2"]
    params = {"w": np.float64(0.5), "b": np.float64(0.1)}
    default, _ = module.loss_and_grad(params, 1.0, 0.0)
    explicit, _ = module.loss_and_grad(params, 1.0, 0.0, lam=0.1)
    changed, _ = module.loss_and_grad(params, 1.0, 0.0, lam=1.0)
    assert default == explicit
    assert changed == pytest.approx(default + 0.9 * 0.5 * 0.25)


@pytest.mark.parametrize("name", GRAPH_EXAMPLES)
@pytest.mark.parametrize("batch", [1, 5])
def test_graph_examples_pass_finite_differences(modules, name, batch):
    result = check_module(modules[name], batch=batch, seed=batch)
    assert result.ok, result.table()


def test_named_sizes_stay_symbolic_and_integer_sizes_are_checked(modules):
    module = modules["residual_block"]
    params = module.init_params(0)
    for m in (1, 7, 64):
        loss, _ = module.loss_and_grad(params, np.zeros((m, 4)), np.eye(3)[np.arange(m) % 3])
        assert np.isfinite(loss)
    with pytest.raises(ValueError, match=r"X must have shape \(m, 4\)"):
        module.forward(params, np.zeros((3, 5)), np.eye(3))


def test_a_value_used_twice_sums_its_contributions(modules):
    """Tied weights: W's gradient is the encoder's plus the decoder's, checked by hand."""
    module = modules["tied_autoencoder"]
    rng = np.random.default_rng(0)
    params = {k: rng.standard_normal(v) for k, v in module.PARAM_SHAPES.items()}
    X = rng.standard_normal((4, 6))
    _, grads = module.loss_and_grad(params, X, decay=0.0)
    W, b, c = params["W"], params["b"], params["c"]
    H = _sigmoid(X @ W + b)
    Y = H @ W.T + c
    dY = (Y - X) / 4
    dH = dY @ W
    dpre = dH * H * (1 - H)
    np.testing.assert_allclose(grads["W"], X.T @ dpre + dY.T @ H, rtol=1e-12)


def test_user_function_as_network_activation(build_module):
    """A [functions] entry works as a layer activation; its derivative is SymPy's."""
    spec = (
        'name = "swish_net"\n[functions]\nswish = "z * sigmoid(z)"\n'
        '[network]\ninputs = 3\nlayers = [{ units = 4, activation = "swish" }, '
        '{ units = 2, activation = "identity" }]\nloss = "softmax_cross_entropy"\n'
    )
    module, _ = build_module(spec)
    assert check_module(module, batch=4, seed=1).ok
    z = np.linspace(-3, 3, 7)
    np.testing.assert_allclose(module.swish(z), z / (1 + np.exp(-z)), rtol=1e-14)

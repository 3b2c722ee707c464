"""Generated network modules against finite differences and the seeds' closed forms."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from symbp.analysis.gradcheck import check_module
from symbp.ir.functions import ACTIVATIONS
from tests.conftest import network_spec

LOSSES = ["squared_error", "softmax_cross_entropy", "sigmoid_binary_cross_entropy"]


def _grid():
    """Every activation × every loss, and every activation × depth 1-4, with the depth,
    reduction and L2 setting rotating so each loss meets each of them (63 networks)."""
    cases = []
    for i, (act, loss) in enumerate(itertools.product(ACTIVATIONS, LOSSES)):
        cases.append((act, loss, 1 + i % 4, ("mean", "sum")[i % 2], (None, 0.05)[(i // 2) % 2]))
    for i, (act, depth) in enumerate(itertools.product(ACTIVATIONS, range(1, 5))):
        cases.append(
            (act, LOSSES[i % 3], depth, ("sum", "mean")[(i // 3) % 2], (0.1, None)[i % 2])
        )
    return cases


GRID = _grid()


def _layers(act: str, loss: str, depth: int) -> list[tuple[int, str]]:
    widths = [4, 3, 5, 3][: depth - 1]
    last = act if loss == "squared_error" else "identity"
    return [(w, act) for w in widths] + [(2, last)]


def test_grid_covers_the_required_combinations():
    assert len(GRID) >= 60
    assert {c[0] for c in GRID} == set(ACTIVATIONS)
    assert {c[2] for c in GRID} == {1, 2, 3, 4}
    for loss in LOSSES:
        mine = [c for c in GRID if c[1] == loss]
        assert {c[3] for c in mine} == {"mean", "sum"}
        assert {c[4] is None for c in mine} == {True, False}


@pytest.mark.parametrize(("act", "loss", "depth", "reduction", "l2"), GRID)
def test_network_gradients_match_finite_differences(build_module, act, loss, depth, reduction, l2):
    module, _ = build_module(
        network_spec(3, _layers(act, loss, depth), loss, reduction=reduction, l2=l2)
    )
    result = check_module(module, batch=3, seed=depth)
    assert result.ok, result.table()
    assert result.max_rel_error <= 1e-6


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_seed000_two_layer_squared_loss_closed_form(build_module):
    """∂J/∂W[1] = (W[2]ᵀ ∂J/∂o ⊙ σ′(z)) xᵀ, J = ½(y − o)², for one sample (seed 000).

    The seed writes column vectors (z = W x + b); symbp's W1 is that W transposed.
    """
    module, _ = build_module(network_spec(3, [(4, "sigmoid"), (1, "identity")], "squared_error"))
    rng = np.random.default_rng(1)
    params = {k: rng.standard_normal(v) for k, v in module.PARAM_SHAPES.items()}
    x = rng.standard_normal(3)
    y = rng.standard_normal(1)
    _, grads = module.loss_and_grad(params, x[None, :], y[None, :])
    W1, b1, W2, b2 = (
        params[k].T if params[k].ndim == 2 else params[k] for k in ("W1", "b1", "W2", "b2")
    )
    z = W1 @ x + b1
    a = _sigmoid(z)
    o = W2 @ a + b2
    dJ_do = -(y - o)
    dJ_dz = (W2.T @ dJ_do) * a * (1 - a)
    np.testing.assert_allclose(grads["W1"].T, np.outer(dJ_dz, x), rtol=1e-12)
    np.testing.assert_allclose(grads["b1"], dJ_dz, rtol=1e-12)
    np.testing.assert_allclose(grads["W2"].T, np.outer(dJ_do, a), rtol=1e-12)


def test_seed002_softmax_delta_is_output_minus_target(build_module):
    """δᴸ = aᴸ − t for softmax + cross-entropy, with the batch's 1/m applied once (seed 002)."""
    module, _derivation = build_module(network_spec(4, [(3, "identity")], "softmax_cross_entropy"))
    rng = np.random.default_rng(2)
    params = {k: rng.standard_normal(v) for k, v in module.PARAM_SHAPES.items()}
    X = rng.standard_normal((5, 4))
    labels = rng.integers(0, 3, size=5)
    T = np.eye(3)[labels]
    _, grads = module.loss_and_grad(params, X, T)
    Z = X @ params["W1"] + params["b1"]
    A = np.exp(Z) / np.exp(Z).sum(axis=1, keepdims=True)
    delta = (A - T) / 5
    np.testing.assert_allclose(grads["b1"], delta.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(grads["W1"], X.T @ delta, rtol=1e-12)
    _, grads_labels = module.loss_and_grad(params, X, labels)
    np.testing.assert_allclose(grads_labels["W1"], grads["W1"], rtol=1e-15)


def test_seed003_two_layer_gradient(build_module):
    """∇_{W₂} = σ(XW₁)ᵀ(S − I_y)/m for h(X) = σ(XW₁)W₂ with cross-entropy (seed 003)."""
    module, _ = build_module(
        network_spec(4, [(5, "relu"), (3, "identity")], "softmax_cross_entropy")
    )
    rng = np.random.default_rng(3)
    params = {k: rng.standard_normal(v) for k, v in module.PARAM_SHAPES.items()}
    params["b1"][:] = 0
    params["b2"][:] = 0
    X = rng.standard_normal((6, 4))
    y = rng.integers(0, 3, size=6)
    _, grads = module.loss_and_grad(params, X, y)
    H = np.maximum(X @ params["W1"], 0)
    logits = H @ params["W2"]
    S = np.exp(logits - logits.max(axis=1, keepdims=True))
    S /= S.sum(axis=1, keepdims=True)
    I_y = np.eye(3)[y]
    np.testing.assert_allclose(grads["W2"], H.T @ (S - I_y) / 6, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSSES)
def test_stable_at_extreme_preactivations(build_module, dtype, act, loss):
    """Pre-activations of ±1000: no NaN, no inf, no NumPy warning, and the dtype is kept."""
    module, _ = build_module(
        network_spec(
            2, [(3, act), (2, act if loss == "squared_error" else "identity")], loss, l2=0.01
        )
    )
    params = module.init_params(0, dtype=dtype)
    params["W1"][...] = np.array([[1.0, -1.0, 0.5], [0.0, 0.0, 0.0]], dtype=dtype)
    params["W2"][...] = np.array([[1.0, -1.0], [1.0, 1.0], [-1.0, 0.0]], dtype=dtype)
    X = np.array([[1000.0, 0.0], [-1000.0, 0.0], [0.0, 0.0]], dtype=dtype)
    T = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=dtype)
    with (
        np.errstate(over="raise", divide="raise", invalid="raise"),
        __import__("warnings").catch_warnings(),
    ):
        __import__("warnings").simplefilter("error")
        loss_value, grads = module.loss_and_grad(params, X, T)
        prediction = module.predict(params, X)
    assert np.asarray(loss_value).dtype == dtype
    assert np.isfinite(loss_value)
    assert prediction.dtype == dtype
    assert np.all(np.isfinite(prediction))
    for name, g in grads.items():
        assert g.dtype == dtype, name
        assert g.shape == params[name].shape
        assert np.all(np.isfinite(g)), name

"""Random ``[network]`` specs against a forward pass and finite differences written here.

The network is evaluated with this file's NumPy code (the reference functions and losses of
the graph oracle), so the generated module is compared with nothing of symbp's own.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symbp.ir.functions import ACTIVATIONS
from tests.conftest import network_spec
from tests.test_graph_oracle import LOSSES, REFERENCE

EXAMPLES = 150


@st.composite
def networks(draw):
    inputs = draw(st.integers(1, 5))
    depth = draw(st.integers(1, 4))
    loss = draw(st.sampled_from(sorted(LOSSES)))
    hidden = [
        (draw(st.integers(1, 6)), draw(st.sampled_from(ACTIVATIONS))) for _ in range(depth - 1)
    ]
    last = "identity" if loss != "squared_error" else draw(st.sampled_from(ACTIVATIONS))
    layers = [*hidden, (draw(st.integers(1, 4)), last)]
    reduction = draw(st.sampled_from(["mean", "sum"]))
    l2 = draw(st.sampled_from([None, 0.0, 0.3]))
    batch = draw(st.sampled_from([1, 3]))
    return inputs, layers, loss, reduction, l2, batch


def reference_loss(params, X, T, layers, loss, reduction, l2):
    a = X
    for i, (_, act) in enumerate(layers, start=1):
        a = REFERENCE[act](np, a @ params[f"W{i}"] + params[f"b{i}"])
    value = LOSSES[loss](np, a, T)  # the batch mean of the per-sample losses
    if reduction == "sum":
        value *= X.shape[0]
    if l2 is not None:
        value += l2 / 2 * sum(np.sum(params[f"W{i}"] ** 2) for i in range(1, len(layers) + 1))
    return float(value)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(net=networks(), seed=st.integers(0, 2**16))
def test_random_networks_match_an_independent_evaluation(build_module, net, seed):
    inputs, layers, loss, reduction, l2, batch = net
    module, _ = build_module(network_spec(inputs, layers, loss, reduction=reduction, l2=l2))
    rng = np.random.default_rng(seed)
    sizes = [inputs, *(units for units, _ in layers)]
    params = {}
    for i in range(1, len(layers) + 1):
        params[f"W{i}"] = rng.standard_normal((sizes[i - 1], sizes[i])) / np.sqrt(sizes[i - 1])
        params[f"b{i}"] = 0.5 * rng.standard_normal(sizes[i])
    X = rng.standard_normal((batch, inputs))
    outputs = sizes[-1]
    if loss == "softmax_cross_entropy":
        T = np.eye(outputs)[rng.integers(0, outputs, size=batch)]
    elif loss == "sigmoid_binary_cross_entropy":
        T = rng.uniform(0.05, 0.95, size=(batch, outputs))
    else:
        T = rng.standard_normal((batch, outputs))

    def f(p):
        return reference_loss(p, X, T, layers, loss, reduction, l2)

    value, grads = module.loss_and_grad(params, X, T, **({"l2": l2} if l2 is not None else {}))
    expected = f(params)
    assert abs(float(value) - expected) <= 1e-10 * max(1.0, abs(expected))
    for name, array in params.items():
        for idx in np.ndindex(array.shape):
            estimates = []
            for h in (1e-4, 2.5e-5):
                original = array[idx]
                values = []
                for shift in (2, 1, -1, -2):
                    array[idx] = original + shift * h
                    values.append(f(params))
                array[idx] = original
                estimates.append((-values[0] + 8 * values[1] - 8 * values[2] + values[3]) / 12 / h)
            if abs(estimates[0] - estimates[1]) > 1e-7 * max(1.0, abs(estimates[0])):
                continue  # a ReLU kink inside the step
            bp = float(grads[name][idx])
            error = abs(estimates[1] - bp) / max(abs(estimates[1]), abs(bp), 1e-4)
            assert error <= 1e-6, (net, name, idx, bp, estimates[1])

"""What generated modules accept: lists and numbers converted, targets that break a loss's
assumptions refused, every error a ValueError naming the argument (issues 11 and 10)."""

from __future__ import annotations

import numpy as np
import pytest

from symbp.analysis.gradcheck import check_module
from tests.conftest import network_spec

SOFTMAX = network_spec(3, [(4, "tanh"), (2, "identity")], "softmax_cross_entropy", name="soft")
SIGMOID = network_spec(
    3, [(4, "tanh"), (2, "identity")], "sigmoid_binary_cross_entropy", name="sig"
)
GRAPH = """name = "g"
[graph]
inputs = { X = "m x 3", T = "m x 2", P = "m x 2" }
params = { W = "3 x 2", v = "n" }
steps = [
  "Z = X @ W",
  "L = softmax_cross_entropy(Z, T) + sigmoid_binary_cross_entropy(Z, P) + sum(v**2)",
]
loss = "L"
"""
ROWS = np.array([[1.0, 0.0], [0.0, 1.0], [0.25, 0.75]])


@pytest.fixture
def net(build_module):
    module, _ = build_module(SOFTMAX)
    return module


@pytest.fixture
def graph(build_module):
    module, _ = build_module(GRAPH)
    return module


def X(rows: int = 3) -> np.ndarray:
    return np.random.default_rng(0).standard_normal((rows, 3))


def message(call) -> str:
    with pytest.raises(ValueError) as caught:
        call()
    return str(caught.value)


def test_lists_tuples_and_numbers_work_in_every_function(net):
    params = net.init_params(0)
    loss, grads = net.loss_and_grad(params, X(), [0, 1, 1])
    as_lists = {k: v.tolist() for k, v in params.items()}
    as_tuples = {k: tuple(np.atleast_1d(v).tolist()) for k, v in params.items() if v.ndim == 1}
    for given in (as_lists, dict(params, **as_tuples)):
        same_loss, same = net.loss_and_grad(given, X().tolist(), (0, 1, 1))
        assert same_loss == loss
        _, cache = net.forward(given, tuple(map(tuple, X())), [0, 1, 1])
        for name, value in net.backward(given, cache).items():
            np.testing.assert_array_equal(value, grads[name])
            np.testing.assert_array_equal(same[name], grads[name])


def test_lists_take_the_dtype_of_the_arrays_beside_them(net):
    params = net.init_params(0, dtype=np.float32)
    mixed = dict(params, b1=params["b1"].tolist())
    loss, grads = net.loss_and_grad(mixed, X().tolist(), ROWS.tolist())
    assert loss.dtype == np.float32 and all(g.dtype == np.float32 for g in grads.values())


def test_a_scalar_input_or_parameter_may_be_a_number(build_module):
    module, _ = build_module(
        'name = "s"\n[graph]\ninputs = { x = "scalar" }\nparams = { w = "scalar" }\n'
        'steps = ["E = (w*x - 1)**2"]\nloss = "E"\n'
    )
    loss, grads = module.loss_and_grad({"w": 2}, 3)
    assert loss == 25.0 and grads["w"] == 2 * 5 * 3


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        ("abc", "params['W1'] must be a NumPy array, or a number or list of numbers, got str"),
        (None, "params['W1'] must be a NumPy array, or a number or list of numbers, got NoneType"),
        ([[1.0, 2.0], [3.0]], "params['W1'] must be a regular (not ragged) array: "),
        ([["a"] * 4] * 3, "params['W1'] must hold real numbers, got <U1 values"),
        (np.zeros((3, 4), dtype=int), "params['W1'] must be floating point, got dtype int64"),
        (np.zeros((3, 5)), "params['W1'] must have shape (3, 4), got (3, 5)"),
    ],
    ids=["string", "None", "ragged", "strings", "integers", "shape"],
)
def test_a_bad_parameter_gets_one_message_in_every_function(net, bad, expected):
    params = net.init_params(0)
    _, cache = net.forward(params, X(), [0, 1, 1])
    broken = dict(params, W1=bad)
    messages = {
        message(lambda: net.forward(broken, X(), [0, 1, 1])),
        message(lambda: net.backward(broken, cache)),
        message(lambda: net.loss_and_grad(broken, X(), [0, 1, 1])),
    }
    assert len(messages) == 1, messages
    assert messages.pop().startswith(expected)


def test_params_that_are_not_a_dict(net):
    for call in (lambda: net.forward([1, 2], X(), [0]), lambda: net.backward([1, 2], {})):
        assert message(call) == (
            "params must be a dict of arrays keyed ['W1', 'b1', 'W2', 'b2'], got list"
        )


def test_a_batch_mismatch_names_every_input_with_its_size(net, graph):
    params = net.init_params(0)
    assert message(lambda: net.forward(params, X(4), [0, 1, 1])) == (
        "the arguments disagree on the size m: X has m = 4, T has m = 3"
    )
    assert message(lambda: net.forward(params, X(3), np.eye(2)[[0, 1, 1, 0, 1]])) == (
        "the arguments disagree on the size m: X has m = 3, T has m = 5"
    )
    gp = graph.init_params(0, n=3)
    assert message(lambda: graph.forward(gp, X(3), ROWS, np.full((2, 2), 0.5))) == (
        "the arguments disagree on the size m: X has m = 3, T has m = 3, P has m = 2"
    )


def test_float_targets_of_shape_m_are_not_labels(net):
    params = net.init_params(0)
    assert message(lambda: net.forward(params, X(), np.array([0.0, 1.0, 1.0]))) == (
        "T must be integer class labels of shape (m,) or one-hot rows of shape (m, 2); "
        "got float64 values of shape (3,)"
    )


# ---------------------------------------------------------------- a loss's assumptions (issue 10)


def test_soft_labels_and_one_hot_rows_pass(net, graph):
    params = net.init_params(0)
    loss, _ = net.loss_and_grad(params, X(), ROWS)
    assert np.isfinite(loss)
    soft = np.exp(X()[:, :2]) / np.exp(X()[:, :2]).sum(axis=1, keepdims=True)
    for dtype in (np.float64, np.float32):  # sums off by rounding only
        typed = net.init_params(0, dtype=dtype)
        net.loss_and_grad(typed, X().astype(dtype), soft.astype(dtype))
    gp = graph.init_params(0, n=2)
    graph.loss_and_grad(gp, X(), ROWS, np.full((3, 2), 0.5))


@pytest.mark.parametrize(
    ("targets", "expected"),
    [
        (
            [[1.5, -0.5], [0.0, 1.0], [1.0, 0.0]],
            "T must hold one-hot or soft-label rows (entries >= 0, each row sums to 1); "
            "got an entry -0.5",
        ),
        (
            [[1.0, 0.0], [0.5, 0.4], [1.0, 0.0]],
            "T must hold one-hot or soft-label rows (entries >= 0, each row sums to 1); "
            "row 1 sums to 0.9",
        ),
        (
            [[1.0, 0.0], [0.0, 1.0], [1.0, 1e-6]],
            "T must hold one-hot or soft-label rows (entries >= 0, each row sums to 1); "
            "row 2 sums to 1.000001",
        ),
        (
            [[np.nan, 0.0], [0.0, 1.0], [1.0, 0.0]],
            "T must hold one-hot or soft-label rows (entries >= 0, each row sums to 1); "
            "got an entry nan",
        ),
        ([0, 2, 1], "T holds class labels outside 0..1: from 0 to 2"),
        ([0, -1, 1], "T holds class labels outside 0..1: from -1 to 1"),
    ],
    ids=["negative", "sum 0.9", "sum 1 + 1e-6", "nan", "label too large", "label negative"],
)
def test_targets_that_break_softmax_cross_entropy(net, targets, expected):
    params = net.init_params(0)
    assert message(lambda: net.loss_and_grad(params, X(), targets)) == expected


def test_the_same_rules_hold_in_graphs(graph):
    gp = graph.init_params(0, n=2)
    bad_rows = ROWS * 0.5
    assert "T must hold one-hot or soft-label rows" in message(
        lambda: graph.forward(gp, X(), bad_rows, np.full((3, 2), 0.5))
    )
    assert message(lambda: graph.forward(gp, X(), ROWS, np.full((3, 2), 1.5))) == (
        "P must hold probabilities in [0, 1]; got values from 1.5 to 1.5"
    )
    assert message(lambda: graph.forward(gp, X(0), ROWS[:0], np.full((0, 2), 0.5))) == (
        "X is empty, shape (0, 3): a batch needs at least one sample"
    )


def test_probability_targets_of_a_network(build_module):
    module, _ = build_module(SIGMOID)
    params = module.init_params(0)
    module.loss_and_grad(params, X(), [[0.0, 1.0], [1.0, 0.2], [0.5, 0.5]])
    assert message(lambda: module.forward(params, X(), [[0.0, 1.0], [-0.1, 0.2], [0, 1]])) == (
        "T must hold probabilities in [0, 1]; got values from -0.1 to 1.0"
    )


def test_an_empty_batch_is_refused(net):
    params = net.init_params(0)
    for targets in (np.zeros(0, dtype=int), np.zeros((0, 2))):
        assert message(lambda t=targets: net.forward(params, X(0), t)) == (
            "X is empty, shape (0, 3): a batch needs at least one sample"
        )


def test_the_gradient_check_still_draws_valid_targets(graph, build_module):
    """symbp check draws inputs by INPUT_KINDS: they must pass the module's own checks."""
    assert graph.INPUT_KINDS == {"X": "real", "T": "one-hot", "P": "probability"}
    for seed in range(5):
        assert check_module(graph, seed=seed, batch=6).ok
    for text in (SOFTMAX, SIGMOID):
        module, _ = build_module(text)
        assert check_module(module, seed=1).ok


def test_a_size_the_parameters_fix_is_named_with_them(build_module):
    module, _ = build_module(
        'name = "n"\n[graph]\ninputs = { x = "n" }\nparams = { v = "n" }\n'
        'steps = ["E = sum((v - x)**2)"]\nloss = "E"\n'
    )
    params = module.init_params(0, n=3)
    assert message(lambda: module.forward(params, [1.0, 2.0])) == (
        "the arguments disagree on the size n: x has n = 2, params has n = 3"
    )

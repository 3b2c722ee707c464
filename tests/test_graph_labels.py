"""Integer class labels for a [graph]'s softmax cross-entropy targets (issue 15), as networks
take them: labels of the rows' shape without the class axis equal their one-hot rows."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import ROOT

FIXED = (ROOT / "examples" / "residual_block.toml").read_text()
"""Classes fixed by the spec: T is m x 3."""
BY_PARAMS = """name = "by_params"
[graph]
inputs = { X = "m x 4", T = "m x k" }
params = { W = "4 x k", b = "k" }
steps = ["Z = X @ W + b", "L = softmax_cross_entropy(Z, T) + sum(W**2) / 100"]
loss = "L"
"""
BY_INPUTS = """name = "by_inputs"
[graph]
inputs = { X = "m x k", T = "m x k" }
params = { s = "scalar" }
steps = ["Z = s * X", "L = softmax_cross_entropy(Z, T)"]
loss = "L"
"""
"""Classes fixed only by another input: the labels are converted after X binds k."""
ONE_SAMPLE = """name = "one_sample"
[graph]
inputs = { x = "4", t = "3" }
params = { W = "3 x 4" }
steps = ["z = W @ x", "L = softmax_cross_entropy(z, t)"]
loss = "L"
"""
"""A vector target: its label is one integer."""


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    from symbp.derivation import derive
    from symbp.emit.numpy_module import generate
    from symbp.front.spec import loads
    from symbp.loader import load_module

    built = {}
    for text in (FIXED, BY_PARAMS, BY_INPUTS, ONE_SAMPLE):
        derivation = derive(loads(text))
        path = tmp_path_factory.mktemp("labels") / f"{derivation.model.name}.py"
        path.write_text(generate(derivation), encoding="utf-8")
        built[derivation.model.name] = load_module(path)
    return built


def _same(module, params, inputs_rows, inputs_labels):
    loss_rows, grads_rows = module.loss_and_grad(params, *inputs_rows)
    loss_labels, grads_labels = module.loss_and_grad(params, *inputs_labels)
    assert loss_labels == loss_rows
    for name, grad in grads_rows.items():
        np.testing.assert_array_equal(grads_labels[name], grad)


@settings(max_examples=40, deadline=None)
@given(
    model=st.sampled_from(["residual_block", "by_params", "by_inputs"]),
    m=st.integers(1, 9),
    k=st.integers(2, 6),
    seed=st.integers(0, 2**32 - 1),
    dtype=st.sampled_from([np.float64, np.float32]),
    as_list=st.booleans(),
)
def test_labels_equal_their_one_hot_rows(modules, model, m, k, seed, dtype, as_list):
    module = modules[model]
    rng = np.random.default_rng(seed)
    classes = 3 if model == "residual_block" else k
    sizes = {"k": k} if model == "by_params" else {}
    params = module.init_params(rng, dtype=dtype, **sizes)
    columns = 4 if model != "by_inputs" else k
    X = rng.standard_normal((m, columns)).astype(dtype)
    labels = rng.integers(0, classes, size=m)
    rows = np.eye(classes, dtype=dtype)[labels]
    _same(module, params, (X, rows), (X, labels.tolist() if as_list else labels))


@given(label=st.integers(0, 2), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=20, deadline=None)
def test_a_vector_target_takes_one_integer(modules, label, seed):
    module = modules["one_sample"]
    rng = np.random.default_rng(seed)
    params = module.init_params(rng)
    x = rng.standard_normal(4)
    _same(module, params, (x, np.eye(3)[label]), (x, label))
    _same(module, params, (x, np.eye(3)[label]), (x, np.int32(label)))


def message(call) -> str:
    with pytest.raises(ValueError) as caught:
        call()
    return str(caught.value)


def test_bad_labels_are_named_as_in_networks(modules):
    module = modules["by_params"]
    params = module.init_params(0, k=3)
    X = np.zeros((2, 4))
    assert message(lambda: module.forward(params, X, [0, 3])) == (
        "T holds class labels outside 0..2: from 0 to 3"
    )
    assert message(lambda: module.forward(params, X, np.array([0.0, 1.0]))) == (
        "T must be integer class labels of shape (m,) or one-hot rows of shape (m, k); "
        "got float64 values of shape (2,)"
    )
    assert message(lambda: module.forward(params, X, [0, 1, 2])) == (
        "the arguments disagree on the size m: X has m = 2, T has m = 3"
    )
    one = modules["one_sample"]
    assert message(lambda: one.forward(one.init_params(0), np.zeros(4), 1.0)) == (
        "t must be integer class labels of shape () or one-hot rows of shape (3,); "
        "got float64 values of shape ()"
    )
    by_inputs = modules["by_inputs"]
    assert message(lambda: by_inputs.forward({"s": 1.0}, np.zeros((2, 3)), [0, 5])) == (
        "T holds class labels outside 0..2: from 0 to 5"
    )


def test_labels_need_a_class_count_some_other_argument_fixes(build_module):
    module, _ = build_module(
        'name = "alone"\n[graph]\ninputs = { T = "m x k" }\nparams = { s = "scalar" }\n'
        'steps = ["Z = s * T", "L = softmax_cross_entropy(Z, T)"]\nloss = "L"\n'
    )
    assert module.INPUT_KINDS == {"T": "one-hot"}
    assert message(lambda: module.forward({"s": 1.0}, [0, 1])) == (
        "T holds class labels, but no other argument fixes the number of classes k; "
        "pass one-hot rows of shape (m, k)"
    )
    assert message(lambda: module.forward({"s": 1.0}, [0.0, 1.0])) == (
        "T must be integer class labels of shape (m,) or one-hot rows of shape (m, k); "
        "got float64 values of shape (2,)"
    )
    loss, _ = module.forward({"s": 1.0}, np.eye(2))  # rows still work
    assert np.isfinite(loss)


def test_the_docstring_says_labels_are_accepted(modules):
    doc = " ".join(modules["by_params"].forward.__doc__.split())
    assert "T : array (m x k) or integer labels (m)" in doc
    assert "labels are class indices 0..k - 1" in doc
    assert "or an integer label" in modules["one_sample"].forward.__doc__

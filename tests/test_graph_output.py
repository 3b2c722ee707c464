"""A [graph]'s ``output = "<step>"``: ``predict(params, <the inputs it reads>)`` (issue 15).

The random graphs of ``tests/test_graph_oracle.py`` check predict's value and arguments against
an independent evaluation; these are the cases a reader checks by hand.
"""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from symbp.loader import load_module
from tests.conftest import ROOT

CLASSIFIER = """name = "classifier"
[graph]
inputs = { X = "m x 3", T = "m x 2" }
params = { W = "3 x 2", b = "2" }
constants = { temperature = 2.0, lam = 0.01 }
steps = [
  "Z = X @ W + b",
  "P = sigmoid(Z / temperature)",
  "L = sigmoid_binary_cross_entropy(Z, T) + lam * sum(W**2)",
]
loss = "L"
output = "P"
"""
"""The output is not on the loss's path; it reads one of the two constants and no target."""


def arguments(function) -> tuple[list[str], dict[str, object]]:
    """Positional parameter names after ``params``, and keyword-only ones with defaults."""
    parameters = inspect.signature(function).parameters.values()
    positional = [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD][1:]
    keywords = {p.name: p.default for p in parameters if p.kind is p.KEYWORD_ONLY}
    return positional, keywords


def test_seed004_predicts_y_from_x_alone():
    module = load_module(ROOT / "generated" / "logistic_l2.py")
    assert arguments(module.predict) == (["x"], {})
    params = {"w": np.float64(1.5), "b": np.float64(-0.5)}
    for x in (-2.0, 0.0, 3.0):
        expected = 1 / (1 + np.exp(-(1.5 * x - 0.5)))
        np.testing.assert_allclose(module.predict(params, x), expected, rtol=1e-15)


def test_predict_takes_the_inputs_and_constants_its_output_reads(build_module):
    module, _ = build_module(CLASSIFIER)
    assert arguments(module.predict) == (["X"], {"temperature": 2.0})
    rng = np.random.default_rng(0)
    params = module.init_params(rng)
    X = rng.standard_normal((5, 3))
    logits = X @ params["W"] + params["b"]
    np.testing.assert_allclose(module.predict(params, X), 1 / (1 + np.exp(-logits / 2)))
    np.testing.assert_allclose(
        module.predict(params, X, temperature=0.5), 1 / (1 + np.exp(-logits / 0.5))
    )


def test_predict_checks_its_arguments_as_forward_does(build_module):
    module, _ = build_module(CLASSIFIER)
    params = module.init_params(0)
    small = {k: v.astype(np.float32) for k, v in params.items()}
    assert module.predict(small, np.ones((2, 3), dtype=np.float32)).dtype == np.float32
    for bad, expected in (
        (np.ones((2, 4)), r"X must have shape \(m, 3\), got \(2, 4\)"),
        (np.ones((0, 3)), "X is empty"),
        (np.ones((2, 3), dtype=np.float32), "X has dtype float32 but the parameters have"),
    ):
        with pytest.raises(ValueError, match=expected):
            module.predict(params, bad)


def test_without_output_a_graph_has_no_predict(build_module):
    module, _ = build_module(CLASSIFIER.replace('output = "P"\n', ""))
    assert not hasattr(module, "predict")


def test_predict_leaves_its_arguments_alone(build_module):
    module, _ = build_module((ROOT / "examples" / "residual_block.toml").read_text())
    rng = np.random.default_rng(1)
    params = module.init_params(rng)
    X = rng.standard_normal((4, 4))
    before = {k: v.copy() for k, v in params.items()}, X.copy()
    first = module.predict(params, X)
    np.testing.assert_array_equal(module.predict(params, X), first)
    for name, value in before[0].items():
        np.testing.assert_array_equal(params[name], value)
    np.testing.assert_array_equal(X, before[1])
    _, cache = module.forward(params, X, np.eye(3)[[0, 1, 2, 0]])
    np.testing.assert_allclose(first, cache["Z"], rtol=1e-15)

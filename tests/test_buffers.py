"""Writing into dead arrays: the printer's ``out=`` forms and the plan that chooses them."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from symbp.analysis.gradcheck import check_module
from symbp.derivation import derive
from symbp.emit.numpy_module import generate
from symbp.emit.printing import Printers
from symbp.front.spec import loads
from symbp.ir.functions import builtin_table
from tests.conftest import network_spec

a, b, c, m = sympy.symbols("a b c m")
T = builtin_table()


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (a + b, "np.add(a, b, out=a)"),
        (b + a, "np.add(a, b, out=a)"),
        (a - b, "np.subtract(a, b, out=a)"),
        (b - a, "np.subtract(b, a, out=a)"),
        (a * (1 - b**2), "np.multiply(a, 1 - b**2, out=a)"),
        ((a - c) / m, "np.divide(a - c, m, out=a)"),
        (b**2, "np.square(b, out=a)"),
        (T["tanh"](a), "np.tanh(a, out=a)"),
        (T["relu"](a), "np.maximum(a, 0, out=a)"),
        (sympy.Piecewise((b, a > 0), (0, True)), "np.multiply(b, a > 0, out=a)"),
        (sympy.Piecewise((b, a > 0), (c, True)), None),
        (T["sigmoid"](a), None),
    ],
)
def test_outermost_operation_writes_into_the_buffer(expr, expected):
    assert Printers(T).numpy_into(expr, "a") == expected


def lines_of(text: str, function: str) -> list[str]:
    body = text.split(f"\ndef {function}(", 1)[1].split("\ndef ", 1)[0]
    return [line.strip() for line in body.splitlines()]


def test_activations_overwrite_their_pre_activations():
    spec = network_spec(3, [(4, "relu"), (4, "tanh"), (2, "identity")], "softmax_cross_entropy")
    forward = lines_of(generate(derive(loads(spec))), "forward")
    assert "A1 = np.maximum(Z1, 0, out=Z1)" in forward
    assert "A2 = np.tanh(Z2, out=Z2)" in forward
    cached = [line.split('"')[1] for line in forward if line.startswith('"')]
    assert "Z1" not in cached and "Z2" not in cached  # relu′ and tanh′ read A1 and A2


def test_cotangents_reuse_the_array_of_the_layer_above():
    spec = network_spec(3, [(4, "tanh")] * 4 + [(2, "identity")], "squared_error")
    backward = lines_of(generate(derive(loads(spec))), "backward")
    assert "dA2 = np.matmul(dZ3, W3.T, out=dZ4)" in backward


VIEWED = """name = "viewed"
[graph]
inputs = { X = "m x 3" }
params = { W = "3 x 3" }
steps = [
  "H = tanh(X @ W)",
  "G = H.T",
  "K = tanh(H * 2)",
  "E = sum(G @ K)",
]
loss = "E"
"""


def test_a_live_view_keeps_its_array(build_module):
    """G = H.T is a view: H's array must not take K while G is still to be read."""
    module, _ = build_module(VIEWED)
    assert check_module(module).ok
    forward = lines_of(generate(derive(loads(VIEWED))), "forward")
    assert "K = np.tanh(2 * H)" in forward


def test_weight_sized_sums_come_after_the_cotangents_are_freed():
    spec = network_spec(3, [(4, "relu"), (2, "identity")], "softmax_cross_entropy", l2=0.1)
    backward = lines_of(generate(derive(loads(spec))), "backward")
    freed = backward.index("del S2, dZ2, dA1, dZ1")
    assert backward[freed + 1] == "dW1 += W1 * l2"


def test_float32_stays_float32_through_the_buffers(build_module):
    module, _ = build_module(network_spec(3, [(4, "elu"), (2, "identity")], "squared_error"))
    params = module.init_params(0, dtype=np.float32)
    X = np.ones((5, 3), np.float32)
    _, grads = module.loss_and_grad(params, X, np.zeros((5, 2), np.float32))
    assert {g.dtype for g in grads.values()} == {np.dtype(np.float32)}

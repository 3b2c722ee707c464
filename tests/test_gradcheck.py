"""The finite-difference check itself: it must say when it shows nothing."""

from __future__ import annotations

from symbp.gradcheck import check_module
from tests.conftest import network_spec

DEAD = """name = "dead"
[graph]
inputs = { x = "scalar" }
params = { w = "scalar", v = "scalar" }
steps = ["E = relu(w - 10) * x + v * x"]
loss = "E"
"""


def test_a_gradient_zero_at_the_point_is_flagged(build_module):
    module, _ = build_module(DEAD)
    result = check_module(module, seed=0)
    rows = {r.name: r for r in result.rows}
    assert rows["w"].ok and rows["w"].zero
    assert not rows["v"].zero
    assert "gradient zero here" in result.table().splitlines()[2]


def test_relu_networks_are_checked_at_live_units(build_module):
    """Biases drawn small enough that the default point exercises every ReLU layer."""
    module, _ = build_module(
        network_spec(3, [(4, "relu"), (4, "relu"), (2, "identity")], "softmax_cross_entropy")
    )
    for seed in range(5):
        result = check_module(module, seed=seed)
        assert result.ok
        assert not any(r.zero for r in result.rows), result.table()

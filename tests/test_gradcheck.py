"""The finite-difference check itself: it must say when it shows nothing."""

from __future__ import annotations

import subprocess
import sys

import pytest

from symbp.analysis.gradcheck import check_module
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


def test_kinks_near_the_point_do_not_fail_a_correct_gradient(build_module):
    """Wide ReLU layers put some unit's kink within a step of the point at every seed: the
    refined and one-sided stencils must still agree with a correct backward pass."""
    module, _ = build_module(
        network_spec(6, [(32, "relu"), (32, "relu"), (4, "identity")], "softmax_cross_entropy")
    )
    for seed in range(3):
        result = check_module(module, seed=seed)
        assert result.ok, result.table()


def test_a_wrong_gradient_near_a_kink_still_fails(build_module):
    """The kink handling must not excuse an error: scale one weight's gradient by 1.001."""
    module, _ = build_module(
        network_spec(6, [(32, "relu"), (4, "identity")], "softmax_cross_entropy")
    )
    backward = module.backward

    def wrong(params, cache):
        grads = backward(params, cache)
        grads["W1"] = grads["W1"] * 1.001
        return grads

    module.backward = wrong
    rows = {r.name: r for r in check_module(module, seed=0).rows}
    assert not rows["W1"].ok
    assert rows["b1"].ok


def test_the_reported_error_does_not_depend_on_the_tolerance(build_module):
    """The relative-error floor is the check's own: a tolerance only decides pass or fail."""
    module, _ = build_module(
        network_spec(4, [(5, "tanh"), (3, "identity")], "softmax_cross_entropy")
    )
    errors = {t: check_module(module, tolerance=t).max_rel_error for t in (1e-7, 1e-6, 1e-3)}
    assert len(set(errors.values())) == 1
    assert 0 < errors[1e-6] < 1e-7


def test_a_tolerance_finite_differences_cannot_resolve_is_refused(build_module, tmp_path):
    module, _ = build_module(network_spec(2, [(2, "identity")], "squared_error"))
    with pytest.raises(ValueError, match="smallest meaningful one is 1e-07"):
        check_module(module, tolerance=1e-30)
    spec = tmp_path / "tiny.toml"
    spec.write_text(network_spec(2, [(2, "identity")], "squared_error", name="tiny"))
    result = subprocess.run(
        [sys.executable, "-m", "symbp", "check", str(spec), "--tolerance", "1e-30"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "the smallest meaningful tolerance is 1e-07" in result.stderr

"""Graphs that once gave wrong gradients, crashed or were refused, against closed forms.

Each gradient below is worked out by hand in the test (not read off symbp's output); the
reproducers are those of issue 10, plus the broadcasting variants around them.
"""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from symbp.analysis.gradcheck import check_module
from symbp.cli import main
from symbp.errors import SpecError
from symbp.ir.ops import OPS
from symbp.ir.primitive import Lazy


def graph(params: str, steps: list[str], *, inputs: str = "", loss: str = "L") -> str:
    body = ",\n".join(f'  "{s}"' for s in steps)
    text = 'name = "regression"\n[graph]\n'
    if inputs:
        text += f"inputs = {{ {inputs} }}\n"
    return text + f'params = {{ {params} }}\nsteps = [\n{body}\n]\nloss = "{loss}"\n'


RNG = np.random.default_rng(7)
X = RNG.standard_normal((5, 3))
W32 = RNG.standard_normal((3, 2))
B2 = RNG.standard_normal(2)


@pytest.mark.parametrize(
    ("bias", "db"),
    [
        ("b**2", lambda b: b),  # mean over 2m entries of m copies of b²: ∂/∂b = 2b·m/2m
        ("sqrt(1 + b**2)", lambda b: b / (2 * np.sqrt(1 + b**2))),
        ("3*b", lambda b: np.full_like(b, 1.5)),
        ("exp(b)", lambda b: np.exp(b) / 2),
    ],
)
def test_a_function_of_the_bias_added_to_a_batch(build_module, bias, db):
    module, _ = build_module(
        graph('W = "3 x 2", b = "2"', [f"Z = X @ W + {bias}", "L = mean(Z)"], inputs='X = "m x 3"')
    )
    params = {"W": W32.copy(), "b": B2.copy()}
    _, grads = module.loss_and_grad(params, X)
    m = X.shape[0]
    np.testing.assert_allclose(grads["b"], db(B2), rtol=1e-12)
    np.testing.assert_allclose(grads["W"], X.T @ np.full((m, 2), 1 / (2 * m)), rtol=1e-12)


def test_a_scalar_subtracted_from_a_matrix(build_module):
    module, _ = build_module(graph('W = "3 x 2", s = "scalar"', ["v = W - s", "L = sum(v)"]))
    _, grads = module.loss_and_grad({"W": W32.copy(), "s": np.array(0.3)})
    assert float(grads["s"]) == -6.0
    np.testing.assert_array_equal(grads["W"], np.ones((3, 2)))


def test_a_scalar_added_to_a_batch(build_module):
    module, _ = build_module(
        graph('s = "scalar"', ["v = s + X", "L = sum(v)"], inputs='X = "m x 2"')
    )
    batch = RNG.standard_normal((4, 2))
    _, grads = module.loss_and_grad({"s": np.array(0.3)}, batch)
    assert float(grads["s"]) == 8.0  # 2m entries


def test_a_difference_of_a_value_with_itself_keeps_its_shape(build_module):
    module, _ = build_module(
        graph('W = "2 x 2"', ["D = W - W", "S = softplus(D)", "L = sum(S) + sum(W**2)"])
    )
    w = RNG.standard_normal((2, 2))
    loss, grads = module.loss_and_grad({"W": w})
    assert float(loss) == pytest.approx(4 * np.log(2) + np.sum(w**2), rel=1e-14)
    np.testing.assert_allclose(grads["W"], 2 * w, rtol=1e-14)


def test_a_parameter_that_cancels_gets_a_zero_gradient(build_module):
    module, _ = build_module(
        graph('p = "scalar", q = "scalar"', ["d = p - p", "L = tanh(d) + q**2"])
    )
    loss, grads = module.loss_and_grad({"p": np.array(0.7), "q": np.array(0.5)})
    assert float(loss) == 0.25
    assert float(grads["p"]) == 0.0
    assert float(grads["q"]) == 1.0


@pytest.mark.parametrize("kind", ["mean", "sum"])
def test_a_reduction_of_a_parameter_along_its_rows(build_module, kind):
    module, _ = build_module(graph('W = "3 x 2"', [f"v = {kind}(W, axis=1)", "L = sum(v)"]))
    _, grads = module.loss_and_grad({"W": W32.copy()})
    np.testing.assert_array_equal(grads["W"], np.full((3, 2), 0.5 if kind == "mean" else 1.0))


def test_a_vector_added_to_a_parameter_matrix(build_module):
    module, _ = build_module(graph('W = "3 x 4", b = "4"', ["v = W + b", "L = sum(v*v) / 2"]))
    w, b = RNG.standard_normal((3, 4)), RNG.standard_normal(4)
    _, grads = module.loss_and_grad({"W": w, "b": b})
    np.testing.assert_allclose(grads["W"], w + b, rtol=1e-14)
    np.testing.assert_allclose(grads["b"], (w + b).sum(axis=0), rtol=1e-14)


def test_row_and_column_vectors_broadcast_to_a_matrix(build_module):
    module, _ = build_module(graph('r = "1 x 3", c = "2 x 1"', ["M = r * c", "L = sum(M)"]))
    r, c = RNG.standard_normal((1, 3)), RNG.standard_normal((2, 1))
    _, grads = module.loss_and_grad({"r": r, "c": c})
    np.testing.assert_allclose(grads["r"], np.full((1, 3), c.sum()), rtol=1e-14)
    np.testing.assert_allclose(grads["c"], np.full((2, 1), r.sum()), rtol=1e-14)


def test_repeated_steps_and_aliases(build_module):
    module, _ = build_module(
        graph('P = "3"', ["v1 = elu(P)", "v2 = v1 * 2", "v3 = elu(P)", "L = sum(v2 + v3)"])
    )
    p = np.array([-0.5, 0.2, 1.5])
    _, grads = module.loss_and_grad({"P": p})
    np.testing.assert_allclose(grads["P"], 3 * np.where(p > 0, 1, np.exp(p)), rtol=1e-14)
    module, _ = build_module(
        graph('w = "scalar"', ["a = x", "c = x", "E = c*w"], inputs='x = "scalar"', loss="E")
    )
    _, grads = module.loss_and_grad({"w": np.array(0.4)}, 1.75)
    assert float(grads["w"]) == 1.75


def test_a_function_of_a_number_folds_to_a_constant(build_module):
    module, _ = build_module(graph('w = "scalar"', ["E = w * softplus(1)"], loss="E"))
    _, grads = module.loss_and_grad({"w": np.array(2.0)})
    assert float(grads["w"]) == pytest.approx(np.log1p(np.e), rel=1e-15)


def test_a_constant_that_is_not_real_names_the_step():
    from symbp.derivation import derive
    from symbp.front.spec import loads

    with pytest.raises(SpecError, match=r"steps\[0\].*not a real number|steps\[0\].*not real"):
        derive(loads(graph('w = "scalar"', ["E = w * sqrt(0 - 2)"], loss="E")))


def test_gradients_are_fresh_arrays_of_the_parameters_dtype(build_module):
    module, _ = build_module(
        graph('b = "3", P = "2 x 2"', ["r = relu(b)", "L = sum(r) + sum(P**2)/2"])
    )
    for dtype in (np.float64, np.float32):
        params = {"b": np.array([-1.0, 0.5, 2.0], dtype), "P": np.eye(2, dtype=dtype)}
        _, grads = module.loss_and_grad(params)
        assert grads["b"].dtype == dtype and grads["P"].dtype == dtype
        np.testing.assert_array_equal(grads["b"], [0, 1, 1])
        np.testing.assert_array_equal(grads["P"], np.eye(2))
        assert grads["P"] is not params["P"]
        grads["P"] *= 0  # an in-place update of the gradient leaves the parameter alone
        np.testing.assert_array_equal(params["P"], np.eye(2))


def test_two_gradients_are_two_arrays(build_module):
    module, _ = build_module(graph('a = "3", b = "3"', ["L = sum(x * (a + b))"], inputs='x = "3"'))
    x = np.array([1.0, 2.0, 3.0])
    _, grads = module.loss_and_grad({"a": np.zeros(3), "b": np.zeros(3)}, x)
    assert not np.shares_memory(grads["a"], grads["b"])
    assert not np.shares_memory(grads["a"], x)


def test_reproducers_pass_the_full_check(build_module):
    for text in (
        graph('W = "3 x 2", s = "scalar"', ["v = W - s", "L = sum(v)"]),
        graph('W = "3 x 2"', ["v = mean(W, axis=1)", "L = sum(v)"]),
        graph('b = "3", P = "2 x 2"', ["r = relu(b)", "L = sum(r) + sum(P**2)/2"]),
    ):
        module, _ = build_module(text)
        assert check_module(module, batch=3).ok


def test_a_broken_derivation_is_never_written(tmp_path, monkeypatch):
    """A VJP rule 1% off makes `symbp generate` refuse: exit 1, one line, no file."""
    spec = tmp_path / "tiny.toml"
    spec.write_text(
        'name = "tiny"\n[network]\ninputs = 3\n'
        'layers = [{ units = 4, activation = "tanh" }, { units = 2, activation = "identity" }]\n'
        'loss = "squared_error"\n'
    )
    affine = OPS["affine"]
    original = type(affine).vjp

    def off_by_one_percent(self, ctx, eqn, g, needs, names):
        pieces = original(self, ctx, eqn, g, needs, names)
        return [None if p is None else Lazy(p.expr * 1.01, p.shape) for p in pieces]

    monkeypatch.setattr(type(affine), "vjp", off_by_one_percent)
    out = tmp_path / "out.py"
    result = CliRunner().invoke(main, ["generate", str(spec), "-o", str(out)])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "internal error: the derived gradient of" in lines[0]
    assert "disagrees with finite differences (relative error" in lines[0]
    assert "please report this spec" in lines[0]
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [spec]
    # --no-verify writes it anyway (and `symbp check` then shows the error).
    result = CliRunner().invoke(main, ["generate", str(spec), "-o", str(out), "--no-verify"])
    assert result.exit_code == 0 and out.exists()


def test_second_pass_contributions_that_cancel(build_module):
    """Issue 13, found by the oracle: v5 = p2 − (c + p2) is the constant −c, so the gradient
    of p2 is dv3 + dv5 = −dv5 + dv5, and in the second pass its adjoint V_p2 − V_p2 = 0 reached
    the softmax's VJP, which summed a scalar along axis −1 and failed. A cotangent that
    cancels to 0 now passes nothing on. H·V in closed form: p2 does not reach the loss, and
    the mean of tanh(p1) over n has the diagonal Hessian −2 tanh(p1)(1 − tanh²(p1)) / n."""
    module, _ = build_module(
        'name = "cancel"\n[graph]\ninputs = { t = "n" }\nparams = { p1 = "n", p2 = "n" }\n'
        'constants = { c = 0.5 }\nsteps = [\n  "v3 = (c + p2)",\n  "v5 = (p2 - v3)",\n'
        '  "E = (softmax_cross_entropy((3.0 * tanh(v5)), t) + mean(tanh(p1)))",\n]\n'
        'loss = "E"\n'
    )
    rng = np.random.default_rng(0)
    p1, p2, v1, v2 = rng.standard_normal((4, 4))
    t = np.eye(4)[1]
    hv = module.hvp({"p1": p1, "p2": p2}, t, {"p1": v1, "p2": v2})
    th = np.tanh(p1)
    np.testing.assert_allclose(hv["p1"], -2 * th * (1 - th**2) / 4 * v1, rtol=1e-12)
    np.testing.assert_array_equal(hv["p2"], np.zeros(4))

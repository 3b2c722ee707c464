"""The generated module's API: imports, shapes, dtypes, errors, determinism."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from symbp.analysis.gradcheck import check_module, random_inputs, random_params
from symbp.derivation import derive
from symbp.emit.numpy_module import generate
from symbp.front.spec import loads
from tests.conftest import ROOT, imported_packages, network_spec

SPEC = network_spec(4, [(5, "tanh"), (3, "identity")], "softmax_cross_entropy", l2=0.01)


def test_generated_module_imports_only_numpy():
    for path in sorted((ROOT / "generated").glob("*.py")):
        assert imported_packages(path.read_text(encoding="utf-8")) == {"numpy"}, path


def test_generation_is_deterministic():
    first = generate(derive(loads(SPEC)))
    second = generate(derive(loads(SPEC)))
    assert first == second


def one_hot(rows: int, classes: int = 3, dtype=np.float64) -> np.ndarray:
    return np.eye(classes, dtype=dtype)[np.arange(rows) % classes]


def test_shape_errors_name_the_argument(build_module):
    module, _ = build_module(SPEC)
    params = module.init_params(0)
    X = np.zeros((2, 4))
    with pytest.raises(ValueError, match=r"X must have shape \(m, 4\), got \(2, 5\)"):
        module.forward(params, np.zeros((2, 5)), one_hot(2))
    with pytest.raises(ValueError, match=r"disagree on the size m: X has m = 2, T has m = 3$"):
        module.forward(params, X, one_hot(3))
    bad = dict(params, W2=np.zeros((5, 4)))
    with pytest.raises(ValueError, match=r"params\['W2'\] must have shape \(5, 3\), got \(5, 4\)"):
        module.forward(bad, X, one_hot(2))
    with pytest.raises(ValueError, match="params is missing"):
        module.forward({"W1": params["W1"]}, X, one_hot(2))


def test_dtype_errors(build_module):
    module, _ = build_module(SPEC)
    params = module.init_params(0, dtype=np.float32)
    with pytest.raises(ValueError, match="X has dtype float64 but the parameters have float32"):
        module.forward(params, np.zeros((2, 4)), one_hot(2, dtype=np.float32))
    # Refused, not cast (issue 15's decision): the message says how to convert, once.
    with pytest.raises(ValueError, match=r"e\.g\. X\.astype\(np\.float32\)$"):
        module.loss_and_grad(params, np.zeros((2, 4)), [0, 1])
    float64 = module.init_params(0)
    with pytest.raises(ValueError, match=r"e\.g\. X\.astype\(np\.float64\)$"):
        module.predict(float64, np.zeros((2, 4), dtype=np.float32))
    with pytest.raises(ValueError, match="must hold real numbers"):
        module.forward(params, np.array([["a"] * 4]), one_hot(1, dtype=np.float32))
    mixed = dict(params, b1=params["b1"].astype(np.float64))
    with pytest.raises(ValueError, match="use one dtype"):
        module.forward(mixed, np.zeros((2, 4), np.float32), one_hot(2, dtype=np.float32))
    with pytest.raises(ValueError, match="class labels outside"):
        module.forward(params, np.zeros((2, 4), np.float32), np.array([0, 3]))


def test_training_reduces_the_loss(build_module):
    """A user's loop: init_params, loss_and_grad, a step; the loss on a separable task falls."""
    module, _ = build_module(SPEC)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    y = (X[:, 0] > 0).astype(int) + (X[:, 1] > 0)
    params = module.init_params(rng)
    first, _ = module.loss_and_grad(params, X, y)
    for _ in range(300):
        loss, grads = module.loss_and_grad(params, X, y)
        params = {k: v - 0.5 * grads[k] for k, v in params.items()}
    assert loss < 0.5 * first
    accuracy = np.mean(module.predict(params, X).argmax(axis=1) == y)
    assert accuracy > 0.85


ACTIVATION_NETWORK = network_spec(
    3,
    [(4, "relu"), (4, "tanh"), (4, "sigmoid"), (4, "elu"), (4, "softplus"), (2, "identity")],
    "softmax_cross_entropy",
    l2=0.1,
    name="mixed",
)


@pytest.mark.parametrize(
    "text",
    [ACTIVATION_NETWORK, *(p.read_text() for p in sorted((ROOT / "examples").glob("*.toml")))],
)
def test_calls_leave_their_arguments_intact(build_module, text):
    """Arrays are updated in place only where the function made them: the caller's params and
    inputs, and the cache that ``backward`` reads, are unchanged, so calls can be repeated."""
    module, _ = build_module(text)
    rng = np.random.default_rng(0)
    sizes = {"m": 5, "n": 3, "k": 3}
    params = random_params(module, rng, sizes)
    inputs = list(random_inputs(module, rng, sizes).values())
    before = [np.copy(a) for a in [*params.values(), *inputs]]
    loss, cache = module.forward(params, *inputs)
    cached = {k: np.copy(v) for k, v in cache.items()}
    first = module.backward(params, cache)
    second = module.backward(params, cache)
    again, _ = module.forward(params, *inputs)
    if hasattr(module, "predict"):
        module.predict(params, inputs[0])
    for old, new in zip(before, [*params.values(), *inputs], strict=True):
        np.testing.assert_array_equal(old, new)
    for name, value in cache.items():
        np.testing.assert_array_equal(cached[name], value, err_msg=name)
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)
        assert first[name] is not second[name]
    assert again == loss


_INPUTS = ", ".join(f'input_number_{i} = "scalar"' for i in range(12))
_CONSTANTS = ", ".join(f"constant_number_{i} = {i}.5" for i in range(6))
_SUM = " + ".join(f"input_number_{i} * constant_number_{i % 6}" for i in range(12))
_TANHS = " - ".join(f"tanh(input_number_{i})" for i in range(12))
WIDE_GRAPH = (
    f'name = "wide"\n[graph]\ninputs = {{ {_INPUTS} }}\n'
    'params = { weight_of_the_first_kind = "scalar" }\n'
    f"constants = {{ {_CONSTANTS} }}\n"
    f'steps = ["E = weight_of_the_first_kind**2 * ({_SUM})'
    f' + sigmoid(weight_of_the_first_kind * ({_TANHS}))"]\nloss = "E"\n'
)
NO_INPUTS = (
    'name = "alone"\n[graph]\nparams = { w = "scalar" }\nsteps = ["E = (w - 1)**2"]\nloss = "E"\n'
)


def test_modules_of_any_size_pass_ruff(tmp_path):
    """Long parameter lists, signatures and expressions wrap as ``ruff format`` wants, at
    every depth and width: a module symbp writes needs no formatter."""
    specs = {
        f"deep_{depth}": network_spec(
            3, [(3, "relu")] * depth + [(2, "identity")], "squared_error"
        )
        for depth in (1, 9, 11, 13, 30)
    }
    specs["deep_l2"] = network_spec(
        3, [(3, "tanh")] * 30 + [(2, "identity")], "squared_error", l2=0.1
    )
    specs["gelu"] = network_spec(3, [(3, "gelu"), (3, "silu"), (2, "identity")], "squared_error")
    specs["wide"] = WIDE_GRAPH
    specs["alone"] = NO_INPUTS
    for name, text in specs.items():
        (tmp_path / f"{name}.py").write_text(generate(derive(loads(text))))
    config = ["--config", str(ROOT / "pyproject.toml")]
    for args in (["check", *config, str(tmp_path)], ["format", "--check", *config, str(tmp_path)]):
        run = subprocess.run([sys.executable, "-m", "ruff", *args], capture_output=True, text=True)
        assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("text", [WIDE_GRAPH, NO_INPUTS])
def test_wrapped_modules_still_pass_the_check(build_module, text):
    module, _ = build_module(text)
    assert check_module(module).ok


def test_spec_text_cannot_break_out_of_the_docstring(tmp_path):
    """The reader refuses such descriptions; codegen quotes them anyway (defence in depth)."""
    import dataclasses

    from symbp.loader import load_module

    derivation = derive(loads(SPEC))
    text = 'ends """ here\\n and \\x41 "'
    derivation.model = dataclasses.replace(derivation.model, description=text)
    path = tmp_path / "quoted.py"
    path.write_text(generate(derivation))
    module = load_module(path)
    assert text in module.__doc__
    assert callable(module.forward)

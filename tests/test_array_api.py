"""The array API module (``symbp generate --target array-api``) on every array library.

Its loss and gradients must equal the NumPy module's to 1e-12 in float64 (the NumPy module is
itself checked against finite differences and the graph oracle's own evaluation), keep float32,
and come back as arrays of the caller's library: for every example, random networks and the
graph oracle's random graphs, on NumPy (through array-api-compat), array-api-strict (the
standard's reference, version 2024.12, no extensions) and Dask, and on PyTorch, JAX and CuPy
where they are installed (skipped otherwise, saying so). The promises that make this possible
are tested on their own: no array is written (the AST has no in-place statement, and PyTorch's
autograd, which refuses writes into the arrays it records, differentiates the module's forward
to its backward), no array's value is read in Python (``jax.jit`` traces it, and Dask computes
nothing until asked), and the module imports array-api-compat and nothing else.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import subprocess
import sys

import array_api_compat
import array_api_compat.numpy
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from symbp.analysis.gradcheck import random_inputs, random_params
from symbp.cli import main
from symbp.derivation import derive
from symbp.emit import array_api_module, numpy_module
from symbp.front.spec import load, loads
from symbp.ir.ops import OPS
from symbp.loader import load_module, module_from_source
from symbp.resources import example_specs
from tests.array_backends import Backend, backend, params_and_inputs, running
from tests.conftest import ROOT, imported_packages, network_spec
from tests.test_graph_oracle import draw_point, graphs
from tests.test_network_oracle import networks

TOLERANCE = 1e-12
LIBRARIES = ["numpy", "array-api-strict", "dask", "torch", "jax", "cupy"]
EXAMPLES = {spec.stem: spec for spec in example_specs()}
_names = itertools.count()


def modules(text_or_path) -> tuple:
    """The NumPy module and the array API module of one spec (text, or a path)."""
    model = load(text_or_path) if not isinstance(text_or_path, str) else loads(text_or_path)
    derivation = derive(model)
    name = f"{derivation.model.name}_{next(_names)}"
    numpy_side = module_from_source(numpy_module.generate(derivation), name)
    return numpy_side, module_from_source(array_api_module.generate(derivation), name)


def error(got: np.ndarray, expected: np.ndarray) -> float:
    """The largest difference relative to the largest entry expected (exact where it is 0)."""
    scale = float(np.max(np.abs(expected), initial=0.0))
    difference = float(np.max(np.abs(got - expected), initial=0.0))
    return difference / scale if scale else difference * np.inf if difference else 0.0


def compare(
    b: Backend, reference, module, params: dict, inputs: list, constants=None, dtype=np.float64
) -> float:
    """The worst error of the array API module on ``b`` against the NumPy module, after
    checking that every result is an array of ``b`` in the parameters' dtype."""
    constants = constants or {}
    expected_loss, expected = reference.loss_and_grad(params, *inputs, **constants)
    with running(b):
        p, args = params_and_inputs(b, params, inputs, dtype)
        loss, grads = module.loss_and_grad(p, *args, **constants)
        results = {"loss": loss, **grads}
        for name, value in results.items():
            assert b.is_array(value), (b.name, name, type(value))
            assert b.dtype_name(value) == np.dtype(dtype).name, (b.name, name, value.dtype)
        got = {name: b.numpy(value) for name, value in results.items()}
    assert set(grads) == set(expected)
    for name, grad in expected.items():
        assert got[name].shape == np.shape(grad), (name, got[name].shape)
    # Relative to the gradient's largest entry over all parameters: an entry that is small
    # through cancellation (1 − tanh² near saturation) differs in its last digits between
    # libraries' tanh, and relative to itself that is not an error of the module's.
    scale = max(float(np.max(np.abs(g), initial=0.0)) for g in expected.values())
    worst = error(got["loss"], np.asarray(expected_loss))
    for name, grad in expected.items():
        difference = float(np.max(np.abs(got[name] - grad), initial=0.0))
        worst = max(worst, difference / scale if scale else difference)
    return worst


def example_point(reference, seed: int = 0, batch: int = 5):
    rng = np.random.default_rng(seed)
    sizes = {d: batch if d == "m" else 3 for s in reference.INPUT_SHAPES.values() for d in s}
    sizes |= {d: 3 for s in reference.PARAM_SHAPES.values() for d in s if isinstance(d, str)}
    params = random_params(reference, rng, sizes)
    return params, list(random_inputs(reference, rng, sizes).values())


@pytest.fixture(scope="module")
def example_modules():
    return {name: modules(spec) for name, spec in EXAMPLES.items()}


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_every_example_equals_the_numpy_module(example_modules, example, library):
    b = backend(library)
    reference, module = example_modules[example]
    params, inputs = example_point(reference)
    assert compare(b, reference, module, params, inputs) <= TOLERANCE


@pytest.mark.parametrize("library", LIBRARIES)
def test_hessian_vector_products_equal_the_numpy_module(example_modules, library):
    """``hvp`` and ``loss_grad_hvp`` on each library: H·V as the NumPy module computes it."""
    b = backend(library)
    rng = np.random.default_rng(6)
    for reference, module in example_modules.values():
        params, inputs = example_point(reference, seed=3)
        direction = {n: rng.standard_normal(np.shape(v)) for n, v in params.items()}
        expected = reference.hvp(params, *inputs, direction)
        _, _, shared = reference.loss_grad_hvp(params, *inputs, direction)
        scale = max(float(np.max(np.abs(h))) for h in expected.values())
        with running(b):
            p, args = params_and_inputs(b, params, inputs)
            v = {n: b.asarray(d) for n, d in direction.items()}
            got = {n: b.numpy(h) for n, h in module.hvp(p, *args, v).items()}
            _, _, both = module.loss_grad_hvp(p, *args, v)
            both = {n: b.numpy(h) for n, h in both.items()}
        for name, h in expected.items():
            assert np.max(np.abs(got[name] - h)) <= TOLERANCE * scale, name
            assert np.max(np.abs(both[name] - shared[name])) <= TOLERANCE * scale, name


@pytest.mark.parametrize("library", LIBRARIES)
def test_float32_stays_float32(example_modules, library):
    b = backend(library)
    for reference, module in example_modules.values():
        params, inputs = example_point(reference, seed=1)
        small = {n: v.astype(np.float32) for n, v in params.items()}
        inputs = [np.asarray(a, dtype=np.float32) for a in inputs]
        assert compare(b, reference, module, small, inputs, dtype=np.float32) <= 1e-5


@pytest.mark.parametrize("library", LIBRARIES)
def test_integer_labels_and_predict(example_modules, library):
    """Labels become one-hot rows on the library's device; predict equals the NumPy one."""
    b = backend(library)
    reference, module = example_modules["mlp_digits"]
    params, (X, _) = example_point(reference, seed=2)
    labels = np.arange(5) % 10
    assert compare(b, reference, module, params, [X, labels]) <= TOLERANCE
    with running(b):
        p, (x,) = params_and_inputs(b, params, [X])
        probabilities = module.predict(p, x)
        assert b.is_array(probabilities)
        assert error(b.numpy(probabilities), reference.predict(params, X)) <= TOLERANCE


SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
}


@settings(max_examples=60, **SETTINGS)
@given(net=networks(), seed=st.integers(0, 2**16))
def test_random_networks_equal_the_numpy_module(net, seed):
    inputs, layers, loss, reduction, l2, batch = net
    reference, module = modules(network_spec(inputs, layers, loss, reduction=reduction, l2=l2))
    params, args = example_point(reference, seed, batch)
    for library in ("array-api-strict", "numpy"):
        assert compare(backend(library), reference, module, params, args) <= TOLERANCE


@settings(max_examples=150, **SETTINGS)
@given(g=graphs())
def test_random_graphs_equal_the_numpy_module(g):
    reference, module = modules(g.spec())
    for sizes in ({"m": 1, "n": 4, "k": 2}, {"m": 3, "n": 2, "k": 3}):
        params, inputs = draw_point(g, sizes, np.random.default_rng(len(g.steps)))
        args = [inputs[n] for n in g.inputs]
        worst = compare(backend("array-api-strict"), reference, module, params, args)
        assert worst <= TOLERANCE, g.spec()
        if g.output:
            taken = [inputs[n] for n in g.inputs if n in _predict_inputs(module)]
            expected = reference.predict(params, *taken)
            assert error(np.asarray(module.predict(params, *taken)), expected) <= TOLERANCE


def _predict_inputs(module) -> list[str]:
    parameters = inspect.signature(module.predict).parameters.values()
    return [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD][1:]


@pytest.mark.parametrize("library", ["dask", "torch", "jax", "cupy"])
@settings(max_examples=25, **SETTINGS)
@given(g=graphs())
def test_random_graphs_on_other_libraries(g, library):
    b = backend(library)
    reference, module = modules(g.spec())
    params, inputs = draw_point(g, {"m": 3, "n": 2, "k": 3}, np.random.default_rng(7))
    args = [inputs[n] for n in g.inputs]
    assert compare(b, reference, module, params, args) <= TOLERANCE, g.spec()


# ---- the promises: no writes, no values read in Python, one import -------------------------


SHAPE_LOGIC = {"_shapes", "_shape_error", "_check_shape"}
"""Pure Python on shapes and dicts of sizes, shared with the NumPy module."""


def test_the_module_writes_into_no_array():
    for spec in EXAMPLES.values():
        tree = ast.parse(array_api_module.generate(derive(load(spec))))
        functions = [f for f in tree.body if isinstance(f, ast.FunctionDef)]
        assert {"forward", "backward", "loss_and_grad", "_input"} <= {f.name for f in functions}
        for node in (n for f in functions if f.name not in SHAPE_LOGIC for n in ast.walk(f)):
            assert not isinstance(node, ast.AugAssign), ast.unparse(node)
            if isinstance(node, ast.Assign):
                assert all(not isinstance(t, ast.Subscript) for t in node.targets)
            if isinstance(node, ast.keyword):
                assert node.arg != "out", ast.unparse(node)


def test_the_module_imports_array_api_compat_and_the_standard_library_only():
    for spec in EXAMPLES.values():
        source = array_api_module.generate(derive(load(spec)))
        assert imported_packages(source) == {"array_api_compat", "math", "random"}, spec


def test_the_modules_pass_ruff(tmp_path):
    """As the NumPy modules do: laid out as ruff lays code out, nothing to lint."""
    for spec in EXAMPLES.values():
        source = array_api_module.generate(derive(load(spec)))
        (tmp_path / f"{spec.stem}.py").write_text(source, encoding="utf-8")
    config = str(ROOT / "pyproject.toml")
    for args in (["check"], ["format", "--check"]):
        run = subprocess.run(
            [sys.executable, "-m", "ruff", *args, "--config", config, str(tmp_path)],
            capture_output=True,
            text=True,
        )
        assert run.returncode == 0, run.stdout + run.stderr


def test_pytorch_autograd_through_forward_equals_backward(example_modules):
    """Autograd records every operation of ``forward`` on tensors that require gradients
    (it refuses writes into them) and differentiates it independently of ``backward``."""
    backend("torch")
    import torch

    for name, (reference, module) in example_modules.items():
        params, inputs = example_point(reference, seed=3)
        p = {n: torch.tensor(v, requires_grad=True) for n, v in params.items()}
        args = [torch.asarray(a) for a in inputs]
        loss, cache = module.forward(p, *args)
        expected = torch.autograd.grad(loss, list(p.values()))
        grads = module.backward({n: v.detach() for n, v in p.items()}, cache)
        for param, auto in zip(p, expected, strict=True):
            got = grads[param].detach().numpy()
            assert error(got, auto.numpy()) <= TOLERANCE, (name, param)


def test_jax_jit_traces_every_function(example_modules):
    """jit traces with abstract arrays: any value read in Python would fail to trace."""
    b = backend("jax")
    import jax

    for reference, module in example_modules.values():
        params, inputs = example_point(reference, seed=4)
        p, args = params_and_inputs(b, params, inputs)
        loss, grads = jax.jit(module.loss_and_grad)(p, *args)
        expected_loss, expected = reference.loss_and_grad(params, *inputs)
        assert error(np.asarray(loss), np.asarray(expected_loss)) <= TOLERANCE
        for name, grad in expected.items():
            assert error(np.asarray(grads[name]), grad) <= TOLERANCE


def test_dask_computes_nothing_until_asked(example_modules):
    b = backend("dask")
    from dask.callbacks import Callback

    computed = []

    class Count(Callback):
        def _start(self, dsk):
            computed.append(len(dsk))

    reference, module = example_modules["mlp_digits"]
    params, inputs = example_point(reference, seed=5, batch=8)
    p, args = params_and_inputs(b, params, inputs)
    with Count():
        loss, grads = module.loss_and_grad(p, *args)
        assert computed == []
        assert b.is_array(loss) and all(b.is_array(g) for g in grads.values())
        loss.compute()
    assert len(computed) == 1


# ---- what the module accepts -------------------------------------------------------------------

SPEC = network_spec(4, [(5, "tanh"), (3, "identity")], "softmax_cross_entropy", l2=0.01)


def test_mixed_libraries_and_non_arrays_are_refused_naming_them():
    torch = pytest.importorskip("torch")
    _, module = modules(SPEC)
    params = module.init_params(array_api_compat.numpy, 0)
    X = np.zeros((2, 4))
    T = np.eye(3)[[0, 1]]
    with pytest.raises(ValueError, match=r"one library: params\['W1'\] is of .*numpy.*X is of"):
        module.forward(params, torch.zeros((2, 4), dtype=torch.float64), T)
    with pytest.raises(ValueError, match="X must be an array of an array API library"):
        module.forward(params, [[0.0] * 4] * 2, T)
    with pytest.raises(ValueError, match=r"X must have shape \(m, 4\), got \(2, 5\)"):
        module.forward(params, np.zeros((2, 5)), T)
    with pytest.raises(ValueError, match="X has dtype float32 but the parameters have float64"):
        module.forward(params, np.zeros((2, 4), dtype=np.float32), T)
    with pytest.raises(ValueError, match=r"params\['b1'\] has dtype float32"):
        module.forward(dict(params, b1=params["b1"].astype(np.float32)), X, T)
    with pytest.raises(ValueError, match="X is empty"):
        module.forward(params, np.zeros((0, 4)), np.zeros((0, 3)))
    with pytest.raises(ValueError, match="params is missing"):
        module.forward({"W1": params["W1"]}, X, T)


@pytest.mark.parametrize("library", ["numpy", "array-api-strict", "torch", "jax"])
def test_init_params_are_the_same_numbers_on_every_library(library):
    b = backend(library)
    _, module = modules(SPEC)
    reference = module.init_params(array_api_compat.numpy, rng=7)
    with running(b):
        made = module.init_params(array_api_compat.array_namespace(b.asarray(np.zeros(1))), 7)
        for name, shape in module.PARAM_SHAPES.items():
            assert b.is_array(made[name]) and tuple(made[name].shape) == shape
            assert b.dtype_name(made[name]) == "float64"
            np.testing.assert_array_equal(b.numpy(made[name]), reference[name])
    assert np.std(reference["W1"]) > 0 and not np.any(reference["b1"])


def test_generate_target_array_api(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "tiny.toml"
    spec.write_text(SPEC)
    result = CliRunner().invoke(main, ["generate", "--target", "array-api", str(spec)])
    assert result.exit_code == 0, result.output
    assert result.output == "wrote generated/net_array_api.py\n"
    module = load_module(tmp_path / "generated" / "net_array_api.py")
    assert (module.ROW_SPLIT["size"], module.ROW_SPLIT["loss"]) == ("m", "mean")
    check = CliRunner().invoke(main, ["check", "generated/net_array_api.py"])
    assert check.exit_code == 0 and "ok: largest relative error" in check.output
    again = array_api_module.generate(derive(load(spec)))
    assert (tmp_path / "generated" / "net_array_api.py").read_text() == again  # deterministic


def test_a_broken_array_api_form_is_never_written(tmp_path, monkeypatch):
    """The array API module is verified before it is written, as the NumPy module is."""
    spec = tmp_path / "tiny.toml"
    spec.write_text(SPEC)
    ewise = OPS["ewise"]
    original = type(ewise).array_api

    def off(self, args, attrs, pr):
        return f"1.01 * ({original(self, args, attrs, pr)})"

    monkeypatch.setattr(type(ewise), "array_api", off)
    out = tmp_path / "out.py"
    result = CliRunner().invoke(main, ["generate", "--target", "array-api", str(spec), "-o", out])
    assert result.exit_code == 1
    assert "disagrees with finite differences" in result.output
    assert not out.exists()

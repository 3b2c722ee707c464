"""Hessian-vector products: generated ``hvp``, ``loss_grad_hvp`` and ``hessian`` against finite
differences of the gradient, closed forms written here, symmetry, and the module's API."""

from __future__ import annotations

import dataclasses
import functools
import warnings

import numpy as np
import pytest

from symbp.analysis.gradcheck import check_hvp, random_inputs, random_params
from symbp.analysis.lines import verify
from symbp.analysis.verify import VerificationError, verify_source
from symbp.derivation import derive
from symbp.emit.latex import render_latex
from symbp.emit.latex_hvp import hvp_section
from symbp.emit.latex_notation import notation_for
from symbp.emit.latex_writer import Writer
from symbp.emit.numpy_module import generate
from symbp.front.spec import loads
from symbp.ir.display import HessVec, Tangent
from symbp.ir.functions import ACTIVATIONS
from symbp.loader import module_from_source
from tests.conftest import ROOT, network_spec
from tests.test_network_gradients import GRID, _layers

EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))


@functools.cache
def module_of(text: str):
    derivation = derive(loads(text))
    return module_from_source(generate(derivation), derivation.model.name)


def grid_spec(act, loss, depth, reduction, l2) -> str:
    return network_spec(3, _layers(act, loss, depth), loss, reduction=reduction, l2=l2)


WORST: dict[str, float] = {}


@pytest.mark.parametrize(("act", "loss", "depth", "reduction", "l2"), GRID)
def test_network_hvp_matches_finite_differences_of_the_gradient(act, loss, depth, reduction, l2):
    """Every activation × loss, depths 1-4: each entry of H·V against the fourth-order
    central difference of the gradient along V."""
    module = module_of(grid_spec(act, loss, depth, reduction, l2))
    result = check_hvp(module, batch=3, seed=depth)
    WORST[f"{act} {loss} {depth}"] = result.max_rel_error
    assert result.ok, result.table()


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_hvp_matches_finite_differences_of_the_gradient(path):
    module = module_of(path.read_text())
    for seed in range(3):
        result = check_hvp(module, seed=seed)
        assert result.ok, result.table()


def _point(module, seed: int, sizes=None):
    rng = np.random.default_rng(seed)
    sizes = sizes or {d: 3 for s in module.INPUT_SHAPES.values() for d in s if isinstance(d, str)}
    sizes |= {d: 3 for s in module.PARAM_SHAPES.values() for d in s if isinstance(d, str)}
    params = random_params(module, rng, sizes)
    args = list(random_inputs(module, rng, sizes).values())
    return params, args, rng


def _inner(a: dict, b: dict) -> float:
    return sum(float(np.vdot(a[k], b[k])) for k in a)


SYMMETRY_SPECS = [p.read_text() for p in EXAMPLES] + [
    grid_spec(act, "softmax_cross_entropy", 3, "mean", 0.1) for act in ACTIVATIONS
]


@pytest.mark.parametrize("text", SYMMETRY_SPECS)
def test_hvp_is_symmetric(text):
    """uᵀ(Hv) = vᵀ(Hu): the second pass is the transpose of nothing but the Hessian."""
    module = module_of(text)
    params, args, rng = _point(module, 7)
    for _ in range(3):
        u = {k: rng.standard_normal(np.shape(p)) for k, p in params.items()}
        v = {k: rng.standard_normal(np.shape(p)) for k, p in params.items()}
        uhv = _inner(u, module.hvp(params, *args, v))
        vhu = _inner(v, module.hvp(params, *args, u))
        assert abs(uhv - vhu) <= 1e-10 * max(1.0, abs(uhv)), (uhv, vhu)


@pytest.mark.parametrize("text", SYMMETRY_SPECS[: len(EXAMPLES)])
def test_hessian_is_the_stacked_hvp_columns(text):
    module = module_of(text)
    params, args, _ = _point(module, 3)
    if sum(np.size(p) for p in params.values()) > module.HESSIAN_LIMIT:
        with pytest.raises(ValueError, match="at most 2,000 parameter entries"):
            module.hessian(params, *args)
        return
    H = module.hessian(params, *args)
    sizes = [np.size(params[k]) for k in module.PARAM_SHAPES]
    n = sum(sizes)
    assert H.shape == (n, n) and H.dtype == np.float64
    np.testing.assert_array_equal(H, H.T)
    columns = np.empty((n, n))
    flat = np.zeros(n)
    ends = np.cumsum(sizes)
    for j in range(n):
        flat[:] = 0
        flat[j] = 1
        V = {
            k: flat[e - s : e].reshape(np.shape(params[k]))
            for k, s, e in zip(module.PARAM_SHAPES, sizes, ends, strict=True)
        }
        hv = module.hvp(params, *args, V)
        columns[:, j] = np.concatenate([np.ravel(hv[k]) for k in module.PARAM_SHAPES])
    np.testing.assert_allclose(H, columns, rtol=1e-12, atol=1e-14 * np.abs(columns).max())


def test_seed004_hessian_closed_form():
    """Seed 004's model, E = ½(σ(wx + b) − t)² + λ·½w². With y = σ(z), z = wx + b and
    E_zz = (y(1 − y))² + (y − t)·y(1 − y)(1 − 2y), the Hessian in (w, b) is
    [[x² E_zz + λ, x E_zz], [x E_zz, E_zz]]."""
    module = module_of((ROOT / "examples" / "logistic_l2.toml").read_text())
    rng = np.random.default_rng(4)
    for _ in range(5):
        w, b, x, t = rng.standard_normal(4)
        lam = 0.1
        y = 1 / (1 + np.exp(-(w * x + b)))
        s = y * (1 - y)
        e_zz = s * s + (y - t) * s * (1 - 2 * y)
        expected = np.array([[x * x * e_zz + lam, x * e_zz], [x * e_zz, e_zz]])
        H = module.hessian({"w": w, "b": b}, x, t, lam=lam)
        np.testing.assert_allclose(H, expected, rtol=1e-12, atol=1e-15)


def test_hessian_refuses_more_than_the_limit():
    module = module_of(network_spec(50, [(40, "tanh"), (2, "identity")], "squared_error"))
    params = module.init_params(0)
    X, T = np.zeros((2, 50)), np.zeros((2, 2))
    with pytest.raises(ValueError, match=r"at most 2,000 parameter entries; these parameters "):
        module.hessian(params, X, T)


def test_loss_grad_hvp_is_loss_and_grad_and_hvp():
    module = module_of(grid_spec("tanh", "softmax_cross_entropy", 3, "mean", 0.1))
    params, args, rng = _point(module, 1)
    V = {k: rng.standard_normal(np.shape(p)) for k, p in params.items()}
    loss, grads, hv = module.loss_grad_hvp(params, *args, V)
    loss2, grads2 = module.loss_and_grad(params, *args)
    hv2 = module.hvp(params, *args, V)
    assert loss == loss2
    for k in params:
        np.testing.assert_array_equal(grads[k], grads2[k])
        np.testing.assert_array_equal(hv[k], hv2[k])


API_SPECS = [
    grid_spec(act, loss, 3, "mean", 0.05)
    for act in ACTIVATIONS
    for loss in ("squared_error", "softmax_cross_entropy", "sigmoid_binary_cross_entropy")
] + [p.read_text() for p in EXAMPLES]


@pytest.mark.parametrize("text", API_SPECS)
def test_calls_leave_their_arguments_intact_and_return_fresh_arrays(text):
    module = module_of(text)
    params, args, rng = _point(module, 2)
    V = {k: rng.standard_normal(np.shape(p)) for k, p in params.items()}
    before = [np.copy(a) for a in [*params.values(), *args, *V.values()]]
    _, grads, hv = module.loss_grad_hvp(params, *args, V)
    hv2 = module.hvp(params, *args, V)
    for old, new in zip(before, [*params.values(), *args, *V.values()], strict=True):
        np.testing.assert_array_equal(old, new)
    given = [*params.values(), *args, *V.values()]
    returned = [*grads.values(), *hv.values(), *hv2.values()]
    for i, out in enumerate(returned):
        for other in given + returned[i + 1 :]:
            assert not np.shares_memory(out, other)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize(
    "loss", ["squared_error", "softmax_cross_entropy", "sigmoid_binary_cross_entropy"]
)
def test_hvp_keeps_the_dtype_and_stays_finite_at_extreme_preactivations(dtype, act, loss):
    """Pre-activations of ±1000: no NaN, no inf, no NumPy warning, float32 kept."""
    last = act if loss == "squared_error" else "identity"
    module = module_of(network_spec(2, [(3, act), (2, last)], loss, l2=0.01))
    params = module.init_params(0, dtype=dtype)
    params["W1"][...] = np.array([[1.0, -1.0, 0.5], [0.0, 0.0, 0.0]], dtype=dtype)
    params["W2"][...] = np.array([[1.0, -1.0], [1.0, 1.0], [-1.0, 0.0]], dtype=dtype)
    X = np.array([[1000.0, 0.0], [-1000.0, 0.0], [0.0, 0.0]], dtype=dtype)
    T = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=dtype)
    V = {k: np.ones_like(v) for k, v in params.items()}
    with np.errstate(over="raise", divide="raise", invalid="raise"), warnings.catch_warnings():
        warnings.simplefilter("error")
        hv = module.hvp(params, X, T, V)
        loss_value, grads, hv2 = module.loss_grad_hvp(params, X, T, V)
        H = module.hessian(params, X, T)
    assert np.asarray(loss_value).dtype == dtype and H.dtype == dtype
    assert np.all(np.isfinite(H))
    for name in params:
        for values in (hv, hv2, grads):
            assert values[name].dtype == dtype, name
            assert values[name].shape == params[name].shape
            assert np.all(np.isfinite(values[name])), name


def test_direction_errors_name_the_argument():
    module = module_of(grid_spec("tanh", "squared_error", 2, "mean", None))
    params = module.init_params(0)
    X, T = np.zeros((2, 3)), np.zeros((2, 2))
    V = {k: np.zeros_like(v) for k, v in params.items()}
    with pytest.raises(ValueError, match=r"V must be a dict of arrays keyed"):
        module.hvp(params, X, T, [1, 2])
    with pytest.raises(ValueError, match=r"V is missing \['b2'\]"):
        module.hvp(params, X, T, {k: v for k, v in V.items() if k != "b2"})
    with pytest.raises(ValueError, match=r"V\['W1'\] must have shape \(3, 4\), got \(4, 3\)"):
        module.hvp(params, X, T, dict(V, W1=np.zeros((4, 3))))
    small = {k: v.astype(np.float32) for k, v in V.items()}
    with pytest.raises(ValueError, match=r"V\['W1'\] has dtype float32 but the parameters"):
        module.hvp(params, X, T, small)
    lists = {k: v.tolist() for k, v in V.items()}  # numbers convert, as inputs do
    assert module.hvp(params, X, T, lists)["W1"].dtype == np.float64


def test_verification_refuses_a_wrong_hvp():
    """A module whose hvp is wrong (one sign flipped in the second pass) is not written."""
    derivation = derive(loads(grid_spec("tanh", "squared_error", 2, "mean", None)))
    source = generate(derivation)
    start = source.index("def loss_grad_hvp")
    body = source[start:]
    broken = body.replace("hb1 = hZ1.sum(axis=0)", "hb1 = -hZ1.sum(axis=0)", 1)
    assert broken != body
    with pytest.raises(VerificationError) as caught:
        verify_source(source[:start] + broken, "broken")
    assert caught.value.what == "Hessian-vector product"
    assert verify_source(source, "fine").hvp_worst < 1e-6


def test_operation_counts_of_the_hvp_grow_as_corollary_1_says():
    """(e) ÷ (N + l) stays bounded as depth grows: each layer adds the same operations."""
    from symbp.analysis.redundancy import report

    ratios = []
    for depth in range(1, 6):
        text = network_spec(2, [(2, "tanh")] * (depth - 1) + [(1, "identity")], "squared_error")
        result = report(loads(text), repeated=False, max_ops=1)
        ratios.append(result.corollary_ratio)
        # A linear model's Hessian needs no forward pass; any other's needs it and more.
        assert (result.hvp_ops > result.forward_ops) == (depth > 1)
    assert max(ratios) < 6 and ratios[-1] - ratios[-2] < 0.1 * ratios[-1]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_every_line_of_the_hvp_section_holds(path):
    """The line verifier over the section: each step defines its value, each tangent Ẋ is
    compared with ∂_V X and each block of H·V with (H V)_p, both from the verifier's own
    forward sweep over its own adjoints (SymPy's derivatives of the ops' scalar meanings)."""
    derivation = derive(loads(path.read_text()))
    section = hvp_section(Writer(derivation, notation_for(derivation)))
    lines = [line for block in section.blocks for line in block.lines]
    checked = [line for line in lines if any(isinstance(s, Tangent | HessVec) for s in line.sides)]
    assert len(checked) >= len(derivation.program.params)
    result = verify(derivation, lines)
    assert result.lines == len(lines) and not result.failures, result.failures[:3]


def test_a_wrong_step_of_the_hvp_section_is_caught():
    """One step's value doubled: the tangents or the blocks of H·V after it disagree with the
    verifier's own."""
    derivation = derive(loads((ROOT / "examples" / "mlp_digits.toml").read_text()))
    section = hvp_section(Writer(derivation, notation_for(derivation)))
    lines = [line for block in section.blocks for line in block.lines]
    k = next(i for i, line in enumerate(lines) if i > 0 and line.defines)
    ((symbol, value),) = lines[k].defines
    lines[k] = dataclasses.replace(lines[k], defines=((symbol, 2 * value),))
    assert verify(derivation, lines).failures


def test_the_document_has_the_hvp_section_only_when_asked():
    derivation = derive(loads((ROOT / "examples" / "logistic_l2.toml").read_text()))
    plain = render_latex(derivation, timeout=30)
    assert "Hessian-vector product}" not in plain
    with_hvp = render_latex(derivation, timeout=30, sections=[hvp_section])
    assert r"\section{The Hessian-vector product}" in with_hvp
    assert r"\hat{w} &= " in with_hvp and r"\dot{z} &= \partial_{V} z" in with_hvp


def test_a_value_named_V_renames_the_direction_argument():
    """A spec may name a value V: hvp's direction is then V_, and the model's V stays V."""
    module = module_of(
        'name = "vv"\n[graph]\ninputs = { X = "m x 3" }\nparams = { W = "3 x 2", V = "2" }\n'
        'steps = ["H = tanh(X @ W)", "L = sum(H @ V)"]\nloss = "L"\n'
    )
    import inspect

    assert list(inspect.signature(module.hvp).parameters) == ["params", "X", "V_"]
    assert check_hvp(module, seed=1).ok

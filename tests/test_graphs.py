"""[graph] specs: seed 004's closed forms, the graph examples, constants, sizes."""

from __future__ import annotations

import numpy as np
import pytest

from symbp.analysis.gradcheck import check_module
from symbp.derivation import derive
from symbp.emit.numpy_module import generate
from symbp.front.spec import load
from symbp.loader import load_module
from tests.conftest import ROOT

GRAPH_EXAMPLES = ["logistic_l2", "residual_block", "tied_autoencoder", "swish_regression"]


@pytest.fixture(scope="module")
def modules(tmp_path_factory):
    out = tmp_path_factory.mktemp("graphs")
    loaded = {}
    for name in GRAPH_EXAMPLES:
        derivation = derive(load(ROOT / "examples" / f"{name}.toml"))
        path = out / f"{name}.py"
        path.write_text(generate(derivation), encoding="utf-8")
        loaded[name] = load_module(path)
    return loaded


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


@pytest.mark.parametrize(
    ("w", "b", "x", "t", "lam"), [(0.3, -0.2, 1.5, 1.0, 0.1), (-1.2, 0.7, -0.4, 0.0, 2.5)]
)
def test_seed004_closed_forms(modules, w, b, x, t, lam):
    """∂E/∂w = (σ(wx+b) − t)σ′(wx+b)x + λw and ∂E/∂b = (σ(wx+b) − t)σ′(wx+b) (seed 004)."""
    module = modules["logistic_l2"]
    params = {"w": np.float64(w), "b": np.float64(b)}
    loss, grads = module.loss_and_grad(params, x, t, lam=lam)
    s = _sigmoid(w * x + b)
    shared = (s - t) * s * (1 - s)
    assert loss == pytest.approx(0.5 * (s - t) ** 2 + lam * 0.5 * w**2, rel=1e-14)
    assert grads["w"] == pytest.approx(shared * x + lam * w, rel=1e-13)
    assert grads["b"] == pytest.approx(shared, rel=1e-13)
    assert np.shape(grads["w"]) == ()


def test_constants_are_keywords_with_their_defaults(modules):
    module = modules["logistic_l2"]
    params = {"w": np.float64(0.5), "b": np.float64(0.1)}
    default, _ = module.loss_and_grad(params, 1.0, 0.0)
    explicit, _ = module.loss_and_grad(params, 1.0, 0.0, lam=0.1)
    changed, _ = module.loss_and_grad(params, 1.0, 0.0, lam=1.0)
    assert default == explicit
    assert changed == pytest.approx(default + 0.9 * 0.5 * 0.25)


@pytest.mark.parametrize("name", GRAPH_EXAMPLES)
@pytest.mark.parametrize("batch", [1, 5])
def test_graph_examples_pass_finite_differences(modules, name, batch):
    result = check_module(modules[name], batch=batch, seed=batch)
    assert result.ok, result.table()


def test_named_sizes_stay_symbolic_and_integer_sizes_are_checked(modules):
    module = modules["residual_block"]
    params = module.init_params(0)
    for m in (1, 7, 64):
        loss, _ = module.loss_and_grad(params, np.zeros((m, 4)), np.eye(3)[np.arange(m) % 3])
        assert np.isfinite(loss)
    with pytest.raises(ValueError, match=r"X must have shape \(m, 4\)"):
        module.forward(params, np.zeros((3, 5)), np.eye(3))


def test_a_value_used_twice_sums_its_contributions(modules):
    """Tied weights: W's gradient is the encoder's plus the decoder's, checked by hand."""
    module = modules["tied_autoencoder"]
    rng = np.random.default_rng(0)
    params = {k: rng.standard_normal(v) for k, v in module.PARAM_SHAPES.items()}
    X = rng.standard_normal((4, 6))
    _, grads = module.loss_and_grad(params, X, decay=0.0)
    W, b, c = params["W"], params["b"], params["c"]
    H = _sigmoid(X @ W + b)
    Y = H @ W.T + c
    dY = (Y - X) / 4
    dH = dY @ W
    dpre = dH * H * (1 - H)
    np.testing.assert_allclose(grads["W"], X.T @ dpre + dY.T @ H, rtol=1e-12)


def test_user_function_as_network_activation(build_module):
    """A [functions] entry works as a layer activation; its derivative is SymPy's."""
    spec = (
        'name = "swish_net"\n[functions]\nswish = "z * sigmoid(z)"\n'
        '[network]\ninputs = 3\nlayers = [{ units = 4, activation = "swish" }, '
        '{ units = 2, activation = "identity" }]\nloss = "softmax_cross_entropy"\n'
    )
    module, _ = build_module(spec)
    assert check_module(module, batch=4, seed=1).ok
    z = np.linspace(-3, 3, 7)
    np.testing.assert_allclose(module.swish(z), z / (1 + np.exp(-z)), rtol=1e-14)


def _graph(inputs: str, params: str, steps: list[str], *, extra: str = "", head: str = "") -> str:
    body = ",\n".join(f'  "{s}"' for s in steps)
    return (
        f'name = "unusual"\n{head}[graph]\ninputs = {{ {inputs} }}\nparams = {{ {params} }}\n'
        f'{extra}steps = [\n{body}\n]\nloss = "E"\n'
    )


UNUSUAL = {
    "no inputs at all": _graph("", 'W = "3 x 3", b = "3"', ["E = sum(W*W)/2 + sum(tanh(b)**2)"]),
    "sizes of one": _graph(
        'x = "m x 1", y = "1"', 'w = "1 x 1", b = "1"', ["z = x @ w + b", "E = mean((z - y)**2)"]
    ),
    "vector dot products": _graph(
        'A = "4 x 3", t = "4"', 'x = "3"', ["r = A @ x - t", "E = r @ r / 2"]
    ),
    "transposes and axes": _graph(
        'X = "m x 4"',
        'W = "4 x 2", v = "2"',
        ["H = (X @ W.T.T).T", "a = mean(H, axis=0)", "c = sum(H, axis=-2)", "E = a @ c + v @ v"],
    ),
    "several named sizes": _graph(
        'X = "batch x features", T = "batch x classes"',
        'W = "features x hidden", V = "hidden x classes", c = "classes"',
        ["H = relu(X @ W)", "Z = H @ V + c", "E = softmax_cross_entropy(Z, T)"],
    ),
    "batch normalisation": _graph(
        'X = "m x 4"',
        'g = "2", beta = "2", W = "4 x 2"',
        [
            "H = X @ W",
            "mu = mean(H, axis=0)",
            "Hc = H - mu",
            "v = mean(Hc**2, axis=0)",
            "Y = Hc / sqrt(v + eps) * g + beta",
            "E = mean(tanh(Y)**2)",
        ],
        extra="constants = { eps = 1e-5 }\n",
    ),
    "attention-like": _graph(
        'X = "m x 4"',
        'Wq = "4 x 3", Wk = "4 x 3", Wv = "4 x 3"',
        [
            "A = exp(tanh((X @ Wq) @ (X @ Wk).T))",
            "P = A / sum(A, axis=0)",
            "E = mean((P @ (X @ Wv))**2)",
        ],
    ),
    "names near the reserved ones": _graph(
        'param = "scalar", grad = "scalar"',
        'dim = "scalar", caches = "scalar", np_ = "scalar", d = "scalar"',
        ["Loss = (dim*param - grad)**2 + caches**2 + np_**2 + d**2 / m", "E = Loss"],
        extra="constants = { m = 4 }\n",
    ),
    "a user function of a user function, unicode description": _graph(
        'X = "m x 3", y = "m"',
        'W = "3 x 4", v = "4"',
        ["H = mixed(X @ W) * swish2(X @ W)", "p = H @ v", "E = mean((p - y)**2) / 2"],
        head="description = \"½(p − y)², w̄ and σ′: «unicode» 'quotes'\\tand a tab\"\n"
        '[functions]\nswish2 = "z * sigmoid(z)"\nmixed = "swish2(z) + z * tanh(softplus(z))"\n',
    ),
    "a loss before unused steps": _graph(
        'x = "scalar", unused = "m x 7"',
        'w = "scalar"',
        ["E = (w*x - 1)**2 * p + q", "after = E * 3", "junk = exp(w)"],
        extra="constants = { p = 3, q = -1.5 }\n",
    ),
}


@pytest.mark.parametrize("spec", UNUSUAL.values(), ids=UNUSUAL.keys())
def test_unusual_but_valid_graphs_pass_finite_differences(build_module, spec):
    module, _ = build_module(spec)
    for batch, seed in ((1, 0), (5, 3)):
        result = check_module(module, batch=batch, seed=seed)
        assert result.ok, result.table()


def test_unusual_but_valid_network_passes_finite_differences(build_module):
    """One unit per layer, a user activation of a user function, L2 and the sum reduction."""
    spec = (
        'name = "narrow"\n[functions]\ng1 = "z * sigmoid(z)"\ng2 = "g1(z) + 0.1*g1(-z)"\n'
        '[network]\ninputs = 1\nlayers = [{ units = 1, activation = "g2" }, '
        '{ units = 1, activation = "elu" }, { units = 1 }]\n'
        'loss = "sigmoid_binary_cross_entropy"\nreduction = "sum"\nl2 = 0.5\n'
    )
    module, _ = build_module(spec)
    assert check_module(module, batch=3, seed=2).ok

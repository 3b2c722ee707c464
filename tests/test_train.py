"""symbp.train: minibatches, SGD, the loop, accuracy, and parameters in .npz files (issue 15).

The loop is tested on networks and graphs, batched (one call per minibatch) and sample by
sample (seed 004's scalars), against updates and means written out here.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from symbp import train
from symbp.files import OutputError
from symbp.loader import load_module
from symbp.provenance import Provenance, provenance
from symbp.train.progress import Progress
from tests.conftest import ROOT, network_spec

SEED004 = ROOT / "generated" / "logistic_l2.py"
RESIDUAL = ROOT / "generated" / "residual_block.py"


# ---------------------------------------------------------------- minibatches and SGD


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 300), batch=st.integers(1, 400), seed=st.integers(0, 2**32 - 1))
def test_every_sample_once_per_epoch(n, batch, seed):
    batches = list(train.minibatches(n, batch, seed))
    seen = np.concatenate(batches)
    assert sorted(seen.tolist()) == list(range(n))
    assert [len(b) for b in batches[:-1]] == [batch] * (len(batches) - 1)
    assert 1 <= len(batches[-1]) <= batch and len(batches) == math.ceil(n / batch)
    again = list(train.minibatches(n, batch, seed))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))


def test_epochs_are_shuffled_differently():
    rng = np.random.default_rng(0)
    first, second = (np.concatenate(list(train.minibatches(50, 7, rng))) for _ in range(2))
    assert not np.array_equal(first, second)


@pytest.mark.parametrize(("n", "batch"), [(0, 3), (5, 0)])
def test_minibatches_need_samples_and_a_size(n, batch):
    with pytest.raises(ValueError):
        list(train.minibatches(n, batch))


@settings(max_examples=50, deadline=None)
@given(
    lr=st.floats(1e-4, 1.0),
    momentum=st.sampled_from([0.0, 0.5, 0.9, 0.99]),
    seed=st.integers(0, 2**32 - 1),
    steps=st.integers(1, 6),
)
def test_sgd_is_seed_003s_update_with_heavy_ball_momentum(lr, momentum, seed, steps):
    rng = np.random.default_rng(seed)
    params = {"W": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    expected = {k: v.copy() for k, v in params.items()}
    velocity = {k: np.zeros_like(v) for k, v in params.items()}
    optimizer = train.SGD(lr, momentum)
    for _ in range(steps):
        grads = {k: rng.standard_normal(v.shape) for k, v in params.items()}
        optimizer.step(params, grads)
        for k in expected:  # v ← βv + g, θ ← θ − ηv; with β = 0, θ ← θ − ηg
            velocity[k] = momentum * velocity[k] + grads[k]
            expected[k] = expected[k] - lr * velocity[k]
    for k in params:
        np.testing.assert_allclose(params[k], expected[k], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("lr", "momentum"), [(0.0, 0.0), (-1.0, 0.0), (math.nan, 0), (0.1, 1.0)])
def test_sgd_refuses_a_rate_or_momentum_that_cannot_converge(lr, momentum):
    with pytest.raises(ValueError):
        train.SGD(lr, momentum)


# ---------------------------------------------------------------- accuracy


def test_accuracy_of_classes_and_of_probabilities():
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert train.accuracy(scores, [1, 0, 0]) == pytest.approx(2 / 3)
    assert train.accuracy(scores, np.eye(2)[[1, 0, 0]]) == pytest.approx(2 / 3)
    probabilities = np.array([[0.9], [0.4], [0.5]])
    assert train.accuracy(probabilities, [[1.0], [1.0], [1.0]], "probability") == (
        pytest.approx(2 / 3)
    )
    with pytest.raises(ValueError, match="not 'real'"):
        train.accuracy(scores, scores, "real")


# ---------------------------------------------------------------- save and load


@st.composite
def parameter_dicts(draw):
    names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
    params = {}
    for name in draw(st.lists(names, min_size=1, max_size=5, unique=True)):
        dtype = draw(st.sampled_from([np.float64, np.float32, np.int64]))
        shape = tuple(draw(st.lists(st.integers(1, 4), max_size=2)))
        entries = st.integers(-(2**62), 2**62) if dtype is np.int64 else st.floats(width=32)
        values = draw(st.lists(entries, min_size=math.prod(shape), max_size=math.prod(shape)))
        params[name] = np.array(values, dtype=dtype).reshape(shape)  # nan and ±inf too
    return params


@settings(max_examples=100, deadline=None)
@given(params=parameter_dicts())
def test_save_then_load_gives_back_every_array(tmp_path_factory, params):
    path = tmp_path_factory.mktemp("npz") / "params.npz"
    train.save(path, params)
    assert provenance(path.read_bytes()) is Provenance.OURS
    loaded = train.load(path)
    assert list(loaded) == list(params)
    for name, value in params.items():
        assert loaded[name].dtype == value.dtype and loaded[name].shape == value.shape
        np.testing.assert_array_equal(loaded[name], value)
    train.save(path, params)  # its own file, unedited: replaced without force
    assert train.save(path, params) == path


def test_save_is_deterministic_and_keeps_what_symbp_did_not_write(tmp_path):
    params = {"w": np.arange(3.0), "b": np.float64(2.0)}
    first, second = tmp_path / "a.npz", tmp_path / "b.npz"
    train.save(first, params)
    train.save(second, params)
    assert first.read_bytes() == second.read_bytes()
    mine = tmp_path / "mine.npz"
    np.savez(mine, w=np.zeros(3))
    before = mine.read_bytes()
    with pytest.raises(OutputError, match=r"not written by symbp; use force=True to overwrite"):
        train.save(mine, params)
    assert mine.read_bytes() == before
    edited = bytearray(first.read_bytes())
    edited[40] ^= 0xFF
    first.write_bytes(bytes(edited))
    with pytest.raises(OutputError, match="edited since symbp wrote it"):
        train.save(first, params)
    train.save(mine, params, force=True)
    assert train.load(mine)["b"] == 2.0
    with pytest.raises(ValueError, match="name one"):
        train.save(tmp_path / "params.txt", params)


def test_load_checks_the_parameters_against_the_module(tmp_path):
    net = load_module(ROOT / "generated" / "mlp_digits.py")
    params = net.init_params(0)
    path = tmp_path / "p.npz"
    train.save(path, dict(reversed(list(params.items()))))
    assert list(train.load(path, net)) == list(net.PARAM_SHAPES)  # the module's order
    train.save(path, {k: v for k, v in params.items() if k != "b2"})
    with pytest.raises(ValueError, match=r"missing \['b2'\], extra \[\]"):
        train.load(path, net)
    train.save(path, dict(params, W2=np.zeros((32, 9))))
    with pytest.raises(ValueError, match=r"W2 must have shape \(32, 10\), got \(32, 9\)"):
        train.load(path, net)
    np.savez(tmp_path / "plain.npz", **params)  # any .npz loads: no pickle, no code
    assert set(train.load(tmp_path / "plain.npz", net)) == set(params)


# ---------------------------------------------------------------- the loop


@pytest.fixture(scope="module")
def net(tmp_path_factory):
    from symbp.derivation import derive
    from symbp.emit.numpy_module import generate
    from symbp.front.spec import loads

    spec = network_spec(4, [(8, "tanh"), (3, "identity")], "softmax_cross_entropy", l2=1e-3)
    path = tmp_path_factory.mktemp("train") / "net.py"
    path.write_text(generate(derive(loads(spec))), encoding="utf-8")
    return load_module(path)


def blobs(n: int, seed: int, classes: int = 3, features: int = 4):
    """Three well-separated clusters: a classifier must reach high accuracy on them."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=n)
    centers = 3 * np.eye(classes, features)
    return centers[labels] + 0.5 * rng.standard_normal((n, features)), labels


def test_fit_learns_and_reports_each_epoch(net, capsys):
    X, y = blobs(120, 0)
    start = net.init_params(rng=0)
    kept = {k: v.copy() for k, v in start.items()}
    params, history = train.fit(
        net,
        start,
        (X, y),
        epochs=8,
        batch_size=16,
        lr=0.1,
        momentum=0.9,
        rng=0,
        validation={"X": X[:30], "T": y[:30]},
        progress=False,
    )
    for name, value in kept.items():  # the caller's parameters are untouched
        np.testing.assert_array_equal(start[name], value)
    assert [e.epoch for e in history] == list(range(1, 9))
    assert history[-1].loss < history[0].loss < float(net.forward(start, X, y)[0])
    assert history[-1].accuracy >= 0.95 and history[-1].val_accuracy >= 0.95
    assert history[-1].loss == pytest.approx(float(net.forward(params, X, y)[0]), rel=1e-12)
    assert train.evaluate(net, params, (X, y)) == (history[-1].loss, history[-1].accuracy)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 8
    assert lines[0].startswith("epoch 1/8  loss ") and "  accuracy " in lines[0]
    assert "  val loss " in lines[0] and "  val accuracy " in lines[0]
    assert lines[0].endswith(" s")


def test_the_same_seed_gives_the_same_run(net):
    X, y = blobs(50, 1)
    runs = [
        train.fit(net, net.init_params(rng=3), (X, y), epochs=3, rng=seed, verbose=False)[0]
        for seed in (7, 7, 8)
    ]
    for name in net.PARAM_SHAPES:
        np.testing.assert_array_equal(runs[0][name], runs[1][name])
    assert any(not np.array_equal(runs[0][n], runs[2][n]) for n in net.PARAM_SHAPES)


def test_float64_data_trains_float32_parameters(net):
    """The module refuses float64 X with float32 parameters; the loop converts the data once."""
    X, y = blobs(40, 2)
    start = net.init_params(rng=0, dtype=np.float32)
    with pytest.raises(ValueError, match="X has dtype float64"):
        net.loss_and_grad(start, X, y)
    params, history = train.fit(net, start, (X, y), epochs=2, verbose=False)
    assert all(v.dtype == np.float32 for v in params.values())
    assert np.isfinite(history[-1].loss)


def test_a_graph_with_labels_and_an_output_is_a_classifier():
    module = load_module(RESIDUAL)  # output Z, T the target of softmax cross-entropy
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 3, size=90)
    X = np.eye(3, 4)[labels] * 2 + 0.3 * rng.standard_normal((90, 4))
    params, history = train.fit(
        module,
        module.init_params(rng=0),
        {"X": X, "T": labels},
        epochs=15,
        lr=0.2,
        momentum=0.5,
        rng=0,
        verbose=False,
    )
    assert history[-1].accuracy >= 0.95 > history[0].accuracy - 0.5
    assert history[-1].accuracy == train.accuracy(module.predict(params, X), labels)


def test_seed004_trains_sample_by_sample():
    """x and t are scalars: each sample is one call, a minibatch the mean of its samples."""
    module = load_module(SEED004)
    rng = np.random.default_rng(5)
    x = rng.uniform(-3, 3, size=60)
    t = (x > 0.5).astype(float)
    start = {"w": np.float64(0.0), "b": np.float64(0.0)}
    model = train._Model(module, None)
    assert not model.batched
    arrays = model.arrays((x, t), np.dtype(np.float64), "data")
    loss, grads = model.loss_and_grad(start, arrays, np.array([3, 1, 4]))
    each = [module.loss_and_grad(start, x[i], t[i]) for i in (3, 1, 4)]
    assert loss == pytest.approx(np.mean([float(e[0]) for e in each]), rel=1e-15)
    for name in ("w", "b"):
        assert grads[name] == pytest.approx(np.mean([e[1][name] for e in each]), rel=1e-15)
    params, history = train.fit(
        module,
        start,
        {"x": x, "t": t},
        epochs=30,
        batch_size=8,
        lr=1.0,
        rng=0,
        verbose=False,
        constants={"lam": 0.0},
    )
    assert history[-1].loss < history[0].loss and history[-1].accuracy is None
    assert params["w"] > 0.5 and 0.2 < -params["b"] / params["w"] < 0.8  # the boundary x = 0.5
    mean = np.mean(
        [float(module.forward(params, a, b, lam=0.0)[0]) for a, b in zip(x, t, strict=True)]
    )
    assert history[-1].loss == pytest.approx(mean, rel=1e-12)
    with pytest.raises(ValueError, match=r"no constants \['beta'\]; it has \['lam'\]"):
        train.fit(module, start, (x, t), constants={"beta": 1.0})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"X": np.zeros((3, 4))}, r"must hold the inputs \['X', 'T'\]: missing \['T'\]"),
        ((np.zeros((3, 4)),), r"must hold 2 arrays, one per input \['X', 'T'\]"),
        ((np.zeros((3, 4)), [0, 1]), "different numbers of samples: X has 3, T has 2"),
        ((np.zeros((0, 4)), np.zeros(0, dtype=int)), "holds no samples"),
        ((np.float64(1.0), [0]), "X is one number"),
    ],
)
def test_bad_data_is_named(net, data, message):
    with pytest.raises(ValueError, match=message):
        train.fit(net, net.init_params(0), data, verbose=False)


def test_inputs_without_one_shared_batch_axis_are_refused(build_module):
    module, _ = build_module(
        'name = "mixed"\n[graph]\ninputs = { X = "m x 3", u = "3" }\nparams = { w = "3" }\n'
        'steps = ["E = sum((X * w - u)**2)"]\nloss = "E"\n'
    )
    with pytest.raises(ValueError, match="X starts with m, u starts with no batch size"):
        train.fit(module, module.init_params(0), (np.zeros((2, 3)), np.zeros((2, 3))))


def test_a_diverging_run_stops_with_the_reason(build_module):
    module, _ = build_module(network_spec(4, [(3, "identity")], "squared_error"))
    X, y = blobs(30, 6)
    diverging = pytest.raises(FloatingPointError, match=r"after epoch \d+; try a smaller lr")
    with diverging, np.errstate(all="ignore"):
        train.fit(module, module.init_params(0), (X, np.eye(3)[y]), lr=1e3, epochs=100)


def test_the_progress_bar_draws_on_a_terminal_only(capsys):
    stream = io.StringIO()
    bar = Progress(enabled=True, stream=stream)
    bar.update(2, 5, 3, 3)
    bar.clear()
    text = stream.getvalue()
    assert text.startswith("\repoch 2/5 [" + "#" * 30 + "] 3/3")
    assert text.endswith("\r") and text.count("\r") == 3
    assert Progress(stream=io.StringIO()).enabled is False  # not a terminal
    quiet = io.StringIO()
    Progress(enabled=False, stream=quiet).update(1, 1, 1, 1)
    assert quiet.getvalue() == ""


# ---------------------------------------------------------------- the picture


def test_the_history_plot_is_written_once_and_kept_from_foreign_files(tmp_path):
    from symbp.train.plot import plot_history

    history = [train.Epoch(e, 1 / e, 0.5 + e / 10, 1.2 / e, 0.4 + e / 10, 0.01) for e in (1, 2, 3)]
    path = tmp_path / "run.png"
    figure = plot_history(history, path, title="digits")
    assert [ax.get_ylabel() for ax in figure.axes] == ["loss", "accuracy"]
    assert [len(ax.lines) for ax in figure.axes] == [2, 2]
    assert provenance(path.read_bytes()) is Provenance.OURS
    first = path.read_bytes()
    plot_history(history, path, title="digits")  # its own file: replaced, the same bytes
    assert path.read_bytes() == first
    regression = [train.Epoch(e, 1 / e, None, None, None, 0.01) for e in (1, 2)]
    assert [ax.get_ylabel() for ax in plot_history(regression).axes] == ["loss"]
    mine = tmp_path / "mine.png"
    mine.write_bytes(b"\x89PNG\r\n\x1a\nmine")
    with pytest.raises(OutputError, match="use force=True"):
        plot_history(history, mine)
    assert mine.read_bytes() == b"\x89PNG\r\n\x1a\nmine"
    with pytest.raises(ValueError, match="empty"):
        plot_history([])

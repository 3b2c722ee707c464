"""symbp.dask: a batch's row chunks on the workers of a dask.distributed cluster, combined as
the module's ROW_SPLIT says, against one call of the NumPy module on the whole batch (1e-12).

The cluster is small and quick: one in-process worker for most tests, and two worker processes
once, so that the module's source really travels and is verified again in another process.
"""

from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("distributed", reason="symbp.dask needs dask[distributed] (test extra)")

import dask.array as da
from click.testing import CliRunner
from distributed import Client, LocalCluster

import symbp.dask as sd
from symbp.cli import main
from symbp.loader import load_module
from tests.conftest import ROOT, network_spec

TOLERANCE = 1e-12


@pytest.fixture(scope="module")
def client():
    with (
        LocalCluster(n_workers=1, processes=False, threads_per_worker=2) as cluster,
        Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    """Spec path or text → (array API module, NumPy module), written by `symbp generate`."""
    folder = tmp_path_factory.mktemp("generated")
    made = {}

    def build(spec, name: str | None = None):
        if not str(spec).endswith(".toml"):
            path = folder / f"{name}.toml"
            path.write_text(spec)
            spec = path
        modules = []
        for target, suffix in (("array-api", "_array_api"), ("numpy", "")):
            out = folder / f"{spec.stem}{suffix}.py"
            result = CliRunner().invoke(
                main, ["generate", "--target", target, str(spec), "-o", str(out), "--force"]
            )
            assert result.exit_code == 0, result.output
            modules.append(load_module(out))
        made[spec] = modules
        return modules

    return build


def batch(module, rows: int, seed: int = 0):
    """Random parameters and inputs of ``rows`` rows, drawn for the module's shapes."""
    rng = np.random.default_rng(seed)
    sizes = {"m": rows, "n": 3, "k": 3}
    params = {
        n: rng.standard_normal(tuple(sizes.get(d, d) for d in s)) * 0.5
        for n, s in module.PARAM_SHAPES.items()
    }
    inputs = []
    for name, shape in module.INPUT_SHAPES.items():
        concrete = tuple(sizes.get(d, d) for d in shape)
        kind = module.INPUT_KINDS[name]
        if kind == "one-hot":
            inputs.append(np.eye(concrete[-1])[rng.integers(0, concrete[-1], concrete[:-1])])
        elif kind == "probability":
            inputs.append(rng.uniform(0.05, 0.95, concrete))
        else:
            inputs.append(rng.standard_normal(concrete))
    return params, inputs


def chunked(module, inputs, rows: int):
    """The inputs that hold the batch as Dask arrays of ``rows``-row chunks."""
    size = module.ROW_SPLIT["size"]
    return [
        da.from_array(a, chunks=(rows, *a.shape[1:])) if shape[:1] == (size,) else a
        for a, shape in zip(inputs, module.INPUT_SHAPES.values(), strict=True)
    ]


def assert_agrees(got, expected):
    loss, grads = got
    expected_loss, expected_grads = expected
    assert abs(loss - float(expected_loss)) <= TOLERANCE * max(1.0, abs(float(expected_loss)))
    for name, grad in expected_grads.items():
        scale = max(float(np.max(np.abs(grad))), 1e-300)
        assert float(np.max(np.abs(np.asarray(grads[name]) - grad))) / scale <= TOLERANCE


EXAMPLES = [
    ROOT / "examples" / f"{name}.toml"
    for name in (
        "cs229_two_layer",
        "mlp_digits",
        "residual_block",
        "softmax_two_layer",
        "swish_regression",
        "tied_autoencoder",
    )
]


@pytest.mark.parametrize("spec", EXAMPLES, ids=lambda p: p.stem)
def test_chunks_on_the_workers_equal_one_call_on_the_batch(client, generated, spec):
    module, reference = generated(spec)
    params, inputs = batch(reference, rows=37)
    got = sd.loss_and_grad(module, params, *chunked(module, inputs, rows=8), client=client)
    assert_agrees(got, reference.loss_and_grad(params, *inputs))
    assert sd.loss(module, params, *chunked(module, inputs, rows=5)) == pytest.approx(
        float(reference.forward(params, *inputs)[0]), rel=TOLERANCE
    )


def test_a_sum_over_rows_adds_the_chunks(client, generated):
    spec = network_spec(4, [(5, "relu"), (3, "identity")], "squared_error", reduction="sum")
    module, reference = generated(spec, "summed")
    assert module.ROW_SPLIT["loss"] == "sum"
    params, inputs = batch(reference, rows=20, seed=1)
    got = sd.loss_and_grad(module, params, *chunked(module, inputs, rows=6))
    assert_agrees(got, reference.loss_and_grad(params, *inputs))


def test_labels_constants_and_unaligned_chunks(client, generated):
    module, reference = generated(ROOT / "examples" / "mlp_digits.toml")
    params, (X, _) = batch(reference, rows=30, seed=2)
    labels = np.arange(30) % 10
    Xd = da.from_array(X, chunks=(7, 32))  # column chunks too: rechunked along rows only
    yd = da.from_array(labels, chunks=11)  # other row chunks: aligned with X's
    got = sd.loss_and_grad(module, params, Xd, yd, constants={"l2": 0.5})
    assert_agrees(got, reference.loss_and_grad(params, X, labels, l2=0.5))
    predictions = sd.predict(module, params, Xd)
    assert isinstance(predictions, da.Array) and predictions.chunks[0] == Xd.chunks[0]
    np.testing.assert_allclose(predictions.compute(), reference.predict(params, X), rtol=1e-13)


def test_from_npy_reads_row_chunks(client, tmp_path, generated):
    module, reference = generated(ROOT / "examples" / "mlp_digits.toml")
    params, (X, T) = batch(reference, rows=25, seed=3)
    np.save(tmp_path / "X.npy", X)
    Xd = sd.from_npy(tmp_path / "X.npy", rows=10)
    assert Xd.shape == X.shape and Xd.dtype == X.dtype and Xd.chunks[0] == (10, 10, 5)
    np.testing.assert_array_equal(Xd.compute(), X)
    Td = da.from_array(T, chunks=(10, 10))
    assert_agrees(sd.loss_and_grad(module, params, Xd, Td), reference.loss_and_grad(params, X, T))


def test_what_is_refused(generated, tmp_path):
    module, reference = generated(ROOT / "examples" / "mlp_digits.toml")
    params, (X, T) = batch(reference, rows=10)
    Xd, Td = da.from_array(X, chunks=5), da.from_array(T, chunks=5)
    with pytest.raises(ValueError, match=r"has no ROW_SPLIT: .* --target array-api"):
        sd.loss_and_grad(reference, params, Xd, Td)
    with pytest.raises(ValueError, match="X holds the batch's rows, so it must be a Dask array"):
        sd.loss_and_grad(module, params, X, Td)
    with pytest.raises(ValueError, match="different numbers of rows: X has 10, T has 9"):
        sd.loss_and_grad(module, params, Xd, Td[:9])
    squared = 'name = "sq"\n[graph]\ninputs = { X = "m x 3" }\nparams = { w = "3" }\n'
    squared += 'steps = ["v = mean(X @ w)", "E = v**2"]\nloss = "E"\n'
    unsplit, _ = generated(squared, "squared")
    with pytest.raises(ValueError, match="does not split over row chunks: the step E is not"):
        sd.loss_and_grad(unsplit, {"w": np.ones(3)}, Xd[:, :3].rechunk((5, 3)))
    gram = 'name = "gram"\n[graph]\ninputs = { X = "m x 3" }\nparams = { w = "3" }\n'
    gram += 'steps = ["G = X @ X.T", "E = mean(X @ w)"]\nloss = "E"\noutput = "G"\n'
    mixing, _ = generated(gram, "gram")
    assert mixing.ROW_SPLIT["loss"] == "mean" and mixing.ROW_SPLIT["predict"] is False
    with pytest.raises(ValueError, match="predict does not compute row by row"):
        sd.predict(mixing, {"w": np.ones(3)}, Xd[:, :3].rechunk((5, 3)))


def test_an_edited_module_does_not_run_on_the_workers(client, generated):
    module, reference = generated(ROOT / "examples" / "cs229_two_layer.toml")
    params, inputs = batch(reference, rows=12)
    args = chunked(module, inputs, rows=4)
    source = module.__symbp_source__
    module.__symbp_source__ = source.replace("A1 * (1 - A1)", "A1 * (1 - 2 * A1)")
    try:
        with pytest.raises(ValueError, match="does not verify as symbp's own and unedited"):
            sd.loss_and_grad(module, params, *args)
    finally:
        module.__symbp_source__ = source


def test_two_worker_processes(generated):
    """Each worker process receives the source, verifies it and loads it once."""
    module, reference = generated(ROOT / "examples" / "mlp_digits.toml")
    params, inputs = batch(reference, rows=400, seed=4)
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True) as cluster,
        Client(cluster) as client,
    ):
        args = chunked(module, inputs, rows=50)
        got = sd.loss_and_grad(module, params, *args, client=client)
        assert_agrees(got, reference.loss_and_grad(params, *inputs))
        ran = client.run(lambda: sorted(__import__("symbp.dask").dask._MODULES))
        assert len(ran) == 2 and all(len(digests) == 1 for digests in ran.values())


def test_the_training_example_runs_on_two_workers(tmp_path):
    """examples/train_dask.py, shortened: it trains, and its distributed gradient agrees."""
    out = tmp_path / "generated" / "mlp_digits_array_api.py"
    spec = str(ROOT / "examples" / "mlp_digits.toml")
    result = CliRunner().invoke(main, ["generate", "--target", "array-api", spec, "-o", str(out)])
    assert result.exit_code == 0, result.output
    script = str(ROOT / "examples" / "train_dask.py")
    args = ["--rows", "40000", "--chunk", "5000", "--batch", "20000", "--steps", "10"]
    run = subprocess.run(
        [sys.executable, script, *args], cwd=tmp_path, capture_output=True, text=True, timeout=180
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "cluster: 2 workers at tcp://" in run.stdout
    assert "data: 40,000 rows x 64 (20 MiB), made on the workers and kept there" in run.stdout
    losses = [float(x) for x in re.findall(r"batch loss (\d+\.\d+)", run.stdout)]
    assert len(losses) == 2 and losses[-1] < losses[0]
    found = re.search(r"agreement on 20,000 rows, 4 chunks .*gradients (\S+) ", run.stdout)
    assert found and float(found.group(1)) <= TOLERANCE, run.stdout


def test_the_training_example_says_what_is_missing(tmp_path):
    run = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "train_dask.py")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1
    assert "no generated/mlp_digits_array_api.py; run: symbp generate --target array-api" in (
        run.stderr
    )

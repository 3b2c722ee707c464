"""Whether a loss splits over row chunks (analysis/rows, the module's ROW_SPLIT), against what
chunks really give: a split the analysis accepts must reproduce the batch's loss and gradients
from chunks of rows (NumPy module, 1e-12), on the graph oracle's random graphs and random
networks; the losses it refuses really do not split (the naive combination is wrong)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from symbp.analysis.rows import row_split, rowwise
from symbp.derivation import derive
from symbp.emit import numpy_module
from symbp.front.spec import loads
from symbp.loader import module_from_source
from tests.conftest import network_spec
from tests.test_graph_oracle import draw_point, graphs
from tests.test_network_oracle import networks

CHUNKS = (2, 1, 3)
"""Rows of each chunk of a batch of 6."""


def combined(module, split, params, inputs: dict, constants=None):
    """The loss and gradients of the batch from its chunks, combined as ``split`` says."""
    batched = {n for n, s in module.INPUT_SHAPES.items() if s[:1] == (split.size,)}
    total, grads, start = 0.0, {}, 0
    for rows in CHUNKS:
        args = [a[start : start + rows] if n in batched else a for n, a in inputs.items()]
        loss, chunk = module.loss_and_grad(params, *args, **(constants or {}))
        weight = rows if split.loss == "mean" else 1
        total += weight * float(loss)
        for name, grad in chunk.items():
            grads[name] = grads.get(name, 0) + weight * np.asarray(grad)
        start += rows
    scale = 1 / start if split.loss == "mean" else 1
    return total * scale, {n: g * scale for n, g in grads.items()}


def disagreement(module, split, params, inputs: dict, constants=None) -> float:
    """The largest difference of the chunks' combination from one call on the batch,
    relative to the largest value of each (loss, gradient)."""
    loss, grads = module.loss_and_grad(params, *inputs.values(), **(constants or {}))
    got_loss, got = combined(module, split, params, inputs, constants)
    worst = abs(got_loss - float(loss)) / max(abs(float(loss)), 1e-300)
    for name, grad in grads.items():
        scale = max(float(np.max(np.abs(grad), initial=0)), 1e-300)
        worst = max(worst, float(np.max(np.abs(got[name] - grad), initial=0)) / scale)
    return worst


def numpy_module_of(text: str):
    derivation = derive(loads(text))
    module = module_from_source(numpy_module.generate(derivation), "rows")
    return module, row_split(derivation.program)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(g=graphs())
def test_an_accepted_split_reproduces_the_batch_on_random_graphs(g):
    derivation = derive(loads(g.spec()))
    module = module_from_source(numpy_module.generate(derivation), "rows")
    split = row_split(derivation.program)
    event(f"split: {split.loss}")
    if split.size is None:
        return
    sizes = {"m": 4, "n": 2, "k": 3} | {split.size: sum(CHUNKS)}  # the batch may be n or k
    params, inputs = draw_point(g, sizes, np.random.default_rng(1))
    ordered = {n: inputs[n] for n in g.inputs}
    if split.loss is not None:
        assert disagreement(module, split, params, ordered) <= 1e-12, g.spec()
    if g.output and rowwise(derivation.predict, split.size):
        event("predict row by row")
        names = [n for n in derivation.predict.inputs]
        batched = {n for n in names if derivation.predict.shape(n)[:1] == (split.size,)}
        whole = module.predict(params, *(inputs[n] for n in names))
        parts, start = [], 0
        for rows in CHUNKS:
            cut = [inputs[n][start : start + rows] if n in batched else inputs[n] for n in names]
            parts.append(module.predict(params, *cut))
            start += rows
        np.testing.assert_allclose(np.concatenate(parts), whole, rtol=1e-12, err_msg=g.spec())


@settings(max_examples=60, deadline=None)
@given(net=networks(), seed=st.integers(0, 2**16))
def test_networks_split_unless_a_sum_has_a_penalty(net, seed):
    inputs, layers, loss, reduction, l2, _ = net
    module, split = numpy_module_of(network_spec(inputs, layers, loss, reduction=reduction, l2=l2))
    if reduction == "sum" and l2 is not None:  # a constant the caller may set
        assert split.loss is None
        assert "adds a term that does not depend on the rows to a sum" in split.note
        return
    assert split.loss == reduction and split.size == "m"
    rng = np.random.default_rng(seed)
    sizes = [inputs, *(units for units, _ in layers)]
    params = {}
    for i in range(1, len(layers) + 1):
        params[f"W{i}"] = rng.standard_normal((sizes[i - 1], sizes[i])) / np.sqrt(sizes[i - 1])
        params[f"b{i}"] = 0.5 * rng.standard_normal(sizes[i])
    X = rng.standard_normal((sum(CHUNKS), inputs))
    T = np.eye(sizes[-1])[rng.integers(0, sizes[-1], size=sum(CHUNKS))]
    constants = {"l2": l2} if l2 is not None else {}
    assert disagreement(module, split, params, {"X": X, "T": T}, constants) <= 1e-12


GRAPH = (
    'name = "g"\n[graph]\ninputs = {{ {inputs} }}\nparams = {{ {params} }}\n'
    'steps = [{steps}]\nloss = "E"\n'
)


def graph(inputs: str, params: str, *steps: str) -> str:
    return GRAPH.format(inputs=inputs, params=params, steps=", ".join(f'"{s}"' for s in steps))


REFUSED = {
    "the square of a mean": (
        graph('X = "m x 3"', 'w = "3"', "v = mean(X @ w)", "E = v**2"),
        "the step E is not linear in the means over rows it reads",
    ),
    "a product of two means": (
        graph('X = "m x 3"', 'w = "3"', "a = mean(X @ w)", "b = mean(tanh(X @ w))", "E = a*b"),
        "the step E is not linear in the means over rows it reads",
    ),
    "a sum over rows plus a penalty": (
        graph('X = "m x 3"', 'w = "3"', "E = sum(tanh(X @ w)) + sum(w**2)"),
        "adds a term that does not depend on the rows to a sum over them",
    ),
    "a softmax across the rows": (
        graph('x = "m", t = "m"', 'w = "scalar"', "E = softmax_cross_entropy(tanh(w * x), t)"),
        "takes a softmax across the rows",
    ),
    "rows against rows (X Xᵀ)": (
        graph('X = "m x 3"', 'w = "3"', "G = tanh(X @ X.T)", "E = mean(G @ (X @ w))"),
        "multiplies rows with rows",
    ),
    "a row broadcast across the rows": (
        graph('x = "m", y = "m x 1"', 'w = "scalar"', "E = mean(tanh(w * x + y))"),
        "broadcasts the rows of one value across the rows of another",
    ),
    "a mean centred by its batch": (
        graph('X = "m x 3"', 'w = "3"', "h = X @ w", "E = mean((h - mean(h))**2)"),
        "combines values of each row with a total over the rows",
    ),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_refused_loss_really_does_not_split(case):
    """Each refusal names its step, and the chunks' mean or sum would indeed be wrong."""
    text, why = REFUSED[case]
    module, split = numpy_module_of(text)
    assert split.loss is None and why in split.note, split
    rng = np.random.default_rng(0)
    params = {n: rng.standard_normal(s) for n, s in module.PARAM_SHAPES.items()}
    inputs = {
        n: rng.standard_normal(tuple(sum(CHUNKS) if d == "m" else d for d in s))
        for n, s in module.INPUT_SHAPES.items()
    }
    if "t" in inputs:  # the one-hot row is the whole batch: a chunk's part is no target
        inputs["t"] = np.eye(sum(CHUNKS))[1]
        with pytest.raises(ValueError, match="t must hold one-hot or soft-label rows"):
            combined(module, type(split)(split.size, "mean"), params, inputs)
        return
    for loss in ("mean", "sum"):
        guess = type(split)(split.size, loss)
        assert disagreement(module, guess, params, inputs) > 1e-6, (case, loss)


ACCEPTED = {
    "a mean loss plus a penalty": (
        graph(
            'X = "m x 3", T = "m x 2"', 'W = "3 x 2"', "E = squared_error(X @ W, T) + sum(W**2)"
        ),
        "mean",
    ),
    "a sum through the transposed batch": (
        graph('X = "m x 3"', 'w = "3"', "h = X.T", "E = sum(tanh(w @ h)) / 2"),
        "sum",
    ),
    "a mean of per-row sums, scaled by a parameter": (
        graph('X = "m x 3"', 'w = "3", s = "scalar"', "E = s**2 * mean(sum(tanh(X * w), axis=1))"),
        "mean",
    ),
}


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_accepted_splits_reproduce_the_batch(case):
    text, loss = ACCEPTED[case]
    module, split = numpy_module_of(text)
    assert (split.size, split.loss) == ("m", loss), split
    rng = np.random.default_rng(0)
    params = {n: rng.standard_normal(s) for n, s in module.PARAM_SHAPES.items()}
    inputs = {
        n: rng.standard_normal(tuple(sum(CHUNKS) if d == "m" else d for d in s))
        for n, s in module.INPUT_SHAPES.items()
    }
    assert disagreement(module, split, params, inputs) <= 1e-12

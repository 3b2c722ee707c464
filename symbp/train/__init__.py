"""Training a generated module the seeds' way (seed 003): shuffled minibatches, SGD, a loop
that reports each epoch, accuracy, and parameters saved to and loaded from ``.npz`` files.

It works with any generated module, network or graph, through the names every module defines
(``INPUT_SHAPES``, ``INPUT_KINDS``, ``PARAM_SHAPES``, ``forward``, ``loss_and_grad`` and, where
there is one, ``predict``). No module imports it: generated modules stay NumPy-only.

Data is a tuple of arrays in ``forward``'s argument order, or a dict keyed by input name; every
array holds samples along its first axis. Where the module's inputs start with a batch size (a
named size that starts every input's shape and that no parameter fixes: ``m`` in networks), a
minibatch is one call. Where none does (seed 004's scalars ``x`` and ``t``), each sample is one
call, and a minibatch's loss and gradient are the means of its samples'.
"""

from __future__ import annotations

import inspect
import math
import time
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from symbp.train.checkpoint import load, save
from symbp.train.progress import Progress

__all__ = ["SGD", "Epoch", "accuracy", "evaluate", "fit", "load", "minibatches", "save"]

Data = Mapping[str, object] | Sequence[object]
"""Arrays in ``forward``'s argument order, or keyed by input name; samples along axis 0."""
TARGET_KINDS = ("one-hot", "probability")
"""``INPUT_KINDS`` of a classifier's targets (softmax and sigmoid cross-entropy)."""


def minibatches(n: int, batch_size: int, rng=None) -> Iterator[np.ndarray]:
    """Index arrays that cover ``range(n)`` once, in a random order: ``batch_size`` samples
    each, the last batch holding what is left. ``rng`` is a NumPy Generator or a seed."""
    if n < 1 or batch_size < 1:
        raise ValueError(
            f"need at least one sample and a batch size of at least 1, got {n}, {batch_size}"
        )
    order = np.random.default_rng(rng).permutation(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


@dataclass
class SGD:
    """Seed 003's update θ ← θ − η ∇θL; with ``momentum`` β, the heavy ball v ← β v + ∇θL,
    θ ← θ − η v, v starting at zero (β = 0 is plain SGD). ``step`` updates in place."""

    lr: float = 0.1
    momentum: float = 0.0
    velocity: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"the learning rate must be a positive number, got {self.lr}")
        if not 0 <= self.momentum < 1:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum}")

    def step(self, params: dict[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> None:
        for name, grad in grads.items():
            if self.momentum:
                velocity = self.velocity.get(name)
                if velocity is None:
                    velocity = self.velocity[name] = np.zeros_like(params[name])
                velocity *= self.momentum
                velocity += grad
                grad = velocity
            params[name] -= self.lr * grad


@dataclass(frozen=True)
class Epoch:
    """One epoch's record. The losses and accuracies are of the parameters the epoch ends with,
    on all of the training data and on the validation data (accuracy only for classifiers)."""

    epoch: int
    loss: float
    accuracy: float | None
    val_loss: float | None
    val_accuracy: float | None
    seconds: float
    """The epoch's updates, without the evaluation."""

    def line(self, epochs: int) -> str:
        parts = [f"epoch {self.epoch:>{len(str(epochs))}}/{epochs}", f"loss {self.loss:.4f}"]
        if self.accuracy is not None:
            parts.append(f"accuracy {self.accuracy:.2%}")
        if self.val_loss is not None:
            parts.append(f"val loss {self.val_loss:.4f}")
        if self.val_accuracy is not None:
            parts.append(f"val accuracy {self.val_accuracy:.2%}")
        parts.append(f"{self.seconds:.3f} s")
        return "  ".join(parts)


def accuracy(predictions, targets, kind: str = "one-hot") -> float:
    """The share of right predictions. ``kind`` is the targets' ``INPUT_KINDS`` entry:
    "one-hot" (softmax): the class with the largest prediction, against integer labels or the
    largest entry of one-hot rows; "probability" (sigmoid): each prediction ≥ 0.5 against each
    target ≥ 0.5, so predictions must be probabilities (a network's predict returns them)."""
    predicted = np.asarray(predictions)
    expected = np.asarray(targets)
    if kind == "probability":
        return float(np.mean((predicted >= 0.5) == (expected >= 0.5)))
    if kind != "one-hot":
        raise ValueError(f"accuracy is for one-hot or probability targets, not {kind!r}")
    if expected.dtype.kind not in "iu":
        expected = expected.argmax(axis=-1)
    return float(np.mean(predicted.argmax(axis=-1) == expected))


class _Model:
    """A generated module as the loop uses it: how its inputs hold samples, which input is a
    classifier's target, what ``predict`` takes."""

    def __init__(self, module: types.ModuleType, constants: Mapping[str, float] | None):
        self.module = module
        self.names = list(module.INPUT_SHAPES)
        if not self.names:
            raise ValueError("the module has no inputs, so there is nothing to train on")
        self.batched = _batched(module)
        allowed = _keywords(module.forward)
        unknown = sorted(set(constants or {}) - set(allowed))
        if unknown:
            raise ValueError(f"the module has no constants {unknown}; it has {allowed}")
        self.constants = dict(constants or {})
        kinds = getattr(module, "INPUT_KINDS", {})
        targets = [n for n in self.names if kinds.get(n) in TARGET_KINDS]
        self.target = targets[0] if len(targets) == 1 and hasattr(module, "predict") else None
        self.kind = kinds.get(self.target)
        self.kinds = kinds
        if self.target is not None:
            parameters = inspect.signature(module.predict).parameters.values()
            self.predict_inputs = [
                p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD
            ][1:]
            self.predict_constants = {
                k: v for k, v in self.constants.items() if k in _keywords(module.predict)
            }

    def arrays(self, data: Data, dtype: np.dtype, what: str) -> dict[str, np.ndarray]:
        """The data set as arrays, float ones in the parameters' dtype: converted once here,
        rather than refused on every call as the module does (integer labels stay)."""
        if isinstance(data, Mapping):
            missing = [n for n in self.names if n not in data]
            extra = sorted(set(data) - set(self.names))
            if missing or extra:
                raise ValueError(
                    f"{what} must hold the inputs {self.names}: missing {missing}, extra {extra}"
                )
            values = [data[n] for n in self.names]
        else:
            values = list(data)
            if len(values) != len(self.names):
                raise ValueError(
                    f"{what} must hold {len(self.names)} arrays, one per input {self.names} "
                    f"in this order; got {len(values)}"
                )
        arrays = {}
        for name, value in zip(self.names, values, strict=True):
            array = np.asarray(value)
            labels = self.kinds.get(name) == "one-hot" and array.dtype.kind in "iu"
            if array.dtype.kind in "biuf" and array.dtype != dtype and not labels:
                array = array.astype(dtype)
            if array.ndim == 0:
                raise ValueError(f"{what}: {name} is one number; samples go along the first axis")
            arrays[name] = array
        counts = {n: len(a) for n, a in arrays.items()}
        if len(set(counts.values())) > 1:
            listed = ", ".join(f"{n} has {c}" for n, c in counts.items())
            raise ValueError(f"{what}: the inputs hold different numbers of samples: {listed}")
        if not next(iter(counts.values())):
            raise ValueError(f"{what} holds no samples")
        return arrays

    def loss_and_grad(self, params, arrays, index) -> tuple[float, dict[str, np.ndarray]]:
        """The minibatch ``index``: one call, or the mean over its samples' calls."""
        step = self.module.loss_and_grad
        if self.batched:
            return step(params, *(a[index] for a in arrays.values()), **self.constants)
        total, summed = 0.0, {}
        for i in index:
            loss, grads = step(params, *(a[i] for a in arrays.values()), **self.constants)
            total += float(loss)
            for name, grad in grads.items():
                summed[name] = summed[name] + grad if name in summed else np.array(grad)
        return total / len(index), {name: g / len(index) for name, g in summed.items()}

    def loss(self, params, arrays) -> float:
        forward = self.module.forward
        if self.batched:
            return float(forward(params, *arrays.values(), **self.constants)[0])
        n = len(next(iter(arrays.values())))
        return (
            sum(
                float(forward(params, *(a[i] for a in arrays.values()), **self.constants)[0])
                for i in range(n)
            )
            / n
        )

    def accuracy(self, params, arrays) -> float | None:
        if self.target is None:
            return None
        args = [arrays[n] for n in self.predict_inputs]
        predict = self.module.predict
        if self.batched:
            predictions = predict(params, *args, **self.predict_constants)
        else:
            n = len(arrays[self.target])
            predictions = [
                predict(params, *(a[i] for a in args), **self.predict_constants) for i in range(n)
            ]
        return accuracy(predictions, arrays[self.target], self.kind)


def _batched(module: types.ModuleType) -> bool:
    """Whether one call takes a batch: every input's shape starts with one named size that no
    parameter fixes. Otherwise no input may start with such a size (each call is one sample)."""
    fixed = {d for shape in module.PARAM_SHAPES.values() for d in shape if isinstance(d, str)}
    leading = {
        name: shape[0] if shape and isinstance(shape[0], str) and shape[0] not in fixed else None
        for name, shape in module.INPUT_SHAPES.items()
    }
    sizes = set(leading.values())
    if sizes == {None}:
        return False
    if len(sizes) == 1:
        return True
    listed = ", ".join(f"{n} starts with {s or 'no batch size'}" for n, s in leading.items())
    raise ValueError(
        "symbp.train needs the inputs to share one batch axis (or none): every input's shape "
        f"starting with the same named size, which no parameter fixes; here {listed}"
    )


def _keywords(function) -> list[str]:
    """The keyword-only parameters of a module's function: its constants."""
    parameters = inspect.signature(function).parameters.values()
    return [p.name for p in parameters if p.kind is p.KEYWORD_ONLY]


def _own_copy(module: types.ModuleType, params: Mapping[str, object]) -> dict[str, np.ndarray]:
    """The parameters as new arrays the loop may update in place (the caller's stay as they
    were): NumPy arrays keep their dtype, numbers and lists take that of the arrays."""
    missing = [n for n in module.PARAM_SHAPES if n not in params]
    if missing:
        raise ValueError(f"params is missing {missing}; expected {list(module.PARAM_SHAPES)}")
    given = [v.dtype for v in params.values() if isinstance(v, np.ndarray) and v.dtype.kind == "f"]
    dtype = given[0] if given else np.dtype(np.float64)
    return {
        n: np.array(params[n], dtype=None if isinstance(params[n], np.ndarray) else dtype)
        for n in module.PARAM_SHAPES
    }


def evaluate(
    module: types.ModuleType,
    params: Mapping[str, object],
    data: Data,
    *,
    constants: Mapping[str, float] | None = None,
) -> tuple[float, float | None]:
    """The loss on ``data`` (one ``forward`` call over all of it, or the mean over samples)
    and the accuracy (None unless the module is a classifier with ``predict``)."""
    model = _Model(module, constants)
    params = _own_copy(module, params)
    arrays = model.arrays(data, next(iter(params.values())).dtype, "data")
    return model.loss(params, arrays), model.accuracy(params, arrays)


def fit(
    module: types.ModuleType,
    params: Mapping[str, object],
    data: Data,
    *,
    epochs: int = 10,
    batch_size: int = 32,
    lr: float = 0.1,
    momentum: float = 0.0,
    rng=None,
    validation: Data | None = None,
    constants: Mapping[str, float] | None = None,
    verbose: bool = True,
    progress: bool | None = None,
) -> tuple[dict[str, np.ndarray], list[Epoch]]:
    """Train a copy of ``params`` on ``data`` by minibatch SGD; return it and each epoch's
    record. The caller's ``params`` are left as they were.

    ``rng`` (a Generator or a seed) shuffles the minibatches, so the same seed gives the same
    run. ``validation`` is evaluated after each epoch. ``constants`` go to ``forward`` as
    keyword arguments. ``verbose`` prints each epoch's line; ``progress`` draws a bar while
    an epoch runs (default: on a terminal only). A loss that stops being finite ends the
    run with ``FloatingPointError`` (a smaller ``lr`` usually helps).
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be at least 1, got {epochs}, {batch_size}")
    model = _Model(module, constants)
    params = _own_copy(module, params)
    dtype = next(iter(params.values())).dtype
    train = model.arrays(data, dtype, "data")
    held = None if validation is None else model.arrays(validation, dtype, "validation")
    optimizer = SGD(lr, momentum)
    rng = np.random.default_rng(rng)
    bar = Progress(progress)
    n = len(next(iter(train.values())))
    steps = math.ceil(n / batch_size)
    history: list[Epoch] = []
    for epoch in range(1, epochs + 1):
        started = time.perf_counter()
        for done, index in enumerate(minibatches(n, batch_size, rng), start=1):
            _, grads = model.loss_and_grad(params, train, index)
            optimizer.step(params, grads)
            bar.update(epoch, epochs, done, steps)
        seconds = time.perf_counter() - started
        bar.clear()
        loss = model.loss(params, train)
        val_loss = None if held is None else model.loss(params, held)
        val_accuracy = None if held is None else model.accuracy(params, held)
        record = Epoch(epoch, loss, model.accuracy(params, train), val_loss, val_accuracy, seconds)
        history.append(record)
        if verbose:
            print(record.line(epochs), flush=True)
        if not math.isfinite(loss):
            raise FloatingPointError(
                f"the training loss is {loss} after epoch {epoch}; try a smaller lr (now {lr})"
            )
    return params, history

"""Data-parallel gradients on Dask: a batch's rows in chunks, each chunk's loss and gradients
computed by the array API module on the worker that holds it, combined as the loss says.

The module (``symbp generate --target array-api``) states in ``ROW_SPLIT`` how its loss splits
over row chunks (:mod:`symbp.analysis.rows`): for a mean over rows (plus terms that do not
depend on them, such as an L2 penalty), the batch's loss and gradients are Σ_c m_c·L_c / m, the
chunks' weighted by their rows over the batch's; for a pure sum over rows, Σ_c L_c. Any other
loss is refused before anything runs, with the module's reason: a chunked evaluation would
give another number.

Nothing of the batch is gathered. The inputs whose shape starts with the batch size are Dask
arrays (from ``.npy`` files with :func:`from_npy`, from zarr with ``dask.array.from_zarr``,
or generated on the workers); each task reads its chunk where it is, and only the chunks'
losses and gradients, the size of the parameters, travel back, summed in a tree. The module's
source goes to the workers once per call, and each worker runs it only after its symbp header
verifies again (:func:`symbp.loader.load_source`); the workers need symbp installed.

This module imports Dask, so it is imported only by those who use it (``import symbp.dask``;
``pip install 'symbp[dask]'``).
"""

from __future__ import annotations

import hashlib
import inspect
import types
from collections.abc import Mapping, Sequence
from pathlib import Path

import dask
import dask.array as da
import numpy as np

from symbp.loader import load_source
from symbp.provenance import Provenance, provenance

__all__ = ["from_npy", "loss", "loss_and_grad", "predict", "row_split"]

SPLIT_EVERY = 8
"""How many partial results one task of the tree adds up."""


def row_split(module: types.ModuleType) -> tuple[str, str]:
    """The batch size and the combination (``"mean"`` or ``"sum"``) of ``module``'s loss, or a
    ValueError saying why it cannot be split over row chunks."""
    split = getattr(module, "ROW_SPLIT", None)
    if split is None:
        raise ValueError(
            "the module has no ROW_SPLIT: symbp.dask evaluates the array API module; "
            "generate it with symbp generate --target array-api SPEC"
        )
    if split["loss"] is None:
        raise ValueError(f"the loss does not split over row chunks: {split['why']}")
    return split["size"], split["loss"]


def loss_and_grad(
    module: types.ModuleType,
    params: Mapping[str, object],
    *inputs: object,
    constants: Mapping[str, float] | None = None,
    client=None,
    trust: bool = False,
) -> tuple[float, dict[str, object]]:
    """The loss and gradients of the whole batch, equal to one call on all of it: each row
    chunk on its worker, combined as ``ROW_SPLIT`` says.

    ``inputs`` are in ``forward``'s order: those whose shape starts with the batch size are
    Dask arrays (chunked along their rows only, or rechunked so); the others are passed whole
    to every chunk. ``client`` is a ``dask.distributed.Client`` (default: the current one, or
    Dask's local scheduler). ``trust`` runs a module whose header does not verify."""
    loss, grads = _evaluate(module, params, inputs, constants, client, trust, gradients=True)
    return loss, grads


def loss(
    module: types.ModuleType,
    params: Mapping[str, object],
    *inputs: object,
    constants: Mapping[str, float] | None = None,
    client=None,
    trust: bool = False,
) -> float:
    """The loss of the whole batch alone (``forward`` on each chunk), as :func:`loss_and_grad`."""
    value, _ = _evaluate(module, params, inputs, constants, client, trust, gradients=False)
    return value


def predict(
    module: types.ModuleType,
    params: Mapping[str, object],
    *inputs: object,
    constants: Mapping[str, float] | None = None,
    trust: bool = False,
) -> da.Array:
    """``module.predict`` of every row, as a lazy Dask array of the inputs' row chunks
    (nothing is computed or gathered until you ask: ``.mean()``, ``.to_zarr()``, ...).
    ``inputs`` are those ``predict`` takes, in its order."""
    size, _ = row_split(module)
    if not module.ROW_SPLIT.get("predict"):
        raise ValueError(
            "the module's predict does not compute row by row (or there is none), so its "
            "chunks' predictions are not the batch's"
        )
    names = _arguments(module.predict)
    shapes = [module.INPUT_SHAPES[n] for n in names]
    arrays, blocks, rows = _chunks(names, inputs, [s[:1] == (size,) for s in shapes])
    shared = _shared(module, params, constants, trust)
    first = [a[:1] if b is not None else a for a, b in zip(arrays, blocks, strict=True)]
    sample = np.asarray(module.predict(dict(params), *dask.compute(*first), **(constants or {})))
    parts = [
        da.from_delayed(
            dask.delayed(_predict_chunk, pure=True)(shared, _at(arrays, blocks, i)),
            shape=(count, *sample.shape[1:]),
            dtype=sample.dtype,
        )
        for i, count in enumerate(rows)
    ]
    return da.concatenate(parts, axis=0)


def from_npy(path: str | Path, rows: int) -> da.Array:
    """A ``.npy`` file as a Dask array of chunks of ``rows`` rows, each read by the worker that
    needs it from a memory map of the file (so no process reads more than its chunks): the
    file must be at the same path for every worker."""
    path = Path(path).resolve()
    header = np.load(path, mmap_mode="r")  # the header only: no data is read here
    shape, dtype = header.shape, header.dtype
    del header
    if not shape or rows < 1:
        raise ValueError(f"{path} must hold rows, and chunks at least one row; got {shape}")
    chunks = [
        da.from_delayed(
            dask.delayed(_read_rows, pure=True)(str(path), start, min(start + rows, shape[0])),
            shape=(min(start + rows, shape[0]) - start, *shape[1:]),
            dtype=dtype,
        )
        for start in range(0, shape[0], rows)
    ]
    return da.concatenate(chunks, axis=0)


# ---- the work, on the client ---------------------------------------------------------------


def _evaluate(module, params, inputs, constants, client, trust, gradients):
    size, combine = row_split(module)
    names = list(module.INPUT_SHAPES)
    batched = [shape[:1] == (size,) for shape in module.INPUT_SHAPES.values()]
    arrays, blocks, rows = _chunks(names, inputs, batched)
    shared = _shared(module, params, constants, trust)
    mean = combine == "mean"
    parts = [
        dask.delayed(_chunk, pure=True)(shared, _at(arrays, blocks, i), count, mean, gradients)
        for i, count in enumerate(rows)
    ]
    while len(parts) > 1:
        parts = [
            dask.delayed(_add, pure=True)(*parts[i : i + SPLIT_EVERY])
            for i in range(0, len(parts), SPLIT_EVERY)
        ]
    if client is not None:
        total, grads = client.compute(parts[0]).result()
    else:
        ((total, grads),) = dask.compute(parts[0])
    scale = 1 / sum(rows) if mean else 1
    return float(total) * scale, {n: g * scale for n, g in grads.items()}


def _chunks(names: list[str], inputs: Sequence[object], batched: Sequence[bool]):
    """The inputs with the batched ones as Dask arrays chunked along their rows only, all in
    the first one's row chunks; each one's chunks (None for an input passed whole); the rows
    of each chunk."""
    if len(inputs) != len(names):
        raise ValueError(f"expected the inputs {names} in this order; got {len(inputs)} values")
    if not any(batched):
        raise ValueError("no input holds the batch's rows: there is nothing to split")
    arrays, blocks, rows, first = [], [], None, ""
    for name, value, cut in zip(names, inputs, batched, strict=True):
        if cut and not isinstance(value, da.Array):
            raise ValueError(
                f"{name} holds the batch's rows, so it must be a Dask array (dask.array."
                f"from_array, from_zarr or symbp.dask.from_npy), got {type(value).__name__}"
            )
        if cut:
            whole = {axis: -1 for axis in range(1, value.ndim)}
            if rows is not None and value.shape[0] != sum(rows):
                raise ValueError(
                    f"the inputs hold different numbers of rows: {first} has {sum(rows)}, "
                    f"{name} has {value.shape[0]}"
                )
            value = value.rechunk({0: rows or value.chunks[0], **whole})
            rows, first = rows or value.chunks[0], first or name
            blocks.append(value.to_delayed().ravel())
        else:
            blocks.append(None)
        arrays.append(value)
    return arrays, blocks, list(rows)


def _at(arrays: list, blocks: list, i: int) -> list:
    """The arguments of chunk ``i``: its block of each batched input, the others whole."""
    return [a if b is None else b[i] for a, b in zip(arrays, blocks, strict=True)]


def _shared(module, params, constants, trust):
    """What every chunk's task reads, one object in the graph (sent to each worker once):
    the module's verified source, its digest, the parameters and the constants."""
    source = _source(module, trust)
    shared = {
        "source": source,
        "digest": hashlib.sha256(source.encode("utf-8")).hexdigest(),
        "trust": trust,
        "params": dict(params),
        "constants": dict(constants or {}),
    }
    return dask.delayed(shared, traverse=False)


def _source(module: types.ModuleType, trust: bool) -> str:
    source = getattr(module, "__symbp_source__", None)
    if source is None:
        raise ValueError(
            "the module was not loaded by symbp (symbp.load_module), so there is no source "
            "to send to the workers"
        )
    if not trust and provenance(source.encode("utf-8")) is not Provenance.OURS:
        raise ValueError(
            "the module does not verify as symbp's own and unedited; regenerate it, or pass "
            "trust=True to run its code on the workers anyway"
        )
    return source


def _arguments(function) -> list[str]:
    parameters = inspect.signature(function).parameters.values()
    return [p.name for p in parameters if p.kind is p.POSITIONAL_OR_KEYWORD][1:]


# ---- the work, on the workers ------------------------------------------------------------------

_MODULES: dict[str, types.ModuleType] = {}
"""Each worker's modules by the SHA-256 of their source, loaded (and verified) once."""


def _module(shared: dict) -> types.ModuleType:
    module = _MODULES.get(shared["digest"])
    if module is None:
        module = load_source(shared["source"], "symbp_dask", trust=shared["trust"])
        _MODULES[shared["digest"]] = module
    return module


def _chunk(shared: dict, arrays: list, rows: int, mean: bool, gradients: bool):
    """One chunk's loss and gradients as sums over its rows: times its rows for a mean."""
    module = _module(shared)
    weight = rows if mean else 1
    if gradients:
        value, grads = module.loss_and_grad(shared["params"], *arrays, **shared["constants"])
        return value * weight, {n: g * weight for n, g in grads.items()}
    value, _ = module.forward(shared["params"], *arrays, **shared["constants"])
    return value * weight, {}


def _add(*parts):
    """The sum of chunks' (loss, gradients)."""
    grads = {n: sum(p[1][n] for p in parts) for n in parts[0][1]}
    return sum(p[0] for p in parts), grads


def _predict_chunk(shared: dict, arrays: list):
    return _module(shared).predict(shared["params"], *arrays, **shared["constants"])


def _read_rows(path: str, start: int, stop: int) -> np.ndarray:
    """Rows ``start:stop`` of a ``.npy`` file, read through a memory map."""
    return np.array(np.load(path, mmap_mode="r")[start:stop])

"""The array libraries the array API module is tested on, each as a small adapter: arrays from
NumPy's, back to NumPy's, and what the module must return (their own type, float32 kept).

array-api-strict (the standard's reference, restricted to the 2024.12 version and no
extensions) and Dask come with the test extra; PyTorch and JAX with the bench extra, and CuPy
where a GPU is. A library that is absent is skipped, saying so.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import pytest

API_VERSION = "2024.12"


@dataclass(frozen=True)
class Backend:
    name: str
    asarray: Callable[[np.ndarray], object]
    """A NumPy array (or number) as this library's array, in the same dtype."""
    numpy: Callable[[object], np.ndarray]
    """This library's array as a NumPy array (computed, on the host)."""
    is_array: Callable[[object], bool]
    """Whether a result is an array of this library."""
    dtype_name: Callable[[object], str]
    """The name of a result's dtype ("float32")."""
    context: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext


def _numpy() -> Backend:
    return Backend(
        "numpy",
        np.asarray,
        np.asarray,
        lambda x: isinstance(x, np.ndarray | np.generic),
        lambda x: str(x.dtype),
    )


def _strict() -> Backend:
    import array_api_strict as xp

    def flags():
        return xp.ArrayAPIStrictFlags(
            api_version=API_VERSION,
            boolean_indexing=False,
            data_dependent_shapes=False,
            enabled_extensions=(),
        )

    return Backend(
        "array-api-strict",
        xp.asarray,
        lambda x: np.from_dlpack(x),
        lambda x: type(x).__module__.startswith("array_api_strict"),
        lambda x: str(x.dtype).removeprefix("array_api_strict."),
        flags,
    )


def _dask() -> Backend:
    import dask.array as da

    def asarray(a):
        a = np.asarray(a)
        # Row chunks of 2, as a batch split over workers would be; small arrays whole.
        return da.from_array(a, chunks=(2, *a.shape[1:]) if a.ndim else ())

    return Backend(
        "dask",
        asarray,
        lambda x: np.asarray(x.compute()),
        lambda x: isinstance(x, da.Array),
        lambda x: str(x.dtype),
    )


def _torch() -> Backend:
    import torch

    return Backend(
        "torch",
        lambda a: torch.asarray(np.asarray(a)),
        lambda x: x.detach().cpu().numpy(),
        lambda x: isinstance(x, torch.Tensor),
        lambda x: str(x.dtype).removeprefix("torch."),
    )


def _jax() -> Backend:
    import jax

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    return Backend(
        "jax",
        lambda a: jnp.asarray(np.asarray(a)),
        np.asarray,
        lambda x: isinstance(x, jax.Array),
        lambda x: str(x.dtype),
    )


def _cupy() -> Backend:
    import cupy

    if cupy.cuda.runtime.getDeviceCount() < 1:
        raise ImportError("no GPU")
    return Backend(
        "cupy",
        lambda a: cupy.asarray(np.asarray(a)),
        lambda x: x.get(),
        lambda x: isinstance(x, cupy.ndarray),
        lambda x: str(x.dtype),
    )


BACKENDS = {
    "numpy": (_numpy, "numpy"),
    "array-api-strict": (_strict, "array_api_strict"),
    "dask": (_dask, "dask"),
    "torch": (_torch, "torch"),
    "jax": (_jax, "jax"),
    "cupy": (_cupy, "cupy"),
}
"""Each library's adapter and the package it needs."""

INSTALL = {
    "array-api-strict": "pip install -e '.[test]'",
    "dask": "pip install -e '.[test]'",
    "torch": "pip install -e '.[bench]'",
    "jax": "pip install -e '.[bench]'",
    "cupy": "a GPU and CuPy",
}


def backend(name: str) -> Backend:
    """The adapter of ``name``, or a skip naming what to install."""
    make, package = BACKENDS[name]
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{name} is not installed ({INSTALL[name]})")
    try:
        return make()
    except Exception as err:  # CuPy without a GPU, or a broken install
        pytest.skip(f"{name} cannot run here: {type(err).__name__}: {err}")


def params_and_inputs(
    b: Backend, params: dict, inputs: list, dtype=np.float64
) -> tuple[dict, list]:
    """The NumPy point as ``b``'s arrays of ``dtype`` (integer labels stay integers)."""

    def convert(a):
        a = np.asarray(a)
        return b.asarray(a.astype(dtype) if a.dtype.kind == "f" else a)

    return {n: convert(v) for n, v in params.items()}, [convert(a) for a in inputs]


@contextlib.contextmanager
def running(b: Backend) -> Iterator[None]:
    with b.context():
        yield

"""Parameters to and from ``.npz`` files: NumPy's own format, read back without pickle.

``save`` writes atomically under symbp's header (the zip's comment, see :mod:`symbp.provenance`)
and, like every symbp command, replaces only a file it wrote and nobody edited unless
``force``. ``load`` reads any ``.npz`` (``allow_pickle=False``: loading runs no code) and, given
the module, checks names and shapes against its ``PARAM_SHAPES``.
"""

from __future__ import annotations

import io
import types
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from symbp.files import OutputError, write_all
from symbp.provenance import stamp_zip


def save(path: str | Path, params: Mapping[str, object], *, force: bool = False) -> Path:
    """Write ``params`` (name → array) to the ``.npz`` file ``path``; return the path.

    Raises ``OutputError`` (nothing written) for a file symbp did not write or one edited
    since, unless ``force``."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"{path}: parameters are saved as a .npz file; name one")
    arrays = {str(name): np.asarray(value) for name, value in params.items()}
    for name, array in arrays.items():
        if array.dtype.kind not in "biuf":
            raise ValueError(f"params[{name!r}] must hold numbers, got dtype {array.dtype}")
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    try:
        write_all({path: stamp_zip(buffer.getvalue())}, force=force)
    except OutputError as err:  # the library's word for the command's flag
        raise OutputError(str(err).replace("--force", "force=True")) from None
    return path


def load(path: str | Path, module: types.ModuleType | None = None) -> dict[str, np.ndarray]:
    """The parameters in the ``.npz`` file ``path``, in the module's order if one is given.

    With ``module``, the file must hold exactly its parameters, each of its declared shape
    (named sizes agreeing across parameters); otherwise a ``ValueError`` names the mismatch."""
    with np.load(Path(path), allow_pickle=False) as archive:
        params = {name: archive[name] for name in archive.files}
    if module is None:
        return params
    expected = module.PARAM_SHAPES
    if set(params) != set(expected):
        missing = [n for n in expected if n not in params]
        extra = sorted(set(params) - set(expected))
        raise ValueError(
            f"{path} holds other parameters than the module: missing {missing}, extra {extra}"
        )
    sizes: dict[str, int] = {}
    for name, shape in expected.items():
        actual = params[name].shape
        fits = len(actual) == len(shape) and all(
            got == (sizes.setdefault(want, got) if isinstance(want, str) else want)
            for got, want in zip(actual, shape, strict=False)
        )
        if not fits:
            want = ", ".join(str(d) for d in shape) + ("," if len(shape) == 1 else "")
            raise ValueError(f"{path}: {name} must have shape ({want}), got {actual}")
    return {name: params[name] for name in expected}

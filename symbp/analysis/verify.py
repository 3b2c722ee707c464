"""Every module symbp writes has passed a check: its gradient against its own loss, and its
Hessian-vector product against its own gradient.

Before a module is written, it is loaded from its text and, in float64 at a random point
(named sizes 3), the derivative of its loss along random directions v, ⟨∇L, v⟩ from
``backward``, is compared with a fourth-order central difference of its ``forward`` along v.
Two directions cost about ten forward passes, whatever the number of parameters; a wrong rule
anywhere in the derivation moves almost every direction's derivative, so it cannot pass. The
same is then done one order up: ⟨H·v, u⟩ from ``loss_grad_hvp`` against the central difference
of ⟨∇L, u⟩ from ``loss_and_grad`` along v, for two pairs of random directions (about ten
forward and backward passes more), and ``hvp`` must give ``loss_grad_hvp``'s H·v.
"""

from __future__ import annotations

import types
import warnings
from dataclasses import dataclass

import numpy as np

from symbp.analysis.gradcheck import (
    RESOLUTION,
    TOLERANCE,
    derivative,
    random_inputs,
    random_params,
)
from symbp.loader import module_from_source

DIRECTIONS = 2
SIZE = 3
"""Every named size (the batch too) takes this value at the verification point."""
ATTEMPTS = 3
"""Random points tried before giving up on a model whose loss is not finite at them."""


class VerificationError(Exception):
    """The derived gradient (or Hessian-vector product) disagrees with finite differences of
    the loss (or of the gradient); ``what`` names which."""

    def __init__(self, message: str, what: str = "gradient"):
        super().__init__(message)
        self.what = what


class NotVerifiable(Exception):
    """The module's loss is not finite at any random point tried, so nothing was compared."""


@dataclass(frozen=True)
class Verification:
    worst: float
    """The largest relative error over the directions."""
    directions: int
    hvp_worst: float = 0.0
    """The largest relative error of ⟨H·v, u⟩ over the pairs of directions."""


def verify_source(source: str, name: str, *, seed: int = 0) -> Verification:
    """Check a generated module's text before it is written; raise VerificationError if its
    gradient disagrees with its loss, NotVerifiable if the loss is never finite."""
    module = module_from_source(source, name)
    with warnings.catch_warnings():
        # log of a negative input at a random point: reported as "not finite" below.
        warnings.simplefilter("ignore", RuntimeWarning)
        for attempt in range(ATTEMPTS):
            result = _verify_at(module, np.random.default_rng(seed + attempt))
            if result is not None:
                return result
    raise NotVerifiable(
        f"the loss of {name} is not finite at {ATTEMPTS} random points (inputs ~ N(0, 1))"
    )


def _verify_at(module: types.ModuleType, rng: np.random.Generator) -> Verification | None:
    sizes = {d: SIZE for shape in _shapes(module) for d in shape if isinstance(d, str)}
    params = random_params(module, rng, sizes)
    args = list(random_inputs(module, rng, sizes).values())
    loss, grads = module.loss_and_grad(params, *args)
    if not np.isfinite(loss) or not all(np.all(np.isfinite(g)) for g in grads.values()):
        return None
    worst = 0.0
    for _ in range(DIRECTIONS):
        direction = _direction(params, rng)
        analytic = _inner(grads, direction)

        def along(t: float, direction=direction) -> float:
            return float(module.forward(_moved(params, direction, t), *args)[0])

        error = _compare(along, analytic, "backward", "the loss", "gradient")
        if error is None:
            return None
        worst = max(worst, error)
    hvp_worst = 0.0
    for _ in range(DIRECTIONS):
        v, u = _direction(params, rng), _direction(params, rng)
        _, _, hv = module.loss_grad_hvp(params, *args, v)
        again = module.hvp(params, *args, v)
        if any(not np.array_equal(hv[n], again[n]) for n in params):
            raise VerificationError(
                "hvp and loss_grad_hvp give different H·v", "Hessian-vector product"
            )
        analytic = _inner(hv, u)

        def slope(t: float, v=v, u=u) -> float:
            return _inner(module.loss_and_grad(_moved(params, v, t), *args)[1], u)

        error = _compare(
            slope, analytic, "hvp", "the gradient from backward", "Hessian-vector product"
        )
        if error is None:
            return None
        hvp_worst = max(hvp_worst, error)
    return Verification(worst, DIRECTIONS, hvp_worst)


def _direction(params: dict, rng: np.random.Generator) -> dict:
    """A random direction, each entry scaled like its parameter's largest entry (at least 1)."""
    return {
        n: rng.standard_normal(np.shape(p)) * max(1.0, float(np.max(np.abs(p), initial=0)))
        for n, p in params.items()
    }


def _moved(params: dict, direction: dict, t: float) -> dict:
    return {n: p + t * direction[n] for n, p in params.items()}


def _inner(a: dict, b: dict) -> float:
    return sum(float(np.vdot(a[n], b[n])) for n in b)


def _compare(f, analytic: float, source: str, of: str, what: str) -> float | None:
    """The relative error of ``analytic`` against the central difference of ``f`` at 0 (None
    where that is not finite); a VerificationError above the tolerance."""
    estimate, noise = derivative(f, 1.0, analytic)
    if not np.isfinite(estimate):
        return None
    scale = max(abs(estimate), abs(analytic), noise / RESOLUTION, 1e-5)
    error = abs(estimate - analytic) / scale
    if error > TOLERANCE:
        raise VerificationError(
            f"relative error {error:.2e} along a random direction: {source} gives "
            f"{analytic:.10g}, finite differences of {of} {estimate:.10g}",
            what,
        )
    return error


def _shapes(module: types.ModuleType):
    return [*module.PARAM_SHAPES.values(), *module.INPUT_SHAPES.values()]

"""Every module symbp writes has passed a check: its gradient against its own loss.

Before a module is written, it is loaded from its text and, in float64 at a random point
(named sizes 3), the derivative of its loss along random directions v, ⟨∇L, v⟩ from
``backward``, is compared with a fourth-order central difference of its ``forward`` along v.
Two directions cost about ten forward passes, whatever the number of parameters; a wrong rule
anywhere in the derivation moves almost every direction's derivative, so it cannot pass.
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
    """The derived gradient disagrees with finite differences of the loss."""


class NotVerifiable(Exception):
    """The module's loss is not finite at any random point tried, so nothing was compared."""


@dataclass(frozen=True)
class Verification:
    worst: float
    """The largest relative error over the directions."""
    directions: int


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
        direction = {
            n: rng.standard_normal(np.shape(p)) * max(1.0, float(np.max(np.abs(p), initial=0)))
            for n, p in params.items()
        }
        analytic = sum(float(np.vdot(grads[n], direction[n])) for n in params)

        def along(t: float, direction=direction) -> float:
            moved = {n: p + t * direction[n] for n, p in params.items()}
            return float(module.forward(moved, *args)[0])

        estimate, noise = derivative(along, 1.0, analytic)
        if not np.isfinite(estimate):
            return None
        scale = max(abs(estimate), abs(analytic), noise / RESOLUTION, 1e-5)
        error = abs(estimate - analytic) / scale
        worst = max(worst, error)
        if error > TOLERANCE:
            raise VerificationError(
                f"relative error {error:.2e} along a random direction: backward gives "
                f"{analytic:.10g}, finite differences of the loss {estimate:.10g}"
            )
    return Verification(worst, DIRECTIONS)


def _shapes(module: types.ModuleType):
    return [*module.PARAM_SHAPES.values(), *module.INPUT_SHAPES.values()]

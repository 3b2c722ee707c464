"""Central finite differences against a generated module, in float64 on random data.

Each parameter entry θ is moved by ±h and ±2h, with h = 1e-3·max(1, |θ|), and the fourth-order
stencil (−f(θ+2h) + 8f(θ+h) − 8f(θ−h) + f(θ−2h)) / 12h is compared with ``backward``: its
truncation error is O(h⁴) and its rounding error about ε·|f|/h, both near 1e-13. The same
stencil at h/4 must agree. Where it does not, a kink (a ReLU switching) lies within 2h of θ,
and the stencil is taken again at h/16, h/64 and h/256 until two in a row agree, the coarser
of the two (less rounding) being the estimate. Where none do, the kink is closer still: of
the one-sided fourth-order stencils (±(−25f(θ) + 48f(θ±h) − 36f(θ±2h) + 16f(θ±3h) −
3f(θ±4h)) / 12h, at h/4 and h/16), the side whose two estimates agree sees no kink and gives
the estimate (if both do, the one nearer to ``backward``: θ lies on one side of the kink).

The relative error of an entry is |fd − bp| / max(|fd|, |bp|, floor). The floor keeps entries
that are near zero in both from dividing the stencil's rounding noise by noise: it is 1e-5, or
the stencil's rounding bound Σ|cₖ|·8ε·max|f| / 12h divided by 1e-7 where that is larger. So
the stencil's rounding is at most 1e-7 of the error the check reports, whatever the tolerance:
1e-7 is the smallest relative error the check resolves, and a smaller tolerance is refused. A
parameter passes when its largest relative error is at most the tolerance, 1e-6 by default.
"""

from __future__ import annotations

import math
import time
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from symbp.limits import DEFAULT_TIMEOUT, run_stages

TOLERANCE = 1e-6
FLOOR = 1e-5
RESOLUTION = 1e-7
"""The smallest relative error the check resolves: the floor is raised so that the stencil's
rounding error is at most this share of it."""


@dataclass(frozen=True)
class ParamCheck:
    name: str
    entries: int
    max_abs_error: float
    max_rel_error: float
    ok: bool
    zero: bool = False
    """The gradient is zero everywhere at the point (every ReLU off, say): the check then
    shows nothing about this parameter, and the table says so."""


@dataclass(frozen=True)
class CheckResult:
    rows: list[ParamCheck]
    tolerance: float
    loss: float

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)

    @property
    def max_rel_error(self) -> float:
        return max((r.max_rel_error for r in self.rows), default=0.0)

    def table(self) -> str:
        """The result as an aligned text table: parameter | max abs error | max rel error | ok."""
        header = ("parameter", "entries", "max abs error", "max rel error", "ok")
        body = [
            (
                r.name,
                str(r.entries),
                f"{r.max_abs_error:.2e}",
                f"{r.max_rel_error:.2e}",
                ("yes" if r.ok else "NO") + (" (gradient zero here: try another seed)" * r.zero),
            )
            for r in self.rows
        ]
        widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
        lines = [
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in [header, *body]
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)


def random_inputs(module: types.ModuleType, rng: np.random.Generator, sizes: Mapping[str, int]):
    """Inputs of the shapes and kinds the module declares, sizes filled from ``sizes``."""
    inputs = {}
    for name, shape in module.INPUT_SHAPES.items():
        concrete = tuple(sizes[d] if isinstance(d, str) else d for d in shape)
        kind = module.INPUT_KINDS.get(name, "real")
        if kind == "one-hot":
            labels = rng.integers(0, concrete[-1], size=concrete[:-1])
            inputs[name] = np.eye(concrete[-1])[labels]
        elif kind == "probability":
            inputs[name] = rng.uniform(0.05, 0.95, size=concrete)
        else:
            inputs[name] = np.asarray(rng.standard_normal(concrete))
    return inputs


def random_params(module: types.ModuleType, rng: np.random.Generator, sizes: Mapping[str, int]):
    """Parameters with every entry random (zero biases would hide errors), in float64.

    Matrices are N(0, 1/fan_in); vectors and scalars (biases, mostly) N(0, 0.5²), small
    enough that a ReLU layer is not switched off whole by its biases."""
    params = {}
    for name, shape in module.PARAM_SHAPES.items():
        concrete = tuple(sizes[d] if isinstance(d, str) else d for d in shape)
        scale = 1 / np.sqrt(concrete[0]) if len(concrete) == 2 else 0.5
        params[name] = np.asarray(rng.standard_normal(concrete) * scale)
    return params


def _random_point(
    module: types.ModuleType,
    batch: int,
    seed: int,
    sizes: Mapping[str, int] | None,
    tolerance: float,
) -> tuple[np.random.Generator, dict[str, np.ndarray], list[np.ndarray]]:
    """The checks' random point (parameters, then inputs, from one generator), once the
    tolerance is one central differences can resolve."""
    if tolerance < RESOLUTION:
        raise ValueError(
            f"a tolerance of {tolerance:g} is below what central differences in float64 "
            f"resolve; the smallest meaningful one is {RESOLUTION:g}"
        )
    rng = np.random.default_rng(seed)
    all_sizes = check_sizes(module, batch, sizes)
    params = random_params(module, rng, all_sizes)
    return rng, params, list(random_inputs(module, rng, all_sizes).values())


def check_module(
    module: types.ModuleType,
    *,
    batch: int = 4,
    seed: int = 0,
    sizes: Mapping[str, int] | None = None,
    tolerance: float = TOLERANCE,
    progress: Callable[[str], None] | None = None,
) -> CheckResult:
    """Compare ``backward`` with finite differences of ``forward`` for every parameter entry."""
    _, params, args = _random_point(module, batch, seed, sizes, tolerance)

    def loss(p):
        value, _ = module.forward(p, *args)
        return float(value)

    base_loss, grads = module.loss_and_grad(params, *args)
    if not np.isfinite(base_loss):
        raise ValueError("the loss is not finite at the random point; check the model's domain")
    rows = []
    for name, value in params.items():
        if progress:
            progress(name)
        analytic = np.asarray(grads[name], dtype=np.float64)
        numeric = np.empty_like(value)
        noise = np.empty_like(value)
        for idx in np.ndindex(value.shape):
            moved = _moving_entry(loss, params, name, idx)
            scale = max(1.0, abs(float(value[idx])))
            numeric[idx], noise[idx] = derivative(moved, scale, float(analytic[idx]))
        rows.append(_row(name, numeric, analytic, noise, tolerance))
    return CheckResult(rows, tolerance, float(base_loss))


def check_hvp(
    module: types.ModuleType,
    *,
    batch: int = 4,
    seed: int = 0,
    sizes: Mapping[str, int] | None = None,
    tolerance: float = TOLERANCE,
) -> CheckResult:
    """Compare ``hvp`` with finite differences of the gradient along V, for every entry.

    At the random point of :func:`check_module` and a random direction V (each parameter's
    block ~ N(0, 1)·max(1, its largest entry)), entry i of H·V is the derivative of
    ∇L(θ + tV)ᵢ at t = 0, with steps h = 1e-3/max(1, ‖V‖) (all entries move at once, so θ
    moves as far as one entry does in the gradient check). Every entry takes the stencils of
    :func:`derivative` in t, so the gradients at θ + tV are computed once for all entries (a
    dozen ``loss_and_grad`` calls, more near a kink), whatever the number of parameters."""
    rng, params, args = _random_point(module, batch, seed, sizes, tolerance)
    direction = {
        n: rng.standard_normal(np.shape(p)) * max(1.0, float(np.max(np.abs(p), initial=0)))
        for n, p in params.items()
    }
    base_loss, hv = module.loss_grad_hvp(params, *args, direction)[::2]
    if not np.isfinite(base_loss):
        raise ValueError("the loss is not finite at the random point; check the model's domain")
    length = max(1.0, math.sqrt(sum(float(np.vdot(v, v)) for v in direction.values())))
    gradients: dict[float, dict] = {}

    def gradient(t: float) -> dict:
        if t not in gradients:
            moved = {n: p + t * direction[n] for n, p in params.items()}
            gradients[t] = module.loss_and_grad(moved, *args)[1]
        return gradients[t]

    rows = []
    for name, value in params.items():
        analytic = np.asarray(hv[name], dtype=np.float64)
        numeric = np.empty(np.shape(value))
        noise = np.empty(np.shape(value))
        for idx in np.ndindex(np.shape(value)):

            def entry(t: float, name=name, idx=idx) -> float:
                return float(np.asarray(gradient(t)[name])[idx])

            numeric[idx], noise[idx] = derivative(entry, 1 / length, float(analytic[idx]))
        rows.append(_row(name, numeric, analytic, noise, tolerance))
    return CheckResult(rows, tolerance, float(base_loss))


def _row(name: str, numeric, analytic, noise, tolerance: float) -> ParamCheck:
    """One parameter's line of the table: finite differences ``numeric`` against ``analytic``,
    relative to the larger of the two or the floor (see the module's docstring)."""
    abs_err = np.abs(numeric - analytic)
    floor = np.maximum(FLOOR, noise / RESOLUTION)
    scale = np.maximum(np.maximum(np.abs(numeric), np.abs(analytic)), floor)
    rel_err = abs_err / scale
    max_abs = float(abs_err.max(initial=0.0))
    max_rel = float(rel_err.max(initial=0.0))
    zero = not analytic.any() and bool(np.all(np.abs(numeric) <= RESOLUTION * FLOOR))
    return ParamCheck(name, analytic.size, max_abs, max_rel, max_rel <= tolerance, zero)


def check_sizes(
    module: types.ModuleType, batch: int, sizes: Mapping[str, int] | None = None
) -> dict[str, int]:
    """The sizes the check uses: the batch ``m``, 3 for any other named size, or ``sizes``."""
    named = {
        d
        for shape in [*module.PARAM_SHAPES.values(), *module.INPUT_SHAPES.values()]
        for d in shape
        if isinstance(d, str)
    }
    return {d: 3 for d in named} | {"m": batch} | dict(sizes or {})


STEP = 1e-3
AGREE = 1e-9
ROUNDING = 8 * np.finfo(np.float64).eps
"""How far a computed loss may be from the exact one, relative to its size (8 ulp)."""
CENTRAL = (np.array([2, 1, -1, -2]), np.array([-1.0, 8, -8, 1]))
ONE_SIDED = (np.arange(5), np.array([-25.0, 48, -36, 16, -3]))
"""Fourth-order stencils: multiples of h and weights, over 12h."""


def _moving_entry(loss, params, name, idx) -> Callable[[float], float]:
    """The loss as a function of one parameter entry's offset (the entry is restored)."""

    def moved(offset: float) -> float:
        original = params[name][idx]
        params[name][idx] = original + offset
        try:
            return loss(params)
        finally:
            params[name][idx] = original

    return moved


def derivative(f: Callable[[float], float], scale: float, analytic: float) -> tuple[float, float]:
    """The finite-difference derivative of ``f`` at 0, with steps h = 1e-3·scale, h/4, …,
    and its rounding error bound.

    Kinks inside the step are handled as the module docstring says: central stencils at
    h, h/4, … until two agree, else the one-sided stencil that agrees with itself (of two
    that do, the one nearer to ``analytic``)."""
    previous = None
    for k in range(5):
        estimate = _stencil(f, STEP * scale / 4**k, CENTRAL)
        if previous is not None and _agree(previous, estimate):
            return previous
        previous = estimate
    sides = []
    for side in (1, -1):
        wide, narrow = (_stencil(f, side * STEP * scale / 4**k, ONE_SIDED) for k in (1, 2))
        sides.append(wide if _agree(wide, narrow) else (wide[0], np.inf))
    fd, noise = min(sides, key=lambda e: (not np.isfinite(e[1]), abs(e[0] - analytic)))
    return fd, noise if np.isfinite(noise) else 0.0


def _agree(a: tuple[float, float], b: tuple[float, float]) -> bool:
    return abs(a[0] - b[0]) <= AGREE * max(1.0, abs(b[0])) + a[1] + b[1]


def _stencil(f: Callable[[float], float], h: float, stencil) -> tuple[float, float]:
    """Σ cₖ f(kₖ h) / 12h and its rounding bound Σ|cₖ| ε max|f| / 12h."""
    multiples, weights = stencil
    values = np.array([f(k * h) for k in multiples])
    noise = np.abs(weights).sum() * ROUNDING * np.abs(values).max() / abs(12 * h)
    return float(weights @ values / (12 * h)), float(noise)


# --- a check that ends in time -------------------------------------------------------------

MAX_CHECK_ENTRIES = 1_000_000
"""More parameter entries than this cannot be checked entry by entry in any reasonable time
(at least 8 forward passes each); the check is refused before any array is made."""
MAX_INPUT_ENTRIES = 10_000_000
PASSES_PER_ENTRY = 8
"""Forward passes per parameter entry at least: two central stencils of four points."""


class CheckLimit(Exception):
    """The check cannot finish, or did not finish, within its time limit; the message says
    which and what to change."""


def check_in_time(
    module: types.ModuleType,
    *,
    batch: int = 4,
    seed: int = 0,
    tolerance: float = TOLERANCE,
    timeout: float = DEFAULT_TIMEOUT,
    hvp: bool = False,
) -> CheckResult:
    """:func:`check_module` (``hvp``: :func:`check_hvp`) under a hard time limit: in a child
    process killed at the deadline (:mod:`symbp.limits`). Sizes are estimated first: too many
    entries to hold or to check is refused at once, and so is a gradient check whose forward
    passes alone, at the time one takes here, need longer than ``timeout`` (the check of H·V
    takes a dozen gradients, whatever the size)."""
    sizes = check_sizes(module, batch)

    def total(shapes: Mapping[str, tuple]) -> int:
        return sum(math.prod(sizes[d] if isinstance(d, str) else d for d in s) for s in shapes)

    entries = total(module.PARAM_SHAPES.values())
    inputs = total(module.INPUT_SHAPES.values())
    if entries > MAX_CHECK_ENTRIES or inputs > MAX_INPUT_ENTRIES:
        raise CheckLimit(
            f"too large to check by finite differences: {entries:,} parameter entries and "
            f"{inputs:,} input entries at batch {batch} (at most {MAX_CHECK_ENTRIES:,} and "
            f"{MAX_INPUT_ENTRIES:,}); check a smaller model of the same form"
        )

    def work(emit) -> None:
        if hvp:
            emit("result", check_hvp(module, batch=batch, seed=seed, tolerance=tolerance))
            return
        rng = np.random.default_rng(seed)
        params = random_params(module, rng, sizes)
        args = list(random_inputs(module, rng, sizes).values())
        seconds = []
        for _ in range(2):  # the first call also warms up: the faster one counts
            started = time.perf_counter()
            module.forward(params, *args)
            seconds.append(time.perf_counter() - started)
        needed = min(seconds) * PASSES_PER_ENTRY * entries
        emit("estimate", needed)
        if needed <= timeout:
            emit("result", check_module(module, batch=batch, seed=seed, tolerance=tolerance))

    outcome = run_stages(work, timeout)
    needed = outcome.results.get("estimate")
    if "result" in outcome.results:
        return outcome.results["result"]
    if needed is not None and needed > timeout:
        raise CheckLimit(
            f"the check needs at least {PASSES_PER_ENTRY} forward passes for each of "
            f"{entries:,} parameter entries, about {needed:.3g} s here, more than the time "
            f"limit of {timeout:g} s (--timeout); raise it, or check a smaller model"
        )
    raise CheckLimit(
        f"the check did not finish within the time limit of {timeout:g} s (--timeout); raise "
        "it, or check a smaller model"
    )

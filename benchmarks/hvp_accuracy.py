"""The worst relative error of the generated ``hvp`` over the network grid and the examples.

The grid is the tests' (every activation × loss, and every activation × depth 1-4, with
the reduction and L2 rotating: ``tests/test_network_gradients.py``). Each module's H·V is
compared, entry by entry, with fourth-order central differences of its gradient along a
random V (``symbp check --hvp``, ``symbp.analysis.gradcheck.check_hvp``), at batch 3.

Usage::

    python benchmarks/hvp_accuracy.py
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from symbp.analysis.gradcheck import check_hvp  # noqa: E402
from symbp.derivation import derive  # noqa: E402
from symbp.emit.numpy_module import generate  # noqa: E402
from symbp.front.spec import loads  # noqa: E402
from symbp.loader import module_from_source  # noqa: E402
from tests.conftest import network_spec  # noqa: E402
from tests.test_network_gradients import GRID, _layers  # noqa: E402


def module_of(text: str):
    derivation = derive(loads(text))
    return module_from_source(generate(derivation), derivation.model.name)


def main() -> None:
    cases = []
    for act, loss, depth, reduction, l2 in GRID:
        text = network_spec(3, _layers(act, loss, depth), loss, reduction=reduction, l2=l2)
        result = check_hvp(module_of(text), batch=3, seed=depth)
        cases.append((result.max_rel_error, f"{act}, {loss}, depth {depth}, {reduction}, l2 {l2}"))
    grid_worst = max(cases)
    examples = []
    for path in sorted((ROOT / "examples").glob("*.toml")):
        module = module_of(path.read_text())
        worst = max(check_hvp(module, seed=seed).max_rel_error for seed in range(3))
        examples.append((worst, path.stem))
    print(f"network grid: {len(cases)} networks, worst relative error {grid_worst[0]:.2e}")
    print(f"  at {grid_worst[1]}")
    print(f"examples (3 seeds each): worst relative error {max(examples)[0]:.2e}")
    for worst, name in examples:
        print(f"  {name:<20} {worst:.2e}")
    if grid_worst[0] > 1e-6 or max(examples)[0] > 1e-6:
        sys.exit(1)


if __name__ == "__main__":
    main()

"""How closely the array API module agrees with the NumPy module on each array library.

Usage::

    python benchmarks/agreement.py             # every example, 50 networks, 100 graphs
    python benchmarks/agreement.py --quick     # 10 networks, 20 graphs

For each library (NumPy through array-api-compat, array-api-strict, Dask, and PyTorch, JAX and
CuPy where they run), the largest error of the loss and of every gradient in float64, each the
largest difference over the largest entry, against the NumPy module (itself checked against
finite differences). The networks and graphs are the tests' random generators
(``tests/test_network_oracle.py``, ``tests/test_graph_oracle.py``), replayed with a fixed seed,
so every run draws the same models.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from symbp.resources import example_specs  # noqa: E402
from tests.array_backends import backend  # noqa: E402
from tests.conftest import network_spec  # noqa: E402
from tests.test_array_api import LIBRARIES, compare, example_point, modules  # noqa: E402
from tests.test_graph_oracle import draw_point, graphs  # noqa: E402
from tests.test_network_oracle import networks  # noqa: E402


def drawn(strategy, count: int) -> list:
    """``count`` values of a hypothesis strategy, the same ones every run."""
    found = []

    @settings(
        max_examples=count,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value):
        found.append(value)

    collect()
    return found[:count]


def cases(quick: bool) -> dict[str, list]:
    """Per kind of model: (NumPy module, array API module, parameters, inputs)."""
    made = {"examples": [], "networks": [], "graphs": []}
    for spec in example_specs():
        reference, module = modules(spec)
        made["examples"].append((reference, module, *example_point(reference)))
    for net, seed in drawn(st.tuples(networks(), st.integers(0, 2**16)), 10 if quick else 50):
        inputs, layers, loss, reduction, l2, batch = net
        reference, module = modules(network_spec(inputs, layers, loss, reduction=reduction, l2=l2))
        made["networks"].append((reference, module, *example_point(reference, seed, batch)))
    for g in drawn(graphs(), 20 if quick else 100):
        reference, module = modules(g.spec())
        params, inputs = draw_point(g, {"m": 3, "n": 2, "k": 3}, np.random.default_rng(7))
        made["graphs"].append((reference, module, params, [inputs[n] for n in g.inputs]))
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    made = cases(args.quick)
    counts = ", ".join(f"{len(v)} {k}" for k, v in made.items())
    print(f"Worst error against the NumPy module, float64 ({counts}):\n")
    print("| library | examples | networks | graphs |")
    print("|---|---|---|---|")
    for library in LIBRARIES:
        try:
            b = backend(library)
        except pytest.skip.Exception as skipped:
            print(f"| {library} | skipped: {skipped.msg} | | |")
            continue
        worst = {
            kind: max(compare(b, *case) for case in kind_cases)
            for kind, kind_cases in made.items()
        }
        print(f"| {library} | " + " | ".join(f"{w:.1e}" for w in worst.values()) + " |")


if __name__ == "__main__":
    main()

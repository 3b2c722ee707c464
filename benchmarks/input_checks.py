"""What the generated module's argument checks cost a training step, measured side by side.

Usage::

    python benchmarks/input_checks.py           # about 30 s
    python benchmarks/input_checks.py --quick   # a short smoke run

One process, 1 thread, pinned to one CPU. Each case's module is timed as generated and as
copies of it with one check taken out, interleaved round-robin (``run.time_interleaved``):

- target checks: one-hot or soft-label rows (no negative entry, rows summing to 1) on the
  784-128-10 relu softmax network at batch 64, targets given as float one-hot rows;
- ``backward``'s parameter check (lists converted, bad parameters refused as in ``forward``),
  on the same network and on the 2-3-1 tanh network at batch 1, where a step is shortest.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import generate_module, spec_text, time_interleaved  # noqa: E402

from symbp.loader import module_from_source  # noqa: E402

TARGET_CHECK = (
    "    return _one_hot(name, array, dtype)\n",
    "    return _input(name, array, dtype)\n",
)
"""In ``_labels``: float rows go through the row checks; the copy only converts them."""


def without(module, old: str, new: str, stem: str):
    """A copy of ``module`` with ``old`` replaced by ``new`` in its source (which must hold it)."""
    source = Path(module.__file__).read_text(encoding="utf-8")
    if old not in source:
        raise AssertionError(f"{old!r} is not in the generated module any more")
    return module_from_source(source.replace(old, new), stem)


def backward_unchecked(module):
    """``backward`` reading its parameters straight from the dict, as before issue 11."""
    source = Path(module.__file__).read_text(encoding="utf-8")
    line = next(x for x in source.splitlines() if "= _params(params, {})" in x)
    names = [n.strip() for n in line.split("=")[0].strip("() ").split(",") if n.strip()]
    plain = "\n".join(f'    {n} = params["{n}"]' for n in names if n != "_")
    return module_from_source(source.replace(line, plain), "unchecked")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    repeats, budget = (3, 0.02) if quick else (25, 0.05)
    cases = [
        (
            "784-128-10 relu b64",
            784,
            [(128, "relu"), (10, "identity")],
            "softmax_cross_entropy",
            64,
        ),
        ("2-3-1 tanh b1", 2, [(3, "tanh"), (1, "identity")], "squared_error", 1),
    ]
    print(f"{'case':<21} {'variant':<27} {'best':>11} {'median':>11}   generated costs")
    with tempfile.TemporaryDirectory() as tmp:
        for index, (label, inputs, layers, loss, batch) in enumerate(cases):
            module = generate_module(
                spec_text(f"checks_{index}", inputs, layers, loss, 0.0), Path(tmp)
            )
            rng = np.random.default_rng(0)
            params = module.init_params(rng)
            X = rng.standard_normal((batch, inputs))
            n_out = layers[-1][0]
            if loss == "squared_error":
                T = rng.standard_normal((batch, n_out))
            else:
                T = np.eye(n_out)[rng.integers(0, n_out, batch)]
            variants = {"as generated": module}
            if loss != "squared_error":
                variants["without target checks"] = without(module, *TARGET_CHECK, "no_targets")
            variants["without backward's _params"] = backward_unchecked(module)
            reference, _ = module.loss_and_grad(params, X, T)
            for name, variant in variants.items():
                value, _ = variant.loss_and_grad(params, X, T)
                if value != reference:
                    raise AssertionError(f"{name} computes another loss")
            fns = {
                name: (lambda m=m, p=params, X=X, T=T: m.loss_and_grad(p, X, T))
                for name, m in variants.items()
            }
            result = time_interleaved(fns, repeats, budget)
            base = result["as generated"][0]
            for name, (best, median, _) in result.items():
                print(
                    f"{label:<21} {name:<27} {best * 1e6:8.2f} µs {median * 1e6:8.2f} µs"
                    f"   {(base - best) / best * 100:+6.2f}%"
                )
            if loss != "squared_error":  # the checks alone: steadier than a step's difference
                helpers = {
                    "T: _one_hot (convert, check rows)": (
                        lambda m=module, T=T: m._one_hot("T", T, T.dtype)
                    ),
                    "T: _input (convert only)": lambda m=module, T=T: m._input("T", T, T.dtype),
                }
                alone = time_interleaved(helpers, repeats, budget / 10)
                checks = alone[next(iter(helpers))][0] - alone["T: _input (convert only)"][0]
                for name, (best, median, _) in alone.items():
                    print(f"{label:<21} {name:<36} {best * 1e6:6.2f} µs {median * 1e6:6.2f} µs")
                print(
                    f"{label:<21} the target checks alone: {checks * 1e6:.2f} µs a step, "
                    f"{checks / base * 100:.2f}% of it"
                )


if __name__ == "__main__":
    main()

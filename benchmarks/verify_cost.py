"""What self-verification adds to ``symbp generate``, per example, measured side by side.

Usage::

    python benchmarks/verify_cost.py            # 7 interleaved runs of each command
    python benchmarks/verify_cost.py --runs 3

For every example, ``symbp generate SPEC -o DIR --force`` and the same with ``--no-verify``
run as fresh processes, alternately, and the median wall times are compared. The in-process
columns time ``derive`` + code generation and ``verify_source`` alone (best of 5).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from symbp.analysis.verify import verify_source  # noqa: E402
from symbp.derivation import derive  # noqa: E402
from symbp.emit.numpy_module import generate  # noqa: E402
from symbp.front.spec import load  # noqa: E402
from symbp.resources import example_specs  # noqa: E402


def wall(args: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    return time.perf_counter() - start


def best(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    runs = parser.parse_args().runs
    header = (
        f"{'example':<20} {'generate':>9} {'--no-verify':>12} {'added':>7}"
        f" {'derive+emit':>12} {'verify':>8}"
    )
    print(header)
    print("-" * len(header))
    worst = 0.0
    with tempfile.TemporaryDirectory() as out:
        for spec in example_specs():
            command = [sys.executable, "-m", "symbp", "generate", str(spec), "-o", out, "--force"]
            wall(command)  # warm the file cache
            checked, unchecked = [], []
            for _ in range(runs):
                checked.append(wall(command))
                unchecked.append(wall([*command, "--no-verify"]))
            with_verify, without = statistics.median(checked), statistics.median(unchecked)
            added = with_verify / without - 1
            worst = max(worst, added)
            source = generate(derive(load(spec)))
            emit = best(lambda spec=spec: generate(derive(load(spec))))
            check = best(lambda source=source, spec=spec: verify_source(source, spec.stem))
            print(
                f"{spec.stem:<20} {with_verify:>8.3f}s {without:>11.3f}s {added:>6.1%}"
                f" {emit * 1e3:>10.1f}ms {check * 1e3:>6.1f}ms"
            )
    print(f"\nlargest addition to `symbp generate`: {worst:.1%} (aim: under 10%)")


if __name__ == "__main__":
    main()

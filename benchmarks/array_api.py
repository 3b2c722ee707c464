"""Benchmarks of the array API module and of symbp.dask, each ratio measured side by side in one
run.

Usage::

    python benchmarks/array_api.py              # all three tables (about 4 minutes here)
    python benchmarks/array_api.py --quick      # a short smoke run
    python benchmarks/array_api.py --only dask  # one table: numpy, torch or dask

1. The array API module on NumPy arrays against the NumPy module (the default target), on the
   networks of ``benchmarks/run.py``: one thread, interleaved, best of repeats.
2. The array API module on PyTorch CPU tensors against PyTorch eager autograd of the same
   network (``benchmarks/run.py``'s), one thread.
3. symbp.dask on 10⁶ rows of the 64-32-10 digits network: one process (the NumPy module on the
   whole batch), then a LocalCluster of 1 and of 2 single-threaded worker processes holding the
   rows (made on the workers): rows per second of a loss-and-gradient pass, and agreement.

Every timed process runs with one BLAS thread; a case's implementations run in one fresh
process pinned to one CPU, so that their ratio is measured under the same conditions.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.run import CASES, spec_text, time_interleaved, torch_step  # noqa: E402

DASK_ROWS = 1_000_000
DASK_CHUNK = 25_000


def modules(text: str, directory: Path):
    """The NumPy module and the array API module of a spec, written and loaded as a user
    would."""
    from symbp.derivation import derive
    from symbp.emit import array_api_module, numpy_module
    from symbp.front.spec import loads
    from symbp.loader import load_module

    derivation = derive(loads(text))
    made = []
    for emitter, suffix in ((numpy_module, ""), (array_api_module, "_array_api")):
        path = directory / f"{derivation.model.name}{suffix}.py"
        path.write_text(emitter.generate(derivation))
        made.append(load_module(path))
    return made


def point(np, case, dtype: str):
    _, inputs, layers, loss, batch, _ = case
    rng = np.random.default_rng(0)
    params = {}
    sizes = [inputs, *(u for u, _ in layers)]
    for i in range(1, len(layers) + 1):
        w = rng.standard_normal((sizes[i - 1], sizes[i])) / np.sqrt(sizes[i - 1])
        params[f"W{i}"] = w.astype(dtype)
        params[f"b{i}"] = (0.1 * rng.standard_normal(sizes[i])).astype(dtype)
    X = rng.standard_normal((batch, inputs)).astype(dtype)
    if loss == "squared_error":
        T = rng.standard_normal((batch, sizes[-1])).astype(dtype)
    else:
        T = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], batch)]
    return params, X, T


def worker(table: str, case_index: int, quick: bool) -> list[dict]:
    """One case's timings, both dtypes, in this fresh single-threaded process."""
    import numpy as np

    repeats, budget = (3, 0.02) if quick else (15, 0.05)
    case = CASES[case_index]
    label, _, layers, loss, _, l2 = case
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        numpy_side, array_side = modules(spec_text(f"case{case_index}", *case[1:4], l2), Path(tmp))
        for dtype in ("float64", "float32"):
            params, X, T = point(np, case, dtype)
            expected_loss, expected = numpy_side.loss_and_grad(params, X, T)
            if table == "numpy":
                fns = {
                    "numpy module": lambda p=params, X=X, T=T: numpy_side.loss_and_grad(p, X, T),
                    "array API module": lambda p=params, X=X, T=T: array_side.loss_and_grad(
                        p, X, T
                    ),
                }
                got_loss, got = array_side.loss_and_grad(params, X, T)
            else:
                import torch

                torch.set_num_threads(1)
                tp = {k: torch.from_numpy(v.copy()) for k, v in params.items()}
                tX, tT = torch.from_numpy(X), torch.from_numpy(T)
                eager = torch_step(layers, loss, l2)
                fns = {
                    "PyTorch eager autograd": lambda f=eager, p=tp, X=tX, T=tT: f(p, X, T),
                    "array API module": lambda p=tp, X=tX, T=tT: array_side.loss_and_grad(p, X, T),
                }
                got_loss, got = array_side.loss_and_grad(tp, tX, tT)
                got = {k: v.numpy() for k, v in got.items()}
            error = max(
                abs(float(got_loss) - float(expected_loss)) / abs(float(expected_loss)),
                *(np.max(np.abs(got[k] - g)) / np.max(np.abs(g)) for k, g in expected.items()),
            )
            timed = time_interleaved(fns, repeats, budget)
            rows.append({"case": label, "dtype": dtype, "t": timed, "error": float(error)})
            print(f"  {table}: {label} {dtype}", file=sys.stderr)
    return rows


def run_cases(table: str, quick: bool) -> list[dict]:
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    rows = []
    for index in range(len(CASES)):
        cmd = [sys.executable, __file__, "--worker", table, str(index)]
        cmd += ["--quick"] if quick else []
        done = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE, text=True)
        rows += json.loads(done.stdout.strip().splitlines()[-1])
    return rows


def case_table(rows: list[dict], baseline: str, title: str) -> list[str]:
    lines = [
        f"| case | dtype | {baseline} | array API module | ratio | agreement |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        base, ours = row["t"][baseline][0], row["t"]["array API module"][0]
        lines.append(
            f"| {row['case']} | {row['dtype']} | {fmt(base)} | {fmt(ours)} | "
            f"{ours / base:.2f} | {row['error']:.1e} |"
        )
    return [f"### {title}", "", *lines, ""]


def fmt(seconds: float) -> str:
    return f"{seconds * 1e3:.2f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:.1f} µs"


# ---- Dask ---------------------------------------------------------------------------------------


def dask_table(quick: bool) -> list[str]:
    """Rows per second of a loss-and-gradient pass over the rows, four ways timed in turn,
    round after round (best and median): one process on the whole batch, one process over
    the same chunks, and symbp.dask on clusters of 1 and 2 worker processes (both running
    at once, each holding the rows in memory)."""
    import dask.array as da
    import numpy as np
    from distributed import Client, LocalCluster

    import symbp.dask as sd

    rows = 100_000 if quick else DASK_ROWS
    rounds = 2 if quick else 7
    spec = ROOT / "examples" / "mlp_digits.toml"
    with tempfile.TemporaryDirectory() as tmp:
        numpy_side, array_side = modules(spec.read_text(), Path(tmp))
        rng = np.random.default_rng(0)
        params = {
            n: rng.standard_normal(s) / np.sqrt(s[0]) for n, s in numpy_side.PARAM_SHAPES.items()
        }
        X = np.random.default_rng(1).standard_normal((rows, 64))
        y = np.random.default_rng(2).integers(0, 10, rows)
        expected = numpy_side.loss_and_grad(params, X, y)
        starts = range(0, rows, DASK_CHUNK)

        def chunk_loop():
            # The same sums over the same chunks, one after another in this process.
            total, grads = 0.0, {}
            for start in starts:
                part = slice(start, start + DASK_CHUNK)
                loss, g = array_side.loss_and_grad(params, X[part], y[part])
                total += float(loss) * len(X[part])
                grads = {n: grads.get(n, 0) + v * len(X[part]) for n, v in g.items()}
            return total / rows, {n: v / rows for n, v in grads.items()}

        runs = {
            "one process: the NumPy module on the whole batch": lambda: numpy_side.loss_and_grad(
                params, X, y
            ),
            "one process: the array API module, chunk after chunk": chunk_loop,
        }
        clusters = []
        try:
            for workers in (1, 2):
                cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)
                client = Client(cluster, set_as_default=False)
                clusters += [client, cluster]
                Xd = da.from_array(X, chunks=(DASK_CHUNK, 64))
                yd = da.from_array(y, chunks=DASK_CHUNK)
                Xd, yd = client.persist([Xd, yd])  # on the workers before timing
                sd.loss_and_grad(array_side, params, Xd, yd, client=client)  # modules loaded
                name = f"symbp.dask: {workers} worker process{'es' * (workers > 1)}"
                runs[name] = lambda Xd=Xd, yd=yd, client=client: sd.loss_and_grad(
                    array_side, params, Xd, yd, client=client
                )
            seconds = {name: [] for name in runs}
            errors = {}
            for _ in range(rounds):
                for name, run in runs.items():
                    began = time.perf_counter()
                    loss, grads = run()
                    seconds[name].append(time.perf_counter() - began)
                    errors[name] = max(
                        abs(float(loss) - float(expected[0])) / abs(float(expected[0])),
                        *(
                            float(np.max(np.abs(np.asarray(grads[k]) - g)) / np.max(np.abs(g)))
                            for k, g in expected[1].items()
                        ),
                    )
                print("  dask: a round", file=sys.stderr)
        finally:
            for item in clusters:
                item.close()
    lines = [
        f"### symbp.dask: loss and gradients of {rows:,} rows of mlp_digits (64-32-10), "
        f"chunks of {DASK_CHUNK:,} rows",
        "",
        "| how | best | median | rows/s (best) | speed-up (best) | agreement |",
        "|---|---|---|---|---|---|",
    ]
    base = min(next(iter(seconds.values())))
    for name, times in seconds.items():
        best = min(times)
        lines.append(
            f"| {name} | {best:.2f} s | {statistics.median(times):.2f} s | "
            f"{rows / best:,.0f} | {base / best:.2f} | {errors[name]:.1e} |"
        )
    one, two = (min(times) for name, times in seconds.items() if name.startswith("symbp.dask"))
    lines += ["", f"From 1 to 2 workers: {one / two:.2f}× the rows per second.", ""]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short smoke run")
    parser.add_argument("--only", choices=("numpy", "torch", "dask"))
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:1])
        table, index = args.worker
        print(json.dumps(worker(table, int(index), args.quick)))
        return
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"  # this process and the Dask workers it starts
    out = [
        f"Measured by `python benchmarks/array_api.py`, {os.cpu_count()} CPUs, 1 thread each.",
        "",
    ]
    if args.only in (None, "numpy"):
        rows = run_cases("numpy", args.quick)
        out += case_table(rows, "numpy module", "The array API module on NumPy (best of repeats)")
    if args.only in (None, "torch"):
        try:
            import torch  # noqa: F401
        except ImportError:
            out += ["PyTorch is not installed (pip install -e '.[bench]'): no PyTorch table.", ""]
        else:
            rows = run_cases("torch", args.quick)
            out += case_table(
                rows, "PyTorch eager autograd", "The array API module on PyTorch CPU tensors"
            )
    if args.only in (None, "dask"):
        out += dask_table(args.quick)
    print("\n".join(out))


if __name__ == "__main__":
    main()

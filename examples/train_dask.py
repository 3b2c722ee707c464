"""Train the digits network (examples/mlp_digits.toml: 64-32-10, tanh, softmax cross-entropy,
L2) on a million rows spread over a Dask cluster, each step's gradient computed chunk by chunk
on the workers (symbp.dask), with seed 003's SGD and momentum.

    pip install 'symbp[dask]'                      # dask.distributed, array-api-compat
    symbp generate --target array-api examples/mlp_digits.toml
    python examples/train_dask.py                  # a LocalCluster of 2 workers
    python examples/train_dask.py --scheduler tcp://HOST:8786     # any running cluster

``symbp generate --target array-api`` writes generated/mlp_digits_array_api.py.

The rows are made on the workers (inputs ~ N(0, 1), each labelled by a fixed random 64-32-10
"teacher" network) or, with --npy DIR, read from DIR/X.npy and DIR/y.npy chunk by chunk: no
process ever holds them all, and only the chunks' gradients, the size of the parameters, come
back. The workers need symbp installed (the generated module is sent to them). At the end the
distributed gradient is compared with one call of the module on a sample, in this process.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import symbp
from symbp import train

FEATURES, HIDDEN, CLASSES = 64, 32, 10


def teacher_labels(X: np.ndarray, W1: np.ndarray, W2: np.ndarray) -> np.ndarray:
    """The class a fixed random tanh network gives each row (run on the workers)."""
    return np.argmax(np.tanh(X @ W1) @ W2, axis=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--module", type=Path, default=Path("generated/mlp_digits_array_api.py"))
    parser.add_argument("--scheduler", help="address of a running cluster's scheduler")
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster workers")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows made on the workers")
    parser.add_argument("--npy", type=Path, help="read X.npy and y.npy from this folder")
    parser.add_argument("--chunk", type=int, default=25_000, help="rows per chunk")
    parser.add_argument("--batch", type=int, default=100_000, help="rows per step")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--lr", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        import array_api_compat.numpy as xp
        import dask.array as da
        from distributed import Client, LocalCluster

        import symbp.dask as sd
    except ImportError as err:
        sys.exit(f"train_dask: needs {err.name}: pip install 'symbp[dask]'")
    if not args.module.is_file():
        sys.exit(
            f"train_dask: no {args.module}; run: "
            "symbp generate --target array-api examples/mlp_digits.toml"
        )
    net = symbp.load_module(args.module)  # runs only if its symbp header verifies
    if args.scheduler:
        client, cluster = Client(args.scheduler), None
    else:
        cluster = LocalCluster(n_workers=args.workers, threads_per_worker=1)
        client = Client(cluster)
    try:
        workers = len(client.scheduler_info()["workers"])
        print(f"cluster: {workers} workers at {client.scheduler.address}")

        started = time.perf_counter()
        if args.npy:
            X = sd.from_npy(args.npy / "X.npy", args.chunk)
            y = sd.from_npy(args.npy / "y.npy", args.chunk)
            where = f"read from {args.npy}/X.npy and y.npy chunk by chunk"
        else:
            teacher = np.random.default_rng(1000 + args.seed)
            W1 = teacher.standard_normal((FEATURES, HIDDEN)) / np.sqrt(FEATURES)
            W2 = teacher.standard_normal((HIDDEN, CLASSES)) * 2
            rng = da.random.default_rng(args.seed)
            X = rng.standard_normal((args.rows, FEATURES), chunks=(args.chunk, FEATURES))
            y = X.map_blocks(teacher_labels, W1, W2, drop_axis=1, dtype=np.int64)
            X, y = client.persist([X, y])  # kept in the workers' memory, never gathered
            where = "made on the workers and kept there"
        rows = X.shape[0]
        size = X.nbytes / 2**20
        print(
            f"data: {rows:,} rows x {X.shape[1]} ({size:,.0f} MiB), {where}, in chunks of "
            f"{X.chunks[0][0]:,} rows"
        )
        params = net.init_params(xp, rng=args.seed)
        params = {n: np.asarray(p) for n, p in params.items()}
        optimizer = train.SGD(args.lr, momentum=0.9)
        batches = max(1, rows // args.batch)
        for step in range(1, args.steps + 1):
            start = (step - 1) % batches * args.batch
            stop = min(start + args.batch, rows)
            began = time.perf_counter()
            loss, grads = sd.loss_and_grad(net, params, X[start:stop], y[start:stop])
            optimizer.step(params, grads)
            if step == 1 or step % 10 == 0 or step == args.steps:
                seconds = time.perf_counter() - began
                print(
                    f"step {step:>3}/{args.steps}  batch loss {loss:.4f}  "
                    f"({stop - start:,} rows, {seconds:.2f} s, {(stop - start) / seconds:,.0f} "
                    "rows/s)"
                )

        began = time.perf_counter()
        loss = sd.loss(net, params, X, y)
        predicted = da.argmax(sd.predict(net, params, X), axis=1)
        accuracy = float((predicted == y).mean().compute())
        seconds = time.perf_counter() - began
        print(
            f"all {rows:,} rows: loss {loss:.4f}, accuracy {accuracy:.2%} ({seconds:.2f} s, "
            f"{rows / seconds:,.0f} rows/s for the loss and the predictions)"
        )

        sample = min(rows, args.batch)
        distributed = sd.loss_and_grad(net, params, X[:sample], y[:sample])
        local = net.loss_and_grad(params, X[:sample].compute(), y[:sample].compute())
        worst = max(
            float(np.max(np.abs(distributed[1][n] - local[1][n])) / np.max(np.abs(local[1][n])))
            for n in params
        )
        print(
            f"agreement on {sample:,} rows, {X[:sample].numblocks[0]} chunks against one call: "
            f"loss {abs(distributed[0] - float(local[0])):.1e}, gradients {worst:.1e} "
            "(largest difference over largest entry)"
        )
        print(f"{time.perf_counter() - started:.1f} s in all")
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

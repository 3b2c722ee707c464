"""Reverse-over-reverse against forward-over-reverse, measured on an independent engine.

Issue 13 asks for the Hessian-vector product by reverse-over-reverse (seed 000's Corollary 1:
backprop of g = ⟨∇L, v⟩), or by forward-over-reverse (Pearlmutter's R-operator) if that
measures cheaper. JAX builds both from the same loss: ``grad(lambda p: vdot(grad(L)(p), v))``
and ``jvp(grad(L), (p,), (v,))[1]``. XLA's cost analysis counts the floating-point
operations of each compiled program, and each is timed (1 thread, interleaved, best of
repeats), on the networks the benchmark of ``hvp`` uses.

Usage::

    python benchmarks/hvp_construction.py
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false")
if hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:1])

import itertools

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import HVP_CASES, jax_loss


def flops(compiled) -> float:
    analysis = compiled.cost_analysis()
    if isinstance(analysis, list):
        analysis = analysis[0]
    return float(analysis.get("flops", float("nan")))


def best_time(fn, repeats: int = 15) -> float:
    fn()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        jax.block_until_ready(fn())
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    jax.config.update("jax_enable_x64", True)
    print("| case | dtype | flops RoR | flops FoR | RoR ÷ FoR (flops) | time RoR | time FoR |")
    print("|---|---|---|---|---|---|---|")
    for label, inputs, layers, loss, batch, l2 in HVP_CASES:
        for dtype in ("float64", "float32"):
            rng = np.random.default_rng(0)
            sizes = [inputs] + [u for u, _ in layers]
            params = {}
            for i, (a, b) in enumerate(itertools.pairwise(sizes), 1):
                params[f"W{i}"] = jnp.asarray(rng.standard_normal((a, b)) / np.sqrt(a), dtype)
                params[f"b{i}"] = jnp.asarray(0.1 * rng.standard_normal(b), dtype)
            X = jnp.asarray(rng.standard_normal((batch, inputs)), dtype)
            T = jnp.asarray(np.eye(sizes[-1])[rng.integers(0, sizes[-1], batch)], dtype)
            V = {k: jnp.asarray(rng.standard_normal(v.shape), dtype) for k, v in params.items()}
            f = jax_loss(layers, loss, l2)

            def ror(p, v, X=X, T=T, f=f):
                inner = lambda q: sum(  # noqa: E731
                    jnp.vdot(g, v[k]) for k, g in jax.grad(f)(q, X, T).items()
                )
                return jax.grad(inner)(p)

            def forr(p, v, X=X, T=T, f=f):
                return jax.jvp(lambda q: jax.grad(f)(q, X, T), (p,), (v,))[1]

            a, b = jax.jit(ror), jax.jit(forr)
            ca, cb = a.lower(params, V).compile(), b.lower(params, V).compile()
            ha, hb = a(params, V), b(params, V)
            for k in params:
                scale = float(jnp.max(jnp.abs(hb[k]))) + 1e-30
                assert float(jnp.max(jnp.abs(ha[k] - hb[k]))) <= 1e-4 * scale, (label, k)
            ta = best_time(lambda a=a, p=params, v=V: a(p, v))
            tb = best_time(lambda b=b, p=params, v=V: b(p, v))
            fa, fb = flops(ca), flops(cb)
            print(
                f"| {label} | {dtype} | {fa:.4g} | {fb:.4g} | {fa / fb:.3f} | "
                f"{ta * 1e3:.2f} ms | {tb * 1e3:.2f} ms |"
            )


if __name__ == "__main__":
    main()

"""The ``python -m tensortrain demo`` job: compress a built-in matrix and time its matvec."""

from __future__ import annotations

import math
import time

import numpy as np

from .matrix import TTMatrix


def example_matrix(n=4096, dtype=np.float64):
    """A smooth kernel matrix ``exp(-(x_i - y_j)^2 / (2 s^2)) / (1 + x_i y_j)`` on ``[0, 1]``.

    Smooth kernels on uniform grids have small TT-matrix ranks in balanced modes (their
    row/column prefixes address coarse grid positions), which makes them a fair showcase:
    the dense matrix is full rank-ish in the matrix sense, yet compresses well in TT.
    """
    x = np.linspace(0.0, 1.0, n)
    y = np.linspace(0.0, 1.0, n)
    s = 0.15
    a = np.exp(-((x[:, None] - y[None, :]) ** 2) / (2 * s * s)) / (1.0 + x[:, None] * y[None, :])
    return a.astype(dtype)


def _best_time(fn, repeat):
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def run(n=4096, eps=1e-6, max_rank=None, batch=64, repeat=5, seed=0, out=print):
    """Compress the example matrix and report ranks, compression, error and matvec timings."""
    a = example_matrix(n)
    t0 = time.perf_counter()
    w = TTMatrix.from_dense(a, eps=eps, max_rank=max_rank)
    t_svd = time.perf_counter() - t0
    rel = float(np.linalg.norm(w.full() - a) / np.linalg.norm(a))
    out(f"matrix: {n} x {n} smooth kernel, dense {a.nbytes / 2**20:.1f} MiB")
    out(f"TT-SVD (eps={eps:g}{'' if max_rank is None else f', max_rank={max_rank}'}): "
        f"{t_svd:.2f} s")
    out(f"  row modes {w.row_modes}, column modes {w.col_modes}")
    out(f"  ranks {w.ranks}")
    out(f"  parameters {w.num_params:,} (dense {n * n:,}): compression {w.compression:,.1f}x")
    out(f"  relative error ||A - W||_F / ||A||_F = {rel:.2e}")
    rng = np.random.default_rng(seed)
    out(f"{'product':<22}{'TT ms':>10}{'dense ms':>10}{'speed-up':>10}{'max rel diff':>14}")
    for b in (1, batch):
        x = rng.standard_normal((n, b)) if b > 1 else rng.standard_normal(n)
        y_tt = w @ x
        y_dense = a @ x
        diff = float(np.abs(y_tt - y_dense).max() / np.abs(y_dense).max())
        t_tt = _best_time(lambda: w @ x, repeat)
        t_dense = _best_time(lambda: a @ x, repeat)
        label = "W @ x (vector)" if b == 1 else f"W @ X (batch {b})"
        out(f"{label:<22}{t_tt * 1e3:>10.3f}{t_dense * 1e3:>10.3f}{t_dense / t_tt:>9.1f}x"
            f"{diff:>14.2e}")
    plan = w.matmul_cost(batch)
    out(f"plan for batch {batch}: {plan.describe()}")
    return {"n": n, "eps": eps, "ranks": list(w.ranks), "compression": w.compression,
            "rel_error": rel}

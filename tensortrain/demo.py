"""The ``python -m tensortrain demo`` job: compress a built-in matrix and time its matvec."""

from __future__ import annotations

import contextlib
import math
import os
import time

import numpy as np

from .matrix import TTMatrix

#: The memory assumed available where the system does not say (bytes).
DEFAULT_MEMORY_LIMIT = 8 * 2**30


def memory_needed(n, batch=64):
    """Bytes the demo needs at its peak for an ``n x n`` matrix and a batch of ``batch``.

    An upper estimate from measured peaks (float64 throughout): about ``4 n^2`` numbers for
    building the matrix, its TT-SVD and the error check (the matrix, its reshaped copy, the
    SVD's factors and ``W.full()``), and up to about ``17 n * batch`` for the products with
    the batch (the block of vectors, both results and the TT contraction's intermediates).
    Rounded up to ``8 (5 n^2 + 20 n batch)``.
    """
    return 8 * (5 * n * n + 20 * n * batch)


def _read_int(path):
    try:
        with open(path) as f:
            text = f.read().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


def available_memory():
    """Bytes of memory the demo may still use, or None when the system does not tell.

    The smaller of the system's available memory (``MemAvailable`` of ``/proc/meminfo``, else
    ``os.sysconf``) and the room left under a cgroup (container) memory limit.
    """
    found = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    found.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError, IndexError):
        pass
    if not found:
        with contextlib.suppress(AttributeError, ValueError, OSError):
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and limit < 2**60:  # "max" or a huge number mean no limit
            found.append(max(limit - (usage or 0), 0))
            break
    found = [b for b in found if b > 0]
    return min(found) if found else None


def _bytes(n):
    for unit, size in (("PiB", 2**50), ("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n / 2**10:.1f} KiB"


def check_memory(n, batch=64, limit=None):
    """Raise ``MemoryError`` (a one-line message) when the demo would not fit in memory.

    ``limit`` (bytes) defaults to :func:`available_memory`, or :data:`DEFAULT_MEMORY_LIMIT`
    where that is unknown.  The message says how much is needed and which ``--size`` (or
    ``--batch``) fits.  Nothing is allocated.
    """
    need = memory_needed(n, batch)
    if limit is None:
        limit = available_memory() or DEFAULT_MEMORY_LIMIT
    if need <= limit:
        return need
    matrix = 8 * n * n
    head = (f"--size {n} --batch {batch} needs about {_bytes(need)} of memory (the dense "
            f"{n} x {n} matrix alone is {_bytes(matrix)}), more than the {_bytes(limit)} "
            f"available")
    words = limit // 8
    if memory_needed(n, 1) <= limit:  # the matrix fits: the batch is too large
        fit = (words - 5 * n * n) // (20 * n)
        raise MemoryError(f"{head}; use --batch {fit} or smaller at this size")
    fit = _size_that_fits(batch, limit)
    if fit >= 64:
        raise MemoryError(f"{head}; use --size {fit} or smaller")
    # the batch is too large as well: suggest a size with the default batch
    fit = _size_that_fits(64, limit)
    suggestion = f"e.g. --size {fit} --batch 64" if fit >= 1 else "there is too little memory"
    raise MemoryError(f"{head}; use a smaller --size and --batch ({suggestion})")


def _size_that_fits(batch, limit):
    """The largest ``n`` (a multiple of 64 above 128) with ``memory_needed(n, batch) <= limit``."""
    words = limit // 8  # largest n with 5 n^2 + 20 b n <= words
    fit = (math.isqrt(400 * batch * batch + 20 * words) - 20 * batch) // 10
    while fit > 0 and memory_needed(fit, batch) > limit:
        fit -= 1
    if fit >= 128:
        fit -= fit % 64
    return max(fit, 0)


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
    """Compress the example matrix and report ranks, compression, error and matvec timings.

    Raises ``MemoryError`` before allocating anything when the run would not fit in the
    available memory (see :func:`check_memory`).
    """
    check_memory(n, batch)
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
    for b in (1,) if batch == 1 else (1, batch):
        x = rng.standard_normal((n, b)) if b > 1 else rng.standard_normal(n)
        y_tt = w @ x
        y_dense = a @ x
        diff = float(np.abs(y_tt - y_dense).max() / np.abs(y_dense).max())
        t_tt = _best_time(lambda x=x: w @ x, repeat)
        t_dense = _best_time(lambda x=x: a @ x, repeat)
        label = "W @ x (vector)" if b == 1 else f"W @ X (batch {b})"
        out(f"{label:<22}{t_tt * 1e3:>10.3f}{t_dense * 1e3:>10.3f}{t_dense / t_tt:>9.1f}x"
            f"{diff:>14.2e}")
    plan = w.matmul_plan(batch)
    out(f"plan for batch {batch}: {plan.describe()}")
    return {"n": n, "eps": eps, "ranks": list(w.ranks), "compression": w.compression,
            "rel_error": rel}

"""Approximate products: AMEn-mv (``tt.matvec`` / ``matmul`` / ``hadamard``) against forming the
exact product and rounding it, ``(A @ x).round(eps)``; where the crossover lies.

Run from the repository root::

    python benchmarks/bench_products.py            # full run
    python benchmarks/bench_products.py --quick    # fewer cases and repeats

Cases (QTT, ``2**L`` points, float64)
-------------------------------------
* ``hadamard``: ``a * b`` of two smooth functions on ``[0, 1]``, ``a = 1 / (1 + 400 (t - 0.3)^2)``
  and ``b = exp(-40 (t - 0.6)^2) + sin(30 t)``, each compressed to accuracy ``eps`` (their
  ranks grow as ``eps`` falls), multiplied to the same ``eps``.  The product of smooth
  functions is smooth: its rank stays near the larger of the two, far below ``r_a r_b``.
* ``matvec``: ``A = laplacian_1d(L) + diag(V)`` (``V = 1 / (1 + 100 (t - 0.5)^2)`` to
  accuracy ``eps``; ``A`` rounded exactly, rank ``3 + r_V`` at most) times the smooth ``b``.
* ``matmul``: ``A @ A`` with the same ``A``.
* ``matvec-random``: the worst case, ``laplacian([L/2, L/2]) @ x`` with a *random* ``x`` of
  rank ``r``: the product is not compressible (its rank is close to ``R r``), so AMEn-mv has
  no rank to save and only pays for its sweeps.

Each row times AMEn-mv (``method='amen'``) and the exact path (``method='exact'``: form the
product, ranks ``R r``, then ``round(eps)``), interleaved, best of the repeats; ``speedup`` is
exact time / AMEn time.  The errors are relative to the unrounded exact product, measured by
an orthogonalizing sweep of the difference.  ``auto`` names the path ``method='auto'`` takes
(exact when ``max_k m_k n_k (R_k r_k)^3 <= EXACT_MAX_WORK``).
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C


def main(argv=None):
    parser = C.add_common_options(
        __import__("argparse").ArgumentParser(description=__doc__.splitlines()[0]),
        "fewer cases and repeats; for a smoke test")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed repeats per measurement (default 5, 1 with --quick)")
    parser.add_argument("--L", type=int, default=None,
                        help="bits of the QTT grids (default 18, 14 with --quick)")
    args = parser.parse_args(argv)
    t_start = time.perf_counter()
    tt = C.import_tensortrain()
    from tensortrain import decompositions, qtt  # noqa: PLC0415
    from tensortrain.solvers.products import (  # noqa: PLC0415
        EXACT_MAX_WORK,
        _exact_work,
        hadamard,
        matmul,
        matvec,
    )

    backend = C.Backend(args.device)
    xp, sync = backend.xp, backend.sync
    env = C.environment(backend)
    C.print_environment(env)
    repeats = args.repeats or (1 if args.quick else 5)
    L = args.L or (14 if args.quick else 18)
    monitor = C.RunMonitor()
    print(f"timing: best of {repeats} samples after 1 warm-up, AMEn and exact interleaved; "
          f"L = {L} (2**{L} = {2 ** L} points)\n")

    t = np.linspace(0.0, 1.0, 2 ** L)
    fa = 1.0 / (1.0 + 400.0 * (t - 0.3) ** 2)
    fb = np.exp(-40.0 * (t - 0.6) ** 2) + np.sin(30.0 * t)
    fv = 1.0 / (1.0 + 100.0 * (t - 0.5) ** 2)

    def q(f, eps):
        return qtt.quantize(tt.TTTensor.from_dense(xp.asarray(f)), eps=eps)

    def diff_norm(y, ref):
        """||y - ref|| by one orthogonalizing sweep (no Gram cancellation)."""
        d = y - ref
        _, e, last = decompositions.orthogonal_sweep(list(d._cores3()), "left")
        return math.ldexp(last, e)

    rows, results = [], []

    def run_case(family, eps, op_rank, vec_rank, amen_fn, exact_fn, ref, work):
        y, info = amen_fn()
        z = exact_fn()
        tm = C.time_many([lambda: amen_fn(), exact_fn], repeats=repeats, sync=sync)
        nref = ref.norm()
        ea, ee = diff_norm(y, ref) / nref, diff_norm(z, ref) / nref
        rp = info.rank_product
        speed = tm[1]["best"] / tm[0]["best"]
        auto = "exact" if work <= EXACT_MAX_WORK else "amen"
        rows.append([family, f"{eps:.0e}", op_rank, vec_rank, rp, y.max_rank, z.max_rank,
                     info.sweeps, C.fmt_ms(tm[0]["best"]), C.fmt_ms(tm[1]["best"]),
                     f"{speed:.2f}x", f"{ea:.1e}", f"{ee:.1e}", auto,
                     C.fmt_bg(tm[0]["background_cpu"])])
        results.append({"family": family, "eps": eps, "operator_rank": op_rank,
                        "vector_rank": vec_rank, "rank_product": rp,
                        "amen_ranks": y.ranks, "exact_ranks": z.ranks,
                        "passes": info.sweeps, "converged": info.converged,
                        "changes": info.changes, "time_amen": tm[0], "time_exact": tm[1],
                        "speedup": speed, "err_amen": ea, "err_exact": ee,
                        "auto_path": auto})
        print(" | ".join(str(c) for c in rows[-1]), flush=True)
        backend.free()

    eps_list = [1e-3, 1e-6, 1e-9, 1e-12] if args.quick else [1e-3, 1e-5, 1e-7, 1e-9, 1e-11,
                                                                1e-13]
    for eps in eps_list:
        a, b = q(fa, eps), q(fb, eps)
        run_case("hadamard", eps, a.max_rank, b.max_rank,
                 lambda a=a, b=b, eps=eps: hadamard(a, b, eps, method="amen",
                                                    return_info=True),
                 lambda a=a, b=b, eps=eps: (a * b).round(eps), a * b,
                 _exact_work(a.ranks, b.ranks, a.shape, a.shape))
    for eps in eps_list:
        A = (qtt.laplacian_1d(L, xp=xp) + qtt.diag(q(fv, eps))).round()
        b = q(fb, eps)
        run_case("matvec", eps, A.max_rank, b.max_rank,
                 lambda A=A, b=b, eps=eps: matvec(A, b, eps, method="amen", return_info=True),
                 lambda A=A, b=b, eps=eps: (A @ b).round(eps), A @ b,
                 _exact_work(A.ranks, b.ranks, A.row_modes, A.col_modes))
    for eps in eps_list:
        A = (qtt.laplacian_1d(L, xp=xp) + qtt.diag(q(fv, eps))).round()
        run_case("matmul", eps, A.max_rank, A.max_rank,
                 lambda A=A, eps=eps: matmul(A, A, eps, method="amen", return_info=True),
                 lambda A=A, eps=eps: (A @ A).round(eps), A @ A,
                 _exact_work(A.ranks, A.ranks, (4,) * L, (4,) * L))
    ranks = [4, 8, 16] if args.quick else [4, 8, 16, 24]
    A = qtt.laplacian([L // 2, L - L // 2], xp=xp)
    for r in ranks:
        x = tt.random_tensor((2,) * L, r, rng=r, xp=xp)
        eps = 1e-6
        run_case("matvec-random", eps, A.max_rank, x.max_rank,
                 lambda x=x, eps=eps: matvec(A, x, eps, method="amen", return_info=True),
                 lambda x=x, eps=eps: (A @ x).round(eps), A @ x,
                 _exact_work(A.ranks, x.ranks, A.row_modes, A.col_modes))

    C.print_table(
        f"AMEn-mv against exact product + rounding [{args.device}], L = {L}",
        ["case", "eps", "R", "r", "R*r", "rank amen", "rank exact", "passes", "amen ms",
         "exact ms", "speedup", "err amen", "err exact", "auto", "bg cpu"], rows)
    # the crossover: the smallest rank product from which AMEn-mv is faster in every
    # structured row (the random rows show the exception)
    structured = [r for r in results if r["family"] != "matvec-random"]
    faster = sorted(r["rank_product"] for r in structured if r["speedup"] > 1)
    slower = sorted(r["rank_product"] for r in structured if r["speedup"] <= 1)
    print(f"structured rows: AMEn faster at rank products {faster}, slower at {slower}; "
          f"method='auto' switches to AMEn above max_k m_k n_k (R_k r_k)^3 = "
          f"EXACT_MAX_WORK = {EXACT_MAX_WORK}")
    run, _ = monitor.report(t_start)
    if not args.no_json:
        path = C.write_results(C.result_name("bench_products", args),
                               {"L": L, "exact_max_work": EXACT_MAX_WORK, "rows": results,
                                "faster_at": faster, "slower_at": slower, "run": run},
                               env, args)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()

"""TT-SVD, rounding, inner product and norm: timings beside in-process references.

Run from the repository root::

    python benchmarks/bench_decompositions.py           # full run (float64)
    python benchmarks/bench_decompositions.py --quick
    python benchmarks/bench_decompositions.py --device cupy

Cases
-----
* TT-SVD of a (4,)^10 tensor of TT-rank 8 plus Gaussian noise of relative norm 1e-10,
  ``eps=1e-8`` (``TTTensor.from_dense``): recovered ranks and relative error.
* TT-SVD of a random 1024 x 1024 matrix into a TTMatrix with modes (4,8,8,4) x (4,8,8,4),
  ``max_rank=16`` (``TTMatrix.from_dense``).
* TT-SVD of the smooth 4096 x 4096 kernel matrix of ``python -m tensortrain demo``,
  ``eps=1e-6``, balanced modes chosen by ``TTMatrix.from_dense`` (2048 x 2048 with ``--quick``).
* Rounding of the sum of two random TTs with modes (8,)^12 and ranks 20 (sum ranks 40), to
  ``eps=1e-8`` and, separately, to ``max_rank=20``.
* ``tt.dot(a, b)`` and ``a.norm()`` of TTs with modes (8,)^20 and ranks 30.

Every TT-SVD row names the path each unfolding took (``gram``: eigenpairs of the Gram matrix
of its short side; ``qr``: R factor of a Householder QR of a wide unfolding; ``svd``: a thin
SVD; ``gram>qr`` a Gram attempt that fell back), and every rounding row how many bonds were
cut (``cut``), kept whole after a QR (``keep``) or certified to keep everything by the
Cholesky test on their Gram matrix, without a QR (``gram``).

References, timed in the same process: for the dense TT-SVDs one SVD of the first unfolding
(``linalg.svd(full_matrices=False)``), the Gram matrices of all the unfoldings the algorithm
factorizes (the same shapes, formed as the library forms them: the floor of any Gram-based
method) and one square GEMM with about the FLOPs of the algorithm (the SVD and the GEMM in a
round of their own: they run on NumPy's copy of OpenBLAS, whose threads keep spinning after
a call and slow whatever runs next on SciPy's copy); for rounding the QR
half-sweep (``orthogonalize('right')``); for everything the estimated FLOPs of the algorithm
as the library implements it (leading terms, see ``*_flops`` below), the achieved GFLOP/s and
that rate as a share of the machine's GEMM rate.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


# ---- FLOP models (leading terms; multiply and add counted separately) -----------------------
def _qr_flops(m, n, with_q=True):
    """Householder QR of an m x n matrix (m >= n); forming the thin Q doubles it."""
    m, n = max(m, n), min(m, n)
    r = 2 * m * n * n - 2 * n ** 3 / 3
    return 2 * r if with_q else r


def _svd_flops(m, n):
    """Thin SVD with both factors by LAPACK gesdd (leading terms).

    Direct bidiagonalization when the matrix is near square: ``8 m n^2 + 4 n^3 / 3``
    (reduction ``4mn^2 - 4n^3/3``, divide and conquer and back-transformations ``~4mn^2 +
    8n^3/3``); when ``m >= 1.6 n`` a QR first and the SVD of the ``n x n`` R:
    ``6 m n^2 + 8 n^3``.  Round numbers: the real count depends on deflation.
    """
    m, n = max(m, n), min(m, n)
    if m >= 1.6 * n:
        return 6 * m * n * n + 8 * n ** 3
    return 8 * m * n * n + 4 * n ** 3 / 3


def _eigh_flops(n, k):
    """Symmetric eigensolver: tridiagonal reduction ``4n^3/3`` plus ``2 n^2 k`` to transform
    back ``k`` vectors (all pairs: about ``9 n^3`` for divide and conquer)."""
    return 4 * n ** 3 / 3 + (2 * n * n * k if k < n else 23 * n ** 3 / 3)


def tt_svd_flops(modes, ranks, paths=None):
    """TT-SVD as in ``decompositions.tt_svd``: per unfolding ``p x q`` (``p = r n_k``).

    ``gram``: the Gram matrix of the short side ``s`` (``s^2 l`` with ``syrk``, ``l`` the long
    side), its eigenpairs (``_eigh_flops``; a pivoted Cholesky compression makes it less) and
    ``u^H M`` (``2 r p q``; skipped when nothing is cut).  ``qr``: R factor of a QR of the
    ``q x p`` transpose, SVD of the ``p x p`` R, and ``u^H M``.  ``svd``: a thin SVD.  Plus
    the norm (2N).  ``paths`` (one per unfolding, as reported) defaults to the QR rule.
    """
    d = len(modes)
    total = 2 * math.prod(modes)
    for k in range(d - 1):
        p = ranks[k] * modes[k]
        q = math.prod(modes[k + 1:])
        r = ranks[k + 1]
        path = (paths[k] if paths else ("qr" if q >= 2 * p else "svd")).split(">")[-1]
        project = 0 if (r == p and q >= p) else 2 * r * p * q
        if path.startswith("gram"):
            s, long_side = min(p, q), max(p, q)
            total += s * s * long_side + _eigh_flops(s, r) + project
        elif path == "qr":
            total += _qr_flops(q, p, with_q=False) + _svd_flops(p, p) + project
        else:
            total += _svd_flops(p, q) + r * q
    return total


def unfolding_shapes(modes, ranks):
    """The ``(p, q)`` shapes of the unfoldings TT-SVD factorizes for these result ranks."""
    return [(ranks[k] * modes[k], math.prod(modes[k + 1:])) for k in range(len(modes) - 1)]


def round_flops(modes, ranks_in, ranks_out):
    """``round_cores``: right-to-left QR sweep, then left-to-right truncated SVDs."""
    d = len(modes)
    total = 0
    r = ranks_in
    for k in range(d - 1, 0, -1):       # QR of the (n r_k) x r_{k-1} transpose, R into core k-1
        total += _qr_flops(modes[k] * r[k + 1], r[k]) + 2 * r[k - 1] * modes[k - 1] * r[k] * r[k]
    for k in range(d - 1):              # SVD of (r'_{k} n) x r_{k+1}, S V^T into core k+1
        rows = ranks_out[k] * modes[k]
        total += _svd_flops(rows, r[k + 1])
        total += 2 * ranks_out[k + 1] * r[k + 1] * modes[k + 1] * r[k + 2]
    return total


def orth_flops(modes, ranks, direction="left"):
    """One QR sweep (``orthogonalize``): QR per core, R into the neighbour."""
    d = len(modes)
    total = 0
    for k in range(d - 1):
        if direction == "left":
            total += _qr_flops(ranks[k] * modes[k], ranks[k + 1])
            total += 2 * ranks[k + 1] ** 2 * modes[k + 1] * ranks[k + 2]
        else:
            j = d - 1 - k
            total += _qr_flops(modes[j] * ranks[j + 1], ranks[j])
            total += 2 * ranks[j - 1] * modes[j - 1] * ranks[j] ** 2
    return total


def dot_flops(modes, ra, rb):
    """``_cores.log_dot``: two tensordots per core, ``~4 n r^3`` each."""
    total = 2 * modes[0] * ra[1] * rb[1]
    for k in range(1, len(modes)):
        total += 2 * ra[k] * rb[k] * modes[k] * ra[k + 1]
        total += 2 * rb[k] * modes[k] * ra[k + 1] * rb[k + 1]
    return total


def _pct(x):
    """A share as a percentage, keeping two significant digits below 1 %."""
    return f"{100 * x:.1f}%" if x >= 0.01 else f"{100 * x:.2g}%"


def main(argv=None):
    parser = C.base_parser(__doc__.splitlines()[0])
    parser.set_defaults(dtype="float64")
    args = parser.parse_args(argv)
    t_start = time.perf_counter()
    tt = C.import_tensortrain()
    backend = C.Backend(args.device)
    xp, sync = backend.xp, backend.sync
    env = C.environment(backend)
    C.print_environment(env)
    repeats = args.repeats or (3 if args.quick else 7)
    quiet = args.wait_quiet
    monitor = C.RunMonitor()
    print(f"timing: best of {repeats} samples after 1 warm-up (calls under 2 ms are looped "
          f"within a sample); a case and its references are timed interleaved, each sample "
          f"after one untimed call of the same function\n")
    dtypes = C.dtypes_from(args.dtype)
    rates = C.gemm_rates(dtypes, quick=args.quick, backend=backend, quiet_s=quiet)
    C.print_gemm_rates(rates)

    def T(fns):
        return C.time_many(fns, repeats=repeats, sync=sync, quiet_s=quiet)

    def gemm_like(flops, dtype):
        """A square GEMM with about ``flops`` FLOPs: (callable, n, exact flops)."""
        n = max(8, round((flops / 2) ** (1 / 3)))
        rng = np.random.default_rng(7)
        a = xp.asarray(rng.standard_normal((n, n)).astype(dtype))
        b = xp.asarray(rng.standard_normal((n, n)).astype(dtype))
        return (lambda: a @ b), n, 2 * n ** 3

    def host_norm(a):
        return float(backend.to_host(xp.linalg.norm(a.reshape(-1))))

    time_rows, acc_rows, results = [], [], []

    def add(op, detail, t, flops, dtype, gemm, kind="case", extra=None):
        gf = flops / t["best"] / 1e9 if flops else None
        time_rows.append([
            op, detail, C.fmt_ms(t["best"]), C.fmt_ms(t["median"]),
            f"{flops / 1e6:.2f}" if flops else "-",
            f"{gf:.2f}" if gf else "-",
            _pct(gf / gemm) if gf else "-",
            C.fmt_bg(t["background_cpu"]),
        ])
        rec = {"kind": kind, "op": op, "detail": detail, "dtype": np.dtype(dtype).name,
               "time": t, "flops": flops, "gflops": gf,
               "share_of_gemm": gf / gemm if gf else None}
        if extra:
            rec.update(extra)
        results.append(rec)

    def paths_of(fn):
        """Run ``fn`` once and return the path of every unfolding of its TT-SVD."""
        report = []
        orig = tt.decompositions.tt_svd

        def traced(*a, **kw):
            kw["report"] = report
            return orig(*a, **kw)

        tt.decompositions.tt_svd = traced
        try:
            fn()
        finally:
            tt.decompositions.tt_svd = orig
        return report

    def gram_fn(modes, ranks, dtype):
        """Forms the Gram matrices of random matrices with the shapes of the unfoldings."""
        rng = np.random.default_rng(9)
        mats = [xp.asarray(rng.standard_normal(s).astype(dtype))
                for s in unfolding_shapes(modes, ranks)]
        flops = sum(min(s) ** 2 * max(s) for s in unfolding_shapes(modes, ranks))

        def fn():
            for m in mats:
                tt._backend.gram(m, rows=m.shape[0] <= m.shape[1])
        return fn, flops, mats

    def tt_svd_case(name, detail, run, modes, ranks, paths, ref_unf, dtype, gemm, extra):
        flops = tt_svd_flops(modes, ranks, paths)
        g_fn, g_n, g_flops = gemm_like(flops, dtype)
        gr_fn, gr_flops, mats = gram_fn(modes, ranks, dtype)
        # the case and the Gram matrices run on SciPy's BLAS; NumPy's SVD and GEMM on NumPy's
        # own OpenBLAS copy, whose threads keep spinning after a call and would slow the next
        # sample of the case: timed in a round of their own
        ts = T([run, gr_fn])
        refs = [g_fn] + ([] if ref_unf is None
                         else [lambda: xp.linalg.svd(ref_unf, full_matrices=False)])
        ts += T(refs)
        extra = dict(extra, paths=paths, gram_time=ts[1], tt_svd_over_gram=ts[0]["best"]
                     / ts[1]["best"])
        add(name, f"{detail}; path {','.join(paths)}", ts[0], flops, dtype, gemm, extra=extra)
        case = results[-1]
        add("  ref: Gram matrices", "of all unfoldings (TT-SVD's shapes; syrk/herk)", ts[1],
            gr_flops, dtype, gemm, "reference")
        if ref_unf is not None:
            add("  ref: linalg.svd", f"1st unfolding {ref_unf.shape[0]}x{ref_unf.shape[1]}",
                ts[3], None, dtype, gemm, "reference")
        add("  ref: GEMM", f"{g_n}x{g_n} square, ~same FLOPs", ts[2], g_flops, dtype, gemm,
            "reference")
        del mats
        return case

    for dtype in dtypes:
        dname = np.dtype(dtype).name
        gemm = rates[dname]["gflops"]
        rng = np.random.default_rng(2024)

        # ---- 1. TT-SVD of a (4,)^10 tensor of rank 8 plus 1e-10 relative noise --------------
        modes = (4,) * 10
        exact = tt.random_tensor(modes, 8, rng=0, dtype=np.float64).full()
        noise = rng.standard_normal(exact.shape)
        noise *= 1e-10 * np.linalg.norm(exact) / np.linalg.norm(noise)
        A_host = (exact + noise).astype(dtype)
        A = xp.asarray(A_host)
        exact_dev = xp.asarray(exact.astype(dtype))
        X = tt.TTTensor.from_dense(A, eps=1e-8)
        paths = paths_of(lambda: tt.TTTensor.from_dense(A, eps=1e-8))
        unf = A.reshape(modes[0], -1)
        name = f"TT-SVD (4,)^10 {dname}"
        case = tt_svd_case(name, "eps=1e-8, rank-8 tensor + 1e-10 noise",
                           lambda: tt.TTTensor.from_dense(A, eps=1e-8), modes, X.ranks, paths,
                           unf, dtype, gemm, {"ranks": X.ranks})
        full = X.full()
        err = host_norm(full - A) / host_norm(A)
        err_exact = host_norm(full - exact_dev) / host_norm(exact_dev)
        expected = tt.random_tensor(modes, 8, rng=0).ranks
        acc_rows.append([name, f"{expected} + noise", str(X.ranks), ",".join(paths),
                         f"{err:.2e}", f"{err_exact:.2e} vs exact", "<= 1e-8",
                         "ok" if err <= 1e-8 and X.ranks == expected else "CHECK"])
        case.update({"rel_err": err, "rel_err_vs_exact": err_exact, "expected_ranks": expected})
        del A, exact_dev, full, unf, X
        backend.free()

        # ---- 2. TT-SVD of a random 1024 x 1024 matrix, max_rank 16 -------------------------
        rm = cm = (4, 8, 8, 4)
        Ad = xp.asarray(rng.standard_normal((1024, 1024)).astype(dtype))
        W = tt.TTMatrix.from_dense(Ad, row_modes=rm, col_modes=cm, max_rank=16)
        paths = paths_of(lambda: tt.TTMatrix.from_dense(Ad, row_modes=rm, col_modes=cm,
                                                        max_rank=16))
        mn = tuple(a * b for a, b in zip(rm, cm))
        perm = [p for k in range(4) for p in (k, 4 + k)]
        unf = xp.ascontiguousarray(xp.transpose(Ad.reshape(rm + cm), perm)).reshape(mn[0], -1)
        name = f"TT-SVD 1024x1024 {dname}"
        case = tt_svd_case(name, "modes (4,8,8,4)x(4,8,8,4), max_rank=16",
                           lambda: tt.TTMatrix.from_dense(Ad, row_modes=rm, col_modes=cm,
                                                          max_rank=16),
                           mn, W.ranks, paths, unf, dtype, gemm, {"ranks": W.ranks})
        case["flops"] += 2 * Ad.size                 # + the permuting copy, roughly
        err = host_norm(W.full() - Ad) / host_norm(Ad)
        acc_rows.append([name, "full (random matrix)", str(W.ranks), ",".join(paths),
                         f"{err:.2e}", "-", "ranks <= 16", "ok" if W.max_rank <= 16 else "CHECK"])
        case["rel_err"] = err
        del Ad, unf, W
        backend.free()

        # ---- 2b. the demo's smooth kernel matrix, eps=1e-6 -------------------------------------
        n = 2048 if args.quick else 4096
        x = np.linspace(0.0, 1.0, n)
        K = np.exp(-((x[:, None] - x[None, :]) ** 2) / (2 * 0.15 ** 2)) / (1.0 + np.outer(x, x))
        Kd = xp.asarray(K.astype(dtype))
        del K
        W = tt.TTMatrix.from_dense(Kd, eps=1e-6)
        paths = paths_of(lambda: tt.TTMatrix.from_dense(Kd, eps=1e-6))
        mn = tuple(a * b for a, b in zip(W.row_modes, W.col_modes))
        name = f"TT-SVD demo {n}x{n} {dname}"
        case = tt_svd_case(name, f"smooth kernel, eps=1e-6, modes {W.row_modes}^2",
                           lambda: tt.TTMatrix.from_dense(Kd, eps=1e-6), mn, W.ranks, paths,
                           None, dtype, gemm, {"ranks": W.ranks})
        case["flops"] += 2 * Kd.size
        err = host_norm(W.full() - Kd) / host_norm(Kd)
        acc_rows.append([name, "smooth kernel", str(W.ranks), ",".join(paths), f"{err:.2e}",
                         f"{case['tt_svd_over_gram']:.1f}x the Gram matrices", "<= 1e-6",
                         "ok" if err <= 1e-6 else "CHECK"])
        case["rel_err"] = err
        del Kd, W
        backend.free()

        # ---- 3. rounding of a + b, (8,)^12, ranks 20 + 20 -------------------------------------
        modes = (8,) * 12
        a = tt.random_tensor(modes, 20, rng=1, dtype=dtype, xp=xp)
        b = tt.random_tensor(modes, 20, rng=2, dtype=dtype, xp=xp)
        s = a + b
        s_norm = s.norm()
        for label, kw in (("eps=1e-8", {"eps": 1e-8}), ("max_rank=20", {"max_rank": 20})):
            r = s.round(**kw)
            report = []
            caps = None if "max_rank" not in kw else (kw["max_rank"],) * (s.ndim - 1)
            tt.decompositions.round_cores(list(s.cores), kw.get("eps", 0.0), caps, report=report)
            bonds = ", ".join(f"{report.count(k)} {k}" for k in ("gram", "keep", "cut", "svd")
                              if report.count(k))
            flops = round_flops(modes, s.ranks, r.ranks)
            oflops = orth_flops(modes, s.ranks, "right")
            t_case, t_orth = T([lambda kw=kw: s.round(**kw), lambda: s.orthogonalize("right")])
            name = f"round a+b (8,)^12 {dname}"
            add(name, f"{label}, ranks 40 -> {r.max_rank}; bonds {bonds}", t_case, flops, dtype,
                gemm, extra={"ranks_in": s.ranks, "ranks_out": r.ranks, "option": kw,
                             "bonds": report})
            case_rec = results[-1]
            add("  ref: QR sweep", "orthogonalize('right'), the first half", t_orth, oflops,
                dtype, gemm, "reference")
            err = (s - r).norm() / s_norm
            bound = "<= 1e-8" if "eps" in kw else "best rank-20 (no eps bound)"
            ok = err <= 1e-8 if "eps" in kw else r.max_rank <= 20
            acc_rows.append([f"{name} {label}", f"max {s.max_rank}", f"max {r.max_rank}", bonds,
                             f"{err:.2e}", "-", bound, "ok" if ok else "CHECK"])
            case_rec["rel_err"] = err
        del a, b, s, r
        backend.free()

        # ---- 4. dot and norm, (8,)^20, ranks 30 ----------------------------------------------
        modes = (8,) * 20
        a = tt.random_tensor(modes, 30, rng=3, dtype=dtype, xp=xp)
        b = tt.random_tensor(modes, 30, rng=4, dtype=dtype, xp=xp)
        dflops = dot_flops(modes, a.ranks, b.ranks)
        nflops = dot_flops(modes, a.ranks, a.ranks)
        t_dot, t_norm, t_aa = T([lambda: tt.dot(a, b), lambda: a.norm(), lambda: tt.dot(a, a)])
        add(f"dot(a, b) (8,)^20 {dname}", "ranks 30, 4 d n r^3", t_dot, dflops, dtype, gemm)
        add(f"a.norm() (8,)^20 {dname}", "ranks 30, Gram sweep 4 d n r^3", t_norm, nflops,
            dtype, gemm)
        add(f"dot(a, a) (8,)^20 {dname}", "ranks 30, the norm's reference", t_aa, nflops,
            dtype, gemm)
        nrm = a.norm()
        aa = tt.dot(a, a)
        rel = abs(aa - nrm ** 2) / nrm ** 2
        acc_rows.append([f"dot/norm (8,)^20 {dname}", "30", "-", "-",
                         f"{rel:.2e}", "|dot(a,a)-norm(a)^2|/norm^2", "~1e-15 (f64)",
                         "ok" if rel < (1e-12 if dtype == np.float64 else 1e-4) else "CHECK"])
        results[-2]["dot_norm_consistency"] = rel
        results[-3]["value"] = float(tt.dot(a, b))
        del a, b
        backend.free()

    C.print_table(
        f"decompositions and reductions [{args.device}]  (GEMM rate: "
        + ", ".join(f"{k} {v['gflops']:.1f} GFLOP/s" for k, v in rates.items()) + ")",
        ["operation", "detail", "best ms", "med ms", "est MFLOP", "GFLOP/s", "% of GEMM",
         "bg cpu"],
        time_rows)
    C.print_table("results and accuracy",
                  ["operation", "input ranks", "result ranks", "path / bonds", "rel error",
                   "other", "expected", "check"],
                  acc_rows)
    print("FLOP estimates are leading-term counts of the algorithms as implemented "
          "(Householder QR 2mn^2-2n^3/3, doubled when Q is formed; thin SVD by gesdd "
          "8mn^2+4n^3/3, or 6mn^2+8n^3 when m >= 1.6n; Gram matrix s^2 l of the short side "
          "s, eigensolver 4s^3/3 + 2s^2 r); GFLOP/s = estimate / best time.\n")
    run, wall = monitor.report(t_start)
    if not args.no_json:
        path = C.write_results(C.result_name("bench_decompositions", args),
                               {"gemm": rates, "rows": results,
                                "accuracy": [dict(zip(["operation", "input_ranks",
                                                       "result_ranks", "path", "rel_error",
                                                       "other", "expected", "check"], r))
                                             for r in acc_rows],
                                "wall_s": wall, "background_cpu": run["background_cpu"],
                                "repeats": repeats}, env, args)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()

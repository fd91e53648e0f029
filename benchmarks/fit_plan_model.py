"""Measure every step of many contraction plans and fit the CPU time model that chooses plans.

Run from the repository root::

    python benchmarks/fit_plan_model.py            # 13 layer shapes, about 15 minutes
    python benchmarks/fit_plan_model.py --quick    # 3 small shapes, a smoke test

``tensortrain._plan_model`` prices a step ``out[p, n, q] = sum_k block[n, k] state[p, k, q]``
(and its backward pass) with a linear model of a few features of its sizes.  This script
produces its coefficients: for each shape (float32) it runs every plan within 8x of the fewest
FLOPs (at most ``--max-plans`` of them, fewest FLOPs first), times each step of the forward
product with the batch in front and behind and of the backward pass, fits the per-step
coefficients by non-negative least squares on relative error, then fits the per-step fixed
costs (Python, merging a block's cores, splitting its gradient) to what remains of each
plan's total.  It prints the coefficients in the module's format and, per shape, the
measured time of the plan that each rule picks: fewest FLOPs, the model in the library, the
model just fitted, and the fastest plan measured.  The coefficients in the library came from
a run of this script on a 2-core AVX-512 machine (2026-12-02); on another machine, paste the
printed table into ``_plan_model.COEFFICIENTS``.

The step times are taken by wrapping two private functions (``contraction._apply`` and
``gradients._gemm_grads``) for the duration of the run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

SHAPES = {
    # name: row (output) modes, column (input) modes, rank, batch
    "fc6": ((4,) * 6, (2, 7, 8, 8, 7, 4), 4, 100),
    "fc6_b1": ((4,) * 6, (2, 7, 8, 8, 7, 4), 4, 1),
    "1024": ((4, 8, 8, 4), (4, 8, 8, 4), 8, 256),
    "1024_r2": ((4, 8, 8, 4), (4, 8, 8, 4), 2, 100),
    "1024_r4_b32": ((4, 8, 8, 4), (4, 8, 8, 4), 4, 32),
    "4096": ((8, 8, 8, 8), (8, 8, 8, 8), 8, 64),
    "4096_r4_b512": ((8, 8, 8, 8), (8, 8, 8, 8), 4, 512),
    "mnist_4^5": ((4,) * 5, (4,) * 5, 8, 100),
    "mnist_4^5_b1": ((4,) * 5, (4,) * 5, 4, 1),
    "fc7": ((4,) * 6, (4,) * 6, 4, 100),
    "4096_r16": ((4,) * 6, (4,) * 6, 16, 32),
    "qtt_2^10": ((2,) * 10, (2,) * 10, 4, 16),
    "uneven": ((2, 2, 2, 2, 5, 5), (7, 4, 4, 4, 7, 4), 6, 64),
}
QUICK_SHAPES = ("1024_r2", "mnist_4^5_b1", "qtt_2^10")


def _all_plans(d, interval=None):
    """Every block order (all orders and groupings), as lists of ``(lo, hi)``."""
    if interval == (0, d - 1):
        yield []
        return
    if interval is None:
        for i in range(d):
            for j in range(i, d):
                for rest in _all_plans(d, (i, j)):
                    yield [(i, j), *rest]
        return
    i, j = interval
    for hi in range(j + 1, d):
        for rest in _all_plans(d, (i, hi)):
            yield [(j + 1, hi), *rest]
    for lo in range(i):
        for rest in _all_plans(d, (lo, j)):
            yield [(lo, i - 1), *rest]


class _StepTimer:
    """Wraps ``_apply`` and ``_gemm_grads`` to collect per-step times keyed by the GEMM."""

    def __init__(self, contraction, gradients):
        self.contraction, self.gradients = contraction, gradients
        self.apply, self.grads = contraction._apply, gradients._gemm_grads
        self.fwd, self.bwd = {}, {}

    def __enter__(self):
        def apply(block, state, code, xp=None, out=None):
            t = time.perf_counter()
            r = self.apply(block, state, code, xp, out)
            self.fwd.setdefault(code.gemm, []).append(time.perf_counter() - t)
            return r

        def grads(rec, g, need, xp=None, out=None):
            t = time.perf_counter()
            r = self.grads(rec, g, need, xp, out)
            self.bwd.setdefault(rec.code.gemm, []).append(time.perf_counter() - t)
            return r

        self.contraction._apply, self.gradients._gemm_grads = apply, grads
        return self

    def __exit__(self, *exc):
        self.contraction._apply, self.gradients._gemm_grads = self.apply, self.grads

    def clear(self):
        self.fwd.clear()
        self.bwd.clear()


def _measure(tt, name, shape, max_plans, repeats, rng):
    from tensortrain import contraction, gradients  # noqa: PLC0415
    m, n, rank, B = shape
    d = len(m)
    r = (1,) + (rank,) * (d - 1) + (1,)
    cores = [rng.standard_normal((r[k], m[k], n[k], r[k + 1])).astype(np.float32)
             for k in range(d)]
    W = tt.TTMatrix(cores)
    X = rng.standard_normal((B, W.shape[1])).astype(np.float32)
    Xt = np.ascontiguousarray(X.T)
    G = rng.standard_normal((B, W.shape[0])).astype(np.float32)
    fewest = contraction.plan_matmat(m, n, r, B, 4, "flops").flops
    plans = [contraction.plan_from_blocks(m, n, r, B, b, 4) for b in _all_plans(d)]
    plans = sorted((p for p in plans if p.flops <= 8 * fewest), key=lambda p: p.flops)
    plans = plans[:max_plans]
    # the plans the library picks are measured too (for the report, not for the fit) when
    # they are not among those already
    picked = {key: contraction.plan_matmat(m, n, r, B, 4, objective, batch_last).order
              for key, objective, batch_last in (("flops", "flops", False),
                                                 ("product", "time", False),
                                                 ("product_batch_last", "time", True),
                                                 ("train", "train", False))}
    have = {p.order for p in plans}
    extra = []
    for order in picked.values():
        if order not in have:
            have.add(order)
            extra.append(contraction.plan_from_blocks(m, n, r, B, order, 4))
    rows = []
    with _StepTimer(contraction, gradients) as timer:
        for plan in plans + extra:
            ws, ws_last = contraction.Workspace(), contraction.Workspace()
            timer.clear()
            totals = []
            for it in range(repeats + 1):
                t0 = time.perf_counter()
                record = []
                contraction.execute(plan, cores, X, record=record, workspace=ws)
                t1 = time.perf_counter()
                gradients.matmul_backward(gradients.MatmulContext(W, record, B, X.dtype, ws), G)
                t2 = time.perf_counter()
                if it:
                    totals.append((t1 - t0, t2 - t1))
            first = {g: (float(np.median(v[1:])), float(np.median(timer.bwd[g][1:])))
                     for g, v in timer.fwd.items()}
            timer.clear()
            last_totals = []
            for it in range(repeats + 1):
                t0 = time.perf_counter()
                contraction.execute(plan, cores, Xt, batch_last=True, record=[], workspace=ws_last)
                if it:
                    last_totals.append(time.perf_counter() - t0)
            last = {g: float(np.median(v[1:])) for g, v in timer.fwd.items()}
            plain = []
            for it in range(repeats + 1):          # the product as x @ W.T and W @ x run it
                t0 = time.perf_counter()
                contraction.execute(plan, cores, X)
                t1 = time.perf_counter()
                contraction.execute(plan, cores, Xt, batch_last=True)
                if it:
                    plain.append((t1 - t0, time.perf_counter() - t1))
            pf, pl = np.median(np.array(plain), axis=0)
            tf, tb = np.median(np.array(totals), axis=0)
            rows.append({"shape": name, "blocks": [list(b) for b in plan.order],
                         "extra": plan in extra, "picked_by": sorted(
                             key for key, order in picked.items() if order == plan.order),
                         "flops": plan.flops, "forward": float(tf), "backward": float(tb),
                         "forward_batch_last": float(np.median(last_totals)),
                         "product": float(pf), "product_batch_last": float(pl),
                         "plan": plan, "steps": first, "steps_batch_last": last})
    return rows


def _vector(single, stack):
    """The stage-1 feature vector: the single-GEMM features, then the stack features."""
    return list(single or (0.0,) * 5) + list(stack or (0.0,) * 8)


def _fit(rows):
    from scipy.optimize import lsq_linear, nnls  # noqa: PLC0415

    from tensortrain import _plan_model  # noqa: PLC0415
    feats = _plan_model._features
    rows = [row for row in rows if not row["extra"]]     # the library's picks only report
    # stage 1: per-step products
    fwd, bwd = {}, {}
    for row in rows:
        for g, (tf, tb) in row["steps"].items():
            fwd.setdefault(g, []).append(tf)
            bwd.setdefault(g, []).append(tb)
        for g, tf in row["steps_batch_last"].items():
            fwd.setdefault(g, []).append(tf)

    def stage1(table):
        keys = list(table)
        X = np.array([_vector(*feats(g.P, g.K, g.Q, g.rows, 0, 0, 0, 4)[:2]) for g in keys])
        y = np.array([np.median(table[g]) for g in keys])
        w = 1.0 / np.maximum(y, 2e-6)
        return nnls(X * w[:, None], y * w, maxiter=10_000)[0]

    cf, cb = stage1(fwd), stage1(bwd)

    # stage 2: per-step fixed costs, fitted to what the step products leave of each total
    def steps_of(row, batch_last):
        from tensortrain import contraction  # noqa: PLC0415
        plan = row["plan"]
        B = plan.batch
        c = contraction._Costs(plan.row_modes, plan.col_modes, plan.ranks, B)
        bf, bb = (1, B) if batch_last else (B, 1)
        interval, out = None, []
        for s in plan.steps:
            g, interval = contraction._gemm(c.mpre, c.npre, c.nsuf, c.r, interval, s.lo, s.hi,
                                            bf, bb)
            out.append(feats(g.P, g.K, g.Q, g.rows, s.merge_flops, s.hi - s.lo,
                             c.core_size(s.lo, s.hi), 4))
        return out

    Zf, Rf, Zb, Rb = [], [], [], []
    for row in rows:
        w = 1.0 / (row["forward"] + row["backward"])
        for batch_last, total in ((False, row["forward"]), (True, row["forward_batch_last"])):
            fs = steps_of(row, batch_last)
            pred = sum(np.dot(_vector(s1, s2), cf) for s1, s2, _ in fs)
            Zf.append(np.sum([st for _, _, st in fs], axis=0) * w)
            Rf.append((total - pred) * w)
        fs = steps_of(row, False)
        pred = sum(np.dot(_vector(s1, s2), cb) for s1, s2, _ in fs)
        Zb.append(np.sum([st for _, _, st in fs], axis=0) * w)
        Rb.append((row["backward"] - pred) * w)
    gf = lsq_linear(np.array(Zf), np.array(Rf), bounds=(0, np.inf)).x
    gb = lsq_linear(np.array(Zb), np.array(Rb), bounds=(0, np.inf)).x
    # the plain product (no record, no workspace: fresh arrays for the states)
    Zp, Rp = [], []
    for row in rows:
        w = 1.0 / (row["forward"] + row["backward"])
        for batch_last, total in ((False, row["product"]), (True, row["product_batch_last"])):
            fs = steps_of(row, batch_last)
            pred = sum(np.dot(_vector(s1, s2), cf) for s1, s2, _ in fs)
            written = sum((s1 or s2)[3] for s1, s2, _ in fs)
            Zp.append(np.r_[np.sum([st for _, _, st in fs], axis=0), written] * w)
            Rp.append((total - pred) * w)
    gp = lsq_linear(np.array(Zp), np.array(Rp), bounds=(0, np.inf)).x
    return {"forward": {"single": tuple(cf[:5]), "stack": tuple(cf[5:]), "step": tuple(gf),
                        "product_step": tuple(gp)},
            "backward": {"single": tuple(cb[:5]), "stack": tuple(cb[5:]), "step": tuple(gb)}}


def _evaluate(rows, coefficients):
    """Per shape and pass: the measured times of the plan with the fewest FLOPs, of the plan
    the library picks (``plan_matmat``, measured even when it is outside the fitted set), of
    the measured plan the new ``coefficients`` rank first, and of the fastest plan measured."""
    from tensortrain import _plan_model, contraction  # noqa: PLC0415
    by_shape = {}
    for row in rows:
        by_shape.setdefault(row["shape"], []).append(row)
    out = []
    for name, group in by_shape.items():
        for kind, key, batch_last, train in (("X @ W.T", "product", False, False),
                                             ("W @ X", "product_batch_last", True, False),
                                             ("train", "train", False, True)):
            measured = np.array([(g["forward"] + g["backward"]) if train else g[key]
                                 for g in group])
            fewest = next(i for i, g in enumerate(group) if "flops" in g["picked_by"])
            library = next(i for i, g in enumerate(group) if key in g["picked_by"])
            saved = _plan_model.COEFFICIENTS
            _plan_model.COEFFICIENTS = coefficients
            try:
                fitted = int(np.argmin([contraction.modeled_seconds(g["plan"], batch_last, train)
                                        for g in group]))
            finally:
                _plan_model.COEFFICIENTS = saved
            out.append({"shape": name, "kind": kind, "plans": len(group),
                        "fewest_flops": measured[fewest], "library_model": measured[library],
                        "fitted_model": measured[fitted], "fastest": measured.min(),
                        "library_blocks": group[library]["blocks"],
                        "library_pick_measured_apart": bool(group[library]["extra"])})
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    C.add_common_options(p, "3 small shapes and few plans; a smoke test")
    p.add_argument("--max-plans", type=int, default=None,
                   help="plans per shape, fewest FLOPs first (default 300; --quick 12)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per plan (default 5)")
    p.add_argument("--shapes", default=None, help="comma-separated shape names")
    args = p.parse_args(argv)
    if args.device != "numpy":
        p.error("the model describes NumPy on a CPU; --device cupy is not supported here")
    tt = C.import_tensortrain()
    env = C.environment()
    C.print_environment(env)
    names = (args.shapes.split(",") if args.shapes
             else list(QUICK_SHAPES) if args.quick else list(SHAPES))
    unknown = [s for s in names if s not in SHAPES]
    if unknown:
        p.error(f"unknown shapes {unknown}; choose from {sorted(SHAPES)}")
    max_plans = args.max_plans or (12 if args.quick else 300)
    repeats = args.repeats or (2 if args.quick else 5)
    rng = np.random.default_rng(0)
    rows = []
    for name in names:
        t0 = time.perf_counter()
        got = _measure(tt, name, SHAPES[name], max_plans, repeats, rng)
        rows += got
        print(f"{name}: {len(got)} plans measured in {time.perf_counter() - t0:.1f} s", flush=True)
    coefficients = _fit(rows)
    print("\nfitted coefficients (seconds, float32; the format of _plan_model.COEFFICIENTS):")
    for part, groups in coefficients.items():
        for group, values in groups.items():
            print(f"  {part:8s} {group:6s} (" + ", ".join(f"{v:.4e}" for v in values) + ")")
    evaluation = _evaluate(rows, coefficients)
    table = [[e["shape"], e["kind"], e["plans"], C.fmt_ms(e["fastest"]),
              C.fmt_ms(e["fewest_flops"]), C.fmt_ms(e["library_model"]),
              C.fmt_ms(e["fitted_model"]),
              " ".join(f"{lo + 1}-{hi + 1}" for lo, hi in e["library_blocks"])]
             for e in evaluation]
    C.print_table("measured time of the plan each rule picks (ms)",
                  ["shape", "pass", "plans", "fastest", "fewest FLOPs", "library model",
                   "fitted model", "library plan (1-based blocks)"], table)
    for key in ("fewest_flops", "library_model", "fitted_model"):
        ratio = np.exp(np.mean([np.log(e[key] / e["fastest"]) for e in evaluation]))
        print(f"geometric mean of (picked / fastest), {key}: {ratio:.3f}")
    if not args.no_json:
        from tensortrain import _plan_model  # noqa: PLC0415
        payload = {"coefficients": coefficients, "library_coefficients": _plan_model.COEFFICIENTS,
                   "evaluation": evaluation,
                   "measurements": [{k: v for k, v in r.items()
                                     if k not in ("plan", "steps", "steps_batch_last")}
                                    for r in rows]}
        path = C.write_results(C.result_name("fit_plan_model", args), payload, env, args)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()

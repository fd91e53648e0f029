"""TT-matrix times a dense batch, ``Y = X @ W.T``, against the dense product.

Run from the repository root::

    python benchmarks/bench_matvec.py            # full run, float32 and float64
    python benchmarks/bench_matvec.py --quick    # fewer repeats (same cases)
    python benchmarks/bench_matvec.py --device cupy

Cases
-----
* ``1024x1024``: row and column modes (4, 8, 8, 4), TT-ranks 8, batch 256.
* ``fc6``: the VGG-16 fc6 layer 25088 -> 4096 as a TTMatrix of shape (4096, 25088), row
  (output) modes (4, 4, 4, 4, 4, 4), column (input) modes (2, 7, 8, 8, 7, 4), TT-ranks 4,
  batch 1 and batch 100.

``W = tt.random_matrix(...)``, the dense reference is ``Wd = W.full()``, ``X`` has shape
``(batch, N)``; the TT product is ``X @ W.T`` (through ``TTMatrix.__rmatmul__``) and the dense
one ``X @ Wd.T``.  Tables:

1. TT against dense: times, speed-up, FLOPs of the plan that ``X @ W.T`` really used
   (recorded while it runs), achieved GFLOP/s beside the machine's GEMM rate, the relative
   error between the two results, and the targets as PASS/MISS (not asserts).
2. Plans: the planner's plan (on NumPy, chosen by modelled time) against the plan with the
   fewest FLOPs (``objective='flops'``), the fixed left-to-right and right-to-left sweeps
   (``contraction.fixed_sweep_plan``), all run with ``contraction.execute(plan, W.cores, X)``,
   and opt_einsum's path for the same network (``contract_path(optimize='dp')`` and
   ``'optimal'``), its ``opt_cost`` and the time of ``opt_einsum.contract`` along it.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

CASES = [
    # name, row (output) modes, column (input) modes, rank, batches
    ("1024x1024", (4, 8, 8, 4), (4, 8, 8, 4), 8, (256,)),
    ("fc6", (4, 4, 4, 4, 4, 4), (2, 7, 8, 8, 7, 4), 4, (1, 100)),
]

# targets on the speed-up dense/TT (best times); printed, never asserted
TARGETS = {
    ("1024x1024", 256): (1 / 1.2, "no slower than 1.2x dense"),
    ("fc6", 1): (40.0, ">= 40x"),
    ("fc6", 100): (10.0, ">= 10x"),
}


def blocks_str(plan):
    return ">".join(f"[{s.lo + 1}]" if s.lo == s.hi else f"[{s.lo + 1}..{s.hi + 1}]"
                    for s in plan.steps)


def record_plan(contraction, fn):
    """Run ``fn()`` and return (result, the plans ``contraction.plan_matmat`` returned meanwhile).

    The library looks the plan up through the module attribute, so a temporary wrapper sees
    exactly the plan the product used.
    """
    orig = contraction.plan_matmat
    seen = []

    def recorder(*a, **k):
        p = orig(*a, **k)
        seen.append(p)
        return p

    contraction.plan_matmat = recorder
    try:
        out = fn()
    finally:
        contraction.plan_matmat = orig
    return out, seen


def einsum_network(W, batch):
    """The einsum of ``X (B, n_1..n_d)`` with every core (boundary ranks of size 1 dropped)."""
    import opt_einsum as oe  # noqa: PLC0415

    d = W.d
    sym = oe.get_symbol
    b = sym(0)
    n = [sym(1 + k) for k in range(d)]
    m = [sym(1 + d + k) for k in range(d)]
    r = [sym(1 + 2 * d + k) for k in range(d + 1)]
    ranks = W.ranks
    terms = [b + "".join(n)]
    shapes = [(batch, *W.col_modes)]
    for k in range(d):
        left = r[k] if k > 0 else ""
        right = r[k + 1] if k < d - 1 else ""
        terms.append(left + m[k] + n[k] + right)
        shapes.append(((ranks[k],) if k > 0 else ()) + (W.row_modes[k], W.col_modes[k])
                      + ((ranks[k + 1],) if k < d - 1 else ()))
    expr = ",".join(terms) + "->" + b + "".join(m)
    return expr, shapes


def einsum_operands(W, X, xp):
    d = W.d
    ops = [X.reshape((X.shape[0], *W.col_modes))]
    for k, c in enumerate(W.cores):
        s = c.shape
        if k == 0 and d > 1:
            c = c.reshape(s[1], s[2], s[3])
        elif k == d - 1 and d > 1:
            c = c.reshape(s[0], s[1], s[2])
        elif d == 1:
            c = c.reshape(s[1], s[2])
        ops.append(c)
    return ops


def rel_max_err(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), np.finfo(float).tiny))


def main(argv=None):
    parser = C.base_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    t_start = time.perf_counter()
    tt = C.import_tensortrain()
    import opt_einsum as oe  # noqa: PLC0415

    from tensortrain import contraction  # noqa: PLC0415

    backend = C.Backend(args.device)
    xp, sync = backend.xp, backend.sync
    env = C.environment(backend)
    C.print_environment(env)
    dtypes = C.dtypes_from(args.dtype)
    repeats = args.repeats or (3 if args.quick else 7)
    quiet = args.wait_quiet
    monitor = C.RunMonitor()
    print(f"timing: best of {repeats} samples after 1 warm-up; the calls compared in a row are "
          f"timed interleaved (round-robin), each sample after one untimed call of the same "
          f"function; calls under 2 ms are looped within a sample; speed-ups and GFLOP/s use "
          f"best times\n")

    rates = C.gemm_rates(dtypes, quick=args.quick, backend=backend, quiet_s=quiet)
    C.print_gemm_rates(rates)

    rng = np.random.default_rng(42)
    main_rows, plan_rows, results, describes, notes = [], [], [], [], []
    for dtype in dtypes:
        dname = np.dtype(dtype).name
        for name, rmodes, cmodes, rank, batches in CASES:
            W = tt.random_matrix(rmodes, cmodes, rank, rng=0, dtype=dtype, xp=xp)
            M, N = W.shape
            t0 = time.perf_counter()
            Wd = W.full()
            if sync:
                sync()
            t_full = time.perf_counter() - t0
            for batch in batches:
                X = backend.asarray(rng.standard_normal((batch, N)).astype(dtype))
                Y_tt, seen = record_plan(contraction, lambda X=X, W=W: X @ W.T)
                Y_d = X @ Wd.T
                err = rel_max_err(backend.to_host(Y_tt), backend.to_host(Y_d))
                plan_w = W.matmul_plan(batch)          # the plan of X @ W.T
                plan_wt = W.T.matmul_plan(batch)       # the other orientation, for the record
                plan_used = seen[-1] if seen else plan_w
                if not seen:
                    notes.append(f"{name} {dname} b={batch}: could not record the plan used; "
                                 "reporting W.matmul_plan(batch)")
                elif plan_used != plan_w:
                    notes.append(f"{name} {dname} b={batch}: the plan used differs from "
                                 f"W.matmul_plan(batch): {plan_used.describe()}")
                if plan_wt.flops != plan_used.flops:
                    notes.append(f"{name} {dname} b={batch}: W.T.matmul_plan(batch) has "
                                 f"{plan_wt.flops} FLOPs, the plan used by X @ W.T "
                                 f"{plan_used.flops}: the orientations differ")

                t_tt, t_d = C.time_many([lambda X=X, W=W: X @ W.T, lambda X=X, Wd=Wd: X @ Wd.T],
                                        repeats=repeats, sync=sync, quiet_s=quiet)
                speed = t_d["best"] / t_tt["best"]
                speed_med = t_d["median"] / t_tt["median"]
                dense_flops = 2 * batch * M * N
                gemm = rates[dname]["gflops"]
                goal, goal_txt = TARGETS[(name, batch)]
                status = "PASS" if speed >= goal else "MISS"
                main_rows.append([
                    name, dname, batch, C.fmt_ms(t_tt["best"]), C.fmt_ms(t_tt["median"]),
                    C.fmt_ms(t_d["best"]), C.fmt_ms(t_d["median"]), f"{speed:.1f}x",
                    f"{plan_used.flops / 1e6:.2f}", f"{dense_flops / plan_used.flops:.1f}x",
                    f"{plan_used.flops / t_tt['best'] / 1e9:.1f}",
                    f"{dense_flops / t_d['best'] / 1e9:.1f}", f"{gemm:.1f}",
                    f"{err:.1e}", C.fmt_bg(t_tt["background_cpu"]), goal_txt, status,
                ])
                describes.append(f"{name:9s} {dname} b={batch:<3d}: {plan_used.describe()}")

                # ---- plan comparison ---------------------------------------------------
                itemsize = np.dtype(dtype).itemsize
                variants = [
                    ("planner", plan_used),
                    ("fewest FLOPs", W.matmul_plan(batch, objective="flops")),
                    ("left sweep", contraction.fixed_sweep_plan(
                        W.row_modes, W.col_modes, W.ranks, batch, "left", itemsize)),
                    ("right sweep", contraction.fixed_sweep_plan(
                        W.row_modes, W.col_modes, W.ranks, batch, "right", itemsize)),
                ]
                pref = plan_used.flops
                Yd_host = backend.to_host(Y_d)
                variant_res = []
                fns = []
                for vname, plan in variants:
                    y = contraction.execute(plan, W.cores, X)
                    verr = rel_max_err(backend.to_host(y), Yd_host)
                    variant_res.append({"name": vname, "blocks": plan.order, "flops": plan.flops,
                                        "peak_bytes": plan.peak_bytes, "rel_max_err": verr,
                                        "describe": plan.describe(), "plan": plan})
                    fns.append(lambda plan=plan, W=W, X=X: contraction.execute(plan, W.cores, X))
                # the public call: the same plan plus the per-call overhead of X @ W.T
                fns.append(lambda X=X, W=W: X @ W.T)
                expr, shapes = einsum_network(W, batch)
                ops = einsum_operands(W, X, xp)
                oe_res = {}
                for opt in ("dp", "optimal"):
                    t0 = time.perf_counter()
                    path, info = oe.contract_path(expr, *shapes, shapes=True, optimize=opt)
                    search_s = time.perf_counter() - t0
                    yo = oe.contract(expr, *ops, optimize=path)
                    oerr = rel_max_err(backend.to_host(yo).reshape(batch, -1), Yd_host)
                    oe_res[opt] = {"path": [list(p) for p in path], "opt_cost": int(info.opt_cost),
                                   "largest_intermediate": int(info.largest_intermediate),
                                   "search_s": search_s, "rel_max_err": oerr}
                    fns.append(lambda path=path, expr=expr, ops=ops: oe.contract(expr, *ops, optimize=path))
                times = C.time_many(fns, repeats=repeats, sync=sync, quiet_s=quiet)
                nv = len(variants)
                for v, tv in zip(variant_res, times[:nv], strict=True):
                    plan = v.pop("plan")
                    v["time"] = tv
                    plan_rows.append([
                        name, dname, batch, v["name"], blocks_str(plan),
                        f"{plan.flops / 1e6:.2f}", f"{plan.flops / pref:.2f}",
                        f"{plan.peak_bytes / 2**20:.2f}", C.fmt_ms(tv["best"]),
                        C.fmt_ms(tv["median"]), f"{plan.flops / tv['best'] / 1e9:.1f}",
                        f"{v['rel_max_err']:.1e}", C.fmt_bg(tv["background_cpu"]),
                    ])
                tp = times[nv]
                plan_rows.append([
                    name, dname, batch, "X @ W.T", blocks_str(plan_used),
                    f"{plan_used.flops / 1e6:.2f}", "1.00",
                    f"{plan_used.peak_bytes / 2**20:.2f}", C.fmt_ms(tp["best"]),
                    C.fmt_ms(tp["median"]), f"{plan_used.flops / tp['best'] / 1e9:.1f}",
                    f"{err:.1e}", C.fmt_bg(tp["background_cpu"]),
                ])
                for (opt, o), to in zip(oe_res.items(), times[nv + 1:], strict=True):
                    o["time"] = to
                    cost = o["opt_cost"]
                    plan_rows.append([
                        name, dname, batch, f"opt_einsum {opt}",
                        f"{len(o['path'])} pairwise steps",
                        f"{cost / 1e6:.2f}", f"{cost / pref:.2f}",
                        f"{o['largest_intermediate'] * itemsize / 2**20:.2f}",
                        C.fmt_ms(to["best"]), C.fmt_ms(to["median"]),
                        f"{cost / to['best'] / 1e9:.1f}", f"{o['rel_max_err']:.1e}",
                        C.fmt_bg(to["background_cpu"]),
                    ])
                del ops
                results.append({
                    "case": name, "dtype": dname, "batch": batch, "shape": [M, N],
                    "row_modes": list(rmodes), "col_modes": list(cmodes), "ranks": list(W.ranks),
                    "num_params": W.num_params, "full_s": t_full,
                    "tt_time": t_tt, "dense_time": t_d,
                    "speedup_best": speed, "speedup_median": speed_med,
                    "tt_flops": plan_used.flops, "dense_flops": dense_flops,
                    "tt_gflops": plan_used.flops / t_tt["best"] / 1e9,
                    "dense_gflops": dense_flops / t_d["best"] / 1e9,
                    "gemm_gflops": gemm, "rel_max_err": err,
                    "plan_used": {"describe": plan_used.describe(), "blocks": plan_used.order,
                                  "flops": plan_used.flops, "peak_bytes": plan_used.peak_bytes,
                                  "recorded": bool(seen),
                                  "equals_W_matmul_cost": plan_used == plan_w},
                    "W_T_matmul_cost": {"describe": plan_wt.describe(), "flops": plan_wt.flops},
                    "target": {"min_speedup": goal, "text": goal_txt, "status": status},
                    "plans": variant_res, "opt_einsum": oe_res,
                })
                del X, Y_tt, Y_d
            del Wd, W
            backend.free()

    C.print_table(
        f"TT x dense batch, Y = X @ W.T  [{args.device}]",
        ["case", "dtype", "batch", "TT ms", "TT med", "dense ms", "dense med", "speed-up",
         "TT MFLOP", "FLOP ratio", "TT GFLOP/s", "dense GFLOP/s", "GEMM GFLOP/s",
         "rel max err", "bg cpu", "target", "status"],
        main_rows)
    print("plans used by X @ W.T (recorded while it ran; == W.matmul_plan(batch)):")
    for line in describes:
        print("  " + line)
    print()
    C.print_table(
        "plans: planner vs fixed sweeps vs opt_einsum, each executed "
        "(contraction.execute / opt_einsum.contract)",
        ["case", "dtype", "batch", "plan", "blocks", "MFLOP", "vs planner", "peak MiB",
         "best ms", "med ms", "GFLOP/s", "rel max err", "bg cpu"],
        plan_rows)
    if notes:
        print("notes:")
        for n in notes:
            print("  " + n)
        print()
    run, wall = monitor.report(t_start)
    if not args.no_json:
        path = C.write_results(C.result_name("bench_matvec", args),
                               {"gemm": rates, "rows": results, "notes": notes,
                                "wall_s": wall, "background_cpu": run["background_cpu"],
                                "repeats": repeats}, env, args)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()

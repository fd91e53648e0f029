"""Riemannian geometry of fixed-rank TTs and tensor completion: the acceptance numbers.

Run from the repository root::

    python benchmarks/bench_riemannian.py            # full run, writes JSON and the plot
    python benchmarks/bench_riemannian.py --quick    # smaller timing sweep
    python benchmarks/bench_riemannian.py --t3f /work/peers-venv/bin/python   # also run t3f

Cases
-----
1. Geometry: for random points ``x`` (ranks 3) and TTs ``z`` at d = 1, 6 and 200, the relative
   residuals of ``P P z = P z``, ``<z - P z, xi> = 0`` (tangent ``xi``), ``P x = x`` and
   ``R_x(0) = x`` (the last two entrywise at 500 random indices).
2. t3f's Riemannian tutorial: a rank-2 fit to a rank-16 TT of shape 2^10 by 100 Riemannian
   gradient steps of length 1 (``minimize(method='gd', step=1.0)``) against TT rounding; the
   loss ``0.5 ||x - A||^2`` of both (t3f reports 488.4 against 518.4 for its own random
   ``A``).  With ``--t3f PYTHON`` the same experiment runs in t3f (TensorFlow) in a
   subprocess, and this package then starts from t3f's own ``A`` and ``X0``.
3. Completion of a random rank-3 TT of shape (10,)^6 (10^6 entries, ``tt.random_tensor``:
   Gaussian cores) from 20,000 entries (2%), on ``--trials`` independent sample sets: RCG and
   ALS at fixed rank 3 from the spectral start (the default) and from a random start, and RCG
   with rank adaptation from rank 1 on the first set; relative error on 10,000 held-out
   entries not used in any way.  The plot shows the validation error per iteration of these
   runs on the first set and the time per RCG iteration against the number of samples.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np
from _common import (
    REPO_ROOT,
    Backend,
    add_common_options,
    environment,
    print_environment,
    print_table,
    result_name,
    write_results,
)
from _common import import_tensortrain as _import

tt = _import()
from tensortrain import riemannian as R  # noqa: E402
from tensortrain.completion import complete  # noqa: E402
from tensortrain.errors import ConvergenceWarning  # noqa: E402

IMG = REPO_ROOT / "docs" / "img" / "completion_rcg_als.png"


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


# ---- 1. geometry -----------------------------------------------------------------------------
def geometry(xp):
    rows, out = [], []
    for shape in [(7,), (4, 5, 6, 5, 4, 3), (2,) * 200]:
        d = len(shape)
        x = tt.random_tensor(shape, ranks=3, rng=1, xp=xp)
        z = tt.random_tensor(shape, ranks=4, rng=2, xp=xp)
        T = R.TangentSpace(x)
        p = R.project(z, T)
        idem = (R.project(p.to_tt(), T) - p).norm() / p.norm()
        xi = R.project(tt.random_tensor(shape, ranks=2, rng=3, xp=xp), T)
        orth = abs(tt.dot(z, xi.to_tt()) - p.dot(xi)) / (z.norm() * xi.norm())
        idx = np.stack([np.random.default_rng(4).integers(0, n, 500) for n in shape], axis=1)
        want = np.asarray(R.gather(x, idx))
        keep = _rel(R.project(x, T).at(idx), want)
        ret = _rel(R.gather(R.retract(T, T.zero()), idx), want)
        rec = {"d": d, "shape": shape[:3] if d > 3 else shape, "idempotence": idem,
               "orthogonality": orth, "x_in_T": keep, "retract_zero": ret}
        out.append(rec)
        rows.append([d, f"{idem:.1e}", f"{orth:.1e}", f"{keep:.1e}", f"{ret:.1e}"])
    print_table("geometry: relative residuals (ranks 3)",
                ["d", "|PPz-Pz|/|Pz|", "<z-Pz,xi>/(|z||xi|)", "Px vs x", "R_x(0) vs x"], rows)
    return out


# ---- 2. t3f anchor ---------------------------------------------------------------------------
_T3F_SCRIPT = r"""
import json, sys
import numpy as np
np.int = int  # t3f 1.2 still names this alias, which NumPy 2 removed
import tensorflow as tf
import t3f
tf.random.set_seed(0)
shape = 10 * [2]
A = t3f.random_tensor(shape, tt_rank=16)
X = t3f.random_tensor(shape, tt_rank=2)
X0 = [c.numpy().astype(np.float64) for c in X.tt_cores]
for i in range(100):
    g = t3f.riemannian.project(X - A, X)
    X = t3f.round(X - 1.0 * g, max_tt_rank=2)
F = float(0.5 * t3f.frobenius_norm_squared(X - A))
Q = float(0.5 * t3f.frobenius_norm_squared(t3f.round(A, max_tt_rank=2) - A))
np.savez(sys.argv[1], **{f"a{k}": c.numpy().astype(np.float64) for k, c in enumerate(A.tt_cores)},
         **{f"x{k}": c for k, c in enumerate(X0)})
print(json.dumps({"riemannian": F, "round": Q}))
"""


def _fit(target, x0):
    def fun(x):
        return 0.5 * (x - target).norm() ** 2, [x, -1.0 * target]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        _, info = R.minimize(fun, x0, method="gd", step=1.0, max_iter=100, tol=0,
                             return_info=True)
        _, infoc = R.minimize(fun, x0, method="cg", max_iter=100, tol=0, return_info=True)
    rounded = target.round(max_rank=2)
    return {"riemannian_gd_100": info.loss[-1], "riemannian_cg_100": infoc.loss[-1],
            "round": fun(rounded)[0], "start": info.loss[0], "gd_loss_every_10": info.loss[::10]}


def t3f_anchor(xp, t3f_python):
    rows, out = [], {}
    target = tt.random_tensor((2,) * 10, ranks=16, rng=7, xp=xp)
    x0 = tt.random_tensor((2,) * 10, ranks=2, rng=8, xp=xp)
    ours = _fit(target, x0)
    out["own_target"] = ours
    rows.append(["tensortrain, own random A", f"{ours['riemannian_gd_100']:.2f}",
                 f"{ours['riemannian_cg_100']:.2f}", f"{ours['round']:.2f}"])
    rows.append(["t3f tutorial (published)", "488.39", "-", "518.39"])
    if t3f_python:
        with tempfile.TemporaryDirectory() as tmp:
            script = os.path.join(tmp, "t3f_anchor.py")
            data = os.path.join(tmp, "t3f_anchor.npz")
            with open(script, "w") as f:
                f.write(_T3F_SCRIPT)
            env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
            res = subprocess.run([t3f_python, script, data], capture_output=True, text=True,
                                 env=env, timeout=600, check=False)
            if res.returncode == 0:
                t3f_nums = json.loads(res.stdout.strip().splitlines()[-1])
                with np.load(data) as z:
                    a = tt.TTTensor([xp.asarray(z[f"a{k}"]) for k in range(10)])
                    x0t = tt.TTTensor([xp.asarray(z[f"x{k}"]) for k in range(10)])
                same = _fit(a, x0t)
                out["t3f_run"] = t3f_nums
                out["t3f_target"] = same
                rows.append(["t3f, run here (float32)", f"{t3f_nums['riemannian']:.2f}", "-",
                             f"{t3f_nums['round']:.2f}"])
                rows.append(["tensortrain on t3f's A and X0", f"{same['riemannian_gd_100']:.2f}",
                             f"{same['riemannian_cg_100']:.2f}", f"{same['round']:.2f}"])
            else:
                out["t3f_error"] = res.stderr[-2000:]
                print("t3f run failed:", res.stderr[-500:], file=sys.stderr)
    print_table("t3f anchor: 0.5 ||x - A||^2, rank-2 fit of a rank-16 TT of shape 2^10",
                ["", "100 Riemannian GD steps", "100 RCG steps", "TT rounding"], rows)
    return out


# ---- 3. completion ---------------------------------------------------------------------------
SHAPE = (10,) * 6


def _target(xp):
    return tt.random_tensor(SHAPE, ranks=3, rng=0, xp=xp)


def _samples(a, n_samples, n_test, seed):
    rng = np.random.default_rng(seed)
    lin = rng.choice(10 ** 6, n_samples + n_test, replace=False)
    idx = np.stack(np.unravel_index(lin, SHAPE), axis=1)
    vals = R.gather(a, idx)
    return idx[:n_samples], vals[:n_samples], idx[n_samples:], vals[n_samples:]


def _test_err(x, idx, vals):
    got = R.gather(x, idx)
    return float(np.linalg.norm(np.asarray(got - vals)) / np.linalg.norm(np.asarray(vals)))


def _run(tr, tv, te, tev, method, adapt, ranks, seed, max_iter, init="spectral"):
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        x, info = complete(tr, tv, SHAPE, ranks=ranks, method=method, adapt=adapt, rng=seed,
                           max_iter=max_iter, tol=1e-10, return_info=True, init=init)
    wall = time.perf_counter() - t0
    return {"method": method, "adapt": adapt, "max_ranks": ranks, "start_seed": seed,
            "init": init,
            "held_out_error": _test_err(x, te, tev), "iterations": info.iterations,
            "reason": info.reason, "ranks": x.ranks, "seconds": wall,
            "seconds_per_iteration": wall / max(info.iterations, 1),
            "train_error": info.train_error, "validation_error": info.validation_error,
            "stages": info.stages}


def _row(name, r):
    return [name, r["max_ranks"] if not r["adapt"] else f"1..{r['max_ranks']}",
            r["iterations"], r["reason"], max(r["ranks"]), f"{r['train_error'][-1]:.1e}",
            f"{r['validation_error'][-1]:.1e}", f"{r['held_out_error']:.1e}",
            f"{r['seconds']:.0f}", f"{1e3 * r['seconds_per_iteration']:.0f}"]


def completion(xp, quick, trials, max_iter):
    a = _target(xp)
    dense = np.asarray(a.full()).ravel() ** 2
    top = float(np.sort(dense)[::-1][: dense.size // 100].sum() / dense.sum())
    runs = []
    rows = []
    for t in range(trials):
        tr, tv, te, tev = _samples(a, 20000, 10000, seed=100 + t)
        for method, init in (("rcg", "spectral"), ("als", "spectral"), ("rcg", "random"),
                             ("als", "random")):
            r = _run(tr, tv, te, tev, method, False, 3, t, max_iter, init)
            r["sample_set"] = t
            runs.append(r)
            rows.append(_row(f"set {t}, {method}, {init} start", r))
    tr, tv, te, tev = _samples(a, 20000, 10000, seed=100)
    r = _run(tr, tv, te, tev, "rcg", True, 5, 0, max_iter)
    r["sample_set"] = 0
    runs.append(r)
    rows.append(_row("set 0, rcg, spectral, rank adaptation", r))
    print_table("completion of a random rank-3 TT (Gaussian cores), shape (10,)^6, from 20,000 "
                "samples (2%, 10% of them for validation); held-out: 10,000 other entries",
                ["run", "ranks", "iterations", "stop", "rank", "train", "validation",
                 "held-out", "s", "ms/it"], rows)
    ok = {f"{m}_{i}": sum(1 for r in runs if r["method"] == m and r["init"] == i
                          and not r["adapt"] and r["held_out_error"] <= 1e-8)
          for m in ("rcg", "als") for i in ("spectral", "random")}
    print("recovered to <= 1e-8 on the held-out entries, of "
          f"{trials} sample sets: RCG {ok['rcg_spectral']} and ALS {ok['als_spectral']} from the "
          f"spectral start, RCG {ok['rcg_random']} and ALS {ok['als_random']} from a random "
          f"start; the top 1% of the target's entries hold {100 * top:.0f}% of its squared "
          "norm\n")

    # time per RCG iteration against the number of samples (fixed rank 3, 12 iterations)
    sizes = [5000, 10000, 20000, 40000, 80000] if not quick else [5000, 20000, 80000]
    scaling = []
    srows = []
    for n in sizes:
        tr, tv, _, _ = _samples(a, n, 0, seed=5)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            _, info = complete(tr, tv, SHAPE, ranks=3, rng=3, adapt=False, validation=0,
                               max_iter=12, tol=0, return_info=True)
        steps = np.diff(info.seconds)
        med = float(np.median(steps))
        best = float(np.min(steps))
        scaling.append({"samples": n, "median_seconds_per_iteration": med,
                        "min_seconds_per_iteration": best, "per_sample_us": 1e6 * best / n})
        srows.append([n, f"{1e3 * best:.1f}", f"{1e3 * med:.1f}", f"{1e6 * best / n:.2f}"])
    print_table("RCG time per iteration against the number of samples (rank 3, (10,)^6; "
                "fastest and median of 12 iterations)",
                ["samples", "ms / iteration", "median ms", "us / sample"], srows)
    return {"runs": runs, "recovered": ok, "trials": trials, "top1_share": top}, scaling


def plot(comp, scaling, path):
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    runs = comp["runs"]
    show = 0
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=90)
    for r in runs:
        if r["sample_set"] != show or r["adapt"]:
            continue
        label = "RCG" if r["method"] == "rcg" else "ALS (half sweeps)"
        color = "C0" if r["method"] == "rcg" else "C1"
        ls = "-" if r["init"] == "spectral" else ":"
        ax1.semilogy(r["validation_error"], ls, color=color, lw=1.4,
                     label=f"{label}, {r['init']} start")
    ax1.axhline(1e-8, color="gray", lw=0.8, ls="--")
    ax1.set_xlabel("iteration")
    ax1.set_ylabel("relative validation error")
    ax1.set_title(f"(10,)^6, rank 3, 2% of the entries (sample set {show})", fontsize=10)
    ax1.legend(fontsize=8)
    ns = [s["samples"] for s in scaling]
    ts = [1e3 * s["min_seconds_per_iteration"] for s in scaling]
    ax2.loglog(ns, ts, "o-", color="C0", label="RCG iteration (fastest of 12)")
    ref = [ts[-1] * n / ns[-1] for n in ns]
    ax2.loglog(ns, ref, "--", color="gray", lw=0.8, label="linear")
    ax2.set_xticks(ns)
    ax2.set_xticklabels([f"{n // 1000}k" for n in ns])
    ax2.minorticks_off()
    ax2.set_xlabel("number of samples")
    ax2.set_ylabel("ms per iteration")
    ax2.set_title("time per RCG iteration", fontsize=10)
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_common_options(p, "smaller timing sweep")
    p.add_argument("--t3f", metavar="PYTHON", default=None,
                   help="a Python interpreter with t3f and TensorFlow: run t3f's tutorial too")
    p.add_argument("--no-plot", action="store_true", help="do not draw the plot")
    p.add_argument("--trials", type=int, default=None,
                   help="sample sets for the completion runs (default 4, 2 with --quick)")
    p.add_argument("--max-iter", type=int, default=300,
                   help="iteration cap of every completion run (default 300)")
    args = p.parse_args()
    backend = Backend(args.device)
    xp = backend.xp
    env = environment(backend)
    print_environment(env)
    geo = geometry(xp)
    anchor = t3f_anchor(xp, args.t3f)
    trials = args.trials or (2 if args.quick else 4)
    comp, scaling = completion(xp, args.quick, trials, args.max_iter)
    if not args.no_plot:
        plot(comp, scaling, IMG)
        print(f"plot: {IMG.relative_to(REPO_ROOT)} ({IMG.stat().st_size // 1024} KB)")
    if not args.no_json:
        path = write_results(result_name("bench_riemannian", args),
                             {"geometry": geo, "t3f_anchor": anchor, "completion": comp,
                              "scaling": scaling}, env, args)
        print(f"results: {path.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()

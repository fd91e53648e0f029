"""Figure 1 of Novikov et al. (2015): MNIST error against the first layer's parameter count.

The network is ``1024 -first layer-> 1024 -ReLU-> 10`` (28 x 28 digits zero-padded to
32 x 32, as in ``train-mnist``).  The first layer is a ``TTLinear`` whose 1024 x 1024 weight
is reshaped to the paper's five tensor shapes (32x32, 4x8x8x4, 4x4x4x4x4, 2x2x8x8x2x2 and
2^10, the same modes for rows and columns), each trained over a range of TT-ranks, or the
paper's matrix-rank (MR) baseline: two ``Linear`` layers ``1024 -> R -> 1024``.  All runs use
the same data, seed, optimizer (Adam, lr 1e-3, batch 100) and number of epochs.

The x-axis counts the first layer's *weights* (TT cores; ``2 * 1024 * R`` for MR), biases
excluded, as the paper's compression factors do.  The y-axis is the error on 1,000 digits held
out from the 8,000 embedded in the package after the last epoch: this reproduction's stand-in
for the paper's test error on the 10,000 MNIST test digits (no test set ships with the package).

    python benchmarks/paper/figure1_mnist.py            # 20 epochs, 2 seeds (about 10 min here)
    python benchmarks/paper/figure1_mnist.py --quick    # every step on tiny settings
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _paper as P

C = P.C

RESHAPES = [
    # label, modes, TT-ranks (full run)
    ("32x32", (32, 32), (1, 2, 4, 8, 16, 32)),
    ("4x8x8x4", (4, 8, 8, 4), (1, 2, 4, 8, 16)),
    ("4x4x4x4x4", (4, 4, 4, 4, 4), (1, 2, 4, 8, 16)),
    ("2x2x8x8x2x2", (2, 2, 8, 8, 2, 2), (1, 2, 4, 8, 16)),
    ("2^10", (2,) * 10, (1, 2, 4, 8, 16)),
]
MR_RANKS = (1, 2, 5, 10, 20, 50)
QUICK_RANKS = (1, 2)
QUICK_MR = (1, 5)
BALANCED = ("4x8x8x4", "4x4x4x4x4")
UNBALANCED = ("32x32", "2^10")


def log_interp(x, xs, ys):
    """Error at parameter count ``x`` by linear interpolation in log(parameters);
    ``None`` outside the curve's range."""
    xs, ys = np.asarray(xs, float), np.asarray(ys, float)
    order = np.argsort(xs)
    xs, ys = xs[order], ys[order]
    if x < xs[0] * (1 - 1e-9) or x > xs[-1] * (1 + 1e-9):
        return None
    return float(np.interp(math.log(x), np.log(xs), ys))


def curves_from(runs):
    """``{label: (params, mean error)}`` per curve, sorted by parameters."""
    out = {}
    for r in runs:
        out.setdefault(r["curve"], []).append((r["weights"], float(np.mean(r["val_err"]))))
    return {k: tuple(zip(*sorted(v), strict=True)) for k, v in out.items()}


def compare(curves, a, b, points=25):
    """Mean error of curve ``a`` minus curve ``b`` (points) over their common parameter range,
    on a log-spaced grid; ``None`` when the ranges do not overlap."""
    xa, ya = curves[a]
    xb, yb = curves[b]
    lo, hi = max(min(xa), min(xb)), min(max(xa), max(xb))
    if lo >= hi:
        return None, lo, hi
    grid = np.exp(np.linspace(math.log(lo), math.log(hi), points))
    diffs = [log_interp(g, xa, ya) - log_interp(g, xb, yb) for g in grid]
    return 100 * float(np.mean(diffs)), lo, hi


def run(args, data):
    runs = []
    cases = []
    for label, modes, ranks in RESHAPES:
        for r in (QUICK_RANKS if args.quick else ranks):
            cases.append((label, "tt", modes, r))
    for r in (QUICK_MR if args.quick else MR_RANKS):
        cases.append(("MR", "mr", None, r))
    cases.append(("dense", "dense", None, 0))      # the reference: a dense first layer
    for i, (label, kind, modes, r) in enumerate(cases, 1):
        config = P.first_layer_config(kind, modes or (4, 8, 8, 4), r, r)
        errs, times, accs_tr = [], [], []
        for seed in range(args.seeds):
            res = P.train(config, data, epochs=args.epochs, lr=args.lr, seed=seed)
            errs.append(res["val_err"])
            times.append(res["epoch_time"])
            accs_tr.append(res["train_acc"])
            model = res["model"]
        n_first = config["meta"]["first_layer_count"]
        weights, biases = P.count_params(model.layers[:n_first])
        tt_ranks = (model.layers[0].ranks if kind == "tt" else None)
        runs.append({"curve": label, "kind": kind, "modes": modes, "rank": r,
                     "tt_ranks": tt_ranks, "weights": weights, "biases": biases,
                     "compression": 1024 * 1024 / weights, "val_err": errs,
                     "train_acc": accs_tr, "epoch_time": times})
        print(f"  [{i}/{len(cases)}] {label:<12} rank {r:>2}: {weights:>7,} weights, "
              f"error {100 * np.mean(errs):5.2f}%  ({np.mean(times):.2f} s/epoch)", flush=True)
    return runs


def print_runs(runs, args, data):
    rows = []
    for r in runs:
        ranks = "-" if r["tt_ranks"] is None else ",".join(str(x) for x in r["tt_ranks"][1:-1])
        rank = "-" if r["kind"] == "dense" else r["rank"]
        rows.append([r["curve"], rank, ranks, f"{r['weights']:,}",
                     f"{r['compression']:,.0f}x", f"{100 * np.mean(r['val_err']):.2f}",
                     f"{100 * np.mean(r['train_acc']):.2f}", f"{np.mean(r['epoch_time']):.2f}"])
    C.print_table(f"Figure 1: validation error vs first-layer weights ({args.epochs} epochs, "
                  f"Adam lr {args.lr:g}, {args.seeds} seed(s); {data.n_val} held-out digits)",
                  ["reshape", "rank", "TT-ranks", "weights", "compression", "val error %",
                   "train acc %", "s / epoch"], rows)


def noise_level(runs, n_val):
    """How large an error difference between two curves must be to mean anything, in points.

    With several seeds: twice the standard error of a difference of two seed-means, from the
    pooled seed-to-seed spread of all points.  With one seed: twice the binomial standard
    error of a difference of two error rates on ``n_val`` digits (at the median error).
    """
    errs = [np.asarray(r["val_err"]) for r in runs if r["curve"] not in ("MR", "dense")]
    seeds = min(len(e) for e in errs)
    if seeds > 1:
        sd = math.sqrt(float(np.mean([np.var(e, ddof=1) for e in errs])))
        return 100 * 2 * math.sqrt(2) * sd / math.sqrt(seeds), "seed-to-seed spread", sd
    p = float(np.median([e.mean() for e in errs]))
    se = math.sqrt(p * (1 - p) / n_val)
    return 100 * 2 * math.sqrt(2) * se, "binomial error of the held-out set", se


def findings(runs, n_val):
    curves = curves_from(runs)
    tt_labels = [c for c in curves if c not in ("MR", "dense")]
    noise, noise_kind, sd = noise_level(runs, n_val)
    print(f"noise level: differences below {noise:.2f} points are not significant (2 standard "
          f"errors of a difference; from the {noise_kind}, sd {100 * sd:.2f} points)\n")
    # 1. TT against MR at the MR points' parameter counts
    rows, tt_wins, tt_total = [], 0, 0
    for x, e_mr in zip(*curves["MR"], strict=True):
        best = None
        for lab in tt_labels:
            e = log_interp(x, *curves[lab])
            if e is not None and (best is None or e < best[1]):
                best = (lab, e)
        if best is None:
            rows.append([f"{x:,}", f"{100 * e_mr:.2f}", "-", "-", "-", "no TT curve covers it"])
            continue
        tt_total += 1
        gap = 100 * (e_mr - best[1])
        tt_wins += gap > noise
        rows.append([f"{x:,}", f"{100 * e_mr:.2f}", best[0], f"{100 * best[1]:.2f}",
                     f"{gap:+.2f}", "TT better" if gap > noise else
                     ("within noise" if abs(gap) <= noise else "MR better")])
    C.print_table("TT against the matrix-rank baseline at the MR points' weight counts (best TT "
                  "reshape, error interpolated in log(weights))",
                  ["weights", "MR error %", "best TT reshape", "TT error %", "MR - TT pts",
                   "verdict"], rows)
    # 2. balanced reshapes against 32x32 and 2^10
    rows2, checks = [], {}
    for a in BALANCED:
        for b in UNBALANCED:
            if a not in curves or b not in curves:
                continue
            diff, lo, hi = compare(curves, a, b)
            if diff is None:
                rows2.append([a, b, "-", "-", "ranges do not overlap"])
                continue
            checks[f"{a} vs {b}"] = diff
            verdict = (f"{a} better" if diff < -noise else f"{b} better" if diff > noise
                       else "within noise")
            rows2.append([a, b, f"{lo:,.0f} .. {hi:,.0f}", f"{diff:+.2f}", verdict])
    C.print_table(f"balanced against unbalanced reshapes: mean error difference (points) over "
                  f"the common range of weights (noise level {noise:.2f} points)",
                  ["reshape A", "reshape B", "weights range", "A - B error pts", "verdict"],
                  rows2)
    balanced_wins = sum(v < -noise for v in checks.values())
    verdict = {
        "noise_level_pts": noise, "noise_from": noise_kind,
        "tt_beats_mr": f"{tt_wins} of {tt_total} MR points",
        "tt_beats_mr_all": tt_total > 0 and tt_wins == tt_total,
        "balanced_vs_unbalanced_pts": checks,
        "balanced_beats_unbalanced": f"{balanced_wins} of {len(checks)} pairs beyond the noise",
    }
    print(f"finding (paper): at equal parameter count TT beats MR  -> here: TT better beyond "
          f"the noise at {tt_wins} of {tt_total} MR points")
    print("finding (paper): balanced reshapes beat 32x32 and 2^10 -> here: " + (
        "; ".join(f"{k}: {v:+.2f} pts" for k, v in checks.items()) or "not measured")
        + f" ({balanced_wins} of {len(checks)} beyond the {noise:.2f}-point noise level)")
    return curves, verdict


def plot(runs, path, args, data):
    from matplotlib.ticker import FuncFormatter  # noqa: PLC0415

    fig = P.new_figure(figsize=(7.5, 5))
    ax = fig.subplots()
    markers = {"32x32": "o", "4x8x8x4": "s", "4x4x4x4x4": "^", "2x2x8x8x2x2": "v",
               "2^10": "D", "MR": "x"}
    by_curve = {}
    for r in runs:
        by_curve.setdefault(r["curve"], []).append(r)
    for label, rs in by_curve.items():
        rs = sorted(rs, key=lambda r: r["weights"])
        errs = [100 * np.asarray(r["val_err"]) for r in rs]
        mean = np.array([e.mean() for e in errs])
        if label == "dense":
            ax.axhline(mean[0], color="gray", lw=1, ls=":",
                       label=f"dense first layer ({rs[0]['weights']:,} weights)")
            continue
        yerr = np.array([[m - e.min() for m, e in zip(mean, errs, strict=True)],
                         [e.max() - m for m, e in zip(mean, errs, strict=True)]])
        ax.errorbar([r["weights"] for r in rs], mean, yerr=yerr, capsize=2,
                    ls="--" if label == "MR" else "-", marker=markers.get(label, "o"),
                    label="matrix rank (MR)" if label == "MR" else label,
                    color="black" if label == "MR" else None)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(
        lambda v, _: f"{v:g}" if f"{v:g}"[0] in "2345" else ""))
    ax.set_xlabel("number of weights in the first layer (1024 x 1024 dense: 1,048,576)")
    ax.set_ylabel("validation error, % (log scale)")
    seeds = f", mean of {args.seeds} seeds (bars: min..max)" if args.seeds > 1 else ""
    ax.set_title(f"MNIST 1024-1024-10, {args.epochs} epochs, {data.n_train} training digits"
                 f"{seeds}\n(cf. Novikov et al. 2015, Figure 1)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(title="first layer", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def main(argv=None):
    p = P.parser(__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=None, help="default 20 (1 with --quick)")
    p.add_argument("--seeds", type=int, default=None,
                   help="seeds per point, the mean is plotted (default 2; 1 with --quick)")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--from-results", metavar="JSON", default=None,
                   help="re-print the tables and redraw the figure from a results file written "
                        "by an earlier run, without training (rewrites that file's analysis)")
    args = p.parse_args(argv)
    if args.from_results:
        return reanalyze(args)
    args.epochs = args.epochs or (1 if args.quick else 20)
    args.seeds = args.seeds or (1 if args.quick else 2)
    t0 = time.perf_counter()
    backend = C.Backend(args.device)
    env = P.start(args, backend)
    data = P.mnist_split(backend.name, limit=1500 if args.quick else None,
                        val=300 if args.quick else 1000)
    print(f"data: {data.describe()}\n")
    runs = run(args, data)
    print()
    payload = analyze(runs, args, data)
    P.finish(P.result_name("figure1_mnist", args), payload, env, args, t0)
    return 0


def analyze(runs, args, data):
    print_runs(runs, args, data)
    _curves, verdict = findings(runs, data.n_val)
    fig = None
    if not args.no_plot:
        fig = plot(runs, P.figure_path("figure1_mnist", args), args, data)
        print(f"figure: {fig.relative_to(C.REPO_ROOT)}")
    return {"paper": P.PAPER, "result": "Figure 1", "data": data.describe(),
            "n_train": data.n_train, "n_val": data.n_val,
            "epochs": args.epochs, "seeds": args.seeds, "lr": args.lr, "batch_size": 100,
            "runs": runs, "verdict": verdict,
            "figure": None if fig is None else str(fig.relative_to(C.REPO_ROOT))}


def reanalyze(args):
    """Tables, verdict and figure from the runs stored in an earlier results file."""
    import json  # noqa: PLC0415
    from types import SimpleNamespace  # noqa: PLC0415

    path = Path(args.from_results)
    with open(path) as f:
        doc = json.load(f)
    old = doc.get("options") or {}
    args.quick = bool(old.get("quick", False))
    args.device = old.get("device", "numpy")
    args.epochs, args.seeds, args.lr = doc["epochs"], doc["seeds"], doc["lr"]
    n_val = doc.get("n_val") or (300 if args.quick else 1000)
    n_train = doc.get("n_train") or (1200 if args.quick else 7000)
    data = SimpleNamespace(n_val=n_val, n_train=n_train, describe=lambda: doc["data"])
    print(f"re-analysing {path} (trained {doc['timestamp']}, {doc['data']})\n")
    payload = analyze(doc["runs"], args, data)
    if not args.no_json:
        # keep the original run's record (environment, options, timing); replace the analysis
        doc.update({k: v for k, v in payload.items() if k != "runs"})
        doc["tables"] = C.TABLES
        import datetime  # noqa: PLC0415

        doc["reanalyzed"] = {"argv": sys.argv,
                             "when": datetime.datetime.now().isoformat("T", "seconds")}
        with open(path, "w") as f:
            json.dump(C._jsonable(doc), f, indent=2)
            f.write("\n")
        print(f"results: {path}")
    return 0

if __name__ == "__main__":
    sys.exit(main())

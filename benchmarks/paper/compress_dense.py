"""Compressing a *trained* dense layer with TT-SVD (``TTLinear.from_dense``), then fine-tuning.

The paper trains TT-layers from scratch; this script asks the complementary question the
library makes easy: train the dense MNIST network (``train-mnist --dense``: 1024 -> 1024 ->
ReLU -> 10), convert its first layer to a ``TTLinear`` with modes 4x8x8x4 and report, for
several accuracies ``eps`` and rank caps ``max_rank``, the TT-ranks, the compression of the
layer's weights, the relative Frobenius error of the weight, the held-out accuracy right after
the conversion and after a short fine-tune of the whole network (Adam, lower learning rate).

Three series:

- ``eps``: ``from_dense(W, eps=e)`` for e in 0.1 .. 0.9 (no rank cap);
- ``max_rank``: ``from_dense(W, max_rank=r)`` (no ``eps``), r = 32 .. 2;
- ``max_rank, dead inputs zeroed``: the same after zeroing the weight columns of the input
  pixels that are 0 in every training digit (the padding and the always-black corners).
  Those columns never receive a gradient, so they keep their random initial values, which
  the network's outputs on the training digits do not depend on but which TT-SVD must
  otherwise spend rank on.

Fine-tuning is skipped (``-``) where the TT layer is not at least 2x smaller than the dense one
(those layers are slow to train and compress nothing).

    python benchmarks/paper/compress_dense.py
    python benchmarks/paper/compress_dense.py --quick
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _paper as P

C = P.C

MODES = (4, 8, 8, 4)
EPS = (0.1, 0.3, 0.5, 0.7, 0.9)
MAX_RANKS = (32, 16, 8, 4, 2)
QUICK_EPS = (0.9,)
QUICK_MAX_RANKS = (2,)
FINETUNE_MIN_COMPRESSION = 2.0   # fine-tune only layers at least this much smaller than dense


def snapshot(model):
    return [p.data.copy() for p in model.parameters()]


def restore(model, saved):
    for p, v in zip(model.parameters(), saved, strict=True):
        p.data[...] = v


def compress(model, data, weight, bias, eps, max_rank, args):
    """Replace the first layer by the TT of ``weight``; evaluate, fine-tune, evaluate."""
    from tensortrain.nn import TTLinear  # noqa: PLC0415

    xp = data.xp
    t0 = time.perf_counter()
    layer = TTLinear.from_dense(weight, bias, eps=eps, max_rank=max_rank, in_modes=MODES,
                                out_modes=MODES)
    t_svd = time.perf_counter() - t0
    full = layer.weight.full()
    rel = float(xp.linalg.norm(full - weight) / xp.linalg.norm(weight))
    dense_layer = model.layers[0]
    saved = snapshot(model)
    model.layers[0] = layer
    acc0 = P.validation_accuracy(model, data)
    weights = sum(p.size for p in layer.cores)
    acc_ft, ft_time = None, None
    if layer.compression >= FINETUNE_MIN_COMPRESSION:
        res = P.train(None, data, epochs=args.ft_epochs, lr=args.ft_lr, seed=0, model=model)
        acc_ft, ft_time = res["val_acc"], res["epoch_time"]
    model.layers[0] = dense_layer
    restore(model, saved)
    return {"eps": eps, "max_rank": max_rank, "ranks": layer.ranks, "weights": weights,
            "compression": layer.compression, "rel_error": rel, "svd_s": t_svd,
            "acc_converted": acc0, "acc_finetuned": acc_ft, "finetune_epoch_s": ft_time}


def main(argv=None):
    p = P.parser(__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=None,
                   help="epochs of the dense network (default 20; 1 with --quick)")
    p.add_argument("--ft-epochs", type=int, default=None,
                   help="fine-tuning epochs (default 3; 1 with --quick)")
    p.add_argument("--ft-lr", type=float, default=3e-4, help="fine-tuning learning rate")
    args = p.parse_args(argv)
    args.epochs = args.epochs or (1 if args.quick else 20)
    args.ft_epochs = args.ft_epochs or (1 if args.quick else 3)
    t0 = time.perf_counter()
    backend = C.Backend(args.device)
    env = P.start(args, backend)
    xp = backend.xp
    data = P.mnist_split(backend.name, limit=1500 if args.quick else None, val=300 if args.quick else 1000)
    print(f"data: {data.describe()}")
    res = P.train(P.first_layer_config("dense"), data, epochs=args.epochs, lr=1e-3, seed=0)
    model = res["model"]
    dense_acc = res["val_acc"]
    print(f"dense network: {args.epochs} epochs, held-out accuracy {100 * dense_acc:.2f}% "
          f"({res['epoch_time']:.2f} s/epoch)")
    # the same fine-tune applied to the dense network itself: the control
    saved = snapshot(model)
    ctrl = P.train(None, data, epochs=args.ft_epochs, lr=args.ft_lr, seed=0, model=model)
    restore(model, saved)
    print(f"dense network after the same fine-tune ({args.ft_epochs} epochs, lr {args.ft_lr:g}): "
          f"{100 * ctrl['val_acc']:.2f}%\n")

    W = model.layers[0].weight.data.copy()
    b = model.layers[0].bias.data.copy()
    dead = xp.max(data.x_tr, axis=0) == 0
    n_dead = int(dead.sum())
    Wz = W.copy()
    Wz[:, dead] = 0
    series = [("eps", W, [(e, None) for e in (QUICK_EPS if args.quick else EPS)]),
              ("max_rank", W, [(0.0, r) for r in (QUICK_MAX_RANKS if args.quick else MAX_RANKS)]),
              ("max_rank, dead inputs zeroed", Wz,
               [(0.0, r) for r in (QUICK_MAX_RANKS if args.quick else MAX_RANKS)])]
    results, rows = {}, []
    for name, weight, settings in series:
        out = []
        for eps, mr in settings:
            r = compress(model, data, weight, b, eps, mr, args)
            out.append(r)
            setting = f"eps {eps:g}" if mr is None else f"max_rank {mr}"
            rows.append([name, setting, ",".join(map(str, r["ranks"][1:-1])), f"{r['weights']:,}",
                         f"{r['compression']:,.1f}x", f"{r['rel_error']:.3f}",
                         f"{100 * r['acc_converted']:.2f}",
                         "-" if r["acc_finetuned"] is None else f"{100 * r['acc_finetuned']:.2f}"])
            print(f"  {name}, {setting}: ranks {r['ranks']}, {r['compression']:.1f}x, accuracy "
                  f"{100 * r['acc_converted']:.2f}% -> "
                  + ("-" if r["acc_finetuned"] is None else f"{100 * r['acc_finetuned']:.2f}%"),
                  flush=True)
        results[name] = out
    print()
    C.print_table(f"TTLinear.from_dense of the trained dense first layer (modes 4x8x8x4); "
                  f"dense: {100 * dense_acc:.2f}%, dense after the same fine-tune "
                  f"{100 * ctrl['val_acc']:.2f}%; fine-tune {args.ft_epochs} epochs Adam lr "
                  f"{args.ft_lr:g}; {data.n_val} held-out digits; {n_dead} dead input pixels",
                  ["series", "setting", "TT-ranks", "weights", "compression", "rel. error W",
                   "acc converted %", "acc fine-tuned %"], rows)

    scratch = from_scratch(args, results)
    fig = None
    if not args.no_plot:
        fig = plot(results, dense_acc, ctrl["val_acc"], scratch,
                   P.figure_path("compress_dense", args), args)
        print(f"figure: {fig.relative_to(C.REPO_ROOT)}")
    payload = {"paper": P.PAPER, "result": "compression of a trained dense layer (extension)",
               "data": data.describe(), "modes": MODES, "dense_epochs": args.epochs,
               "dense_val_acc": dense_acc, "dense_finetuned_val_acc": ctrl["val_acc"],
               "finetune_epochs": args.ft_epochs, "finetune_lr": args.ft_lr,
               "dead_input_pixels": n_dead, "series": results, "from_scratch": scratch,
               "figure": None if fig is None else str(fig.relative_to(C.REPO_ROOT))}
    P.finish(P.result_name("compress_dense", args), payload, env, args, t0)
    return 0


def from_scratch(args, results):
    """The 4x8x8x4 TT layers trained from scratch by ``figure1_mnist.py`` (its results file,
    same data and split), beside the compressed and fine-tuned ones of the same ranks."""
    import json  # noqa: PLC0415

    path = C.RESULTS_DIR / (P.result_name("figure1_mnist", args) + ".json")
    if not path.exists():
        print(f"({path.relative_to(C.REPO_ROOT)} not found: run figure1_mnist.py first for the "
              f"from-scratch comparison)")
        return None
    with open(path) as f:
        doc = json.load(f)
    runs = {r["rank"]: r for r in doc["runs"] if r["curve"] == "4x8x8x4"}
    rows, out = [], []
    for r in results["max_rank"]:
        s = runs.get(r["max_rank"])
        if s is None:
            continue
        acc = 1 - float(np.mean(s["val_err"]))
        out.append({"rank": r["max_rank"], "weights": s["weights"],
                    "compression": s["compression"], "acc": acc})
        rows.append([r["max_rank"], f"{s['weights']:,}", f"{s['compression']:,.1f}x",
                     f"{100 * acc:.2f}", f"{100 * r['acc_finetuned']:.2f}"])
    if rows:
        C.print_table(f"TT 4x8x8x4 trained from scratch ({doc['epochs']} epochs, mean of "
                      f"{doc['seeds']} seeds; {path.name}) against dense -> TT-SVD -> "
                      f"{args.ft_epochs} fine-tuning epochs",
                      ["TT-rank", "weights", "compression", "from scratch acc %",
                       "compressed + fine-tuned acc %"], rows)
    return {"source": str(path.relative_to(C.REPO_ROOT)), "epochs": doc["epochs"],
            "seeds": doc["seeds"], "points": out}


def plot(results, dense_acc, ctrl_acc, scratch, path, args):
    fig = P.new_figure(figsize=(7.5, 5))
    ax = fig.subplots()
    colors = {}
    for name, out in results.items():
        xs = [r["compression"] for r in out]
        line, = ax.plot(xs, [100 * r["acc_converted"] for r in out], "o--", mfc="none",
                        label=f"{name}: right after conversion")
        colors[name] = line.get_color()
        ft = [(r["compression"], 100 * r["acc_finetuned"]) for r in out
              if r["acc_finetuned"] is not None]
        if ft:
            ax.plot(*zip(*ft, strict=True), "o-", color=colors[name],
                    label=f"{name}: after {args.ft_epochs} fine-tuning epochs")
    if scratch and scratch["points"]:
        pts = sorted((q["compression"], 100 * q["acc"]) for q in scratch["points"])
        ax.plot(*zip(*pts, strict=True), "s-", color="black", mfc="white",
                label=f"TT trained from scratch ({scratch['epochs']} epochs, Figure 1 run)")
    ax.axhline(100 * dense_acc, color="black", lw=1, label="dense network")
    ax.axhline(100 * ctrl_acc, color="black", lw=1, ls=":", label="dense, same fine-tune")
    ax.set_xscale("log")
    ax.set_xlabel("compression of the first layer's weights (1024*1024 / TT weights)")
    ax.set_ylabel("held-out accuracy, %")
    ax.set_ylim(max(0, ax.get_ylim()[0]), 100)
    ax.set_title("TT-SVD of a trained dense layer (4x8x8x4), MNIST", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


if __name__ == "__main__":
    sys.exit(main())

"""MNIST acceptance run and training speed: TT first layer vs dense vs matrix-rank baseline.

The network is ``1024 -first layer-> 1024 -ReLU-> 10`` on the embedded 8,000 digits padded to
32 x 32, 1,000 of them held out for validation (``tensortrain.nn.mnist_example``).  Every
configuration is trained with the same seeds; the table gives the mean and spread of the final
validation accuracy, the first layer's weight parameters and compression, and the mean time
per epoch.  The speed of one layer (the VGG fc6 shape 25088 -> 4096 among others, forward and
backward, beside a dense Linear) is timed in one place, ``benchmarks/bench_layer.py``.

    python benchmarks/bench_mnist.py                 # 3 seeds x 20 epochs (about 10 min here)
    python benchmarks/bench_mnist.py --quick         # 1 seed, 2 epochs, 2,000 digits
    python benchmarks/bench_mnist.py --device cupy
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

tt = C.import_tensortrain()
from tensortrain.nn.mnist_example import train_mnist  # noqa: E402

CONFIGS = [
    # label, kind, rank, matrix rank
    ("dense", "dense", None, None),
    ("TT 4x8x8x4, rank 8", "tt", 8, None),
    ("TT 4x8x8x4, rank 2", "tt", 2, None),
    ("MR rank 5 (>= TT r8 params)", "mr", None, 5),
    ("MR rank 1 (>= TT r2 params)", "mr", None, 1),
]


def run_accuracy(args, backend):
    rows, raw = [], {}
    for label, kind, rank, mrank in CONFIGS:
        accs, times = [], []
        for seed in range(args.seeds):
            res = train_mnist(kind=kind, rank=rank or 8, matrix_rank=mrank, epochs=args.epochs,
                              device=backend.name, seed=seed, progress=False,
                              limit=args.limit, val=args.val, out=io.StringIO())
            accs.append(res["val_acc"])
            times.append(res["mean_epoch_time"])
            weight, comp = res["first_layer_weight_params"], res["compression"]
        raw[label] = {"val_acc": accs, "epoch_time": times, "weight_params": weight,
                      "compression": comp}
        rows.append([label, f"{weight:,}", f"{comp:,.0f}x",
                     f"{100 * np.mean(accs):.2f}", f"{100 * np.std(accs):.2f}",
                     " ".join(f"{100 * a:.1f}" for a in accs), f"{np.mean(times):.3f}"])
    C.print_table(f"MNIST, {args.epochs} epochs, {args.seeds} seed(s), validation on "
                  f"{args.val} held-out digits [{backend.name}]",
                  ["first layer", "weights", "compression", "val acc %", "std",
                   "per seed", "s / epoch"], rows)
    acc = {k: 100 * np.mean(v["val_acc"]) for k, v in raw.items()}
    checks = [
        ("TT r8 within 0.5 points of dense", acc["TT 4x8x8x4, rank 8"] >= acc["dense"] - 0.5),
        ("TT r2 within 2 points of dense", acc["TT 4x8x8x4, rank 2"] >= acc["dense"] - 2.0),
        ("TT r8 beats MR rank 5", acc["TT 4x8x8x4, rank 8"] > acc["MR rank 5 (>= TT r8 params)"]),
        ("TT r2 beats MR rank 1", acc["TT 4x8x8x4, rank 2"] > acc["MR rank 1 (>= TT r2 params)"]),
    ]
    for name, ok in checks:
        print(f"  {name:<36} {'PASS' if ok else 'MISS'}")
    return raw, checks, rows


def main(argv=None):
    parser = C.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args(argv)
    args.seeds = args.seeds or (1 if args.quick else 3)
    args.epochs = args.epochs or (2 if args.quick else 20)
    args.limit = 2000 if args.quick else None
    args.val = 500 if args.quick else 1000
    backend = C.Backend(args.device)
    env = C.environment(backend)
    C.print_environment(env)
    t0 = time.perf_counter()
    acc_raw, checks, acc_rows = run_accuracy(args, backend)
    payload = {"mnist": acc_raw, "mnist_table": acc_rows,
               "checks": {k: bool(v) for k, v in checks},
               "epochs": args.epochs, "seeds": args.seeds}
    print(f"\nwall time {time.perf_counter() - t0:.1f} s")
    if not args.no_json:
        C.write_results(C.result_name("bench_mnist", args), payload, env, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())

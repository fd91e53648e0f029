"""A network's first layer: the plan for a backward pass without the input gradient.

Run from the repository root::

    python benchmarks/bench_first_layer.py            # all shapes
    python benchmarks/bench_first_layer.py --quick    # fewer repeats

The input of a network's first layer is the data, so its backward pass never computes the
input gradient (``backward(grad, need_input_grad=False)``, which ``tensortrain.nn.fit``
calls).  ``TTLinear`` then plans its forward pass with ``objective='train_no_input_grad'``
instead of ``'train'``.  For each layer shape below (float32, NumPy) this script runs the
forward pass that keeps its states and the backward pass without ``dx`` under both plans
(``gradients.matmul_forward(W, X, workspace, objective=...)`` then ``matmul_backward(ctx,
dy, need_input_grad=False)``, each plan with a workspace of its own as ``TTLinear`` keeps),
interleaved, and prints the best times and their ratio.  Shapes
where both objectives pick the same plan are listed once.  Both plans' core gradients are
checked against each other.  Times only; nothing is asserted.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C

SHAPES = [
    # out modes, in modes, rank, batch: layers that take raw data
    ((4, 4, 4), (7, 4, 28), 2, 256),          # MNIST 784 -> 64
    ((4, 4, 4), (7, 4, 28), 2, 100),
    ((4, 4, 4), (7, 4, 28), 4, 32),
    ((10, 10), (28, 28), 2, 256),             # MNIST 784 -> 100
    ((10, 10), (28, 28), 4, 100),
    ((4, 8, 4), (8, 8, 16), 4, 100),          # 1024 -> 128
    ((4, 8, 4), (8, 8, 16), 4, 256),
    ((4, 8, 4), (8, 8, 16), 8, 32),
    ((4, 8, 8, 4), (4, 8, 8, 4), 2, 100),     # the MNIST benchmark's padded 1024 -> 1024
    ((4, 8, 8, 4), (4, 8, 8, 4), 8, 100),
    ((8, 8, 8, 8), (8, 8, 8, 8), 2, 1),       # 4096 -> 4096, one sample
]
QUICK_SHAPES = SHAPES[:2]


def main():
    p = C.base_parser(__doc__.splitlines()[0])
    args = p.parse_args()
    tt = C.import_tensortrain()
    from tensortrain import contraction, gradients  # noqa: PLC0415

    env = C.environment()
    C.print_environment(env)
    repeats = args.repeats or (3 if args.quick else 15)
    rows, table = [], []
    for out_modes, in_modes, rank, batch in (QUICK_SHAPES if args.quick else SHAPES):
        ranks = (1,) + (rank,) * (len(in_modes) - 1) + (1,)
        W = tt.random_matrix(out_modes, in_modes, ranks, rng=0, dtype=np.float32)
        rng = np.random.default_rng(1)
        X = rng.standard_normal((batch, W.shape[1])).astype(np.float32)
        dy = rng.standard_normal((batch, W.shape[0])).astype(np.float32)
        plans = {o: W.matmul_plan(batch, objective=o)
                 for o in ("train", "train_no_input_grad")}

        def step(objective, W=W, X=X, dy=dy):
            ws = contraction.Workspace()        # as TTLinear keeps one

            def run():
                _, ctx = gradients.matmul_forward(W, X, ws, objective=objective)
                return gradients.matmul_backward(ctx, dy, need_input_grad=False)[1]
            return run

        fns = {o: step(o) for o in plans}
        same = plans["train"].order == plans["train_no_input_grad"].order
        if not same:
            a, b = fns["train"](), fns["train_no_input_grad"]()
            err = max(float(np.abs(x - y).max() / max(np.abs(x).max(), 1e-30))
                      for x, y in zip(a, b, strict=True))
        else:
            err = 0.0
        res = C.time_many(list(fns.values())[:1 if same else 2], repeats=repeats,
                          quiet_s=args.wait_quiet)
        t_train = res[0]["best"]
        t_first = t_train if same else res[1]["best"]
        row = {"out_modes": out_modes, "in_modes": in_modes, "rank": rank, "batch": batch,
               "train_plan": plans["train"].describe(),
               "first_layer_plan": plans["train_no_input_grad"].describe(),
               "train_s": t_train, "first_layer_s": t_first, "same_plan": same,
               "grad_difference": err, "bg_cpu": res[0]["background_cpu"]}
        rows.append(row)
        shape = f"{'x'.join(map(str, out_modes))} <- {'x'.join(map(str, in_modes))}"
        table.append([shape, rank, batch, C.fmt_ms(t_train),
                      "(same plan)" if same else C.fmt_ms(t_first),
                      f"{t_train / t_first:.2f}x", f"{err:.1e}", C.fmt_bg(row["bg_cpu"])])
    C.print_table("forward + backward without dx, float32: the 'train' plan against the "
                  "'train_no_input_grad' plan (ms, best of interleaved samples)",
                  ["layer (out <- in modes)", "rank", "batch", "'train' ms",
                   "first-layer plan ms", "speed-up", "grad diff", "bg cpu"], table)
    if not args.no_json:
        print("wrote", C.write_results(C.result_name("bench_first_layer", args), {"rows": rows},
                                       env, args))


if __name__ == "__main__":
    main()

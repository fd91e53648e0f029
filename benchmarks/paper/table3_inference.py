"""Table 3 of Novikov et al. (2015): inference time and memory of the VGG fc6 layer, TT vs dense.

fc6 maps 25088 -> 4096.  The TT layer has input modes (2, 7, 8, 8, 7, 4), output modes 4^6 and
TT-ranks 4 (2,016 parameters); the dense layer is its full 4096 x 25088 matrix.  Both products
``Y = X @ W.T`` run in float32 for a batch of 1 and of 100 images, timed as the other
benchmarks time (interleaved samples, best of N, ``bg cpu`` = share of the CPUs other processes
used meanwhile), on the CPU or, with ``--device cupy``, on the GPU.

Memory: the dense layer's weight; the TT cores plus the engine's peak temporary memory
(``W.matmul_plan(batch).peak_bytes``: the states before and after a step plus the merged
block), checked against what the product really allocated (NumPy reports its allocations to
``tracemalloc``; on CuPy, the growth of ``cupy.get_default_memory_pool().total_bytes()``, an
upper bound of the peak).  The paper's 392 MB and 0.766 MB are recomputed to show what they
measure.

    python benchmarks/paper/table3_inference.py [--quick] [--device cupy]
"""

from __future__ import annotations

import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _paper as P

C = P.C
tt = P.tt

IN_MODES = (2, 7, 8, 8, 7, 4)
OUT_MODES = (4,) * 6
RANK = 4
BATCHES = (1, 100)
MiB = 2 ** 20

# Table 3 of the paper, milliseconds: (1 image, 100 images)
PAPER_TIMES = {
    ("CPU", "dense"): (16.1, 97.2),
    ("CPU", "TT"): (1.2, 94.7),
    ("GPU", "dense"): (2.7, 33.0),
    ("GPU", "TT"): (1.9, 12.9),
}
PAPER_MEMORY_MB = {"dense": 392, "TT": 0.766}


def tracemalloc_peak(fn):
    """Bytes allocated at the peak of ``fn()`` above what was allocated before it (NumPy
    reports its data buffers to tracemalloc), and the result."""
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        out = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base, out


def cupy_pool_peak(fn, backend):
    """Growth of CuPy's default memory pool over ``fn()`` (blocks freed during the call stay in
    the pool, so this bounds the peak from above) and the bytes still held by the result."""
    cp = backend.xp
    pool = cp.get_default_memory_pool()
    backend.sync()
    pool.free_all_blocks()
    total0, used0 = pool.total_bytes(), pool.used_bytes()
    out = fn()
    backend.sync()
    return pool.total_bytes() - total0, pool.used_bytes() - used0, out


def paper_numbers_explained():
    """What 392 MB and 0.766 MB are: the float32 fc6 weight in MiB, and the largest state of a
    one-core-at-a-time left-to-right sweep for one image, in MiB."""
    from tensortrain import contraction  # noqa: PLC0415

    dense_bytes = 25088 * 4096 * 4
    ranks = (1,) + (RANK,) * 5 + (1,)
    sweep = contraction.fixed_sweep_plan(OUT_MODES, IN_MODES, ranks, 1, "left", itemsize=4)
    largest = max(s.state_size for s in sweep.steps)
    return {"dense_weight_bytes": dense_bytes, "dense_weight_MiB": dense_bytes / MiB,
            "dense_weight_MB": dense_bytes / 1e6,
            "left_sweep_largest_state_elements": largest,
            "left_sweep_largest_state_MiB": largest * 4 / MiB,
            "left_sweep_largest_state_MB": largest * 4 / 1e6,
            "left_sweep_peak_MiB": sweep.peak_bytes / MiB}


def main(argv=None):
    p = P.parser(__doc__.splitlines()[0], blas_threads=0)
    p.add_argument("--repeats", type=int, default=None, help="timed samples (default 7; 3 quick)")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                   help="wait up to S seconds for an idle machine before each measurement")
    args = p.parse_args(argv)
    args.repeats = args.repeats or (3 if args.quick else 7)
    tag = f"_blas{args.blas_threads}" if args.blas_threads else ""   # own JSON and figure
    t0 = time.perf_counter()
    backend = C.Backend(args.device)
    env = P.start(args, backend)
    xp = backend.xp
    dev = "GPU" if args.device == "cupy" else "CPU"

    W = tt.random_matrix(OUT_MODES, IN_MODES, RANK, rng=0, dtype=np.float32, xp=xp)
    Wd = W.full()                                           # 4096 x 25088 float32
    Wd = xp.ascontiguousarray(Wd)
    core_bytes = sum(int(c.nbytes) for c in W.cores)
    print(f"TT fc6: {W!r}\n        {sum(c.size for c in W.cores):,} parameters = "
          f"{core_bytes:,} bytes; dense: {Wd.shape}, {int(Wd.nbytes):,} bytes\n")

    rng = np.random.default_rng(1)
    rows_t, rows_m, raw = [], [], {}
    for B in BATCHES:
        X = xp.asarray(rng.standard_normal((B, 25088)).astype(np.float32))
        WT = W.T
        f_tt = lambda X=X, WT=WT: X @ WT           # noqa: E731
        f_dense = lambda X=X: X @ Wd.T       # noqa: E731
        y_tt, y_d = backend.to_host(f_tt()), backend.to_host(f_dense())
        err = float(np.abs(y_tt - y_d).max() / np.abs(y_d).max())
        t = C.time_many([f_tt, f_dense], repeats=args.repeats, sync=backend.sync,
                        quiet_s=args.wait_quiet)
        plan = W.matmul_plan(B)
        out_bytes = B * 4096 * 4
        if args.device == "cupy":
            meas_tt, _held_tt, _ = cupy_pool_peak(f_tt, backend)
            meas_d, _held_d, _ = cupy_pool_peak(f_dense, backend)
            how = "CuPy pool growth"
        else:
            meas_tt, _ = tracemalloc_peak(f_tt)
            meas_d, _ = tracemalloc_peak(f_dense)
            how = "tracemalloc peak"
        raw[B] = {"tt_s": t[0], "dense_s": t[1], "rel_max_err": err, "plan_flops": plan.flops,
                  "dense_flops": plan.dense_flops, "plan_peak_bytes": plan.peak_bytes,
                  "plan": plan.describe(), "measured_peak_tt_bytes": meas_tt,
                  "measured_peak_dense_bytes": meas_d, "output_bytes": out_bytes,
                  "tt_core_bytes": core_bytes, "dense_weight_bytes": int(Wd.nbytes),
                  "memory_measure": how}
        p_idx = BATCHES.index(B)
        paper_d, paper_t = PAPER_TIMES[(dev, "dense")][p_idx], PAPER_TIMES[(dev, "TT")][p_idx]
        rows_t.append([B, "dense", C.fmt_ms(t[1]["best"]), C.fmt_ms(t[1]["median"]),
                       f"{paper_d:g}", "", C.fmt_bg(t[1]["background_cpu"])])
        rows_t.append([B, "TT rank 4", C.fmt_ms(t[0]["best"]), C.fmt_ms(t[0]["median"]),
                       f"{paper_t:g}", f"{err:.1e}",
                       C.fmt_bg(t[0]["background_cpu"])])
        rows_t.append([B, "dense / TT", f"{t[1]['best'] / t[0]['best']:.1f}x", "",
                       f"{paper_d / paper_t:.1f}x",
                       "", ""])
        rows_m.append([B, "dense", f"{Wd.nbytes / MiB:.1f}", "-", f"{meas_d / MiB:.3f}",
                       f"{out_bytes / MiB:.3f}", "-"])
        rows_m.append([B, "TT rank 4", f"{core_bytes / MiB:.4f}", f"{plan.peak_bytes / MiB:.3f}",
                       f"{meas_tt / MiB:.3f}", f"{out_bytes / MiB:.3f}",
                       f"{meas_tt / plan.peak_bytes:.2f}"])
        del X
    C.print_table(f"Table 3: fc6 25088 -> 4096 inference, float32 [{dev}, {args.device}] | "
                  f"paper ({dev}, as published)",
                  ["batch", "layer", "best ms", "median ms", "paper ms", "TT vs dense err",
                   "bg cpu"], rows_t)
    C.print_table(f"memory (MiB): weights; engine's planned peak of temporaries; {how} of the "
                  f"product (includes the output); output alone",
                  ["batch", "layer", "weights", "planned peak", "measured", "output",
                   "measured / planned"], rows_m)
    expl = paper_numbers_explained()
    print(f"paper's 392 MB dense: the float32 weight, 25088*4096*4 = "
          f"{expl['dense_weight_bytes']:,} bytes = {expl['dense_weight_MiB']:.1f} MiB "
          f"({expl['dense_weight_MB']:.0f} MB decimal)")
    print(f"paper's 0.766 MB TT: the largest intermediate of a left-to-right core-by-core sweep "
          f"for one image, {expl['left_sweep_largest_state_elements']:,} float32 numbers "
          f"(25088/2 * 4 * 4, after the first core turns the mode 2 into 4 with rank 4) = "
          f"{expl['left_sweep_largest_state_MiB']:.3f} MiB; the TT cores themselves are "
          f"{core_bytes:,} bytes = {core_bytes / MiB:.4f} MiB")
    print(f"our planner at batch 1 keeps {raw[1]['plan_peak_bytes'] / MiB:.3f} MiB of "
          f"temporaries at its peak ({raw[1]['plan']})")

    fig = None
    if not args.no_plot:
        fig = plot(raw, dev, P.figure_path("table3_inference", args, tag))
        print(f"figure: {fig.relative_to(C.REPO_ROOT)}")
    payload = {"paper": P.PAPER, "result": "Table 3", "device": dev, "rank": RANK,
               "in_modes": IN_MODES, "out_modes": OUT_MODES,
               "paper_times_ms": {f"{k[0]} {k[1]}": v for k, v in PAPER_TIMES.items()},
               "paper_memory_MB": PAPER_MEMORY_MB, "paper_numbers_explained": expl,
               "batches": {str(k): v for k, v in raw.items()},
               "figure": None if fig is None else str(fig.relative_to(C.REPO_ROOT))}
    P.finish(P.result_name("table3_inference", args, tag), payload, env, args, t0)
    return 0


def plot(raw, dev, path):
    fig = P.new_figure(figsize=(9.5, 4))
    ax1, ax2 = fig.subplots(1, 2)
    labels, vals, colors = [], [], []
    for B in BATCHES:
        i = BATCHES.index(B)
        for layer, key, c in (("dense", "dense_s", "tab:red"), ("TT", "tt_s", "tab:blue")):
            labels.append(f"{layer}\nB={B}")
            vals.append((1e3 * raw[B][key]["best"], PAPER_TIMES[(dev, layer)][i]))
            colors.append(c)
    x = np.arange(len(labels))
    ax1.bar(x - 0.2, [v[0] for v in vals], 0.4, color=colors, label="ours")
    ax1.bar(x + 0.2, [v[1] for v in vals], 0.4, color=colors, alpha=0.35, hatch="//",
            label="paper")
    ax1.set_xticks(x)
    ax1.set_xticklabels(labels, fontsize=8)
    ax1.set_yscale("log")
    ax1.set_ylabel("ms per product")
    ax1.set_title(f"fc6 inference time on the {dev} (solid: ours, hatched: paper)", fontsize=9)
    ax1.grid(True, axis="y", which="both", alpha=0.3)
    mem = [("dense\nweight", raw[1]["dense_weight_bytes"]),
           ("TT\ncores", raw[1]["tt_core_bytes"]),
           ("TT temp.\nB=1\nplanned", raw[1]["plan_peak_bytes"]),
           ("TT temp.\nB=1\nmeasured", raw[1]["measured_peak_tt_bytes"]),
           ("TT temp.\nB=100\nplanned", raw[100]["plan_peak_bytes"]),
           ("TT temp.\nB=100\nmeasured", raw[100]["measured_peak_tt_bytes"])]
    ax2.bar(range(len(mem)), [m[1] / MiB for m in mem], color="tab:gray")
    for k, ref in (("dense", 392), ("TT", 0.766)):
        ax2.axhline(ref, ls="--", lw=1, color="black")
        ax2.text(1.5, ref, f"paper {k}: {ref} MB", ha="center", va="bottom", fontsize=8)
    ax2.set_xticks(range(len(mem)))
    ax2.set_xticklabels([m[0] for m in mem], fontsize=8)
    ax2.set_yscale("log")
    ax2.set_ylabel("MiB")
    ax2.set_title("memory", fontsize=9)
    ax2.grid(True, axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


if __name__ == "__main__":
    sys.exit(main())

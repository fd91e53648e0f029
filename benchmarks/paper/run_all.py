"""Run the five paper-reproduction scripts (Novikov et al., NIPS 2015) one after another.

Each script runs in its own Python process (so that one's memory and BLAS settings do not
leak into the next); its output streams through, and the wall time of each and of all is
reported at the end and written to ``benchmarks/results/paper_run_all[_quick].json``.

    python benchmarks/paper/run_all.py            # full mode (about 15 minutes on 2 CPU cores)
    python benchmarks/paper/run_all.py --quick    # every script on tiny settings (< 2 minutes)
    python benchmarks/paper/run_all.py --only table2_vgg,table3_inference
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["table2_vgg", "table3_inference", "figure1_mnist", "two_layer", "compress_dense"]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="pass --quick to every script")
    p.add_argument("--device", choices=("numpy", "cupy"), default="numpy")
    p.add_argument("--only", default=None, help="comma-separated subset of " + ", ".join(SCRIPTS))
    p.add_argument("--no-json", action="store_true")
    args, extra = p.parse_known_args(argv)
    names = SCRIPTS if args.only is None else [s.strip() for s in args.only.split(",")]
    unknown = [n for n in names if n not in SCRIPTS]
    if unknown:
        p.error(f"unknown script(s) {unknown}; choose from {SCRIPTS}")
    flags = (["--quick"] if args.quick else []) + ["--device", args.device] + \
        (["--no-json"] if args.no_json else []) + extra
    times, codes = {}, {}
    t_all = time.perf_counter()
    for name in names:
        cmd = [sys.executable, str(HERE / f"{name}.py"), *flags]
        print(f"\n######## {name}: {' '.join(cmd[1:])}", flush=True)
        t0 = time.perf_counter()
        codes[name] = subprocess.call(cmd)
        times[name] = time.perf_counter() - t0
        print(f"######## {name}: exit {codes[name]}, {times[name]:.1f} s", flush=True)
    total = time.perf_counter() - t_all
    print("\n== wall time per script" + (" (--quick)" if args.quick else ""))
    for name in names:
        print(f"{name:<18} {times[name]:8.1f} s   exit {codes[name]}")
    print(f"{'total':<18} {total:8.1f} s")
    if not args.no_json:
        sys.path.insert(0, str(HERE.parent))
        import _common as C  # noqa: PLC0415

        C.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        out = C.RESULTS_DIR / ("paper_run_all" + ("_quick" if args.quick else "") +
                               ("" if args.device == "numpy" else f"_{args.device}") + ".json")
        with open(out, "w") as f:
            json.dump({"argv": sys.argv, "quick": args.quick, "device": args.device,
                       "wall_s": times, "exit": codes, "total_s": total,
                       "cpu_count": __import__("os").cpu_count(),
                       "loadavg_at_end": list(__import__("os").getloadavg())}, f, indent=2)
            f.write("\n")
        print(f"results: {out.relative_to(C.REPO_ROOT)}")
    return 0 if all(c == 0 for c in codes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

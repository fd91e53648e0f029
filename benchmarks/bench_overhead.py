"""Per-call cost on tiny TTs: each operation beside a hand-written NumPy loop doing the same
arithmetic, in the same process.

Run from the repository root::

    python benchmarks/bench_overhead.py            # d = 6, modes 2, rank 2, float64
    python benchmarks/bench_overhead.py --quick

On tiny objects the arithmetic is a few hundred FLOPs, so what is timed is the fixed cost of a
call: argument handling, backend lookups, Python-level bookkeeping, extra passes for the
magnitude safeguards.  The reference for each operation is the shortest plain loop over the
cores that performs the same products (the same GEMMs, no validation, no scaling; for the
norm, the Gram sweep ``L <- sum_i G[i]^T L G[i]`` that ``a.norm()`` runs), so the ratio says
how much the library adds on top of the arithmetic.  Target: within 3x.  The dense
``numpy.dot`` of the two full vectors is printed as a second reference.  ``X @ W.T`` and the
``TTLinear`` forward + backward on the same tiny shapes are in ``bench_layer.py`` (case
``tiny``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402


def _hand_dot(a, b):
    v = None
    for x, y in zip(a, b):
        ra, n, ra1 = x.shape
        rb, _, rb1 = y.shape
        if v is None:
            v = x.reshape(n, ra1).T @ y.reshape(n, rb1)
        else:
            t = v.T @ x.reshape(ra, n * ra1)
            v = t.reshape(rb * n, ra1).T @ y.reshape(rb * n, rb1)
    return v[0, 0]


def _hand_norm(a):
    """The Gram sweep of ``a.norm()``: ``L <- sum_i G[i]^T L G[i]``, two GEMMs per core."""
    v = None
    for c in a:
        r0, n, r1 = c.shape
        if v is None:
            v = c.reshape(r0 * n, r1).T @ c.reshape(r0 * n, r1)
        else:
            v = c.reshape(r0 * n, r1).T @ (v @ c.reshape(r0, n * r1)).reshape(r0 * n, r1)
    return float(np.sqrt(v[0, 0]))


def _hand_add(a, b):
    d = len(a)
    out = []
    for k, (x, y) in enumerate(zip(a, b)):
        if k == 0:
            out.append(np.concatenate([x, y], axis=2))
        elif k == d - 1:
            out.append(np.concatenate([x, y], axis=0))
        else:
            c = np.zeros((x.shape[0] + y.shape[0], x.shape[1], x.shape[2] + y.shape[2]))
            c[:x.shape[0], :, :x.shape[2]] = x
            c[x.shape[0]:, :, x.shape[2]:] = y
            out.append(c)
    return out


def main(argv=None):
    parser = C.base_parser(__doc__.splitlines()[0])
    parser.set_defaults(dtype="float64")
    args = parser.parse_args(argv)
    tt = C.import_tensortrain()
    env = C.environment(C.Backend("numpy"))
    C.print_environment(env)
    repeats = args.repeats or (3 if args.quick else 9)
    a = tt.random_tensor((2,) * 6, 2, rng=0)
    b = tt.random_tensor((2,) * 6, 2, rng=1)
    af, bf = a.full().reshape(-1), b.full().reshape(-1)
    cases = [
        ("dot(a, b)", lambda: tt.dot(a, b), lambda: _hand_dot(a.cores, b.cores)),
        ("a.norm()", a.norm, lambda: _hand_norm(a.cores)),
        ("a + b", lambda: a + b, lambda: _hand_add(a.cores, b.cores)),
    ]
    rows, results = [], []
    for name, fn, ref in cases:
        t = C.time_many([fn, ref, lambda: float(np.dot(af, bf))], repeats=repeats,
                        quiet_s=args.wait_quiet)
        ratio = t[0]["best"] / t[1]["best"]
        rows.append([name, f"{t[0]['best'] * 1e6:.1f}", f"{t[1]['best'] * 1e6:.1f}",
                     f"{ratio:.1f}x", f"{t[2]['best'] * 1e6:.2f}",
                     "pass" if ratio <= 3 else "over 3x"])
        results.append({"op": name, "tensortrain_s": t[0], "hand_loop_s": t[1],
                        "dense_dot_s": t[2], "ratio": ratio})
    C.print_table("per-call cost, d = 6, modes 2, rank 2, float64 (us, best of samples)",
                  ["operation", "tensortrain", "hand loop", "ratio", "dense dot", "<= 3x"], rows)
    if not args.no_json:
        path = C.write_results(C.result_name("bench_overhead", args), {"cases": results}, env,
                               args)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""tensortrain side by side with the peer TT libraries: same inputs, one process per library.

Run from the repository root, with any Python that has NumPy (the peers that are not
installed are skipped with a note)::

    python benchmarks/bench_peers.py                 # full run (a few minutes with every peer)
    python benchmarks/bench_peers.py --quick         # smoke run: 2 repeats, smaller budgets
    python benchmarks/bench_peers.py --only matvec --only torchtt   # a subset
    python benchmarks/bench_peers.py --list          # the cases, groups and libraries
    python benchmarks/bench_peers.py --rounds 3      # every library 3 times, interleaved

The peers belong in a scratch virtual environment, never in the project's dependencies
(torch is pinned to the CPU build this machine has on disk; an unpinned torch pulls a
multi-GB CUDA build)::

    python3 -m venv /work/peers-venv
    /work/peers-venv/bin/pip install torch==2.13.0            # first, and by this version
    /work/peers-venv/bin/pip install torchTT tntorch tensorly tensorly-torch quimb teneva
    /work/peers-venv/bin/pip install tensorflow-cpu t3f
    /work/peers-venv/bin/pip install threadpoolctl
    /work/peers-venv/bin/pip install --no-deps -e .            # tensortrain itself
    /work/peers-venv/bin/python benchmarks/bench_peers.py

How it works.  The parent (this script) draws every input once from fixed seeds, saves them to
a temporary ``.npz`` and computes the float64 references.  Then, for tensortrain and for each
installed peer in turn, it starts ``benchmarks/_peers/worker.py`` with the same interpreter
(``sys.executable``); the worker limits the thread pools (``--threads``, default 2: the
``*_NUM_THREADS`` variables, threadpoolctl, ``torch.set_num_threads``, TensorFlow's pools),
imports only its own library, builds that library's objects from the inputs, and times each
operation (untimed warm-up calls, then the median of ``--repeats`` samples; calls under 2 ms
are looped within a sample).  Results come back as NumPy arrays in tensortrain's core layout
and the parent measures every error against its references.  With ``--rounds R`` the whole
sequence of workers runs ``R`` times, in alternating order (forward, reversed, ...), so that a
burst of load on the shared machine hits every library alike; each time is then the median of
the rounds' medians, and the speed-up column also gives the worst round's ratio (the fastest
peer of that round over tensortrain's time in the same round).  An operation a library lacks is
reported as ``n/a`` with the reason, and a library's substitutions (no ``eps`` option, no
TT-matrix SVD, no layer class, ...) are listed in the notes.

Cases (``--only`` takes a case id, a group, or a library name; tensortrain always runs):

* ``svd``: TT-SVD of a (4,)^10 tensor of TT-rank 8 plus 1e-10 relative noise, ``eps=1e-8``;
  TT-SVD of a random 1024 x 1024 matrix, modes (4,8,8,4) x (4,8,8,4), ``max_rank=16``.
* ``round``: ``round(x + y)`` for random TTs of modes (8,)^12 and ranks 20 and 20, ``eps=1e-8``.
* ``norm``: norm of a random (8,)^20 TT of rank 30.
* ``matvec`` (float32): ``X @ W.T`` for fc6 (25088 -> 4096, modes (4,)^6 x (2,7,8,8,7,4),
  ranks 4) at batch 1 and 100, and 1024 x 1024 (modes (4,8,8,4)^2, rank 8) at batch 256.
* ``layer`` (float32): forward and backward of a TT layer (gradients of ``sum(y * G)``
  w.r.t. the cores and the input), fc6 at batch 100 and 1024 x 1024 rank 8 at batch 256.
* ``tiny`` (float64, d = 6, modes 2, ranks 2): ``X @ W.T`` at batch 1, ``dot``, ``norm``,
  ``(a + a).round()``, ``from_dense`` of a 2^6 tensor: the fixed cost of one call.

References, in the parent: the inputs themselves (TT-SVD), the exact sum ``x + y`` in float64
(rounding), a Gram sweep in extended precision (``np.longdouble``) for the norm, and float64
products for the float32 rows (dense NumPy for the 1024 x 1024 layer and the tiny matrix;
tensortrain's float64 contraction for fc6, whose dense matrix has 103 million entries).  The
``dense NumPy`` column times ``X @ Wd.T`` (and, for the layer rows, ``X @ Wd.T``, ``G @ Wd``
and ``G.T @ X``) in this process, with the same thread limit (fc6 is skipped with ``--quick``).

Output: the tables (time, errors, notes) and ``benchmarks/results/bench_peers.json``
(``_only`` is added to the name with ``--only``, ``_t<N>`` with ``--threads N`` other than 2,
``_quick`` with ``--quick``): environment, CPU, BLAS and thread counts of the parent and of
every worker, the versions of every library, all timings and errors.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402
from _peers import spec  # noqa: E402

WORKER = C.BENCH_DIR / "_peers" / "worker.py"
TT_RANK_CASES = {"svd_tensor", "svd_matrix", "round_sum", "tiny_round", "tiny_from_dense"}


# ---- command line ------------------------------------------------------------------------------
def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 2 repeats, 1 warm-up, 3 s per case at most")
    p.add_argument("--only", action="append", default=[], metavar="NAME",
                   help="a case id, a group (svd, round, norm, matvec, layer, tiny) or a "
                        "library; repeatable or comma-separated (tensortrain always runs)")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed samples per case (default 7, or 2 with --quick)")
    p.add_argument("--threads", type=int, default=2,
                   help="thread limit of every worker and of the dense reference (default 2)")
    p.add_argument("--timeout", type=float, default=None, metavar="S",
                   help="seconds before a worker is stopped (default 1800, 300 with --quick)")
    p.add_argument("--rounds", type=int, default=1, metavar="R",
                   help="run every library R times, in alternating order (forward, then "
                        "reversed, ...); times are medians over the rounds, and the speed-up "
                        "column gives the median and the worst round's (default 1)")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                   help="before each timed case wait up to S seconds for other processes to "
                        "leave the CPUs idle (default 0: measure at once)")
    p.add_argument("--list", action="store_true", help="list the cases and libraries and exit")
    p.add_argument("--markdown", action="store_true",
                   help="also print the time and error tables as Markdown")
    p.add_argument("--keep", action="store_true",
                   help="keep the temporary folder (inputs, worker outputs) and print its path")
    p.add_argument("--no-json", action="store_true", help="do not write the JSON file")
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error(f"--rounds must be >= 1, got {args.rounds}")
    args.repeats = args.repeats or (2 if args.quick else 7)
    args.timeout = args.timeout or (300.0 if args.quick else 1800.0)
    return args


def select(only):
    """(case ids, library names) selected by the ``--only`` tokens."""
    tokens = [t.strip() for item in only for t in item.split(",") if t.strip()]
    cases, libs = [], []
    for t in tokens:
        if t in spec.CASE_BY_ID:
            cases.append(t)
        elif t in spec.GROUPS:
            cases.extend(spec.GROUPS[t])
        elif t in spec.LIBRARY_BY_NAME:
            libs.append(t)
        else:
            choices = sorted(spec.CASE_BY_ID) + sorted(spec.GROUPS) + sorted(spec.LIBRARY_BY_NAME)
            raise SystemExit(f"--only {t!r}: not a case, group or library; one of "
                             + ", ".join(choices))
    case_ids = [c.id for c in spec.CASES if not cases or c.id in cases]
    lib_names = [lib.name for lib in spec.LIBRARIES
                 if lib.name == "tensortrain" or not libs or lib.name in libs]
    return case_ids, lib_names


# ---- inputs and references ----------------------------------------------------------------------
def _save_cores(data, prefix, cores):
    for k, c in enumerate(cores):
        data[f"{prefix}__{k}"] = np.ascontiguousarray(c)


def _gram_norm_longdouble(cores):
    """||a|| by a Gram sweep in extended precision (an independent reference)."""
    L = np.ones((1, 1), dtype=np.longdouble)
    for c in cores:
        c = c.astype(np.longdouble)
        t = np.tensordot(L, c, axes=(0, 0))                   # (b, n, r')
        L = np.tensordot(t, c, axes=([0, 1], [0, 1]))         # (r', r')
    return float(np.sqrt(L[0, 0]))


def make_inputs(case_ids, tt):
    """Inputs (saved for the workers) and float64 references (kept here), per case."""
    want = set(case_ids)
    data, ref = {}, {}
    f64 = np.float64

    if "svd_tensor" in want:
        exact = tt.random_tensor((4,) * 10, 8, rng=0, dtype=f64).full()
        rng = np.random.default_rng(2024)
        noise = rng.standard_normal(exact.shape)
        noise *= 1e-10 * np.linalg.norm(exact) / np.linalg.norm(noise)
        data["svd_tensor__A"] = exact + noise
        ref["svd_tensor"] = data["svd_tensor__A"]
    if "svd_matrix" in want:
        data["svd_matrix__M"] = np.random.default_rng(11).standard_normal((1024, 1024))
        ref["svd_matrix"] = data["svd_matrix__M"]
    if "round_sum" in want:
        x = tt.random_tensor((8,) * 12, 20, rng=1, dtype=f64)
        y = tt.random_tensor((8,) * 12, 20, rng=2, dtype=f64)
        _save_cores(data, "round_sum__x", x.cores)
        _save_cores(data, "round_sum__y", y.cores)
        s = x + y
        ref["round_sum"] = (s, s.norm())
    if "norm" in want:
        a = tt.random_tensor((8,) * 20, 30, rng=3, dtype=f64)
        _save_cores(data, "norm__a", a.cores)
        ref["norm"] = _gram_norm_longdouble(a.cores)

    from tensortrain.gradients import matmul_vjp  # noqa: PLC0415

    layers = {"fc6": ((4,) * 6, (2, 7, 8, 8, 7, 4), 4, {"X1": 1, "X100": 100}, ("G100",)),
              "m1024": ((4, 8, 8, 4), (4, 8, 8, 4), 8, {"X256": 256}, ("G256",))}
    uses = {"fc6": [c for c in want if "fc6" in c], "m1024": [c for c in want if "1024" in c]}
    for key, (rm, cm, rank, xs, gs) in layers.items():
        if not uses[key]:
            continue
        W = tt.random_matrix(rm, cm, rank, rng=0, dtype=np.float32)
        _save_cores(data, f"{key}__W", W.cores)
        W64 = tt.TTMatrix([c.astype(f64) for c in W.cores])
        rng = np.random.default_rng(12 if key == "fc6" else 13)
        for name, b in xs.items():
            data[f"{key}__{name}"] = rng.standard_normal((b, W.shape[1])).astype(np.float32)
        for name in gs:
            data[f"{key}__{name}"] = rng.standard_normal(
                (int(name[1:]), W.shape[0])).astype(np.float32)
        dense = key == "m1024"          # fc6's dense matrix would have 103 million entries
        Wd64 = W64.full() if dense else None
        for case in uses[key]:
            if case.startswith("matvec"):
                X = data[f"{key}__X{case.rsplit('_b', 1)[1]}"].astype(f64)
                ref[case] = X @ Wd64.T if dense else X @ W64.T
            else:
                b = case.rsplit("_b", 1)[1]
                X = data[f"{key}__X{b}"].astype(f64)
                G = data[f"{key}__G{b}"].astype(f64)
                y, dx, dcores = matmul_vjp(W64, X, G)
                if dense:                # cross-check the VJP's y and dX against dense products
                    y, dx = X @ Wd64.T, G @ Wd64
                ref[case] = (y, dx, dcores)

    if want & set(spec.GROUPS["tiny"]):
        W = tt.random_matrix((2,) * 6, (2,) * 6, 2, rng=5, dtype=f64)
        a = tt.random_tensor((2,) * 6, 2, rng=6, dtype=f64)
        b = tt.random_tensor((2,) * 6, 2, rng=7, dtype=f64)
        T = tt.random_tensor((2,) * 6, 2, rng=8, dtype=f64).full()
        _save_cores(data, "tiny__W", W.cores)
        _save_cores(data, "tiny__a", a.cores)
        _save_cores(data, "tiny__b", b.cores)
        data["tiny__X"] = np.random.default_rng(14).standard_normal((1, 64))
        data["tiny__T"] = T
        Wd, af, bf = W.full(), a.full(), b.full()
        ref["tiny_matvec"] = data["tiny__X"] @ Wd.T
        ref["tiny_dot"] = float(np.dot(af.ravel(), bf.ravel()))
        ref["tiny_norm"] = float(np.linalg.norm(af))
        ref["tiny_round"] = 2 * af
        ref["tiny_from_dense"] = T
    return data, ref


def dense_references(case_ids, data, tt, args):
    """``dense NumPy`` column: the dense product (and layer gradients) in this process."""
    out = {}
    for case in case_ids:
        if not (case.startswith(("matvec", "layer")) or case == "tiny_matvec"):
            continue
        if "fc6" in case and args.quick:
            out[case] = {"skipped": "fc6 dense matrix not formed with --quick"}
            continue
        key = "tiny" if case == "tiny_matvec" else ("fc6" if "fc6" in case else "m1024")
        W = tt.TTMatrix([data[f"{key}__W__{k}"] for k in range(_ncores(data, f"{key}__W"))])
        Wd = W.full()
        if case == "tiny_matvec":
            X = data["tiny__X"]
            fn = (lambda X=X, Wd=Wd: X @ Wd.T)
        else:
            b = case.rsplit("_b", 1)[1]
            X = data[f"{key}__X{b}"]
            if case.startswith("matvec"):
                fn = (lambda X=X, Wd=Wd: X @ Wd.T)
            else:
                G = data[f"{key}__G{b}"]
                fn = (lambda X=X, G=G, Wd=Wd: (X @ Wd.T, G @ Wd, G.T @ X))
        out[case] = C.time_fn(fn, repeats=args.repeats, warmup=2, quiet_s=args.wait_quiet)
        del Wd, fn
    return out


def _ncores(data, prefix):
    k = 0
    while f"{prefix}__{k}" in data:
        k += 1
    return k


# ---- workers ----------------------------------------------------------------------------------
def available(lib):
    """None if the library can be tried, else why it is skipped."""
    missing = [m for m in lib.modules if importlib.util.find_spec(m) is None]
    if lib.name == "tensortrain" and missing == ["tensortrain"]:
        return None                    # the worker imports it from the repository root
    if missing:
        return f"not installed (no module {', '.join(missing)}): {lib.install}"
    return None


def dist_versions(lib):
    out = {}
    for dist in lib.dists:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def run_worker(lib, case_ids, tmp, args):
    cmd = [sys.executable, str(WORKER), "--library", lib.name, "--inputs",
           str(tmp / "inputs.npz"), "--out", str(tmp), "--cases", ",".join(case_ids),
           "--repeats", str(args.repeats), "--warmup", "1" if args.quick else "2",
           "--case-budget", "3" if args.quick else "30", "--threads", str(args.threads),
           "--wait-quiet", str(args.wait_quiet)]
    env = dict(os.environ)
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                "NUMBA_NUM_THREADS"):
        env[var] = str(args.threads)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env, cwd=str(C.REPO_ROOT))
    expired = threading.Event()

    def stop():
        expired.set()
        proc.kill()

    timer = threading.Timer(args.timeout, stop)
    timer.start()
    log = []
    try:
        for line in proc.stdout:
            if line.startswith(f"[{lib.name}]"):
                print("  " + line.rstrip(), flush=True)
            else:
                log.append(line.rstrip())
        proc.wait()
    finally:
        timer.cancel()
    wall = time.perf_counter() - t0
    path = tmp / f"{lib.name}.json"
    if expired.is_set() or not path.exists():
        why = (f"stopped after {args.timeout:.0f} s (--timeout)" if expired.is_set()
               else f"worker exited with code {proc.returncode}")
        return {"status": "failed", "reason": why, "log_tail": log[-30:], "wall_s": wall}, {}
    doc = json.loads(path.read_text())
    doc["log_tail"] = log[-30:]
    doc["wall_s_total"] = wall
    if "error" in doc:
        doc["status"] = "failed"
        doc["reason"] = f"cannot start: {doc['error']}"
        return doc, {}
    doc["status"] = "ran"
    npz = np.load(tmp / f"{lib.name}.npz")
    return doc, {k: npz[k] for k in npz.files}


# ---- errors -----------------------------------------------------------------------------------
def _rel(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"result of shape {a.shape}, expected {b.shape}")
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def _cores(arrays, case, key="cores"):
    out, k = [], 0
    while f"{case}__{key}__{k}" in arrays:
        out.append(arrays[f"{case}__{key}__{k}"].astype(np.float64))
        k += 1
    return out


def case_error(case, rec, arrays, ref, tt):
    """(relative error, parts) of one library's result against the reference."""
    if case in ("svd_tensor", "tiny_round", "tiny_from_dense"):
        return _rel(tt.TTTensor(_cores(arrays, case)).full(), ref[case]), None
    if case == "svd_matrix":
        return _rel(tt.TTMatrix(_cores(arrays, case)).full(), ref[case]), None
    if case == "round_sum":
        s, s_norm = ref[case]
        r = tt.TTTensor(_cores(arrays, case))
        return float((s - r).norm() / s_norm), None
    if case in ("norm", "tiny_dot", "tiny_norm"):
        return abs(rec["value"] - ref[case]) / abs(ref[case]), None
    if case.startswith("matvec") or case == "tiny_matvec":
        return _rel(arrays[f"{case}__y"], ref[case]), None
    if case.startswith("layer"):
        y, dx, dcores = ref[case]
        got = _cores(arrays, case, "dcores")
        if len(got) != len(dcores):
            raise ValueError(f"{len(got)} core gradients, expected {len(dcores)}")
        num = math.sqrt(sum(float(np.linalg.norm(g - d)) ** 2 for g, d in zip(got, dcores)))
        den = math.sqrt(sum(float(np.linalg.norm(d)) ** 2 for d in dcores))
        parts = {"y": _rel(arrays[f"{case}__y"], y), "dx": _rel(arrays[f"{case}__dx"], dx),
                 "dcores": num / den}
        return max(parts.values()), parts
    raise KeyError(case)


# ---- tables -----------------------------------------------------------------------------------
def _fmt_err(e):
    return "0" if e == 0 else f"{e:.1e}"


def build_tables(case_ids, libs, results, dense, lib_status):
    time_rows, err_rows, summary = [], [], []
    for case in case_ids:
        c = spec.CASE_BY_ID[case]
        row = [c.title, c.dtype]
        erow = [c.title]
        peer_best = None
        tt_t = None
        bg = []
        for name in libs:
            r = results.get(case, {}).get(name)
            if lib_status[name]["status"] == "skipped":
                row.append("skip")
                erow.append("skip")
                continue
            if r is None:
                row.append("fail")
                erow.append("fail")
                continue
            if r["status"] == "ok":
                t = r["time"]["median"]
                bg.append(r["time"].get("background_cpu"))
                row.append(C.fmt_ms(t))
                if name == "tensortrain":
                    tt_t = t
                elif peer_best is None or t < peer_best[1]:
                    peer_best = (name, t)
                e = r.get("rel_err")
                cell = "err?" if e is None else _fmt_err(e)
                if r.get("ranks") and case in TT_RANK_CASES:
                    cell += f" r{max(r['ranks'])}"
                erow.append(cell)
            else:
                row.append("n/a" if r["status"] == "n/a" else "fail")
                erow.append(row[-1])
        d = dense.get(case)
        row.append(C.fmt_ms(d["median"]) if d and "median" in d else "-")
        worst = None
        if peer_best:
            row.append(f"{peer_best[0]} {C.fmt_ms(peer_best[1])}")
            speed = peer_best[1] / tt_t if tt_t else None
            rounds = _round_speedups(results.get(case, {}), libs)
            worst = min(rounds) if len(rounds) > 1 else None
            cell = "-" if not speed else _fmt_speed(speed)
            if speed and worst is not None:
                cell += f" (worst {_fmt_speed(worst)})"
            row.append(cell)
        else:
            row += ["-", "-"]
            speed = None
        bgs = [b for b in bg if b is not None]
        row.append(C.fmt_bg(max(bgs)) if bgs else "-")
        time_rows.append(row)
        err_rows.append(erow)
        summary.append({"case": case, "tensortrain_s": tt_t,
                        "fastest_peer": peer_best[0] if peer_best else None,
                        "fastest_peer_s": peer_best[1] if peer_best else None,
                        "tensortrain_speedup": speed,
                        "tensortrain_speedup_worst_round": worst})
    return time_rows, err_rows, summary


def _fmt_speed(x):
    return f"{x:.2f}x" if x < 10 else f"{x:.0f}x"


def _round_speedups(by_lib, libs):
    """Per round: the fastest peer's median of that round over tensortrain's (rounds that
    every timed library completed)."""
    tt_rec = by_lib.get("tensortrain")
    if tt_rec is None or tt_rec.get("status") != "ok":
        return []
    tt_rounds = tt_rec["time"].get("rounds", [])
    peers = [by_lib[n]["time"].get("rounds", []) for n in libs
             if n != "tensortrain" and n in by_lib and by_lib[n].get("status") == "ok"]
    if not peers:
        return []
    n = min([len(tt_rounds)] + [len(p) for p in peers])
    return [min(p[i] for p in peers) / tt_rounds[i] for i in range(n) if tt_rounds[i] > 0]


def markdown(headers, rows):
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _run_library(name, rnd, case_ids, tmp, args, lib_status, results, ref, tt):
    """One worker run of library ``name`` (round ``rnd``): the first round's records are kept
    whole (errors included); later rounds add their median to ``time['rounds']``."""
    lib = spec.LIBRARY_BY_NAME[name]
    st = lib_status[name]
    if st["status"] in ("skipped", "failed"):
        if rnd == 0:
            print(f"{name}: skipped, {st['reason']}")
        return
    print(f"{name}: worker started", flush=True)
    doc, arrays = run_worker(lib, case_ids, tmp, args)
    if rnd == 0:
        st.update(doc)
    if doc.get("status") != "ran":
        st.update({"status": "failed", "reason": doc.get("reason", "")})
        print(f"{name}: FAILED, {st['reason']}")
        for line in doc.get("log_tail", [])[-8:]:
            print("    " + line)
        for case in case_ids:                 # a library that fails in any round is out
            results[case].pop(name, None)
        return
    for case, rec in doc["cases"].items():
        if rnd > 0:
            first = results[case].get(name)
            if first is not None and rec["status"] == "ok" and first["status"] == "ok":
                first["time"]["rounds"].append(rec["time"]["median"])
                first["time"]["median"] = float(np.median(first["time"]["rounds"]))
                first["time"]["best"] = min(first["time"]["best"], rec["time"]["best"])
            continue
        if rec["status"] == "ok":
            rec["time"]["rounds"] = [rec["time"]["median"]]
            try:
                rec["rel_err"], parts = case_error(case, rec, arrays, ref, tt)
                if parts:
                    rec["rel_err_parts"] = parts
            except Exception as exc:  # noqa: BLE001 - a wrong layout is a finding
                rec["rel_err"] = None
                rec["error_check_failed"] = f"{type(exc).__name__}: {exc}"
        results[case][name] = rec


# ---- main -------------------------------------------------------------------------------------
def main(argv=None):
    args = parse_args(argv)
    if args.list:
        for c in spec.CASES:
            print(f"{c.id:18s} {c.group:7s} {c.dtype:8s} {c.title}: {c.detail}")
        for lib in spec.LIBRARIES:
            print(f"library {lib.name:12s} {available(lib) or 'installed'}")
        return 0
    case_ids, lib_names = select(args.only)
    t_start = time.perf_counter()
    tt = C.import_tensortrain()
    env = C.environment()
    C.print_environment(env)
    monitor = C.RunMonitor()

    lib_status = {}
    for name in lib_names:
        lib = spec.LIBRARY_BY_NAME[name]
        why = available(lib)
        lib_status[name] = {"status": "skipped" if why else "pending", "reason": why,
                            "dist_versions": dist_versions(lib)}
    print(f"cases: {', '.join(case_ids)}")
    print("libraries: " + ", ".join(f"{n}" + (" (skipped: not installed)"
                                               if lib_status[n]["status"] == "skipped" else "")
                                     for n in lib_names))
    print(f"timing: median of {args.repeats} samples after warm-up, one process per library, "
          f"{args.threads} threads (*_NUM_THREADS, threadpoolctl, torch, TensorFlow)"
          + (f"; {args.rounds} rounds, medians over the rounds" if args.rounds > 1 else "")
          + "\n")

    limiter = None
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415

        limiter = threadpool_limits(limits=args.threads)
    except ImportError:
        pass
    t0 = time.perf_counter()
    data, ref = make_inputs(case_ids, tt)
    print(f"inputs and float64 references: {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    dense = dense_references(case_ids, data, tt, args)
    if dense:
        print(f"dense NumPy references timed: {time.perf_counter() - t0:.1f} s")
    if limiter is not None:
        limiter.restore_original_limits()

    tmp = Path(tempfile.mkdtemp(prefix="bench_peers_"))
    results = {case: {} for case in case_ids}
    try:
        np.savez(tmp / "inputs.npz", **data)
        del data
        for rnd in range(args.rounds):
            order = lib_names if rnd % 2 == 0 else lib_names[::-1]
            if args.rounds > 1:
                print(f"-- round {rnd + 1} of {args.rounds}: {', '.join(order)}")
            for name in order:
                _run_library(name, rnd, case_ids, tmp, args, lib_status, results, ref, tt)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    print()
    time_rows, err_rows, summary = build_tables(case_ids, lib_names, results, dense, lib_status)
    time_headers = (["operation", "dtype"] + [f"{n} ms" for n in lib_names]
                    + ["dense NumPy ms", "fastest peer (ms)", "tt speed-up", "bg cpu"])
    C.print_table("time per call, median (ms); 'tt speed-up' = fastest peer / tensortrain, "
                  "above 1x tensortrain is faster", time_headers, time_rows)
    err_headers = ["operation"] + lib_names
    C.print_table("relative error against the float64 references (rN: largest TT-rank of the "
                  "result)", err_headers, err_rows)
    note_rows = []
    for name in lib_names:
        st = lib_status[name]
        if st["status"] in ("skipped", "failed"):
            note_rows.append([name, "(all)", st["status"], st.get("reason", "")])
            continue
        for case in case_ids:
            rec = results[case].get(name)
            if rec is None:
                continue
            text = rec.get("reason") if rec["status"] != "ok" else rec.get("note", "")
            if rec.get("error_check_failed"):
                text += f"  [error check failed: {rec['error_check_failed']}]"
            note_rows.append([name, case, rec["status"], text])
    C.print_table("what each library ran (ok), or why not (n/a, failed, skipped)",
                  ["library", "case", "status", "call / reason"], note_rows)
    if args.markdown:
        print(markdown(time_headers, time_rows))
        print()
        print(markdown(err_headers, err_rows))
        print()

    run, wall = monitor.report(t_start)
    if not args.no_json:
        args.device = "numpy"            # for C.result_name
        libraries = {}
        for name, st in lib_status.items():
            libraries[name] = {k: v for k, v in st.items() if k != "cases"}
        payload = {
            "cases": [vars(spec.CASE_BY_ID[c]) for c in case_ids],
            "libraries": libraries,
            "results": results,
            "dense_numpy": dense,
            "summary": summary,
            "threads": args.threads,
            "repeats": args.repeats,
            "rounds": args.rounds,
            "wall_s": wall,
            "background_cpu": run["background_cpu"],
        }
        name = "bench_peers" + ("_only" if args.only else "") + (
            f"_t{args.threads}" if args.threads != 2 else "")
        path = C.write_results(C.result_name(name, args), payload, env, args)
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Time the cases of ``bench_peers.py`` for one library, in a process of its own.

Started by ``bench_peers.py`` as ``python benchmarks/_peers/worker.py --library NAME ...``
with the parent's interpreter.  It limits the thread pools, imports ``lib_<NAME>.py``, loads
the inputs the parent saved (``--inputs``, an ``.npz``), and for each case

1. asks the adapter for ``(fn, finish, note)``: ``fn()`` is the operation on the library's
   own objects (built from the inputs beforehand, outside the timing), ``finish(out)`` turns
   its result into NumPy arrays in tensortrain's core layout (``cores``, ``y``, ``dx``,
   ``dcores``) or a number (``value``);
2. calls ``fn`` for warm-up, then times it with ``_common.time_fn`` (median and best of the
   repeats; calls under 2 ms are looped within a sample);
3. saves what ``finish`` returned to ``<out>/<library>.npz`` and the timings, notes and
   n/a reasons to ``<out>/<library>.json``.

The parent computes every error against its own float64 references, so a worker only has to
return its library's results faithfully.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(1, str(HERE.parent))

import _common as C  # noqa: E402
import numpy as np  # noqa: E402
import spec  # noqa: E402


class Inputs:
    """The parent's ``.npz``: arrays by key, TT cores by prefix (``prefix__0``, ...)."""

    def __init__(self, path):
        self._z = np.load(path)
        self._keys = set(self._z.files)

    def __getitem__(self, key):
        return self._z[key]

    def cores(self, prefix):
        out = []
        while f"{prefix}__{len(out)}" in self._keys:
            out.append(self._z[f"{prefix}__{len(out)}"])
        if not out:
            raise KeyError(prefix)
        return out


def _progress(library, msg):
    print(f"[{library}] {msg}", flush=True)


def _thread_info(threads):
    info = {"requested": threads}
    try:
        from threadpoolctl import threadpool_info  # noqa: PLC0415

        info["threadpools"] = [
            {k: p.get(k) for k in ("internal_api", "version", "num_threads",
                                   "threading_layer", "architecture", "filepath")}
            for p in threadpool_info()]
    except ImportError:
        info["threadpools"] = None
    return info


def _limit_threads(threads):
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415
    except ImportError:
        return None
    return threadpool_limits(limits=threads)


def _as_numpy(x):
    if isinstance(x, np.ndarray):
        return x
    for attr in ("detach",):            # torch
        if hasattr(x, attr):
            x = x.detach()
    if hasattr(x, "numpy"):             # torch, tensorflow
        return np.asarray(x.numpy())
    return np.asarray(x)


def _builder(adapter, case_id):
    """The adapter's ``case_<id>(inputs)``, or for a product or layer case its ``matvec`` /
    ``layer`` function bound to the case's input arrays (named once, in ``spec.CASES``);
    None when the library provides neither."""
    fn = getattr(adapter, f"case_{case_id}", None)
    if fn is not None:
        return fn
    case = spec.CASE_BY_ID[case_id]
    generic = getattr(adapter, case.kind, None) if case.kind else None
    if generic is None:
        return None
    return lambda inp: generic(inp, *case.inputs)


def _save_outputs(case_id, result, arrays, record):
    for key, val in result.items():
        if key == "value":
            record["value"] = float(_as_numpy(val))
        elif key in ("cores", "dcores"):
            cores = [_as_numpy(c) for c in val]
            for k, c in enumerate(cores):
                arrays[f"{case_id}__{key}__{k}"] = c
            if key == "cores":
                record["ranks"] = [1] + [int(c.shape[-1]) for c in cores]
        else:
            arrays[f"{case_id}__{key}"] = _as_numpy(val)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--library", required=True, choices=[lib.name for lib in spec.LIBRARIES])
    p.add_argument("--inputs", required=True)
    p.add_argument("--out", required=True, help="folder for <library>.json and .npz")
    p.add_argument("--cases", required=True, help="comma-separated case ids")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--warmup", type=int, default=2,
                   help="untimed calls before timing (time_fn adds one more)")
    p.add_argument("--case-budget", type=float, default=30.0, metavar="S",
                   help="fewer repeats (at least 3) when repeats x first call would exceed S")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                   help="before each case wait up to S s for an idle machine (_common)")
    args = p.parse_args(argv)

    lib = spec.LIBRARY_BY_NAME[args.library]
    out_dir = Path(args.out)
    t_start = time.perf_counter()
    doc = {"library": lib.name, "python": sys.version.split()[0], "executable": sys.executable,
           "platform": platform.platform(), "pid": os.getpid(), "cases": {}}
    limiter = None
    try:
        t0 = time.perf_counter()
        adapter = importlib.import_module(f"lib_{lib.name}")
        doc["import_s"] = time.perf_counter() - t0
        doc["setup"] = adapter.setup(args.threads) or {}
        limiter = _limit_threads(args.threads)   # after the imports: every BLAS is loaded
        doc["versions"] = adapter.versions()
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which skips the library
        doc["error"] = f"{type(exc).__name__}: {exc}"
        doc["traceback"] = traceback.format_exc()
        (out_dir / f"{lib.name}.json").write_text(json.dumps(doc, indent=2))
        _progress(lib.name, f"cannot start: {doc['error']}")
        return 1
    doc["threads"] = _thread_info(args.threads)
    inputs = Inputs(args.inputs)
    arrays = {}

    for case_id in args.cases.split(","):
        rec = {"status": "ok"}
        doc["cases"][case_id] = rec
        builder = _builder(adapter, case_id)
        if builder is None:
            rec.update(status="n/a", reason=adapter.NOT_AVAILABLE.get(
                case_id, "not provided by the library"))
            _progress(lib.name, f"{case_id}: n/a")
            continue
        try:
            fn, finish, note = builder(inputs)
            rec["note"] = note
            t0 = time.perf_counter()
            out = fn()                                   # first call: imports, JIT, caches
            first = time.perf_counter() - t0
            for _ in range(max(args.warmup - 1, 0)):
                t0 = time.perf_counter()
                out = fn()
                first = min(first, time.perf_counter() - t0)
            repeats = args.repeats
            if first * repeats > args.case_budget:
                repeats = max(min(3, args.repeats), math.floor(args.case_budget / first))
            rec["first_call_s"] = first
            rec["time"] = C.time_fn(fn, repeats=repeats, warmup=1, quiet_s=args.wait_quiet)
            _save_outputs(case_id, finish(out), arrays, rec)
            _progress(lib.name, f"{case_id}: median {C.fmt_ms(rec['time']['median'])} ms "
                                f"({rec['time']['repeats']} x {rec['time']['inner']})")
        except spec.NotAvailable as exc:
            rec.clear()
            rec.update(status="n/a", reason=str(exc))
            _progress(lib.name, f"{case_id}: n/a ({exc})")
        except Exception as exc:  # noqa: BLE001 - one failing case must not stop the others
            rec.update(status="failed", reason=f"{type(exc).__name__}: {exc}"[:500],
                       traceback=traceback.format_exc()[-3000:])
            _progress(lib.name, f"{case_id}: FAILED {type(exc).__name__}: {exc}"[:300])
        finally:
            fn = finish = out = None  # free the case's objects

    doc["threads_at_end"] = _thread_info(args.threads)   # after imports made by the cases
    doc["wall_s"] = time.perf_counter() - t_start
    np.savez(out_dir / f"{lib.name}.npz", **arrays)
    (out_dir / f"{lib.name}.json").write_text(json.dumps(doc, indent=2, default=str))
    if limiter is not None:
        limiter.restore_original_limits()
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Helpers shared by the benchmark scripts.

Only NumPy is required; ``threadpoolctl`` (BLAS details) and ``cupy`` (``--device cupy``)
are used when present.  Nothing here changes the BLAS configuration or thread counts: the
numbers are measured on the machine as it is set up, and the environment block says how
that is.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"

# OpenBLAS variables that change kernels or blocking; reported, never set here.
_BLAS_ENV_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
_THREAD_ENV_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def import_tensortrain():
    """Import ``tensortrain``, adding the repository root to ``sys.path`` if needed."""
    try:
        import tensortrain  # noqa: PLC0415
    except ImportError:
        sys.path.insert(0, str(REPO_ROOT))
        import tensortrain  # noqa: PLC0415
    return tensortrain


# ---- command line ---------------------------------------------------------------------------
def add_common_options(p, quick_help):
    """The options of every benchmark and paper script: ``--quick``, ``--device``,
    ``--no-json`` (the names :func:`result_name` reads)."""
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--device", choices=("numpy", "cupy"), default="numpy",
                   help="array backend; 'cupy' imports CuPy and runs on the GPU")
    p.add_argument("--no-json", action="store_true", help="do not write the JSON file")
    return p


def base_parser(description):
    """The parser of the timing benchmarks: the common options, ``--dtype``, ``--repeats``
    and ``--wait-quiet``."""
    p = argparse.ArgumentParser(description=description)
    add_common_options(p, "fewer repeats (every case still runs); for a smoke test")
    p.add_argument("--dtype", choices=("float32", "float64", "both"), default="both",
                   help="floating dtype(s) to run (default: both)")
    p.add_argument("--repeats", type=int, default=None,
                   help="timed repeats per measurement (default: 7, or 3 with --quick)")
    p.add_argument("--wait-quiet", type=float, default=0.0, metavar="S",
                   help="before each measurement wait up to S seconds for other processes "
                        "to leave the CPUs idle (default 0: measure at once)")
    return p


def dtypes_from(arg):
    return {"float32": [np.float32], "float64": [np.float64],
            "both": [np.float32, np.float64]}[arg]


class Backend:
    """The array module and how to synchronize it (a no-op for NumPy)."""

    def __init__(self, name):
        self.name = name
        if name == "cupy":
            import cupy  # noqa: PLC0415  (only when asked for)

            self.xp = cupy
            self._dev = cupy.cuda.Device()
            self.sync = self._dev.synchronize
        else:
            self.xp = np
            self.sync = None

    def asarray(self, a):
        return self.xp.asarray(a)

    def to_host(self, a):
        if self.name == "cupy":
            return self.xp.asnumpy(a)
        return np.asarray(a)

    def free(self):
        if self.name == "cupy":
            self.xp.get_default_memory_pool().free_all_blocks()


# ---- environment ----------------------------------------------------------------------------
def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_state():
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "tensortrain"],
                               cwd=REPO_ROOT, capture_output=True, text=True,
                               timeout=5).stdout.strip()
        if not head:
            return None
        return head + (" (tensortrain/ has uncommitted changes)" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return None


def environment(backend=None):
    """A dict describing the machine and libraries; BLAS details via threadpoolctl."""
    env = {
        "python": sys.version.split()[0],
        "python_impl": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "affinity_cpus": (len(os.sched_getaffinity(0))
                          if hasattr(os, "sched_getaffinity") else None),
        "numpy": np.__version__,
    }
    for mod in ("scipy", "opt_einsum"):
        try:
            env[mod] = __import__(mod).__version__
        except ImportError:
            env[mod] = None
    try:
        import tensortrain  # noqa: PLC0415

        env["tensortrain"] = tensortrain.__version__
        env["tensortrain_path"] = str(Path(tensortrain.__file__).resolve().parent)
    except ImportError:
        env["tensortrain"] = None
    env["git"] = _git_state()
    try:
        from threadpoolctl import threadpool_info  # noqa: PLC0415

        # numpy (and scipy, if imported) are loaded by now, so their BLAS shows up
        env["blas"] = [
            {k: info.get(k) for k in ("internal_api", "version", "architecture",
                                      "num_threads", "threading_layer", "prefix", "filepath")}
            for info in threadpool_info()
        ]
        env["threadpoolctl"] = True
    except ImportError:
        env["blas"] = None
        env["threadpoolctl"] = False
    env["env_vars"] = {v: os.environ.get(v) for v in _BLAS_ENV_VARS + _THREAD_ENV_VARS}
    env["loadavg_at_start"] = os.getloadavg() if hasattr(os, "getloadavg") else None
    if backend is not None and backend.name == "cupy":
        cp = backend.xp
        props = cp.cuda.runtime.getDeviceProperties(backend._dev.id)
        name = props["name"]
        env["cupy"] = cp.__version__
        env["gpu"] = name.decode() if isinstance(name, bytes) else str(name)
        env["cuda_runtime"] = cp.cuda.runtime.runtimeGetVersion()
        env["cuda_driver"] = cp.cuda.runtime.driverGetVersion()
        env["gpu_memory_gib"] = round(props["totalGlobalMem"] / 2**30, 1)
    return env


def print_environment(env):
    print("== environment")
    print(f"python      {env['python']} ({env['python_impl']}) on {env['platform']}")
    print(f"cpu         {env['cpu']}, {env['cpu_count']} logical CPUs "
          f"({env['affinity_cpus']} usable), arch {env['machine']}")
    print(f"numpy       {env['numpy']}   scipy {env['scipy']}   opt_einsum {env['opt_einsum']}")
    print(f"tensortrain {env['tensortrain']} from {env.get('tensortrain_path')}"
          + (f", git {env['git']}" if env.get("git") else ""))
    if not env["threadpoolctl"]:
        print("blas        threadpoolctl is not installed: BLAS library, version and thread "
              "count unknown (pip install threadpoolctl)")
    elif not env["blas"]:
        print("blas        threadpoolctl found no loaded BLAS library")
    else:
        for b in env["blas"]:
            print(f"blas        {b['internal_api']} {b['version']}, architecture "
                  f"{b['architecture']}, {b['num_threads']} threads ({b['threading_layer']}), "
                  f"{Path(b['filepath']).name if b['filepath'] else '?'}")
    for var in _BLAS_ENV_VARS + _THREAD_ENV_VARS:
        val = env["env_vars"].get(var)
        shown = "(not set)" if val is None else repr(val)
        note = "  [left as the machine set it]" if var in _BLAS_ENV_VARS else ""
        print(f"env         {var}={shown}{note}")
    if env.get("loadavg_at_start") is not None:
        la1, la5, la15 = env["loadavg_at_start"]
        print(f"load        average {la1:.2f} {la5:.2f} {la15:.2f} (1, 5, 15 min) at start; the "
              "'bg cpu' columns give the share of all CPUs that other processes used while a "
              "row was timed")
    if "gpu" in env:
        print(f"gpu         {env['gpu']}, {env['gpu_memory_gib']} GiB, cupy {env['cupy']}, "
              f"CUDA runtime {env['cuda_runtime']}, driver {env['cuda_driver']}")
    print()


# ---- background load --------------------------------------------------------------------
_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_snapshot():
    """(busy jiffies of the whole machine, jiffies of this process and of its waited-for
    children, steal jiffies, wall).  Children count as this process's own work, so that a
    script that runs its measurements in worker processes (``bench_peers.py``) does not
    report its own workers as background load."""
    try:
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        busy = v[0] + v[1] + v[2] + v[5] + v[6]      # user nice system irq softirq
        steal = v[7] if len(v) > 7 else 0
        with open("/proc/self/stat") as f:
            tail = f.read().rsplit(")", 1)[1].split()
        # utime + stime (all threads) + cutime + cstime (children, once waited for)
        own = int(tail[11]) + int(tail[12]) + int(tail[13]) + int(tail[14])
    except (OSError, ValueError, IndexError):
        return None
    return busy, own, steal, time.perf_counter()


def background_cpu(before, after):
    """Fraction of all CPUs busy with *other* processes (and stolen) between two snapshots.

    A coarse indicator (the kernel counts in 10 ms ticks): 0 on an idle machine, 1.0 when
    other work keeps every CPU busy.  ``None`` where ``/proc`` is not available.
    """
    if before is None or after is None:
        return None
    wall = after[3] - before[3]
    if wall <= 0:
        return None
    ncpu = os.cpu_count() or 1
    other = (after[0] - before[0]) - (after[1] - before[1]) + (after[2] - before[2])
    return max(0.0, other / (_HZ * wall * ncpu))


class RunMonitor:
    """Background CPU over a whole run (see :func:`background_cpu`)."""

    def __init__(self):
        self.start = _cpu_snapshot()
        self.t0 = time.perf_counter()

    def summary(self):
        return {"wall_s": time.perf_counter() - self.t0,
                "background_cpu": background_cpu(self.start, _cpu_snapshot())}

    def report(self, t_start):
        """Print the run's wall time (since ``t_start``) and background CPU; returns
        ``(summary, wall)``."""
        run = self.summary()
        wall = time.perf_counter() - t_start
        print(f"wall time {wall:.1f} s; other processes used {fmt_bg(run['background_cpu'])} "
              f"of the CPUs over the run")
        return run, wall


def wait_quiet(max_wait_s, threshold=0.10, window_s=1.0):
    """Wait (at most ``max_wait_s``) for a ``window_s`` with background CPU below ``threshold``.

    Returns the seconds waited.  The benchmarks share the machine with whatever else runs;
    this only avoids starting a measurement in the middle of someone else's burst.
    """
    if max_wait_s <= 0:
        return 0.0
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < max_wait_s:
        a = _cpu_snapshot()
        time.sleep(window_s)
        bg = background_cpu(a, _cpu_snapshot())
        if bg is None or bg < threshold:
            break
    return time.perf_counter() - t0


def fmt_bg(bg):
    """Background CPU as a percentage, with '!' above 10 %."""
    if bg is None:
        return "-"
    return f"{100 * bg:.0f}%" + ("!" if bg > 0.10 else "")


# ---- timing ---------------------------------------------------------------------------------
def time_many(fns, repeats=7, warmup=1, sync=None, min_sample_s=2e-3, max_inner=1000,
              quiet_s=0.0, warm_each=None):
    """Time several callables with their samples *interleaved* (round-robin).

    Each callable gets ``warmup`` (at least 1) untimed calls and ``repeats`` samples; a call
    shorter than ``min_sample_s`` is looped so that each sample lasts about that long (the
    sample is then the mean over its loop), which keeps timer resolution and the timing
    loop's overhead out of sub-millisecond numbers.  Interleaving exposes the callables to
    the same background load, so their ratio is more trustworthy than their absolute times
    on a shared machine.  So that a sample does not pay for the caches the previous callable
    left behind, each sample is preceded by one untimed call of the same callable
    (``warm_each``, on by default when there are several callables).  ``sync`` (for CuPy,
    ``cupy.cuda.Device().synchronize``) is called before the clock starts and before it
    stops.  ``quiet_s > 0`` first waits up to that long for the machine to be quiet
    (:func:`wait_quiet`).

    Returns one dict per callable, in seconds: ``best``, ``median``, ``mean``, ``worst``,
    plus ``repeats``, ``inner``, ``warm_each``, ``background_cpu`` (see
    :func:`background_cpu`, measured over all timed samples) and ``waited_s``.
    """
    def sy():
        if sync is not None:
            sync()

    waited = wait_quiet(quiet_s)
    inners = []
    for fn in fns:
        for _ in range(max(warmup, 1) - 1):
            fn()
        sy()
        t0 = time.perf_counter()
        fn()                    # the last warm-up call, timed to choose the loop count
        sy()
        first = time.perf_counter() - t0
        inner = 1
        if first < min_sample_s:
            inner = int(min(max_inner, max(1, math.ceil(min_sample_s / max(first, 1e-7)))))
        inners.append(inner)
    if warm_each is None:
        warm_each = len(fns) > 1
    samples = [[] for _ in fns]
    snap0 = _cpu_snapshot()
    for _ in range(max(repeats, 1)):
        for i, fn in enumerate(fns):
            if warm_each:
                fn()
            sy()
            t0 = time.perf_counter()
            for _ in range(inners[i]):
                fn()
            sy()
            samples[i].append((time.perf_counter() - t0) / inners[i])
    bg = background_cpu(snap0, _cpu_snapshot())
    return [{
        "best": min(s),
        "median": statistics.median(s),
        "mean": statistics.fmean(s),
        "worst": max(s),
        "repeats": len(s),
        "inner": inner,
        "warm_each": warm_each,
        "background_cpu": bg,
        "waited_s": waited,
    } for s, inner in zip(samples, inners, strict=True)]


def time_fn(fn, repeats=7, warmup=1, sync=None, min_sample_s=2e-3, max_inner=1000,
            quiet_s=0.0):
    """Time one callable: best / median of ``repeats`` samples after ``warmup`` calls.

    See :func:`time_many` for the details and the returned dict.
    """
    return time_many([fn], repeats, warmup, sync, min_sample_s, max_inner, quiet_s)[0]


# ---- machine GEMM rate ----------------------------------------------------------------------
def gemm_rate(dtype, n=2048, repeats=5, backend=None, quiet_s=0.0):
    """GFLOP/s of one square ``n x n`` matmul (``2 n^3`` FLOPs), best of ``repeats``."""
    xp = np if backend is None else backend.xp
    sync = None if backend is None else backend.sync
    rng = np.random.default_rng(1234)
    a = xp.asarray(rng.standard_normal((n, n)).astype(dtype))
    b = xp.asarray(rng.standard_normal((n, n)).astype(dtype))
    t = time_fn(lambda a=a, b=b: a @ b, repeats=repeats, warmup=1, sync=sync, quiet_s=quiet_s)
    flops = 2.0 * n ** 3
    del a, b
    if backend is not None:
        backend.free()
    return {"dtype": np.dtype(dtype).name, "n": n, "flops": flops,
            "best_s": t["best"], "median_s": t["median"],
            "gflops": flops / t["best"] / 1e9, "gflops_median": flops / t["median"] / 1e9,
            "background_cpu": t["background_cpu"]}


def gemm_rates(dtypes, quick=False, backend=None, repeats=None, quiet_s=0.0):
    """GEMM rate per dtype name.  CPU: n=2048 (1024 quick); GPU: n=8192 (4096 quick)."""
    gpu = backend is not None and backend.name == "cupy"
    n = (4096 if quick else 8192) if gpu else (1024 if quick else 2048)
    reps = repeats or (3 if quick else 5)
    return {np.dtype(dt).name: gemm_rate(dt, n=n, repeats=reps, backend=backend, quiet_s=quiet_s)
            for dt in dtypes}


def print_gemm_rates(rates):
    rows = [[name, r["n"], fmt_ms(r["best_s"]), f"{r['gflops']:.1f}", f"{r['gflops_median']:.1f}",
             fmt_bg(r["background_cpu"])]
            for name, r in rates.items()]
    print_table("machine GEMM rate (square n x n matmul, 2n^3 FLOPs)",
                ["dtype", "n", "best ms", "GFLOP/s (best)", "GFLOP/s (median)", "bg cpu"], rows)


# ---- tables ---------------------------------------------------------------------------------
def fmt_ms(seconds):
    """Milliseconds with 3 significant-ish digits."""
    ms = seconds * 1e3
    if ms >= 100:
        return f"{ms:.1f}"
    if ms >= 10:
        return f"{ms:.2f}"
    if ms >= 1:
        return f"{ms:.3f}"
    return f"{ms:.4f}"


def fmt_num(x, digits=3):
    """A compact number with ``digits`` significant digits (scientific when large or tiny)."""
    if x is None:
        return "-"
    if isinstance(x, str):
        return x
    if isinstance(x, (int, np.integer)) and abs(x) < 10**6:
        return str(int(x))
    x = float(x)
    if x == 0:
        return "0"
    if math.isnan(x) or math.isinf(x):
        return str(x)
    if 1e-2 <= abs(x) < 1e5:
        places = max(digits - 1 - math.floor(math.log10(abs(x))), 0)
        return f"{x:.{places}f}"
    return f"{x:.{digits - 1}e}"


def _numeric(s):
    t = s.strip().rstrip("x%!").strip()
    try:
        float(t)
    except ValueError:
        return False
    return True


def format_table(headers, rows):
    """Columns aligned: numbers (also ``12.3x``, ``5%``) to the right, text to the left."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    # a column is right-aligned when all its body cells are numbers or '-'
    right = [all(_numeric(r[i]) or r[i] == "-" for r in cells[1:]) and len(cells) > 1
             for i in range(len(headers))]
    lines = []
    for k, row in enumerate(cells):
        parts = [c.rjust(widths[i]) if right[i] else c.ljust(widths[i]) for i, c in enumerate(row)]
        lines.append("  ".join(parts).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


TABLES = []   # every table printed by this process, as written into the JSON results


def print_table(title, headers, rows):
    TABLES.append({"title": title, "headers": [str(h) for h in headers],
                   "rows": [[str(c) for c in r] for r in rows]})
    print(f"== {title}")
    print(format_table(headers, rows))
    print()


# ---- results --------------------------------------------------------------------------------
def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.dtype):
        return x.name
    if isinstance(x, type) and issubclass(x, np.generic):
        return np.dtype(x).name
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return str(x)
    return x


def write_results(name, payload, env, args=None):
    """Write ``benchmarks/results/<name>.json``: environment, timestamp, options, the payload
    and every printed table (``tables``: title, headers, rows as printed).  Returns the path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    doc = {
        "name": name,
        "timestamp": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "argv": sys.argv,
        "options": vars(args) if args is not None else None,
        "environment": env,
    }
    doc.update(payload)
    doc["tables"] = TABLES
    path = RESULTS_DIR / f"{name}.json"
    with open(path, "w") as f:
        json.dump(_jsonable(doc), f, indent=2)
        f.write("\n")
    return path


def result_suffix(args, extra=""):
    """``[_<device>][extra][_quick]``: GPU and quick runs never overwrite the full CPU run."""
    device = getattr(args, "device", "numpy")
    return ((f"_{device}" if device != "numpy" else "") + extra
            + ("_quick" if getattr(args, "quick", False) else ""))


def result_name(base, args, extra=""):
    """The name of a result file: ``<base>[_<device>][extra][_quick]``."""
    return base + result_suffix(args, extra)

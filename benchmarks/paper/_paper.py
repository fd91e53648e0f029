"""Helpers shared by the paper-reproduction scripts (Novikov et al., NIPS 2015).

Puts ``benchmarks/`` on ``sys.path`` so that every script can use ``_common`` (environment,
timing, tables, JSON results), loads the embedded MNIST digits once and trains the
``1024 -first layer-> 1024 -ReLU-> 10`` networks through the functions behind
:func:`tensortrain.nn.mnist_example.train_mnist` (same padding, same split, same seeds), without
reloading the data for every configuration.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

PAPER_DIR = Path(__file__).resolve().parent
BENCH_DIR = PAPER_DIR.parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import _common as C  # noqa: E402

tt = C.import_tensortrain()

IMG_DIR = C.REPO_ROOT / "docs" / "img"

PAPER = "Novikov, Podoprikhin, Osokin, Vetrov, Tensorizing Neural Networks, NIPS 2015"


def parser(description, blas_threads=1):
    """The options every paper script takes.

    ``--blas-threads`` (default ``blas_threads``; 0 leaves the BLAS as the machine set it) is
    applied with threadpoolctl.  The training scripts default to 1: the MNIST networks' GEMMs
    are small, and on a shared 2-core machine OpenBLAS's two spinning threads made a training
    epoch up to 10x slower whenever another process held a core (measured; results are
    identical either way).  The environment block and the JSON report the thread count used.
    """
    p = argparse.ArgumentParser(description=description)
    C.add_common_options(p, "tiny settings that exercise the whole script (a smoke test)")
    p.add_argument("--blas-threads", type=int, default=blas_threads, metavar="N",
                   help=f"limit the BLAS to N threads (threadpoolctl; 0: leave as set; "
                        f"default {blas_threads})")
    p.add_argument("--no-plot", action="store_true", help="do not draw the figure")
    return p


_LIMITS = []


def apply_blas_threads(args):
    """Limit the BLAS threads as ``--blas-threads`` asks (before the environment is read)."""
    n = getattr(args, "blas_threads", 0)
    if not n:
        return None
    try:
        from threadpoolctl import threadpool_limits  # noqa: PLC0415
    except ImportError:
        import warnings  # noqa: PLC0415

        warnings.warn("--blas-threads needs threadpoolctl (pip install threadpoolctl); the BLAS "
                      "keeps its own thread count", stacklevel=2)
        return None
    _LIMITS.append(threadpool_limits(limits=n, user_api="blas"))
    return n


def start(args, backend=None):
    """Apply ``--blas-threads``, print the environment and return it."""
    n = apply_blas_threads(args)
    env = C.environment(backend)
    env["blas_threads_limit"] = n
    C.print_environment(env)
    if n:
        print(f"BLAS limited to {n} thread(s) by this script (--blas-threads {n}; 0 leaves it)\n")
    return env


def result_name(base, args, extra=""):
    """``paper_<base>[_cupy][extra][_quick]`` (:func:`_common.result_name`)."""
    return C.result_name(f"paper_{base}", args, extra)


def figure_path(base, args, extra=""):
    """``docs/img/<base>.png``; quick, GPU (and ``extra``-tagged) runs get their own file so
    that they never overwrite the figure of the full CPU run that the documentation shows."""
    IMG_DIR.mkdir(parents=True, exist_ok=True)
    return IMG_DIR / f"{base}{C.result_suffix(args, extra)}.png"


def new_figure(*args, **kwargs):
    """A matplotlib Figure on the Agg canvas (no pyplot, no global state)."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    from matplotlib.figure import Figure  # noqa: PLC0415

    return Figure(*args, **kwargs)


# ---- MNIST -------------------------------------------------------------------------------
def mnist_split(device, limit=None, val=1000, seed=0):
    """The embedded digits, padded to 32 x 32 and split exactly as ``train-mnist`` splits them
    (:func:`tensortrain.nn.mnist_example.load_split`; ``val=1000, seed=0`` holds out the same
    digits)."""
    from tensortrain.nn.mnist_example import load_split  # noqa: PLC0415

    return load_split(limit=limit, val=val, seed=seed, device=device)


def first_layer_config(kind, modes=(4, 8, 8, 4), rank=8, matrix_rank=None):
    """The MNIST network's config (see :func:`tensortrain.nn.mnist_example.mnist_model_config`)."""
    from tensortrain.nn.mnist_example import mnist_model_config  # noqa: PLC0415

    return mnist_model_config(kind, modes, rank, matrix_rank)


def count_params(layers):
    """``(weights, biases)`` of a list of layers: 1-D parameters are biases."""
    params = [p for layer in layers for p in layer.parameters()]
    bias = sum(p.size for p in params if p.data.ndim == 1)
    return sum(p.size for p in params) - bias, bias


def train(config, data, *, epochs, lr=1e-3, batch_size=100, seed=0, model=None):
    """Build (unless ``model`` is given) and train a network with Adam, the one training path
    of ``train-mnist`` (:func:`tensortrain.nn.mnist_example.fit_network`, same seeds); return
    a dict.  ``val_err`` is the error on the held-out digits after the last epoch (no early
    stopping: the held-out digits play the role of the paper's test set).
    """
    from tensortrain.nn.mnist_example import fit_network  # noqa: PLC0415

    t0 = time.perf_counter()
    model, hist = fit_network(config, data, epochs=epochs, lr=lr, batch_size=batch_size,
                              seed=seed, model=model)
    wall = time.perf_counter() - t0
    return {"model": model, "history": hist.to_dict(), "val_acc": hist.val_acc[-1],
            "val_err": 1.0 - hist.val_acc[-1], "train_acc": hist.acc[-1],
            "epoch_time": float(np.mean(hist.epoch_time)), "wall_s": wall}


def validation_accuracy(model, data):
    from tensortrain.nn import evaluate  # noqa: PLC0415

    return evaluate(model, data.x_val, data.y_val, batch_size=1000)[1]


def strip_models(obj):
    """A copy of nested results without the (non-JSON) model objects."""
    if isinstance(obj, dict):
        return {k: strip_models(v) for k, v in obj.items() if k != "model"}
    if isinstance(obj, (list, tuple)):
        return [strip_models(v) for v in obj]
    return obj


def finish(name, payload, env, args, t_start):
    """Print the wall time and write ``benchmarks/results/<name>.json``."""
    wall = time.perf_counter() - t_start
    payload = dict(payload)
    payload["wall_s"] = wall
    print(f"wall time {wall:.1f} s")
    if not args.no_json:
        path = C.write_results(name, strip_models(payload), env, args)
        print(f"results: {path.relative_to(C.REPO_ROOT)}")
    return wall

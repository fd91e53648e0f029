"""Helpers shared by the paper-reproduction scripts (Novikov et al., NIPS 2015).

Puts ``benchmarks/`` on ``sys.path`` so that every script can use ``_common`` (environment,
timing, tables, JSON results), loads the embedded MNIST digits once and trains the
``1024 -first layer-> 1024 -ReLU-> 10`` networks with :func:`tensortrain.nn.build_model` and
:func:`tensortrain.nn.fit`, the way :func:`tensortrain.nn.mnist_example.train_mnist` does (same
padding, same split, same seeds), without reloading the data for every configuration.
"""

from __future__ import annotations

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
    import argparse  # noqa: PLC0415

    p = argparse.ArgumentParser(description=description)
    p.add_argument("--blas-threads", type=int, default=blas_threads, metavar="N",
                   help=f"limit the BLAS to N threads (threadpoolctl; 0: leave as set; "
                        f"default {blas_threads})")
    p.add_argument("--quick", action="store_true",
                   help="tiny settings that exercise the whole script (a smoke test)")
    p.add_argument("--device", choices=("numpy", "cupy"), default="numpy",
                   help="array backend ('cupy' trains / times on the GPU)")
    p.add_argument("--no-json", action="store_true", help="do not write the JSON file")
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


def _suffix(args, extra=""):
    return (("_" + args.device if args.device != "numpy" else "") + extra
            + ("_quick" if args.quick else ""))


def result_name(base, args, extra=""):
    """``paper_<base>[_cupy][extra][_quick]``."""
    return f"paper_{base}{_suffix(args, extra)}"


def figure_path(base, args, extra=""):
    """``docs/img/<base>.png``; quick, GPU (and ``extra``-tagged) runs get their own file so
    that they never overwrite the figure of the full CPU run that the documentation shows."""
    IMG_DIR.mkdir(parents=True, exist_ok=True)
    return IMG_DIR / f"{base}{_suffix(args, extra)}.png"


def new_figure(*args, **kwargs):
    """A matplotlib Figure on the Agg canvas (no pyplot, no global state)."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    from matplotlib.figure import Figure  # noqa: PLC0415

    return Figure(*args, **kwargs)


# ---- MNIST -------------------------------------------------------------------------------
class MNISTSplit:
    """The embedded digits, padded to 32 x 32, split into training and validation digits.

    The split is :func:`tensortrain.datasets.train_val_split` with the same seed as
    ``train-mnist`` (so ``val=1000, seed=0`` holds out exactly the digits it holds out).
    """

    def __init__(self, xp, limit=None, val=1000, seed=0):
        from tensortrain.datasets import load_mnist, preprocess, train_val_split  # noqa: PLC0415

        ds = load_mnist()
        images, labels = ds.train_images, ds.train_labels
        if limit is not None:
            images, labels = images[:limit], labels[:limit]
        tr, va = train_val_split(len(images), val, seed)
        x = preprocess(images, pad_to=32)
        y = labels.astype(np.int64)
        self.source = ds.source
        self.n_train, self.n_val = len(tr), len(va)
        self.x_tr, self.y_tr = xp.asarray(x[tr]), xp.asarray(y[tr])
        self.x_val, self.y_val = xp.asarray(x[va]), xp.asarray(y[va])
        self.xp = xp

    def describe(self):
        return (f"{self.source}: {self.n_train} training digits, {self.n_val} held-out "
                f"validation digits")


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
    """Build (unless ``model`` is given) and train a network with Adam; return a dict.

    Seeds as in ``train_mnist``: the parameters from ``default_rng(seed)``, the shuffling from
    ``default_rng(seed + 1)``.  ``val_err`` is the error on the held-out digits after the last
    epoch (no early stopping: the held-out digits play the role of the paper's test set).
    """
    from tensortrain.nn import Adam, build_model, fit  # noqa: PLC0415

    if model is None:
        model = build_model(config, xp=data.xp, rng=np.random.default_rng(seed))
    opt = Adam(model.parameters(), lr=lr)
    t0 = time.perf_counter()
    hist = fit(model, opt, data.x_tr, data.y_tr, epochs=epochs, batch_size=batch_size,
               val=(data.x_val, data.y_val), rng=np.random.default_rng(seed + 1),
               progress=False)
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

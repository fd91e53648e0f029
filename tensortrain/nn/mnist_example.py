"""The MNIST experiment of Novikov et al. (2015): a TT layer against dense and low-rank layers.

Images are padded from 28 x 28 to 32 x 32 so that the 1024 inputs factor as, e.g.,
4 x 8 x 8 x 4; the network is ``1024 -first layer-> 1024 -ReLU-> 10`` where the first layer is
a :class:`~tensortrain.nn.tt_layer.TTLinear`, a dense ``Linear`` (``kind='dense'``) or the
"matrix rank" (MR) baseline of the paper, two ``Linear`` layers ``1024 -> R -> 1024``.
``python -m tensortrain train-mnist`` runs :func:`train_mnist`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._backend import asarray, resolve_xp
from ..errors import TTError

__all__ = ["MNISTSplit", "first_layer_summary", "fit_network", "load_split", "mnist_model_config",
           "train_mnist"]

PAD_TO = 32
HIDDEN = PAD_TO * PAD_TO
CLASSES = 10


def mnist_model_config(kind="tt", modes=(4, 8, 8, 4), rank=8, matrix_rank=None,
                       dtype="float32"):
    """The config (see :mod:`tensortrain.nn.serialization`) of the MNIST network."""
    n = HIDDEN
    if kind == "tt":
        modes = [int(m) for m in modes]
        first = [{"type": "TTLinear", "in_features": n, "out_features": n, "ranks": int(rank),
                  "in_modes": modes, "out_modes": modes}]
    elif kind == "dense":
        first = [{"type": "Linear", "in_features": n, "out_features": n}]
    elif kind == "mr":
        if matrix_rank is None or int(matrix_rank) < 1:
            raise TTError(f"the matrix-rank baseline needs matrix_rank >= 1, got "
                          f"{matrix_rank!r}")
        r = int(matrix_rank)
        first = [{"type": "Linear", "in_features": n, "out_features": r, "bias": False},
                 {"type": "Linear", "in_features": r, "out_features": n}]
    else:
        raise TTError(f"kind must be 'tt', 'dense' or 'mr', got {kind!r}")
    layers = [*first, {"type": "ReLU"}, {"type": "Linear", "in_features": n, "out_features": CLASSES}]
    return {"layers": layers, "dtype": dtype,
            "meta": {"task": "mnist", "kind": kind, "pad_to": PAD_TO,
                     "first_layer_count": len(first)}}


@dataclass
class MNISTSplit:
    """The digits padded to 32 x 32 and split into training and held-out validation digits,
    on backend ``xp`` (made by :func:`load_split`)."""

    dataset: Any          # the :class:`~tensortrain.datasets.MNIST` they come from
    xp: Any
    x_tr: Any
    y_tr: Any
    x_val: Any            # None when nothing is held out
    y_val: Any

    @property
    def source(self) -> str:
        return self.dataset.source

    @property
    def n_train(self) -> int:
        return len(self.y_tr)

    @property
    def n_val(self) -> int:
        return 0 if self.y_val is None else len(self.y_val)

    @property
    def val(self):
        """``(x_val, y_val)`` for :func:`~tensortrain.nn.train.fit`, or None."""
        return None if self.y_val is None else (self.x_val, self.y_val)

    def describe(self) -> str:
        return (f"{self.source}: {self.n_train} training digits, {self.n_val} held-out "
                f"validation digits")


def load_split(*, data=None, download=False, limit=None, val=1000, seed=0, device="numpy"):
    """The MNIST training digits (the embedded subset, or the IDX files in ``data``), the first
    ``limit`` of them, padded to 32 x 32 and split by
    :func:`~tensortrain.datasets.train_val_split` with ``val`` held out and ``seed``: the
    data of ``train-mnist`` and of the paper scripts.
    """
    from ..datasets import load_mnist, preprocess, train_val_split  # noqa: PLC0415

    xp = resolve_xp(device)
    ds = load_mnist(path=data, download=download)
    images, labels = ds.train_images, ds.train_labels
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    n = len(images)
    if not 0 <= val < n:
        raise TTError(f"--val {val} must be smaller than the {n} training digits available")
    train_idx, val_idx = train_val_split(n, val, seed)
    x_all = preprocess(images, pad_to=PAD_TO)
    y_all = labels.astype(np.int64)
    x_val = y_val = None
    if val:
        x_val, y_val = asarray(x_all[val_idx], xp), asarray(y_all[val_idx], xp)
    return MNISTSplit(ds, xp, asarray(x_all[train_idx], xp), asarray(y_all[train_idx], xp),
                      x_val, y_val)


def fit_network(config, split, *, epochs, lr=1e-3, batch_size=100, seed=0, optimizer="adam",
                progress=False, callbacks=None, model=None):
    """Build the network of ``config`` (unless ``model`` is given) and train it on ``split``
    with :func:`~tensortrain.nn.train.fit`; returns ``(model, history)``.

    The seeds of ``train-mnist``: the parameters come from ``default_rng(seed)``, the
    shuffling from ``default_rng(seed + 1)``.
    """
    from . import optim  # noqa: PLC0415
    from .serialization import build_model  # noqa: PLC0415
    from .train import fit  # noqa: PLC0415

    if model is None:
        model = build_model(config, xp=split.xp, rng=np.random.default_rng(seed))
    opt = optim.make_optimizer(optimizer, model.parameters(), lr=lr)
    history = fit(model, opt, split.x_tr, split.y_tr, epochs=epochs, batch_size=batch_size,
                  val=split.val, rng=np.random.default_rng(seed + 1), progress=progress,
                  callbacks=callbacks)
    return model, history


def first_layer_summary(model, config):
    """``(total, weight, bias)`` parameter counts of the first layer and its compression.

    Compression is ``1024 * 1024`` over the *weight* parameters (biases excluded), the
    measure of the paper.
    """
    count = config["meta"]["first_layer_count"]
    params = [p for layer in model.layers[:count] for p in layer.parameters()]
    total = sum(p.size for p in params)
    bias = sum(p.size for p in params if p.data.ndim == 1)
    weight = total - bias
    return total, weight, bias, HIDDEN * HIDDEN / weight


def _describe(config):
    first = config["layers"][0]
    kind = config["meta"]["kind"]
    if kind == "tt":
        modes = "x".join(str(m) for m in first["in_modes"])
        return f"TTLinear 1024 -> 1024 (modes {modes}, rank {first['ranks']})"
    if kind == "dense":
        return "dense Linear 1024 -> 1024"
    return f"low-rank (MR) Linear 1024 -> {first['out_features']} -> 1024"


def _check_output_path(path, action, example):
    """Raise an ``OSError`` with a one-line message unless a file can be created at ``path``.

    ``action`` completes "cannot ..." (e.g. "save the model to"); ``example`` is a file name to
    suggest when ``path`` is a directory.  The directory is probed by creating (and removing)
    a temporary file in it, which also catches read-only file systems.
    """
    p = os.fsdecode(os.fspath(path))
    head = f"cannot {action} {p!r}"
    if not p:
        raise FileNotFoundError(f"cannot {action} an empty path")
    if os.path.isdir(p):
        raise IsADirectoryError(f"{head}: it is a directory; name a file, e.g. "
                                f"{os.path.join(p, example)!r}")
    if p.endswith(("/", os.sep)):
        raise IsADirectoryError(f"{head}: a path ending in {p[-1]!r} names a directory; name "
                                f"a file, e.g. {os.path.join(p, example)!r}")
    real = os.path.realpath(p)
    parent = os.path.dirname(real)
    if not os.path.exists(parent):
        raise FileNotFoundError(f"{head}: the directory {parent!r} does not exist")
    if not os.path.isdir(parent):
        raise NotADirectoryError(f"{head}: {parent!r} is not a directory")
    if os.path.exists(real) and not os.access(real, os.W_OK):
        raise PermissionError(f"{head}: the file exists and is not writable")
    if os.path.exists(real) and not os.path.isfile(real):
        return  # a device or FIFO such as /dev/null: written directly, nothing to create
    try:
        fd, probe = tempfile.mkstemp(dir=parent, prefix=".tensortrain-probe-")
    except OSError as exc:
        raise type(exc)(f"{head}: cannot create files in {parent!r} "
                        f"({exc.strerror or exc})") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)


def _plot_path(plot):
    """The file ``History.plot`` will write for ``plot``, checked before training.

    Needs matplotlib.  Without an extension matplotlib appends its default format's (".png");
    the returned path includes it, so that the report names the file really written.
    """
    try:
        import matplotlib  # noqa: PLC0415
        from matplotlib.backend_bases import FigureCanvasBase  # noqa: PLC0415
    except ImportError as exc:
        raise ImportError("plotting the curves needs matplotlib: install the 'plot' extra, "
                          "pip install 'tensortrain[plot]'") from exc
    p = os.fsdecode(os.fspath(plot))
    ext = os.path.splitext(p)[1][1:].lower()
    if not ext and p and not p.endswith(("/", os.sep)) and not os.path.isdir(p):
        ext = str(matplotlib.rcParams["savefig.format"]).lower()
        p = p.rstrip(".") + "." + ext
    formats = FigureCanvasBase.get_supported_filetypes()
    if ext and ext not in formats:
        raise TTError(f"cannot draw the curves into {p!r}: matplotlib does not write "
                      f".{ext} files; use one of {', '.join(sorted(formats))}")
    _check_output_path(p, "draw the curves into", "curves.png")
    return p


def _save_with_fallback(path, model, config, warn):
    """Save to ``path``; if that fails with an ``OSError``, save to a new file in the temporary
    directory instead.  Returns ``(path written, reason the first save failed or None)``.

    Raises ``OSError`` (naming both failures) when the fallback fails too.
    """
    from .serialization import save_model  # noqa: PLC0415

    target = os.fsdecode(os.fspath(path))
    try:
        save_model(target, model, config)
        return target, None
    except OSError as exc:
        reason = str(exc)
    fallback = None
    try:
        stem = os.path.splitext(os.path.basename(target))[0] or "model"
        fd, fallback = tempfile.mkstemp(prefix=f"tensortrain-{stem}-", suffix=".npz")
        os.close(fd)
        save_model(fallback, model, config)
    except OSError as exc:
        if fallback is not None:
            with contextlib.suppress(OSError):
                os.unlink(fallback)
        where = repr(fallback) if fallback else f"a new file in {tempfile.gettempdir()!r}"
        raise OSError(f"could not save the model to {target!r} ({reason}), nor to the fallback "
                      f"{where} ({exc}); the trained model was not saved") from exc
    warn(f"train-mnist: warning: could not save the model to {target!r} ({reason}); saved it "
         f"to {fallback!r} instead")
    return fallback, reason


def train_mnist(*, kind="tt", modes=(4, 8, 8, 4), rank=8, matrix_rank=None, epochs=20,
                device="numpy", data=None, download=False, save=None, lr=1e-3,
                batch_size=100, val=1000, seed=0, optimizer="adam", progress=True, limit=None,
                plot=None, out=None, err=None):
    """Train the MNIST network and print a report; returns a dict of the results.

    ``save`` and ``plot`` are checked before the data are loaded (the directory exists and
    accepts new files, the path is not a directory, matplotlib and the plot's format are
    available): a bad path raises an ``OSError`` (``ValueError`` for an unknown plot format,
    ``ImportError`` without matplotlib) before any training.  If saving still fails after
    training, a one-line warning goes to ``err`` (stderr by default) and the model is saved
    to a new file in the temporary directory instead; the result's ``'saved'`` entry is the
    file written and ``'save_error'`` the reason the first attempt failed.  An ``OSError`` is
    raised only if that fallback fails too.
    """
    from ..datasets import preprocess  # noqa: PLC0415
    from .train import evaluate, format_epoch  # noqa: PLC0415

    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err

    def say(*a):
        print(*a, file=out, flush=True)

    def warn(line):
        print(line, file=err, flush=True)

    # everything that can be checked before training is checked here, first
    if save is not None:
        _check_output_path(save, "save the model to", "model.npz")
    if plot is not None:
        plot = _plot_path(plot)
        if save is not None and os.path.realpath(os.fspath(save)) == os.path.realpath(plot):
            raise TTError(f"the model and the curves would both be written to {plot!r}; "
                          f"give two different paths")
    split = load_split(data=data, download=download, limit=limit, val=val, seed=seed,
                       device=device)
    ds, xp = split.dataset, split.xp
    config = mnist_model_config(kind, modes, rank, matrix_rank)
    say(f"data: {ds.source}: {split.n_train} training, {split.n_val} validation"
        + (f", {len(ds.test_images)} test digits" if ds.has_test else " digits"))
    say(f"model: {_describe(config)} -> ReLU -> Linear 1024 -> 10 on {xp.__name__}, "
        f"{optimizer} lr {lr:g}, batch {batch_size}")
    model, history = fit_network(config, split, epochs=epochs, lr=lr, batch_size=batch_size,
                                 seed=seed, optimizer=optimizer, progress=progress,
                                 callbacks=[lambda e, h: say(format_epoch(h, e, epochs))])
    total, weight, bias, compression = first_layer_summary(model, config)
    result = {"history": history.to_dict(), "first_layer_params": total,
              "first_layer_weight_params": weight, "compression": compression}
    if history.val_acc:
        say(f"final validation accuracy: {history.val_acc[-1]:.4f}")
        result["val_acc"] = history.val_acc[-1]
    say(f"first layer: {total:,} parameters ({weight:,} weights + {bias:,} biases); "
        f"compression {compression:.1f}x (1024*1024 dense weights / {weight:,})")
    if history.epoch_time:
        mean_time = float(np.mean(history.epoch_time))
        say(f"mean time per epoch: {mean_time:.3f} s")
        result["mean_epoch_time"] = mean_time
    if ds.has_test:
        x_te = asarray(preprocess(ds.test_images, pad_to=PAD_TO), xp)
        y_te = asarray(ds.test_labels.astype(np.int64), xp)
        _, test_acc = evaluate(model, x_te, y_te, batch_size=1000)
        say(f"test accuracy: {test_acc:.4f}")
        result["test_acc"] = test_acc
    if save is not None:
        config["meta"]["trained"] = {"epochs": history.epochs, "seed": seed,
                                     "data": ds.source, "date": time.strftime("%Y-%m-%d")}
        written, failure = _save_with_fallback(save, model, config, warn)
        say(f"saved model to {written}")
        result["saved"] = written
        if failure is not None:
            result["save_error"] = failure
    if plot is not None:
        try:
            history.plot(plot, title=_describe(config))
        except OSError as exc:
            raise OSError(f"could not draw the curves into {plot!r}: {exc}"
                          + (f" (the model was saved to {result['saved']})"
                             if "saved" in result else "")) from exc
        say(f"saved curves to {plot}")
    result["model"] = model
    return result

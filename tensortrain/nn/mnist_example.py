"""The MNIST experiment of Novikov et al. (2015): a TT layer against dense and low-rank layers.

Images are padded from 28 x 28 to 32 x 32 so that the 1024 inputs factor as, e.g.,
4 x 8 x 8 x 4; the network is ``1024 -first layer-> 1024 -ReLU-> 10`` where the first layer is
a :class:`~tensortrain.nn.tt_layer.TTLinear`, a dense ``Linear`` (``kind='dense'``) or the
"matrix rank" (MR) baseline of the paper, two ``Linear`` layers ``1024 -> R -> 1024``.
``python -m tensortrain train-mnist`` runs :func:`train_mnist`.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from .._backend import asarray, resolve_xp

__all__ = ["mnist_model_config", "first_layer_summary", "train_mnist"]

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
            raise ValueError(f"the matrix-rank baseline needs matrix_rank >= 1, got "
                             f"{matrix_rank!r}")
        r = int(matrix_rank)
        first = [{"type": "Linear", "in_features": n, "out_features": r, "bias": False},
                 {"type": "Linear", "in_features": r, "out_features": n}]
    else:
        raise ValueError(f"kind must be 'tt', 'dense' or 'mr', got {kind!r}")
    layers = first + [{"type": "ReLU"},
                      {"type": "Linear", "in_features": n, "out_features": CLASSES}]
    return {"layers": layers, "dtype": dtype,
            "meta": {"task": "mnist", "kind": kind, "pad_to": PAD_TO,
                     "first_layer_count": len(first)}}


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


def train_mnist(*, kind="tt", modes=(4, 8, 8, 4), rank=8, matrix_rank=None, epochs=20,
                device="numpy", data=None, download=False, save=None, lr=1e-3,
                batch_size=100, val=1000, seed=0, optimizer="adam", progress=True, limit=None,
                plot=None, out=None):
    """Train the MNIST network and print a report; returns a dict of the results."""
    from ..datasets import load_mnist, preprocess, train_val_split  # noqa: PLC0415
    from . import optim  # noqa: PLC0415
    from .serialization import build_model, save_model  # noqa: PLC0415
    from .train import evaluate, fit, format_epoch  # noqa: PLC0415

    out = sys.stdout if out is None else out

    def say(*a):
        print(*a, file=out, flush=True)

    xp = resolve_xp(device)
    ds = load_mnist(path=data, download=download)
    images, labels = ds.train_images, ds.train_labels
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    n = len(images)
    if not 0 <= val < n:
        raise ValueError(f"--val {val} must be smaller than the {n} training digits available")
    train_idx, val_idx = train_val_split(n, val, seed)
    x_all = preprocess(images, pad_to=PAD_TO)
    x_tr = asarray(x_all[train_idx], xp)
    y_tr = asarray(labels[train_idx].astype(np.int64), xp)
    val_pair = None
    if val:
        val_pair = (asarray(x_all[val_idx], xp), asarray(labels[val_idx].astype(np.int64), xp))

    config = mnist_model_config(kind, modes, rank, matrix_rank)
    model = build_model(config, xp=xp, rng=np.random.default_rng(seed))
    opt = optim.make_optimizer(optimizer, model.parameters(), lr=lr)
    total, weight, bias, compression = first_layer_summary(model, config)
    say(f"data: {ds.source}: {len(train_idx)} training, {len(val_idx)} validation"
        + (f", {len(ds.test_images)} test digits" if ds.has_test else " digits"))
    say(f"model: {_describe(config)} -> ReLU -> Linear 1024 -> 10 on {xp.__name__}, "
        f"{optimizer} lr {lr:g}, batch {batch_size}")

    history = fit(model, opt, x_tr, y_tr, epochs=epochs, batch_size=batch_size, val=val_pair,
                  rng=np.random.default_rng(seed + 1), progress=progress,
                  callbacks=[lambda e, h: say(format_epoch(h, e, epochs))])
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
        save_model(save, model, config)
        say(f"saved model to {save}")
    if plot is not None:
        history.plot(plot, title=_describe(config))
        say(f"saved curves to {plot}")
    result["model"] = model
    return result

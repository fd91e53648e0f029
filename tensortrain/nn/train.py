"""Mini-batch training, evaluation and prediction for :class:`~tensortrain.nn.module.Module`.

The loop is written for both backends: data live on the model's backend (moved there once),
each epoch is shuffled with a host permutation that is copied to the device once, and the
loss and the number of correct predictions are accumulated as device scalars that reach the
host once per epoch.  On CuPy there is therefore no host round trip per batch.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from .._backend import asarray, get_xp, is_array, to_host
from .._validation import check_positive_int
from ..errors import ShapeError, TTError
from . import losses
from .init import make_rng
from .module import Module

__all__ = ["History", "evaluate", "fit", "format_epoch", "predict", "resolve_loss"]


@dataclass
class History:
    """Per-epoch records of :func:`fit` (one entry per completed epoch).

    ``acc`` and ``val_acc`` hold ``None`` where no accuracy applies (non-integer targets);
    ``val_loss`` and ``val_acc`` are empty lists without validation data.  ``lr`` is the
    learning rate used during the epoch and ``epoch_time`` its wall time in seconds.
    """

    loss: list = field(default_factory=list)
    acc: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_acc: list = field(default_factory=list)
    epoch_time: list = field(default_factory=list)
    lr: list = field(default_factory=list)

    @property
    def epochs(self) -> int:
        """Number of epochs recorded."""
        return len(self.loss)

    def __len__(self):
        return self.epochs

    def to_dict(self) -> dict:
        """Plain lists of floats (JSON-serializable)."""
        return {k: list(getattr(self, k)) for k in
                ("loss", "acc", "val_loss", "val_acc", "epoch_time", "lr")}

    def plot(self, path, title=None):
        """Draw the loss and accuracy curves (train and validation) into an image file.

        Needs matplotlib (``pip install 'tensortrain[plot]'``); uses no global pyplot state.
        Returns ``path``.
        """
        try:
            from matplotlib.figure import Figure  # noqa: PLC0415
        except ImportError as exc:
            raise ImportError("History.plot needs matplotlib: install the 'plot' extra, "
                              "pip install 'tensortrain[plot]'") from exc
        epochs = np.arange(1, self.epochs + 1)
        fig = Figure(figsize=(9, 3.6))
        ax_loss, ax_acc = fig.subplots(1, 2)
        ax_loss.plot(epochs, self.loss, "o-", label="train")
        if self.val_loss:
            ax_loss.plot(epochs, self.val_loss, "s-", label="validation")
        ax_loss.set_xlabel("epoch")
        ax_loss.set_ylabel("loss")
        ax_loss.set_title("loss")
        ax_loss.legend()
        if any(a is not None for a in self.acc):
            ax_acc.plot(epochs, [np.nan if a is None else a for a in self.acc], "o-",
                        label="train")
        if any(a is not None for a in self.val_acc):
            ax_acc.plot(epochs, [np.nan if a is None else a for a in self.val_acc], "s-",
                        label="validation")
        ax_acc.set_xlabel("epoch")
        ax_acc.set_ylabel("accuracy")
        ax_acc.set_title("accuracy")
        if ax_acc.lines:
            ax_acc.legend()
        from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

        for ax in (ax_loss, ax_acc):
            ax.grid(True, alpha=0.3)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if title:
            fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(path)
        return path


# ---- helpers --------------------------------------------------------------------------------
def resolve_loss(loss):
    """A loss function ``(output, target) -> (loss_0d, d_output)`` from a name or a callable.

    Names are looked up in :mod:`tensortrain.nn.losses` (``'softmax_cross_entropy'``,
    ``'mse'``).
    """
    if callable(loss):
        return loss
    if isinstance(loss, str):
        # the losses of the module only, not the helpers and errors it imports
        fn = getattr(losses, loss) if loss in losses.__all__ and loss != "accuracy" else None
        if fn is None:
            raise TTError(f"unknown loss {loss!r}; use 'softmax_cross_entropy', 'mse' or a "
                          f"callable (output, target) -> (loss, d_output)")
        return fn
    raise TypeError(f"loss must be a name or a callable, got {type(loss).__name__}")


def _check_model(model):
    if not isinstance(model, Module):
        raise TypeError(f"model must be a tensortrain.nn Module, got {type(model).__name__}")


def _model_xp(model, x):
    for p in model.parameters():
        return get_xp(p.data)
    return get_xp(x)


def _check_xy(x, y, what="x and y"):
    if not hasattr(x, "shape") or not hasattr(y, "shape"):
        raise TypeError(f"{what} must be arrays")
    if len(x) != len(y):
        raise ShapeError(f"{what} have different lengths: {len(x)} and {len(y)}")
    if len(x) == 0:
        raise TTError(f"{what} are empty")


def _is_classification(out, y):
    return out.ndim == 2 and y.ndim == 1 and np.dtype(y.dtype).kind in "iu"


def _save_modes(model):
    return [(m, m.training) for m in model.modules()]


def _restore_modes(saved):
    for m, mode in saved:
        m.training = mode


def _drop_caches(model):
    # forward passes in eval mode are never followed by backward: release their caches
    for m in model.modules():
        if getattr(m, "_cache", None) is not None:
            m._cache = None


def _sums(model, x, y, batch_size, loss_fn):
    """Device scalars: sum of per-sample losses and of correct predictions (or None)."""
    xp = get_xp(x)
    total = xp.zeros((), dtype=np.float64)
    correct = None
    n = len(x)
    for s in range(0, n, batch_size):
        xb, yb = x[s:s + batch_size], y[s:s + batch_size]
        out = model.forward(xb)
        loss, _ = loss_fn(out, yb)
        total = total + xp.asarray(loss, dtype=np.float64) * len(xb)
        if _is_classification(out, yb):
            c = (out.argmax(axis=1) == yb).sum()
            correct = c if correct is None else correct + c
    _drop_caches(model)
    return total, correct


def _labels(y, xp):
    y = asarray(y, xp)
    if np.dtype(y.dtype).kind == "u":
        y = y.astype(np.int64)  # uint8 labels: index safely on every backend
    return y


# ---- evaluation and prediction --------------------------------------------------------------
def evaluate(model, x, y, batch_size=1000, loss="softmax_cross_entropy"):
    """Mean loss and accuracy of ``model`` on ``(x, y)`` as Python floats.

    Runs in evaluation mode and restores each sub-module's previous mode afterwards.  The
    accuracy is ``None`` when ``y`` does not hold class labels.
    """
    _check_model(model)
    _check_xy(x, y)
    batch_size = check_positive_int(batch_size, "batch_size")
    loss_fn = resolve_loss(loss)
    xp = _model_xp(model, x)
    x, y = asarray(x, xp), _labels(y, xp)
    saved = _save_modes(model)
    model.eval()
    try:
        total, correct = _sums(model, x, y, batch_size, loss_fn)
    finally:
        _restore_modes(saved)
    n = len(x)
    host = to_host(xp.stack([total, xp.zeros((), np.float64) if correct is None
                             else correct.astype(np.float64)]))
    return float(host[0]) / n, (None if correct is None else float(host[1]) / n)


def predict(model, x, batch_size=1000):
    """Outputs of ``model`` on ``x`` (computed in batches, in evaluation mode).

    Returns an array on the model's backend; the previous modes are restored afterwards.
    """
    _check_model(model)
    if len(x) == 0:
        raise TTError("x is empty")
    batch_size = check_positive_int(batch_size, "batch_size")
    xp = _model_xp(model, x)
    x = asarray(x, xp)
    saved = _save_modes(model)
    model.eval()
    try:
        outs = [model.forward(x[s:s + batch_size]) for s in range(0, len(x), batch_size)]
    finally:
        _restore_modes(saved)
        _drop_caches(model)
    return outs[0] if len(outs) == 1 else xp.concatenate(outs, axis=0)


# ---- training -------------------------------------------------------------------------------
def _progress_bar(enabled, total, desc):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm  # noqa: PLC0415
    except ImportError:  # pragma: no cover - tqdm is a dependency
        return None
    return tqdm(total=total, desc=desc, leave=False, unit="batch", dynamic_ncols=True)


def _fmt(v):
    return "-" if v is None else f"{v:.4f}"


def fit(model, optimizer, x, y, *, epochs, batch_size=100, loss="softmax_cross_entropy",
        val=None, scheduler=None, rng=None, progress=True, callbacks=None,
        restore_on_divergence=True):
    """Train ``model`` with mini-batches for ``epochs`` epochs; return a :class:`History`.

    Parameters
    ----------
    model : Module
        Its parameters decide the backend; ``x``, ``y`` (and ``val``) are moved there once.
    optimizer
        Has ``zero_grad()``, ``step()`` and (optionally) ``lr``.
    x, y : arrays
        Inputs ``(N, ...)`` and targets (integer class labels for classification).
    epochs, batch_size : int
        The last batch of an epoch may be smaller.
    loss : str or callable
        A name from :mod:`tensortrain.nn.losses` or ``f(output, target) -> (loss, d_output)``
        where ``loss`` is the batch *mean*.
    val : (x_val, y_val) or None
        Evaluated (in eval mode, in batches of ``max(batch_size, 1000)``) after every epoch.
    scheduler
        Its ``step()`` is called once at the end of every epoch.
    rng : None, int or numpy Generator
        Shuffles the samples every epoch.
    progress : bool
        A tqdm bar over the batches of each epoch (on stderr).
    callbacks : list of callables
        ``cb(epoch, history)`` after every epoch (``epoch`` counts from 1); returning ``True``
        stops training early.
    restore_on_divergence : bool
        Keep a device copy of the parameters at the start of each epoch and put it back if
        the epoch's loss is not finite.

    Raises
    ------
    FloatingPointError
        When the mean training loss of an epoch is NaN or infinite (checked once per epoch,
        so there is no device synchronization per batch).  The history so far is attached
        as the exception's ``history`` attribute.
    """
    _check_model(model)
    if isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise TTError(f"epochs must be a non-negative integer, got {epochs!r}")
    batch_size = check_positive_int(batch_size, "batch_size")
    _check_xy(x, y)
    loss_fn = resolve_loss(loss)
    rng = make_rng(rng)
    callbacks = list(callbacks or [])
    for cb in callbacks:
        if not callable(cb):
            raise TypeError(f"callbacks must be callables cb(epoch, history), got {cb!r}")
    xp = _model_xp(model, x)
    x, y = asarray(x, xp), _labels(y, xp)
    if val is not None:
        if not (isinstance(val, (tuple, list)) and len(val) == 2):
            raise TypeError("val must be a pair (x_val, y_val)")
        xv, yv = val
        _check_xy(xv, yv, "val arrays")
        xv, yv = asarray(xv, xp), _labels(yv, xp)
    params = model.parameters()
    n = len(x)
    starts, ends = _batch_bounds(n, batch_size)
    n_batches = len(starts)
    history = History()
    saved_modes = _save_modes(model)
    try:
        for epoch in range(1, int(epochs) + 1):
            t0 = time.perf_counter()
            lr = getattr(optimizer, "lr", None)
            lr = None if lr is None else float(lr)
            snapshot = _snapshot(model, params, optimizer) if restore_on_divergence else None
            perm = asarray(rng.permutation(n), xp)  # host permutation, one copy per epoch
            total = xp.zeros((), dtype=np.float64)
            correct = None
            model.train()
            bar = _progress_bar(progress, n_batches, f"epoch {epoch}/{epochs}")
            try:
                for s, e in zip(starts, ends, strict=True):
                    idx = perm[s:e]
                    xb, yb = x[idx], y[idx]
                    optimizer.zero_grad()
                    out = model.forward(xb)
                    batch_loss, grad = loss_fn(out, yb)
                    if getattr(model, "skips_input_grad", False):   # no gradient for the data
                        model.backward(grad, need_input_grad=False)
                    else:
                        model.backward(grad)
                    optimizer.step()
                    total = total + xp.asarray(batch_loss, dtype=np.float64) * len(idx)
                    if _is_classification(out, yb):
                        c = (out.argmax(axis=1) == yb).sum()
                        correct = c if correct is None else correct + c
                    if bar is not None:
                        bar.update(1)
            finally:
                if bar is not None:
                    bar.close()
            stats = [total, xp.zeros((), np.float64) if correct is None
                     else correct.astype(np.float64)]
            if val is not None:
                model.eval()
                vtotal, vcorrect = _sums(model, xv, yv, max(batch_size, 1000), loss_fn)
                model.train()
                stats += [vtotal, xp.zeros((), np.float64) if vcorrect is None
                          else vcorrect.astype(np.float64)]
            host = to_host(xp.stack(stats))  # the one device -> host transfer of the epoch
            train_loss = float(host[0]) / n
            if not math.isfinite(train_loss):
                if snapshot is not None:
                    _restore(model, params, optimizer, snapshot)
                restored = (f"; parameters, optimizer state and buffers restored to their "
                            f"values before epoch {epoch}" if snapshot is not None else "")
                err = FloatingPointError(
                    f"training diverged at epoch {epoch}: loss is {train_loss}; lower the "
                    f"learning rate (it was {lr})" + restored)
                err.history = history
                raise err
            history.loss.append(train_loss)
            history.acc.append(None if correct is None else float(host[1]) / n)
            if val is not None:
                history.val_loss.append(float(host[2]) / len(xv))
                history.val_acc.append(None if vcorrect is None else float(host[3]) / len(xv))
            history.lr.append(lr)
            if scheduler is not None:
                scheduler.step()
            history.epoch_time.append(time.perf_counter() - t0)
            stop = False
            for cb in callbacks:
                r = cb(epoch, history)
                stop = (r is not None and bool(r)) or stop
            if stop:
                break
    finally:
        _restore_modes(saved_modes)
    return history


def _batch_bounds(n, batch_size):
    """Start and end of every mini-batch; a last batch of one sample joins the one before
    (batch statistics, as in BatchNorm1d, need at least two samples)."""
    starts = list(range(0, n, batch_size))
    if len(starts) > 1 and n - starts[-1] == 1:
        starts.pop()
    ends = [*starts[1:], n]
    return starts, ends


def _copy_tree(value):
    if is_array(value):
        return value.copy()
    if isinstance(value, dict):
        return {k: _copy_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_tree(v) for v in value]
    return value


def _snapshot(model, params, optimizer):
    """Device copies of everything an epoch changes: parameters, optimizer state, buffers."""
    buffers = [(m, {k: v.copy() for k, v in m._extra_state().items()}) for m in model.modules()]
    opt_state = _copy_tree(getattr(optimizer, "state", None))
    return [p.data.copy() for p in params], opt_state, buffers


def _restore(model, params, optimizer, snapshot):
    data, opt_state, buffers = snapshot
    for p, old in zip(params, data, strict=True):
        p.data[...] = old
    if opt_state is not None:
        optimizer.state = opt_state
    for m, saved in buffers:
        if saved:
            m._load_extra_state(saved)


def format_epoch(history, epoch=None, epochs=None) -> str:
    """One line describing an epoch of ``history`` (the last one by default)."""
    i = (history.epochs if epoch is None else epoch) - 1
    head = f"epoch {i + 1}" + (f"/{epochs}" if epochs else "")
    parts = [head, f"loss {history.loss[i]:.4f}", f"acc {_fmt(history.acc[i])}"]
    if history.val_loss:
        parts += [f"val_loss {history.val_loss[i]:.4f}", f"val_acc {_fmt(history.val_acc[i])}"]
    if history.lr[i] is not None:
        parts.append(f"lr {history.lr[i]:.3g}")
    parts.append(f"time {history.epoch_time[i]:.2f}s")
    return "  ".join(parts)

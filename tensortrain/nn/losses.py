"""Loss functions returning ``(loss, gradient)`` and a batch accuracy.

Losses are returned as 0-d arrays of the input's backend, so a training loop on CuPy does
not synchronize the device per step; call ``float(loss)`` when the value is needed on the
host.  Each loss is the *mean* over the batch (or over all elements for :func:`mse`), and the
returned gradient is the gradient of that mean.
"""

from __future__ import annotations

from .._backend import get_xp, is_array
from ..errors import ShapeError, TTError
from .layers import check_input

__all__ = ["accuracy", "mse", "softmax_cross_entropy"]


def _check_labels(labels, batch, where):
    if not is_array(labels):
        raise TypeError(f"{where}: labels must be a NumPy or CuPy array of class indices, got "
                        f"{type(labels).__name__}")
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{where}: labels must be integer class indices, got dtype "
                        f"{labels.dtype}")
    if labels.shape != (batch,):
        raise ShapeError(f"{where}: labels must have shape ({batch},) to match the logits, got "
                         f"{tuple(labels.shape)}")


def _check_logits(logits, where):
    check_input(logits, where)
    if logits.ndim != 2:
        raise ShapeError(f"{where}: logits must have shape (batch, classes), got "
                         f"{tuple(logits.shape)}")
    if logits.shape[0] == 0 or logits.shape[1] == 0:
        raise ShapeError(f"{where}: logits must have at least one sample and one class, got "
                         f"shape {tuple(logits.shape)}")


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of ``softmax(logits)`` against integer labels, and its gradient.

    Fused and numerically stable: ``log_softmax = z - log(sum(exp(z)))`` with
    ``z = logits - max(logits)``, so logits of any magnitude give a finite loss.

    Parameters
    ----------
    logits : array (B, C), float
    labels : integer array (B,), same backend, values in ``[0, C)``

    Returns
    -------
    loss : 0-d array
        ``-mean_b log softmax(logits)[b, labels[b]]``, on the backend of ``logits``.
    dlogits : array (B, C)
        ``(softmax(logits) - onehot(labels)) / B``.

    Notes
    -----
    The range of ``labels`` is checked for NumPy inputs only: checking CuPy labels would
    synchronize the device every step.  Out-of-range CuPy labels give undefined results.

    **Complexity**: ``O(B C)``.

    Examples
    --------
    >>> import numpy as np
    >>> loss, d = softmax_cross_entropy(np.zeros((2, 4)), np.array([0, 3]))
    >>> round(float(loss), 6) == round(float(np.log(4)), 6)
    True
    """
    _check_logits(logits, "softmax_cross_entropy")
    batch, classes = logits.shape
    _check_labels(labels, batch, "softmax_cross_entropy")
    xp = get_xp(logits, labels)
    if xp.__name__ == "numpy":
        lo, hi = int(labels.min()), int(labels.max())
        if lo < 0 or hi >= classes:
            raise TTError(f"softmax_cross_entropy: labels must be class indices in [0, "
                          f"{classes}), got values in [{lo}, {hi}]")
    z = logits - logits.max(axis=1, keepdims=True)
    log_norm = xp.log(xp.exp(z).sum(axis=1, keepdims=True))
    log_probs = z - log_norm
    rows = xp.arange(batch)
    loss = xp.asarray(-log_probs[rows, labels].mean())
    dlogits = xp.exp(log_probs)
    dlogits[rows, labels] -= 1
    dlogits *= 1.0 / batch
    return loss, dlogits


def mse(pred, target):
    """Mean squared error over all elements, ``mean((pred - target)^2)``, and its gradient.

    Returns
    -------
    loss : 0-d array
    dpred : array like ``pred``: ``2 (pred - target) / pred.size``.

    Examples
    --------
    >>> import numpy as np
    >>> loss, d = mse(np.array([1.0, 3.0]), np.array([0.0, 1.0]))
    >>> float(loss)
    2.5
    """
    check_input(pred, "mse")
    if not is_array(target):
        raise TypeError(f"mse: target must be a NumPy or CuPy array, got {type(target).__name__}")
    if target.dtype.kind not in "fiu":
        raise TypeError(f"mse: target must be real numbers, got dtype {target.dtype}")
    if tuple(pred.shape) != tuple(target.shape):
        raise ShapeError(f"mse: pred has shape {tuple(pred.shape)} but target has shape "
                         f"{tuple(target.shape)}")
    if pred.size == 0:
        raise ShapeError("mse: pred is empty")
    xp = get_xp(pred, target)
    diff = pred - target.astype(pred.dtype, copy=False)
    loss = xp.asarray((diff * diff).mean())
    return loss, diff * (2.0 / pred.size)


def accuracy(logits, labels):
    """Fraction of rows whose largest logit is at the label, as a 0-d float64 array."""
    _check_logits(logits, "accuracy")
    _check_labels(labels, logits.shape[0], "accuracy")
    xp = get_xp(logits, labels)
    return xp.asarray((logits.argmax(axis=1) == labels).mean())

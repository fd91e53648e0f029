"""Dense layers, activations, dropout and batch normalization with hand-written backward.

Every layer follows the :class:`~tensortrain.nn.module.Module` contract: ``forward(x)``
caches exactly what ``backward(grad_out)`` needs, ``backward`` consumes that cache, *adds*
parameter gradients with :meth:`Parameter.accumulate` and returns the input gradient.  The
backend (NumPy or CuPy) is the one of the arrays; nothing here synchronizes the device.
"""

from __future__ import annotations

import numbers

import numpy as np

from .._backend import asarray, backend_name, get_xp, is_array, resolve_xp
from .._validation import check_features, check_input, check_nn_dtype
from ..errors import ShapeError, TTError
from .init import check_init, init_std, make_rng, normal
from .module import Module, Parameter

__all__ = ["BatchNorm1d", "Dropout", "Linear", "ReLU", "Tanh", "check_input"]


def _check_grad(grad_out, shape, where):
    if not is_array(grad_out):
        raise TypeError(f"{where}.backward expects a NumPy or CuPy array, got "
                        f"{type(grad_out).__name__}")
    if tuple(grad_out.shape) != tuple(shape):
        raise ShapeError(f"{where}.backward expects grad_out of shape {tuple(shape)} (the "
                         f"forward output), got {tuple(grad_out.shape)}")
    return grad_out


def _check_probability(value, what, upper_open=True):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    ok = 0.0 <= value < 1.0 if upper_open else 0.0 <= value <= 1.0
    if not ok:
        interval = "[0, 1)" if upper_open else "[0, 1]"
        raise TTError(f"{what} must be in {interval}, got {value!r}")
    return value


class Linear(Module):
    """Fully connected layer ``y = x @ W.T + b`` with ``W`` of shape ``(out_features, in_features)``.

    **Complexity**: forward ``2 B N M`` flops; backward twice that.

    Parameters
    ----------
    in_features, out_features : int
        Input width ``N`` and output width ``M``.
    bias : bool
        Learn an additive bias (initialized to zero).
    init : {'glorot', 'he'}
        Normal initialization with variance ``2 / (N + M)`` (Glorot) or ``2 / N`` (He).
    dtype : float32 or float64
    xp : None, 'numpy', 'cupy' or the module
        Backend of the parameters (default NumPy).
    rng : None, int or numpy.random.Generator
        Source of the initial weights (drawn on the host, then moved once).

    Examples
    --------
    >>> import numpy as np
    >>> layer = Linear(4, 3, rng=0)
    >>> layer(np.ones((2, 4), np.float32)).shape
    (2, 3)
    """

    def __init__(self, in_features, out_features, bias=True, init="glorot", dtype=np.float32,
                 xp=None, rng=None):
        super().__init__()
        self.in_features = check_features(in_features, "in_features")
        self.out_features = check_features(out_features, "out_features")
        self.init = check_init(init)
        dtype = check_nn_dtype(dtype)
        xp = resolve_xp(xp)
        std = init_std(self.init, self.in_features, self.out_features)
        self.weight = Parameter(normal((self.out_features, self.in_features), std, dtype, xp,
                                       make_rng(rng)))
        self.bias = Parameter(xp.zeros(self.out_features, dtype=dtype)) if bias else None

    def forward(self, x):
        check_input(x, "Linear", self.in_features)
        get_xp(x, self.weight.data)  # a clear BackendError for mixed backends
        y = x @ self.weight.data.T
        if self.bias is not None:
            y += self.bias.data
        self._cache = x
        return y

    def backward(self, grad_out, need_input_grad=True):
        x = self._take_cache()
        g = _check_grad(grad_out, (x.shape[0], self.out_features), "Linear")
        self.weight.accumulate(g.T @ x)
        if self.bias is not None:
            self.bias.accumulate(g.sum(axis=0))
        return g @ self.weight.data if need_input_grad else None

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}, init={self.init!r}, dtype={self.weight.dtype}")


class ReLU(Module):
    """``max(x, 0)`` elementwise; the gradient at exactly 0 is taken as 0."""

    def forward(self, x):
        check_input(x, "ReLU")
        mask = x > 0
        self._cache = mask
        xp = get_xp(x)
        # -inf -> 0 (not NaN, as x * mask would give); NaN stays NaN
        return xp.where(x <= 0, xp.zeros((), dtype=x.dtype), x)

    def backward(self, grad_out):
        mask = self._take_cache()
        g = _check_grad(grad_out, mask.shape, "ReLU")
        xp = get_xp(g)
        return xp.where(mask, g, xp.zeros((), dtype=g.dtype))


class Tanh(Module):
    """``tanh(x)`` elementwise; backward uses the cached output: ``g * (1 - y^2)``."""

    def forward(self, x):
        check_input(x, "Tanh")
        y = get_xp(x).tanh(x)
        self._cache = y
        return y

    def backward(self, grad_out):
        y = self._take_cache()
        g = _check_grad(grad_out, y.shape, "Tanh")
        return g * (1 - y * y)


_IDENTITY = object()  # the cache of a layer that acted as the identity


class Dropout(Module):
    """Inverted dropout: in training mode each entry is zeroed with probability ``p`` and the
    survivors are scaled by ``1 / (1 - p)``; in evaluation mode (or with ``p = 0``) the
    identity.

    The mask is drawn on the device of the input with that backend's ``random.Generator``:
    a NumPy ``Generator`` for NumPy inputs, and for CuPy inputs a ``cupy.random`` generator
    seeded (once, on the host) from the same source, so no host round trip happens per step.

    Parameters
    ----------
    p : float in [0, 1)
        Drop probability.
    rng : None, int or numpy.random.Generator
        Seed or generator of the masks; :meth:`reseed` restarts the stream.
    """

    def __init__(self, p=0.5, rng=None):
        super().__init__()
        self.p = _check_probability(p, "Dropout p")
        self.reseed(rng)

    def reseed(self, rng=None):
        """Restart the mask stream from ``rng`` (None, an int seed or a NumPy Generator)."""
        self._rng = make_rng(rng)
        self._device_rngs = {}
        return self

    def _generator(self, xp):
        name = backend_name(xp)
        if name == "numpy":
            return self._rng
        gen = self._device_rngs.get(name)
        if gen is None:
            seed = int(self._rng.integers(0, 2**63 - 1))
            gen = self._device_rngs[name] = xp.random.default_rng(seed)
        return gen

    def forward(self, x):
        check_input(x, "Dropout")
        if not self.training or self.p == 0.0:
            self._cache = (_IDENTITY, x.shape)
            return x
        xp = get_xp(x)
        udtype = x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float32)
        u = self._generator(xp).random(x.shape, dtype=udtype)
        mask = (u >= self.p).astype(x.dtype)
        mask *= 1.0 / (1.0 - self.p)
        self._cache = (mask, x.shape)
        return x * mask

    def backward(self, grad_out):
        mask, shape = self._take_cache()
        g = _check_grad(grad_out, shape, "Dropout")
        if mask is _IDENTITY:
            return g
        return g * mask

    def extra_repr(self):
        return f"p={self.p}"


class BatchNorm1d(Module):
    """Batch normalization over the batch axis of ``(batch, num_features)`` inputs.

    Training mode normalizes with the batch mean and biased variance and updates the running
    statistics ``running = (1 - momentum) * running + momentum * batch`` (the running variance
    uses the unbiased batch variance, as PyTorch does).  Evaluation mode normalizes with the
    running statistics.  Both modes have an exact backward.  ``running_mean`` and
    ``running_var`` are saved by :meth:`state_dict`.

    **Complexity**: ``O(B C)`` forward and backward.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, dtype=np.float32,
                 xp=None):
        super().__init__()
        self.num_features = check_features(num_features, "num_features")
        if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
            raise TypeError(f"BatchNorm1d eps must be a real number, got {type(eps).__name__}")
        if not float(eps) > 0:
            raise TTError(f"BatchNorm1d eps must be > 0, got {eps!r}")
        self.eps = float(eps)
        self.momentum = _check_probability(momentum, "BatchNorm1d momentum", upper_open=False)
        dtype = check_nn_dtype(dtype)
        xp = resolve_xp(xp)
        self.affine = bool(affine)
        if self.affine:
            self.weight = Parameter(xp.ones(self.num_features, dtype=dtype))
            self.bias = Parameter(xp.zeros(self.num_features, dtype=dtype))
        else:
            self.weight = self.bias = None
        self.running_mean = xp.zeros(self.num_features, dtype=dtype)
        self.running_var = xp.ones(self.num_features, dtype=dtype)

    def _extra_state(self):
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def _load_extra_state(self, state):
        for key in ("running_mean", "running_var"):
            if key in state:
                buf = getattr(self, key)
                buf[...] = asarray(state[key], get_xp(buf)).astype(buf.dtype, copy=False)

    def forward(self, x):
        check_input(x, "BatchNorm1d", self.num_features)
        xp = get_xp(x, self.running_mean)
        if self.training:
            batch = x.shape[0]
            if batch < 2:
                raise ShapeError(f"BatchNorm1d needs more than one sample per batch in training "
                                 f"mode, got a batch of {batch}; use eval() for single samples")
            mean = x.mean(axis=0)
            centered = x - mean
            var = (centered * centered).mean(axis=0)
            m = self.momentum
            self.running_mean *= 1.0 - m
            self.running_mean += (m * mean).astype(self.running_mean.dtype, copy=False)
            self.running_var *= 1.0 - m
            self.running_var += (m * batch / (batch - 1) * var).astype(self.running_var.dtype,
                                                                      copy=False)
        else:
            centered = x - self.running_mean
            var = self.running_var
        inv_std = 1.0 / xp.sqrt(var + self.eps)
        xhat = centered * inv_std
        self._cache = (self.training, xhat, inv_std)
        if self.affine:
            return xhat * self.weight.data + self.bias.data
        return xhat

    def backward(self, grad_out):
        training, xhat, inv_std = self._take_cache()
        g = _check_grad(grad_out, xhat.shape, "BatchNorm1d")
        if self.affine:
            self.weight.accumulate((g * xhat).sum(axis=0))
            self.bias.accumulate(g.sum(axis=0))
            dxhat = g * self.weight.data
        else:
            dxhat = g
        if not training:
            return dxhat * inv_std
        # d/dx of (x - mean) / sqrt(var + eps) with batch statistics:
        # inv_std * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))
        return inv_std * (dxhat - dxhat.mean(axis=0) - xhat * (dxhat * xhat).mean(axis=0))

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, dtype={self.running_mean.dtype}")

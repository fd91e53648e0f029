"""Optimizers (SGD, Adam, AdamW), global-norm clipping and learning-rate schedules.

An :class:`Optimizer` owns the per-parameter state (a dict keyed by the parameter's index in
the list it was given) and writes one update rule per subclass.  Updates are applied in place
to ``p.data`` with the backend of ``p.data``; ``p.grad`` is never written: weight decay and
clipping build new arrays.  Parameters whose ``grad`` is ``None`` are skipped (their state
does not advance).  Nothing in :meth:`Optimizer.step` synchronizes the device: the clipping
factor stays a 0-d device array.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, ClassVar

import numpy as np

from .._backend import asarray, get_xp, is_array, to_host
from .._validation import check_positive_int
from ..errors import ShapeError, TTError
from .module import Module, Parameter

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "CosineLR",
    "Optimizer",
    "StepLR",
    "grad_norm",
    "make_optimizer",
]

_REQUIRED = object()


# ---- option checks ------------------------------------------------------------------------
def _real(value, name, owner):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner} option {name} must be a real number, got "
                        f"{type(value).__name__} {value!r}")
    return float(value)


def _check_lr(value, owner, allow_zero=False):
    lr = _real(value, "lr", owner)
    ok = lr >= 0 if allow_zero else lr > 0
    if math.isnan(lr) or math.isinf(lr) or not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise TTError(f"{owner} option lr must be a finite number {bound}, got {value!r}")
    return lr


def _check_nonneg(value, name, owner):
    v = _real(value, name, owner)
    if not (v >= 0) or math.isinf(v):
        raise TTError(f"{owner} option {name} must be a finite number >= 0, got {value!r}")
    return v


def _check_unit(value, name, owner):
    v = _real(value, name, owner)
    if not (0.0 <= v < 1.0):
        raise TTError(f"{owner} option {name} must be in [0, 1), got {value!r}")
    return v


def _check_max_norm(value, owner):
    if value is None:
        return None
    v = _real(value, "max_grad_norm", owner)
    if not (v > 0) or math.isinf(v):
        raise TTError(f"{owner} option max_grad_norm must be None or a finite number > 0, "
                      f"got {value!r}")
    return v


def _as_parameter_list(params, owner):
    if isinstance(params, Module):
        params = params.parameters()
    elif isinstance(params, Parameter):
        params = [params]
    try:
        params = list(params)
    except TypeError:
        raise TypeError(f"{owner} expects an iterable of Parameters (e.g. model.parameters()), "
                        f"got {type(params).__name__}") from None
    if not params:
        raise TTError(f"{owner} got an empty parameter list")
    seen = set()
    for i, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise TypeError(f"{owner} expects Parameters, got {type(p).__name__} at position {i}")
        if id(p) in seen:
            raise TTError(f"{owner} got the same Parameter twice (position {i})")
        seen.add(id(p))
    return params


# ---- global norm --------------------------------------------------------------------------
def _global_norm(grads):
    """0-d array: sqrt of the sum of squares of all ``grads`` (one reduction per array,
    accumulated on the device; no host transfer)."""
    xp = get_xp(*grads)
    total = None
    for g in grads:
        flat = g.reshape(-1).astype(np.float64)    # float32 squares overflow near 1e19
        sq = xp.asarray(xp.dot(flat, flat))
        total = sq if total is None else total + sq
    return xp.asarray(xp.sqrt(total))


def grad_norm(params):
    """Global L2 norm of the gradients of ``params`` (a Module or Parameters) as a 0-d array.

    Parameters without a gradient are ignored; with no gradient at all the result is a NumPy
    ``0.0``.  No device synchronization: convert with ``float()`` when needed.
    """
    params = _as_parameter_list(params, "grad_norm")
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return np.asarray(0.0)
    return _global_norm(grads)


# ---- the optimizers -----------------------------------------------------------------------
class Optimizer:
    """Base class: option handling, per-parameter state, clipping and the step loop.

    Subclasses set ``_defaults`` (the ordered options after ``lr``, with their defaults),
    may extend :meth:`_check_options`, and implement :meth:`_update`.

    Parameters
    ----------
    params : iterable of Parameter, or a Module
    lr : float > 0
    **options : the subclass's options; an unknown name raises ``TypeError`` listing them.
    """

    _defaults: ClassVar[dict[str, Any]] = {}
    _lr_default = _REQUIRED

    def __init__(self, params, lr=_REQUIRED, **options):
        name = type(self).__name__
        self.params = _as_parameter_list(params, name)
        valid = ("lr", *self._defaults)
        for key in options:
            if key not in valid:
                raise TypeError(f"unknown option {key!r} for {name}; valid options: "
                                f"{', '.join(valid)}")
        if lr is _REQUIRED:
            lr = self._lr_default
        if lr is _REQUIRED:
            raise TypeError(f"{name} requires a learning rate: {name}(params, lr=...)")
        merged = dict(self._defaults)
        merged.update(options)
        merged["lr"] = _check_lr(lr, name)
        self._options = tuple(valid)
        for key, value in self._check_options(merged).items():
            setattr(self, key, value)
        self.state = {}

    # options -----------------------------------------------------------------------------
    @property
    def lr(self):
        """The learning rate; schedules assign it.  May be set to 0 (frozen) but not below."""
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = _check_lr(value, type(self).__name__, allow_zero=True)

    def _check_options(self, opts):
        owner = type(self).__name__
        opts["weight_decay"] = _check_nonneg(opts["weight_decay"], "weight_decay", owner)
        opts["max_grad_norm"] = _check_max_norm(opts["max_grad_norm"], owner)
        return opts

    @property
    def options(self):
        """The current options as a dict (``lr`` first)."""
        return {key: getattr(self, key) for key in self._options}

    def __repr__(self):
        opts = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({len(self.params)} parameters, {opts})"

    # the step ----------------------------------------------------------------------------
    def zero_grad(self):
        """Set every parameter's ``grad`` to ``None``."""
        for p in self.params:
            p.grad = None

    def _gradients(self):
        """``[(index, param, grad)]`` for parameters with a gradient, clipped when asked.

        Clipped gradients are new arrays; ``p.grad`` itself is never modified.
        """
        items = [(i, p, p.grad) for i, p in enumerate(self.params) if p.grad is not None]
        if self.max_grad_norm is None or not items:
            return items
        grads = [g for _, _, g in items]
        xp = get_xp(*grads)
        norm = _global_norm(grads)
        scale = xp.minimum(1.0, self.max_grad_norm / (norm + 1e-12))
        return [(i, p, g * scale.astype(g.dtype)) for i, p, g in items]

    def step(self):
        """Apply one update to every parameter that has a gradient."""
        for i, p, g in self._gradients():
            self._update(p, g, self.state.setdefault(i, {}))

    def _update(self, p, g, state):  # pragma: no cover - abstract
        """Update ``p.data`` in place from gradient ``g`` (never write into ``g``)."""
        raise NotImplementedError

    # state -------------------------------------------------------------------------------
    def state_dict(self):
        """The optimizer's options and per-parameter state (host NumPy copies)."""
        state = {}
        for i, entries in self.state.items():
            state[i] = {k: (to_host(v).copy() if is_array(v) else v) for k, v in entries.items()}
        return {"optimizer": type(self).__name__, "options": self.options, "state": state}

    def load_state_dict(self, state_dict):
        """Restore options and per-parameter state saved by :meth:`state_dict`.

        The optimizer type and the shapes must match; arrays move to each parameter's backend.
        Nothing changes unless everything fits.
        """
        name = type(self).__name__
        if not isinstance(state_dict, dict) or not {"optimizer", "options", "state"} <= set(
                state_dict):
            raise TypeError(f"{name}.load_state_dict expects a dict from state_dict() with keys "
                            f"'optimizer', 'options' and 'state'")
        if state_dict["optimizer"] != name:
            raise TTError(f"state_dict is for {state_dict['optimizer']}, not {name}")
        options = dict(state_dict["options"])
        unknown = [k for k in options if k not in self._options]
        if unknown:
            raise KeyError(f"state_dict has unknown {name} options {unknown}")
        merged = self.options
        merged.update(options)
        merged["lr"] = _check_lr(merged["lr"], name, allow_zero=True)
        merged = self._check_options(merged)
        new_state = {}
        for key, entries in state_dict["state"].items():
            i = int(key)
            if not 0 <= i < len(self.params):
                raise KeyError(f"state_dict has state for parameter {i}, but {name} has "
                               f"{len(self.params)} parameters")
            p = self.params[i]
            xp = get_xp(p.data)
            moved = {}
            for k, v in entries.items():
                if is_array(v) and v.ndim > 0:
                    if tuple(v.shape) != tuple(p.data.shape):
                        raise ShapeError(f"state_dict entry state[{i}][{k!r}] has shape "
                                         f"{tuple(v.shape)}, but parameter {i} has shape "
                                         f"{tuple(p.data.shape)}")
                    moved[k] = asarray(v, xp).astype(p.data.dtype, copy=True)
                else:
                    moved[k] = v
            new_state[i] = moved
        for key, value in merged.items():
            setattr(self, key, value)
        self.state = new_state
        return self


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum and L2 weight decay.

    With ``d = g + weight_decay * p``: ``buf = momentum * buf + d`` (``buf = d`` on the first
    step), then ``p -= lr * (d + momentum * buf)`` with Nesterov, ``p -= lr * buf`` without,
    and ``p -= lr * d`` when ``momentum == 0``.  (PyTorch's rule, without dampening.)

    Options: ``lr`` (required), ``momentum=0.0``, ``nesterov=False``, ``weight_decay=0.0``,
    ``max_grad_norm=None``.
    """

    _defaults: ClassVar[dict[str, Any]] = {"momentum": 0.0, "nesterov": False, "weight_decay": 0.0,
                 "max_grad_norm": None}

    def _check_options(self, opts):
        owner = type(self).__name__
        opts = super()._check_options(opts)
        opts["momentum"] = _check_unit(opts["momentum"], "momentum", owner)
        if not isinstance(opts["nesterov"], (bool, np.bool_)):
            raise TypeError(f"{owner} option nesterov must be True or False, got "
                            f"{opts['nesterov']!r}")
        opts["nesterov"] = bool(opts["nesterov"])
        if opts["nesterov"] and opts["momentum"] == 0:
            raise TTError(f"{owner} option nesterov=True needs momentum > 0, got momentum="
                          f"{opts['momentum']!r}")
        return opts

    def _update(self, p, g, state):
        if self.weight_decay:
            g = g + self.weight_decay * p.data
        if self.momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = g.astype(p.data.dtype, copy=True)
            else:
                buf *= self.momentum
                buf += g
            d = g + self.momentum * buf if self.nesterov else buf
        else:
            d = g
        p.data -= self.lr * d


class Adam(Optimizer):
    """Adam (Kingma & Ba) with bias correction and optional L2 weight decay added to the
    gradient (``g + weight_decay * p``; see :class:`AdamW` for the decoupled form).

    ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
    ``p -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``, with ``t`` counted per
    parameter.

    Options: ``lr=1e-3``, ``betas=(0.9, 0.999)``, ``eps=1e-8``, ``weight_decay=0.0``,
    ``max_grad_norm=None``.
    """

    _defaults: ClassVar[dict[str, Any]] = {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0,
                 "max_grad_norm": None}
    _lr_default = 1e-3
    _decoupled = False

    def _check_options(self, opts):
        owner = type(self).__name__
        opts = super()._check_options(opts)
        betas = opts["betas"]
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise TypeError(f"{owner} option betas must be a pair (beta1, beta2), got "
                            f"{betas!r}") from None
        opts["betas"] = (_check_unit(b1, "betas[0]", owner), _check_unit(b2, "betas[1]", owner))
        eps = _real(opts["eps"], "eps", owner)
        if not eps >= 0 or math.isinf(eps):
            raise TTError(f"{owner} option eps must be a finite number >= 0, got "
                          f"{opts['eps']!r}")
        opts["eps"] = eps
        return opts

    def _update(self, p, g, state):
        b1, b2 = self.betas
        if self.weight_decay and not self._decoupled:
            g = g + self.weight_decay * p.data
        if not state:
            state["step"] = 0
            xp = get_xp(p.data)
            state["exp_avg"] = xp.zeros_like(p.data)
            state["exp_avg_sq"] = xp.zeros_like(p.data)
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= b1
        m += (1 - b1) * g
        v *= b2
        v += (1 - b2) * (g * g)
        if self.weight_decay and self._decoupled:
            p.data *= 1 - self.lr * self.weight_decay
        step_size = self.lr / (1 - b1 ** t)
        denom = get_xp(v).sqrt(v * (1.0 / (1 - b2 ** t)))
        denom += self.eps
        p.data -= step_size * (m / denom)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter): ``p *= 1 - lr * weight_decay``
    before the Adam step, instead of adding ``weight_decay * p`` to the gradient.

    Options: ``lr=1e-3``, ``betas=(0.9, 0.999)``, ``eps=1e-8``, ``weight_decay=1e-2``,
    ``max_grad_norm=None``.
    """

    _defaults: ClassVar[dict[str, Any]] = dict(Adam._defaults, weight_decay=1e-2)
    _decoupled = True


_OPTIMIZERS = {"sgd": SGD, "adam": Adam, "adamw": AdamW}


def make_optimizer(name, params, **options):
    """Build an optimizer by name (``'sgd'``, ``'adam'`` or ``'adamw'``, any case).

    Examples
    --------
    >>> from tensortrain.nn.layers import Linear
    >>> make_optimizer('adam', Linear(3, 2, rng=0).parameters(), lr=1e-2)
    Adam(2 parameters, lr=0.01, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0, max_grad_norm=None)
    """
    if not isinstance(name, str):
        raise TypeError(f"optimizer name must be a string, got {type(name).__name__}")
    cls = _OPTIMIZERS.get(name.strip().lower())
    if cls is None:
        valid = ", ".join(repr(n) for n in _OPTIMIZERS)
        raise TTError(f"unknown optimizer {name!r}; expected one of {valid}")
    return cls(params, **options)


# ---- learning-rate schedules --------------------------------------------------------------
class _Schedule:
    """Base of the schedules: remembers the optimizer's initial lr; ``step()`` once per epoch."""

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__} expects an Optimizer, got "
                            f"{type(optimizer).__name__}")
        self.optimizer = optimizer
        self.base_lr = optimizer.lr
        self.last_epoch = 0

    def get_lr(self) -> float:  # pragma: no cover - abstract
        """The learning rate for the current epoch (``last_epoch``)."""
        raise NotImplementedError

    def step(self):
        """Advance one epoch and set the optimizer's lr; returns the new lr."""
        self.last_epoch += 1
        lr = self.get_lr()
        self.optimizer.lr = lr
        return lr

    def state_dict(self):
        """The schedule's state: initial lr and epoch counter."""
        return {"base_lr": self.base_lr, "last_epoch": self.last_epoch}

    def load_state_dict(self, state):
        """Restore a :meth:`state_dict` and set the optimizer's lr to match; returns ``self``."""
        self.base_lr = _check_lr(state["base_lr"], type(self).__name__)
        self.last_epoch = int(state["last_epoch"])
        self.optimizer.lr = self.get_lr()
        return self


class StepLR(_Schedule):
    """``lr = base_lr * gamma ** (epoch // step_size)``.

    Examples
    --------
    >>> from tensortrain.nn.layers import Linear
    >>> opt = SGD(Linear(2, 2, rng=0).parameters(), lr=1.0)
    >>> sched = StepLR(opt, step_size=2, gamma=0.5)
    >>> [sched.step() for _ in range(4)]
    [1.0, 0.5, 0.5, 0.25]
    """

    def __init__(self, optimizer, step_size, gamma=0.1):
        super().__init__(optimizer)
        self.step_size = check_positive_int(step_size, "StepLR step_size")
        gamma = _real(gamma, "gamma", "StepLR")
        if not gamma > 0 or math.isinf(gamma):
            raise TTError(f"StepLR gamma must be a finite number > 0, got {gamma!r}")
        self.gamma = gamma

    def get_lr(self):
        return self.base_lr * self.gamma ** (self.last_epoch // self.step_size)


class CosineLR(_Schedule):
    """Cosine annealing from the initial lr to ``eta_min`` over ``t_max`` epochs:
    ``lr = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / t_max)) / 2`` with
    ``t = min(epoch, t_max)`` (it stays at ``eta_min`` after ``t_max``; no restarts).
    """

    def __init__(self, optimizer, t_max, eta_min=0.0):
        super().__init__(optimizer)
        self.t_max = check_positive_int(t_max, "CosineLR t_max")
        eta = _real(eta_min, "eta_min", "CosineLR")
        if not eta >= 0 or math.isinf(eta):
            raise TTError(f"CosineLR eta_min must be a finite number >= 0, got {eta_min!r}")
        self.eta_min = eta

    def get_lr(self):
        t = min(self.last_epoch, self.t_max)
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * t
                                                                           / self.t_max)) / 2

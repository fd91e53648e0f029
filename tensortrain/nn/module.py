"""Parameters, modules and containers: the framework-free skeleton of tensortrain.nn.

A :class:`Module` computes ``forward(x)`` and caches exactly what its ``backward(grad_out)``
needs; ``backward`` returns the gradient with respect to the input and *adds* the gradients
of its parameters into ``Parameter.grad``.  Calling ``backward`` without a cached forward
raises ``RuntimeError``; the cache is consumed by ``backward``.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict

import numpy as np

from .._backend import asarray, backend_name, get_xp, is_array, to_host
from ..errors import ShapeError

__all__ = ["Module", "Parameter", "Sequential"]


class Parameter:
    """A trainable array and its gradient.

    ``data`` is a NumPy or CuPy array updated in place by optimizers; ``grad`` is ``None``
    until a backward pass adds to it.
    """

    __slots__ = ("data", "grad")

    def __init__(self, data):
        if not is_array(data):
            raise TypeError(f"Parameter data must be a NumPy or CuPy array, got "
                            f"{type(data).__name__}")
        self.data = data
        self.grad = None

    @property
    def shape(self):
        """Shape of ``data``."""
        return self.data.shape

    @property
    def dtype(self):
        """Dtype of ``data``."""
        return self.data.dtype

    @property
    def size(self):
        """Number of entries of ``data``."""
        return int(self.data.size)

    def accumulate(self, g):
        """Add ``g`` to the gradient (a new array the first time; never the caller's ``g``)."""
        if g.shape != self.data.shape:
            raise ShapeError(f"gradient of shape {g.shape} for a parameter of shape "
                             f"{self.data.shape}")
        if self.grad is None:
            self.grad = g.astype(self.data.dtype, copy=True)
        else:
            self.grad += g

    def __repr__(self):
        xp = get_xp(self.data)
        return (f"Parameter(shape={self.data.shape}, dtype={self.data.dtype}, "
                f"backend={backend_name(xp)})")


_TAKES_FLAG: dict = {}


def _takes_need_input_grad(cls) -> bool:
    """Whether ``cls.backward`` has a ``need_input_grad`` parameter (cached per class)."""
    known = _TAKES_FLAG.get(cls)
    if known is None:
        try:
            names = set(inspect.signature(cls.backward).parameters)
        except (TypeError, ValueError):      # no signature to read: assume the plain form
            names = set()
        known = _TAKES_FLAG[cls] = "need_input_grad" in names
    return known


class Module:
    """Base class of layers and containers.

    Subclasses implement ``forward(x)`` and ``backward(grad_out)``.  Parameters and
    sub-modules are found from the instance attributes (also inside lists and tuples), in
    the order they were assigned, so ``parameters()`` and ``state_dict()`` are deterministic.

    A module whose ``backward`` has a ``need_input_grad`` parameter also accepts
    ``backward(grad_out, need_input_grad=False)``: it then accumulates its parameter
    gradients, skips the work of the input gradient and returns ``None`` (``Linear``,
    ``TTLinear`` and ``Sequential`` do; a network's first layer needs no input gradient).
    :attr:`skips_input_grad` says whether it does, read from the signature of the class's
    own ``backward``, so a subclass that overrides ``backward(grad_out)`` is called without
    the keyword.
    """

    @property
    def skips_input_grad(self) -> bool:
        """Whether ``backward`` takes ``need_input_grad`` (see the class docstring)."""
        return _takes_need_input_grad(type(self))

    def __init__(self):
        self.training = True
        self._cache = None

    # ---- the computation ------------------------------------------------------------------
    def forward(self, x):  # pragma: no cover - abstract
        """Compute the output for the input ``x`` and cache what :meth:`backward` needs."""
        raise NotImplementedError

    def backward(self, grad_out):  # pragma: no cover - abstract
        """Return the gradient with respect to the input of the last :meth:`forward`.

        ``grad_out`` is the gradient with respect to that forward's output; parameter
        gradients are added into ``Parameter.grad``.  Consumes the forward cache.
        """
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    def _take_cache(self):
        """Return and clear the forward cache, or raise if there is none."""
        cache = self._cache
        if cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward() called without a cached forward pass: call "
                f"forward(x) first (each forward allows one backward)")
        self._cache = None
        return cache

    # ---- structure ------------------------------------------------------------------------
    def _children(self):
        for name, value in vars(self).items():
            if name.startswith("_"):
                continue
            if isinstance(value, (Parameter, Module)):
                yield name, value
            elif isinstance(value, (list, tuple)):
                for i, v in enumerate(value):
                    if isinstance(v, (Parameter, Module)):
                        yield f"{name}.{i}", v

    def named_parameters(self, prefix=""):
        """``(name, Parameter)`` pairs, depth first, in assignment order."""
        for name, value in self._children():
            full = f"{prefix}{name}"
            if isinstance(value, Parameter):
                yield full, value
            else:
                yield from value.named_parameters(full + ".")

    def parameters(self):
        """All parameters, in the order of :meth:`named_parameters`."""
        return [p for _, p in self.named_parameters()]

    def modules(self):
        """This module and all sub-modules, depth first."""
        yield self
        for _, value in self._children():
            if isinstance(value, Module):
                yield from value.modules()

    def zero_grad(self):
        """Forget accumulated gradients (``grad = None``)."""
        for p in self.parameters():
            p.grad = None

    def train(self, mode=True):
        """Set training mode (dropout active, batch statistics used) on all sub-modules."""
        for m in self.modules():
            m.training = bool(mode)
        return self

    def eval(self):
        """Set evaluation mode on all sub-modules."""
        return self.train(False)

    @property
    def num_params(self) -> int:
        """Number of trainable numbers."""
        return sum(p.size for p in self.parameters())

    # ---- state ----------------------------------------------------------------------------
    def _extra_state(self):
        """Non-trainable arrays to save (e.g. running statistics), by name."""
        return {}

    def _load_extra_state(self, state):
        pass

    def state_dict(self):
        """An ordered mapping of names to host (NumPy) copies of every parameter and buffer."""
        out = OrderedDict()
        for name, p in self.named_parameters():
            out[name] = to_host(p.data).copy()
        for mname, m in self._named_modules():
            for key, arr in m._extra_state().items():
                out[f"{mname}{key}"] = to_host(arr).copy()
        return out

    def _named_modules(self, prefix=""):
        yield prefix, self
        for name, value in self._children():
            if isinstance(value, Module):
                yield from value._named_modules(f"{prefix}{name}.")

    def load_state_dict(self, state):
        """Copy arrays from ``state`` into this module's parameters and buffers, in place.

        Every name must be present with the right shape, and no unknown names may appear;
        nothing is modified unless all entries fit.
        """
        if not isinstance(state, dict):
            raise TypeError(f"load_state_dict expects a dict of arrays, got {type(state).__name__}")
        expected = OrderedDict(self.named_parameters())
        buffers = {}
        for mname, m in self._named_modules():
            for key, arr in m._extra_state().items():
                buffers[f"{mname}{key}"] = (m, key, arr)
        missing = [k for k in list(expected) + list(buffers) if k not in state]
        unexpected = [k for k in state if k not in expected and k not in buffers]
        if missing or unexpected:
            raise KeyError(f"state_dict does not match the module: missing {missing}, "
                           f"unexpected {unexpected}")
        # stage every entry first (converted, shape-checked); assign only if all fit
        staged = {}
        for name, target in list(expected.items()) + [(k, v[2]) for k, v in buffers.items()]:
            ref = target.data if isinstance(target, Parameter) else target
            value = state[name]
            if not is_array(value):
                try:
                    value = np.asarray(value, dtype=np.float64)
                except (TypeError, ValueError) as exc:
                    raise TypeError(f"state_dict entry {name!r} is not a numeric array: "
                                    f"{exc}") from None
            if value.dtype.kind not in "fiu":
                raise TypeError(f"state_dict entry {name!r} has dtype {value.dtype}; expected "
                                f"a real numeric array")
            if tuple(value.shape) != tuple(ref.shape):
                kind = "parameter" if isinstance(target, Parameter) else "buffer"
                raise ShapeError(f"state_dict entry {name!r} has shape {tuple(value.shape)}, "
                                 f"but the {kind} has shape {tuple(ref.shape)}")
            staged[name] = asarray(value, get_xp(ref)).astype(ref.dtype, copy=False)
        for name, p in expected.items():
            p.data[...] = staged[name]
        per_module = {}
        for name, (m, key, _) in buffers.items():
            per_module.setdefault(id(m), (m, {}))[1][key] = staged[name]
        for m, entries in per_module.values():
            m._load_extra_state(entries)
        return self

    # ---- display --------------------------------------------------------------------------
    def extra_repr(self) -> str:
        """Text shown inside the parentheses of the repr; subclasses list their settings."""
        return ""

    def __repr__(self):
        children = [(n, v) for n, v in self._children() if isinstance(v, Module)]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not children:
            return head + ")"
        lines = [head]
        for name, child in children:
            sub = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {sub}")
        return "\n".join(lines) + "\n)"


class Sequential(Module):
    """Modules applied in order; ``backward`` runs them in reverse.

    ``backward(grad_out, need_input_grad=False)`` (what :func:`tensortrain.nn.fit` calls)
    asks the first module with parameters for its parameter gradients only, when it supports
    that (``skips_input_grad``), and returns ``None``; the modules in front of it (a leading
    ``Dropout`` or ``ReLU``) are not run backward at all, since all they would give is an
    input gradient that nothing uses.
    """

    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential takes Module instances, got "
                                f"{type(layer).__name__} at position {i}")
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_out, need_input_grad=True):
        first = 0
        if not need_input_grad:     # the first module with parameters; none in front runs
            first = next((i for i, layer in enumerate(self.layers) if layer.parameters()),
                         len(self.layers))
        for i in range(len(self.layers) - 1, first - 1, -1):
            layer = self.layers[i]
            if i == first and not need_input_grad:
                if layer.skips_input_grad:
                    layer.backward(grad_out, need_input_grad=False)
                else:
                    layer.backward(grad_out)
                return None
            grad_out = layer.backward(grad_out)
        return grad_out if need_input_grad else None

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self.layers)

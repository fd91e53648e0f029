"""Functions on TT objects: inner products, rounding, orthogonalization, Kronecker products."""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np

from . import _cores, _scaling
from ._backend import get_xp
from ._base import _TTBase
from ._validation import MaxRank
from .matrix import TTMatrix
from .tensor import TTTensor

__all__ = ["dot", "kron", "log_dot", "log_norm", "norm", "orthogonalize", "round"]

TT = TypeVar("TT", TTTensor, TTMatrix)


def _check_tt(x, name):
    if not isinstance(x, _TTBase):
        raise TypeError(f"{name} must be a TTTensor or TTMatrix, got {type(x).__name__}")


def log_dot(a: TT, b: TT) -> tuple[float | complex, float]:
    """``<a, b>`` as ``(sign, log|<a, b>|)``, like :func:`numpy.linalg.slogdet`.

    ``sign`` is ``+-1`` (a unit complex number for complex inputs, 0 when the product is 0)
    and ``log|<a, b>|`` is finite for any ``d`` and any magnitude of the cores.
    """
    value, exp2 = _dot_parts(a, b)
    value = value.item()
    mag = abs(value)
    if mag == 0 or not math.isfinite(mag):
        return value * 0 if mag == 0 else value, -math.inf if mag == 0 else math.nan
    return value / mag, exp2 * math.log(2.0) + math.log(mag)


def _dot_parts(a, b):
    _check_tt(a, "a")
    _check_tt(b, "b")
    a._same_structure(b, "dot")
    checked = None if getattr(a, "is_padded", False) else (a._in_window and b._in_window)
    return _cores.log_dot(a._logical_cores3(), b._cores3(), checked)


def dot(a: TT, b: TT) -> float | complex:
    """Inner product ``<a, b> = sum(conj(a) * b)`` of two TTs of equal shape and modes.

    Cores and the running interface matrix are scaled by powers of two, so nothing in the
    sweep overflows or underflows and the result, put together exactly by ``ldexp``, is
    ``inf``/``0`` only when the value itself is outside the float64 range (use
    :func:`log_dot` then).  For a padded TTMatrix only the logical block counts.

    Complexity: ``O(d n r^3)`` time, ``O(r^2 n)`` memory.
    """
    value, exp2 = _dot_parts(a, b)
    return _scaling.scalar_ldexp(value.item(), exp2)


def norm(a: TTTensor | TTMatrix) -> float:
    """Frobenius norm of a TT (see :meth:`TTTensor.norm`)."""
    _check_tt(a, "a")
    return a.norm()


def log_norm(a: TTTensor | TTMatrix) -> float:
    """``log`` of the Frobenius norm, finite for any ``d`` (see :meth:`TTTensor.log_norm`)."""
    _check_tt(a, "a")
    return a.log_norm()


def round(a: TT, eps: float = 0.0, max_rank: MaxRank = None) -> TT:
    """TT rounding; see :meth:`TTTensor.round`."""
    _check_tt(a, "a")
    return a.round(eps=eps, max_rank=max_rank)


def orthogonalize(a: TT, direction: str = "left") -> TT:
    """Left- or right-orthogonal form; see :meth:`TTTensor.orthogonalize`."""
    _check_tt(a, "a")
    return a.orthogonalize(direction)


def kron(a: TT, b: TT) -> TT:
    """Kronecker product.

    For TTTensors the result has modes ``a.shape + b.shape`` and ``kron(a, b).full().ravel()``
    equals ``numpy.kron(a.full().ravel(), b.full().ravel())``.  For TTMatrix operands it equals
    ``numpy.kron(a.full(), b.full())``.  The cores are simply concatenated (a bond of rank 1).
    """
    _check_tt(a, "a")
    _check_tt(b, "b")
    get_xp(a.cores[0], b.cores[0])
    dtype = np.result_type(a.dtype, b.dtype)
    if isinstance(a, TTTensor) and isinstance(b, TTTensor):
        return TTTensor([c.astype(dtype, copy=False) for c in a.cores + b.cores])
    if isinstance(a, TTMatrix) and isinstance(b, TTMatrix):
        if b.is_padded:
            raise NotImplementedError(
                "kron(a, b) with a padded right operand b is not supported: the padding of b "
                "would interleave with the logical entries; build b with modes that cover its "
                f"shape exactly (b.shape={b.shape}, padded_shape={b.padded_shape})")
        shape = (a.shape[0] * b.shape[0], a.shape[1] * b.shape[1])
        return TTMatrix([c.astype(dtype, copy=False) for c in a.cores + b.cores], shape)
    raise TypeError(f"kron needs two TTTensors or two TTMatrix objects, got "
                     f"{type(a).__name__} and {type(b).__name__}")

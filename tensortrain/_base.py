"""Machinery shared by TTTensor and TTMatrix.

Both are immutable wrappers around a tuple of cores.  Algorithms that do not care whether a
core has one mode index or a (row, column) pair see *3-D views* ``(r, n, r')`` of the cores
(``n = m * n`` for a TT-matrix) through :meth:`_TTBase._cores3`, and rebuild an object of the
same kind with :meth:`_TTBase._with_cores3`.
"""

from __future__ import annotations

import functools
import math
import numbers
from typing import Any, TypeVar

import numpy as np

from . import _cores, _scaling, decompositions
from ._backend import asarray, backend_name, get_xp, is_array, resolve_xp
from ._validation import (
    Array,
    ArrayModule,
    DTypeLike,
    MaxRank,
    as_float_array,
    check_eps,
    check_finite,
    check_float_dtype,
    check_max_rank,
)
from .errors import RankError, ShapeError, TTError

_DIRECTIONS = ("left", "right")

_T = TypeVar("_T", bound="_TTBase")


def is_scalar(x) -> bool:
    """Python/NumPy numbers and 0-d arrays act as scalars in ``*`` and ``/``."""
    if isinstance(x, bool):
        return False
    if isinstance(x, (numbers.Number, np.generic)):
        return True
    return is_array(x) and x.ndim == 0


def validate_cores(cores, core_ndim, kind):
    """Common checks of a sequence of cores; returns a tuple of arrays with one dtype."""
    if is_array(cores) or not isinstance(cores, (list, tuple)):
        raise TypeError(
            f"{kind} expects a list or tuple of {core_ndim}-D cores, got {type(cores).__name__}"
        )
    if len(cores) == 0:
        raise ShapeError(f"{kind} needs at least one core, got an empty list")
    arrays = []
    for k, c in enumerate(cores):
        c = as_float_array(c, f"cores[{k}]")
        if c.ndim != core_ndim:
            layout = "(r_prev, n, r_next)" if core_ndim == 3 else "(r_prev, m, n, r_next)"
            raise ShapeError(
                f"cores[{k}] must be {core_ndim}-D {layout}, got {c.ndim}-D with shape {c.shape}"
            )
        if 0 in c.shape:
            raise ShapeError(f"cores[{k}] has an empty dimension: shape {c.shape}")
        arrays.append(c)
    get_xp(*arrays)  # raises on mixed backends
    if arrays[0].shape[0] != 1:
        raise RankError(f"the first core must have left rank 1, got cores[0].shape={arrays[0].shape}")
    if arrays[-1].shape[-1] != 1:
        raise RankError(
            f"the last core must have right rank 1, got cores[{len(arrays) - 1}].shape="
            f"{arrays[-1].shape}"
        )
    for k in range(1, len(arrays)):
        if arrays[k].shape[0] != arrays[k - 1].shape[-1]:
            raise RankError(
                f"cores[{k}] has left rank {arrays[k].shape[0]}, but cores[{k - 1}] has right "
                f"rank {arrays[k - 1].shape[-1]}"
            )
    dtype = np.result_type(*[a.dtype for a in arrays])
    return tuple(a if a.dtype == dtype else a.astype(dtype) for a in arrays)


class _TTBase:
    """Shared properties and algebra; subclasses define the core layout."""

    __array_ufunc__ = None  # so that ndarray @ tt and ndarray * tt reach our reflected methods
    __slots__ = ()
    cores: tuple[Any, ...]  # a dataclass field of each subclass

    # ---- structure (derived, never stored twice) -------------------------------------------
    @property
    def d(self) -> int:
        """Number of cores."""
        return len(self.cores)

    @functools.cached_property
    def ranks(self) -> tuple[int, ...]:
        """TT-ranks ``(1, r_1, ..., r_{d-1}, 1)``."""
        return (*(int(c.shape[0]) for c in self.cores), 1)

    @functools.cached_property
    def _in_window(self) -> bool:
        """Whether every core's magnitude is inside the safe exponent window (computed once:
        the cores never change)."""
        return _cores.in_window(self._cores3())

    @property
    def max_rank(self) -> int:
        """The largest TT-rank."""
        return max(self.ranks)

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the cores."""
        return self.cores[0].dtype

    @property
    def xp(self) -> ArrayModule:
        """The array module of the cores (``numpy`` or ``cupy``)."""
        return get_xp(self.cores[0])

    @property
    def backend(self) -> str:
        """``'numpy'`` or ``'cupy'``."""
        return backend_name(self.xp)

    @property
    def num_params(self) -> int:
        """Number of stored numbers (the total size of the cores)."""
        return int(sum(c.size for c in self.cores))

    # ---- hooks for subclasses -------------------------------------------------------------
    def _cores3(self):
        raise NotImplementedError

    def _with_cores3(self, cores3):
        raise NotImplementedError

    def _logical_cores3(self):
        """3-D cores of the tensor with anything outside the logical shape set to zero."""
        return self._cores3()

    def _same_structure(self, other, op):
        raise NotImplementedError

    # ---- conversions ----------------------------------------------------------------------
    def astype(self: _T, dtype: DTypeLike) -> _T:
        """A copy with cores of floating ``dtype`` (float32, float64, complex64, complex128)."""
        dtype = check_float_dtype(dtype, "astype(dtype)")
        return self._with_cores3([c.astype(dtype) for c in self._cores3()])

    def to(self: _T, xp: ArrayModule) -> _T:
        """The same object with cores on backend ``xp`` (``'numpy'``, ``'cupy'`` or a module)."""
        xp = resolve_xp(xp)
        if xp is self.xp:
            return self
        return self._with_cores3([asarray(c, xp) for c in self._cores3()])

    def conj(self: _T) -> _T:
        """Complex conjugate (the object itself for real dtypes)."""
        if self.dtype.kind != "c":
            return self
        return self._with_cores3([self.xp.conj(c) for c in self._cores3()])

    # ---- decompositions -------------------------------------------------------------------
    def round(self: _T, eps: float = 0.0, max_rank: MaxRank = None) -> _T:
        """TT rounding to relative accuracy ``eps`` and/or rank cap ``max_rank``.

        The result ``B`` satisfies ``||self - B||_F <= eps * ||self||_F`` (on the logical
        shape) with ranks no larger than ``max_rank`` (an int or one value per bond); when both
        are given the stricter one wins, and the ``eps`` bound then no longer holds.

        Complexity: ``O(d n r^3)`` time, ``O(d n r^2)`` memory.
        """
        eps = check_eps(eps)
        caps = check_max_rank(max_rank, self.d)
        # A padded TT-matrix is rounded as it is (the padding is "don't care"), with the
        # accuracy measured against its logical block: the truncation error over the whole
        # padded tensor bounds the logical error, and no rank grows.
        ref = self.log_norm() if getattr(self, "is_padded", False) else None
        return self._with_cores3(decompositions.round_cores(self._cores3(), eps, caps, ref))

    def orthogonalize(self: _T, direction: str = "left") -> _T:
        """Equivalent TT whose cores are left- (or right-) orthogonal except the last (first).

        Complexity: ``O(d n r^3)``.
        """
        if direction not in _DIRECTIONS:
            raise TTError(f"direction must be one of {_DIRECTIONS}, got {direction!r}")
        cores, _ = decompositions.orthogonalize_cores(self._cores3(), direction)
        return self._with_cores3(cores)

    def _norm_parts(self):
        """``(last_norm, exp2)`` with ``||self|| == ldexp(last_norm, exp2)``: ``last_norm`` is
        0 for the zero tensor and NaN when the cores hold NaN or Inf."""
        checked = None if getattr(self, "is_padded", False) else self._in_window
        return _cores.norm_parts(self._logical_cores3(), checked)

    def log_norm(self) -> float:
        """``log ||self||_F``, finite for any ``d`` and any magnitude of the cores (``-inf`` for
        the zero tensor, NaN when the cores hold NaN or Inf).

        Complexity: ``O(d n r^3)``.
        """
        last, exp2 = self._norm_parts()
        if not math.isfinite(last):
            return math.nan
        if last == 0:
            return -math.inf
        return exp2 * math.log(2.0) + math.log(last)

    def norm(self) -> float:
        """Frobenius norm: a Gram sweep (two GEMMs per core) on cores scaled by powers of two, or
        a QR sweep where its entries cancel.

        Accurate to a few ulps of the sweep's round-off whenever the norm is representable as a
        Python float (even when it is not in the cores' dtype: a float32 TT of norm ``1e39``
        gives ``1e39``); ``inf`` or ``0`` only when the norm itself is outside the float64
        range (see :meth:`log_norm`); NaN when the cores hold NaN or Inf.

        Complexity: ``O(d n r^3)``.
        """
        last, exp2 = self._norm_parts()
        if not math.isfinite(last) or last == 0:
            return last
        return _scaling.scalar_ldexp(last, exp2)

    # ---- arithmetic -------------------------------------------------------------------------
    def _scaled_cores3(self, alpha):
        """3-D cores of ``alpha * self``.  A factor far from 1 (beyond ``2**+-64``) is split into
        a mantissa, multiplied into the first core, and a power of two placed where it fits
        (:func:`tensortrain._scaling.apply_pow2`), so ``1e40 * x`` of a float32 ``x`` is
        finite whenever the tensor is representable by its cores."""
        cores = self._cores3()
        if isinstance(alpha, (numbers.Number, np.generic)):
            try:
                mag = abs(complex(alpha))
            except OverflowError:  # a Python int beyond the float range
                mag = math.inf
            if 0 < mag < math.inf:
                e = math.frexp(mag)[1]
                if abs(e) > 64:
                    m = _scaling.scalar_ldexp(alpha, -e)
                    if isinstance(alpha, np.generic):
                        m = type(alpha)(m)   # keep NumPy's promotion rules
                    return _scaling.apply_pow2(_cores.scale(cores, m), e, 0)
        return _cores.scale(cores, alpha)

    def __neg__(self):
        return self._with_cores3(_cores.scale(self._cores3(), -1))

    def __pos__(self):
        return self

    def __mul__(self, other):
        if is_scalar(other):
            get_xp(self.cores[0], other)
            return self._with_cores3(self._scaled_cores3(other))
        if isinstance(other, _TTBase):
            self._same_structure(other, "*")
            return self._with_cores3(_cores.hadamard(self._cores3(), other._cores3()))
        return NotImplemented

    def __rmul__(self, other):
        if is_scalar(other):
            return self.__mul__(other)
        return NotImplemented

    def __truediv__(self, other):
        if is_scalar(other):
            return self.__mul__(1 / other)
        return NotImplemented

    def __add__(self, other):
        if isinstance(other, _TTBase):
            self._same_structure(other, "+")
            return self._with_cores3(_cores.add(self._cores3(), other._cores3()))
        return NotImplemented

    def __sub__(self, other):
        if isinstance(other, _TTBase):
            self._same_structure(other, "-")
            return self._with_cores3(
                _cores.add(self._cores3(), _cores.scale(other._cores3(), -1)))
        return NotImplemented

    def __bool__(self):
        raise TypeError(f"the truth value of a {type(self).__name__} is ambiguous")


def check_dense_input(a: Any, where: str, min_ndim: int = 1) -> Array:
    """Float dtype, finite, at least ``min_ndim`` dimensions, no empty axis."""
    a = as_float_array(a, where)
    if a.ndim < min_ndim:
        raise ShapeError(f"{where} must have at least {min_ndim} dimension(s), got shape {a.shape}")
    if a.size == 0:
        raise ShapeError(f"{where} is empty: shape {a.shape}")

    check_finite(a, where)
    return a

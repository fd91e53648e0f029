"""Constructors: zeros, ones, eye, and random TTs with a chosen rank."""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._backend import resolve_xp
from ._validation import _as_int, check_float_dtype, check_modes, check_ranks, make_rng
from .errors import ModeError
from .matrix import TTMatrix
from .shapes import balanced_modes
from .tensor import TTTensor

__all__ = ["zeros", "ones", "eye", "random_tensor", "random_matrix"]


def _split_shape(shape):
    """A sequence of ints (tensor modes) or a pair of sequences (row and column modes)."""
    try:
        items = list(shape)
    except TypeError:
        items = [shape]
    if len(items) == 2 and all(not isinstance(x, numbers.Number) for x in items):
        rows = check_modes(items[0], "row_modes")
        cols = check_modes(items[1], "col_modes")
        if len(rows) != len(cols):
            raise ModeError(f"row and column modes must have the same length, got {rows} "
                            f"and {cols}")
        return rows, cols
    return check_modes(items, "shape"), None


def _constant(shape, value, dtype, xp):
    xp = resolve_xp(xp)
    dtype = check_float_dtype(dtype, "dtype")
    rows, cols = _split_shape(shape)
    if cols is None:
        cores = [xp.full((1, n, 1), value, dtype=dtype) for n in rows]
        return TTTensor(cores)
    cores = [xp.full((1, m, n, 1), value, dtype=dtype) for m, n in zip(rows, cols)]
    return TTMatrix(cores)


def zeros(shape, *, dtype=np.float64, xp=None):
    """The zero TT (ranks 1).  ``shape``: tensor modes, or ``(row_modes, col_modes)``."""
    return _constant(shape, 0.0, dtype, xp)


def ones(shape, *, dtype=np.float64, xp=None):
    """The all-ones TT (ranks 1).  ``shape``: tensor modes, or ``(row_modes, col_modes)``."""
    return _constant(shape, 1.0, dtype, xp)


def eye(modes, *, dtype=np.float64, xp=None):
    """Identity TTMatrix (ranks 1).

    ``modes`` is a sequence of modes (square, rows = columns) or an int ``n``: then balanced
    modes are chosen and padded if needed, and the logical shape is ``(n, n)``.
    """
    xp = resolve_xp(xp)
    dtype = check_float_dtype(dtype, "dtype")
    if isinstance(modes, numbers.Integral) and not isinstance(modes, bool):
        n = _as_int(modes, "n")
        if n < 1:
            raise ModeError(f"eye needs n >= 1, got {n}")
        mm = balanced_modes(n)
        shape = (n, n)
    else:
        mm = check_modes(modes, "modes")
        shape = None
    cores = [xp.eye(m, dtype=dtype).reshape(1, m, m, 1) for m in mm]
    return TTMatrix(cores, shape)


def _capped(ranks, sizes):
    """Cap ranks at the largest useful value min(prod left sizes, prod right sizes)."""
    d = len(sizes)
    out = list(ranks)
    for k in range(1, d):
        out[k] = min(out[k], math.prod(sizes[:k]), math.prod(sizes[k:]))
    return out


def _random_cores(sizes, ranks, rng, dtype, xp, extra_shape):
    """Cores with Gaussian entries scaled so the full tensor has entries of unit variance."""
    xp = resolve_xp(xp)
    dtype = check_float_dtype(dtype, "dtype")
    rng = make_rng(rng)
    d = len(sizes)
    ranks = _capped(check_ranks(ranks, d), sizes)
    cores = []
    for k in range(d):
        shape = (ranks[k],) + extra_shape[k] + (ranks[k + 1],)
        std = 1.0 / math.sqrt(ranks[k + 1]) if k < d - 1 else 1.0
        if dtype.kind == "c":
            g = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) * (std / math.sqrt(2))
        else:
            g = rng.standard_normal(shape) * std
        cores.append(xp.asarray(g.astype(dtype)))
    return cores


def random_tensor(modes, ranks, *, rng=None, dtype=np.float64, xp=None):
    """A random TTTensor whose full tensor has entries of unit variance.

    ``ranks`` is an int for every inner bond or the full list ``[1, r_1, ..., r_{d-1}, 1]``;
    ranks above the largest useful value ``min(prod(modes[:k]), prod(modes[k:]))`` are capped.
    The data are drawn on the host from ``rng`` (a Generator or seed) and moved to ``xp``.
    """
    modes = check_modes(modes, "modes")
    return TTTensor(_random_cores(modes, ranks, rng, dtype, xp, [(n,) for n in modes]))


def random_matrix(row_modes, col_modes, ranks, *, rng=None, dtype=np.float64, xp=None):
    """A random TTMatrix whose dense matrix has entries of unit variance (see :func:`random_tensor`)."""
    rows = check_modes(row_modes, "row_modes")
    cols = check_modes(col_modes, "col_modes")
    if len(rows) != len(cols):
        raise ModeError(f"row_modes and col_modes must have the same length, got {rows} and "
                        f"{cols}")
    sizes = [m * n for m, n in zip(rows, cols)]
    return TTMatrix(_random_cores(sizes, ranks, rng, dtype, xp, list(zip(rows, cols))))

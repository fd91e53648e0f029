"""Constructors: zeros, ones, eye, and random TTs with a chosen rank."""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._backend import resolve_xp
from ._validation import (
    ArrayModule,
    DTypeLike,
    Modes,
    Ranks,
    Seed,
    _as_int,
    check_float_dtype,
    check_modes,
    check_ranks,
    make_rng,
)
from .errors import ModeError, TTError
from .matrix import TTMatrix
from .shapes import balanced_modes
from .tensor import TTTensor

__all__ = ["eye", "ones", "random_matrix", "random_tensor", "zeros"]


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
    cores = [xp.full((1, m, n, 1), value, dtype=dtype) for m, n in zip(rows, cols, strict=True)]
    return TTMatrix(cores)


def zeros(shape: Modes | tuple[Modes, Modes], *, dtype: DTypeLike = np.float64,
          xp: ArrayModule = None) -> TTTensor | TTMatrix:
    """The zero TT (ranks 1).  ``shape``: tensor modes, or ``(row_modes, col_modes)``.

    Complexity: ``O(d n)``.
    """
    return _constant(shape, 0.0, dtype, xp)


def ones(shape: Modes | tuple[Modes, Modes], *, dtype: DTypeLike = np.float64,
         xp: ArrayModule = None) -> TTTensor | TTMatrix:
    """The all-ones TT (ranks 1).  ``shape``: tensor modes, or ``(row_modes, col_modes)``.

    Complexity: ``O(d n)``.

    Examples
    --------
    >>> import tensortrain as tt
    >>> float(tt.ones((2, 3)).full().sum()), tt.ones(((2, 3), (4, 1))).shape
    (6.0, (6, 4))
    """
    return _constant(shape, 1.0, dtype, xp)


def eye(modes: Modes, *, dtype: DTypeLike = np.float64, xp: ArrayModule = None) -> TTMatrix:
    """Identity TTMatrix (ranks 1).

    ``modes`` is a sequence of modes (square, rows = columns) or an int ``n``: then balanced
    modes are chosen and padded if needed, and the logical shape is ``(n, n)``.

    Complexity: ``O(d n^2)``.
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


def _check_std(std):
    if isinstance(std, bool) or not isinstance(std, numbers.Real):
        raise TypeError(f"std must be a real number > 0, got {type(std).__name__} {std!r}")
    value = float(std)
    if not (0.0 < value < math.inf):
        raise TTError(f"std must be a finite number > 0 (the standard deviation of the full "
                      f"tensor's entries), got {std!r}")
    return value


def _random_cores(sizes, ranks, rng, dtype, xp, extra_shape, std):
    """Gaussian cores whose full tensor has entries of mean 0 and standard deviation ``std``.

    Core ``k`` has entries of standard deviation ``std**(1/d) / sqrt(r_k)`` (``r_d = 1``): the
    variance of a full entry, a sum of ``r_1 ... r_{d-1}`` products of ``d`` independent
    factors, is ``std**2``, and every core has the same scale for any ``d``.
    """
    xp = resolve_xp(xp)
    dtype = check_float_dtype(dtype, "dtype")
    std = _check_std(std)
    rng = make_rng(rng)
    d = len(sizes)
    ranks = _capped(check_ranks(ranks, d), sizes)
    per_core = std ** (1.0 / d)
    shapes = [(ranks[k], *extra_shape[k], ranks[k + 1]) for k in range(d)]
    scales = [per_core / math.sqrt(ranks[k + 1]) if k < d - 1 else per_core for k in range(d)]
    return gaussian_cores(shapes, scales, rng, dtype, xp)


def gaussian_cores(shapes, scales, rng, dtype, xp):
    """The one random-core builder: core ``k`` of shape ``shapes[k]`` with independent
    Gaussian entries of standard deviation ``scales[k]`` (complex: real and imaginary parts
    each ``scales[k] / sqrt(2)``), drawn on the host from ``rng`` (a
    :class:`numpy.random.Generator`) core after core, then moved to ``xp`` in ``dtype``.

    :func:`random_tensor`, :func:`random_matrix` and ``nn.TTLinear`` differ only in the
    scales they ask for.
    """
    dtype = np.dtype(dtype)
    cores = []
    for shape, scale in zip(shapes, scales, strict=True):
        if dtype.kind == "c":
            g = (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) * (scale / math.sqrt(2))
        else:
            g = rng.standard_normal(shape) * scale
        cores.append(xp.asarray(g.astype(dtype)))
    return cores


def random_tensor(modes: Modes, ranks: Ranks, *, rng: Seed = None,
                  dtype: DTypeLike = np.float64, xp: ArrayModule = None,
                  std: float = 1.0) -> TTTensor:
    """A random TTTensor whose full tensor has Gaussian-like entries of mean 0 and standard
    deviation ``std``.

    Complexity: ``O(d n r^2)`` time and memory (the cores only; nothing dense is formed).

    Parameters
    ----------
    modes : int or sequence of int
        The mode sizes ``(n_1, ..., n_d)``.
    ranks : int or sequence of int
        An int for every inner bond, the ``d - 1`` inner values, or the full list
        ``[1, r_1, ..., r_{d-1}, 1]``; ranks above the largest useful value
        ``min(prod(modes[:k]), prod(modes[k:]))`` are capped.
    rng : None, int, SeedSequence or Generator
        The host random stream (a ``Generator`` is used as is and advances).
    dtype : float32, float64, complex64 or complex128
        Complex entries have independent real and imaginary parts of equal variance.
    xp : module or {"numpy", "cupy"}, optional
        Where the cores go; the data are drawn on the host, so a seed gives the same tensor
        on every backend.
    std : float > 0
        The standard deviation of every entry of the full tensor. Each core gets the same
        share ``std**(1/d)``, so the cores stay balanced for any ``d``.

    Examples
    --------
    >>> import tensortrain as tt
    >>> x = tt.random_tensor((4, 5, 6), ranks=3, rng=0, std=0.5)
    >>> x.shape, x.ranks
    ((4, 5, 6), (1, 3, 3, 1))
    """
    sizes = check_modes(modes, "modes")
    return TTTensor(_random_cores(sizes, ranks, rng, dtype, xp, [(n,) for n in sizes], std))


def random_matrix(row_modes: Modes, col_modes: Modes, ranks: Ranks, *, rng: Seed = None,
                  dtype: DTypeLike = np.float64, xp: ArrayModule = None,
                  std: float = 1.0) -> TTMatrix:
    """A random TTMatrix whose dense matrix has entries of mean 0 and standard deviation
    ``std`` (the arguments as in :func:`random_tensor`; core ``k`` counts ``m_k n_k`` as its
    mode size when ranks are capped).

    Initializing a weight ``W`` of shape ``(fan_out, fan_in)`` for a target variance (Glorot,
    He) is ``random_matrix(out_modes, in_modes, ranks, std=math.sqrt(variance))``.

    Complexity: ``O(d m n r^2)`` time and memory.

    Examples
    --------
    >>> import tensortrain as tt
    >>> W = tt.random_matrix((2, 3), (4, 5), ranks=2, rng=0, dtype="float32")
    >>> W.shape, W.ranks, W.dtype
    ((6, 20), (1, 2, 1), dtype('float32'))
    """
    rows = check_modes(row_modes, "row_modes")
    cols = check_modes(col_modes, "col_modes")
    if len(rows) != len(cols):
        raise ModeError(f"row_modes and col_modes must have the same length, got {rows} and "
                        f"{cols}")
    sizes = [m * n for m, n in zip(rows, cols, strict=True)]
    extra = list(zip(rows, cols, strict=True))
    return TTMatrix(_random_cores(sizes, ranks, rng, dtype, xp, extra, std))

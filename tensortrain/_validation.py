"""Checks shared by the public functions.  Public functions validate; private helpers trust."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ._backend import get_xp, is_array, to_host
from .errors import ModeError, RankError, ShapeError, TTError

# ---- type aliases of the public signatures ------------------------------------------------------
#: a ``numpy.ndarray`` or a ``cupy.ndarray`` (CuPy ships no type information, hence ``Any``)
Array = Any
#: an array module (``numpy`` or ``cupy``), its name ``"numpy"``/``"cupy"``, or ``None`` (NumPy)
ArrayModule = Any
#: modes of a TT: one positive int, or a sequence of them
Modes = int | Sequence[int]
#: ``max_rank``: ``None`` (no cap), one int for every bond, or one value per bond
MaxRank = int | Sequence[int] | None
#: ``ranks`` of a random TT: one int for every inner bond, the inner values or the full list
Ranks = int | Sequence[int]
#: a seed or generator accepted by :func:`make_rng`
Seed = int | np.random.Generator | np.random.SeedSequence | None
DTypeLike = npt.DTypeLike

_FLOAT_DTYPES = tuple(np.dtype(t) for t in (np.float32, np.float64, np.complex64, np.complex128))


def check_eps(eps, where="eps"):
    """Return ``eps`` as a float, or raise for negative, NaN or non-numeric values."""
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise TypeError(f"{where} must be a real number >= 0, got {type(eps).__name__} {eps!r}")
    eps = float(eps)
    if math.isnan(eps) or eps < 0:
        raise TTError(f"{where} must be a number >= 0 (relative Frobenius accuracy), got {eps!r}")
    return eps


def _as_int(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        if isinstance(value, numbers.Real) and float(value).is_integer() and not isinstance(value, bool):
            return int(value)
        raise TypeError(f"{what} must be an integer, got {type(value).__name__} {value!r}")
    return int(value)


def check_positive_int(value, what: str) -> int:
    """Return ``value`` as an int >= 1.

    ``TypeError`` for anything but an integer (``bool`` and integral floats included: a width
    or a count is never ``2.0``), :class:`~tensortrain.errors.TTError` for one below 1. The
    one check behind layer widths, fans, batch sizes and schedule steps.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} must be a positive integer, got {type(value).__name__} {value!r}")
    if value < 1:
        raise TTError(f"{what} must be a positive integer, got {value}")
    return int(value)


def check_int(value, what: str, minimum: int = 1) -> int:
    """Return ``value`` as an int ``>= minimum``: the counts and caps of the iterative
    algorithms (sweeps, kick ranks, iterations).

    ``TypeError`` for anything but an integer (``bool`` and integral floats included),
    :class:`~tensortrain.errors.TTError` below ``minimum``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} must be an integer, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise TTError(f"{what} must be >= {minimum}, got {value}")
    return int(value)


def check_finite_cores(cores, what: str) -> None:
    """Raise :class:`~tensortrain.errors.TTError` naming the first core of ``cores`` that
    holds NaN or Inf (one device synchronization for all cores)."""
    xp = get_xp(*cores)
    flags = to_host(xp.stack([xp.isfinite(c).all() for c in cores]))
    bad = np.nonzero(~np.asarray(flags))[0]
    if bad.size:
        raise TTError(f"{what} holds NaN or Inf (in cores[{int(bad[0])}]); expected finite "
                      f"values")


def check_modes(modes, what="modes", allow_empty=False):
    """Return ``modes`` as a tuple of positive ints."""
    if isinstance(modes, numbers.Integral) and not isinstance(modes, bool):
        modes = (modes,)
    try:
        items = tuple(modes)
    except TypeError:
        raise TypeError(f"{what} must be a sequence of positive integers, got {modes!r}") from None
    if not items and not allow_empty:
        raise ModeError(f"{what} must contain at least one mode, got {modes!r}")
    out = []
    for k, m in enumerate(items):
        if isinstance(m, bool) or not isinstance(m, numbers.Real) or not float(m).is_integer():
            raise ModeError(f"{what}[{k}] must be a positive integer, got {m!r}")
        m = int(m)
        if m < 1:
            raise ModeError(f"{what}[{k}] must be a positive integer, got {m}")
        out.append(m)
    return tuple(out)


def check_max_rank(max_rank, d):
    """Normalise ``max_rank`` (None, an int, d-1 inner values or d+1 full values) to d-1 ints or None."""
    if max_rank is None:
        return None
    if isinstance(max_rank, bool) or not (
            isinstance(max_rank, (numbers.Real, list, tuple))
            or (hasattr(max_rank, "__len__") and hasattr(max_rank, "__iter__"))):
        raise TypeError(f"max_rank must be an int or a list of ints (one per bond), got "
                        f"{type(max_rank).__name__} {max_rank!r}")
    if is_array(max_rank) and max_rank.ndim == 0:
        if max_rank.dtype.kind not in "iu":
            raise TypeError(f"max_rank must be an int or a list of ints (one per bond), got a "
                            f"0-d array of dtype {max_rank.dtype}")
        max_rank = int(to_host(max_rank))
    if isinstance(max_rank, numbers.Real):
        r = _as_int(max_rank, "max_rank")
        if r < 1:
            raise RankError(f"max_rank must be >= 1, got {r}")
        return (r,) * (d - 1)
    if isinstance(max_rank, (str, bytes)):
        raise TypeError(f"max_rank must be an int or a list of ints (one per bond), got "
                        f"{type(max_rank).__name__} {max_rank!r}")
    values = tuple(_as_int(v, "max_rank entries") for v in max_rank)
    if len(values) == d + 1:
        if values[0] != 1 or values[-1] != 1:
            raise RankError(f"a full max_rank list must start and end with 1, got {list(values)}")
        values = values[1:-1]
    if len(values) != d - 1:
        raise RankError(
            f"max_rank must be an int, {d - 1} values (one per bond) or {d + 1} values "
            f"(with the boundary 1s) for d={d}, got {len(values)} values"
        )
    for k, r in enumerate(values):
        if r < 1:
            raise RankError(f"max_rank must be >= 1, got {r} for bond {k + 1}")
    return values


def check_ranks(ranks, d):
    """Normalise ``ranks`` (an int for every inner bond or the full list) to d+1 ints."""
    if isinstance(ranks, numbers.Real) and not isinstance(ranks, bool):
        r = _as_int(ranks, "ranks")
        if r < 1:
            raise RankError(f"ranks must be >= 1, got {r}")
        return (1,) + (r,) * (d - 1) + (1,)
    values = tuple(_as_int(v, "ranks entries") for v in ranks)
    if len(values) == d - 1:
        values = (1, *values, 1)
    if len(values) != d + 1:
        raise RankError(
            f"ranks must be an int or a list of {d + 1} values [1, r_1, ..., r_{d - 1}, 1] "
            f"for d={d}, got {len(values)} values"
        )
    if values[0] != 1 or values[-1] != 1:
        raise RankError(f"boundary ranks must be 1, got ranks {list(values)}")
    for k, r in enumerate(values):
        if r < 1:
            raise RankError(f"ranks must be >= 1, got {r} at position {k}")
    return values


def check_float_dtype(dtype, where):
    """Raise ``TypeError`` unless ``dtype`` is a real or complex floating type."""
    dtype = np.dtype(dtype)
    if dtype not in _FLOAT_DTYPES:
        raise TypeError(
            f"{where} must have a floating-point dtype (float32, float64, complex64 or "
            f"complex128), got {dtype}; convert it first, e.g. with .astype(np.float64)"
        )
    return dtype


def as_float_array(a, where):
    """Accept an ndarray (NumPy or CuPy) or array-like of floats; refuse ints and objects."""
    if isinstance(a, np.ma.MaskedArray):
        raise TypeError(
            f"{where} is a NumPy masked array; masked entries are not supported (their hidden "
            f"values would be used). Fill them explicitly first, e.g. a.filled(0.0), or pass "
            f"np.asarray(a) if the mask does not matter")
    if isinstance(a, np.ndarray) and type(a) is not np.ndarray:
        a = np.asarray(a)  # other ndarray subclasses (np.matrix, memmap): their plain data
    if not is_array(a):
        if isinstance(a, (list, tuple, numbers.Number)):
            a = np.asarray(a)
        else:
            raise TypeError(f"{where} must be a NumPy or CuPy array, got {type(a).__name__}")
    check_float_dtype(a.dtype, where)
    return a


def check_finite(a, where):
    """Raise :class:`TTError` if ``a`` holds NaN or Inf (one device sync on CuPy)."""
    xp = get_xp(a)
    if not bool(to_host(xp.isfinite(a).all())):
        raise TTError(f"{where} contains NaN or Inf; the decomposition needs finite values")


def make_rng(rng: Seed = None, where: str = "rng") -> np.random.Generator:
    """A NumPy ``Generator`` from ``None`` (fresh entropy), a non-negative int seed, a
    ``SeedSequence`` or a ``Generator`` (returned as is: the caller's stream advances).

    Booleans, floats, legacy ``RandomState`` objects and anything else raise ``TypeError``;
    a negative seed raises :class:`~tensortrain.errors.TTError`.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, np.random.SeedSequence):
        return np.random.default_rng(rng)
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if rng < 0:
            raise TTError(f"{where} seed must be a non-negative integer, got {rng}")
        return np.random.default_rng(int(rng))
    raise TypeError(f"{where} must be None, a non-negative int seed, a numpy.random.SeedSequence "
                    f"or a numpy.random.Generator, got {type(rng).__name__} {rng!r}")


# ---- checks of the nn layers ----------------------------------------------------------------------
_NN_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def check_features(value, what: str) -> int:
    """A layer width: a positive integer (``TypeError`` for non-integers, ``TTError`` for < 1)."""
    return check_positive_int(value, what)


def check_nn_dtype(dtype, where: str = "dtype") -> np.dtype:
    """Return ``np.dtype(dtype)`` if it is float32 or float64, else raise ``TypeError``."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{where} must be float32 or float64, got {dtype!r}") from None
    if dt not in _NN_DTYPES:
        raise TypeError(f"{where} must be float32 or float64, got {dt}")
    return dt


def check_input(x, where: str, width: int | None = None) -> Array:
    """Validate a layer input: a floating NumPy/CuPy array; ``(batch, width)`` if ``width``.

    Raises ``TypeError`` for non-arrays and integer (or complex) arrays and
    :class:`~tensortrain.errors.ShapeError` for a wrong shape or width.
    """
    if not is_array(x):
        raise TypeError(f"{where} expects a NumPy or CuPy array, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{where} expects floating-point inputs, got dtype {x.dtype}; "
                        f"convert first, e.g. with x.astype(np.float32)")
    if width is not None:
        if x.ndim != 2:
            raise ShapeError(f"{where} expects inputs of shape (batch, {width}), got an array of "
                             f"shape {tuple(x.shape)}")
        if x.shape[1] != width:
            raise ShapeError(f"{where} expects inputs of width {width}, got {x.shape[1]}")
    return x

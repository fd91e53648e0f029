"""Exact power-of-two scaling, so that no sum of squares or chain of products leaves the dtype.

Every algorithm that multiplies cores together or forms a norm (TT-SVD, the orthogonalizing
sweeps, rounding, inner products, indexing and sums, ``full``) first brings each operand to a
largest magnitude in ``[0.5, 1)`` by multiplying with a power of two, and keeps the powers as an
integer exponent on the side.  Multiplying by ``2**e`` only changes the floating-point exponent,
so the scaled numbers are *exactly* the original ones (barring subnormal inputs) and results
computed from them differ from unscaled arithmetic only where the latter overflowed or
underflowed.  The exponent is put back at the end, by :func:`apply_pow2` into a core where
it fits, or by :func:`math.ldexp` into a host scalar (exact again, hence norms accurate to a few
ulps whenever the true value is representable).

Exponents stay on the device as 0-d integer arrays until the caller sums them and brings them
to the host once (one synchronization per call, not per core).
"""

from __future__ import annotations

import math

import numpy as np

from ._backend import get_xp, to_host

__all__ = [
    "apply_pow2",
    "core_exponents",
    "exponent",
    "host_exponent_sum",
    "ldexp",
    "max_abs",
    "normalize",
    "safe_exponent_window",
    "scalar_ldexp",
    "wide_dtype",
]


_SMALL = 4096  # arrays up to this size are rescaled through a host exponent on NumPy
_POW2_LIMIT = {"f": 120, "d": 1000}  # |e| below which 2.0**-e is a normal number of the dtype


def wide_dtype(dtype):
    """The double-precision dtype of the same kind (float64 or complex128)."""
    return np.dtype(np.complex128 if np.dtype(dtype).kind == "c" else np.float64)


def max_abs(a):
    """``max |a|`` as a 0-d array of ``a``'s real dtype (the modulus for complex data)."""
    return abs(a).max()


def exponent(amax):
    """The integer ``e`` with ``amax * 2**-e`` in ``[0.5, 1)`` (0 for 0, NaN and Inf)."""
    return get_xp(amax).frexp(amax)[1]


def ldexp(a, e, xp=None):
    """``a * 2**e`` exactly, in ``a``'s dtype (real or complex); ``e`` an int or 0-d int array."""
    xp = get_xp(a) if xp is None else xp
    if a.dtype.kind == "c":
        out = xp.empty_like(a)
        out.real = xp.ldexp(a.real, e)
        out.imag = xp.ldexp(a.imag, e)
        return out
    return xp.ldexp(a, e)


def normalize(a, xp=None):
    """``(b, e)`` with ``a == b * 2**e`` and ``max |b|`` in ``[0.5, 1)`` (``b`` a new array).

    An all-zero ``a`` gives ``e == 0``; NaN or Inf in ``a`` stay in ``b`` with ``e == 0``, so
    they reach the caller's finiteness check.
    """
    xp = get_xp(a) if xp is None else xp
    if xp is np and a.size <= _SMALL:
        # small host arrays (the running matrices of sweeps): the exponent as a Python int and
        # one multiplication by an exact power of two, a third of the calls of the general path
        m = float(abs(a).max())
        e = math.frexp(m)[1] if 0 < m < math.inf else 0
        real = a.real.dtype
        if -_POW2_LIMIT[real.char] < e < _POW2_LIMIT[real.char]:
            return a * real.type(2.0 ** -e), e
        return ldexp(a, -e, xp), e
    e = xp.frexp(abs(a).max())[1]
    return ldexp(a, -e, xp), e


def host_exponent_sum(exps) -> int:
    """Sum of a list of 0-d device integers (and Python ints), brought to the host once."""
    if not exps:
        return 0
    arrays = [e for e in exps if not isinstance(e, (int, np.integer))]
    total = sum(int(e) for e in exps if isinstance(e, (int, np.integer)))
    if arrays:
        xp = get_xp(*arrays)
        total += int(to_host(xp.sum(xp.stack([a.astype(np.int64) for a in arrays]))))
    return total


def core_exponents(cores) -> list:
    """Host list of the exponents of ``max |core|`` (one synchronization for all cores)."""
    xp = get_xp(*cores)
    amax = to_host(xp.stack([abs(c).max() for c in cores]))
    return np.frexp(amax.astype(np.float64))[1].tolist()


def safe_exponent_window(dtype) -> tuple:
    """Exponents ``(lo, hi)`` of a largest magnitude that leaves room on both sides.

    A core whose largest entry is ``2**e`` with ``lo <= e <= hi`` can be multiplied with other
    such cores, summed and squared without leaving the range: half the exponent range each
    way (``2**-63 .. 2**64`` in float32, ``2**-511 .. 2**512`` in float64).
    """
    info = np.finfo(np.dtype(dtype))
    return (info.minexp // 2, info.maxexp // 2)


def apply_pow2(cores, e, k, dtype=None):
    """Multiply the tensor of ``cores`` by ``2**e`` (exactly), without leaving the dtype's range.

    The factor goes into core ``k`` when that core's largest entry then stays inside
    :func:`safe_exponent_window`; otherwise it is spread over all cores in integer shares
    chosen so that every core ends with about the same largest magnitude (each core is then
    multiplied by its own power of two, so the product of the cores is still exact).
    """
    e = int(e)
    if e == 0:
        return list(cores)
    out = list(cores)
    lo, hi = safe_exponent_window(out[k].dtype if dtype is None else dtype)
    mags = core_exponents(out)
    if lo <= mags[k] + e <= hi:
        out[k] = ldexp(out[k], e)
        return out
    d = len(out)
    total = sum(mags) + e
    shifts = []
    for j in range(d):
        target = (total * (j + 1)) // d - (total * j) // d   # integer shares summing to total
        shifts.append(target - mags[j])
    return [ldexp(c, s) if s else c for c, s in zip(out, shifts, strict=True)]


def scalar_ldexp(value, e):
    """``value * 2**e`` for a host Python or NumPy scalar (real or complex), exact where
    representable, ``inf``/``0`` (without a warning) where the result is not."""
    e = int(e)
    with np.errstate(over="ignore", under="ignore"):
        if isinstance(value, complex) or np.iscomplexobj(value):
            v = complex(value)
            return complex(_ldexp_float(v.real, e), _ldexp_float(v.imag, e))
        return _ldexp_float(float(value), e)


def _ldexp_float(x, e):
    try:
        return math.ldexp(x, e)
    except OverflowError:
        return math.copysign(math.inf, x)

"""Algorithms on plain lists of 3-D TT cores ``(r_{k-1}, n_k, r_k)``.

These helpers trust their inputs (the public classes validate).  A TT-matrix core
``(r, m, n, r')`` is handled here by viewing it as ``(r, m*n, r')``.
"""

from __future__ import annotations

import math

import numpy as np

from . import _scaling
from ._backend import get_xp, to_host
from .decompositions import orthogonal_sweep

__all__ = [
    "full",
    "add",
    "hadamard",
    "scale",
    "log_dot",
    "lt_indicator",
]


def full(cores, flat=False):
    """Contract the cores to the dense tensor of shape ``(n_1, ..., n_d)`` (a new array), or
    to its C-order vector with ``flat=True`` (for any ``d``; an ndarray has at most 64 axes).

    The cores are scaled by powers of two first and the total power is applied to the result,
    so a product that is representable is computed even when partial products of the cores
    are not (cores ``1e200, 1e200, 1e-200, 1e-200``).  Single-precision cores are contracted
    in double precision and the result rounded once, so entries far below the largest ones
    do not underflow on the way.
    """
    xp = get_xp(*cores)
    dtype = cores[0].dtype
    wide = _scaling.wide_dtype(dtype)
    scaled = [_scaling.normalize(c.astype(wide, copy=False)) for c in cores]
    exp2 = _scaling.host_exponent_sum([e for _, e in scaled])
    first = scaled[0][0]
    res = first.reshape(first.shape[1], first.shape[2])
    modes = [first.shape[1]]
    for c, _ in scaled[1:]:
        r0, n, r1 = c.shape
        res = xp.matmul(res, c.reshape(r0, n * r1)).reshape(-1, r1)
        modes.append(n)
    with np.errstate(over="ignore", under="ignore"):
        if exp2:
            res = _scaling.ldexp(res, exp2)
        res = res.astype(dtype, copy=False)
    return res.reshape(-1) if flat else res.reshape(modes)


def add(a, b):
    """Cores of ``a + b``: block-diagonal inner cores, ranks add."""
    xp = get_xp(*a, *b)
    d = len(a)
    dtype = np.result_type(a[0].dtype, b[0].dtype)
    if d == 1:
        return [(a[0] + b[0]).astype(dtype, copy=False)]
    out = []
    for k, (x, y) in enumerate(zip(a, b)):
        ra0, n, ra1 = x.shape
        rb0, _, rb1 = y.shape
        if k == 0:
            c = xp.concatenate([x.astype(dtype, copy=False), y.astype(dtype, copy=False)], axis=2)
        elif k == d - 1:
            c = xp.concatenate([x.astype(dtype, copy=False), y.astype(dtype, copy=False)], axis=0)
        else:
            c = xp.zeros((ra0 + rb0, n, ra1 + rb1), dtype=dtype)
            c[:ra0, :, :ra1] = x
            c[ra0:, :, ra1:] = y
        out.append(c)
    return out


def hadamard(a, b):
    """Cores of the elementwise product: Kronecker product of the rank indices."""
    xp = get_xp(*a, *b)
    out = []
    for x, y in zip(a, b):
        ra0, n, ra1 = x.shape
        rb0, _, rb1 = y.shape
        c = x[:, None, :, :, None] * y[None, :, :, None, :]
        out.append(xp.ascontiguousarray(c).reshape(ra0 * rb0, n, ra1 * rb1))
    return out


def scale(cores, alpha):
    """Multiply the tensor by ``alpha`` (applied to the first core)."""
    return [cores[0] * alpha] + list(cores[1:])


def in_window(cores) -> bool:
    """Whether every core's largest entry is ``2**e`` with ``e`` inside half of
    :func:`tensortrain._scaling.safe_exponent_window` (``2**-255 .. 2**256`` in float64,
    ``2**-31 .. 2**32`` in float32; one synchronization).

    Then one step of a sweep whose running matrix is brought back to within ``2**+-16`` of 1
    after every core multiplies it by at most ``2**512`` times a count of terms (``2**64`` in
    float32) and by at least ``2**-511`` (``2**-63``), so no step overflows, none leaves the
    normal range, and nothing needs a floating-point error state.
    """
    lo, hi = _scaling.safe_exponent_window(cores[0].dtype)
    lo, hi = lo // 2, hi // 2
    return all(lo <= e <= hi for e in _scaling.core_exponents(cores))


def norm_parts(cores, checked=None):
    """``(value, exp2)`` with ``||tensor||_F = value * 2**exp2`` (``value`` a host float: 0 for
    the zero tensor, NaN when the cores hold NaN or Inf).

    A Gram sweep, the arithmetic of ``dot(a, a)``: the running ``r x r`` matrix
    ``L_k = sum_i G_k[i]^H L_{k-1} G_k[i]``, the Gram matrix of the left part, is rescaled by a
    power of two after every core and ``||tensor||^2`` is its final ``1 x 1`` value (two GEMMs
    per core; single-precision cores are swept in double precision).  When a core's magnitude
    is outside the window of :func:`in_window`, or the sweep ends in 0, Inf or NaN, every core
    is scaled by a power of two too and the sweep runs again, so nothing overflows or
    underflows for any ``d`` or magnitude (``checked`` passes the result of :func:`in_window`
    when the caller knows it).  The square root is taken with an even power of two, so
    halving the exponent is exact.

    Accuracy: every ``L_k`` is a sum of positive semi-definite terms and every rescaling is
    exact, so the relative error does not depend on the magnitude of the norm (``1e-300`` or
    ``2**-5000`` as well as ``1``).  It does depend on cancellation *inside* the tensor, as in
    ``(x - y).norm()`` for ``y`` close to ``x``: when the entries are differences of rank terms
    ``kappa`` times larger, the squared norm from a Gram sweep carries an error of about
    ``eps * kappa**2``, where a QR sweep has ``eps * kappa``.  The sweep therefore measures the
    cancellation of each step, ``c_k = tr(L_{k-1}) ||G_k||_F^2 / tr(L_k)`` (at least 1, about
    ``r_{k-1}`` for cores without cancellation, about ``r_{k-1} kappa**2`` with it; the traces
    come with the rescaling), and when some ``c_k / r_{k-1}`` exceeds
    :data:`GRAM_MAX_CANCELLATION` (64 for double-precision cores, ``2**30`` for single ones,
    whose sweep runs in double precision), or the sweep ends in 0 or below (``a - a``), the
    norm is taken by the QR sweep :func:`tensortrain.decompositions.orthogonal_sweep`.

    Complexity: ``O(d n r^3)``, two small GEMMs per core (and ``O(n r^2)`` for ``c_k``); a QR
    sweep on top when the tensor's entries cancel.
    """
    xp = np if type(cores[0]) is np.ndarray else get_xp(*cores)   # one backend per train
    value = math.nan
    if in_window(cores) if checked is None else checked:
        value, exp2, worst = _gram_sweep(cores, xp, scale_cores=False)
    if not 0 < value < math.inf:
        value, exp2, worst = _gram_sweep(cores, xp, scale_cores=True)
    if math.isnan(value) or value == math.inf:
        return math.nan, 0
    if value > 0 and worst <= GRAM_MAX_CANCELLATION[cores[0].dtype.char in "fF"]:
        if exp2 % 2:                   # an even exponent: its half is exact
            value, exp2 = value * 2.0, exp2 - 1
        return math.sqrt(value), exp2 // 2
    # entries that cancel (or the zero tensor): the QR sweep, error eps * kappa
    _, exp2, last = orthogonal_sweep(cores, "left")
    return last, exp2


#: Largest cancellation ``c_k / r_{k-1}`` of a Gram step (see :func:`norm_parts`) for which
#: the Gram sweep's norm is kept: ``[double-precision cores, single-precision cores]``.
GRAM_MAX_CANCELLATION = (64.0, 2.0 ** 30)


def _gram_sweep(cores, xp, scale_cores):
    """``(value, exp2, worst)``: ``||tensor||^2 = value * 2**exp2`` (``value`` a host float) and
    the largest cancellation ``c_k / r_{k-1}`` of a step (see :func:`norm_parts`)."""
    wide = _scaling.wide_dtype(cores[0].dtype)
    cast = cores[0].dtype != wide
    cplx = wide.kind == "c"
    host = xp is np
    v = tr = None
    exps, ratios = [], []
    for c in cores:
        if cast:
            c = c.astype(wide)
        if scale_cores:
            c, e = _scaling.normalize(c, xp)
            exps.append(2 * e)
        r0, n, r1 = c.shape
        cc = xp.conj(c) if cplx else c
        if v is None:
            v = cc.reshape(r0 * n, r1).T @ c.reshape(r0 * n, r1)
            v, ev, tr, _ = _renorm_gram(v, xp)
        else:
            g2 = xp.vdot(c, c)                                         # ||G_k||_F^2
            if cplx:
                g2 = g2.real
            t = (v @ c.reshape(r0, n * r1)).reshape(r0 * n, r1)       # L G, as (r n, r')
            v = cc.reshape(r0 * n, r1).T @ t
            prev = tr * (float(g2) if host else g2) / r0
            v, ev, tr, raw = _renorm_gram(v, xp)
            if host:
                ratios.append(prev / raw if raw > 0 else math.inf)
            else:
                ratios.append(prev / raw)                  # inf or NaN for a zero trace
        exps.append(ev)
    if host:
        return float(v[0, 0].real if cplx else v[0, 0]), int(sum(exps)), max(ratios, default=0.0)
    worst = float(to_host(xp.max(xp.stack(ratios)))) if ratios else 0.0
    return float(to_host(v.reshape(())).real), _exponent_total(exps, xp), worst


def _renorm_gram(v, xp):
    """``(w, e, tr_w, tr_v)``: a Gram matrix ``v == w * 2**e`` rescaled exactly by the power of
    two of its trace (``tr(w)`` in ``[0.5, 1)``: every entry of a positive semi-definite ``w``
    is at most ``tr(w)`` and the largest at least ``tr(w) / r``), with the traces of ``w`` and
    of ``v``.  On NumPy, host floats and ints, and ``v`` is left as it is (``e = 0``) while the
    exponent of its trace is within :data:`_LAZY` of 0; on CuPy, 0-d arrays (no
    synchronization)."""
    if xp is np:
        t = float(v.trace().real if v.dtype.kind == "c" else v.trace())
        if 0 < t < math.inf:
            e = math.frexp(t)[1]
            if -_LAZY < e <= _LAZY:
                return v, 0, t, t
            if -_POW2_SAFE["d"] < e < _POW2_SAFE["d"]:
                return v * (2.0 ** -e), e, math.ldexp(t, -e), t
            return _scaling.ldexp(v, -e, xp), e, math.ldexp(t, -e), t
        return v, 0, t, t
    t = xp.trace(v).real
    e = xp.frexp(t)[1]
    return _scaling.ldexp(v, -e, xp), e, xp.ldexp(t, -e), t


def log_dot(a, b, checked=None):
    """``<a, b> = sum(conj(a) * b)`` as ``(mantissa, exp2)`` with ``<a, b> = mantissa * 2**exp2``.

    The running ``r_a x r_b`` interface matrix is rescaled by a power of two after every
    core; when some core's magnitude is outside the safe window (or the fast sweep ends in
    0, Inf or NaN) every core is scaled too before it enters the sweep.  Neither sweep
    overflows or underflows for any magnitude or any ``d``; the exponents are summed on the
    device and brought to the host once at the end.  ``mantissa`` is a host scalar.
    ``checked`` passes the result of :func:`in_window` when the caller knows it.
    """
    if in_window(list(a) + list(b)) if checked is None else checked:
        value, total = _dot_sweep(a, b, scale_cores=False)
        if 0 < abs(value) < math.inf:
            return value, total
    return _dot_sweep(a, b, scale_cores=True)


def _dot_sweep(a, b, scale_cores):
    xp = get_xp(*a, *b)
    v = None
    exps = []
    for x, y in zip(a, b):
        if scale_cores:
            x, ex = _scaling.normalize(x, xp)
            y, ey = _scaling.normalize(y, xp)
            exps += [ex, ey]
        ra, n, ra1 = x.shape
        rb, _, rb1 = y.shape
        xc = xp.conj(x) if x.dtype.kind == "c" else x
        if v is None:
            # (n, ra') x (n, rb') -> (ra', rb')
            v = xc.reshape(n, ra1).T @ y.reshape(n, rb1)
        else:
            t = v.T @ xc.reshape(ra, n * ra1)                    # (rb, n ra')
            v = t.reshape(rb * n, ra1).T @ y.reshape(rb * n, rb1)  # (ra', rb')
        v, ev = _renorm(v, xp)
        exps.append(ev)
    total = _exponent_total(exps, xp)
    return (v.reshape(())[()] if xp is np else to_host(v.reshape(()))[()]), total


#: A running matrix on the host whose largest entry (trace, for a Gram matrix) is ``2**e``
#: with ``-_LAZY < e <= _LAZY`` is left as it is (``e = 0``): it is within ``2**+-16`` of 1,
#: which the window of :func:`in_window` allows for, and the multiplication is saved.
_LAZY = 16
#: Exponents ``e`` for which ``2.0 ** -e`` is a normal number of the dtype (by dtype char).
_POW2_SAFE = {"f": 120, "d": 1000, "F": 120, "D": 1000}


def _exponent_total(exps, xp):
    """The sum of a sweep's exponents as a host int: Python ints on NumPy (summed directly),
    0-d device integers on CuPy (brought to the host in one transfer)."""
    if xp is np:
        return int(sum(exps))
    return _scaling.host_exponent_sum(exps)


def _renorm(v, xp):
    """``(w, e)`` with ``v == w * 2**e`` exactly: the running matrix of a sweep brought back to
    within ``2**+-16`` of 1.  For a small NumPy matrix the exponent of ``max |v|`` is a Python
    int found with one reduction, and ``v`` is left as it is (``e = 0``) while that exponent
    is within :data:`_LAZY` of 0, else multiplied by an exact power of two; otherwise (CuPy,
    or large) :func:`tensortrain._scaling.normalize` brings ``max |w|`` to ``[0.5, 1)``."""
    if xp is not np or v.size > 4096:
        return _scaling.normalize(v, xp)
    m = float(abs(v).max())
    if 0 < m < math.inf:
        e = math.frexp(m)[1]
        if -_LAZY < e <= _LAZY:
            return v, 0
        if -_POW2_SAFE[v.dtype.char] < e < _POW2_SAFE[v.dtype.char]:
            return v * (2.0 ** -e), e
        return _scaling.ldexp(v, -e, xp), e
    return v, 0


def lt_indicator(modes, bound, xp, dtype):
    """Cores of the 0/1 tensor ``[i < bound]``, ``i`` the C-order linear index over ``modes``.

    Rank 2 (states "equal so far" / "already smaller"), or rank 1 when ``bound`` covers the
    whole range.
    """
    total = math.prod(modes)
    if bound >= total:
        return [xp.ones((1, m, 1), dtype=dtype) for m in modes]
    digits = []
    rem = bound - 1  # largest admissible index
    for m in reversed(modes):
        digits.append(rem % m)
        rem //= m
    digits = digits[::-1]
    d = len(modes)
    cores = []
    for k, (m, lk) in enumerate(zip(modes, digits)):
        c = np.zeros((2, m, 2))
        c[0, lk, 0] = 1.0          # tight -> tight
        c[0, :lk, 1] = 1.0         # tight -> below
        c[1, :, 1] = 1.0           # below -> below
        if k == 0:
            c = c[:1]
        if k == d - 1:
            c = c.sum(axis=2, keepdims=True)  # accept tight or below
        cores.append(xp.asarray(c.astype(dtype)))
    return cores

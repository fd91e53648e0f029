"""Algorithms on plain lists of 3-D TT cores ``(r_{k-1}, n_k, r_k)``.

These helpers trust their inputs (the public classes validate).  A TT-matrix core
``(r, m, n, r')`` is handled here by viewing it as ``(r, m*n, r')``.
"""

from __future__ import annotations

import math

import numpy as np

from . import _scaling
from ._backend import get_xp, to_host

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
    """Whether every core's largest entry lies inside the safe exponent window, so that a
    sweep that only rescales its small running matrix cannot overflow, or lose more than
    contributions far below round-off to underflow (one synchronization)."""
    lo, hi = _scaling.safe_exponent_window(cores[0].dtype)
    return all(lo <= e <= hi for e in _scaling.core_exponents(cores))


def norm_parts(cores, checked=None):
    """``(value, exp2)`` with ``||tensor||_F = value * 2**exp2`` (``value`` a host float: 0 for
    the zero tensor, NaN when the cores hold NaN or Inf).

    The sweep carries only the ``R`` factor of a QR of the left part (``Q`` is never formed),
    rescaled by a power of two after every core; no Gram matrix is formed, so the relative
    accuracy is that of a QR sweep even when the norm is small against the cores.  When a
    core's magnitude is outside :func:`tensortrain._scaling.safe_exponent_window` the fully
    scaled sweep :func:`tensortrain.decompositions.orthogonal_sweep` is used instead
    (``checked`` passes the result of :func:`in_window` when the caller knows it).

    Complexity: ``O(d n r^3)``, one QR (``R`` only) and one small GEMM per core.
    """
    xp = get_xp(*cores)
    if in_window(cores) if checked is None else checked:
        rr = None
        exps = []
        for c in cores:
            r0, n, r1 = c.shape
            m = c.reshape(r0, n * r1) if rr is None else rr @ c.reshape(r0, n * r1)
            rr = xp.linalg.qr(m.reshape(-1, r1), mode="r")
            rr, e = _scaling.normalize(rr, xp)
            exps.append(e)
        value = float(abs(to_host(rr.reshape(()))))
        if 0 < value < math.inf:
            return value, _scaling.host_exponent_sum(exps)
    from .decompositions import orthogonal_sweep  # noqa: PLC0415  (import order, see module doc)

    _, exp2, last = orthogonal_sweep(cores, "left")
    return last, exp2


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
        v, ev = _scaling.normalize(v, xp)
        exps.append(ev)
    total = _scaling.host_exponent_sum(exps)
    return to_host(v.reshape(()))[()], total


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

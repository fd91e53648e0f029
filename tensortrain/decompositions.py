"""TT-SVD, orthogonalization and rounding on plain lists of 3-D cores.

Conventions (see ``docs/conventions.md``): ``eps`` is the relative Frobenius accuracy of the
whole result, split as ``eps / sqrt(d - 1)`` over the ``d - 1`` truncated unfoldings, so
``||A - A_tt||_F <= eps * ||A||_F``; ``max_rank`` caps each bond, and the stricter of the two
wins.  Singular values below the round-off level ``8 * s_max * max(shape) * finfo.eps`` are always
dropped, so ``eps=0`` gives an exact decomposition without round-off noise in the ranks.

Magnitudes: every algorithm here works on data scaled by exact powers of two (see
:mod:`tensortrain._scaling`), so the bound holds and nothing overflows or underflows for data
of any magnitude the dtype can hold, and for any ``d``.
"""

from __future__ import annotations

import math

import numpy as np

from . import _scaling
from ._backend import get_xp, qr, svd, to_host, wide_r_factor
from .errors import TTError

__all__ = ["tt_svd", "orthogonalize_cores", "orthogonal_sweep", "round_cores",
           "truncation_rank"]

_LN2 = math.log(2.0)


def truncation_rank(s_host: np.ndarray, delta: float, max_rank, shape, dtype) -> int:
    """Smallest rank ``r`` with ``||s[r:]|| <= delta``, capped by ``max_rank``; at least 1.

    ``s_host`` holds the singular values (descending) on the host.  They are divided by the
    largest one before squaring, so the tail norms cannot overflow or underflow.
    """
    if s_host.size == 0:
        return 1
    s = np.asarray(s_host, dtype=np.float64)
    top = float(s[0])
    if not top > 0:
        return 1
    # round-off level: the usual numerical-rank threshold, with a margin for the error that
    # the sweeps before this unfolding accumulated (sums, QR) in the same precision
    tol = top * 8 * max(shape) * np.finfo(np.dtype(dtype)).eps
    r = int(np.count_nonzero(s > tol))
    if delta > 0:
        # tail[k] = ||s[k:]|| / s[0], computed from the small end for accuracy
        tail = np.sqrt(np.cumsum((s[::-1] / top) ** 2))[::-1]
        fits = np.nonzero(tail <= delta / top)[0]
        if fits.size:
            r = min(r, int(fits[0]))
    if max_rank is not None:
        r = min(r, int(max_rank))
    return max(r, 1)


def _truncated_split(mat, delta, cap):
    """``mat ~= u @ rest`` with orthonormal ``u`` of the truncation rank.

    A wide unfolding (``q >= 2p``) is reduced first: ``R`` from a QR of ``mat^H`` (``Q`` never
    formed), the SVD of the small ``R^H`` gives ``u`` and the singular values, and
    ``rest = u^H @ mat`` is one GEMM.  Otherwise a thin SVD of ``mat`` itself.
    """
    xp = get_xp(mat)
    p, q = mat.shape
    if q >= 2 * p:
        rfac = wide_r_factor(mat)
        u, s, _ = svd(xp.conj(rfac).T)
        r = truncation_rank(to_host(s), delta, cap, mat.shape, mat.dtype)
        u = u[:, :r]
        return u, xp.conj(u).T @ mat
    u, s, vh = svd(mat)
    r = truncation_rank(to_host(s), delta, cap, mat.shape, mat.dtype)
    return u[:, :r], s[:r, None].astype(vh.dtype) * vh[:r]


def tt_svd(a, modes, eps=0.0, max_rank=None):
    """TT-SVD of the dense array ``a`` reshaped to ``modes``.

    Returns the list of cores (never sharing memory with ``a``).  ``max_rank`` is None or a
    tuple of ``d - 1`` caps.  Data whose largest magnitude is far from 1 is first scaled by a
    power of two (exactly), and the power is put back into the cores at the end.

    Complexity: ``O(n^d * r)`` for the first unfoldings (one SVD of each ``r n x rest``
    unfolding; LAPACK's gesdd reduces a wide unfolding by an LQ step first).
    """
    xp = get_xp(a)
    d = len(modes)
    if d == 1:
        return [xp.array(a.reshape(1, modes[0], 1), copy=True)]
    flat = a.reshape(-1)
    e = int(to_host(_scaling.exponent(_scaling.max_abs(flat))))
    lo, hi = _scaling.safe_exponent_window(flat.dtype)
    # a quarter of the range each way: the sum of the squares of any number of entries that
    # fit in memory stays inside the range
    if not lo // 2 <= e <= hi // 2:
        flat = _scaling.ldexp(flat, -e)
    else:
        e = 0
    norm = float(to_host(xp.linalg.norm(flat)))
    delta = eps / math.sqrt(d - 1) * norm
    cores = []
    r_prev = 1
    rest = flat
    for k in range(d - 1):
        rows = r_prev * modes[k]
        mat = rest.reshape(rows, -1)
        cap = None if max_rank is None else max_rank[k]
        u, rest = _truncated_split(mat, delta, cap)
        r = u.shape[1]
        cores.append(u.reshape(r_prev, modes[k], r))
        r_prev = r
    cores.append(rest.reshape(r_prev, modes[-1], 1))
    return _scaling.apply_pow2(cores, e, d - 1)


def orthogonal_sweep(cores, direction="left"):
    """QR sweep with exact power-of-two rescaling; the workhorse of norms, rounding and
    :func:`orthogonalize_cores`.

    Returns ``(out, exp2, last_norm)``: ``out`` are left-orthogonal cores but the last
    (``direction='left'``) or right-orthogonal cores but the first (``'right'``); the
    remaining core has its largest entry in ``[0.5, 1)`` and Frobenius norm ``last_norm``
    (a host float computed in double precision: 0 for the zero tensor, NaN when the cores
    hold NaN or Inf).  The tensor equals ``out * 2**exp2``, so ``||tensor|| ==
    ldexp(last_norm, exp2)`` exactly up to the sweep's round-off.

    Every core is scaled to a largest magnitude in ``[0.5, 1)`` before it meets the carried
    factor, and the carried ``R`` is scaled the same way, so no product, QR or norm in the
    sweep can overflow or underflow for any data the dtype holds, and for any ``d``.

    Complexity: ``O(d n r^3)``.
    """
    xp = get_xp(*cores)
    d = len(cores)
    exps = []
    out = []
    for c in cores:
        c, e = _scaling.normalize(c)
        out.append(c)
        exps.append(e)
    if direction == "left":
        for k in range(d - 1):
            r0, n, r1 = out[k].shape
            q, rr = qr(out[k].reshape(r0 * n, r1))
            out[k] = q.reshape(r0, n, q.shape[1])
            rr, e = _scaling.normalize(rr)
            exps.append(e)
            out[k + 1] = xp.tensordot(rr, out[k + 1], axes=([1], [0]))
        last = d - 1
    elif direction == "right":
        for k in range(d - 1, 0, -1):
            r0, n, r1 = out[k].shape
            q, rr = qr(out[k].reshape(r0, n * r1).T)
            out[k] = q.T.reshape(q.shape[1], n, r1)
            rr, e = _scaling.normalize(rr)
            exps.append(e)
            out[k - 1] = xp.tensordot(out[k - 1], rr.T, axes=([2], [0]))
        last = 0
    else:  # pragma: no cover - validated by the public functions
        raise ValueError(direction)
    out[last], e = _scaling.normalize(out[last])
    exps.append(e)
    exp2 = _scaling.host_exponent_sum(exps)
    wide = np.complex128 if out[last].dtype.kind == "c" else np.float64
    last_norm = float(to_host(xp.linalg.norm(out[last].reshape(-1).astype(wide))))
    return out, exp2, last_norm


def orthogonalize_cores(cores, direction="left", normalize=False):
    """QR sweep making cores left-orthogonal (all but the last) or right-orthogonal (all but the first).

    Returns ``(cores, log_scale)``.  With ``normalize=True`` the non-orthogonal core is left
    with unit norm and ``log ||tensor||_F`` is returned as ``log_scale``; otherwise the scale
    is put back (by :func:`tensortrain._scaling.apply_pow2`: into the non-orthogonal core, or
    spread over all cores when it does not fit there), the result represents the same tensor
    and ``log_scale`` is 0.

    Complexity: ``O(d n r^3)``.
    """
    out, exp2, last_norm = orthogonal_sweep(cores, direction)
    last = len(out) - 1 if direction == "left" else 0
    if normalize:
        if last_norm > 0 and math.isfinite(last_norm):
            out[last] = out[last] / out[last].real.dtype.type(last_norm)
            return out, exp2 * _LN2 + math.log(last_norm)
        return out, (-math.inf if last_norm == 0 else math.nan)
    return _scaling.apply_pow2(out, exp2, last), 0.0


def round_cores(cores, eps=0.0, max_rank=None, ref_log_norm=None):
    """TT rounding: right-to-left QR sweep, then left-to-right truncated SVDs.

    The result satisfies ``||A - B|| <= eps * exp(ref_log_norm)`` with ``ref_log_norm`` the
    log of ``||A||`` by default (a padded TT-matrix passes the norm of its logical block, so
    its ranks never grow).  The sweep works on the tensor scaled by an exact power of two and
    puts the power back at the end, so nothing overflows or underflows for any magnitude or
    any ``d``.

    Complexity: ``O(d n r^3)`` time.
    """
    xp = get_xp(*cores)
    d = len(cores)
    if d == 1:
        return list(cores)
    out, exp2, first = orthogonal_sweep(cores, "right")
    if not math.isfinite(first):
        raise TTError("cannot round a TT whose cores contain NaN or Inf")
    if ref_log_norm is None:
        rel = first
    else:
        rel = math.exp(max(min(ref_log_norm - exp2 * _LN2, 700.0), -700.0))
    delta = eps / math.sqrt(d - 1) * rel
    for k in range(d - 1):
        r0, n, r1 = out[k].shape
        mat = out[k].reshape(r0 * n, r1)
        u, s, vh = svd(mat)
        r = truncation_rank(to_host(s), delta, None if max_rank is None else max_rank[k],
                            mat.shape, mat.dtype)
        out[k] = u[:, :r].reshape(r0, n, r)
        sv = s[:r, None].astype(vh.dtype) * vh[:r]
        out[k + 1] = xp.tensordot(sv, out[k + 1], axes=([1], [0]))
    return _scaling.apply_pow2(out, exp2, d - 1)

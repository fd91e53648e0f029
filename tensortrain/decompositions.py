"""TT-SVD, orthogonalization and rounding on plain lists of 3-D cores.

Conventions (see ``docs/conventions.md``): ``eps`` is the relative Frobenius accuracy of the
whole result, split as ``eps / sqrt(d - 1)`` over the ``d - 1`` truncated unfoldings, so
``||A - A_tt||_F <= eps * ||A||_F``; ``max_rank`` caps each bond, and the stricter of the two
wins.  Singular values below the round-off level ``8 * s_max * max(shape) * finfo.eps`` are always
dropped, so ``eps=0`` gives an exact decomposition without round-off noise in the ranks.
"""

from __future__ import annotations

import math

import numpy as np

from ._backend import get_xp, qr, svd, to_host, wide_r_factor
from .errors import TTError

__all__ = ["tt_svd", "orthogonalize_cores", "round_cores", "truncation_rank"]


def truncation_rank(s_host: np.ndarray, delta: float, max_rank, shape, dtype) -> int:
    """Smallest rank ``r`` with ``||s[r:]|| <= delta``, capped by ``max_rank``; at least 1.

    ``s_host`` holds the singular values (descending) on the host.
    """
    if s_host.size == 0:
        return 1
    # round-off level: the usual numerical-rank threshold, with a margin for the error that
    # the sweeps before this unfolding accumulated (sums, QR) in the same precision
    tol = s_host[0] * 8 * max(shape) * np.finfo(np.dtype(dtype)).eps
    r = int(np.count_nonzero(s_host > tol))
    if delta > 0:
        # tail[k] = ||s[k:]||, computed from the small end for accuracy
        tail = np.sqrt(np.cumsum((s_host[::-1].astype(np.float64)) ** 2))[::-1]
        fits = np.nonzero(tail <= delta)[0]
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

    Returns the list of cores.  ``max_rank`` is None or a tuple of ``d - 1`` caps.

    Complexity: ``O(n^d * r)`` for the first unfoldings (one SVD of each ``r n x rest``
    unfolding; LAPACK's gesdd reduces a wide unfolding by an LQ step first).
    """
    xp = get_xp(a)
    d = len(modes)
    c = a.reshape(modes)
    if d == 1:
        return [c.reshape(1, modes[0], 1)]
    norm = float(to_host(xp.linalg.norm(c.reshape(-1))))
    delta = eps / math.sqrt(d - 1) * norm
    cores = []
    r_prev = 1
    rest = c.reshape(-1)
    for k in range(d - 1):
        rows = r_prev * modes[k]
        mat = rest.reshape(rows, -1)
        cap = None if max_rank is None else max_rank[k]
        u, rest = _truncated_split(mat, delta, cap)
        r = u.shape[1]
        cores.append(u.reshape(r_prev, modes[k], r))
        r_prev = r
    cores.append(rest.reshape(r_prev, modes[-1], 1))
    return cores


def orthogonalize_cores(cores, direction="left", normalize=False):
    """QR sweep making cores left-orthogonal (all but the last) or right-orthogonal (all but the first).

    Returns ``(cores, log_scale)``.  The sweep always rescales the carried ``R`` factor, so
    it cannot overflow or underflow for any ``d``.  With ``normalize=True`` the
    non-orthogonal core is left with unit norm and ``log ||tensor||_F`` is returned as
    ``log_scale``; otherwise the scale is put back (see :func:`apply_log_scale`), the result
    represents the same tensor and ``log_scale`` is 0.

    Complexity: ``O(d n r^3)``.
    """
    xp = get_xp(*cores)
    d = len(cores)
    out = list(cores)
    logs = []

    def renorm(m):
        s = xp.linalg.norm(m)
        s = xp.where(s > 0, s, xp.ones_like(s))
        logs.append(xp.log(s.astype(np.float64)))
        return m / s

    if direction == "left":
        for k in range(d - 1):
            r0, n, r1 = out[k].shape
            q, rr = qr(out[k].reshape(r0 * n, r1))
            out[k] = q.reshape(r0, n, q.shape[1])
            out[k + 1] = xp.tensordot(renorm(rr), out[k + 1], axes=([1], [0]))
        last = d - 1
    elif direction == "right":
        for k in range(d - 1, 0, -1):
            r0, n, r1 = out[k].shape
            q, rr = qr(out[k].reshape(r0, n * r1).T)
            out[k] = q.T.reshape(q.shape[1], n, r1)
            out[k - 1] = xp.tensordot(out[k - 1], renorm(rr).T, axes=([2], [0]))
        last = 0
    else:  # pragma: no cover - validated by the public functions
        raise ValueError(direction)
    out[last] = renorm(out[last])
    log_scale = float(to_host(xp.sum(xp.stack(logs))))
    if normalize:
        return out, log_scale
    return apply_log_scale(out, log_scale, last), 0.0


def apply_log_scale(cores, log_scale, k):
    """Multiply the tensor by ``exp(log_scale)``: into core ``k`` when that factor is
    representable in the cores' dtype, else spread evenly over all cores."""
    if log_scale == 0.0 or not math.isfinite(log_scale):
        return cores
    out = list(cores)
    info = np.finfo(out[k].dtype)
    if math.log(info.tiny) + 4 < log_scale < math.log(info.max) - 4:
        out[k] = out[k] * math.exp(log_scale)
    else:
        f = math.exp(log_scale / len(out))
        out = [c * f for c in out]
    return out


def round_cores(cores, eps=0.0, max_rank=None, ref_log_norm=None):
    """TT rounding: right-to-left QR sweep, then left-to-right truncated SVDs.

    The result satisfies ``||A - B|| <= eps * exp(ref_log_norm)`` with ``ref_log_norm`` the
    log of ``||A||`` by default (a padded TT-matrix passes the norm of its logical block, so
    its ranks never grow).  The sweep works on the normalised tensor and puts the scale back
    at the end, so nothing overflows or underflows for any ``d``.

    Complexity: ``O(d n r^3)`` time.
    """
    xp = get_xp(*cores)
    d = len(cores)
    if d == 1:
        return list(cores)
    out, log_scale = orthogonalize_cores(cores, "right", normalize=True)
    first = float(to_host(xp.linalg.norm(out[0])))
    if not (math.isfinite(first) and math.isfinite(log_scale)):
        raise TTError("cannot round a TT whose cores contain NaN or Inf")
    rel = first if ref_log_norm is None else math.exp(min(ref_log_norm - log_scale, 700.0))
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
    return apply_log_scale(out, log_scale, d - 1)

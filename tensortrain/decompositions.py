"""TT-SVD, orthogonalization and rounding on plain lists of 3-D cores.

Conventions (see ``docs/conventions.md``): ``eps`` is the relative Frobenius accuracy of the
whole result, split as ``eps / sqrt(d - 1)`` over the ``d - 1`` truncated unfoldings, so
``||A - A_tt||_F <= eps * ||A||_F``; ``max_rank`` caps each bond, and the stricter of the two
wins.  Singular values below the round-off level ``8 * s_max * max(shape) * finfo.eps`` are always
dropped, so ``eps=0`` gives an exact decomposition without round-off noise in the ranks.

Magnitudes: every algorithm here works on data scaled by exact powers of two (see
:mod:`tensortrain._scaling`), so the bound holds and nothing overflows or underflows for data
of any magnitude the dtype can hold, and for any ``d``.

Paths of TT-SVD, chosen per unfolding ``M`` (``p x q``) by ``method='auto'`` (the rules and
their measured costs are in ``docs/performance.md``):

* ``'gram'``: eigenpairs of the Gram matrix of the short side of ``M`` (``M M^H`` or
  ``M^H M``; single-precision data get a double-precision one unless single suffices).
  Squaring ``M`` makes the eigenvalues exact only to about ``nu = u ||M||_F^2``, so the path
  is taken only where the cut is decided far above that: the allowed squared tail
  ``delta^2`` (or, where ``max_rank`` decides, the discarded tail and the smallest kept
  eigenvalue) at least :data:`GRAM_SAFETY` times ``nu``.  An ``eps`` cut is then certified
  from ``||M||_F^2 - ||U^H M||_F^2`` with ``U^H M`` computed from ``M``; any doubt falls back
  to the next paths.
  A pivoted Cholesky factorization of the Gram matrix replaces the eigensolver when its
  numerical rank is small.
* ``'qr'``: a wide unfolding (``q >= 2 p``) is reduced by the ``R`` factor of a Householder
  QR of ``M^H`` (``Q`` never formed), whose small SVD gives the truncation.
* ``'svd'``: a thin SVD of ``M`` itself.

An unfolding with nothing to discard and ``p <= q`` is kept as it is (an identity core), not
rotated by its singular vectors.  Rounding sweeps with Householder QR (right to left), then,
left to right, first tries to certify from a Cholesky factorization of the bond's Gram matrix
that nothing is cut (the core is then kept as it is), and otherwise takes a QR of the core
matrix and the singular values of its small ``R``; singular vectors are formed only where a
bond is cut (:func:`round_cores`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from . import _scaling
from ._backend import (
    eigh,
    frobenius_norm,
    get_xp,
    gram,
    is_positive_definite,
    matmul,
    pivoted_cholesky,
    qr,
    svd,
    svdvals,
    to_host,
    wide_r_factor,
)
from ._validation import Array
from .errors import TTError

__all__ = [
    "GRAM_SAFETY",
    "ROUND_METHODS",
    "TT_SVD_METHODS",
    "orthogonal_sweep",
    "orthogonalize_cores",
    "round_cores",
    "truncation_rank",
    "tt_svd",
]

_LN2 = math.log(2.0)

#: Accepted ``method`` values of :func:`tt_svd`.  ``'auto'`` picks per unfolding by the rules
#: of the module docstring; the others force a path: ``'gram'`` tries the Gram path on every
#: unfolding (still falling back where it cannot decide the truncation), ``'qr'`` is the
#: R-factor path for wide unfoldings and an SVD for the others, ``'svd'`` an SVD everywhere.
TT_SVD_METHODS = ("auto", "gram", "qr", "svd")

#: Accepted ``method`` values of :func:`round_cores`: ``'auto'`` (a Gram certificate for bonds
#: with nothing to cut, else as ``'qr'``), ``'qr'`` (QR, singular values of ``R``, vectors only
#: where a bond is cut) and ``'svd'`` (a full SVD of every core matrix).
ROUND_METHODS = ("auto", "qr", "svd")

#: Safety factor of the Gram path, on squared quantities: a truncation is decided from Gram
#: eigenvalues only when the quantity that decides it (the allowed squared tail ``delta^2``,
#: or the smallest kept eigenvalue) is at least this many times ``u ||M||_F^2``, the size of
#: the Gram matrix's own round-off (``u`` the unit round-off of the precision it is formed
#: in).  1024 is a factor 32 on singular values.
GRAM_SAFETY = 1024.0

#: Unfoldings with fewer entries than this take an SVD or QR in ``'auto'``: at this size their
#: factorizations take microseconds and the Gram path's bookkeeping would not pay.
GRAM_MIN_ENTRIES = 1 << 14


def truncation_rank(s_host: np.ndarray, delta: float, max_rank, shape, dtype) -> int:
    """Smallest rank ``r`` with ``||s[r:]|| <= delta``, capped by ``max_rank``; at least 1.

    ``s_host`` holds the singular values (descending) on the host.  They are divided by the
    largest one before squaring, so the tail norms cannot overflow or underflow.
    """
    if s_host.size == 0:
        return 1
    if s_host.size <= _SMALL_SPECTRUM:
        return _truncation_rank_small(s_host, delta, max_rank, shape, dtype)
    s = np.asarray(s_host, dtype=np.float64)
    top = float(s[0])
    if not top > 0:
        return 1
    # round-off level: the usual numerical-rank threshold, with a margin for the error that
    # the sweeps before this unfolding accumulated (sums, QR) in the same precision
    tol = top * _roundoff_factor(shape, dtype)
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


#: Spectra of at most this many values take :func:`_truncation_rank_small` (plain Python
#: floats: a few microseconds instead of a dozen NumPy calls on a tiny array).
_SMALL_SPECTRUM = 48


def _truncation_rank_small(s_host, delta, max_rank, shape, dtype):
    """:func:`truncation_rank` on host floats, the same operations in the same order (the
    tail sums from the small end, ``sqrt`` compared with ``delta / top``), so the same rank."""
    s = [float(v) for v in np.asarray(s_host).tolist()]
    top = s[0]
    if not top > 0:
        return 1
    tol = top * _roundoff_factor(shape, dtype)
    r = sum(1 for v in s if v > tol)
    if delta > 0:
        bound = delta / top
        acc = 0.0
        fits = None
        for k in range(len(s) - 1, -1, -1):
            q = s[k] / top
            acc += q * q
            if math.sqrt(acc) <= bound:
                fits = k
        if fits is not None:
            r = min(r, fits)
    if max_rank is not None:
        r = min(r, int(max_rank))
    return max(r, 1)


_EPS_OF: dict = {}


def _roundoff_factor(shape, dtype):
    eps = _EPS_OF.get(dtype)
    if eps is None:
        eps = _EPS_OF[dtype] = float(np.finfo(np.dtype(dtype)).eps)
    return 8 * max(shape) * eps


def _unit_roundoff(dtype):
    return float(np.finfo(np.dtype(dtype)).eps) / 2


def _check_method(method, allowed):
    if method not in allowed:
        raise TTError(f"method must be one of {allowed}, got {method!r}")


# ---- the three ways to split one unfolding ---------------------------------------------------
#
# Each returns ``(u, rest, ||rest||_F^2)`` with ``mat ~= u @ rest`` and orthonormal ``u`` of the
# truncation rank.  When nothing is discarded from a matrix that is not tall (``r == p <= q``),
# ``u`` is the identity and ``rest`` is ``mat`` itself: rotating it by the singular vectors
# would cost a pass over the data and change nothing that matters (the next unfoldings have
# the same singular values either way).


def _keep_all(mat, sq_norm):
    xp = get_xp(mat)
    return xp.eye(mat.shape[0], dtype=mat.dtype), mat, sq_norm


def _split_svd(mat, delta, cap, sq_norm):
    u, s, vh = svd(mat)
    s_host = to_host(s)
    r = truncation_rank(s_host, delta, cap, mat.shape, mat.dtype)
    if r == mat.shape[0] <= mat.shape[1]:
        return _keep_all(mat, sq_norm)
    return u[:, :r], s[:r, None].astype(vh.dtype) * vh[:r], _sq_norm(s_host[:r])


def _split_qr(mat, delta, cap, sq_norm):
    """Wide ``mat`` (``q >= 2p``): ``R`` from a QR of ``mat^H`` (``Q`` never formed), the SVD
    of the small ``R^H`` gives ``u`` and the singular values, and ``rest = u^H @ mat``."""
    xp = get_xp(mat)
    rfac = wide_r_factor(mat)
    u, s, _ = svd(xp.conj(rfac).T)
    s_host = to_host(s)
    r = truncation_rank(s_host, delta, cap, mat.shape, mat.dtype)
    if r == mat.shape[0]:
        return _keep_all(mat, sq_norm)
    u = u[:, :r]
    return u, matmul(u, mat, adjoint_a=True), _sq_norm(s_host[:r])


def _sq_norm(s_host):
    s = np.asarray(s_host, dtype=np.float64)
    if s.size == 0 or not s[0] > 0:
        return 0.0
    return float(s[0]) ** 2 * float(np.sum((s / s[0]) ** 2))


def _gram_precision(mat, delta, cap, sq_norm, force):
    """The dtype to form the Gram matrix of ``mat`` in, or None where the Gram path is not
    tried (the a-priori half of the rule; :func:`_split_gram` checks the rest once the
    eigenvalues are known).  ``sq_norm`` is ``||M||_F^2``, known before ``mat`` is read.

    * the input's own precision when ``delta^2 >= GRAM_SAFETY * u * ||M||_F^2`` in it;
    * else double precision for single-precision input: a double-precision Gram matrix
      resolves singular values down to about ``sqrt(u64) s_max ~ 1e-8 s_max``, below what a
      single-precision SVD resolves (its round-off threshold is ``8 max(p, q) eps32 s_max``);
    * else (double precision) only when ``max_rank`` is below the short side, since the cap
      may decide the rank where ``eps`` cannot be resolved.
    """
    p, q = mat.shape
    if not force and p * q < GRAM_MIN_ENTRIES:
        return None
    own = np.dtype(mat.dtype)
    wide = _scaling.wide_dtype(own)
    if delta > 0 and delta * delta >= GRAM_SAFETY * _unit_roundoff(own) * sq_norm:
        return own
    if force or wide != own or (cap is not None and cap < min(p, q)):
        return wide
    return None


def _top_eigenpairs(g, nu, d2, cap, small):
    """Approximate leading eigenpairs of the Gram matrix ``g`` (``small x small``).

    Returns ``(lam, basis, exact)``: ``lam`` host eigenvalues, descending, ``>= 0``; ``basis``
    whose first ``r`` columns span the leading ``r``-dimensional eigenspace (orthonormal when
    ``exact``).  Every eigenvalue that a truncation to ``d2`` or to ``cap`` can keep is there.

    With ``d2 > 0`` a pivoted Cholesky factorization ``g ~= F F^H`` that stops at pivots below
    ``nu / small`` is tried first: when its rank ``k`` is at most ``small / 4`` (typical once a
    TT-SVD has reached the small ranks of smooth data), the eigenpairs of the ``k x k`` matrix
    ``F^H F`` replace an ``O(small^3)`` eigensolver.  The neglected part ``g - F F^H`` is
    positive semidefinite with trace ``<= nu``, the size of ``g``'s own round-off, so these
    eigenvalues underestimate those of ``g`` by less than that (the tails computed from them
    only err towards keeping more) and the subspace is as good as ``g``'s eigenvectors.
    """
    xp = get_xp(g)
    many = False
    if d2 > 0 and small >= 64:
        f, k = pivoted_cholesky(g, nu / small, max_rank=small // 4)
        if f is not None:
            if k == 0:                          # g itself is negligible: any unit vector
                basis = xp.zeros((small, 1), dtype=g.dtype)
                basis[int(to_host(xp.argmax(xp.diagonal(g).real))), 0] = 1
                return np.zeros(1), basis, True
            w, v = eigh(gram(f, rows=False), overwrite=True)
            lam = np.maximum(np.asarray(to_host(w), dtype=np.float64), 0.0)
            return lam, matmul(f, v), False
        many = k is not None and k > small // 2
    if cap is not None and cap < small:
        w, v = eigh(g, top=cap)
    elif d2 > 0 and not many:
        # every eigenvalue that can be kept exceeds d2 / small: the ones below sum to less
        w, v = eigh(g, above=d2 / small * (1 - 2.0 ** -20))
        if w.shape[0] == 0:                     # all of it fits in the tail: keep one pair
            w, v = eigh(g, top=1)
    else:                                       # (most) pairs needed: divide and conquer
        w, v = eigh(g)
    return np.maximum(np.asarray(to_host(w), dtype=np.float64), 0.0), v, True


def _split_gram(mat, delta, cap, work, sq_norm):
    """Truncate ``mat`` from the eigenpairs of its short-side Gram matrix, formed in ``work``.

    Returns ``(u, rest, ||rest||^2)`` or None where the eigenvalues cannot decide the rank as
    an SVD would, or the a-posteriori error check fails (the caller then takes the QR or SVD
    path).  ``u`` and ``rest = u^H mat`` are computed in ``mat``'s dtype.

    Let ``nu = u * ||M||_F^2`` (``u`` the unit round-off of ``work``), the size of the Gram
    matrix's round-off.  With ``tail2[r] = ||M||_F^2 - (sum of the r largest eigenvalues)``:

    * ``r_eps`` is the smallest ``r`` with ``tail2[r] + 9 nu <= delta^2`` (the margin covers the
      round-off of ``tail2`` and what a pivoted Cholesky compression may neglect),
      ``r_tol`` counts the eigenvalues above the round-off threshold of
      :func:`truncation_rank` (squared), and ``r = min(r_eps, r_tol, cap)``;
    * accepted only if every kept eigenvalue is ``>= GRAM_SAFETY * nu`` and the cut is decided
      by something far above the noise: nothing discarded, or ``delta^2 >= GRAM_SAFETY * nu``
      (eps cut), or ``tail2[cap] >= GRAM_SAFETY * nu`` (cap cut), or a round-off threshold
      ``>= GRAM_SAFETY * nu`` (single precision in a double-precision Gram);
    * an eps cut is then certified with the ``u`` actually returned, from the rest ``u^H M``
      computed from ``M`` itself (so that an error of the Gram matrix would show):
      ``||M - u u^H M||^2 = ||M||^2 - ||u^H M||^2 + tr(F H)`` (``F = u^H u - I``,
      ``H = u^H M M^H u``), evaluated to about ``nu``, must satisfy ``+ 4 nu <= delta^2``.
      (Single-precision data with a double-precision Gram matrix: the eigenvalue tail, since
      that Gram matrix is far more accurate than the data.)
    """
    xp = get_xp(mat)
    p, q = mat.shape
    by_rows = p <= q
    small = min(p, q)
    g = gram(mat, rows=by_rows, dtype=work, lower_only=True)
    trace = float(to_host(xp.sum(xp.diagonal(g).real)))
    if not math.isfinite(trace):
        return None
    nu = _unit_roundoff(work) * trace            # the Gram matrix's round-off level
    resolved = GRAM_SAFETY * nu
    d2 = delta * delta
    lam, basis, exact = _top_eigenpairs(g, nu, d2, cap, small)
    m = lam.size
    # tail2[r]: squared norm of what is discarded when r pairs are kept (trace subtraction, so
    # the eigenvalues that were not computed are accounted for)
    tail2 = np.maximum(trace - np.concatenate(([0.0], np.cumsum(lam))), 0.0)
    fits = np.nonzero(tail2 + 9 * nu <= d2)[0]
    if d2 == 0:
        r_eps = small + 1                       # no eps: the round-off rule and the cap decide
    elif fits.size:
        r_eps = int(fits[0])
    elif cap is not None and m >= cap:
        r_eps = small + 1                       # eps cannot be met within the cap
    else:
        return None
    tol2 = (math.sqrt(lam[0]) * _roundoff_factor(mat.shape, mat.dtype)) ** 2
    r_tol = int(np.count_nonzero(lam > tol2))
    r_cap = small if cap is None else min(cap, small)
    r = min(r_eps, r_tol, r_cap)
    certify = False
    if r_eps == 0 or trace == 0:
        r = 1                                   # everything may go: keep one direction
        certify = d2 > 0
    elif lam[r - 1] < resolved:
        return None                             # a kept direction is below the Gram's noise
    elif r == small:
        pass                                    # nothing is discarded
    elif r == r_eps:
        if d2 < resolved:
            return None                         # the eps cut is below the Gram's noise
        certify = True
    elif r == r_cap:
        if tail2[r] < resolved:
            return None                         # the cap binds, but not clearly
    elif tol2 < resolved:
        return None                             # the round-off cut is below the Gram's noise
    if by_rows and r == p:
        return _keep_all(mat, sq_norm)
    basis = basis[:, :r]
    if by_rows:
        u = (basis if exact else qr(basis)[0]).astype(mat.dtype)
        rest = matmul(u, mat, adjoint_a=True)
        own = work == mat.dtype                 # rest computed in the Gram's precision
        nb2 = frobenius_norm(rest) ** 2 if own else trace - float(tail2[r])
    else:
        u, _ = qr(matmul(mat, basis.astype(mat.dtype)))
        rest = _project(u.astype(work), mat, work)
        own = True
        nb2 = frobenius_norm(rest) ** 2
        rest = rest.astype(mat.dtype)
    if certify:
        if own:
            # ||M - u u^H M||^2 = ||M||^2 - ||u^H M||^2 + tr(F H), F = u^H u - I and
            # H = u^H M M^H u, with ||u^H M|| taken from the rest itself (so an error of the
            # Gram matrix shows); for eigenvectors H is diagonal to round-off and tr(F H) =
            # sum_i (|u_i|^2 - 1) lam_i, for a Householder basis |tr(F H)| <= ||F|| ||u^H M||^2
            uw = u.astype(work)
            if exact:
                col2 = np.asarray(to_host(xp.sum((uw * xp.conj(uw)).real, axis=0)), np.float64)
                corr = float(np.dot(col2 - 1.0, lam[:r]))
            else:
                corr = frobenius_norm(gram(uw, rows=False) - xp.eye(r, dtype=work)) * nb2
            err2 = trace - nb2 + corr
        else:
            # single-precision data in a double-precision Gram matrix: its round-off lies far
            # below the data's own, and the eigenvalue tail is the error
            err2 = float(tail2[r])
        if err2 + 4 * nu > d2:
            return None
    return u, rest, nb2


def _project(uw, mat, work, block_bytes=1 << 25):
    """``uw^H @ mat`` in the precision ``work``, accumulated over row blocks of ``mat``
    converted one at a time (no converted copy of the whole of ``mat``)."""
    if mat.dtype == work:
        return matmul(uw, mat, adjoint_a=True)
    p, q = mat.shape
    step = max(1, block_bytes // (np.dtype(work).itemsize * max(q, 1)))
    out = None
    for s in range(0, p, step):
        part = matmul(uw[s:s + step], mat[s:s + step].astype(work), adjoint_a=True)
        out = part if out is None else out + part
    return out


def _split(mat, delta, cap, sq_norm, method):
    """``mat ~= u @ rest`` with orthonormal ``u`` of the truncation rank; returns ``(u, rest,
    ||rest||^2, path)``."""
    p, q = mat.shape
    path = ""
    if method in ("auto", "gram"):
        work = _gram_precision(mat, delta, cap, sq_norm, method == "gram")
        if work is not None:
            out = _split_gram(mat, delta, cap, work, sq_norm)
            tag = "gram" if work == mat.dtype else "gram-" + np.dtype(work).name
            if out is not None:
                return (*out, tag)
            path = tag + ">"
    if method != "svd" and q >= 2 * p:
        return (*_split_qr(mat, delta, cap, sq_norm), path + "qr")
    return (*_split_svd(mat, delta, cap, sq_norm), path + "svd")


def _scale_exponent(flat):
    """The exponent ``e`` of ``max |flat|`` when the data must be scaled (``e`` outside the
    quarter-range window), else 0; and ``||flat||_F`` when it is already known (else None).

    The norm is computed first: when it and ``norm / sqrt(size)`` (a lower bound of the
    largest magnitude) both lie inside the window, the largest magnitude does too, and the
    pass that finds it is skipped.
    """
    xp = get_xp(flat)
    lo, hi = _scaling.safe_exponent_window(flat.dtype)
    lo, hi = lo // 2, hi // 2
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        norm = frobenius_norm(flat)
    if math.isfinite(norm) and norm > 0:
        upper = math.frexp(norm)[1]
        lower = math.frexp(norm / math.sqrt(flat.size))[1]
        if lo + 2 <= lower and upper <= hi - 2:
            return 0, norm
    if flat.dtype.kind == "c":
        amax = _scaling.max_abs(flat)
    else:                                       # no |flat| temporary for real data
        amax = xp.maximum(xp.max(flat), -xp.min(flat))
    e = int(to_host(_scaling.exponent(amax)))
    if lo <= e <= hi:
        return 0, norm if math.isfinite(norm) else None
    return e, None


def tt_svd(a: Array, modes: Sequence[int], eps: float = 0.0, max_rank: Sequence[int] | None = None,
           method: str = "auto", report: list[str] | None = None) -> list[Array]:
    """TT-SVD of the dense array ``a`` reshaped to ``modes``.

    Returns the list of cores (never sharing memory with ``a``).  ``max_rank`` is None or a
    tuple of ``d - 1`` caps.  Data whose largest magnitude is far from 1 is first scaled by a
    power of two (exactly), and the power is put back into the cores at the end.

    ``method`` (one of :data:`TT_SVD_METHODS`) chooses how each unfolding is truncated; every
    path keeps the ``eps`` bound and the ranks of an SVD of the unfolding (up to rounding at
    a threshold tie).  When ``report`` is a list, the path taken for each unfolding is
    appended to it (``'gram'``, ``'gram-float64'`` for single-precision data whose Gram matrix
    was formed in double precision, ``'qr'``, ``'svd'``, or ``'gram>qr'`` / ``'gram>svd'``
    for a Gram attempt that fell back).

    Complexity: ``O(n^d * r)`` for the first unfoldings on the QR path, ``O(n^d * n r)`` for a
    Gram matrix; see ``docs/performance.md``.
    """
    _check_method(method, TT_SVD_METHODS)
    xp = get_xp(a)
    d = len(modes)
    if d == 1:
        return [xp.array(a.reshape(1, modes[0], 1), copy=True)]
    flat = a.reshape(-1)
    # a quarter of the range each way: the sum of the squares of any number of entries that
    # fit in memory stays inside the range
    e, norm = _scale_exponent(flat)
    if e:
        flat = _scaling.ldexp(flat, -e)
    if norm is None:
        norm = frobenius_norm(flat)
    delta = eps / math.sqrt(d - 1) * norm
    sq_norm = norm * norm
    cores = []
    r_prev = 1
    rest = flat
    for k in range(d - 1):
        rows = r_prev * modes[k]
        mat = rest.reshape(rows, -1)
        cap = None if max_rank is None else max_rank[k]
        u, rest, sq_norm, path = _split(mat, delta, cap, sq_norm, method)
        if report is not None:
            report.append(path)
        r = u.shape[1]
        cores.append(u.reshape(r_prev, modes[k], r))
        r_prev = r
    last = rest.reshape(r_prev, modes[-1], 1)
    if xp.may_share_memory(last, a):            # every unfolding was kept whole
        last = last.copy()
    cores.append(last)
    return _scaling.apply_pow2(cores, e, d - 1)


def orthogonal_sweep(cores: Sequence[Array],
                     direction: str = "left") -> tuple[list[Array], int, float]:
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
            out[k + 1] = _absorb_left(rr, out[k + 1])
        last = d - 1
    elif direction == "right":
        for k in range(d - 1, 0, -1):
            r0, n, r1 = out[k].shape
            q, rr = qr(out[k].reshape(r0, n * r1).T)
            out[k] = q.T.reshape(q.shape[1], n, r1)
            rr, e = _scaling.normalize(rr)
            exps.append(e)
            r0, n, r1 = out[k - 1].shape
            out[k - 1] = matmul(out[k - 1].reshape(r0 * n, r1), rr.T).reshape(r0, n, -1)
        last = 0
    else:  # pragma: no cover - validated by the public functions
        raise ValueError(direction)
    out[last], e = _scaling.normalize(out[last])
    exps.append(e)
    exp2 = _scaling.host_exponent_sum(exps)
    wide = np.complex128 if out[last].dtype.kind == "c" else np.float64
    last_norm = frobenius_norm(out[last].astype(wide))
    return out, exp2, last_norm


def orthogonalize_cores(cores: Sequence[Array], direction: str = "left",
                        normalize: bool = False) -> tuple[list[Array], float]:
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


def round_cores(cores: Sequence[Array], eps: float = 0.0, max_rank: Sequence[int] | None = None,
                ref_log_norm: float | None = None, method: str = "auto",
                report: list[str] | None = None) -> list[Array]:
    """TT rounding: right-to-left QR sweep, then left-to-right truncation.

    The result satisfies ``||A - B|| <= eps * exp(ref_log_norm)`` with ``ref_log_norm`` the
    log of ``||A||`` by default (a padded TT-matrix passes the norm of its logical block, so
    its ranks never grow).  The sweep works on the tensor scaled by an exact power of two and
    puts the power back at the end, so nothing overflows or underflows for any magnitude or
    any ``d``.

    Left to right, a tall core matrix ``C = Q R`` is split by a QR and the singular values
    of the small ``R`` decide the rank (they are those of the bond's unfolding, since the
    cores on the left are left-orthogonal and those on the right right-orthogonal); ``Q`` and
    ``R`` are kept as they are where nothing is cut, and the SVD of ``R`` is formed only where
    the bond is truncated.

    ``method='auto'`` (NumPy arrays) first tries to *certify* that a bond has nothing to cut,
    without any factorization: the Gram matrix ``G`` of the bond's left unfolding is carried
    from core to core (two small GEMMs per core; the cores on the right are orthogonal, so
    the bond's squared singular values are the eigenvalues of ``G``), and a Cholesky
    factorization of ``G - tau I`` that succeeds proves that every singular value exceeds the
    cut, ``tau`` being the squared cut plus a bound on the round-off of ``G`` (see
    :func:`_keep_threshold`).  Such a bond keeps its core as it is (not made orthogonal); the
    first bond that cannot be certified makes the kept cores before it left-orthogonal and
    takes the QR path; after a failed certificate the next 1, 2, 4, ... bonds are not tried
    (reset by a success), so a train with cuts everywhere pays for about ``log2(d)`` Gram
    matrices.  Where bonds are certified the result is in mixed-canonical form around one
    core: the cores before it left-orthogonal, those after it right-orthogonal (the QR path
    makes that centre the last core).  A sum of random TTs, whose ranks are all needed, is
    then rounded with one QR sweep instead of two.  ``method='qr'`` never certifies, and ``method='svd'`` takes
    a full SVD of every core matrix (the textbook algorithm; same ranks).  When ``report`` is a
    list, one entry per bond is appended: ``'gram'`` (certified, nothing cut), ``'keep'``
    (nothing cut), ``'cut'`` or ``'svd'``.

    Complexity: ``O(d n r^3)`` time.
    """
    _check_method(method, ROUND_METHODS)
    d = len(cores)
    if d == 1:                  # nothing to truncate; a copy, never the caller's own array
        return [cores[0].copy()]
    out, exp2, first = orthogonal_sweep(cores, "right")
    if not math.isfinite(first):
        raise TTError("cannot round a TT whose cores contain NaN or Inf")
    if ref_log_norm is None:
        rel = first
    else:
        rel = math.exp(max(min(ref_log_norm - exp2 * _LN2, 700.0), -700.0))
    delta = eps / math.sqrt(d - 1) * rel
    certify = method == "auto" and get_xp(out[0]) is np and first > 0
    if certify:
        keep_tau = _keep_threshold(out, delta, first)
        # no eigenvalue of G exceeds tr(G) ~ ||A||^2: at a larger tau (eps >= 1, or an
        # infinite tau) nothing can be certified
        certify = math.isfinite(keep_tau) and keep_tau < first * first
    retry_at, backoff = 0, 1
    gram_left = None        # Gram matrix of the certified cores pending..k-1 (None: none)
    pending = 0             # the cores pending..k-1 are certified but not orthogonal
    for k in range(d - 1):
        r0, n, r1 = out[k].shape
        cap = None if max_rank is None else max_rank[k]
        if certify and k >= retry_at and r0 * n >= r1 and (cap is None or cap >= r1):
            gram_left = _carry_gram(gram_left, out[k])
            if _certified(gram_left, keep_tau):
                if report is not None:
                    report.append("gram")
                backoff = 1
                continue
            # no certificate: cuts come in runs, so the bonds after a failure are tried at
            # exponentially growing intervals (at most ~log2(d) wasted Gram matrices per run)
            retry_at, backoff = k + 1 + backoff, 2 * backoff
        for j in range(pending, k):       # the certified cores before k become orthogonal
            q, rr = qr(out[j].reshape(-1, out[j].shape[2]))
            out[j] = q.reshape(out[j].shape)
            out[j + 1] = _absorb_left(rr, out[j + 1])
        r0, n, r1 = out[k].shape
        mat = out[k].reshape(r0 * n, r1)
        if method != "svd" and r0 * n > r1:
            q, rr = qr(mat)
            # the singular values alone decide whether the bond is cut at all (a cap below
            # r1 always cuts): the singular vectors are formed only for a cut
            r = r1 if cap is None or cap >= r1 else None
            if r is not None:
                r = truncation_rank(to_host(svdvals(rr)), delta, cap, mat.shape, mat.dtype)
            if r == r1:
                out[k] = q.reshape(r0, n, r1)
                carry = rr
                tag = "keep"
            else:
                u, s, vh = svd(rr)
                r = truncation_rank(to_host(s), delta, cap, mat.shape, mat.dtype)
                out[k] = matmul(q, u[:, :r]).reshape(r0, n, r)
                carry = s[:r, None].astype(vh.dtype) * vh[:r]
                tag = "cut"
        else:
            u, s, vh = svd(mat)
            r = truncation_rank(to_host(s), delta, cap, mat.shape, mat.dtype)
            out[k] = u[:, :r].reshape(r0, n, r)
            carry = s[:r, None].astype(vh.dtype) * vh[:r]
            tag = "svd"
        if report is not None:
            report.append(tag)
        out[k + 1] = _absorb_left(carry, out[k + 1])
        gram_left, pending = None, k + 1
    # the cores before `pending` are left-orthogonal, those after it right-orthogonal (the
    # QR path leaves pending == d - 1): the power of two goes into the centre
    return _scaling.apply_pow2(out, exp2, pending)


def _keep_threshold(out, delta, first):
    """``tau`` such that ``lambda_min(G) > tau`` (``G`` the computed Gram matrix of a bond's
    left unfolding) proves that :func:`truncation_rank` keeps every singular value.

    A singular value is dropped when it is at most ``delta`` or below the round-off level
    ``8 max(shape) eps s_max`` (``s_max <= ||A||``); ``tau`` is the larger of the two,
    squared, plus ``8 eps ||A||^2 (sum_k r0_k (r0_k n_k + r1_k) + max_k r1_k^2)``, a
    worst-case (normwise, up to constants of order one) bound on how far the computed ``G``
    and the Cholesky factorization of ``G - tau I`` can be off.  The two GEMMs of core ``k``
    err by at most about ``(r0 n + r1) eps`` times ``||C_k||_F^2 ||G|| <= r0 ||A||^2`` (the
    cores after the centre are right-orthogonal, so ``||C_k||_F^2 = r0``), the cores on the
    right depart from orthogonality by the same order, and a Cholesky factorization that
    succeeds is exact for ``G - tau I`` perturbed by ``O(r1^2 eps ||G||)`` (Higham,
    *Accuracy and Stability of Numerical Algorithms*, Thm. 10.5).  Typical errors are far
    below this (a review measured the Gram errors some 400 times under a margin without the
    ``r0`` factor); the margin only decides which bonds can be certified, never a rank.
    """
    dtype = out[0].dtype
    unit = float(np.finfo(dtype).eps)
    dims = sum(c.shape[0] * (c.shape[0] * c.shape[1] + c.shape[2]) for c in out)
    dims += max(c.shape[2] for c in out) ** 2
    widest = max(max(c.shape[0] * c.shape[1], c.shape[2]) for c in out)
    cut = max(delta, 8.0 * widest * unit * first)
    return cut * cut + 8.0 * unit * dims * first * first


def _carry_gram(g, core):
    """The Gram matrix of the left unfolding after one more core: ``C^H C`` for the first,
    else ``sum_i C_i^H g C_i`` (two GEMMs; the core matrices ``C_i`` are ``(r0, r1)``)."""
    r0, n, r1 = core.shape
    tall = core.reshape(r0 * n, r1)
    ct = tall.conj().T
    if g is None:
        return matmul(ct, tall)
    return matmul(ct, matmul(g, core.reshape(r0, n * r1)).reshape(r0 * n, r1))


def _certified(g, tau):
    """Whether ``G - tau I`` is certified positive definite (its Cholesky factorization
    succeeds), so that every eigenvalue of ``G`` exceeds ``tau``; ``G`` is left untouched."""
    a = g.copy()
    a.flat[::g.shape[0] + 1] -= tau           # the diagonal only: no tau * I is formed
    return bool(is_positive_definite(a))


def _absorb_left(m, core):
    """``m`` (``r' x r``) times the core ``(r, n, r1)`` along its first index."""
    r, n, r1 = core.shape
    return matmul(m, core.reshape(r, n * r1)).reshape(m.shape[0], n, r1)

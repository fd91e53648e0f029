"""Approximate products in TT format by AMEn-mv, without forming the rank product.

``A @ x`` of a TT-matrix of ranks ``R`` and a TT of ranks ``r`` has ranks ``R r`` before
rounding, and ``(A @ x).round(eps)`` pays ``O(d n (R r)^3)`` to bring them down.  AMEn-mv
(Dolgov and Savostyanov, "Alternating minimal energy methods for linear systems in higher
dimensions", SIAM J. Sci. Comput. 36 (2014); ttpy's ``amen_mv``) computes the rounded product
directly: it keeps an approximation ``y`` with one core at a time as the orthogonality
centre, and at core ``k`` the best core for the fixed orthonormal bases on either side is the
*projection*

    y_k = L_k  A_k  x_k  R_{k+1},

with ``L_k`` and ``R_{k+1}`` the interfaces of ``<y | A | x>`` (no linear system to solve).
The core is truncated by an SVD to ``eps / sqrt(d - 1)`` of its norm and moved on.  The
bases grow by *enrichment*: a second TT ``z`` of small rank ``kickrank`` approximates the
residual ``A x - y`` by the same projections, and its local directions are appended to the
basis of ``y`` before orthogonalizing.  Every operation is a contraction of one core of
``A``, ``x``, ``y`` and ``z`` with the interfaces, ``O(n r_y r_x R (r_x + m r_y))`` per core;
the ``R r`` rank product is never formed.

The sweeps stop when the largest relative change of a core in one pass over the cores is
below ``eps``; one last pass without enrichment then truncates the ranks the enrichment added.
The interfaces come from :class:`tensortrain._sweep.Environments` (scaled by exact powers of
two), the cores of ``A`` and ``x`` are scaled by powers of two as well, and the result's
power of two is put back at the end, so the product of TTs with thousands of cores, or of
magnitudes near the limits of the dtype, neither overflows nor underflows.

``method='auto'`` uses the exact path ``(A @ x).round(eps, max_rank)`` when its work is small,
``max_k m_k n_k (R_k r_k)^3 <= EXACT_MAX_WORK`` (the cost of the QR of the largest core of
the unrounded product; about ``R r <= 100`` for QTT vectors, ``R r <= 64`` for QTT matrices),
or when ``d = 1``, and AMEn-mv otherwise: there a few sweeps of small steps cost more than one
rounding (``benchmarks/bench_products.py`` measures the crossover).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import _cores, _scaling
from .._backend import get_xp, qr, svd, to_host
from .._sweep import Environments, run_sweeps
from .._validation import check_eps, check_finite_cores, check_int, check_max_rank, make_rng
from ..decompositions import orthogonal_sweep, truncation_rank
from ..errors import ShapeError, TTError
from ..matrix import TTMatrix, _mask_axis
from ..tensor import TTTensor

__all__ = ["EXACT_MAX_WORK", "ProductInfo", "hadamard", "matmul", "matvec"]

#: ``method='auto'`` takes the exact path (form the product, then round) when
#: ``max_k m_k n_k (R_k r_k)^3`` is at most this (``R_k`` the larger rank of core ``k`` of the
#: operator, ``r_k`` of the vector; ``m_k n_k`` its row and column modes), AMEn-mv above it:
#: the measured crossover of ``benchmarks/bench_products.py``, rank products of about 100 for
#: QTT (``m = n = 2``).
EXACT_MAX_WORK = 1 << 22

#: Stopping tolerances below this many unit round-offs of the dtype are raised to it: the core
#: changes of converged sweeps are round-off noise of about that size.
_TOL_FLOOR_ULPS = 1000.0

_METHODS = ("auto", "amen", "exact")


@dataclass(frozen=True)
class ProductInfo:
    """What :func:`matvec`, :func:`matmul` or :func:`hadamard` did.

    Attributes
    ----------
    method : str
        ``'amen'`` or ``'exact'`` (the path taken).
    sweeps : int
        Passes over the cores (0 for the exact path), the final truncating pass included.
    converged : bool
        Whether the largest relative core change met ``eps`` before the cap ``nswp``
        (always true for the exact path).
    changes : tuple of float
        The largest relative change of a core in each pass (the stopping quantity).
    ranks : tuple of int
        TT-ranks of the result.
    rank_product : int
        ``max_k R_k r_k``, the largest rank of the unrounded exact product.
    """

    method: str
    sweeps: int
    converged: bool
    changes: tuple
    ranks: tuple
    rank_product: int


# ---- validation -----------------------------------------------------------------------------

def _check_finite(cores, what, where):
    check_finite_cores(cores, f"{where}: {what}")


def _check_int(value, name, minimum, where):
    return check_int(value, f"{where}: {name}", minimum)


def _check_method(method, where):
    if method not in _METHODS:
        raise TTError(f"{where}: method must be one of {_METHODS}, got {method!r}")
    return method


def _host_rng(rng):
    """The generator of the random start: ``rng`` as :func:`~tensortrain._validation.make_rng`
    takes it, with ``None`` meaning seed 0 (a solve is reproducible unless asked otherwise)."""
    return make_rng(0 if rng is None else rng)


def _options(eps, max_rank, nswp, kickrank, method, d, where):
    eps = check_eps(eps, f"{where}: eps")
    caps = check_max_rank(max_rank, d)
    nswp = _check_int(nswp, "nswp", 1, where)
    kickrank = _check_int(kickrank, "kickrank", 0, where)
    method = _check_method(method, where)
    return eps, caps, nswp, kickrank, method


# ---- the local kernels ----------------------------------------------------------------------

def _project(left, a2, x, right):
    """``y[p, i, q] = sum L[p, c, s] A[c, i, j, c'] x[s, j, t] R[q, c', t]``.

    ``a2`` is the operator core as the matrix ``A[(c, j), (i, c')]`` (:func:`_op_matrix`);
    three GEMMs on reshaped views, ``O(p t (c s j + c j i c') + p i c' t q)``.
    """
    p, c, s = left.shape
    _, j, t = x.shape
    i = a2.shape[1] // right.shape[1]
    c2 = right.shape[1]
    q = right.shape[0]
    t1 = (left.reshape(p * c, s) @ x.reshape(s, j * t)).reshape(p, c, j, t)
    t1 = t1.transpose(0, 3, 1, 2).reshape(p * t, c * j)
    t2 = (t1 @ a2).reshape(p, t, i, c2).transpose(0, 2, 3, 1).reshape(p * i, c2 * t)
    return (t2 @ right.reshape(q, c2 * t).T).reshape(p, i, q)


def _op_matrix(a):
    """The operator core ``(c, i, j, c')`` as the matrix ``[(c, j), (i, c')]`` (a copy)."""
    c, i, j, c2 = a.shape
    return a.transpose(0, 2, 1, 3).reshape(c * j, i * c2)


def _align(t1, e1, t2, e2):
    """``t1 2**e1 - t2 2**e2`` up to a positive factor (only its direction is used)."""
    xp = get_xp(t1)
    e = max(e1, e2)
    lo = -1100
    return (_scaling.ldexp(t1, max(e1 - e, lo), xp) - _scaling.ldexp(t2, max(e2 - e, lo), xp))


def _rel_change(new, e_new, old, e_old):
    """``||new 2**e_new - old 2**e_old|| / ||new 2**e_new||`` on the host (1 without old)."""
    if old is None or old.shape != new.shape:
        return 1.0
    xp = get_xp(new)
    diff = _align(new, 0, old, e_old - e_new)
    num = float(to_host(xp.linalg.norm(diff.reshape(-1))))
    den = float(to_host(xp.linalg.norm(new.reshape(-1))))
    if not den > 0:
        return 0.0 if not num > 0 else 1.0
    return num / den


def _truncate(mat, eps_bond, cap):
    """SVD truncation of a core matrix to ``||s[r:]|| <= eps_bond ||s||`` and ``r <= cap``;
    also says whether the cap was what limited the rank."""
    u, s, vh = svd(mat)
    s_host = to_host(s)
    total = float(np.linalg.norm(s_host))
    r = truncation_rank(s_host, eps_bond * total, None, mat.shape, mat.dtype)
    capped = cap is not None and r > cap
    r = min(r, cap) if capped else r
    return u[:, :r], s[:r], vh[:r], capped


def _normalized(cores):
    """Cores scaled to ``max |core|`` in ``[0.5, 1)`` and the host sum of the exponents."""
    out, exps = [], []
    for c in cores:
        b, e = _scaling.normalize(c)
        out.append(b)
        exps.append(e)
    return out, _scaling.host_exponent_sum(exps)


def _random_cores(modes, ranks, rng, dtype, xp):
    out = []
    for k, n in enumerate(modes):
        shape = (ranks[k], n, ranks[k + 1])
        a = rng.standard_normal(shape)
        if np.dtype(dtype).kind == "c":
            a = a + 1j * rng.standard_normal(shape)
        out.append(xp.asarray(a.astype(dtype)))
    return out


def _capped_ranks(modes, r):
    d = len(modes)
    ranks = [1]
    for k in range(1, d):
        ranks.append(max(1, min(r, math.prod(modes[:k]), math.prod(modes[k:]))))
    return [*ranks, 1]


# ---- AMEn-mv ----------------------------------------------------------------------------------

class _AmenMV:
    """State of one AMEn-mv run on lists of cores (``A`` 4-D, ``x``, ``y``, ``z`` 3-D)."""

    def __init__(self, a_cores, x_cores, y_cores, z_cores, eps, caps, kickrank):
        self.d = len(x_cores)
        self.a, ea = _normalized(a_cores)
        self.a2 = [_op_matrix(c) for c in self.a]
        self.x, ex = _normalized(x_cores)
        self.scale_exp = ea + ex
        self.eps = eps
        self.caps = caps
        self.kick = kickrank
        self.eps_bond = eps / math.sqrt(self.d - 1)
        # y and z right-orthogonal (cores 1..d-1); the first core is the centre
        self.y, _, _ = orthogonal_sweep(y_cores, "right")
        self.z = orthogonal_sweep(z_cores, "right")[0] if kickrank else None
        self.center, self.center_exp, self.center_pos = self.y[0], 0, 0
        self.yax = Environments(self.y, self.x, self.a)
        self.yax.build_right(1)
        if self.z is not None:
            self.zax = Environments(self.z, self.x, self.a)
            self.zy = Environments(self.z, self.y)
            self.zax.build_right(1)
            self.zy.build_right(1)
        self.carry = None         # the old centre in the new basis, for the change measure
        self.capped = False       # whether max_rank limited a bond in the last pass

    # the local projection of A x on the bases (left of env1, right of env2)
    def _proj(self, k, env_left, env_right):
        t = _project(env_left.left(k), self.a2[k], self.x[k], env_right.right(k + 1))
        return t, env_left.left_exp(k) + env_right.right_exp(k + 1)

    def half_sweep(self, direction, enrich=True):
        d = self.d
        enrich = enrich and self.z is not None
        order = range(d) if direction == "right" else range(d - 1, -1, -1)
        worst = 0.0
        self.capped = False
        old = self.center
        old_exp = self.center_exp
        for k in order:
            ycore, e_y = self._proj(k, self.yax, self.yax)
            # the old core k, expressed in the current bases (the previous step's carry)
            if k == order[0]:
                prev = old
            elif direction == "right":
                c, ec = self.carry
                r0, n, r1 = self.y[k].shape
                prev = (c @ self.y[k].reshape(r0, n * r1)).reshape(c.shape[0], n, r1)
                old_exp = ec
            else:
                c, ec = self.carry
                r0, n, r1 = self.y[k].shape
                prev = (self.y[k].reshape(r0 * n, r1) @ c).reshape(r0, n, c.shape[1])
                old_exp = ec
            if k == order[-1]:
                worst = max(worst, _rel_change(ycore, e_y, prev, old_exp))
                self.y[k] = ycore
                self.center, self.center_exp, self.center_pos = ycore, e_y, k
                break
            step = self._step_right if direction == "right" else self._step_left
            approx = step(k, ycore, e_y, enrich)
            # the change of the core as kept (after truncation), so that a binding max_rank
            # does not count as a change in every pass
            worst = max(worst, _rel_change(approx, e_y, prev, old_exp))
        return worst

    def _step_right(self, k, ycore, e_y, enrich):
        xp = get_xp(ycore)
        r0, m, r1 = ycore.shape
        cap = None if self.caps is None else self.caps[k]
        u, s, vh, capped = _truncate(ycore.reshape(r0 * m, r1), self.eps_bond, cap)
        self.capped |= capped
        carry = s[:, None].astype(vh.dtype) * vh                       # (r, r1)
        approx = u @ carry                                              # truncated core
        if enrich:
            t1, e1 = self._proj(k, self.yax, self.zax)                 # (r0, m, rz1)
            t2 = xp.tensordot(approx.reshape(r0, m, r1), self.zy.right(k + 1),
                              axes=(2, 1))
            crd = _align(t1, e1, t2, e_y + self.zy.right_exp(k + 1))
            q, _ = qr(xp.concatenate([u, crd.reshape(r0 * m, -1)], axis=1))
            carry = (q.conj().T @ u) @ carry
            u = q
            # z: the residual projected on z's own left basis
            z1, ez1 = self._proj(k, self.zax, self.zax)
            lz = self.zy.left(k)                                        # (rz0, r0)
            z2 = xp.tensordot(lz, approx.reshape(r0, m, r1), axes=(1, 0))
            z2 = xp.tensordot(z2, self.zy.right(k + 1), axes=(2, 1))
            zc = _align(z1, ez1, z2, e_y + self.zy.left_exp(k) + self.zy.right_exp(k + 1))
            rz0 = zc.shape[0]
            qz, _ = qr(zc.reshape(rz0 * m, -1))
            self.z[k] = qz.reshape(rz0, m, qz.shape[1])
        self.y[k] = u.reshape(r0, m, u.shape[1])
        self.carry = (carry, e_y)
        self.yax.update_left(k)
        if enrich:
            self.zax.update_left(k)
            self.zy.update_left(k)
        return approx.reshape(r0, m, r1)

    def _step_left(self, k, ycore, e_y, enrich):
        xp = get_xp(ycore)
        r0, m, r1 = ycore.shape
        cap = None if self.caps is None else self.caps[k - 1]
        u, s, vh, capped = _truncate(ycore.reshape(r0, m * r1), self.eps_bond, cap)
        self.capped |= capped
        carry = u * s[None, :].astype(u.dtype)                         # (r0, r)
        approx = carry @ vh
        if enrich:
            t1, e1 = self._proj(k, self.zax, self.yax)                 # (rz0, m, r1)
            t2 = xp.tensordot(self.zy.left(k), approx.reshape(r0, m, r1), axes=(1, 0))
            crd = _align(t1, e1, t2, e_y + self.zy.left_exp(k))
            rows = xp.concatenate([vh, crd.reshape(-1, m * r1)], axis=0)
            q, _ = qr(rows.conj().T)                                    # (m r1, r')
            vnew = q.conj().T                                           # (r', m r1)
            carry = carry @ (vh @ q)                                    # (r0, r')
            vh = vnew
            z1, ez1 = self._proj(k, self.zax, self.zax)
            z2 = xp.tensordot(self.zy.left(k), approx.reshape(r0, m, r1), axes=(1, 0))
            z2 = xp.tensordot(z2, self.zy.right(k + 1), axes=(2, 1))
            zc = _align(z1, ez1, z2, e_y + self.zy.left_exp(k) + self.zy.right_exp(k + 1))
            rz1 = zc.shape[2]
            qz, _ = qr(zc.reshape(-1, m * rz1).conj().T)
            self.z[k] = qz.conj().T.reshape(qz.shape[1], m, rz1)
        self.y[k] = vh.reshape(vh.shape[0], m, r1)
        self.carry = (carry, e_y)
        self.yax.update_right(k)
        if enrich:
            self.zax.update_right(k)
            self.zy.update_right(k)
        return approx.reshape(r0, m, r1)

    def result(self):
        k = self.center_pos
        cores = list(self.y)
        cores[k] = self.center
        return _scaling.apply_pow2(cores, self.center_exp + self.scale_exp, k)


def _amen_mv(a_cores, x_cores, out_modes, *, eps, caps, nswp, kickrank, y0, rng, where):
    """Cores of the AMEn-mv approximation of ``A x``; returns ``(cores, sweeps, changes,
    converged)``."""
    xp = get_xp(x_cores[0])
    dtype = np.result_type(a_cores[0].dtype, x_cores[0].dtype)
    rng = _host_rng(rng)
    if y0 is None:
        if tuple(out_modes) == tuple(c.shape[1] for c in x_cores):
            y_init = [c.astype(dtype, copy=True) for c in x_cores]
        else:
            r = max(c.shape[-1] for c in x_cores)
            y_init = _random_cores(out_modes, _capped_ranks(out_modes, r), rng, dtype, xp)
    else:
        y_init = [c.astype(dtype, copy=True) for c in y0]
    z_init = (_random_cores(out_modes, _capped_ranks(out_modes, kickrank), rng, dtype, xp)
              if kickrank else [])
    a_cores = [c.astype(dtype, copy=False) for c in a_cores]
    x_cores = [c.astype(dtype, copy=False) for c in x_cores]
    state = _AmenMV(a_cores, x_cores, y_init, z_init, eps, caps, kickrank)
    last = {"direction": "right"}

    def half(direction, i):
        last["direction"] = direction
        change = state.half_sweep(direction, enrich=True)
        prev = last.get("change")
        last["change"] = change
        if state.capped and prev is not None and change > 0.5 * prev and i >= 3:
            # max_rank binds and the change no longer falls: the capped approximation the
            # sweeps can reach; stop without a convergence warning (converged stays False)
            last["stalled"] = change
            return None
        return change

    tol = max(eps, _TOL_FLOOR_ULPS * float(np.finfo(dtype).eps))
    res = run_sweeps(half, max_half_sweeps=nswp, tol=tol, name=where,
                     what="largest relative core change", min_half_sweeps=2)
    changes = list(res.history)
    if "stalled" in last:
        changes.append(last["stalled"])
    sweeps = res.sweeps
    # one more pass without enrichment: truncates the ranks the enrichment added
    final_dir = "left" if last["direction"] == "right" else "right"
    if kickrank and state.d > 1:
        changes.append(state.half_sweep(final_dir, enrich=False))
        sweeps += 1
    return state.result(), sweeps, tuple(changes), res.converged


# ---- public functions ---------------------------------------------------------------------------

def _rank_product(a_ranks, x_ranks):
    return max(p * q for p, q in zip(a_ranks, x_ranks, strict=True))


def _exact_work(a_ranks, x_ranks, m_modes, n_modes):
    """``max_k m_k n_k (R_k r_k)^3`` with ``R_k``, ``r_k`` the larger rank of core ``k``."""
    work = 0
    for k, (m, n) in enumerate(zip(m_modes, n_modes, strict=True)):
        p = max(a_ranks[k], a_ranks[k + 1]) * max(x_ranks[k], x_ranks[k + 1])
        work = max(work, m * n * p ** 3)
    return work


def _finish(cores, kind, shape, info, return_info):
    out = TTTensor(cores) if kind is None else TTMatrix(cores, shape)
    if return_info:
        info = ProductInfo(info[0], info[1], info[2], info[3], out.ranks, info[4])
        return out, info
    return out


def matvec(A, x, eps=1e-8, max_rank=None, *, nswp=20, x0=None, kickrank=4, method="auto",
           rng=None, return_info=False):
    """The product ``A @ x`` of a TTMatrix and a TTTensor, rounded to ``eps``, by AMEn-mv.

    Parameters
    ----------
    A : TTMatrix
        Logical shape ``(M, N)``; a padded ``A`` is read only on its logical block, as in
        ``A @ x``.
    x : TTTensor
        Of shape ``A.col_modes``.
    eps : float
        Relative accuracy: the result ``y`` aims at ``||y - A x||_F <= eps ||A x||_F``, the
        bound of ``(A @ x).round(eps)``.  Each bond is truncated to ``eps / sqrt(d - 1)`` of
        the norm, and the sweeps stop when no core changes by more than ``eps`` (relative;
        at least 1000 unit round-offs of the dtype, the noise level of converged sweeps).
    max_rank : int or sequence of int, optional
        Cap on the ranks of the result (the stricter of ``eps`` and ``max_rank`` wins).
    nswp : int
        Cap on the number of passes over the cores (then a
        :class:`~tensortrain.errors.ConvergenceWarning` says what was reached).
    x0 : TTTensor, optional
        Initial guess of shape ``A.row_modes``; default ``x`` itself when ``A`` is square in
        its modes, else a random TT of ``x``'s largest rank (from ``rng``).
    kickrank : int
        Rank of the residual approximation ``z`` that enriches the bases (0: no enrichment,
        the ranks then never exceed those of the initial guess).
    method : {'auto', 'amen', 'exact'}
        ``'exact'``: ``(A @ x).round(eps, max_rank)``; ``'amen'``: AMEn-mv (a TT of one core
        always takes the exact path: its product is its own projection); ``'auto'``: exact
        when ``max_k m_k n_k (R_k r_k)^3 <= EXACT_MAX_WORK`` (about ``R r <= 100`` for QTT)
        or ``d == 1``, AMEn-mv otherwise.
    rng : None, int or numpy.random.Generator
        Seed of the random initial ``z`` (and ``y`` when needed); results are reproducible.
    return_info : bool
        Also return a :class:`ProductInfo`.

    Returns
    -------
    TTTensor of shape ``A.row_modes`` (and a :class:`ProductInfo` with ``return_info``).

    Raises
    ------
    TypeError
        ``A`` not a TTMatrix or ``x`` not a TTTensor.
    ShapeError
        ``x.shape != A.col_modes``, or ``x0`` of the wrong shape.
    TTError
        NaN or Inf in ``A``, ``x`` or ``x0``; bad ``eps``, ``nswp``, ``kickrank``, ``method``.

    Notes
    -----
    Complexity: per pass, ``O(d n R r_y r_x (r_x + m r_y))`` for ``A`` of rank ``R``, ``x``
    of rank ``r_x`` and a result of rank ``r_y`` (plus the same with ``r_y`` replaced by
    ``kickrank`` for ``z``), against ``O(d n m (R r_x)^3)`` for rounding the exact product.
    Usually 3 to 6 passes.

    Examples
    --------
    >>> import numpy as np, tensortrain as tt
    >>> from tensortrain import qtt
    >>> from tensortrain.solvers.products import matvec
    >>> A = qtt.laplacian([6, 6])
    >>> x = qtt.sin(12, 3.0) + qtt.exp(12, -1.0)
    >>> y = matvec(A, x, eps=1e-10, method="amen")
    >>> bool((y - A @ x).norm() <= 1e-10 * (A @ x).norm())
    True
    """
    where = "matvec"
    if not isinstance(A, TTMatrix):
        raise TypeError(f"{where}: A must be a TTMatrix, got {type(A).__name__}")
    if not isinstance(x, TTTensor):
        raise TypeError(f"{where}: x must be a TTTensor, got {type(x).__name__}")
    if x.shape != A.col_modes:
        raise ShapeError(f"{where}: x must have shape A.col_modes {A.col_modes}, got "
                         f"{x.shape}")
    get_xp(A.cores[0], x.cores[0])
    eps, caps, nswp, kickrank, method = _options(eps, max_rank, nswp, kickrank, method, A.d,
                                                 where)
    _check_finite(A.cores, "A", where)
    _check_finite(x.cores, "x", where)
    if x0 is not None:
        if not isinstance(x0, TTTensor):
            raise TypeError(f"{where}: x0 must be a TTTensor, got {type(x0).__name__}")
        if x0.shape != A.row_modes:
            raise ShapeError(f"{where}: x0 must have shape A.row_modes {A.row_modes}, got "
                             f"{x0.shape}")
        get_xp(x0.cores[0], x.cores[0])
        _check_finite(x0.cores, "x0", where)
    a_cores = _logical_cores(A)
    rp = _rank_product(A.ranks, x.ranks)
    if method == "auto":
        work = _exact_work(A.ranks, x.ranks, A.row_modes, A.col_modes)
        method = "exact" if (work <= EXACT_MAX_WORK or A.d == 1) else "amen"
    if method == "exact" or A.d == 1:
        y = (A @ x).round(eps, caps)
        return _finish(y.cores, None, None, ("exact", 0, True, (), rp), return_info)
    cores, sweeps, changes, conv = _amen_mv(
        a_cores, list(x.cores), A.row_modes, eps=eps, caps=caps, nswp=nswp,
        kickrank=kickrank, y0=None if x0 is None else list(x0.cores), rng=rng, where=where)
    return _finish(cores, None, None, ("amen", sweeps, conv, changes, rp), return_info)


def _logical_cores(A):
    """Cores of ``A`` with its padded rows and columns zeroed (``A`` itself when unpadded)."""
    if not A.is_padded:
        return list(A.cores)
    xp = A.xp
    cmask = _cores.lt_indicator(A.col_modes, A.shape[1], xp, A.dtype)
    rmask = _cores.lt_indicator(A.row_modes, A.shape[0], xp, A.dtype)
    return [_mask_axis(_mask_axis(c, cm, 2), rm, 1)
            for c, cm, rm in zip(A.cores, cmask, rmask, strict=True)]


def matmul(A, B, eps=1e-8, max_rank=None, *, nswp=20, kickrank=4, method="auto", rng=None,
           return_info=False):
    """The product ``A @ B`` of two TTMatrix objects, rounded to ``eps``, by AMEn-mv.

    ``B``'s column index rides along as part of a vector's modes: ``B`` is read as a TTTensor
    with modes ``n_k l_k`` (row mode ``n_k``, column mode ``l_k``) and ``A`` acts on it as
    ``A_k x I_{l_k}`` core by core, so :func:`matvec`'s sweeps apply unchanged.  Options as
    in :func:`matvec`; the result has row modes ``A.row_modes``, column modes
    ``B.col_modes`` and the logical shape ``(A.shape[0], B.shape[1])``.

    Raises ``TypeError`` for operands that are not TTMatrix objects, ``ShapeError`` when
    ``B.row_modes != A.col_modes`` or ``B.shape[0] != A.shape[1]``, ``TTError`` for NaN or Inf.

    Complexity: that of :func:`matvec` with modes ``n_k l_k`` (a factor ``l_k`` more work
    per core than a vector).

    Examples
    --------
    >>> import numpy as np, tensortrain as tt
    >>> from tensortrain import qtt
    >>> from tensortrain.solvers.products import matmul
    >>> A = qtt.laplacian_1d(8)
    >>> C = matmul(A, A, eps=1e-12, method="amen")
    >>> bool(np.allclose(C.full(), A.full() @ A.full()))
    True
    """
    where = "matmul"
    if not isinstance(A, TTMatrix) or not isinstance(B, TTMatrix):
        raise TypeError(f"{where}: A and B must be TTMatrix objects, got "
                        f"{type(A).__name__} and {type(B).__name__}")
    if B.row_modes != A.col_modes or B.shape[0] != A.shape[1]:
        raise ShapeError(f"{where}: B's rows must match A's columns: A has {A.shape[1]} "
                         f"columns with modes {A.col_modes}, B has {B.shape[0]} rows with "
                         f"modes {B.row_modes}")
    xp = get_xp(A.cores[0], B.cores[0])
    eps, caps, nswp, kickrank, method = _options(eps, max_rank, nswp, kickrank, method, A.d,
                                                 where)
    _check_finite(A.cores, "A", where)
    _check_finite(B.cores, "B", where)
    shape = (A.shape[0], B.shape[1])
    rp = _rank_product(A.ranks, B.ranks)
    if method == "auto":
        work = _exact_work(A.ranks, B.ranks,
                           [m * cm for m, cm in zip(A.row_modes, B.col_modes, strict=True)],
                           [n * cm for n, cm in zip(A.col_modes, B.col_modes, strict=True)])
        method = "exact" if (work <= EXACT_MAX_WORK or A.d == 1) else "amen"
    if method == "exact" or A.d == 1:
        y = (A @ B).round(eps, caps)
        return _finish(y.cores, TTMatrix, shape, ("exact", 0, True, (), rp), return_info)
    dtype = np.result_type(A.dtype, B.dtype)
    a_cores = list(A.cores)
    if A.shape[1] != A.padded_shape[1]:
        mask = _cores.lt_indicator(A.col_modes, A.shape[1], xp, A.dtype)
        a_cores = [_mask_axis(c, mk, 2) for c, mk in zip(a_cores, mask, strict=True)]
    ops = []
    for a, cm in zip(a_cores, B.col_modes, strict=True):
        ra0, m, n, ra1 = a.shape
        eye = xp.eye(cm, dtype=dtype)
        op = a.astype(dtype)[:, :, None, :, None, :] * eye[None, None, :, None, :, None]
        ops.append(op.reshape(ra0, m * cm, n * cm, ra1))
    x_cores = [c.reshape(c.shape[0], -1, c.shape[3]) for c in B.cores]
    out_modes = tuple(m * cm for m, cm in zip(A.row_modes, B.col_modes, strict=True))
    cores, sweeps, changes, conv = _amen_mv(
        ops, x_cores, out_modes, eps=eps, caps=caps, nswp=nswp, kickrank=kickrank, y0=None,
        rng=rng, where=where)
    cores4 = [c.reshape(c.shape[0], m, cm, c.shape[2])
              for c, m, cm in zip(cores, A.row_modes, B.col_modes, strict=True)]
    return _finish(cores4, TTMatrix, shape, ("amen", sweeps, conv, changes, rp), return_info)


def hadamard(a, b, eps=1e-8, max_rank=None, *, nswp=20, kickrank=4, method="auto", rng=None,
             return_info=False):
    """The elementwise product ``a * b`` of two TTs, rounded to ``eps``, by AMEn-mv.

    ``a * b = diag(a) @ b``: the sweeps of :func:`matvec` with the diagonal operator of
    ``a`` (never formed densely: its cores are ``a``'s cores times the identity of each mode).
    ``a`` and ``b`` are two TTTensors of the same shape or two TTMatrix objects of the same
    modes and shape (then the result is a TTMatrix).  Options as in :func:`matvec`.

    Raises ``TypeError`` for other operands or mixed kinds, ``ShapeError`` for different
    shapes or modes, ``TTError`` for NaN or Inf.

    Complexity: that of :func:`matvec` with ``m = n``: ``O(d n^2 r_a r_b r_y (r_b + r_y))``
    per pass, against ``O(d n (r_a r_b)^3)`` for rounding ``a * b``.

    Examples
    --------
    >>> import numpy as np, tensortrain as tt
    >>> from tensortrain import qtt
    >>> from tensortrain.solvers.products import hadamard
    >>> s = qtt.sin(10, 2.0)
    >>> c = hadamard(s, s, eps=1e-12, method="amen")
    >>> bool(np.allclose(c.full(), s.full() ** 2))
    True
    """
    where = "hadamard"
    if isinstance(a, TTTensor) and isinstance(b, TTTensor):
        if a.shape != b.shape:
            raise ShapeError(f"{where}: a and b must have the same shape, got {a.shape} and "
                             f"{b.shape}")
        kind, shape = None, None
        a3, b3 = list(a.cores), list(b.cores)
    elif isinstance(a, TTMatrix) and isinstance(b, TTMatrix):
        if (a.row_modes, a.col_modes, a.shape) != (b.row_modes, b.col_modes, b.shape):
            raise ShapeError(f"{where}: a and b must have the same modes and shape, got "
                             f"{a.row_modes}x{a.col_modes} {a.shape} and "
                             f"{b.row_modes}x{b.col_modes} {b.shape}")
        kind, shape = TTMatrix, a.shape
        a3, b3 = list(a._cores3()), list(b._cores3())
    else:
        raise TypeError(f"{where}: a and b must be two TTTensors or two TTMatrix objects, got "
                        f"{type(a).__name__} and {type(b).__name__}")
    xp = get_xp(a.cores[0], b.cores[0])
    eps, caps, nswp, kickrank, method = _options(eps, max_rank, nswp, kickrank, method, a.d,
                                                 where)
    _check_finite(a.cores, "a", where)
    _check_finite(b.cores, "b", where)
    rp = _rank_product(a.ranks, b.ranks)
    if method == "auto":
        modes = [c.shape[1] for c in b3]
        work = _exact_work(a.ranks, b.ranks, modes, modes)
        method = "exact" if (work <= EXACT_MAX_WORK or a.d == 1) else "amen"
    if method == "exact" or a.d == 1:
        y = (a * b).round(eps, caps)
        if kind is None:
            return _finish(y.cores, None, None, ("exact", 0, True, (), rp), return_info)
        return _finish(y.cores, TTMatrix, shape, ("exact", 0, True, (), rp), return_info)
    dtype = np.result_type(a.dtype, b.dtype)
    ops = []
    for c in a3:
        n = c.shape[1]
        eye = xp.eye(n, dtype=dtype)
        ops.append(c.astype(dtype)[:, :, None, :] * eye[None, :, :, None])
    modes = tuple(c.shape[1] for c in b3)
    cores, sweeps, changes, conv = _amen_mv(
        ops, b3, modes, eps=eps, caps=caps, nswp=nswp, kickrank=kickrank, y0=None, rng=rng,
        where=where)
    info = ("amen", sweeps, conv, changes, rp)
    if kind is None:
        return _finish(cores, None, None, info, return_info)
    cores4 = [c.reshape(c.shape[0], m, n, c.shape[2])
              for c, m, n in zip(cores, a.row_modes, a.col_modes, strict=True)]
    return _finish(cores4, TTMatrix, shape, info, return_info)

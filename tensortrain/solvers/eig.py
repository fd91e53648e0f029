"""``eigsh``: extreme eigenpairs of a Hermitian TT-matrix by block DMRG.

The ``k`` eigenvectors share every core but one (the *block TT* format): the core at the
sweep position carries an extra index of size ``k``.  At each core the projected Hermitian
problem ``(X_k^H A X_k) Y = Y diag(l)`` is solved for ``k`` eigenpairs (densely for small
cores, by block LOBPCG warm-started from the current core otherwise), the block index moves
on with the SVD of the core, and the bond is enriched with a few directions of ``A x``
projected out of the kept basis (the subspace expansion of Hubig et al., Phys. Rev. B 91,
2015), so ranks grow where the eigenvectors need them.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from .. import _scaling
from .._backend import get_xp, to_host
from .._sweep import Environments, run_sweeps
from .._validation import check_eps, check_max_rank
from ..decompositions import orthogonal_sweep, truncation_rank
from ..errors import ConvergenceWarning, TTError
from ..tensor import TTTensor
from . import _local
from ._local import qr, svd
from .amen import check_count, check_operator, check_vector, host_rng, random_cores

__all__ = ["EigInfo", "eigsh"]

#: local problems of at most this many unknowns are solved by a dense eigensolver
DENSE_MAX = 1200

WHICH = ("SA", "LA")

#: eigenvalue changes below ``NOISE * machine epsilon * ||B||_2`` (the round-off of a dense
#: local eigensolver) are not counted by the stopping rule
NOISE = 10.0


@dataclass(frozen=True)
class EigInfo:
    """What :func:`eigsh` did.

    Attributes
    ----------
    sweeps : int
        Sweeps run (one pass over the cores each, alternating direction).
    converged : bool
        Whether the stopping quantity met ``tol`` before the cap ``nswp``.
    changes : tuple of float
        The stopping quantity of each sweep: the largest relative change of an eigenvalue
        at any core, ``max(|l_new - l_old| - 10 u ||B_k||, 0) / |l_new|``, with ``l_old``
        the Ritz values of the core before its update, ``u`` the unit round-off and
        ``||B_k||`` the norm of the local operator where a dense local solve knows it (0
        otherwise): changes at the round-off level of the local eigensolver do not count.
    eigenvalues : tuple of tuple
        The eigenvalues after each sweep.
    hermitian_defect : float
        ``||A - A^H||_F / ||A||_F`` as measured by the check.
    ranks : tuple of int
        TT-ranks of the eigenvectors (shared by all of them).
    local_iterations : tuple of int
        Block operator products spent by LOBPCG in each sweep (0 for dense local solves).
    """

    sweeps: int
    converged: bool
    changes: tuple
    eigenvalues: tuple
    hermitian_defect: float
    ranks: tuple
    local_iterations: tuple


def _qr_norm_parts(cores4):
    cores = [c.reshape(c.shape[0], -1, c.shape[3]) for c in cores4]
    _, exp2, last = orthogonal_sweep(cores, "left")
    return last, exp2


def hermitian_defect(A):
    """``||A - A^H||_F / ||A||_F`` computed in TT format by QR sweeps (accurate for the
    exact cancellation of a Hermitian ``A``; 0 for the zero matrix)."""
    na, ea = _qr_norm_parts(A.cores)
    if not na > 0:
        return 0.0
    nd, ed = _qr_norm_parts((A - A.H).cores)
    return math.ldexp(nd / na, ed - ea)


def eigsh(A, k=1, *, eps=1e-6, tol=None, x0=None, nswp=20, max_rank=None, kickrank=4,
          which="SA", local_maxiter=100, herm_tol=None, rng=None, return_info=False,
          warn=True):
    """The ``k`` smallest (``which='SA'``) or largest (``'LA'``) eigenpairs of a Hermitian
    TT-matrix, by block DMRG with residual subspace expansion.

    Complexity: per sweep ``O(d (ra r^3 n k + ra^2 r^2 n^2 k))`` per block product of the
    local operator (``r`` the rank of the eigenvectors, ``ra`` that of ``A``), times the
    LOBPCG iterations; ``O(d (r^2 n)^3)`` for dense local problems.

    Parameters
    ----------
    A : TTMatrix
        Hermitian (real symmetric) operator with equal row and column modes, not padded.
        Checked: ``||A - A^H||_F / ||A||_F`` (in TT format) must be at most ``herm_tol``.
    k : int
        Number of eigenpairs (``>= 1``).
    eps : float
        Relative accuracy of the bond truncations of the eigenvector block
        (``eps / sqrt(d)`` per bond); the eigenvalue error is of order ``eps**2``.
    tol : float, optional
        Stop when no eigenvalue changes by more than ``tol`` relative over a sweep (default
        ``max(eps**2, 100 * machine epsilon)``).
    x0 : TTTensor or sequence of k TTTensor, optional
        Starting vectors (default: random, drawn from ``rng``).
    nswp : int
        Hard cap on the sweeps; reaching it warns with
        :class:`~tensortrain.errors.ConvergenceWarning` and says what was achieved.
    max_rank : int or sequence of int, optional
        Rank cap per bond.
    kickrank : int
        Directions added to each bond by the subspace expansion (0: plain one-site DMRG,
        the ranks of ``x0`` can then only shrink).
    which : {'SA', 'LA'}
        Smallest or largest algebraic eigenvalues.
    local_maxiter : int
        Cap on the block products of one local LOBPCG solve.
    herm_tol : float, optional
        Largest accepted relative defect ``||A - A^H||_F / ||A||_F`` (default
        ``max(1e-8, 1000 u)``, ``u`` the unit round-off of ``A``'s dtype).
    rng : None, int or numpy.random.Generator
        Seed of the random start (default 0).
    return_info, warn : bool
        Also return an :class:`EigInfo`; warn at the cap.

    Returns
    -------
    values : numpy.ndarray
        The ``k`` eigenvalues (host array), ascending for ``'SA'``, descending for ``'LA'``.
    vectors : list of TTTensor
        The orthonormal eigenvectors (unit norm), sharing their TT-ranks.
    info : EigInfo
        With ``return_info=True``.

    Raises
    ------
    TypeError
        ``A`` not a TTMatrix, ``x0`` not TTTensors, non-integer counts.
    ShapeError
        Non-square or padded ``A``; ``x0`` of the wrong shape.
    TTError
        NaN or Inf in ``A`` or ``x0``; ``A`` not Hermitian within ``herm_tol``; ``k`` larger
        than the size of ``A``; an unknown ``which``.

    Examples
    --------
    >>> import numpy as np, tensortrain as tt
    >>> from tensortrain.solvers import eigsh
    >>> A = tt.TTMatrix([np.diag([1.0, 2.0, 3.0])[None, :, :, None]] * 4)   # diag(1,2,3)^(x4)
    >>> w, v = eigsh(A, which="LA")
    >>> round(float(w[0]), 10), v[0].ranks
    (81.0, (1, 1, 1, 1, 1))
    """
    where = "eigsh"
    check_operator(A, where)
    modes = A.col_modes
    d = len(modes)
    k = check_count(k, "k", 1, where)
    size = math.prod(modes)
    if k > size:
        raise TTError(f"{where}: k must be at most the size of A ({size}), got {k}")
    if which not in WHICH:
        raise TTError(f"{where}: which must be one of {WHICH}, got {which!r}")
    eps = check_eps(eps, "eps")
    if herm_tol is None:
        herm_tol = max(1e-8, 1000 * float(np.finfo(np.dtype(A.dtype)).eps) / 2)
    herm_tol = check_eps(herm_tol, "herm_tol")
    nswp = check_count(nswp, "nswp", 1, where)
    kickrank = check_count(kickrank, "kickrank", 0, where)
    local_maxiter = check_count(local_maxiter, "local_maxiter", 1, where)
    caps = check_max_rank(max_rank, d)
    dtype = np.dtype(A.dtype)
    if tol is None:
        tol = max(eps ** 2, 100 * float(np.finfo(dtype).eps))
    tol = check_eps(tol, "tol")
    starts = None
    if x0 is not None:
        starts = [x0] if isinstance(x0, TTTensor) else list(x0) if isinstance(
            x0, (list, tuple)) else None
        if starts is None:
            raise TypeError(f"{where}: x0 must be a TTTensor or a sequence of {k} TTTensors, "
                            f"got {type(x0).__name__}")
        if len(starts) != k:
            raise TTError(f"{where}: x0 must hold k={k} vectors, got {len(starts)}")
        for j, v in enumerate(starts):
            check_vector(v, modes, f"x0[{j}]", where)
        dtype = np.result_type(dtype, *[v.dtype for v in starts])
    defect = hermitian_defect(A)
    if not defect <= herm_tol:
        raise TTError(f"{where} needs a Hermitian A: ||A - A^H||_F / ||A||_F = {defect:.3g} > "
                      f"herm_tol={herm_tol:.3g}")
    gen = host_rng(rng)
    xp = get_xp(A.cores[0])
    a_cores = [c.astype(dtype, copy=False) for c in A.cores]
    if starts is None:
        rank = max(2, k)
        starts = [TTTensor(random_cores(modes, rank, gen, dtype, xp)) for _ in range(k)]
    run = _Dmrg(a_cores, starts, k, eps, caps, kickrank, which, local_maxiter, gen)
    res = run_sweeps(run.half_sweep, max_half_sweeps=nswp, tol=tol, name=where,
                     what="eigenvalue change", warn=False)
    if not res.converged and warn:
        warnings.warn(
            f"eigsh stopped at its cap of nswp={nswp} sweeps: the eigenvalues "
            f"{[float(v) for v in run.values]} still changed by {res.history[-1]:.3g} "
            f"(relative) > tol={tol:.3g} in the last sweep", ConvergenceWarning, stacklevel=2)
    values, vectors = run.result()
    if not return_info:
        return values, vectors
    info = EigInfo(sweeps=res.sweeps, converged=res.converged, changes=tuple(res.history),
                   eigenvalues=tuple(run.history), hermitian_defect=float(defect),
                   ranks=vectors[0].ranks, local_iterations=tuple(run.iterations))
    return values, vectors, info


def _block_start(starts, k, xp, dtype):
    """Block TT of the starting vectors: their direct sum, right-orthogonalized; core 0
    ``(1, n, r1, k)`` carries the block index."""
    d = starts[0].d
    cores = []
    for pos in range(d):
        parts = [v.cores[pos].astype(dtype, copy=False) for v in starts]
        if d == 1:
            blk = xp.stack([p[0, :, 0] for p in parts], axis=-1)[None, :, None, :]
        elif pos == 0:
            r1 = sum(p.shape[2] for p in parts)
            n = parts[0].shape[1]
            blk = xp.zeros((1, n, r1, k), dtype=dtype)
            off = 0
            for j, p in enumerate(parts):
                blk[0, :, off:off + p.shape[2], j] = p[0]
                off += p.shape[2]
        elif pos == d - 1:
            blk = xp.concatenate(parts, axis=0)
        else:
            r0 = sum(p.shape[0] for p in parts)
            r1 = sum(p.shape[2] for p in parts)
            blk = xp.zeros((r0, parts[0].shape[1], r1), dtype=dtype)
            o0 = o1 = 0
            for p in parts:
                blk[o0:o0 + p.shape[0], :, o1:o1 + p.shape[2]] = p
                o0 += p.shape[0]
                o1 += p.shape[2]
        cores.append(blk)
    # right-orthogonalize cores d-1 .. 1, carrying R into the block core 0 (scale dropped:
    # only the directions of the start matter)
    for pos in range(d - 1, 0, -1):
        c = cores[pos]
        r0, n, r1 = c.shape
        q, rr = qr(c.reshape(r0, n * r1).T)
        cores[pos] = q.T.reshape(q.shape[1], n, r1)
        rr, _ = _scaling.normalize(rr)
        prev = cores[pos - 1]
        if pos - 1 == 0:
            cores[0] = xp.tensordot(prev, rr.T, axes=(2, 0)).transpose(0, 1, 3, 2)
        else:
            a, m, _ = prev.shape
            cores[pos - 1] = (prev.reshape(a * m, -1) @ rr.T).reshape(a, m, -1)
    cores[0], _ = _scaling.normalize(cores[0])
    return cores


class _Dmrg:
    def __init__(self, a, starts, k, eps, caps, kickrank, which, local_maxiter, gen):
        scaled = [_scaling.normalize(c) for c in a]
        a = self.a = [c for c, _ in scaled]
        self.a_exp = _scaling.host_exponent_sum([e for _, e in scaled])
        self.d = len(a)
        self.k = k
        self.caps, self.kick, self.which = caps, kickrank, which
        self.local_maxiter, self.gen = local_maxiter, gen
        self.xp = get_xp(a[0])
        self.dtype = a[0].dtype
        self.tol_local = eps / math.sqrt(self.d) if self.d > 1 else eps
        self.blocks = [_local.classify_blocks(c) for c in a]
        cores = _block_start(starts, k, self.xp, self.dtype)
        self.block = cores[0]                    # (r0, n, r1, k) at position pos
        frame = list(cores)
        frame[0] = cores[0][..., 0]              # placeholder of the right shape
        self.x = frame
        self.pos = 0
        self.env = Environments(self.x, self.x, a)
        self.env.build_right(1)
        self.values = np.zeros(k)
        self.history, self.iterations = [], []

    def _local_eig(self, op, y_old):
        """Eigenpairs of the local operator: (host values, block (N, k), products, ||B||_2
        where the dense path knows it, else 0)."""
        xp = self.xp
        n_unknowns = op.shape[1]
        k = self.k
        if n_unknowns <= max(DENSE_MAX, 3 * k):
            w, v, bnorm = _local.eig_dense(op, min(k, n_unknowns), self.which)
            if v.shape[1] < k:      # fewer unknowns than wanted vectors: pad (enrichment grows)
                pad = xp.zeros((n_unknowns, k - v.shape[1]), dtype=v.dtype)
                v = xp.concatenate([v, pad], axis=1)
                w = np.concatenate([w, np.full(k - len(w), w[-1])])
            return w, v, 0, bnorm
        w, v, used = _local.lobpcg(op, y_old, k, self.which, self.tol_local / 10,
                                   self.local_maxiter)
        return w, v, used, 0.0

    def _ritz(self, op, y):
        """Ritz values of the old block (for the stopping quantity)."""
        xp = self.xp
        q = _local._orth(y)
        if q.shape[1] == 0:
            return None
        h = q.conj().T @ op.matvec(q)
        w = to_host(xp.linalg.eigvalsh((h + h.conj().T) / 2))
        w = np.sort(w) if self.which == "SA" else np.sort(w)[::-1]
        return w[:self.k]

    def _expand_right(self, y, u):
        """Columns of ``(A x)`` at this core with the right bond open, minus their part in
        ``span(u)``: the expansion candidates for the next bond."""
        xp = self.xp
        left = self.env.left(self.pos)
        t = xp.tensordot(left, y, axes=(2, 0))                         # (a', c, j, b, p)
        t = xp.tensordot(t, self.a[self.pos], axes=([1, 2], [0, 2]))   # (a', b, p, i, c')
        t = t.transpose(0, 3, 4, 1, 2)
        p = t.reshape(u.shape[0], -1)
        return p - u @ (u.conj().T @ p)

    def _expand_left(self, y, w):
        xp = self.xp
        right = self.env.right(self.pos + 1)
        t = xp.tensordot(y, right, axes=(2, 2))                        # (a, j, p, b', c')
        t = xp.tensordot(self.a[self.pos], t, axes=([2, 3], [1, 4]))   # (c, i, a, p, b')
        t = t.transpose(0, 2, 3, 1, 4)
        p = t.reshape(-1, w.shape[1])
        return p - (p @ w.conj().T) @ w

    def _kick(self, cand):
        """The leading ``kickrank`` left singular vectors of ``cand`` (columns)."""
        if cand.shape[1] == 0:
            return cand
        scale = _local._host_norm(cand)
        if not scale > 0:
            return cand[:, :0]
        u, s, _ = svd(cand / cand.real.dtype.type(scale))
        s_host = to_host(s)
        keep = int(np.count_nonzero(s_host > 1e-12 * max(float(s_host[0]), 1e-300)))
        return u[:, :min(self.kick, keep)]

    def _trunc_rank(self, s, shape, bond):
        s_host = to_host(s)
        nrm = float(np.sqrt(np.sum(np.asarray(s_host, dtype=np.float64) ** 2)))
        cap = None if self.caps is None else self.caps[bond]
        return truncation_rank(s_host, self.tol_local * nrm, cap, shape, self.dtype)

    def half_sweep(self, direction, _i):
        xp = self.xp
        d, k = self.d, self.k
        order = range(d) if direction == "right" else range(d - 1, -1, -1)
        worst = 0.0
        used_total = 0
        for pos in order:
            self.pos = pos
            op = _local.LocalOperator(self.env.left(pos), self.a[pos], self.env.right(pos + 1),
                                      blocks=self.blocks[pos])
            ea = self.env.left_exp(pos) + self.env.right_exp(pos + 1) + self.a_exp
            y_old = self.block.reshape(-1, k)
            old = self._ritz(op, y_old)
            w, v, used, bnorm = self._local_eig(op, y_old)
            used_total += used
            if old is not None:
                # changes below the round-off of the local eigensolver do not count
                noise = NOISE * float(np.finfo(self.dtype).eps) * bnorm
                ref = np.maximum(np.abs(w), 1e-300)
                change = np.maximum(np.abs(old - w) - noise, 0.0) / ref
                worst = max(worst, float(np.max(change)))
            else:
                worst = math.inf
            self.values = np.array([math.ldexp(float(t), ea) for t in w])
            r0, n, r1 = op.in_shape
            y = v.reshape(r0, n, r1, k)
            if direction == "right" and pos < d - 1:
                mat = y.reshape(r0 * n, r1 * k)
                u, s, vh = svd(mat)
                r = self._trunc_rank(s, mat.shape, pos)
                u, carry = u[:, :r], s[:r, None].astype(vh.dtype) * vh[:r]   # (r, r1 k)
                if self.kick:
                    room = self.kick if self.caps is None else max(0, self.caps[pos] - r)
                    extra = self._kick(self._expand_right(y, u))[:, :room]
                    if extra.shape[1]:
                        q, rr = qr(xp.concatenate([u, extra], axis=1))
                        u, carry = q, rr[:, :r] @ carry
                self.x[pos] = u.reshape(r0, n, u.shape[1])
                self.env.update_left(pos)
                nxt = self.x[pos + 1]
                c3 = carry.reshape(carry.shape[0], r1, k)
                blk = xp.tensordot(c3, nxt, axes=(1, 0))                   # (r', p, n', r2)
                self.block = blk.transpose(0, 2, 3, 1)
                self.pos = pos + 1
            elif direction == "left" and pos > 0:
                yt = y.transpose(0, 3, 1, 2)                                # (r0, p, n, r1)
                mat = yt.reshape(r0 * k, n * r1)
                u, s, vh = svd(mat)
                r = self._trunc_rank(s, mat.shape, pos - 1)
                carry, wv = u[:, :r] * s[None, :r].astype(u.dtype), vh[:r]   # (r0 k, r)
                if self.kick:
                    room = self.kick if self.caps is None else max(0, self.caps[pos - 1] - r)
                    cand = self._expand_left(y, wv)
                    extra = self._kick(cand.T)[:, :room].T
                    if extra.shape[0]:
                        q, rr = qr(xp.concatenate([wv, extra], axis=0).T)
                        wv, carry = q.T, carry @ rr[:, :r].T
                self.x[pos] = wv.reshape(wv.shape[0], n, r1)
                self.env.update_right(pos)
                prv = self.x[pos - 1]
                c3 = carry.reshape(r0, k, carry.shape[1])
                blk = xp.tensordot(prv, c3, axes=(2, 0))                   # (a, m, p, r')
                self.block = blk.transpose(0, 1, 3, 2)
                self.pos = pos - 1
            else:
                self.block = y
        self.history.append(tuple(float(v) for v in self.values))
        self.iterations.append(used_total)
        return worst

    def result(self):
        xp = self.xp
        vecs = []
        for j in range(self.k):
            cores = list(self.x)
            core = self.block[..., j]
            nrm = _local._host_norm(core)
            cores[self.pos] = core / core.real.dtype.type(nrm) if nrm > 0 else core
            vecs.append(TTTensor([xp.ascontiguousarray(c) for c in cores]))
        return self.values.copy(), vecs

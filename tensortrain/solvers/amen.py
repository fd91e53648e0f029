"""``solve``: linear systems ``A x = b`` in TT format by AMEn (alternating minimal energy).

The algorithm is the one-site AMEn of Dolgov and Savostyanov (SIAM J. Sci. Comput. 36, 2014):
a sweep visits the cores of ``x`` one by one; at core ``k``, with the cores on the left
left-orthogonal and those on the right right-orthogonal, it solves the projected system
``(X_k^H A X_k) y = X_k^H b`` for the core (the *local problem*), truncates the core's bond
by SVD, and enriches the bond with a few directions of the residual ``b - A x`` projected
onto a second, low-rank TT ``z`` that AMEn keeps as an approximation of the residual.  The
enrichment lets the ranks grow where the residual asks for it, so ``x`` need not start with
the right ranks.

Magnitudes: the interfaces come from :class:`tensortrain._sweep.Environments`, scaled by
exact powers of two; the local problem is solved on the scaled operator and right-hand side,
and the power of two of the solution is kept as an integer until the end, so no sweep
overflows or underflows for any ``d``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np

from .. import _scaling
from .._backend import get_xp, to_host
from .._sweep import Environments, run_sweeps
from .._validation import check_eps, check_finite_cores, check_int, check_max_rank, make_rng
from ..decompositions import orthogonal_sweep, orthogonalize_cores, truncation_rank
from ..errors import ConvergenceWarning, ShapeError, TTError
from ..matrix import TTMatrix
from ..tensor import TTTensor
from . import _local
from ._local import qr, svd

__all__ = ["SolveInfo", "solve"]

LOCAL_SOLVERS = ("auto", "direct", "gmres", "cg")

#: ``local_solver='auto'`` solves local problems of at most this many unknowns directly
DENSE_MAX = 1200

#: local iterative solves stop at this fraction of the core's previous residual (or at
#: ``eps / (2 sqrt(d))``, whichever is larger)
LOCAL_REDUCTION = 1e-2

#: the sweeps stop only when the true relative residual is also at most this times ``eps``
TRUE_SLACK = 100.0


@dataclass(frozen=True)
class SolveInfo:
    """What :func:`solve` did.

    Attributes
    ----------
    sweeps : int
        Sweeps run (one sweep is one pass over the cores, alternating direction).
    converged : bool
        Whether the stopping quantity met ``eps`` before the cap ``nswp``.
    residuals : tuple of float
        The stopping quantity of each sweep: the largest relative residual of the local
        problems, ``max_k ||B_k y_k - f_k|| / ||f_k||``, evaluated for the solution each
        core had *before* it was updated (the estimate AMEn, ttpy and torchTT stop on); in
        a sweep where that met ``eps`` but the true residual was above ``100 eps``, the true
        residual divided by 100.
    residual : float
        The true relative residual ``||A x - b|| / ||b||`` of the returned ``x``, computed
        once at the end in TT format (``A @ x - b`` and its norm by an orthogonalizing sweep).
    ranks : tuple of int
        TT-ranks of the returned ``x``.
    max_ranks : tuple of int
        The largest rank of ``x`` after each sweep.
    local_iterations : tuple of int
        Operator products spent by the local iterative solver in each sweep (0 for direct
        solves).
    local_solvers : tuple of str
        Which local solver each sweep used (``'direct'``, ``'gmres'``, ``'cg'`` or a mix
        joined by ``'+'``).
    """

    sweeps: int
    converged: bool
    residuals: tuple
    residual: float
    ranks: tuple
    max_ranks: tuple
    local_iterations: tuple
    local_solvers: tuple


# ---- validation shared with eigsh ---------------------------------------------------------------

def check_operator(A, where):
    """``A`` must be a square, unpadded TTMatrix with finite cores."""
    if not isinstance(A, TTMatrix):
        raise TypeError(f"{where}: A must be a TTMatrix, got {type(A).__name__}")
    if A.row_modes != A.col_modes:
        raise ShapeError(f"{where}: A must be square with equal row and column modes, got row "
                         f"modes {A.row_modes} and column modes {A.col_modes}")
    if A.is_padded:
        raise ShapeError(f"{where}: A is padded (logical shape {A.shape}, modes cover "
                         f"{A.padded_shape}); build the operator on modes whose product is its "
                         f"size")
    check_finite_cores(A.cores, f"{where}: A")


def check_vector(v, modes, what, where):
    if not isinstance(v, TTTensor):
        raise TypeError(f"{where}: {what} must be a TTTensor, got {type(v).__name__}")
    if v.shape != tuple(modes):
        raise ShapeError(f"{where}: {what} must have the operator's modes {tuple(modes)}, got "
                         f"shape {v.shape}")
    check_finite_cores(v.cores, f"{where}: {what}")


def check_count(value, name, minimum, where):
    return check_int(value, f"{where}: {name}", minimum)


def host_rng(rng):
    """The generator of the random start: ``rng`` as :func:`~tensortrain._validation.make_rng`
    takes it, with ``None`` meaning seed 0 (a solve is reproducible unless asked otherwise)."""
    return make_rng(0 if rng is None else rng)


def random_cores(modes, rank, rng, dtype, xp):
    """Host-drawn Gaussian cores of the given inner rank, moved to ``xp``."""
    d = len(modes)
    ranks = [1] + [rank] * (d - 1) + [1]
    out = []
    for k in range(d):
        shape = (ranks[k], modes[k], ranks[k + 1])
        a = rng.standard_normal(shape)
        if np.dtype(dtype).kind == "c":
            a = a + 1j * rng.standard_normal(shape)
        out.append(xp.asarray(a.astype(dtype)))
    return out


def interface_rhs(left, core, right):
    """``f[a', i, b'] = sum L[a', a] core[a, i, b] R[b', b]`` (a projected right-hand side)."""
    xp = get_xp(left, core, right)
    t = xp.tensordot(left, core, axes=(1, 0))            # (a', i, b)
    return xp.tensordot(t, right, axes=(2, 1))           # (a', i, b')


def qr_norm(v):
    """``||v||_F`` of a TTTensor by a QR sweep (accurate when ``v`` is a small difference of
    large terms, such as a residual ``A x - b``)."""
    _, exp2, last = orthogonal_sweep(list(v.cores), "left")
    return math.ldexp(last, exp2) if math.isfinite(last) and last > 0 else last


def relative_residual(A, x, b):
    """``||A x - b|| / ||b||`` in TT format: the exact product, the difference, and norms by
    QR sweeps.  Complexity ``O(d n (ra rx + rb)^3)``."""
    _, e_r, r = orthogonal_sweep(list((A @ x - b).cores), "left")
    _, e_b, nb = orthogonal_sweep(list(b.cores), "left")
    if not nb > 0:
        return math.inf
    return math.ldexp(r / nb, e_r - e_b)


def _norm(a):
    return _local.norm(a)


# ---- the solver ----------------------------------------------------------------------------------

def solve(A, b, *, eps=1e-8, x0=None, nswp=20, max_rank=None, kickrank=4,
          local_solver="auto", local_maxiter=400, precondition=True, rng=None, return_info=False,
          warn=True):
    """Solve ``A x = b`` for ``x`` in TT format by AMEn.

    Complexity: per sweep ``O(d (ra r^3 n + ra^2 r^2 n^2))`` for each local operator product
    (``r`` the rank of ``x``, ``ra`` that of ``A``, ``n`` the mode size), times the local
    solver's product count; ``O(d (r n)^3)`` for direct local solves.

    Parameters
    ----------
    A : TTMatrix
        Square operator with equal row and column modes (not padded), finite.
    b : TTTensor
        Right-hand side with ``b.shape == A.col_modes``.
    eps : float
        Target relative residual (``> 0``).  Sweeps stop when every local problem's relative
        residual is at most ``eps`` (AMEn's own estimate, see :class:`SolveInfo`) *and* the
        true relative residual ``||A x - b|| / ||b||``, then computed once in TT format, is
        at most ``100 eps`` (the local residuals are those of Galerkin projections and can be
        small for a singular, inconsistent system).  Bonds are truncated at
        ``eps / sqrt(d)`` relative (raised where the truncation would lift the local
        residual above twice its level) and local iterative solves run to ``eps / (2
        sqrt(d))``.
    x0 : TTTensor, optional
        Initial guess (default: a random rank-2 TT drawn from ``rng``).
    nswp : int
        Hard cap on the number of sweeps (one pass over the cores each).  Hitting it warns
        with :class:`~tensortrain.errors.ConvergenceWarning` and reports the residuals
        reached (a singular or very ill-conditioned system ends here, never in a hang).
    max_rank : int or sequence of int, optional
        Rank cap per bond, as in :func:`tensortrain.round`.
    kickrank : int
        Rank of the residual approximation ``z`` and of the enrichment per bond (0: no
        enrichment, the ranks of ``x0`` can then only shrink).
    local_solver : {'auto', 'direct', 'gmres', 'cg'}
        ``'direct'`` forms the local matrix (size ``(r0 n r1)^2``) and solves it densely;
        ``'gmres'`` (restarted GMRES(20)) and ``'cg'`` (for Hermitian positive definite
        ``A``) apply it without forming it, warm-started from the current core.
        ``'auto'``: direct up to ``DENSE_MAX = 1200`` unknowns, GMRES above.
    local_maxiter : int
        Cap on the operator products of one local iterative solve.  Local iterative solves
        stop at ``max(eps / (2 sqrt(d)), 0.01 * r_old)`` relative, ``r_old`` the residual of
        the core before the solve (inexact solves in the early sweeps, where the frames are
        still poor).
    precondition : bool
        Precondition local GMRES with the rank-diagonal ("central Jacobi") part of the local
        operator where it can be inverted cheaply (operators whose cores have at most one
        block that is not a multiple of the identity, such as Laplacians); see
        :meth:`tensortrain.solvers._local.LocalOperator.preconditioner`.
    rng : None, int or numpy.random.Generator
        Seed of the random initial guess and residual directions (default 0: reproducible).
    return_info : bool
        Also return a :class:`SolveInfo`.
    warn : bool
        Warn when the cap ``nswp`` is reached.

    Returns
    -------
    x : TTTensor, or ``(x, SolveInfo)`` with ``return_info=True``.

    Raises
    ------
    TypeError
        ``A`` not a TTMatrix, ``b`` or ``x0`` not a TTTensor, non-integer counts.
    ShapeError
        Non-square or padded ``A``, ``b`` or ``x0`` whose shape is not ``A.col_modes``.
    TTError
        NaN or Inf in ``A``, ``b`` or ``x0``; ``eps <= 0``; an unknown ``local_solver``.

    Examples
    --------
    >>> import numpy as np, tensortrain as tt
    >>> from tensortrain.solvers import solve
    >>> T = np.diag(np.full(8, 2.0)) - np.diag(np.ones(7), 1) - np.diag(np.ones(7), -1)
    >>> A = tt.kron(tt.TTMatrix([T[None, :, :, None]]), tt.eye((8, 8))) + tt.kron(
    ...     tt.TTMatrix([np.eye(8)[None, :, :, None]]),
    ...     tt.kron(tt.TTMatrix([T[None, :, :, None]]), tt.eye((8,))) + tt.kron(
    ...         tt.eye((8,)), tt.TTMatrix([T[None, :, :, None]])))
    >>> x = solve(A, tt.ones((8, 8, 8)), eps=1e-10)
    >>> bool(tt.norm(A @ x - tt.ones((8, 8, 8))) < 1e-9 * tt.norm(tt.ones((8, 8, 8))))
    True
    """
    where = "solve"
    check_operator(A, where)
    modes = A.col_modes
    check_vector(b, modes, "b", where)
    if x0 is not None:
        check_vector(x0, modes, "x0", where)
    eps = check_eps(eps, "eps")
    if not eps > 0:
        raise TTError(f"{where}: eps must be > 0 (the target relative residual), got {eps!r}")
    nswp = check_count(nswp, "nswp", 1, where)
    kickrank = check_count(kickrank, "kickrank", 0, where)
    local_maxiter = check_count(local_maxiter, "local_maxiter", 1, where)
    if local_solver not in LOCAL_SOLVERS:
        raise TTError(f"{where}: local_solver must be one of {LOCAL_SOLVERS}, got "
                      f"{local_solver!r}")
    d = len(modes)
    caps = check_max_rank(max_rank, d)
    gen = host_rng(rng)
    xp = get_xp(A.cores[0], b.cores[0], *(() if x0 is None else (x0.cores[0],)))
    dtype = np.result_type(A.dtype, b.dtype, *(() if x0 is None else (x0.dtype,)))

    a_cores = [c.astype(dtype, copy=False) for c in A.cores]
    b_cores = [c.astype(dtype, copy=False) for c in b.cores]
    if b.norm() == 0:
        x = TTTensor([xp.zeros((1, n, 1), dtype=dtype) for n in modes])
        info = SolveInfo(0, True, (), 0.0, x.ranks, (), (), ())
        return (x, info) if return_info else x
    if x0 is None:
        start = random_cores(modes, min(2, max(1, kickrank)), gen, dtype, xp)
    else:
        start = [c.astype(dtype, copy=False) for c in x0.cores]
    run = _Amen(a_cores, b_cores, start, eps, caps, kickrank, local_solver, local_maxiter, gen,
                precondition)
    run.op_tt, run.b_tt = A.astype(dtype), b.astype(dtype)
    res = run_sweeps(run.half_sweep, max_half_sweeps=nswp, tol=eps, name=where,
                     what="local residual", warn=False)
    x = run.result()
    true_res = run.true_residual if res.converged else relative_residual(run.op_tt, x,
                                                                         run.b_tt)
    if not res.converged and warn:
        warnings.warn(
            f"solve stopped at its cap of nswp={nswp} sweeps: the largest local residual is "
            f"{res.history[-1]:.3g} > eps={eps:.3g}, the true relative residual "
            f"||Ax-b||/||b|| = {true_res:.3g}; the system may be singular or ill-conditioned, "
            f"or need more sweeps (nswp), a larger kickrank or max_rank",
            ConvergenceWarning, stacklevel=2)
    if not return_info:
        return x
    info = SolveInfo(sweeps=res.sweeps, converged=res.converged,
                     residuals=tuple(res.history), residual=float(true_res), ranks=x.ranks,
                     max_ranks=tuple(run.max_ranks), local_iterations=tuple(run.iterations),
                     local_solvers=tuple(run.solvers))
    return x, info


class _Amen:
    """The state of one AMEn run: cores of ``x`` and ``z``, their interfaces, and the
    power of two ``xexp`` of the non-orthogonal core of ``x``."""

    def __init__(self, a, b, x0, eps, caps, kickrank, local_solver, local_maxiter, gen,
                 precondition=True):
        # every operator and right-hand-side core scaled to a largest entry in [0.5, 1); the
        # powers of two are added to the interface exponents
        a_scaled = [_scaling.normalize(c) for c in a]
        b_scaled = [_scaling.normalize(c) for c in b]
        self.a = [c for c, _ in a_scaled]
        self.b = [c for c, _ in b_scaled]
        self.a_exp = _scaling.host_exponent_sum([e for _, e in a_scaled])
        self.b_exp = _scaling.host_exponent_sum([e for _, e in b_scaled])
        a, b = self.a, self.b
        self.d = d = len(a)
        self.eps, self.caps, self.kick = eps, caps, kickrank
        self.local_solver, self.local_maxiter, self.gen = local_solver, local_maxiter, gen
        self.xp = get_xp(a[0])
        self.dtype = a[0].dtype
        self.shift_limit = np.finfo(self.dtype).maxexp // 2
        self.tol_local = eps / math.sqrt(d)
        # x right-orthogonal with core 0 carrying the norm; its power of two kept aside
        x, log_scale = orthogonalize_cores(list(x0), "right", normalize=True)
        if not math.isfinite(log_scale):     # a zero initial guess: start from a random one
            x, log_scale = orthogonalize_cores(
                random_cores([c.shape[1] for c in a], 2, gen, self.dtype, self.xp), "right",
                normalize=True)
        e2 = log_scale / math.log(2.0)
        self.xexp = math.floor(e2)
        x[0] = x[0] * (2.0 ** (e2 - self.xexp))
        self.x = x
        self.pos = 0
        self.blocks = [_local.classify_blocks(c) for c in a]
        self.prec_cache = [{} for _ in a]
        self.precondition = precondition
        self.xax = Environments(self.x, self.x, a)
        self.xb = Environments(self.x, b)
        self.xax.build_right(1)
        self.xb.build_right(1)
        if kickrank:
            z = random_cores([c.shape[1] for c in a], kickrank, gen, self.dtype, self.xp)
            self.z, _ = orthogonalize_cores(z, "right", normalize=True)
            self.zax = Environments(self.z, self.x, a)
            self.zb = Environments(self.z, b)
            self.zax.build_right(1)
            self.zb.build_right(1)
        self.max_ranks, self.iterations, self.solvers = [], [], []
        self.true_residual = math.nan
        self.op_tt = self.b_tt = None

    # -- pieces --------------------------------------------------------------------------------
    def _op(self, env_l, env_r, k):
        """The local operator at core ``k`` between two interface sets, and its exponent."""
        left, right = env_l.left(k), env_r.right(k + 1)
        op = _local.LocalOperator(left, self.a[k], right, blocks=self.blocks[k])
        return op, env_l.left_exp(k) + env_r.right_exp(k + 1) + self.a_exp

    def _rhs(self, env_l, env_r, k):
        f = interface_rhs(env_l.left(k), self.b[k], env_r.right(k + 1))
        return f, env_l.left_exp(k) + env_r.right_exp(k + 1) + self.b_exp

    def _residual_core(self, env_al, env_ar, env_bl, env_br, k, y):
        """``(f - B y)`` projected with the given interfaces, up to a power of two (only its
        directions are used)."""
        op, ea = self._op(env_al, env_ar, k)
        f, eb = self._rhs(env_bl, env_br, k)
        by = op.apply(y)
        shift = ea + self.xexp - eb
        by, e1 = _scaling.normalize(by)
        f, e2 = _scaling.normalize(f)
        # f * 2^e2 - by * 2^(e1 + shift), brought to the larger of the two exponents
        hi = max(e2, e1 + shift)
        return _scaling.ldexp(f, e2 - hi) - _scaling.ldexp(by, e1 + shift - hi)

    def _local_solve(self, op, f, y0, res_old, k):
        # inexact local solves: no need to solve far below what the frames can represent
        # yet; a reduction of the old residual by LOCAL_REDUCTION, never below tol_local / 2
        tol = max(self.tol_local / 2, LOCAL_REDUCTION * res_old)
        n_unknowns = op.shape[1]
        kind = self.local_solver
        if kind == "auto":
            kind = "direct" if n_unknowns <= DENSE_MAX else "gmres"
        if kind == "direct":
            y, its = _local.solve_dense(op, f)
        elif kind == "gmres":
            prec = op.preconditioner(self.prec_cache[k]) if self.precondition else None
            y, its = _local.gmres(op, f, y0, tol, self.local_maxiter, prec=prec)
        else:
            y, its = _local.cg(op, f, y0, tol, self.local_maxiter)
        return y, its, kind

    def _truncate(self, mat, k, op=None, f=None, fn=0.0):
        """SVD of the core matrix truncated at the local accuracy and the cap of bond ``k``.

        With the local problem given (``op``, ``f``), the rank is the smallest one (at least
        the Frobenius rank) whose truncated core keeps the local relative residual within
        ``max(2 tol_local, 2 res_new)``: a truncation in the Frobenius norm alone can raise
        the residual by the condition number (binary search, one product per trial).
        """
        u, s, vh = svd(mat)
        s_host = to_host(s)
        nrm = float(np.sqrt(np.sum(np.asarray(s_host, dtype=np.float64) ** 2)))
        cap = None if self.caps is None else self.caps[k]
        r = truncation_rank(s_host, self.tol_local * nrm, cap, mat.shape, mat.dtype)
        full = len(s_host) if cap is None else min(len(s_host), cap)
        if op is not None and fn > 0 and r < full:
            shape = op.in_shape
            s_d = s.astype(mat.dtype)

            def res(rr):
                y = (u[:, :rr] * s_d[None, :rr]) @ vh[:rr]
                return _norm(op.apply(y.reshape(shape)) - f) / fn

            target = 2 * max(self.tol_local, res(full))
            if res(r) > target:
                lo, hi = r, full           # res(lo) > target >= res(hi)
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if res(mid) > target:
                        lo = mid
                    else:
                        hi = mid
                r = hi
        return u[:, :r], s[:r].astype(mat.dtype), vh[:r], r

    def _new_z(self, zres, rows):
        """Orthonormal ``z`` directions: the leading ``kickrank`` singular vectors of the
        projected residual, completed by random ones."""
        xp = self.xp
        mat = zres if not rows else zres.T
        u, _, _ = svd(mat)
        keep = min(self.kick, u.shape[1])
        cols = [u[:, :keep]]
        extra = min(self.kick, mat.shape[0]) - keep
        if extra > 0:
            a = self.gen.standard_normal((mat.shape[0], extra))
            cols.append(xp.asarray(a.astype(self.dtype)))
        q, _ = qr(xp.concatenate(cols, axis=1))
        return q

    # -- one half sweep ------------------------------------------------------------------------
    def half_sweep(self, direction, _i):
        xp = self.xp
        d = self.d
        order = range(d) if direction == "right" else range(d - 1, -1, -1)
        worst = 0.0
        its_total = 0
        kinds = set()
        for k in order:
            op, ea = self._op(self.xax, self.xax, k)
            f, eb = self._rhs(self.xb, self.xb, k)
            fn = _norm(f)
            shift = self.xexp - (eb - ea)
            if abs(shift) > self.shift_limit:
                # the old core is far off the solution's scale (a random start): restart it
                y_old = xp.zeros_like(self.x[k])
            else:
                y_old = _scaling.ldexp(self.x[k], shift) if shift else self.x[k]
            if fn == 0:
                res_old = 0.0 if _norm(y_old) == 0 else 1.0
            else:
                res_old = _norm(op.apply(y_old) - f) / fn
            if not math.isfinite(res_old):
                res_old = math.inf
                y_old = xp.zeros_like(y_old)
            worst = max(worst, res_old)
            if res_old > self.tol_local:
                y, its, kind = self._local_solve(op, f, y_old, res_old, k)
                its_total += its
                kinds.add(kind)
            else:
                y = y_old
            self.xexp = eb - ea
            r0, n, r1 = y.shape
            if direction == "right" and k < d - 1:
                u, s, vh, r = self._truncate(y.reshape(r0 * n, r1), k, op, f, fn)
                v = s[:, None] * vh                                   # (r, r1)
                y_tr = (u @ v).reshape(r0, n, r1)
                if self.kick:
                    room = self.kick if self.caps is None else max(0, self.caps[k] - r)
                    if room:
                        enr = self._residual_core(self.xax, self.zax, self.xb, self.zb, k, y_tr)
                        enr = enr.reshape(r0 * n, -1)[:, :room]
                        q, rr = qr(xp.concatenate([u, enr], axis=1))
                        u, v = q, rr[:, :r] @ v
                    zres = self._residual_core(self.zax, self.zax, self.zb, self.zb, k, y_tr)
                    rz0 = zres.shape[0]
                    qz = self._new_z(zres.reshape(rz0 * n, -1), rows=False)
                    self.z[k] = qz.reshape(rz0, n, qz.shape[1])
                    nxt = self.z[k + 1]
                    if nxt.shape[0] != qz.shape[1]:
                        self.z[k + 1] = xp.zeros((qz.shape[1], *nxt.shape[1:]), dtype=nxt.dtype)
                self.x[k] = u.reshape(r0, n, u.shape[1])
                nx = self.x[k + 1]
                self.x[k + 1] = (v @ nx.reshape(nx.shape[0], -1)).reshape(v.shape[0],
                                                                          *nx.shape[1:])
                for env in self._envs():
                    env.update_left(k)
                self.pos = k + 1
            elif direction == "left" and k > 0:
                u, s, vh, r = self._truncate(y.reshape(r0, n * r1), k - 1, op, f, fn)
                v = u * s[None, :]                                    # (r0, r)
                y_tr = (v @ vh).reshape(r0, n, r1)
                w = vh
                if self.kick:
                    room = self.kick if self.caps is None else max(0, self.caps[k - 1] - r)
                    if room:
                        enr = self._residual_core(self.zax, self.xax, self.zb, self.xb, k, y_tr)
                        enr = enr.reshape(enr.shape[0], n * r1)[:room]
                        q, rr = qr(xp.concatenate([w, enr], axis=0).T)
                        w, v = q.T, v @ rr[:, :r].T
                    zres = self._residual_core(self.zax, self.zax, self.zb, self.zb, k, y_tr)
                    rz1 = zres.shape[2]
                    qz = self._new_z(zres.reshape(zres.shape[0], n * rz1), rows=True)
                    self.z[k] = qz.T.reshape(qz.shape[1], n, rz1)
                    prv = self.z[k - 1]
                    if prv.shape[2] != qz.shape[1]:
                        self.z[k - 1] = xp.zeros((*prv.shape[:2], qz.shape[1]), dtype=prv.dtype)
                self.x[k] = w.reshape(w.shape[0], n, r1)
                pv = self.x[k - 1]
                self.x[k - 1] = (pv.reshape(-1, pv.shape[2]) @ v).reshape(*pv.shape[:2],
                                                                          v.shape[1])
                for env in self._envs():
                    env.update_right(k)
                self.pos = k - 1
            else:
                self.x[k] = y
                self.pos = k
        self.max_ranks.append(max(c.shape[2] for c in self.x))
        self.iterations.append(its_total)
        self.solvers.append("+".join(sorted(kinds)) if kinds else "none")
        if worst <= self.eps:
            # the local residuals are those of Galerkin projections: confirm with the true
            # residual before stopping (a singular, inconsistent system passes the first test)
            self.true_residual = relative_residual(self.op_tt, self.result(), self.b_tt)
            if self.true_residual > TRUE_SLACK * self.eps:
                return self.true_residual / TRUE_SLACK
        return worst

    def _envs(self):
        return (self.xax, self.xb) + ((self.zax, self.zb) if self.kick else ())

    def result(self):
        cores = _scaling.apply_pow2(list(self.x), self.xexp, self.pos)
        return TTTensor(cores)

"""Local problems of the sweeping solvers: the projected operator ``L A_k R`` and its solvers.

At core ``k`` of a sweep, with the cores left of ``k`` left-orthogonal and those right of it
right-orthogonal, the projected operator acts on a core ``y`` of shape ``(r0, n, r1)`` as

    (B y)[a', i, b'] = sum  L[a', c, a] A_k[c, i, j, c'] y[a, j, b] R[b', c', b]

with ``L`` and ``R`` the interfaces of ``<x|A|x>`` (or of another bra) from
:class:`tensortrain._sweep.Environments`.  :class:`LocalOperator` applies ``B`` without
forming it (``O(ra r^3 n + ra^2 r^2 n^2)`` per product) or forms the dense ``N x N`` matrix
(``N = r0 n r1``) for the direct solvers.  Blocks ``A_k[c, :, :, c']`` that are zero are
skipped and blocks that are multiples of the identity cost a scaled copy, so Kronecker-sum
operators (Laplacians, chains with on-site terms) pay for their one non-trivial block only.

The solvers here (dense solve, restarted GMRES, CG, dense Hermitian eigensolver, LOBPCG)
run on the array module of their operands (NumPy or CuPy) and move only scalars to the
host: the Hessenberg and Rayleigh-Ritz matrices are a few dozen numbers.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _backend
from .._backend import get_xp, to_host

__all__ = ["LocalOperator", "cg", "eig_dense", "gmres", "lobpcg", "solve_dense"]


class LocalOperator:
    """The projected operator ``B = L x A_k x R`` (see the module docstring).

    ``L`` has shape ``(r0, ra, r0k)`` (bra rank, operator rank, ket rank), ``A_k``
    ``(ra, m, n, ra1)`` and ``R`` ``(r1, ra1, r1k)``.  ``B`` maps ket cores ``(r0k, n, r1k)``
    to bra cores ``(r0, m, r1)``; ``scale`` multiplies the whole operator (a float).
    """

    def __init__(self, left, core, right, scale=1.0, blocks=None):
        self.left, self.core, self.right = left, core, right
        self.scale = scale
        self.xp = get_xp(left, core, right)
        r0, r0k = left.shape[0], left.shape[2]
        m, n = core.shape[1], core.shape[2]
        r1, r1k = right.shape[0], right.shape[2]
        self.out_shape = (r0, m, r1)
        self.in_shape = (r0k, n, r1k)
        self.shape = (r0 * m * r1, r0k * n * r1k)
        self.blocks = classify_blocks(core) if blocks is None else blocks

    def apply(self, y):
        """``B y`` for ``y`` of shape ``(r0k, n, r1k)`` or ``(r0k, n, r1k, p)`` (p columns).

        Every step is a (batched) matrix product on the core's natural layout, with no
        transposing copy: ``L_c`` from the left on ``(a, j b)``, a dense block on the mode
        of every ``(a', b)`` pair, ``R_c'^T`` from the right on ``(a' i, b)``.
        """
        xp = self.xp
        single = y.ndim == 3
        yb = y[None] if single else xp.moveaxis(y, 3, 0)          # (p, a, j, b)
        p, r0k, n, r1k = yb.shape
        r0, m, r1 = self.out_shape
        flat = yb.reshape(p, r0k, n * r1k)
        out = None
        lt = {}
        for (c, c2), (kind, val) in self.blocks.items():
            if c not in lt:
                lt[c] = xp.matmul(self.left[:, c, :], flat)        # (p, a', j b)
            t = lt[c]
            if kind == "eye":
                u = t if val == 1 else t * val
                u = u.reshape(p, r0 * m, r1k)
            elif kind == "band":
                u = _band_apply(val[0], t.reshape(p * r0, n, r1k), m).reshape(p, r0 * m, r1k)
            else:
                u = xp.matmul(val, t.reshape(p * r0, n, r1k))       # (p a', i, b)
                u = u.reshape(p, r0 * m, r1k)
            v = xp.matmul(u, self.right[:, c2, :].T)                # (p, a' i, b')
            out = v if out is None else out + v
        if out is None:
            out = xp.zeros((p, r0 * m, r1), dtype=y.dtype)
        if self.scale != 1.0:
            out = out * self.scale
        out = out.reshape(p, r0, m, r1)
        return out[0] if single else xp.moveaxis(out, 0, 3)

    def matvec(self, v):
        """``B v`` on flat vectors ``(N,)`` or blocks ``(N, p)``."""
        if v.ndim == 1:
            return self.apply(v.reshape(self.in_shape)).reshape(-1)
        p = v.shape[1]
        return self.apply(v.reshape((*self.in_shape, p))).reshape(-1, p)

    def preconditioner(self, cache):
        """``P^-1`` of the rank-diagonal part of ``B`` (a callable on cores), or None.

        ``P = sum_blocks diag(L_c) x A_k[c, :, :, c'] x diag(R_c')`` keeps the mode block
        of every term and only the diagonals of the interfaces (the "central Jacobi"
        preconditioner).  It is applied exactly when the operator core has at most one
        block that is not a multiple of the identity (Kronecker sums: Laplacians, chains
        with one-site terms) and that block has real eigenvalues: with ``T = V diag(t)
        V^-1``, ``P`` is ``V (alpha_ab t + beta_ab) V^-1`` on the mode of every pair of rank
        indices ``(a, b)``.  ``cache`` (a dict per operator core) keeps the
        eigendecomposition between calls.  Cost per application: two products with
        ``V`` and ``V^-1``, ``O(r^2 n^2)``, the price of one product with ``B``.
        """
        xp = self.xp
        if self.left.shape[0] != self.left.shape[2] or self.right.shape[0] != self.right.shape[2]:
            return None
        dense = [(key, val if kind == "dense" else val[1])
                 for key, (kind, val) in self.blocks.items() if kind in ("dense", "band")]
        if len(dense) > 1 or self.out_shape[1] != self.in_shape[1]:
            return None
        ldiag = xp.diagonal(self.left, axis1=0, axis2=2)      # (ra, r0)
        rdiag = xp.diagonal(self.right, axis1=0, axis2=2)     # (ra1, r1)
        beta = 0
        for (c, c2), (kind, val) in self.blocks.items():
            if kind == "eye":
                beta = beta + val * ldiag[c][:, None] * rdiag[c2][None, :]
        if not dense:
            if isinstance(beta, int):
                return None
            den = _guard(beta)[:, None, :]
            return lambda y: y / (den if y.ndim == 3 else den[..., None])
        (c, c2), mat = dense[0]
        if "eig" not in cache:
            host = to_host(mat)
            t, v = np.linalg.eig(host)
            ok = bool(np.all(np.abs(t.imag) <= 1e-12 * max(np.abs(t).max(), 1e-300)))
            if ok and host.dtype.kind != "c":
                t, v = t.real, v.real
            if ok:
                try:
                    vinv = np.linalg.inv(v)
                except np.linalg.LinAlgError:
                    ok = False
            if ok and np.linalg.cond(v) > 1e8:   # far from normal: not worth it
                ok = False
            cache["eig"] = None if not ok else (xp.asarray(t.astype(host.dtype)),
                                                xp.asarray(v.astype(host.dtype)),
                                                xp.asarray(vinv.astype(host.dtype)))
        if cache["eig"] is None:
            return None
        t, v, vinv = cache["eig"]
        alpha = ldiag[c][:, None] * rdiag[c2][None, :]            # (r0, r1)
        den = alpha[:, None, :] * t[None, :, None] + (
            beta[:, None, :] if not isinstance(beta, int) else 0)  # (r0, n, r1)
        den = _guard(den)

        def apply(y):
            if y.ndim == 4:
                z = xp.stack([apply(y[..., q]) for q in range(y.shape[3])], axis=3)
                return z
            z = xp.matmul(vinv, y) / den                          # (a, i, b)
            return xp.matmul(v, z)

        return apply

    def dense(self):
        """The ``N x N`` matrix of ``B`` (memory ``N^2``: for small local problems)."""
        xp = self.xp
        t = xp.tensordot(self.left, self.core, axes=(1, 0))       # (a', a, i, j, c')
        t = xp.tensordot(t, self.right, axes=(4, 1))              # (a', a, i, j, b', b)
        t = t.transpose(0, 2, 4, 1, 3, 5)
        mat = t.reshape(self.shape)
        return mat * self.scale if self.scale != 1.0 else mat


def _guard(den):
    """Denominators with the (near-)zeros replaced by the largest magnitude."""
    xp = get_xp(den)
    big = abs(den).max()
    return xp.where(abs(den) <= 1e-13 * big, big, den)


def _band_apply(band, t, m):
    """``T @ t`` along axis 1 for a banded ``T`` given as ``[(offset, diagonal), ...]``."""
    xp = get_xp(t)
    n = t.shape[1]
    out = xp.zeros((t.shape[0], m, t.shape[2]), dtype=t.dtype)
    for off, diag in band:
        lo, hi = max(0, -off), min(m, n - off)        # rows i with T[i, i + off] stored
        out[:, lo:hi, :] += diag[None, :, None] * t[:, lo + off:hi + off, :]
    return out


def _bands(blk):
    """``[(offset, diagonal)]`` of the non-zero diagonals of a host block, or None when a
    banded product would not be at least 4x cheaper than the dense one."""
    m, n = blk.shape
    offsets = [o for o in range(-(m - 1), n) if np.any(np.diagonal(blk, o))]
    if 4 * len(offsets) > min(m, n):
        return None
    out = []
    for o in offsets:
        lo, hi = max(0, -o), min(m, n - o)
        out.append((o, blk[np.arange(lo, hi), np.arange(lo, hi) + o]))
    return out


def classify_blocks(core):
    """For an operator core ``(ra, m, n, ra1)``: ``{(c, c'): (kind, ...)}`` over its non-zero
    blocks: ``('eye', s)`` where the block is ``s`` times the identity, ``('band', diagonals,
    block)`` where it has few non-zero diagonals (applied diagonal by diagonal, ``O(bw n)``
    per column instead of ``O(n^2)``), ``('dense', block)`` otherwise.

    One host transfer of the core (operator cores are small and are classified once per
    solve)."""
    xp = get_xp(core)
    host = to_host(core)
    ra, m, n, ra1 = host.shape
    out = {}
    eye = np.eye(m, n, dtype=host.dtype) if m == n else None
    for c in range(ra):
        for c2 in range(ra1):
            blk = host[c, :, :, c2]
            if not blk.any():
                continue
            if eye is not None:
                s = blk[0, 0]
                if np.array_equal(blk, s * eye):
                    out[(c, c2)] = ("eye", s.item())
                    continue
            band = _bands(blk)
            if band is not None:
                out[(c, c2)] = ("band", ([(o, xp.asarray(v)) for o, v in band],
                                         xp.ascontiguousarray(core[c, :, :, c2])))
                continue
            out[(c, c2)] = ("dense", xp.ascontiguousarray(core[c, :, :, c2]))
    return out


# NumPy's own BLAS and LAPACK only, in the hot loops: alternating them with SciPy's (a second
# OpenBLAS with its own spinning thread pool, see tensortrain._backend.matmul) made the
# sweeps up to 20x slower on a busy two-core machine.

def norm(v):
    """``||v||_F`` as a host float, without BLAS (a sum of squares of the entries)."""
    if v.dtype.kind == "c":
        return math.sqrt(float(to_host((v.real ** 2).sum() + (v.imag ** 2).sum())))
    return math.sqrt(float(to_host((v * v).sum())))


def svd(a):
    """Thin SVD ``(u, s, vh)`` by the array module's LAPACK (SciPy's as a fallback)."""
    try:
        return get_xp(a).linalg.svd(a, full_matrices=False)
    except np.linalg.LinAlgError:   # pragma: no cover - gesdd not converging
        return _backend.svd(a)


def qr(a):
    """Thin QR by the array module's LAPACK."""
    return get_xp(a).linalg.qr(a)


def _host_norm(v):
    return norm(v)


def solve_dense(op, rhs):
    """Direct solve of ``B y = rhs`` (``rhs`` a core); a singular ``B`` falls back to least
    squares.  Returns ``(y, 0)``."""
    xp = op.xp
    mat = op.dense()
    b = rhs.reshape(-1)
    try:
        y = xp.linalg.solve(mat, b)
        ok = bool(to_host(xp.isfinite(y).all()))
    except np.linalg.LinAlgError:
        ok = False
    if not ok:
        y = xp.linalg.lstsq(mat, b, rcond=None)[0]
    return y.reshape(op.in_shape), 0



def _start(rhs, y0):
    """The flat right-hand side, a flat copy of the start and ``||rhs||`` (host float) of a
    Krylov solve."""
    b = rhs.reshape(-1)
    return b, y0.reshape(-1).copy(), _host_norm(b)


def gmres(op, rhs, y0, tol, maxiter, restart=20, prec=None):
    """Restarted GMRES for ``B y = rhs`` from ``y0``, to ``||B y - rhs|| <= tol ||rhs||``.

    Arnoldi with classical Gram-Schmidt (matrix-vector products against the stored basis,
    on the device), repeated once where it cancels (the DGKS criterion); the Hessenberg least-squares problem (a few
    dozen scalars) is solved on the host with Givens rotations.  ``prec`` (a callable on
    cores) is applied on the right.  At most ``maxiter`` operator products.  Returns
    ``(y, products)``.
    """
    xp = op.xp
    b, y, bnorm = _start(rhs, y0)
    if bnorm == 0:
        return xp.zeros_like(y).reshape(op.in_shape), 0
    target = tol * bnorm
    used = 0
    dt = b.dtype
    cplx = dt.kind == "c"
    hdt = np.result_type(dt, np.float64)
    while used < maxiter:
        r = b - op.matvec(y)
        used += 1
        beta = _host_norm(r)
        if beta <= target or not math.isfinite(beta):
            break
        m = min(restart, maxiter - used)
        if m <= 0:
            break
        basis = xp.empty((m + 1, b.size), dtype=dt)     # rows: the Krylov basis
        basis[0] = r / beta
        h = np.zeros((m + 1, m), dtype=hdt)
        cs = np.zeros(m, dtype=hdt)
        sn = np.zeros(m, dtype=hdt)
        g = np.zeros(m + 1, dtype=hdt)
        g[0] = beta
        k = 0
        for j in range(m):
            if prec is None:
                w = op.matvec(basis[j])
            else:
                w = op.matvec(prec(basis[j].reshape(op.in_shape)).reshape(-1))
            used += 1
            v = basis[:j + 1]
            vh = v.conj() if cplx else v
            w_norm = norm(w)
            c1 = vh @ w
            w = w - c1 @ v
            hn = norm(w)
            if hn < 0.7 * w_norm:           # cancellation: orthogonalize once more (DGKS)
                c2 = vh @ w
                w = w - c2 @ v
                c1 = c1 + c2
                hn = norm(w)
            h[:j + 1, j] = to_host(c1)
            h[j + 1, j] = hn
            for i in range(j):     # the previous rotations, applied to column j
                t = cs[i] * h[i, j] + sn[i] * h[i + 1, j]
                h[i + 1, j] = -np.conj(sn[i]) * h[i, j] + cs[i] * h[i + 1, j]
                h[i, j] = t
            a, bb = h[j, j], h[j + 1, j]
            den = math.hypot(abs(a), abs(bb))
            if den == 0:
                cs[j], sn[j] = 1.0, 0.0
            else:
                cs[j] = abs(a) / den
                sn[j] = (a / abs(a) if abs(a) > 0 else 1.0) * np.conj(bb) / den
            h[j, j] = cs[j] * a + sn[j] * bb
            h[j + 1, j] = 0.0
            g[j + 1] = -np.conj(sn[j]) * g[j]
            g[j] = cs[j] * g[j]
            k = j + 1
            if abs(g[j + 1]) <= target or hn == 0 or used >= maxiter:
                break
            basis[j + 1] = w / dt.type(hn) if dt.kind == "c" else w / hn
        coef = np.linalg.lstsq(np.triu(h[:k, :k]), g[:k], rcond=None)[0]
        step = xp.asarray(coef.astype(dt, copy=False)) @ basis[:k]
        y = y + (step if prec is None else prec(step.reshape(op.in_shape)).reshape(-1))
    return y.reshape(op.in_shape), used


def cg(op, rhs, y0, tol, maxiter):
    """Conjugate gradients for Hermitian positive definite ``B``, from ``y0``, to
    ``||B y - rhs|| <= tol ||rhs||``; at most ``maxiter`` products.  Returns
    ``(y, products)``."""
    xp = op.xp
    b, y, bnorm = _start(rhs, y0)
    if bnorm == 0:
        return xp.zeros_like(y).reshape(op.in_shape), 0
    r = b - op.matvec(y)
    used = 1
    p = r.copy()
    rr = float(to_host(xp.vdot(r, r).real))
    while used < maxiter and math.sqrt(rr) > tol * bnorm:
        q = op.matvec(p)
        used += 1
        pq = to_host(xp.vdot(p, q))
        if not abs(pq) > 0:
            break
        alpha = rr / pq
        y = y + alpha * p
        r = r - alpha * q
        rr_new = float(to_host(xp.vdot(r, r).real))
        p = r + (rr_new / rr) * p
        rr = rr_new
    return y.reshape(op.in_shape), used


def _pick(w, k, which):
    """Indices of the ``k`` wanted eigenvalues of the ascending host array ``w``."""
    if which == "SA":
        return np.arange(k)
    return np.arange(len(w) - 1, len(w) - 1 - k, -1)


def eig_dense(op, k, which):
    """The ``k`` smallest (``'SA'``) or largest (``'LA'``) eigenpairs of the Hermitian part
    of the dense ``B``.  Returns ``(values (host), vectors (N, k), ||B||_2)``."""
    xp = op.xp
    mat = op.dense()
    mat = (mat + mat.conj().T) / 2
    n = mat.shape[0]
    if xp is np and k < n:
        # only the wanted end (LAPACK's MRRR, O(N^2 k) after the reduction) and the one
        # eigenvalue at the other end, for ||B||_2: several times faster than all pairs
        import scipy.linalg as sl  # noqa: PLC0415

        want = [0, k - 1] if which == "SA" else [n - k, n - 1]
        other = [n - 1, n - 1] if which == "SA" else [0, 0]
        w, v = sl.eigh(mat, subset_by_index=want, driver="evr")
        far = sl.eigh(mat, eigvals_only=True, subset_by_index=other, driver="evr")
        if which != "SA":
            w, v = w[::-1], v[:, ::-1]
        return w, np.ascontiguousarray(v), float(max(np.max(np.abs(w)), np.max(np.abs(far))))
    w, v = xp.linalg.eigh(mat)
    wh = to_host(w)
    idx = _pick(wh, k, which)
    return wh[idx], v[:, xp.asarray(idx)], float(np.max(np.abs(wh)))


def _orth(v):
    xp = get_xp(v)
    q, r = xp.linalg.qr(v)
    d = to_host(abs(xp.diagonal(r)))
    keep = d > 1e-12 * max(float(d.max()) if d.size else 0.0, 1e-300)
    if not keep.all():
        q = q[:, xp.asarray(np.nonzero(keep)[0])]
    return q


def lobpcg(op, x0, k, which, tol, maxiter):
    """Block LOBPCG (no preconditioner) for the ``k`` extreme eigenpairs of Hermitian ``B``,
    started from the columns of ``x0`` (``N x k``); stops when every residual
    ``||B x - l x||`` is at most ``tol * max|l|`` or after ``maxiter`` block products.

    The search space ``[X, W, P]`` is orthonormalized by QR before each Rayleigh-Ritz step,
    which keeps the method stable when the warm start is already accurate.  Returns
    ``(values (host), vectors (N, k), products)``.
    """
    xp = op.xp
    sign = 1.0 if which == "SA" else -1.0
    x = _orth(x0)
    if x.shape[1] < k:   # a degenerate start: complete it with random directions
        rng = np.random.default_rng(x.shape[0])
        extra = xp.asarray(rng.standard_normal((x.shape[0], k - x.shape[1])).astype(x.dtype))
        x = _orth(xp.concatenate([x, extra], axis=1))
    ax = op.matvec(x)
    hx = x.conj().T @ ax
    w, v = xp.linalg.eigh(sign * (hx + hx.conj().T) / 2)
    x, ax = x @ v, ax @ v
    lam = sign * to_host(w)
    p = None
    used = 1
    for _ in range(maxiter):
        res = ax - x * xp.asarray(lam.astype(x.real.dtype))[None, :]
        rn = to_host(xp.linalg.norm(res, axis=0))
        scale = max(float(np.max(np.abs(lam))), 1e-300)
        if np.all(rn <= tol * scale):
            break
        parts = [x, res] if p is None else [x, res, p]
        s = _orth(xp.concatenate(parts, axis=1))
        a_s = op.matvec(s)
        used += 1
        hs = s.conj().T @ a_s
        w, v = xp.linalg.eigh(sign * (hs + hs.conj().T) / 2)
        v = v[:, :k]
        x_new = s @ v
        ax_new = a_s @ v
        # the implicit direction: the part of the update outside the old X
        p = x_new - x @ (x.conj().T @ x_new)
        pn = to_host(xp.linalg.norm(p, axis=0))
        good = pn > 1e-14
        p = p[:, xp.asarray(np.nonzero(good)[0])] if good.any() else None
        x, ax = x_new, ax_new
        lam = sign * to_host(w[:k])
    return lam, x, used

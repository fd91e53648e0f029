"""Riemannian geometry of the manifold of TTs with fixed ranks.

The TTs of shape ``(n_1, ..., n_d)`` and TT-ranks ``(1, r_1, ..., r_{d-1}, 1)`` form a smooth
manifold.  At a point ``x`` write ``x = U_1 ... U_{d-1} S_d`` with left-orthogonal cores
``U_k`` and also ``x = S_1 V_2 ... V_d`` with right-orthogonal cores ``V_k``.  Every tangent
vector at ``x`` is, uniquely,

    xi = sum_k U_1 ... U_{k-1} delta_k V_{k+1} ... V_d

with *delta cores* ``delta_k`` of the shape of ``x``'s cores and the gauge conditions
``U_k^H delta_k = 0`` (left unfoldings) for ``k < d``.  Under the gauge the ``d`` terms are
mutually orthogonal, so ``<xi, eta> = sum_k <delta_k, eta_k>``: inner products and norms of
tangent vectors at the same point cost ``O(d n r^2)``, and ``+``, scalar ``*`` act on the delta
cores alone.  As a TT, ``xi`` has ranks ``2 r`` (:meth:`TangentVector.to_tt`).

This module holds the tools of optimization on that manifold (Lubich, Oseledets and
Vandereycken 2015; Steinlechner 2016; the ``riemannian`` module of t3f):

* :class:`TangentSpace` (the orthogonal cores of a point, computed once and reused);
* :func:`project` of a TT, a sum of TTs or a sparse set of entries (:class:`SparseTensor`)
  onto a tangent space, and :func:`project_matmul` of ``A @ b`` without forming it;
* :class:`TangentVector` with ``+``, ``-``, scalar ``*``, :meth:`~TangentVector.dot`,
  :meth:`~TangentVector.norm`, :meth:`~TangentVector.to_tt` and :meth:`~TangentVector.at`
  (entries at many indices at once);
* :func:`retract` (rounding back to the ranks), :func:`transport` (by projection),
  :func:`gradient` (the Riemannian gradient from a Euclidean one);
* :func:`gather` (entries of a TT at many indices, vectorized over the samples);
* :func:`minimize`: Riemannian gradient descent or conjugate gradients for any differentiable
  loss whose Euclidean gradient the caller supplies as a TT (or a sum of TTs, or sampled
  entries).

Everything runs unchanged on NumPy and CuPy.  The interfaces of the projection are those of
:class:`tensortrain._sweep.Environments`, kept scaled by exact powers of two, and the per-sample
interfaces of the sparse tools are scaled row by row the same way, so no intermediate
overflows or underflows for any ``d``.
"""

from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import _scaling
from ._backend import get_xp, is_array, to_host
from ._base import is_scalar
from ._samples import (  # noqa: F401 - re-exported: completion.py uses these names from here
    SparseTensor,
    _check_indices,
    _check_values,
    _left_rows,
    _right_rows,
    _row_normalize,
    _SampleFrame,
    _segment_sum,
)
from ._sweep import Environments
from ._validation import check_int, check_max_rank
from .decompositions import orthogonal_sweep
from .errors import ConvergenceWarning, RankError, ShapeError, TTError
from .matrix import TTMatrix
from .tensor import TTTensor

__all__ = [
    "MinimizeInfo",
    "SparseTensor",
    "TangentSpace",
    "TangentVector",
    "gather",
    "gradient",
    "minimize",
    "project",
    "project_matmul",
    "retract",
    "transport",
]


# ---- points and their tangent spaces ------------------------------------------------------------
class TangentSpace:
    """The tangent space of the fixed-rank manifold at a TT ``x``.

    Holds the left-orthogonal cores ``U_1 .. U_{d-1}``, the right-orthogonal cores
    ``V_2 .. V_d`` and the last core ``S_d`` of the left-orthogonal form (``x = U_1 ... U_{d-1}
    S_d``), computed once by QR sweeps and reused by every projection at ``x``.  Ranks that are
    larger than the modes allow are reduced by the sweeps (exactly: the tensor is unchanged).

    Complexity: ``O(d n r^3)`` time (three QR sweeps), ``O(d n r^2)`` memory.

    Parameters
    ----------
    x : TTTensor
        The point.

    Examples
    --------
    >>> import tensortrain as tt
    >>> x = tt.random_tensor((4, 5, 6), ranks=3, rng=0)
    >>> T = tt.riemannian.TangentSpace(x)
    >>> T.ranks
    (1, 3, 3, 1)
    """

    def __init__(self, x):
        if not isinstance(x, TTTensor):
            raise TypeError(f"a tangent space needs a TTTensor point, got {type(x).__name__}")
        cores = list(x.cores)
        if not bool(to_host(get_xp(*cores).stack(
                [get_xp(c).isfinite(c).all() for c in cores]).all())):
            raise TTError("the point x has NaN or Inf in its cores")
        # left then right then left: the two orthogonal forms then have the same ranks, and
        # x == left * 2**(e1 + e2 + e3) exactly (each sweep returns its input's scale)
        first, e1, _ = orthogonal_sweep(cores, "left")
        right, e2, _ = orthogonal_sweep(first, "right")
        left, e3, _ = orthogonal_sweep(right, "left")
        d = len(cores)
        self.x = x
        self.d = d
        self.shape = x.shape
        self.U = tuple(left[:-1])
        self.V = tuple(right[1:])
        with np.errstate(over="ignore", under="ignore"):
            self.S = _scaling.ldexp(left[-1], e1 + e2 + e3)
        self._right_first = right[0]
        self.ranks = (1, *tuple(int(u.shape[2]) for u in self.U), 1)

    @property
    def dtype(self):
        return self.S.dtype

    @property
    def xp(self):
        return get_xp(self.S)

    def point(self):
        """The point ``x`` as a TT in left-orthogonal form (``U_1 ... U_{d-1} S_d``)."""
        return TTTensor._trusted((*self.U, self.S))

    def zero(self):
        """The zero tangent vector."""
        xp = self.xp
        return TangentVector(self, tuple(xp.zeros(self._core_shape(k), dtype=self.dtype)
                                         for k in range(self.d)))

    def as_tangent(self):
        """``x`` itself as a tangent vector at ``x`` (the manifold is a cone)."""
        xp = self.xp
        deltas = [xp.zeros(self._core_shape(k), dtype=self.dtype) for k in range(self.d - 1)]
        return TangentVector(self, (*deltas, self.S.copy()))

    def _core_shape(self, k):
        return (self.ranks[k], self.shape[k], self.ranks[k + 1])

    def _gauge(self, k, y):
        """``(I - U_k U_k^H) y`` on left unfoldings (``k < d - 1``)."""
        u = self.U[k]
        r0, n, r1 = u.shape
        um = u.reshape(r0 * n, r1)
        ym = y.reshape(r0 * n, r1)
        xp = get_xp(um)
        uh = xp.conj(um.T) if um.dtype.kind == "c" else um.T
        return (ym - um @ (uh @ ym)).reshape(r0, n, r1)

    def __repr__(self):
        return f"TangentSpace(shape={self.shape}, ranks={self.ranks}, dtype={self.dtype})"


def _frob(a) -> float:
    xp = get_xp(a)
    b, e = _scaling.normalize(a.astype(_scaling.wide_dtype(a.dtype), copy=False))
    s = float(to_host(xp.sqrt(xp.sum(abs(b) ** 2))))
    return _scaling.scalar_ldexp(s, e)


def _space(x, where="x"):
    if isinstance(x, TangentSpace):
        return x
    if isinstance(x, TTTensor):
        return TangentSpace(x)
    raise TypeError(f"{where} must be a TTTensor or a TangentSpace, got {type(x).__name__}")


# ---- tangent vectors ----------------------------------------------------------------------------
class TangentVector:
    """A tangent vector at a point ``x``: the delta cores of its gauge-fixed representation.

    Made by :func:`project`, :func:`gradient`, :func:`transport` or the methods of
    :class:`TangentSpace`; not meant to be built by hand.  ``xi + eta``, ``xi - eta`` and
    ``xi.dot(eta)`` need tangent vectors at the same point: made from the same
    :class:`TangentSpace` or the same TTTensor object (whose orthogonalization is
    deterministic); otherwise :class:`~tensortrain.errors.TTError`.

    Attributes
    ----------
    space : TangentSpace
        Where the vector lives.
    deltas : tuple of arrays
        ``d`` delta cores ``(r_{k-1}, n_k, r_k)``; all but the last satisfy the gauge
        ``U_k^H delta_k = 0``.
    """

    __slots__ = ("deltas", "space")
    __array_ufunc__ = None

    def __init__(self, space, deltas):
        self.space = space
        self.deltas = tuple(deltas)

    # ---- structure
    @property
    def shape(self):
        return self.space.shape

    @property
    def d(self):
        return self.space.d

    @property
    def dtype(self):
        return self.deltas[0].dtype

    @property
    def ranks(self):
        """The ranks of :meth:`to_tt` (``2 r`` on the inner bonds)."""
        r = self.space.ranks
        return (1, *tuple(2 * q for q in r[1:-1]), 1)

    def __repr__(self):
        return (f"TangentVector(shape={self.shape}, point_ranks={self.space.ranks}, "
                f"dtype={self.dtype})")

    # ---- algebra
    def _check_same(self, other, op):
        if not isinstance(other, TangentVector):
            return False
        if other.space is not self.space and other.space.x is not self.space.x:
            raise TTError(f"'{op}' needs tangent vectors at the same point (the same "
                          f"TangentSpace object); move one with transport(xi, y) first")
        return True

    def __add__(self, other):
        if not self._check_same(other, "+"):
            return NotImplemented
        pairs = zip(self.deltas, other.deltas, strict=True)
        return TangentVector(self.space, [a + b for a, b in pairs])

    def __sub__(self, other):
        if not self._check_same(other, "-"):
            return NotImplemented
        pairs = zip(self.deltas, other.deltas, strict=True)
        return TangentVector(self.space, [a - b for a, b in pairs])

    def __neg__(self):
        return TangentVector(self.space, [-a for a in self.deltas])

    def __pos__(self):
        return self

    def __mul__(self, alpha):
        if not is_scalar(alpha):
            return NotImplemented
        return TangentVector(self.space, [a * alpha for a in self.deltas])

    __rmul__ = __mul__

    def __truediv__(self, alpha):
        if not is_scalar(alpha):
            return NotImplemented
        return TangentVector(self.space, [a / alpha for a in self.deltas])

    def __bool__(self):
        raise TypeError("the truth value of a TangentVector is ambiguous")

    def dot(self, other):
        """``<self, other> = sum(conj(self) * other)`` for tangent vectors at the same point.

        Complexity: ``O(d n r^2)`` (the gauge makes the ``d`` terms orthogonal).
        """
        if not isinstance(other, TangentVector):
            raise TypeError(f"dot needs two TangentVectors, got {type(other).__name__}")
        self._check_same(other, "dot")
        return _deltas_dot(self.deltas, other.deltas)

    def norm(self) -> float:
        """Frobenius norm.  Complexity: ``O(d n r^2)``."""
        return _deltas_norm(self.deltas)

    def to_tt(self):
        """The tangent vector as a TTTensor of ranks ``2 r`` (``r`` for ``d = 1``).

        Complexity: ``O(d n r^2)``.
        """
        sp = self.space
        d = sp.d
        D = self.deltas
        if d == 1:
            return TTTensor._trusted((D[0],))
        xp = get_xp(D[0])
        dtype = np.result_type(D[0].dtype, sp.dtype)
        cores = [xp.concatenate([D[0], sp.U[0]], axis=2).astype(dtype, copy=False)]
        for k in range(1, d - 1):
            v = sp.V[k - 1]
            top = xp.concatenate([v, xp.zeros_like(v)], axis=2)
            bottom = xp.concatenate([D[k], sp.U[k]], axis=2)
            cores.append(xp.concatenate([top, bottom], axis=0).astype(dtype, copy=False))
        cores.append(xp.concatenate([sp.V[d - 2], D[d - 1]], axis=0).astype(dtype, copy=False))
        return TTTensor._trusted(cores)

    def full(self):
        """The dense tensor (small sizes only)."""
        return self.to_tt().full()

    def at(self, indices):
        """Entries of the tangent vector at the rows of ``indices`` ``(n_samples, d)``.

        Complexity: ``O(n_samples d r^2)``, vectorized over the samples.
        """
        idx = _check_indices(indices, self.shape, get_xp(self.deltas[0]))
        return _SampleFrame(self.space, idx).tangent_values(self.deltas)


def _deltas_norm(a) -> float:
    """``sqrt(sum_k ||a_k||^2)`` with every core scaled by a power of two (no overflow)."""
    xp = get_xp(*a)
    ea = _scaling.core_exponents(a)
    parts = [xp.sum(abs(_scaling.ldexp(x.astype(_scaling.wide_dtype(x.dtype), copy=False),
                                       -p)) ** 2) for x, p in zip(a, ea, strict=True)]
    vals = to_host(xp.stack(parts)).tolist()
    top = max(ea)
    total = sum(v * 4.0 ** (p - top) for v, p in zip(vals, ea, strict=True) if p - top > -500)
    return _scaling.scalar_ldexp(math.sqrt(total), top)


def _deltas_dot(a, b):
    xp = get_xp(*a, *b)
    ea = _scaling.core_exponents(a)
    eb = _scaling.core_exponents(b)
    parts = []
    for x, y, p, q in zip(a, b, ea, eb, strict=True):
        wx = _scaling.ldexp(x.astype(_scaling.wide_dtype(x.dtype), copy=False), -p)
        wy = _scaling.ldexp(y.astype(_scaling.wide_dtype(y.dtype), copy=False), -q)
        parts.append(xp.vdot(wx.ravel(), wy.ravel()))
    vals = to_host(xp.stack(parts))
    total = 0.0
    for v, p, q in zip(vals.tolist(), ea, eb, strict=True):
        total = total + _scaling.scalar_ldexp(v, p + q)
    return total


# ---- projections --------------------------------------------------------------------------------
def _project_cores(sp, z_cores, op_cores=None):
    """Delta cores of the projection of the TT ``z`` (or of ``op @ z``) onto ``sp``."""
    d = sp.d
    xp = get_xp(sp.S)
    z = list(z_cores)
    op = None if op_cores is None else list(op_cores)
    zexp = []
    for k in range(d):
        z[k], e = _scaling.normalize(z[k])
        zexp.append(e)
    if op is not None:
        for k in range(d):
            op[k], e = _scaling.normalize(op[k])
            zexp.append(e)
    total_z = _scaling.host_exponent_sum(zexp)
    left_bra = [*sp.U, sp.S]
    right_bra = [sp.S if d == 1 else sp._right_first, *sp.V]
    envl = Environments(left_bra, z, op)
    envr = Environments(right_bra, z, op)
    envl.build_left(d - 1)
    envr.build_right(1)
    deltas = []
    for k in range(d):
        lft, rgt = envl.left(k), envr.right(k + 1)
        if op is None:
            t = xp.tensordot(lft, z[k], axes=(1, 0))                       # (a, i, c)
            y = xp.tensordot(t, rgt, axes=(2, 1))                          # (a, i, a2)
        else:
            t = xp.tensordot(lft, z[k], axes=(2, 0))                       # (a, c, j, b2)
            t = xp.tensordot(t, op[k], axes=([1, 2], [0, 2]))              # (a, b2, i, c2)
            y = xp.tensordot(t, rgt, axes=([1, 3], [2, 1]))                # (a, i, a2)
        if k < d - 1:
            y = sp._gauge(k, y)
        deltas.append((y, envl.left_exp(k) + envr.right_exp(k + 1)))
    # every term carries the scale of z and of the interfaces: put back exactly
    out = []
    for y, e in deltas:
        with np.errstate(over="ignore", under="ignore"):
            out.append(xp.ascontiguousarray(_scaling.ldexp(y, e + total_z)))
    return out


def project(z, x):
    """Orthogonal projection of ``z`` onto the tangent space at ``x``.

    Parameters
    ----------
    z : TTTensor, list of TTTensor, SparseTensor, ``(indices, values)`` or TangentVector
        A TT; a sum of TTs (projected term by term, never added up as a TT); a sparse tensor
        (its duplicate indices add up); a tangent vector at another point (that is
        :func:`transport`).
    x : TTTensor or TangentSpace
        The point; pass a :class:`TangentSpace` to reuse its orthogonalization.

    Returns
    -------
    TangentVector

    Complexity: ``O(d n r (r + r_z) r_z)`` for a TT ``z`` of ranks ``r_z``;
    ``O(n_samples d r^2)`` for sparse entries (no dense tensor is formed).

    Examples
    --------
    >>> import numpy as np, tensortrain as tt
    >>> x = tt.random_tensor((3, 4, 5), ranks=2, rng=0)
    >>> z = tt.random_tensor((3, 4, 5), ranks=3, rng=1)
    >>> p = tt.riemannian.project(z, x)
    >>> q = tt.riemannian.project(p.to_tt(), x)            # a projection is idempotent
    >>> bool((p - q).norm() < 1e-12 * p.norm())
    True
    """
    sp = _space(x)
    if isinstance(z, TangentVector):
        z = z.to_tt()
    if isinstance(z, tuple) and len(z) == 2 and is_array(z[1]) and not isinstance(z[0], TTTensor):
        z = SparseTensor(z[0], z[1], sp.shape)
    if isinstance(z, SparseTensor):
        if z.shape != sp.shape:
            raise ShapeError(f"project: z has shape {z.shape} but x has shape {sp.shape}")
        get_xp(z.values, sp.S)
        return _SampleFrame(sp, z.indices).project(z.values)
    if isinstance(z, (list, tuple)):
        if not z:
            raise TTError("project: an empty list of TTs")
        out = None
        for term in z:
            p = project(term, sp)
            out = p if out is None else out + p
        return out
    if isinstance(z, TTMatrix):
        raise TypeError("project needs a TTTensor z; for a TT-matrix product A @ b use "
                        "project_matmul(x, A, b)")
    if not isinstance(z, TTTensor):
        raise TypeError(f"project: z must be a TTTensor, a list of TTTensors, a SparseTensor or a "
                        f"TangentVector, got {type(z).__name__}")
    if z.shape != sp.shape:
        raise ShapeError(f"project: z has shape {z.shape} but x has shape {sp.shape}")
    get_xp(z.cores[0], sp.S)
    return TangentVector(sp, _project_cores(sp, z.cores))


def project_matmul(x, A, b):
    """Projection of the TT-matrix product ``A @ b`` onto the tangent space at ``x``, without
    forming ``A @ b`` (whose ranks would be ``r_A r_b``).

    Complexity: ``O(d n^2 r r_A r_b (r + r_b))``.

    Parameters
    ----------
    x : TTTensor or TangentSpace
    A : TTMatrix
        Row modes equal to ``x.shape``, column modes equal to ``b.shape`` (unpadded).
    b : TTTensor

    """
    sp = _space(x)
    if not isinstance(A, TTMatrix):
        raise TypeError(f"project_matmul: A must be a TTMatrix, got {type(A).__name__}")
    if not isinstance(b, TTTensor):
        raise TypeError(f"project_matmul: b must be a TTTensor, got {type(b).__name__}")
    if A.is_padded:
        raise ShapeError(f"project_matmul: A must not be padded (shape {A.shape}, padded shape "
                         f"{A.padded_shape}); build it with modes that cover its shape")
    if A.d != sp.d or A.row_modes != sp.shape or A.col_modes != b.shape:
        raise ShapeError(f"project_matmul: A has row modes {A.row_modes} and column modes "
                         f"{A.col_modes}; expected row modes {sp.shape} (x) and column modes "
                         f"{b.shape} (b)")
    get_xp(A.cores[0], b.cores[0], sp.S)
    return TangentVector(sp, _project_cores(sp, b.cores, A.cores))


def gradient(x, euclidean_grad):
    """The Riemannian gradient at ``x``: the projection of the Euclidean gradient.

    ``euclidean_grad`` is anything :func:`project` takes (a TT, a sum of TTs, sampled entries).
    """
    return project(euclidean_grad, x)


def transport(xi, y):
    """Vector transport of the tangent vector ``xi`` to the tangent space at ``y``, by
    projection (``xi`` as a TT of ranks ``2 r``, projected).

    Complexity: ``O(d n r^3)``.
    """
    if not isinstance(xi, TangentVector):
        raise TypeError(f"transport: xi must be a TangentVector, got {type(xi).__name__}")
    return project(xi.to_tt(), y)


def retract(x, xi, ranks=None):
    """Retraction ``R_x(xi)``: the TT ``x + xi`` (ranks ``2 r``) rounded back to ranks.

    Complexity: ``O(d n r^3)``.

    Parameters
    ----------
    x : TTTensor or TangentSpace
        The point ``xi`` is tangent at: the TTTensor or TangentSpace it was made from.
    xi : TangentVector
    ranks : int or sequence, optional
        Rank caps as ``max_rank`` of :meth:`TTTensor.round`; default the ranks of ``x``.

    """
    if not isinstance(xi, TangentVector):
        raise TypeError(f"retract: xi must be a TangentVector, got {type(xi).__name__}")
    sp = xi.space
    if x is not sp and x is not sp.x:
        if isinstance(x, (TTTensor, TangentSpace)):
            raise TTError("retract: xi is a tangent vector at another point; pass the TTTensor "
                          "or TangentSpace that xi was made at (xi.space)")
        raise TypeError(f"retract: x must be a TTTensor or a TangentSpace, got {type(x).__name__}")
    caps = sp.ranks[1:-1] if ranks is None else check_max_rank(ranks, sp.d)
    deltas = list(xi.deltas)
    deltas[-1] = deltas[-1] + sp.S
    y = TangentVector(sp, deltas).to_tt()
    if sp.d == 1:
        return y
    return y.round(max_rank=list(caps))


def gather(x, indices):
    """Entries of the TT ``x`` at the rows of ``indices`` ``(n_samples, d)``.

    Vectorized over the samples (one batched product per core, rows rescaled by powers of two
    so that no partial product overflows or underflows).

    Complexity: ``O(n_samples d r^2)`` time, ``O(n_samples r)`` memory.
    """
    if not isinstance(x, TTTensor):
        raise TypeError(f"gather: x must be a TTTensor, got {type(x).__name__}")
    idx = _check_indices(indices, x.shape, x.xp)
    return _gather(x.cores, idx)


def _gather(cores, idx):
    d = len(cores)
    row, e = _left_rows(cores, idx, d)[-1]
    with np.errstate(over="ignore", under="ignore"):
        return _scaling.ldexp(row[:, 0], e)


# ---- a general optimizer ------------------------------------------------------------------------
@dataclass(frozen=True)
class MinimizeInfo:
    """What :func:`minimize` did.

    Attributes
    ----------
    loss : list of float
        The loss at the start and after every iteration.
    grad_norm : list of float
        The Riemannian gradient's norm at the same points.
    iterations : int
    converged : bool
        The gradient norm fell to ``tol`` times its first value.
    reason : str
        ``'tolerance'``, ``'cap'`` or ``'line search'`` (no decrease found).
    """

    loss: list = field(default_factory=list)
    grad_norm: list = field(default_factory=list)
    iterations: int = 0
    converged: bool = False
    reason: str = ""


def _euclid_inner(xi, egrad):
    """``Re <xi, egrad>`` for the Euclidean gradient (equal to ``<xi, P egrad>``)."""
    return float(np.real(xi.dot(project(egrad, xi.space))))


def minimize(fun, x0, *, ranks=None, method="cg", max_iter=100, tol=1e-8, step=None,
             return_info=False):
    """Minimize a loss over TTs of fixed ranks by Riemannian gradient descent or CG.

    Parameters
    ----------
    fun : callable
        ``fun(x) -> (loss, egrad)``: the loss at the TTTensor ``x`` (a real number) and its
        Euclidean gradient as anything :func:`project` takes (a TT, a list of TTs whose sum is
        the gradient, a :class:`SparseTensor` of sampled entries).  For complex data the
        gradient is the one of real calculus, ``d loss / d conj(x)`` times 2.
    x0 : TTTensor
        The start; its ranks are kept (``ranks`` caps them further).
    ranks : int or sequence, optional
        Rank caps of the retraction (default the ranks of ``x0``).
    method : {'cg', 'gd'}
        Polak-Ribiere+ conjugate gradients (transport by projection, restarts when the
        direction is not a descent direction) or plain gradient descent.
    max_iter : int
        Hard cap on the iterations; hitting it warns with
        :class:`~tensortrain.errors.ConvergenceWarning`.
    tol : float
        Stop when the Riemannian gradient's norm is ``<= tol`` times its first value.
    step : float, optional
        A fixed step (no line search: ``x <- R_x(-step * grad)``).  By default an Armijo
        backtracking line search along the direction (at most 40 halvings, a trial step
        taken from the previous accepted one).
    return_info : bool
        Also return a :class:`MinimizeInfo`.

    Returns
    -------
    TTTensor, or (TTTensor, MinimizeInfo)

    Complexity: per iteration one call of ``fun``, one projection and one retraction
    (``O(d n r^3)`` plus the cost of projecting ``egrad``), times the line-search trials.

    Examples
    --------
    Fit a rank-2 TT to a rank-6 TT in the least-squares sense:

    >>> import tensortrain as tt
    >>> a = tt.random_tensor((3,) * 6, ranks=6, rng=0)
    >>> def fun(x):
    ...     return 0.5 * (x - a).norm() ** 2, [x, -1.0 * a]
    >>> x0 = tt.random_tensor((3,) * 6, ranks=2, rng=1)
    >>> x = tt.riemannian.minimize(fun, x0, max_iter=300, tol=1e-4)
    >>> bool(0.5 * (x - a).norm() ** 2 < fun(x0)[0])
    True
    """
    if not callable(fun):
        raise TypeError(f"minimize: fun must be callable, got {type(fun).__name__}")
    if not isinstance(x0, TTTensor):
        raise TypeError(f"minimize: x0 must be a TTTensor, got {type(x0).__name__}")
    if method not in ("cg", "gd"):
        raise TTError(f"minimize: method must be 'cg' or 'gd', got {method!r}")
    max_iter = _check_count(max_iter, "max_iter")
    tol = _check_tol(tol)
    if step is not None:
        if isinstance(step, bool) or not isinstance(step, numbers.Real) or not step > 0:
            raise TTError(f"minimize: step must be a positive number or None, got {step!r}")
        step = float(step)
    caps = x0.ranks[1:-1] if ranks is None else check_max_rank(ranks, x0.d)
    x = x0 if ranks is None else x0.round(max_rank=list(caps))
    loss, egrad = _call(fun, x)
    sp = TangentSpace(x)
    g = project(egrad, sp)
    gn = g.norm()
    info = {"loss": [loss], "grad_norm": [gn]}
    g0 = gn
    eta_prev = g_prev = None
    alpha = 1.0 if step is None else step
    reason = "cap"
    it = 0
    for it in range(1, max_iter + 1):
        if gn <= tol * g0 or gn == 0:
            reason = "tolerance"
            it -= 1
            break
        eta = -g
        if method == "cg" and eta_prev is not None:
            tg = transport(g_prev, sp)
            te = transport(eta_prev, sp)
            beta = max(0.0, float(np.real(g.dot(g - tg))) / (g_prev.norm() ** 2))
            eta = -g + beta * te
            if float(np.real(g.dot(eta))) >= 0:
                eta = -g
        slope = float(np.real(g.dot(eta)))
        if step is not None:
            x_new = retract(sp, step * eta, caps)
            loss_new, egrad_new = _call(fun, x_new)
        else:
            a = min(alpha * 2.0, 1e300)
            for _ in range(40):
                x_new = retract(sp, a * eta, caps)
                loss_new, egrad_new = _call(fun, x_new)
                if loss_new <= loss + 1e-4 * a * slope:
                    break
                a *= 0.5
            else:
                reason = "line search"
                it -= 1
                break
            alpha = a
        x, loss, egrad = x_new, loss_new, egrad_new
        g_prev, eta_prev = g, eta
        sp = TangentSpace(x)
        g = project(egrad, sp)
        gn = g.norm()
        info["loss"].append(loss)
        info["grad_norm"].append(gn)
    else:
        if gn <= tol * g0:
            reason = "tolerance"
    converged = reason == "tolerance"
    if reason == "cap":
        warnings.warn(f"minimize stopped at its cap of {max_iter} iterations with gradient norm "
                      f"{gn:.3g} > {tol:.3g} x the first ({g0:.3g}); loss {loss:.6g}",
                      ConvergenceWarning, stacklevel=2)
    if not return_info:
        return x
    return x, MinimizeInfo(info["loss"], info["grad_norm"], it, converged, reason)


def _call(fun, x):
    out = fun(x)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError(f"minimize: fun(x) must return (loss, euclidean_gradient), got "
                        f"{type(out).__name__}")
    loss, egrad = out
    loss = float(np.real(to_host(loss) if is_array(loss) else loss))
    return loss, egrad


def _check_count(value, where):
    return check_int(value, where, 1)


def _check_tol(tol, where="tol"):
    if isinstance(tol, bool) or not isinstance(tol, numbers.Real):
        raise TypeError(f"{where} must be a real number >= 0, got {type(tol).__name__} {tol!r}")
    tol = float(tol)
    if not tol >= 0:
        raise TTError(f"{where} must be a number >= 0, got {tol!r}")
    return tol


def _largest_ranks(shape):
    """The largest useful rank of every inner bond of a tensor of this shape."""
    d = len(shape)
    out = []
    for k in range(1, d):
        left = math.prod(shape[:k])
        right = math.prod(shape[k:])
        out.append(min(left, right))
    return tuple(out)


def _check_ranks_fit(ranks, shape, where="ranks"):
    """``ranks`` (int or per bond) as ``d - 1`` ints, refused above the largest useful rank."""
    caps = check_max_rank(ranks, len(shape))
    if caps is None:
        raise TypeError(f"{where} must be an int or one int per bond, got None")
    useful = _largest_ranks(shape)
    for k, (r, u) in enumerate(zip(caps, useful, strict=True)):
        if r > u:
            raise RankError(f"{where}: bond {k + 1} asks for rank {r}, but a tensor of shape "
                            f"{tuple(shape)} has rank at most {u} there "
                            f"(min of the products of the modes on either side)")
    return caps

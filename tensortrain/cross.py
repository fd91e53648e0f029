"""Cross approximation: a TT built from a few entries of a function or of an array.

:func:`cross` samples ``f`` at well chosen fibres and returns a :class:`~tensortrain.TTTensor`
that interpolates them.  The index sets are *nested* and only grow: at bond ``k`` the left
set ``I[k+1]`` is a subset of ``I[k] x range(n_k)`` and the right set ``J[k+1]`` a subset of
``range(n_{k+1}) x J[k+2]``, so every entry that was ever sampled for a fibre stays part of the
result and, with the cache, is never asked for again.  A half sweep visits the bonds; at each
one a few candidate fibres (``kick`` random columns on a sweep to the right, rows on a sweep to
the left) are screened on the pivots and a few random entries; those that show an error above
the tolerance are sampled in full, and the entries where the error is largest become new
pivots (a greedy, rank-revealing choice: the pivot matrices stay well conditioned).  The cores
are then formed by the ``C C[pivots]^{-1}`` interpolation formula of each bond's fibre matrix
``C`` (computed from ``C = Q R`` and corrected by one step of residual refinement).  Ranks grow
until the candidates show no error above the pivot tolerance.  A run that converges to
round-off is then *refined* (``refine``): one half sweep each way replaces the pivots of every
bond by a maxvol set, at the same ranks, and the cores are rebuilt on them.

Stopping needs two things after a half sweep: the relative change of the TT since the previous
half sweep ``<= eps`` *and* the relative error on a fixed random validation set of entries
``<= eps``; an evaluation budget and a cap on sweeps end every run (warning
:class:`~tensortrain.errors.ConvergenceWarning` with what was achieved).

Evaluation goes in batches (all the new entries a bond needs at once), optionally split into
chunks for an *executor*: any object with ``submit(fn, chunk) -> future`` (``future.result()``)
or ``map(fn, chunks)``, such as :class:`concurrent.futures.ThreadPoolExecutor` or a
``dask.distributed.Client``.  This module never imports Dask.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._backend import resolve_xp, to_host
from ._cross_core import _check_arity, _tt_entries
from ._cross_run import CrossInfo, _modes_or_raise, cross
from ._validation import check_float_dtype
from .errors import ShapeError, TTError
from .matrix import TTMatrix
from .shapes import choose_matrix_modes
from .tensor import TTTensor

__all__ = [
    "CrossInfo",
    "apply",
    "cross",
    "matrix_from_array",
    "matrix_from_function",
    "quadrature",
    "tensor_from_array",
    "tensor_from_function",
]

# ---- front ends ---------------------------------------------------------------------------------
def _is_grid_list(grids_or_modes):
    if isinstance(grids_or_modes, numbers.Integral):
        return False
    items = list(grids_or_modes)
    return any(not isinstance(g, numbers.Integral) for g in items)


def tensor_from_function(f, grids_or_modes, **kwargs):
    """A TTTensor from a function of coordinates (or of indices) by :func:`cross`.

    Complexity: that of :func:`cross`.

    Parameters
    ----------
    f : callable
        With grids: ``f(X)`` with ``X`` a float array ``(k, d)`` of points, row ``p`` the point
        ``(grids[0][i_1], ..., grids[d-1][i_d])``; with modes: ``f(idx)`` as in :func:`cross`.
        Returns ``k`` values.
    grids_or_modes : sequence of 1-D arrays, or sequence of int
        One grid per dimension (e.g. Chebyshev or Gauss-Legendre nodes), or the modes.
    **kwargs
        Passed to :func:`cross` (``eps``, ``max_rank``, ``executor``, ``return_info``, ...).

    Examples
    --------
    >>> import numpy as np
    >>> from tensortrain.cross import tensor_from_function
    >>> g = [np.linspace(0, 1, 11)] * 3
    >>> x = tensor_from_function(lambda X: np.exp(-X.sum(axis=1)), g, rng=0)
    >>> x.ranks
    (1, 1, 1, 1)
    """
    if not _is_grid_list(grids_or_modes):
        return cross(f, grids_or_modes, **kwargs)
    grids = []
    for k, g in enumerate(grids_or_modes):
        g = to_host(g) if not isinstance(g, (list, tuple)) else np.asarray(g)
        if g.ndim != 1 or g.size == 0:
            raise ShapeError(f"grids[{k}] must be a non-empty 1-D array, got shape {g.shape}")
        if g.dtype.kind not in "iuf":
            raise TypeError(f"grids[{k}] must hold real numbers, got dtype {g.dtype}")
        grids.append(g.astype(np.float64))
    _check_arity(f, 1, "f", "a float array (k, d) of points")
    xp = resolve_xp(kwargs.get("xp"))
    fun = _GridFunction(f, grids, xp)
    return cross(fun, [g.size for g in grids], **kwargs)


class _GridFunction:
    """``idx -> f(points)`` (a class, so that it pickles for process executors)."""

    def __init__(self, f, grids, xp):
        self.f, self.grids, self.xp = f, grids, xp

    def __call__(self, idx):
        idx = to_host(idx)
        pts = np.stack([g[idx[:, k]] for k, g in enumerate(self.grids)], axis=1)
        return self.f(pts if self.xp is np else self.xp.asarray(pts))


class _MatrixFunction:
    """Multi-indices over merged modes ``m_k n_k`` -> ``f(i, j)``; padding gives 0 unasked."""

    def __init__(self, f, shape, row_modes, col_modes, xp, dtype):
        self.f, self.shape, self.xp, self.dtype = f, shape, xp, dtype
        self.row_modes, self.col_modes = row_modes, col_modes

    def rows_cols(self, idx):
        idx = to_host(idx)
        cm = np.asarray(self.col_modes, dtype=np.int64)
        ik, jk = np.divmod(idx, cm)
        i = np.zeros(idx.shape[0], dtype=np.int64)
        j = np.zeros(idx.shape[0], dtype=np.int64)
        for k, (m, n) in enumerate(zip(self.row_modes, self.col_modes, strict=True)):
            i = i * m + ik[:, k]
            j = j * n + jk[:, k]
        return i, j

    def __call__(self, idx):
        i, j = self.rows_cols(idx)
        inside = (i < self.shape[0]) & (j < self.shape[1])
        out = np.zeros(i.shape[0], dtype=self.dtype)
        if inside.any():
            ii, jj = i[inside], j[inside]
            if self.xp is not np:
                ii, jj = self.xp.asarray(ii), self.xp.asarray(jj)
            vals = to_host(self.f(ii, jj))
            if vals.shape != (int(inside.sum()),):
                raise ShapeError(f"f(i, j) must return {int(inside.sum())} values for "
                                 f"{int(inside.sum())} (row, column) pairs, got shape "
                                 f"{vals.shape}; first pairs: "
                                 f"{list(zip(i[inside][:3].tolist(), j[inside][:3].tolist(), strict=True))}")
            if vals.dtype.kind == "c" and np.dtype(self.dtype).kind != "c":
                out = out.astype(np.result_type(out.dtype, vals.dtype))
            out[inside] = vals
        return out


def matrix_from_function(f, shape, row_modes=None, col_modes=None, *, d=None, **kwargs):
    """A TTMatrix of logical ``shape`` from ``f(i, j)`` by :func:`cross`.

    Modes are chosen (and padded) as in :meth:`TTMatrix.from_dense`; ``f`` is never called on
    padded entries, which are zero.

    Complexity: that of :func:`cross` on the ``d`` merged modes ``m_k n_k``.

    Parameters
    ----------
    f : callable
        ``f(i, j)``: integer arrays of rows and columns (same length ``k``) -> ``k`` values.
    shape : (int, int)
        The logical shape ``(M, N)``.
    row_modes, col_modes : sequence of int, optional
        Modes covering ``M`` and ``N`` (default: :func:`~tensortrain.balanced_modes`).
    d : int, optional
        Number of cores when no modes are given.
    **kwargs
        Passed to :func:`cross`.

    Examples
    --------
    >>> import numpy as np
    >>> from tensortrain.cross import matrix_from_function
    >>> W = matrix_from_function(lambda i, j: 1.0 / (1.0 + i + j), (1000, 997), rng=0)
    >>> W.shape, W.row_modes, W.col_modes
    ((1000, 997), (5, 5, 8, 5), (5, 5, 8, 5))
    """
    if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__") or len(shape) != 2:
        raise ShapeError(f"shape must be a pair (rows, columns), got {shape!r}")
    shape = tuple(_modes_or_raise(shape))
    _check_arity(f, 2, "f", "row and column index arrays")
    row_modes, col_modes = choose_matrix_modes(shape, row_modes, col_modes, d)
    if math.prod(row_modes) >= 2 ** 62 or math.prod(col_modes) >= 2 ** 62:
        raise ShapeError(f"matrix_from_function supports sizes below 2**62, got modes "
                         f"{row_modes} x {col_modes}")
    xp = resolve_xp(kwargs.get("xp"))
    dtype = check_float_dtype(kwargs.get("dtype", np.float64), "dtype")
    fun = _MatrixFunction(f, shape, row_modes, col_modes, xp, dtype)
    merged = [m * n for m, n in zip(row_modes, col_modes, strict=True)]
    out = cross(fun, merged, **kwargs)
    x, info = out if kwargs.get("return_info") else (out, None)
    cores = [c.reshape(c.shape[0], m, n, c.shape[2])
             for c, m, n in zip(x.cores, row_modes, col_modes, strict=True)]
    W = TTMatrix(cores, shape)
    return (W, info) if info is not None else W


def _fancy_getter(a):
    """``idx -> a[entries]`` reading only those entries (NumPy fancy indexing, ``vindex`` of
    Dask and zarr, ``scipy.sparse`` element access)."""
    if hasattr(a, "vindex"):
        def get(idx):
            v = a.vindex[tuple(np.asarray(idx).T)]
            return v.compute() if hasattr(v, "compute") else v
    else:
        def get(idx):
            v = a[tuple(np.asarray(idx).T)]
            return v.compute() if hasattr(v, "compute") else v
    return get


class _ArrayFunction:
    def __init__(self, a):
        self.get = _fancy_getter(a)

    def __call__(self, idx):
        return np.asarray(self.get(to_host(idx)))


def _sparse_start(A):
    coo = A.tocoo()
    if coo.nnz == 0:
        return None
    p = int(np.argmax(np.abs(coo.data)))
    return int(coo.row[p]), int(coo.col[p])


def tensor_from_array(a, **kwargs):
    """A TTTensor from anything indexable (``np.memmap``, zarr, ``dask.array``, an ndarray)
    by :func:`cross`, reading only the sampled entries.

    Complexity: that of :func:`cross`; memory ``O(d n r^2)``, independent of ``a.size``.

    Parameters
    ----------
    a : array-like with ``shape`` and NumPy fancy indexing (``a[i_1, ..., i_d]`` with index
        arrays) or ``a.vindex[...]``
    **kwargs
        Passed to :func:`cross`.
    """
    if not hasattr(a, "shape"):
        raise TypeError(f"tensor_from_array needs an array with a shape, got {type(a).__name__}")
    if hasattr(a, "tocsr"):
        raise TypeError("a scipy.sparse matrix is 2-D: use matrix_from_array")
    return cross(_ArrayFunction(a), tuple(int(s) for s in a.shape), **kwargs)


class _SparseFunction:
    def __init__(self, A):
        self.A = A.tocsr()

    def __call__(self, i, j):
        return np.asarray(self.A[to_host(i), to_host(j)]).ravel()


class _Array2Function:
    def __init__(self, A):
        self.get = _fancy_getter(A)

    def __call__(self, i, j):
        return np.asarray(self.get(np.stack([to_host(i), to_host(j)], axis=1)))


def matrix_from_array(A, row_modes=None, col_modes=None, **kwargs):
    """A TTMatrix from a 2-D indexable array (``np.memmap``, zarr, ``dask.array``,
    ``scipy.sparse``, which is never densified) by cross, reading only the sampled entries.

    Complexity: that of :func:`cross`.

    Parameters
    ----------
    A : 2-D array-like
    row_modes, col_modes : sequence of int, optional
        As in :meth:`TTMatrix.from_dense`.
    **kwargs
        Passed to :func:`matrix_from_function` / :func:`cross`.
    """
    if not hasattr(A, "shape") or len(A.shape) != 2:
        raise ShapeError(f"matrix_from_array needs a 2-D array, got "
                         f"{getattr(A, 'shape', type(A).__name__)}")
    shape = (int(A.shape[0]), int(A.shape[1]))
    if hasattr(A, "tocsr"):
        fun = _SparseFunction(A)
        if kwargs.get("x0") is None:
            start = _sparse_start(A)
            if start is not None:
                rm, cm = choose_matrix_modes(shape, row_modes, col_modes, kwargs.get("d"))
                kwargs["x0"] = _matrix_multi_index(start, rm, cm)[None]
    else:
        fun = _Array2Function(A)
    return matrix_from_function(fun, shape, row_modes, col_modes, **kwargs)


def _matrix_multi_index(ij, row_modes, col_modes):
    """The merged multi-index of the entry ``(i, j)``."""
    i, j = ij
    ik, jk = [], []
    for m, n in zip(reversed(row_modes), reversed(col_modes), strict=True):
        i, a = divmod(i, m)
        j, b = divmod(j, n)
        ik.append(a)
        jk.append(b)
    return np.array([a * n + b for a, b, n in zip(reversed(ik), reversed(jk), col_modes, strict=True)],
                    dtype=np.int64)


# ---- elementwise functions and integrals --------------------------------------------------------
class _ApplyFunction:
    """Entries of the operands -> ``fn``; for a padded TTMatrix only the logical entries
    (``inside``, a :class:`_MatrixFunction` giving rows and columns) reach ``fn``."""

    def __init__(self, fn, cores_list, inside=None):
        self.fn, self.cores_list, self.inside = fn, cores_list, inside

    def __call__(self, idx):
        idx = to_host(idx)
        if self.inside is None:
            return self.fn(*[_tt_entries(cs, idx) for cs in self.cores_list])
        i, j = self.inside.rows_cols(idx)
        keep = (i < self.inside.shape[0]) & (j < self.inside.shape[1])
        out = np.zeros(idx.shape[0], dtype=self.inside.dtype)
        if keep.any():
            out[keep] = np.asarray(self.fn(*[_tt_entries(cs, idx[keep])
                                             for cs in self.cores_list]))
        return out


def apply(fn, *tensors, eps=1e-10, **kwargs):
    """An elementwise function of TTs of the same shape, by cross on their entries.

    ``apply(np.exp, x)``, ``apply(lambda a: 1 / a, x)``, ``apply(lambda a, b: np.sqrt(a**2 +
    b**2), x, y)``: the full tensors are never formed; only the sampled entries of the
    operands are computed (``O(d r^2)`` each).

    Complexity: that of :func:`cross`, each evaluation ``O(d r_in^2)`` per operand.

    Parameters
    ----------
    fn : callable
        ``fn(a_1, ..., a_m)`` on 1-D arrays of entries (one per tensor), returning as many
        values.
    *tensors : TTTensor or TTMatrix
        Operands of one kind and one shape (TTMatrix operands with the same modes).
    eps : float
        As in :func:`cross`.
    **kwargs
        Passed to :func:`cross` (the backend is that of the operands).

    Examples
    --------
    >>> import numpy as np, tensortrain as tt
    >>> from tensortrain.cross import apply
    >>> x = tt.TTTensor.from_dense(1.0 + np.arange(60.0).reshape(3, 4, 5))
    >>> y = apply(lambda a: 1 / a, x, rng=0)
    >>> bool(np.allclose(y.full(), 1 / (1.0 + np.arange(60.0).reshape(3, 4, 5))))
    True
    """
    if not tensors:
        raise TypeError("apply needs at least one TTTensor or TTMatrix operand")
    if not callable(fn):
        raise TypeError(f"fn must be callable, got {type(fn).__name__}")
    first = tensors[0]
    if not isinstance(first, (TTTensor, TTMatrix)):
        raise TypeError(f"apply needs TTTensor or TTMatrix operands, got {type(first).__name__}")
    for t in tensors[1:]:
        first._same_structure(t, "apply")
    _check_arity(fn, len(tensors), "fn", f"{len(tensors)} arrays of entries")
    xp = first.xp
    cores_list = [[to_host(c) for c in t._cores3()] for t in tensors]
    if "dtype" not in kwargs:
        kwargs["dtype"] = np.result_type(*[t.dtype for t in tensors])
    kwargs.setdefault("xp", xp)
    modes = [c.shape[1] for c in cores_list[0]]
    inside = None
    if isinstance(first, TTMatrix) and first.is_padded:
        inside = _MatrixFunction(None, first.shape, first.row_modes, first.col_modes, np,
                                 np.dtype(kwargs["dtype"]))
    out = cross(_ApplyFunction(fn, cores_list, inside), modes, eps=eps, **kwargs)
    x, info = out if kwargs.get("return_info") else (out, None)
    if isinstance(first, TTMatrix):
        x = first._with_cores3(x.cores)
    return (x, info) if info is not None else x


def _rule(n, rule):
    if rule in ("gauss", "gauss-legendre"):
        x, w = np.polynomial.legendre.leggauss(n)
        return (x + 1) / 2, w / 2
    if rule == "midpoint":
        return (np.arange(n) + 0.5) / n, np.full(n, 1.0 / n)
    if rule == "clenshaw-curtis":
        if n < 2:
            raise TTError(f"the Clenshaw-Curtis rule needs n >= 2 nodes, got {n}")
        m = n - 1
        theta = np.pi * np.arange(n) / m
        x = (1 - np.cos(theta)) / 2
        w = np.zeros(n)
        for k in range(n):
            s = 0.0
            for j in range(1, m // 2 + 1):
                b = 1.0 if 2 * j == m else 2.0
                s += b * np.cos(2 * j * theta[k]) / (4 * j * j - 1)
            c = 1.0 if k in (0, m) else 2.0
            w[k] = c / m * (1 - s)
        return x, w / 2
    raise TTError(f"unknown rule {rule!r}; expected 'gauss', 'midpoint' or 'clenshaw-curtis'")


def quadrature(f, domain, n=16, *, rule="gauss", eps=1e-12, return_info=False, **kwargs):
    """The integral of ``f`` over a box by cross on a tensor grid of quadrature nodes.

    The integrand on the grid becomes a TT ``x`` (:func:`tensor_from_function`), the weights a
    rank-1 TT ``w``, and the integral is ``tt.dot(w, x)``: ``O(d n r^2)`` work for the sum of
    ``n**d`` terms.

    Complexity: that of :func:`cross` plus ``O(d n r^2)``.

    Parameters
    ----------
    f : callable
        ``f(X)`` with ``X`` a float array ``(k, d)`` of points, returning ``k`` values.
    domain : sequence of (lo, hi)
        The box, one interval per dimension.
    n : int or sequence of int
        Nodes per dimension.
    rule : {'gauss', 'midpoint', 'clenshaw-curtis'}
        The 1-D rule (Gauss-Legendre by default).
    eps : float
        Accuracy of the cross on the grid.
    return_info : bool
        Also return the :class:`CrossInfo`.
    **kwargs
        Passed to :func:`cross`.

    Examples
    --------
    >>> import numpy as np
    >>> from tensortrain.cross import quadrature
    >>> val = quadrature(lambda X: np.exp(X.sum(axis=1)), [(0, 1)] * 3, rng=0)
    >>> bool(abs(val - (np.e - 1) ** 3) < 1e-12)
    True
    """
    from .ops import dot  # noqa: PLC0415  (ops imports the TT classes; keep import order flat)

    try:
        box = [(float(lo), float(hi)) for lo, hi in domain]
    except (TypeError, ValueError):
        raise TypeError(f"domain must be a sequence of (lo, hi) pairs, got {domain!r}") from None
    if not box:
        raise ShapeError("domain must have at least one interval")
    for k, (lo, hi) in enumerate(box):
        if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
            raise TTError(f"domain[{k}] must be a finite interval lo < hi, got ({lo}, {hi})")
    ns = [n] * len(box) if isinstance(n, numbers.Integral) else list(n)
    if len(ns) != len(box):
        raise ShapeError(f"n must be an int or one per dimension ({len(box)}), got {len(ns)}")
    ns = _modes_or_raise(ns)
    grids, weights = [], []
    for (lo, hi), m in zip(box, ns, strict=True):
        x, w = _rule(m, rule)
        grids.append(lo + (hi - lo) * x)
        weights.append((hi - lo) * w)
    out = tensor_from_function(f, grids, eps=eps, return_info=return_info, **kwargs)
    x, info = out if return_info else (out, None)
    wt = TTTensor([x.xp.asarray(w.reshape(1, -1, 1)).astype(x.dtype) for w in weights])
    val = dot(wt, x)
    return (val, info) if return_info else val

"""TTMatrix: a matrix in the TT-matrix (matrix product operator) format, any logical size."""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _cores, contraction, decompositions
from ._backend import get_xp, is_array
from ._base import _TTBase, check_dense_input, validate_cores
from ._validation import (
    Array,
    MaxRank,
    Modes,
    _as_int,
    as_float_array,
    check_eps,
    check_max_rank,
)
from .contraction import ContractionPlan
from .errors import ShapeError
from .shapes import check_cover, choose_matrix_modes
from .tensor import TTTensor

__all__ = ["TTMatrix"]


@dataclass(frozen=True, eq=False, repr=False, init=False)
class TTMatrix(_TTBase):
    """A matrix ``W[(i_1..i_d), (j_1..j_d)] = prod_k G_k[:, i_k, j_k, :]``.

    Parameters
    ----------
    cores : sequence of arrays
        Cores of shape ``(r_{k-1}, m_k, n_k, r_k)``, ``r_0 = r_d = 1``: row modes ``m_k``,
        column modes ``n_k``; row and column multi-indices in C-order.
    shape : (int, int), optional
        The logical shape ``(M, N)``.  It defaults to ``(prod m_k, prod n_k)``; a smaller
        shape means the modes cover a *padded* size and only the leading ``M x N`` block is
        the matrix.  Every operation acts on that logical matrix.

    Examples
    --------
    >>> import numpy as np, tensortrain as tt
    >>> A = np.random.default_rng(0).standard_normal((1000, 784))
    >>> W = tt.TTMatrix.from_dense(A, max_rank=4)
    >>> W.shape, W.row_modes, W.col_modes
    ((1000, 784), (5, 5, 8, 5), (4, 7, 7, 4))
    >>> (W @ np.ones(784)).shape
    (1000,)
    """

    cores: tuple[Any, ...]
    shape: tuple[int, int]

    def __init__(self, cores: Sequence[Array], shape: tuple[int, int] | None = None) -> None:
        cores = validate_cores(cores, 4, "TTMatrix")
        padded = (math.prod(c.shape[1] for c in cores), math.prod(c.shape[2] for c in cores))
        if shape is None:
            shape = padded
        else:
            if isinstance(shape, (str, bytes)) or not hasattr(shape, "__len__") or len(shape) != 2:
                raise ShapeError(f"shape must be a pair (rows, columns), got {shape!r}")
            shape = (_as_int(shape[0], "shape[0]"), _as_int(shape[1], "shape[1]"))
            if shape[0] < 1 or shape[1] < 1:
                raise ShapeError(f"shape must be positive, got {shape}")
            row_modes = tuple(int(c.shape[1]) for c in cores)
            col_modes = tuple(int(c.shape[2]) for c in cores)
            check_cover(row_modes, shape[0], "row modes", "rows")
            check_cover(col_modes, shape[1], "column modes", "columns")
        object.__setattr__(self, "cores", cores)
        object.__setattr__(self, "shape", shape)

    # ---- construction -----------------------------------------------------------------------
    @classmethod
    def from_function(cls, f, shape, row_modes: Modes | None = None,
                      col_modes: Modes | None = None, **kwargs) -> TTMatrix:
        """A TTMatrix of logical ``shape`` from ``f(i, j)`` (row and column index arrays) by
        cross approximation, never forming the matrix: modes and padding as in
        :meth:`from_dense`, ``f`` never called on padded entries.  See
        :func:`tensortrain.cross.matrix_from_function` for the arguments.

        Complexity: that of :func:`tensortrain.cross.cross`.
        """
        from .cross import matrix_from_function  # noqa: PLC0415 - cross imports this module

        return matrix_from_function(f, shape, row_modes, col_modes, **kwargs)

    @classmethod
    def from_array(cls, a, row_modes: Modes | None = None, col_modes: Modes | None = None,
                   **kwargs) -> TTMatrix:
        """A TTMatrix from a 2-D indexable array (``np.memmap``, zarr, ``dask.array``,
        ``scipy.sparse``, never densified) by cross approximation, reading only the sampled
        entries: :func:`tensortrain.cross.matrix_from_array`.

        Complexity: that of :func:`tensortrain.cross.cross`.
        """
        from .cross import matrix_from_array  # noqa: PLC0415 - cross imports this module

        return matrix_from_array(a, row_modes, col_modes, **kwargs)

    @classmethod
    def from_dense(cls, a: Array, row_modes: Modes | None = None, col_modes: Modes | None = None,
                   eps: float = 0.0, max_rank: MaxRank = None, d: int | None = None) -> TTMatrix:
        """TT-SVD of any dense matrix.

        Complexity: ``O(M N r)`` plus one SVD per unfolding.

        Parameters
        ----------
        a : 2-D ndarray (NumPy or CuPy), floating dtype, finite
        row_modes, col_modes : sequence of int, optional
            Modes whose products cover ``a.shape``.  When omitted, balanced modes are chosen
            (:func:`tensortrain.shapes.balanced_modes`), padding sizes with no good
            factorization (primes, 997, 10 with many modes); the result keeps the logical
            shape ``a.shape``.
        eps : float
            Relative accuracy, ``||a - W||_F <= eps * ||a||_F``.
        max_rank : int or sequence of int, optional
            Cap for every bond or one per bond.
        d : int, optional
            Number of cores when no modes are given.
        """
        a = check_dense_input(a, "from_dense input", min_ndim=2)
        if a.ndim != 2:
            raise ShapeError(f"TTMatrix.from_dense needs a 2-D array, got shape {a.shape}")
        eps = check_eps(eps)
        rows, cols = choose_matrix_modes(a.shape, row_modes, col_modes, d)
        caps = check_max_rank(max_rank, len(rows))
        xp = get_xp(a)
        logical = (int(a.shape[0]), int(a.shape[1]))
        Mp, Np = math.prod(rows), math.prod(cols)
        if (Mp, Np) != logical:
            padded = xp.zeros((Mp, Np), dtype=a.dtype)
            padded[: a.shape[0], : a.shape[1]] = a
            a = padded
        t = _interleave(a, rows, cols)
        modes3 = tuple(m * n for m, n in zip(rows, cols, strict=True))
        cores3 = decompositions.tt_svd(t, modes3, eps, caps)
        cores = [c.reshape(c.shape[0], m, n, c.shape[2])
                 for c, m, n in zip(cores3, rows, cols, strict=True)]
        return cls(cores, logical)

    # ---- structure ---------------------------------------------------------------------------
    @functools.cached_property
    def row_modes(self) -> tuple[int, ...]:
        return tuple(int(c.shape[1]) for c in self.cores)

    @functools.cached_property
    def col_modes(self) -> tuple[int, ...]:
        return tuple(int(c.shape[2]) for c in self.cores)

    @functools.cached_property
    def padded_shape(self) -> tuple[int, int]:
        """``(prod row_modes, prod col_modes)``: the size the modes cover."""
        return (math.prod(self.row_modes), math.prod(self.col_modes))

    @property
    def is_padded(self) -> bool:
        """Whether the modes cover more than the logical shape (``padded_shape != shape``)."""
        return self.padded_shape != self.shape

    @property
    def ndim(self) -> int:
        """Always 2: a TTMatrix is a matrix (its number of cores is :attr:`d`)."""
        return 2

    @property
    def compression(self) -> float:
        """Dense size over stored parameters, ``M * N / num_params``."""
        return self.shape[0] * self.shape[1] / self.num_params

    def __repr__(self):
        pad = f", padded_shape={self.padded_shape}" if self.is_padded else ""
        return (f"TTMatrix(shape={self.shape}, row_modes={self.row_modes}, "
                f"col_modes={self.col_modes}, ranks={self.ranks}{pad}, dtype={self.dtype}, "
                f"backend={self.backend})")

    def _cores3(self):
        return tuple(c.reshape(c.shape[0], c.shape[1] * c.shape[2], c.shape[3]) for c in self.cores)

    def _with_cores3(self, cores3):
        cores = [c.reshape(c.shape[0], m, n, c.shape[2])
                 for c, m, n in zip(cores3, self.row_modes, self.col_modes, strict=True)]
        return TTMatrix(cores, self.shape)

    def _mask3(self):
        """3-D cores of the 0/1 indicator of the logical block (rank <= 4)."""
        xp, dt = self.xp, self.dtype
        rows = _cores.lt_indicator(self.row_modes, self.shape[0], xp, dt)
        cols = _cores.lt_indicator(self.col_modes, self.shape[1], xp, dt)
        out = []
        for r, c in zip(rows, cols, strict=True):
            m = r[:, None, :, None, :, None] * c[None, :, None, :, None, :]
            a, b, mm, nn, e, f = m.shape
            out.append(m.reshape(a * b, mm * nn, e * f))
        return out

    def _logical_cores3(self):
        if not self.is_padded:
            return self._cores3()
        return _cores.hadamard(self._cores3(), self._mask3())

    def _same_structure(self, other, op):
        if not isinstance(other, TTMatrix):
            raise TypeError(f"'{op}' needs two TTMatrix operands, got TTMatrix and "
                            f"{type(other).__name__}")
        if (other.row_modes, other.col_modes, other.shape) != (
                self.row_modes, self.col_modes, self.shape):
            raise ShapeError(
                f"'{op}' needs equal shapes and modes, got shape {self.shape} with modes "
                f"{self.row_modes}x{self.col_modes} and shape {other.shape} with modes "
                f"{other.row_modes}x{other.col_modes}")

    # ---- dense views ---------------------------------------------------------------------------
    def full(self) -> Array:
        """The dense ``(M, N)`` matrix.  Memory ``O(M N)``: for small matrices and checks."""
        mat = _deinterleave(_cores.full(self._cores3(), flat=True), self.row_modes,
                            self.col_modes).reshape(self.padded_shape)
        M, N = self.shape
        return mat[:M, :N] if self.is_padded else mat

    @functools.cached_property
    def T(self) -> TTMatrix:
        """The transpose (a TTMatrix sharing the cores' memory; no data is copied)."""
        t = TTMatrix([self.xp.transpose(c, (0, 2, 1, 3)) for c in self.cores],
                     (self.shape[1], self.shape[0]))
        t.__dict__["T"] = self  # (W.T).T is W
        return t

    @property
    def H(self) -> TTMatrix:
        """The conjugate transpose."""
        return self.conj().T

    # ---- products ---------------------------------------------------------------------------
    def matmul_plan(self, batch: int = 1, itemsize: int | None = None, objective=None,
                    batch_last: bool = False) -> ContractionPlan:
        """The contraction plan of ``x @ W.T`` for ``x`` of shape ``(batch, N)`` (with
        ``batch_last``: of ``W @ x`` for ``x`` of shape ``(N, batch)``), with its cost.

        Returns a :class:`tensortrain.contraction.ContractionPlan` with ``flops``,
        ``peak_bytes`` (temporaries), ``dense_flops``, the chosen order of core blocks and the
        ``objective`` it was chosen for.  ``itemsize`` (bytes per entry) defaults to the
        cores' dtype; a product runs the plan for its *result* dtype (float32 cores times
        float64 data: ``itemsize=8``), and the modelled time, so the ``'time'`` plan, can
        depend on it.  ``objective`` (see :func:`tensortrain.contraction.plan_matmat`)
        defaults to what the products use: ``'time'`` (modelled CPU time) for NumPy cores,
        ``'flops'`` on other backends.

        Complexity: planning only (no array is read or allocated).
        """
        batch = _as_int(batch, "batch")
        if batch < 1:
            raise ShapeError(f"batch must be >= 1, got {batch}")
        itemsize = self.dtype.itemsize if itemsize is None else int(itemsize)
        if objective is None:
            objective = contraction.default_objective(self.cores[0])
        return contraction.plan_matmat(self.row_modes, self.col_modes, self.ranks, batch,
                                       itemsize, objective, batch_last)

    def matmul_cost(self, batch: int = 1, itemsize: int | None = None) -> ContractionPlan:
        """The older name of :meth:`matmul_plan` (it returns the plan, cost included); kept
        as an alias."""
        return self.matmul_plan(batch, itemsize)

    def _apply(self, x2, batch_last=False):
        """``x2 @ W.T`` for ``x2`` of shape ``(B, N)``, or ``W @ x2`` for ``(N, B)``."""
        axis = 0 if batch_last else 1
        itemsize = contraction._result_dtype(self.cores[0].dtype, x2.dtype).itemsize
        plan = contraction.plan_matmat(self.row_modes, self.col_modes, self.ranks,
                                       x2.shape[1 - axis], itemsize,
                                       contraction.default_objective(self.cores[0]), batch_last)
        y = contraction.execute(plan, self.cores, _pad(x2, self.padded_shape[1], axis),
                                batch_last=batch_last)
        return _crop(y, self.shape[0], axis)

    def _result_dtype(self, dtype):
        """The dtype of a product of this TT-matrix with data of ``dtype``."""
        return contraction._result_dtype(self.cores[0].dtype, dtype)

    def _check_dense_operand(self, x, expected, where):
        x = as_float_array(x, where)
        get_xp(x, self.cores[0])
        if x.ndim == 0:
            raise ShapeError(f"{where}: matmul needs at least a 1-D array, got a scalar")
        return x

    def __matmul__(self, other):
        N = self.shape[1]
        if (type(other) is np.ndarray and other.dtype.char in _FLOAT_CHARS
                and 0 < other.ndim <= 2 and other.shape[0] == N):
            # the common case, a NumPy vector or matrix of the right length: no more checks
            if other.ndim == 2:
                return self._apply(other, batch_last=True)
            return self._apply(other[None, :])[0]
        if isinstance(other, TTMatrix):
            return self._matmul_tt_matrix(other)
        if isinstance(other, TTTensor):
            return self._matmul_tt_tensor(other)
        if not (is_array(other) or isinstance(other, (list, tuple))):
            return NotImplemented
        M = self.shape[0]
        x = self._check_dense_operand(other, N, "W @ x")
        if x.ndim == 1:
            if x.shape[0] != N:
                raise ShapeError(f"W @ x: W has {N} columns, but x has length {x.shape[0]}")
            return self._apply(x[None, :])[0]
        if x.shape[-2] != N:
            raise ShapeError(f"W @ x: W has {N} columns, but x has {x.shape[-2]} rows "
                             f"(shape {x.shape})")
        if x.ndim == 2:
            return self._apply(x, batch_last=True)
        xp = get_xp(x)
        xt = xp.swapaxes(x, -1, -2)                 # (..., K, N)
        lead = xt.shape[:-1]
        y = self._apply(xt.reshape(-1, N))          # (prod lead, M)
        return xp.swapaxes(y.reshape((*lead, M)), -1, -2)

    def __rmatmul__(self, other):
        M = self.shape[0]
        if (type(other) is np.ndarray and other.dtype.char in _FLOAT_CHARS
                and other.ndim == 2 and other.shape[1] == M):
            return self.T._apply(other)             # the common case: no more checks
        if not (is_array(other) or isinstance(other, (list, tuple))):
            return NotImplemented
        N = self.shape[1]
        x = self._check_dense_operand(other, M, "x @ W")
        if x.shape[-1] != M:
            raise ShapeError(f"x @ W: W has {M} rows, but x has {x.shape[-1]} columns "
                             f"(shape {x.shape})")
        lead = x.shape[:-1]
        y = self.T._apply(x.reshape(-1, M))
        return y.reshape((*lead, N))

    def _matmul_tt_matrix(self, other):
        if other.row_modes != self.col_modes or other.shape[0] != self.shape[1]:
            raise ShapeError(
                f"W @ V needs V's rows to match W's columns: W has {self.shape[1]} columns with "
                f"modes {self.col_modes}, V has {other.shape[0]} rows with modes "
                f"{other.row_modes}")
        xp = get_xp(self.cores[0], other.cores[0])
        a_cores = self.cores
        if self.shape[1] != self.padded_shape[1]:
            mask = _cores.lt_indicator(self.col_modes, self.shape[1], xp, self.dtype)
            a_cores = [_mask_axis(c, mk, 2) for c, mk in zip(a_cores, mask, strict=True)]
        cores = []
        for a, b in zip(a_cores, other.cores, strict=True):
            c = xp.tensordot(a, b, axes=([2], [1]))   # (ra, m, ra', rb, l, rb')
            c = xp.transpose(c, (0, 3, 1, 4, 2, 5))
            s = c.shape
            cores.append(c.reshape(s[0] * s[1], s[2], s[3], s[4] * s[5]))
        return TTMatrix(cores, (self.shape[0], other.shape[1]))

    def _matmul_tt_tensor(self, v):
        if v.shape != self.col_modes:
            raise ShapeError(f"W @ v needs v.shape == W.col_modes {self.col_modes}, got "
                             f"{v.shape}")
        xp = get_xp(self.cores[0], v.cores[0])
        a_cores = self.cores
        if self.is_padded:
            # read v only on the logical columns; rows beyond the logical ones come out zero
            cmask = _cores.lt_indicator(self.col_modes, self.shape[1], xp, self.dtype)
            rmask = _cores.lt_indicator(self.row_modes, self.shape[0], xp, self.dtype)
            a_cores = [_mask_axis(_mask_axis(c, cm, 2), rm, 1)
                       for c, cm, rm in zip(a_cores, cmask, rmask, strict=True)]
        cores = []
        for a, b in zip(a_cores, v.cores, strict=True):
            c = xp.tensordot(a, b, axes=([2], [1]))    # (ra, m, ra', rb, rb')
            c = xp.transpose(c, (0, 3, 1, 2, 4))
            s = c.shape
            cores.append(c.reshape(s[0] * s[1], s[2], s[3] * s[4]))
        return TTTensor(cores)


#: dtype characters of the floating dtypes a dense operand may have (float32/64, complex64/128)
_FLOAT_CHARS = "fdFD"


def _pad(x, size, axis):
    """The 2-D ``x`` with zeros appended along ``axis`` up to ``size`` (``x`` itself when it
    already has that size).  The one place where dense operands meet the padded modes:
    products pad their input columns, the backward pass its output gradient."""
    n = x.shape[axis]
    if n == size:
        return x
    xp = get_xp(x)
    if axis == 0:
        out = xp.zeros((size, x.shape[1]), dtype=x.dtype)
        out[:n] = x
    else:
        out = xp.zeros((x.shape[0], size), dtype=x.dtype)
        out[:, :n] = x
    return out


def _crop(y, size, axis):
    """The leading ``size`` entries of the 2-D ``y`` along ``axis`` (a view): the logical part
    of a result over padded modes (``y`` itself when nothing is padded)."""
    if y.shape[axis] == size:
        return y
    return y[:size] if axis == 0 else y[:, :size]


def _mask_axis(core, mask, axis):
    """Multiply a 4-D core by a rank-<=2 indicator core along mode ``axis`` (1 rows, 2 cols)."""
    xp = get_xp(core)
    if axis == 2:
        c = core[:, None, :, :, :, None] * mask[None, :, None, :, None, :]
    else:
        c = core[:, None, :, :, :, None] * mask[None, :, :, None, None, :]
    s = c.shape
    return xp.ascontiguousarray(c).reshape(s[0] * s[1], s[2], s[3], s[4] * s[5])


def _mode_axes(row_modes, col_modes):
    """Axes ``(kind, k)`` of the modes other than 1, in the interleaved order ``m_1 n_1 m_2 ...``.

    Leaving out the modes of size 1 keeps every reshape and transpose far below the 64
    dimensions an ndarray may have, for any number of cores: ``k`` axes of size >= 2 hold
    at least ``2**k`` entries.
    """
    return [(kind, k) for k, (m, n) in enumerate(zip(row_modes, col_modes, strict=True))
            for kind, x in (("r", m), ("c", n)) if x != 1]


def _interleave(a, row_modes, col_modes):
    """The ``(prod m, prod n)`` matrix ``a`` as a C-order vector over ``(i_1 j_1 i_2 j_2 ...)``."""
    xp = get_xp(a)
    axes = _mode_axes(row_modes, col_modes)
    rows = [ax for ax in axes if ax[0] == "r"]
    cols = [ax for ax in axes if ax[0] == "c"]
    src = rows + cols                                   # the C-order axes of a
    sizes = {("r", k): m for k, m in enumerate(row_modes)}
    sizes.update({("c", k): n for k, n in enumerate(col_modes)})
    t = a.reshape([sizes[ax] for ax in src])
    return xp.ascontiguousarray(xp.transpose(t, [src.index(ax) for ax in axes])).reshape(-1)


def _deinterleave(v, row_modes, col_modes):
    """Inverse of :func:`_interleave`: a vector over ``(i_1 j_1 ...)`` to ``(rows, columns)``."""
    xp = get_xp(v)
    axes = _mode_axes(row_modes, col_modes)
    sizes = {("r", k): m for k, m in enumerate(row_modes)}
    sizes.update({("c", k): n for k, n in enumerate(col_modes)})
    t = v.reshape([sizes[ax] for ax in axes])
    dst = [ax for ax in axes if ax[0] == "r"] + [ax for ax in axes if ax[0] == "c"]
    return xp.transpose(t, [axes.index(ax) for ax in dst]).reshape(
        math.prod(row_modes), math.prod(col_modes))

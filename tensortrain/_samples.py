"""Sampled entries of a tensor and the per-sample algebra of the Riemannian tools: index and
value checks, :class:`SparseTensor` (public through :mod:`tensortrain.riemannian`), and the
left/right interfaces of many samples at once (cost linear in the number of samples), used by
the projection of sparse data and by :mod:`tensortrain.completion`."""

from __future__ import annotations

import numbers

import numpy as np

from . import _scaling
from ._backend import get_xp, is_array, to_host
from ._validation import as_float_array, check_finite
from .errors import ShapeError, TTError, TTIndexError

#: entries (samples x columns) handled per block by the segment sums (bounds their memory)
_BLOCK = 1 << 21


# ---- sparse data --------------------------------------------------------------------------------
def _check_indices(indices, shape, xp, where="indices"):
    """Validated ``(n_samples, d)`` integer indices on ``xp`` (negative values are refused)."""
    d = len(shape)
    if isinstance(indices, (list, tuple)):
        indices = np.asarray(indices)
    if not is_array(indices):
        raise TypeError(f"{where} must be an integer array of shape (n_samples, {d}), got "
                        f"{type(indices).__name__}")
    if indices.dtype.kind not in "iu":
        raise TypeError(f"{where} must have an integer dtype, got {indices.dtype}")
    if indices.ndim == 1 and d == 1:
        indices = indices.reshape(-1, 1)
    if indices.ndim != 2 or indices.shape[1] != d:
        raise ShapeError(f"{where} must have shape (n_samples, {d}) for a tensor of shape "
                         f"{tuple(shape)}, got shape {tuple(indices.shape)}")
    if indices.shape[0] == 0:
        raise TTError(f"{where} is empty: at least one sample is needed")
    hxp = get_xp(indices)
    lo = to_host(indices.min(axis=0))
    hi = to_host(indices.max(axis=0))
    for k in range(d):
        if lo[k] < 0 or hi[k] >= shape[k]:
            bad = int(lo[k]) if lo[k] < 0 else int(hi[k])
            raise TTIndexError(f"{where}[:, {k}] holds {bad}, out of range for mode {k} of size "
                               f"{shape[k]} (valid: 0 .. {shape[k] - 1}; negative indices are "
                               f"not wrapped)")
    del hxp
    out = indices.astype(np.int64, copy=True)       # the caller may change theirs later
    if get_xp(out) is not xp:
        out = xp.asarray(to_host(out))
    return out


def _check_values(values, n, where="values"):
    values = as_float_array(values, where)
    if values.ndim != 1 or values.shape[0] != n:
        raise ShapeError(f"{where} must be a 1-D array with one value per row of indices "
                         f"({n}), got shape {tuple(values.shape)}")
    check_finite(values, where)
    return values


class SparseTensor:
    """A tensor given by some of its entries: ``z = sum_s values[s] e_{indices[s]}``.

    All other entries are zero.  **Duplicate rows add up** (the sum of their values is the
    entry), as in a COO sparse matrix.  ``indices`` are not wrapped: a negative index or one
    ``>= n_k`` raises :class:`~tensortrain.errors.TTIndexError`.

    Parameters
    ----------
    indices : int array, shape (n_samples, d)
        NumPy, or on the backend of ``values``.
    values : float array, shape (n_samples,)
        Its backend is the tensor's.
    shape : tuple of int
    """

    def __init__(self, indices, values, shape):
        if isinstance(shape, numbers.Integral):
            shape = (int(shape),)
        self.shape = tuple(int(n) for n in shape)
        if not self.shape or min(self.shape) < 1:
            raise ShapeError(f"shape must hold at least one positive mode size, got {shape!r}")
        values = as_float_array(values, "values")
        xp = get_xp(values)
        self.indices = _check_indices(indices, self.shape, xp)
        self.values = _check_values(values, self.indices.shape[0]).copy()

    @property
    def nnz(self):
        return int(self.indices.shape[0])

    def __repr__(self):
        return f"SparseTensor(shape={self.shape}, samples={self.nnz}, dtype={self.values.dtype})"


# ---- per-sample interfaces ----------------------------------------------------------------------
def _row_normalize(a, e):
    """Scale every row of ``a`` by a power of two to a largest magnitude in ``[0.5, 1)``."""
    xp = get_xp(a)
    m = abs(a).max(axis=1)
    er = xp.frexp(m)[1].astype(np.int64)
    return _scaling.ldexp(a, -er[:, None]), e + er


def _rescale_now(step, last, dtype):
    """Rows are rescaled after every core in single precision, and after every fourth core
    (and the last) in double: the cores are scaled to a largest entry in ``[0.5, 1)`` first,
    so four steps change a row by at most ``r^4`` upwards, far inside the float64 range."""
    single = np.dtype(dtype).char in "fF"
    return single or step == last or step % 4 == 3


def _left_rows(cores, idx, upto):
    """Rows ``L_k[s] = G_1[i_1^s] ... G_{k}[i_k^s]`` for ``k = 0 .. upto`` with row exponents
    (``L_k[s] = row * 2**e[s]``)."""
    xp = get_xp(cores[0])
    n_s = idx.shape[0]
    row = xp.ones((n_s, 1), dtype=cores[0].dtype)
    e = xp.zeros(n_s, dtype=np.int64)
    out = [(row, e)]
    for k in range(upto):
        core, ec = _scaling.normalize(cores[k])
        g = core[:, idx[:, k], :].transpose(1, 0, 2)                   # (S, r, r')
        row = xp.matmul(row[:, None, :], g)[:, 0, :]
        e = e + ec
        if _rescale_now(k, upto - 1, row.dtype):
            row, e = _row_normalize(row, e)
        out.append((row, e))
    return out


def _right_rows(cores, idx, downto):
    """Rows ``R_k[s] = G_k[i_k^s] ... G_d[i_d^s]`` (as row vectors) for ``k = d .. downto``;
    returned as a list indexed by ``k`` (``None`` below ``downto``)."""
    xp = get_xp(cores[-1])
    d = len(cores)
    n_s = idx.shape[0]
    row = xp.ones((n_s, 1), dtype=cores[-1].dtype)
    e = xp.zeros(n_s, dtype=np.int64)
    out = [None] * (d + 1)
    out[d] = (row, e)
    for k in range(d - 1, downto - 1, -1):
        core, ec = _scaling.normalize(cores[k])
        g = core[:, idx[:, k], :].transpose(1, 2, 0)                   # (S, r', r)
        row = xp.matmul(row[:, None, :], g)[:, 0, :]
        e = e + ec
        if _rescale_now(d - 1 - k, d - downto - 1, row.dtype):
            row, e = _row_normalize(row, e)
        out[k] = (row, e)
    return out


def _segment_sum(keys, w, n):
    """``out[i] = sum_{s: keys[s] == i} w[s]`` for ``w`` ``(S, C)``; one ``bincount`` per block
    of samples (real and imaginary parts separately)."""
    xp = get_xp(w)
    n_s, c = w.shape
    cols = xp.arange(c, dtype=np.int64)
    real = w.real if w.dtype.kind == "c" else w
    out_r = xp.zeros(n * c, dtype=np.float64)
    out_i = xp.zeros(n * c, dtype=np.float64) if w.dtype.kind == "c" else None
    block = max(1, _BLOCK // c)
    for s0 in range(0, n_s, block):
        kb = keys[s0:s0 + block]
        flat = (kb[:, None] * c + cols[None, :]).ravel()
        out_r += xp.bincount(flat, weights=real[s0:s0 + block].ravel().astype(np.float64),
                             minlength=n * c)
        if out_i is not None:
            out_i += xp.bincount(flat, weights=w.imag[s0:s0 + block].ravel().astype(np.float64),
                                 minlength=n * c)
    out = out_r if out_i is None else out_r + 1j * out_i
    return out.reshape(n, c).astype(w.dtype, copy=False)


class _SampleFrame:
    """The per-sample interfaces of a tangent space at a set of indices: rows of
    ``U_1 .. U_{k-1}`` and of ``V_{k+1} .. V_d`` at every sample, with row exponents.

    Everything the sparse tools need at one point: the entries of ``x`` and of tangent
    vectors at the samples, and the projection of sampled data, each ``O(S d r^2)``.
    """

    def __init__(self, space, idx):
        self.space = space
        self.idx = idx
        d = space.d
        self.left = _left_rows([*list(space.U), space.S], idx, d - 1)
        vs = [space.S if d == 1 else space._right_first, *space.V]
        self.right = _right_rows(vs, idx, 1)

    def tangent_values(self, deltas):
        """Entries of the tangent vector with these delta cores at the samples."""
        xp = get_xp(deltas[0])
        total = None
        for k, delta in enumerate(deltas):
            lrow, le = self.left[k]
            rrow, re = self.right[k + 1]
            g = delta[:, self.idx[:, k], :].transpose(1, 0, 2)           # (S, r, r')
            t = xp.matmul(lrow[:, None, :], g)[:, 0, :]
            v = _scaling.ldexp(xp.sum(t * rrow, axis=1), le + re)
            total = v if total is None else total + v
        return total

    def point_values(self):
        """Entries of ``x`` at the samples (``L_d`` times the last core)."""
        sp = self.space
        xp = get_xp(sp.S)
        lrow, le = self.left[sp.d - 1]
        g = sp.S[:, self.idx[:, sp.d - 1], 0].T                         # (S, r)
        with np.errstate(over="ignore", under="ignore"):
            return _scaling.ldexp(xp.sum(lrow * g, axis=1), le)

    def project(self, values):
        """Delta cores of the projection of ``sum_s values[s] e_{i_s}``."""
        sp = self.space
        xp = get_xp(values)
        d = sp.d
        dtype = np.result_type(values.dtype, sp.dtype)
        deltas = []
        for k in range(d):
            lrow, le = self.left[k]
            rrow, re = self.right[k + 1]
            lc = xp.conj(lrow) if lrow.dtype.kind == "c" else lrow
            rc = xp.conj(rrow) if rrow.dtype.kind == "c" else rrow
            w = _scaling.ldexp(values.astype(dtype, copy=False), le + re)
            outer = (lc * w[:, None])[:, :, None] * rc[:, None, :]      # (S, r, r')
            r0, r1 = lrow.shape[1], rrow.shape[1]
            y = _segment_sum(self.idx[:, k], outer.reshape(-1, r0 * r1), sp.shape[k])
            y = y.reshape(sp.shape[k], r0, r1).transpose(1, 0, 2)
            if k < d - 1:
                y = sp._gauge(k, y)
            deltas.append(xp.ascontiguousarray(y))
        from .riemannian import TangentVector  # noqa: PLC0415 - riemannian imports this module

        return TangentVector(sp, deltas)

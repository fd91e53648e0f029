"""TTTensor: a d-dimensional tensor in the tensor-train format."""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import _cores, _scaling, decompositions
from ._backend import is_array, to_host
from ._base import _TTBase, check_dense_input, validate_cores
from ._validation import Array, MaxRank, check_eps, check_max_rank
from .errors import ShapeError, TTIndexError

__all__ = ["TTTensor"]


@dataclass(frozen=True, eq=False, repr=False, init=False)
class TTTensor(_TTBase):
    """A tensor ``A[i_1, ..., i_d] = G_1[:, i_1, :] @ ... @ G_d[:, i_d, :]``.

    Parameters
    ----------
    cores : sequence of arrays
        Cores ``G_k`` of shape ``(r_{k-1}, n_k, r_k)`` with ``r_0 = r_d = 1``, all NumPy or
        all CuPy, of a floating dtype.  Mixed float dtypes are promoted to a common one.

    Notes
    -----
    Index order is C-order (``i_1`` slowest): ``tt.full().reshape(-1)`` matches
    ``dense.reshape(-1)``.  Objects are immutable; every operation returns a new one.

    Examples
    --------
    >>> import numpy as np, tensortrain as tt
    >>> a = np.arange(24, dtype=float).reshape(2, 3, 4)
    >>> x = tt.TTTensor.from_dense(a)
    >>> x.shape, x.ranks
    ((2, 3, 4), (1, 2, 2, 1))
    >>> bool(np.allclose(x.full(), a))
    True
    """

    cores: tuple[Any, ...]

    def __init__(self, cores: Sequence[Array]) -> None:
        object.__setattr__(self, "cores", validate_cores(cores, 3, "TTTensor"))

    # ---- construction -----------------------------------------------------------------------
    @classmethod
    def from_dense(cls, a: Array, eps: float = 0.0, max_rank: MaxRank = None) -> TTTensor:
        """TT-SVD of a dense array.

        Complexity: ``O(N r)`` for ``N = a.size`` (dominated by the first unfoldings).

        Parameters
        ----------
        a : ndarray (NumPy or CuPy), floating dtype, finite
        eps : float
            Relative Frobenius accuracy: ``||a - result||_F <= eps * ||a||_F``.
        max_rank : int or sequence of int, optional
            Cap for every bond, or one cap per bond.
        """
        a = check_dense_input(a, "from_dense input")
        eps = check_eps(eps)
        caps = check_max_rank(max_rank, a.ndim)
        return cls(decompositions.tt_svd(a, a.shape, eps, caps))

    # ---- structure ---------------------------------------------------------------------------
    @functools.cached_property
    def shape(self) -> tuple[int, ...]:
        """Mode sizes ``(n_1, ..., n_d)``."""
        return tuple(int(c.shape[1]) for c in self.cores)

    @property
    def ndim(self) -> int:
        """Number of dimensions ``d`` (the ndim of :meth:`full`)."""
        return len(self.cores)

    @property
    def size(self) -> int:
        """Number of entries of the full tensor."""
        return math.prod(self.shape)

    def __repr__(self):
        return (f"TTTensor(shape={self.shape}, ranks={self.ranks}, dtype={self.dtype}, "
                f"backend={self.backend})")

    def _cores3(self):
        return self.cores

    def _with_cores3(self, cores3):
        return TTTensor._trusted(cores3)

    @classmethod
    def from_function(cls, f, grids_or_modes, **kwargs) -> TTTensor:
        """A TTTensor from a function of coordinates (one 1-D grid per dimension) or of
        indices (modes), by cross approximation: :func:`tensortrain.cross.tensor_from_function`,
        which documents the arguments (``eps``, ``max_rank``, ``max_evals``, ``executor``, ...).

        Complexity: that of :func:`tensortrain.cross.cross`.
        """
        from .cross import tensor_from_function  # noqa: PLC0415 - cross imports this module

        return tensor_from_function(f, grids_or_modes, **kwargs)

    @classmethod
    def from_array(cls, a, **kwargs) -> TTTensor:
        """A TTTensor from anything with NumPy fancy indexing (``np.memmap``, zarr,
        ``dask.array``) by cross approximation, reading only the sampled entries:
        :func:`tensortrain.cross.tensor_from_array`.

        Complexity: that of :func:`tensortrain.cross.cross`; memory independent of ``a.size``.
        """
        from .cross import tensor_from_array  # noqa: PLC0415 - cross imports this module

        return tensor_from_array(a, **kwargs)

    @classmethod
    def _trusted(cls, cores):
        """A TTTensor from cores an algorithm of this package made (shapes and ranks known to
        be consistent): no validation, only a common dtype."""
        cores = tuple(cores)
        dtype = cores[0].dtype
        if any(c.dtype != dtype for c in cores):
            dtype = np.result_type(*[c.dtype for c in cores])
            cores = tuple(c.astype(dtype, copy=False) for c in cores)
        obj = object.__new__(cls)
        object.__setattr__(obj, "cores", cores)
        return obj

    def _same_structure(self, other, op):
        if not isinstance(other, TTTensor):
            raise TypeError(f"'{op}' needs two TTTensors, got TTTensor and {type(other).__name__}")
        if other.shape != self.shape:
            raise ShapeError(f"'{op}' needs equal shapes, got {self.shape} and {other.shape}")

    # ---- dense views ---------------------------------------------------------------------------
    def full(self) -> Array:
        """The dense tensor.  Memory ``O(prod n_k)``: for small tensors and checks."""
        if self.ndim > 64:
            raise ShapeError(
                f"full() of a TTTensor with d={self.ndim} modes cannot be an ndarray: NumPy and "
                f"CuPy arrays have at most 64 dimensions (use indexing, sum or dot instead)")
        return _cores.full(self.cores)

    # ---- indexing and reductions -------------------------------------------------------------
    def __getitem__(self, key):
        """Entries and sub-tensors.

        Integers fix a mode (it disappears), slices and 1-D integer arrays select along it
        (it stays).  ``a[i, j, k]`` is a scalar; ``a[:, 2]`` is a TTTensor of the kept modes.

        Complexity: ``O(d r^2)`` for one entry.
        """
        if not isinstance(key, tuple):
            key = (key,)
        d = self.ndim
        if sum(k is Ellipsis for k in key) > 1:
            raise TTIndexError("an index can only have a single ellipsis ('...')")
        if Ellipsis in [k for k in key if k is Ellipsis]:
            pos = next(i for i, k in enumerate(key) if k is Ellipsis)
            fill = d - (len(key) - 1)
            key = key[:pos] + (slice(None),) * fill + key[pos + 1:]
        if len(key) > d:
            raise TTIndexError(f"too many indices: the tensor has {d} modes, got {len(key)}")
        key = key + (slice(None),) * (d - len(key))
        fixed = {}
        kept = {}
        for k, (idx, core) in enumerate(zip(key, self.cores, strict=True)):
            n = core.shape[1]
            if isinstance(idx, (numbers.Integral, np.integer)) and not isinstance(idx, bool):
                i = int(idx)
                if not -n <= i < n:
                    raise TTIndexError(f"index {i} is out of range for mode {k} of size {n}")
                fixed[k] = core[:, i % n, :]
            elif isinstance(idx, slice):
                kept[k] = core[:, idx, :]
                if kept[k].shape[1] == 0:
                    raise TTIndexError(f"slice {idx} selects nothing from mode {k} of size {n}")
            elif isinstance(idx, (list, tuple)) or (is_array(idx) and idx.ndim == 1):
                arr = np.asarray(to_host(np.asarray(idx) if isinstance(idx, (list, tuple)) else idx))
                if arr.dtype.kind not in "iu" or arr.size == 0:
                    raise TTIndexError(
                        f"an array index must be a non-empty 1-D integer array, got dtype "
                        f"{arr.dtype} with {arr.size} entries for mode {k}")
                if arr.min() < -n or arr.max() >= n:
                    raise TTIndexError(f"array index for mode {k} of size {n} is out of range "
                                       f"(min {arr.min()}, max {arr.max()})")
                kept[k] = core[:, self.xp.asarray(arr % n), :]
            else:
                raise TTIndexError(
                    f"unsupported index {idx!r} for mode {k}: use an int, a slice or a 1-D "
                    f"integer array")
        return self._absorb(fixed, kept)

    def _absorb(self, fixed, kept, exps=()):
        """Multiply the matrices of fixed modes into their neighbours; keep the other cores.

        Every matrix and kept core is scaled by a power of two first and the running product
        after every step, so a representable entry or sum comes out right even when partial
        products of the cores are not representable.  Single precision is computed in double
        precision and rounded once at the end.
        """
        xp = self.xp
        dtype = self.dtype
        wide = _scaling.wide_dtype(dtype)
        out = []
        exps = list(exps)
        pending = None
        for k in range(self.ndim):
            if k in fixed:
                mat, e = _scaling.normalize(fixed[k].astype(wide, copy=False))
                exps.append(e)
                pending = mat if pending is None else pending @ mat
                pending, e = _scaling.normalize(pending)
                exps.append(e)
            else:
                core, e = _scaling.normalize(kept[k].astype(wide, copy=False))
                exps.append(e)
                if pending is not None:
                    core = xp.tensordot(pending, core, axes=([1], [0]))
                    pending = None
                out.append(core)
        if pending is not None and out:
            out[-1] = xp.tensordot(out[-1], pending, axes=([2], [0]))
        if not out:
            total = xp.sum(xp.stack([xp.asarray(e).astype(np.int64) for e in exps]))
            with np.errstate(over="ignore", under="ignore"):
                return _scaling.ldexp(pending.reshape(()), total).astype(dtype)[()]
        # balance in double precision, then round each core once
        out = _scaling.apply_pow2(out, _scaling.host_exponent_sum(exps), 0, dtype)
        return TTTensor([c.astype(dtype, copy=False) for c in out])

    def sum(self, axis: int | Sequence[int] | None = None) -> Any:
        """Sum over all entries (a scalar) or over the modes in ``axis`` (a TTTensor).

        Complexity: ``O(d n r^2)``.
        """
        d = self.ndim
        if axis is None:
            axes = set(range(d))
        else:
            items = axis if isinstance(axis, (tuple, list)) else (axis,)
            axes = set()
            for a in items:
                if isinstance(a, bool) or not isinstance(a, (numbers.Integral, np.integer)):
                    raise TypeError(f"axis must be an int or a tuple of ints, got {a!r}")
                if not -d <= int(a) < d:
                    raise TTIndexError(f"axis {a} is out of range for a tensor with {d} modes")
                if int(a) % d in axes:
                    raise TTIndexError(f"axis {axis!r} names mode {int(a) % d} twice")
                axes.add(int(a) % d)
        # scaled first, so that summing entries near the dtype's limit cannot overflow
        fixed = {}
        kept = {}
        exps = []
        for k in range(d):
            if k in axes:
                core, e = _scaling.normalize(self.cores[k])
                fixed[k] = core.sum(axis=1)
                exps.append(e)
            else:
                kept[k] = self.cores[k]
        return self._absorb(fixed, kept, exps)

    def __len__(self):
        return self.shape[0]

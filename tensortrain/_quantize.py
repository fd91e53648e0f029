"""Reshaping a TT between ordinary modes and QTT modes (``quantize`` / ``dequantize``),
public through :mod:`tensortrain.qtt`."""

from __future__ import annotations

import math
import numbers

from . import _scaling
from ._backend import get_xp
from ._validation import _as_int, check_eps, check_max_rank
from .decompositions import orthogonal_sweep, tt_svd
from .errors import ModeError
from .matrix import TTMatrix
from .tensor import TTTensor

# ---- quantize / dequantize --------------------------------------------------------------------

def _bits(n, base, where):
    L, m = 0, n
    while m % base == 0 and m > 1:
        m //= base
        L += 1
    if m != 1 or L == 0:
        raise ModeError(f"{where} = {n} is not a power of {base} (>= {base}); quantize needs "
                        f"modes {base}, {base ** 2}, {base ** 3}, ...")
    return L


def quantize(x, *, base=2, eps=0.0, max_rank=None):
    """Split every mode ``n_k = base**L_k`` of a TT into ``L_k`` modes of size ``base``.

    A TTTensor of shape ``(n_1, ..., n_d)`` becomes one of shape ``(base,) * sum(L_k)``
    representing the same entries (``i_k`` written in base ``base``, most significant digit
    first, so C-order is kept).  A TTMatrix gets cores ``(r, base, base, r')`` with the row
    and column digits paired.

    The TT is first right-orthogonalized; then each core is split by TT-SVD while it is the
    orthogonality centre, so the truncation errors of all new bonds are orthogonal and add in
    squares: ``||x - quantize(x, eps=eps)||_F <= eps ||x||_F`` (each of the ``B`` new bonds
    gets ``eps / sqrt(B)``).  ``eps=0`` is exact (only round-off singular values are dropped).
    ``max_rank`` caps the new bonds (an int; the old bonds keep their ranks).

    Complexity: ``O(sum_k base^L_k r^3)``: one TT-SVD of each core.

    Examples
    --------
    >>> import numpy as np, tensortrain as tt
    >>> a = np.random.default_rng(0).standard_normal((8, 4))
    >>> q = tt.qtt.quantize(tt.TTTensor.from_dense(a))
    >>> q.shape
    (2, 2, 2, 2, 2)
    >>> bool(np.allclose(q.full().reshape(-1), a.reshape(-1)))
    True
    """
    if not isinstance(x, (TTTensor, TTMatrix)):
        raise TypeError(f"quantize needs a TTTensor or TTMatrix, got {type(x).__name__}")
    base = _as_int(base, "base")
    if base < 2:
        raise ModeError(f"base must be >= 2, got {base}")
    eps = check_eps(eps)
    if max_rank is not None:
        cap = check_max_rank(max_rank, 2)
        cap = cap[0]
    else:
        cap = None
    is_matrix = isinstance(x, TTMatrix)
    if is_matrix:
        if x.is_padded:
            raise ModeError(f"quantize needs an unpadded TTMatrix, got shape {x.shape} with "
                            f"padded shape {x.padded_shape}")
        rows = [_bits(m, base, f"row_modes[{k}]") for k, m in enumerate(x.row_modes)]
        cols = [_bits(n, base, f"col_modes[{k}]") for k, n in enumerate(x.col_modes)]
        if rows != cols:
            raise ModeError(f"quantize needs row and column modes with the same number of "
                            f"digits, got {x.row_modes} and {x.col_modes}")
        Ls = rows
        cores3 = []
        for c, L in zip(x.cores, Ls, strict=True):
            r0, _, _, r1 = c.shape
            t = c.reshape((r0,) + (base,) * (2 * L) + (r1,))
            perm = [0] + [p for k in range(L) for p in (1 + k, 1 + L + k)] + [2 * L + 1]
            cores3.append(t.transpose(perm).reshape(r0, base ** (2 * L), r1))
        digit = base * base
    else:
        Ls = [_bits(n, base, f"shape[{k}]") for k, n in enumerate(x.shape)]
        cores3 = list(x.cores)
        digit = base
    nbonds = sum(L - 1 for L in Ls)
    out, exp2, _ = orthogonal_sweep(cores3, "right")     # scaled: no overflow for any d
    new = []
    carry = None
    xp = get_xp(out[0])
    for k, (c, L) in enumerate(zip(out, Ls, strict=True)):
        if carry is not None:
            r0 = c.shape[0]
            c = (carry @ c.reshape(r0, -1)).reshape(carry.shape[0], c.shape[1], c.shape[2])
        r0, _, r1 = c.shape
        if L == 1:
            pieces = [c]
        else:
            local = eps * math.sqrt((L - 1) / nbonds) if nbonds else 0.0
            t = c.reshape((r0 * digit,) + (digit,) * (L - 2) + (digit * r1,))
            caps = None if cap is None else (cap,) * (L - 1)
            parts = tt_svd(t, t.shape, local, caps)
            pieces = [p.reshape(p.shape[0] if i else r0, digit,
                                p.shape[2] if i < L - 1 else r1)
                      for i, p in enumerate(parts)]
            # tt_svd leaves its norm in the last piece; it is the orthogonality centre
        if k < len(Ls) - 1:
            last = pieces[-1]
            ra, n, rb = last.shape
            q, rr = xp.linalg.qr(last.reshape(ra * n, rb))
            pieces[-1] = q.reshape(ra, n, q.shape[1])
            carry = rr
        new += pieces
    new = _scaling.apply_pow2(new, exp2, len(new) - 1)
    if is_matrix:
        cores4 = [c.reshape(c.shape[0], base, base, c.shape[2]) for c in new]
        return TTMatrix(cores4)
    return TTTensor(new)


def dequantize(x, modes):
    """Merge consecutive cores of a (Q)TT back into cores of the given ``modes`` (exact).

    ``modes`` lists the target modes of a TTTensor (each the product of the modes of a run
    of consecutive cores), or ``(row_modes, col_modes)`` for a TTMatrix.  The inverse of
    :func:`quantize`; no truncation, so the bond ranks inside each run disappear and the
    others are kept.

    Complexity: ``O(sum_k n_k r^2)`` with ``n_k`` the merged modes.

    Examples
    --------
    >>> import tensortrain as tt
    >>> q = tt.qtt.grid(6)
    >>> tt.qtt.dequantize(q, (8, 8)).shape
    (8, 8)
    """
    if not isinstance(x, (TTTensor, TTMatrix)):
        raise TypeError(f"dequantize needs a TTTensor or TTMatrix, got {type(x).__name__}")
    is_matrix = isinstance(x, TTMatrix)
    if is_matrix:
        try:
            rm, cm = modes
            rm = tuple(_as_int(m, "row mode") for m in rm)
            cm = tuple(_as_int(m, "column mode") for m in cm)
        except (TypeError, ValueError):
            raise TypeError(f"dequantize of a TTMatrix needs modes=(row_modes, col_modes), "
                            f"got {modes!r}") from None
        if len(rm) != len(cm):
            raise ModeError(f"row and column modes must have the same length, got {rm} "
                            f"and {cm}")
        groups = _groups(x.row_modes, rm, "row")
        if _groups(x.col_modes, cm, "column") != groups:
            raise ModeError(f"the row modes {rm} and column modes {cm} group the cores "
                            f"differently")
    else:
        if isinstance(modes, numbers.Integral):
            modes = (modes,)
        tm = tuple(_as_int(m, "mode") for m in modes)
        groups = _groups(x.shape, tm, "")
    xp = x.xp
    new = []
    for start, stop in groups:
        acc = x.cores[start]
        for k in range(start + 1, stop):
            acc = xp.tensordot(acc, x.cores[k], axes=(acc.ndim - 1, 0))
        if is_matrix:
            L = stop - start
            r0, r1 = acc.shape[0], acc.shape[-1]
            # axes: r0, (m_1, n_1), ..., (m_L, n_L), r1 -> r0, m_1..m_L, n_1..n_L, r1
            perm = [0] + [1 + 2 * k for k in range(L)] + [2 + 2 * k for k in range(L)]
            perm.append(2 * L + 1)
            acc = acc.transpose(perm)
            M = math.prod(acc.shape[1:1 + L])
            acc = acc.reshape(r0, M, -1, r1)
        else:
            acc = acc.reshape(acc.shape[0], -1, acc.shape[-1])
        new.append(acc)
    return TTMatrix(new) if is_matrix else TTTensor(new)


def _groups(have, want, what):
    label = f"{what} modes" if what else "modes"
    groups, k = [], 0
    for t in want:
        if t < 1:
            raise ModeError(f"{label} must be positive, got {want}")
        start, p = k, 1
        while k < len(have) and p < t:
            p *= have[k]
            k += 1
        if p != t or k == start:
            raise ModeError(f"cannot merge the {label} {tuple(have)} into {tuple(want)}: "
                            f"consecutive modes must multiply to each target mode")
        groups.append((start, k))
    if k != len(have):
        raise ModeError(f"cannot merge the {label} {tuple(have)} into {tuple(want)}: the "
                        f"target modes cover only the first {k} cores")
    return groups

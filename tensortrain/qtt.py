"""Exact low-rank QTT operators and vectors, and reshaping TTs into QTT form and back.

A vector of length ``2**L`` is a QTT (quantized tensor train) when it is stored as a TTTensor
of ``L`` modes of size 2.  Index order is the package's C-order: the first core carries the
*most significant* bit, ``i = i_1 2**(L-1) + i_2 2**(L-2) + ... + i_L``, so
``x.full().reshape(-1)[i]`` is entry ``i`` of the vector.  An operator on such vectors is a
TTMatrix with ``L`` cores of shape ``(r, 2, 2, r')`` (row bit first).

Everything here is *constructed* core by core from a closed form, never by rounding a dense
matrix, so ``L`` can be 40 (``2**40`` points) or thousands.  The banded Toeplitz operators
(shifts, differences, Laplacians) are built by one small automaton, derived as follows.
Adding an integer offset ``s`` to a column index written in binary, ``j = i + s``, is a carry
chain that runs from the least significant bit (the last core) to the most significant one:
with a carry ``c`` coming in from the lower bits, bit ``k`` satisfies
``j_k = (i_k + c) mod 2`` and passes the carry ``floor((i_k + c) / 2)`` to the next higher
bit.  The carry is the TT bond index.  A sum of offsets ``sum_s w_s [j = i + s]`` starts the
chain in state ``s`` with weight ``w_s`` at the last core; at the first core the carry must be
0 (the index stayed inside ``0 .. 2**L - 1``), or any carry is accepted for periodic
operators (the index wraps around).  For the offsets ``-1, 0, +1`` of a second difference the
carries are ``-1, 0, +1``, which gives the rank-3 Laplacian of Kazeev and Khoromskij (2012);
a single shift has rank 2.  Kronecker sums over several dimensions add one state, "nothing
applied yet", which the carry-0 state ("applied, identity from here on") absorbs at each
dimension's most significant bit: ranks 2 between dimensions and 4 inside them.

Sign convention: :func:`laplacian` is the *positive semi-definite* second difference
``-u''``, the stencil ``(-1, 2, -1)``, as in ttpy's ``qlaplace_dd``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from . import _scaling
from ._backend import asarray, get_xp, resolve_xp
from ._quantize import dequantize, quantize
from ._validation import _as_int, check_float_dtype
from .errors import ModeError, TTError
from .matrix import TTMatrix
from .tensor import TTTensor

__all__ = [
    "cos",
    "dequantize",
    "diag",
    "exp",
    "gradient",
    "grid",
    "grid_step",
    "identity",
    "kron_sum",
    "laplacian",
    "laplacian_1d",
    "quantize",
    "shift",
    "sin",
    "toeplitz",
]

_BCS = ("dirichlet", "neumann", "periodic")


# ---- argument checks -----------------------------------------------------------------------

def _check_L(L, what="L"):
    L = _as_int(L, what)
    if L < 1:
        raise ModeError(f"{what} (the number of bits, 2**{what} points) must be >= 1, got {L}")
    return L


def _dims(dims):
    if isinstance(dims, numbers.Integral) and not isinstance(dims, bool):
        return (_check_L(dims, "dims"),)
    try:
        items = tuple(dims)
    except TypeError:
        raise TypeError(f"dims must be an int or a sequence of ints (bits per dimension), got "
                        f"{type(dims).__name__} {dims!r}") from None
    if not items:
        raise ModeError("dims must name at least one dimension, got an empty sequence")
    return tuple(_check_L(v, f"dims[{k}]") for k, v in enumerate(items))


def _per_dim(value, n, what):
    """``value`` repeated for ``n`` dimensions, or checked to have ``n`` entries."""
    if isinstance(value, (str, numbers.Number)) or value is None:
        return (value,) * n
    items = tuple(value)
    if len(items) != n:
        raise TTError(f"{what} must be one value or {n} values (one per dimension), got "
                      f"{len(items)}")
    return items


def _check_bc(bc):
    """``bc`` as a pair (left end, right end) of 'dirichlet' / 'neumann' / 'periodic'."""
    if isinstance(bc, str):
        pair = (bc, bc)
    else:
        try:
            pair = tuple(bc)
        except TypeError:
            raise TypeError(f"bc must be a string or a pair of strings, got "
                            f"{type(bc).__name__} {bc!r}") from None
    if len(pair) != 2 or not all(isinstance(b, str) for b in pair):
        raise TTError(f"bc must be one of {_BCS} or a pair (left, right) of 'dirichlet' and "
                      f"'neumann', got {bc!r}")
    pair = tuple(b.lower() for b in pair)
    for b in pair:
        if b not in _BCS:
            raise TTError(f"unknown boundary condition {b!r}; expected one of {_BCS}")
    if ("periodic" in pair) and pair != ("periodic", "periodic"):
        raise TTError(f"a periodic boundary applies to both ends, got {bc!r}")
    return pair


def _check_scalar(v, what):
    if isinstance(v, bool) or not isinstance(v, numbers.Number):
        raise TypeError(f"{what} must be a number, got {type(v).__name__} {v!r}")
    if not math.isfinite(abs(complex(v))):
        raise TTError(f"{what} must be finite, got {v!r}")
    return v


def _setup(dtype, xp, weights=()):
    xp = resolve_xp(xp)
    if dtype is None:
        dtype = np.complex128 if any(isinstance(w, complex) and w.imag != 0
                                     for w in weights) else np.float64
    dtype = check_float_dtype(dtype, "dtype")
    if dtype.kind != "c" and any(isinstance(w, complex) and w.imag != 0 for w in weights):
        raise TypeError(f"complex coefficients need a complex dtype, got dtype={dtype}")
    return dtype, xp


def _to_backend(host_cores, dtype, xp):
    return [asarray(np.ascontiguousarray(c.astype(dtype)), xp) for c in host_cores]


# ---- the carry automaton -------------------------------------------------------------------

_PENDING = "pending"


def _automaton(blocks, *, dtype, xp, scale_exp=0):
    """Cores of ``sum_b I x ... x T_b x ... x I`` for banded Toeplitz blocks ``T_b``.

    ``blocks``: one dict per dimension (most significant dimension first) with keys
    ``L`` (bits), ``w`` ({offset: weight}, the entries ``T[i, i + offset]``), ``periodic``
    (bool) and ``corners`` ({0 or 1: weight}: an extra ``weight`` at the entry ``(0, 0)``
    (key 0) or ``(N-1, N-1)`` (key 1)).  The result is multiplied by ``2**scale_exp``
    exactly (spread over the cores when it does not fit into one).

    States (TT bond indices) are built from the right: an int carry ``c`` (the column index
    of the higher bits of the current dimension equals the row index plus ``c``; the carry 0
    doubles as "this dimension's term applied, identity from here on"), ``('z', b)`` (a corner
    term: every lower bit of this dimension equals ``b`` in row and column) and
    ``'pending'`` (no term applied yet).
    """
    # global positions, most significant first; the automaton runs from the last one
    bit_dim, first_of, last_of = [], [], []
    for b, blk in enumerate(blocks):
        start = len(bit_dim)
        bit_dim += [b] * blk["L"]
        first_of.append(start)
        last_of.append(start + blk["L"] - 1)
    n = len(bit_dim)
    cores = [None] * n
    right_states = [_PENDING]
    for p in range(n - 1, -1, -1):
        b = bit_dim[p]
        blk = blocks[b]
        # which states enter core p from the right, with their starting weights
        trans: dict = {}   # (out_state, i, j, in_index) -> value

        def add(out, i, j, k, v, trans=trans):
            trans[(out, i, j, k)] = trans.get((out, i, j, k), 0) + v

        for k, st in enumerate(right_states):
            starts = []          # (state inside this dimension, weight)
            if st == _PENDING:
                if p == last_of[b]:
                    starts += [(s, w) for s, w in blk["w"].items()]
                    starts += [(("z", c), w) for c, w in blk["corners"].items()]
                if b > 0:
                    # nothing applied yet and this dimension passed: a dimension to the left
                    # must apply its term; identity through this bit
                    for i in (0, 1):
                        add(_PENDING, i, i, k, 1)
            else:
                starts.append((st, 1))
            for s, w in starts:
                if isinstance(s, tuple):                      # corner chain
                    bit = s[1]
                    out = ("z", bit) if p != first_of[b] else 0
                    add(out, bit, bit, k, w)
                    continue
                for i in (0, 1):
                    t = i + s
                    j, c = t % 2, t // 2
                    if p == first_of[b]:
                        if blk["periodic"]:
                            c = 0
                        elif c != 0:
                            continue
                    add(c, i, j, k, w)
        outs = []
        for (out, _, _, _) in trans:
            if out not in outs:
                outs.append(out)
        if p == 0:
            outs = [o for o in outs if o == 0]
            if not outs:
                raise TTError("the operator is zero (every offset leaves the index range)")
        outs.sort(key=lambda o: (0, o) if isinstance(o, int) else (1, str(o)))
        index = {o: q for q, o in enumerate(outs)}
        core = np.zeros((len(outs), 2, 2, len(right_states)),
                        dtype=np.complex128 if dtype.kind == "c" else np.float64)
        for (out, i, j, k), v in trans.items():
            if out in index:
                core[index[out], i, j, k] += v
        cores[p] = core
        right_states = outs
    cores = _to_backend(cores, dtype, xp)
    if scale_exp:
        cores = _scaling.apply_pow2(cores, scale_exp, len(cores) - 1)
    return cores


def _block(L, weights, bc=("dirichlet", "dirichlet"), corners=None):
    return {"L": L, "w": {s: w for s, w in weights.items() if w != 0},
            "periodic": bc[0] == "periodic", "corners": dict(corners or {})}


# ---- operators ---------------------------------------------------------------------------

def identity(L, *, dtype=np.float64, xp=None):
    """The identity on ``2**L`` points as a QTT matrix of ranks 1.

    Complexity: ``O(L)``.

    Examples
    --------
    >>> import tensortrain as tt
    >>> tt.qtt.identity(3).full().shape
    (8, 8)
    """
    L = _check_L(L)
    dtype, xp = _setup(dtype, xp)
    return TTMatrix([xp.eye(2, dtype=dtype).reshape(1, 2, 2, 1) for _ in range(L)])


def toeplitz(L, diagonals, *, periodic=False, dtype=None, xp=None):
    """The banded Toeplitz matrix ``sum_s w_s eye(2**L, k=s)`` as an exact QTT matrix.

    Parameters
    ----------
    L : int
        Number of bits; the matrix is ``2**L x 2**L``.
    diagonals : dict {int: number}
        ``{offset: value}``: the value of every entry ``(i, i + offset)``, with the offset of
        :func:`numpy.eye`'s ``k`` (positive above the diagonal).  ``|offset| < 2**L``.
    periodic : bool
        Indices wrap around (a circulant matrix): entries ``(i, (i + offset) mod 2**L)``.
    dtype : float or complex dtype, optional
        float64 by default (complex128 when a value is complex).
    xp : 'numpy', 'cupy' or a module, optional

    Notes
    -----
    The bond index is the carry of the binary addition ``j = i + offset``: the TT-rank is
    the number of distinct carries, at most ``2 * len(diagonals)`` and 3 for the offsets
    ``-1, 0, 1`` (see the module docstring).

    Complexity: ``O(L * len(diagonals))`` time and memory.

    Examples
    --------
    >>> import numpy as np, tensortrain as tt
    >>> T = tt.qtt.toeplitz(4, {-1: 1.0, 0: -2.0, 1: 1.0})
    >>> T.ranks
    (1, 3, 3, 3, 1)
    >>> bool(np.allclose(T.full(), np.eye(16, k=-1) - 2 * np.eye(16) + np.eye(16, k=1)))
    True
    """
    L = _check_L(L)
    if not isinstance(diagonals, dict) or not diagonals:
        raise TypeError(f"diagonals must be a non-empty dict {{offset: value}}, got "
                        f"{type(diagonals).__name__} {diagonals!r}")
    N = 2 ** L
    w = {}
    for s, v in diagonals.items():
        s = _as_int(s, "diagonal offset")
        _check_scalar(v, f"diagonals[{s}]")
        if not periodic and abs(s) >= N:
            raise TTError(f"diagonal offset {s} is outside the {N} x {N} matrix "
                          f"(|offset| < 2**L = {N} needed)")
        if periodic:
            s = (s + N // 2) % N - N // 2      # the representative nearest 0: fewest carries
        w[s] = w.get(s, 0) + v
    dtype, xp = _setup(dtype, xp, list(w.values()))
    if all(v == 0 for v in w.values()):
        return TTMatrix([xp.zeros((1, 2, 2, 1), dtype=dtype) for _ in range(L)])
    bc = ("periodic",) * 2 if periodic else ("dirichlet",) * 2
    return TTMatrix(_automaton([_block(L, w, bc)], dtype=dtype, xp=xp))


def shift(L, offset=1, *, periodic=False, dtype=np.float64, xp=None):
    """The shift ``S`` with ``(S x)_i = x_{i - offset}`` (``offset > 0``: down), rank <= 2.

    ``S = eye(2**L, k=-offset)``: ``offset=1`` moves every entry one place down (towards
    larger indices, dropping the last one), ``offset=-1`` one place up.  With
    ``periodic=True`` the entries wrap around (a cyclic shift, ``S**N = I``).

    Complexity: ``O(L)``.

    Examples
    --------
    >>> import numpy as np, tensortrain as tt
    >>> S = tt.qtt.shift(3, 1)
    >>> (S @ np.arange(8.0)).tolist()
    [0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    """
    offset = _as_int(offset, "offset")
    return toeplitz(L, {-offset: 1.0}, periodic=periodic, dtype=dtype, xp=xp)


def gradient(L, *, kind="forward", bc="dirichlet", h=None, dtype=np.float64, xp=None):
    """First difference on ``2**L`` points, rank <= 3.

    ``kind='forward'``: ``(D x)_i = x_{i+1} - x_i``; ``'backward'``: ``x_i - x_{i-1}``;
    ``'central'``: ``(x_{i+1} - x_{i-1}) / 2``.  ``bc='dirichlet'`` takes the values outside
    the grid as zero (the matrix is a band of the ``2**L x 2**L`` matrix), ``'periodic'``
    wraps around.  ``h`` divides the result by the grid step (``None``: no scaling).

    Complexity: ``O(L)``.
    """
    L = _check_L(L)
    weights = {"forward": {0: -1.0, 1: 1.0}, "backward": {-1: -1.0, 0: 1.0},
               "central": {-1: -0.5, 1: 0.5}}
    if kind not in weights:
        raise TTError(f"kind must be one of {tuple(weights)}, got {kind!r}")
    pair = _check_bc(bc)
    if "neumann" in pair:
        raise TTError("gradient supports bc='dirichlet' or 'periodic', got 'neumann'")
    mant, e = _h_scale(h, L, pair, power=1)
    w = {s: v * mant for s, v in weights[kind].items()}
    dtype, xp = _setup(dtype, xp, list(w.values()))
    return TTMatrix(_automaton([_block(L, w, pair)], dtype=dtype, xp=xp, scale_exp=e))


def grid_step(L, a=0.0, b=1.0, bc="dirichlet"):
    """The grid step of the usual grid for ``bc`` on ``[a, b]`` with ``2**L`` unknowns.

    Dirichlet: the interior points ``a + h, ..., b - h`` of a vertex-centred grid,
    ``h = (b - a) / (2**L + 1)``; Neumann: cell centres ``a + h/2, ..., b - h/2``,
    ``h = (b - a) / 2**L``; periodic: ``a, a + h, ..., b - h``, ``h = (b - a) / 2**L``.
    A Python float (0.0 when it underflows, for ``L`` beyond about 1070).
    """
    L = _check_L(L)
    pair = _check_bc(bc)
    length = float(b) - float(a)
    if pair == ("dirichlet", "dirichlet"):
        return length * math.ldexp(1.0, -L) / (1.0 + math.ldexp(1.0, -L))
    return length * math.ldexp(1.0, -L)


def _h_scale(h, L, pair, power):
    """``h**-power`` as ``(mantissa, exponent)``; ``h='unit'`` is the step on ``[0, 1]``
    (:func:`grid_step`), computed without overflow for any ``L``."""
    if h is None:
        return 1.0, 0
    if isinstance(h, str):
        if h != "unit":
            raise TTError(f"h must be None, a positive number or 'unit', got {h!r}")
        # 1/h = 2**L (1 + 2**-L) for Dirichlet, 2**L otherwise
        mant = (1.0 + math.ldexp(1.0, -L)) ** power if pair == ("dirichlet",) * 2 else 1.0
        return mant, L * power
    if isinstance(h, bool) or not isinstance(h, numbers.Real) or not (0 < float(h) < math.inf):
        raise TTError(f"h must be None, a positive finite number or 'unit', got {h!r}")
    m, e = math.frexp(float(h))
    return (1.0 / m) ** power, -e * power


def laplacian_1d(L, bc="dirichlet", *, h=None, dtype=np.float64, xp=None):
    """The 1-D second difference ``-u''`` on ``2**L`` points, stencil ``(-1, 2, -1)``.

    Complexity: ``O(L)``.

    Parameters
    ----------
    L : int
        Number of bits (``2**L`` unknowns); ``L = 40`` is a trillion points.
    bc : {'dirichlet', 'neumann', 'periodic'} or a pair (left, right)
        ``'dirichlet'``: ``tridiag(-1, 2, -1)`` (zero values outside the grid), rank 3;
        ``'neumann'``: the same with the corner entries ``1`` (zero flux through the end of
        a cell-centred grid; singular, its null space is the constants), rank 5;
        ``'periodic'``: the circulant, rank 3.  A pair such as ``('dirichlet', 'neumann')``
        sets the two ends separately (rank 4).
    h : None, float or 'unit'
        ``None``: the bare stencil; a number: multiplied by ``h**-2``; ``'unit'``: ``h`` the
        step of the usual grid on ``[0, 1]`` for that ``bc`` (:func:`grid_step`), applied
        as an exact power of two times a mantissa so that it never overflows (``2**(2L)``
        for large ``L``, spread over the cores).
    dtype, xp :
        Floating dtype (float64 default) and backend.

    Examples
    --------
    >>> import numpy as np, tensortrain as tt
    >>> A = tt.qtt.laplacian_1d(3)
    >>> A.ranks
    (1, 3, 3, 1)
    >>> A.full()[:3, :3].tolist()
    [[2.0, -1.0, 0.0], [-1.0, 2.0, -1.0], [0.0, -1.0, 2.0]]
    """
    return laplacian([L], bc, h=h, dtype=dtype, xp=xp)


def laplacian(dims, bc="dirichlet", *, h=None, dtype=np.float64, xp=None):
    """The d-dimensional second difference as the Kronecker sum of 1-D ones.

    ``A = A_1 x I x ... x I + I x A_2 x I x ... + ... + I x ... x A_d`` where ``A_k`` is
    :func:`laplacian_1d` on ``2**dims[k]`` points; the QTT has ``sum(dims)`` cores, the
    bits of dimension 1 first (each most significant bit first), so the unknown
    ``u[i_1, ..., i_d]`` sits at position ``(i_1 N_2 + i_2) N_3 + ...`` in C-order.

    Parameters
    ----------
    dims : int or sequence of int
        Bits per dimension, e.g. ``[8, 8, 8]`` for a ``256**3`` grid (ttpy's
        ``qlaplace_dd([8, 8, 8])``).
    bc : str, pair, or one of those per dimension
        As in :func:`laplacian_1d`: a string applies to every dimension; a pair of strings
        ``(left, right)`` applies to every dimension too, except when there are exactly two
        dimensions, where a sequence of two is read as one ``bc`` per dimension (write
        ``[("dirichlet", "neumann")] * 2`` for the same mixed pair in both).
    h : None, number, 'unit', or one per dimension
        The ``h**-2`` scaling of each dimension (see :func:`laplacian_1d`); ``None`` (the
        default) gives the bare stencils, whose eigenvalues lie in ``[0, 4 d]``.

    Notes
    -----
    Built by the carry automaton of the module docstring with one more state, "no term
    applied yet": TT-ranks 2 between dimensions and at most 4 inside them (3 in the first
    dimension; Neumann corners add up to 2).

    Complexity: ``O(sum(dims))``.

    Examples
    --------
    >>> import numpy as np, tensortrain as tt
    >>> A = tt.qtt.laplacian([2, 3])
    >>> A.ranks
    (1, 3, 2, 4, 4, 1)
    >>> A1, A2 = tt.qtt.laplacian_1d(2).full(), tt.qtt.laplacian_1d(3).full()
    >>> bool(np.allclose(A.full(), np.kron(A1, np.eye(8)) + np.kron(np.eye(4), A2)))
    True
    """
    dims = _dims(dims)
    nd = len(dims)
    if isinstance(bc, str) or (isinstance(bc, (tuple, list)) and len(bc) == 2
                               and all(isinstance(b, str) for b in bc) and nd != 2):
        bcs = (bc,) * nd
    else:
        bcs = _per_dim(bc, nd, "bc")
    bcs = [_check_bc(b) for b in bcs]
    hs = _per_dim(h, nd, "h")
    scales = [_h_scale(hk, L, pair, 2) for hk, L, pair in zip(hs, dims, bcs, strict=True)]
    # one common power of two for all dimensions, the rest in the weights
    e0 = max(e for _, e in scales)
    dtype, xp = _setup(dtype, xp)
    blocks = []
    for L, pair, (mant, e) in zip(dims, bcs, scales, strict=True):
        f = math.ldexp(mant, e - e0)
        corners = {}
        if pair[0] == "neumann":
            corners[0] = -f
        if pair[1] == "neumann":
            corners[1] = -f
        blocks.append(_block(L, {-1: -f, 0: 2 * f, 1: -f}, pair, corners))
    return TTMatrix(_automaton(blocks, dtype=dtype, xp=xp, scale_exp=e0))


def kron_sum(operators):
    """``A_1 x I x ... x I + ... + I x ... x A_d`` for square TTMatrix operators ``A_k``.

    Exact: the ranks inside the cores of ``A_k`` are those of ``A_k`` plus 2 (one state for
    "term applied" and one for "not yet"), and 2 between the operators.  Any row and column
    modes (each ``A_k`` square: rows = columns); padded operators are refused.

    Complexity: ``O(sum_k d_k n_k^2 (r_k + 2)^2)``.
    """
    if isinstance(operators, TTMatrix) or not isinstance(operators, (list, tuple)):
        raise TypeError(f"kron_sum needs a list of TTMatrix objects, got "
                        f"{type(operators).__name__}")
    if not operators:
        raise TTError("kron_sum needs at least one operator, got an empty list")
    for k, a in enumerate(operators):
        if not isinstance(a, TTMatrix):
            raise TypeError(f"operators[{k}] must be a TTMatrix, got {type(a).__name__}")
        if a.row_modes != a.col_modes:
            raise ModeError(f"operators[{k}] must be square with equal row and column modes, "
                            f"got row modes {a.row_modes} and column modes {a.col_modes}")
        if a.is_padded:
            raise ModeError(f"operators[{k}] is padded (shape {a.shape}, padded shape "
                            f"{a.padded_shape}); build it with modes that cover its size")
    xp = get_xp(*[a.cores[0] for a in operators])
    dtype = np.result_type(*[a.dtype for a in operators])
    nop = len(operators)
    cores = []
    for b, a in enumerate(operators):
        first_op, last_op = b == 0, b == nop - 1
        for k, g in enumerate(a.cores):
            g = g.astype(dtype, copy=False)
            r0, m, _, r1 = g.shape
            eye = xp.eye(m, dtype=dtype)
            # left states: [applied, inner..., pending]; boundary states [applied, pending]
            left_in = 1 if first_op and k == 0 else (2 if k == 0 else r0 + 2)
            right_out = 1 if last_op and k == a.d - 1 else (2 if k == a.d - 1 else r1 + 2)
            c = xp.zeros((left_in, m, m, right_out), dtype=dtype)
            # index helpers
            li_app, li_pen = (None, 0) if (first_op and k == 0) else (0, left_in - 1)
            ri_app, ri_pen = (0, None) if (last_op and k == a.d - 1) else (0, right_out - 1)
            li_in = slice(0, 1) if k == 0 else slice(1, 1 + r0)     # inner states of A (left)
            ri_in = slice(0, 1) if k == a.d - 1 else slice(1, 1 + r1)
            # applied -> applied: identity
            if li_app is not None:
                c[li_app, :, :, ri_app] = eye
            # pending -> pending: identity (only if someone to the right can still apply)
            if ri_pen is not None and li_pen is not None:
                c[li_pen, :, :, ri_pen] = eye
            # the operator's own chain: enter from pending at k = 0, leave to applied at the end
            src = li_pen if k == 0 else li_in
            if k == a.d - 1:
                if k == 0:
                    c[src, :, :, ri_app] = c[src, :, :, ri_app] + g[0, :, :, 0]
                else:
                    c[src, :, :, ri_app] = c[src, :, :, ri_app] + g[:, :, :, 0]
            elif k == 0:
                c[src, :, :, ri_in] = g[0]
            else:
                c[src, :, :, ri_in] = g
            cores.append(c)
    return TTMatrix(cores)


def diag(x):
    """The diagonal TTMatrix ``diag(x)`` of a TTTensor ``x`` (same ranks, rows = columns =
    ``x.shape``); ``diag(x) @ y`` is the elementwise product ``x * y``.

    Complexity: ``O(d n^2 r^2)`` memory.

    Examples
    --------
    >>> import numpy as np, tensortrain as tt
    >>> x = tt.qtt.grid(2)
    >>> bool(np.allclose(tt.qtt.diag(x).full(), np.diag(x.full().ravel())))
    True
    """
    if not isinstance(x, TTTensor):
        raise TypeError(f"diag needs a TTTensor, got {type(x).__name__}")
    xp = x.xp
    cores = []
    for c in x.cores:
        n = c.shape[1]
        eye = xp.eye(n, dtype=c.dtype)
        cores.append(c[:, :, None, :] * eye[None, :, :, None])
    return TTMatrix(cores)


# ---- vectors ---------------------------------------------------------------------------------

def _affine(L, a, b, endpoint):
    """``(x0, [c_1 .. c_L])`` with grid point ``i`` at ``x0 + sum_k c_k i_k``, ``i_1`` the most
    significant bit: ``c_k = h 2**(L-k)`` computed as a power of two times one factor, so that
    no intermediate overflows for any ``L``."""
    a = float(_check_scalar(a, "a"))
    b = float(_check_scalar(b, "b"))
    # endpoint: h 2**(L-k) = (b - a) 2**-k / (1 - 2**-L); otherwise (b - a) 2**-k
    f = (b - a) / (1.0 - math.ldexp(1.0, -L)) if endpoint else b - a
    return a, [f * math.ldexp(1.0, -k) for k in range(1, L + 1)]


def grid(L, a=0.0, b=1.0, *, endpoint=True, dtype=np.float64, xp=None):
    """The grid ``x_i = a + i h`` on ``2**L`` points as a rank-2 QTT (``numpy.linspace``).

    ``endpoint=True``: ``h = (b - a) / (2**L - 1)``, so ``x`` runs from ``a`` to ``b``;
    ``endpoint=False``: ``h = (b - a) / 2**L``.  For the interior points of a Dirichlet grid
    use ``grid(L, a + h, b - h)`` with ``h = grid_step(L, a, b)``.

    Complexity: ``O(L)``.

    Examples
    --------
    >>> import numpy as np, tensortrain as tt
    >>> x = tt.qtt.grid(3, 0.0, 7.0)
    >>> x.ranks, x.full().ravel().tolist()
    ((1, 2, 2, 1), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    """
    L = _check_L(L)
    dtype, xp = _setup(dtype, xp)
    x0, c = _affine(L, a, b, endpoint)
    cores = []
    for k in range(L):
        g = np.zeros((2, 2, 2))
        g[0, :, 0] = 1.0
        g[1, :, 1] = 1.0
        g[0, 1, 1] = c[k]
        cores.append(g)
    # first core: the row [1, x0 + c_1 i_1]; last core: the column [., 1]
    cores[0] = cores[0][:1].copy()
    cores[0][0, :, 1] += x0
    cores[-1] = cores[-1][:, :, 1:].copy()
    return TTTensor(_to_backend(cores, dtype, xp))


def exp(L, alpha=1.0, a=0.0, b=1.0, *, endpoint=True, dtype=None, xp=None):
    """``exp(alpha * x)`` on :func:`grid` ``(L, a, b)`` as a rank-1 QTT (real or complex
    ``alpha``).

    The factor ``exp(alpha x_i) = exp(alpha a) prod_k exp(alpha c_k i_k)``.  Each core is
    balanced in magnitude (the logarithms are spread evenly over the cores), so nothing
    overflows while the entries themselves are representable.

    Complexity: ``O(L)``.
    """
    L = _check_L(L)
    alpha = _check_scalar(alpha, "alpha")
    dtype, xp = _setup(dtype, xp, [complex(alpha)])
    x0, c = _affine(L, a, b, endpoint)
    logs = [np.array([0.0, alpha * ck]) + alpha * x0 / L for ck in c]
    # shift each core's real log so that its largest entry is about the mean
    tops = [float(np.max(np.real(lg))) for lg in logs]
    mean = sum(tops) / L
    cores = [np.exp(lg - top + mean).reshape(1, 2, 1) for lg, top in zip(logs, tops, strict=True)]
    return TTTensor(_to_backend(cores, dtype, xp))


def _trig(L, omega, phase, a, b, endpoint, which, dtype, xp):
    L = _check_L(L)
    omega = float(_check_scalar(omega, "omega"))
    phase = float(_check_scalar(phase, "phase"))
    dtype, xp = _setup(dtype, xp)
    x0, c = _affine(L, a, b, endpoint)

    def rot(t):
        return np.array([[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])

    cores = []
    for k in range(L):
        g = np.zeros((2, 2, 2))
        for i in (0, 1):
            g[:, i, :] = rot(omega * c[k] * i)
        cores.append(g)
    t0 = omega * x0 + phase
    first = np.array([[math.cos(t0), math.sin(t0)]])          # [cos, sin] of the offset
    cores[0] = np.einsum("ab,bic->aic", first, cores[0])
    out = np.array([[1.0], [0.0]]) if which == "cos" else np.array([[0.0], [1.0]])
    cores[-1] = np.einsum("aib,bc->aic", cores[-1], out)
    return TTTensor(_to_backend(cores, dtype, xp))


def sin(L, omega=1.0, a=0.0, b=1.0, *, phase=0.0, endpoint=True, dtype=np.float64, xp=None):
    """``sin(omega * x + phase)`` on :func:`grid` ``(L, a, b)`` as a rank-2 QTT.

    Built from the angle-addition formula: the cores are the rotation matrices of the
    angles ``omega c_k i_k``, every entry bounded by 1.

    Complexity: ``O(L)``.
    """
    return _trig(L, omega, phase, a, b, endpoint, "sin", dtype, xp)


def cos(L, omega=1.0, a=0.0, b=1.0, *, phase=0.0, endpoint=True, dtype=np.float64, xp=None):
    """``cos(omega * x + phase)`` on :func:`grid` ``(L, a, b)`` as a rank-2 QTT (see
    :func:`sin`).

    Complexity: ``O(L)``.
    """
    return _trig(L, omega, phase, a, b, endpoint, "cos", dtype, xp)

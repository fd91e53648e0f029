"""Vector-Jacobian products for TT objects, usable without ``tensortrain.nn``.

The central pair is :func:`matmul_forward` / :func:`matmul_backward` for ``Y = X @ W.T``
with ``W`` a :class:`~tensortrain.TTMatrix`.  The forward pass runs the same contraction plan
as ``X @ W.T`` and keeps, per step, a :class:`~tensortrain.contraction.StepRecord`: the state
the step read, the merged block as the step's ``(rows, K)`` matrix, and the merges of the
block's leading cores.  The backward pass walks the steps in reverse.  A step is
``out[p, n, q] = sum_k block[n, k] state[p, k, q]``, so its two gradients are products of
the same operands: ``dblock = sum_{p,q} g[p, n, q] state[p, k, q]`` (the left state, the
input absorbed up to the block, against the right state, the output gradient absorbed down
to it) and ``g_in[p] = block.T @ g[p]``.  When ``P`` or ``Q`` is 1 each is one GEMM on
reshaped views; otherwise the block gradient is a sum over ``p`` of small products, taken
in chunks that stay in cache.  Each block's gradient is then split over its cores with the
merges the forward pass kept, so nothing is merged again.  No dense ``W`` is formed, no
product with the data is recomputed, and the backward does twice the forward's FLOPs.

Gradients are defined for real dtypes (float32, float64).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import _scaling, contraction
from ._backend import get_xp, to_host
from ._validation import as_float_array
from .errors import ShapeError, TTError
from .matrix import TTMatrix, _crop, _pad
from .tensor import TTTensor

__all__ = [
    "MatmulContext",
    "matmul_forward",
    "matmul_backward",
    "matmul_vjp",
    "dot_grad",
    "norm_grad",
    "bilinear_grad",
]


@dataclass(slots=True)
class MatmulContext:
    """What :func:`matmul_backward` needs from the forward pass.

    ``record`` holds one :class:`tensortrain.contraction.StepRecord` per plan step: the merged
    block, the state it multiplied and the merges of its cores.  ``workspace`` is the
    :class:`tensortrain.contraction.Workspace` the forward pass wrote its states to (or
    ``None``); the backward pass writes the gradients of those states there too.
    """

    W: TTMatrix
    record: list
    batch: int
    dtype: np.dtype
    workspace: object = None


def _check_real(*dtypes):
    for dt in dtypes:
        if np.dtype(dt).kind == "c":
            raise NotImplementedError("gradients are implemented for real dtypes only "
                                      f"(float32, float64), got {dt}")


def _real_operand(a, where):
    """``a`` as a real floating array (a plain float32 or float64 ndarray is taken as it is)."""
    if type(a) is not np.ndarray or a.dtype.char not in "fd":
        a = as_float_array(a, where)
        _check_real(a.dtype)
    return a


def matmul_forward(W, x, workspace=None, objective=None):
    """``y = x @ W.T`` for ``x`` of shape ``(B, N)``, and the context for the backward pass.

    Complexity: as ``x @ W.T`` (see :meth:`TTMatrix.matmul_plan`); the context holds every
    step's input state (memory about the sum of the plan's state sizes).  With a
    ``workspace`` (:class:`tensortrain.contraction.Workspace`) those states live in arrays
    reused from call to call; the context is then valid only until the next forward pass
    with the same workspace.  ``objective`` chooses the plan
    (:func:`tensortrain.contraction.plan_matmat`); by default ``'train'`` (the least
    modelled time of this pass and the backward pass) for NumPy arrays, ``'flops'`` on
    other backends.
    """
    if not isinstance(W, TTMatrix):
        raise TypeError(f"matmul_forward needs a TTMatrix, got {type(W).__name__}")
    x = _real_operand(x, "x")
    _check_real(W.dtype)
    M, N = W.shape
    if x.ndim != 2 or x.shape[1] != N:
        raise ShapeError(f"matmul_forward: expected x of shape (batch, {N}), got {x.shape}")
    get_xp(x, W.cores[0])
    B = x.shape[0]
    dtype = W._result_dtype(x.dtype)
    if objective is None:
        objective = contraction.default_objective(W.cores[0], train=True)
    plan = contraction.plan_matmat(W.row_modes, W.col_modes, W.ranks, B, dtype.itemsize,
                                   objective)
    record = []
    y = contraction.execute(plan, W.cores, _pad(x, W.padded_shape[1], 1), record=record,
                            workspace=workspace)
    return _crop(y, M, 1), MatmulContext(W, record, B, dtype, workspace)


def _gemm_grads(rec, g, need_input, xp=None, out=None):
    """Backward of one step ``out[p, n, q] = sum_k block[n, k] * state[p, k, q]``.

    ``g`` is the gradient of the step's output (laid out like it).  Returns ``(dblock,
    g_in)``: the gradient of the ``(rows, K)`` block matrix and (if ``need_input``) that of the
    state, laid out like the state (written to ``out``, a flat array, if given).  One GEMM
    each when ``P`` or ``Q`` is 1 (every plan has such a step, and most small plans have
    nothing else); else see :func:`_batched_block_grad`.
    """
    P, K, Q = rec.P, rec.K, rec.Q
    block, state = rec.block, rec.state
    rows = block.shape[0]
    if P == 1:
        g2, s2 = g.reshape(rows, Q), state.reshape(K, Q)
        dblock = g2 @ s2.T if rows >= K else (s2 @ g2.T).T     # the long side first: faster
        if not need_input:
            return dblock, None
        if out is None:
            return dblock, block.T @ g2
        return dblock, xp.matmul(block.T, g2, out=out.reshape(K, Q))
    if Q == 1:
        g2, s2 = g.reshape(P, rows), state.reshape(P, K)
        dblock = g2.T @ s2 if rows >= K else (s2.T @ g2).T
        if not need_input:
            return dblock, None
        if out is None:
            return dblock, g2 @ block
        return dblock, xp.matmul(g2, block, out=out.reshape(P, K))
    g3 = g.reshape(P, rows, Q)
    dblock = _batched_block_grad(state.reshape(P, K, Q), g3)
    if not need_input:
        return dblock, None
    if out is None:
        return dblock, block.T @ g3
    return dblock, xp.matmul(block.T, g3, out=out.reshape(P, K, Q))


#: The products ``g[p] @ state[p].T`` of a batched step are summed over ``p`` in chunks of at
#: most this many elements (1 MiB of float32, so a chunk is summed while in cache), in at
#: most :data:`_MAX_CHUNKS` chunks.
_CHUNK_ELEMENTS = 1 << 18
_MAX_CHUNKS = 16


def _batched_block_grad(s3, g3):
    """``sum_p g3[p] @ s3[p].T`` for ``P, Q > 1``: batched GEMMs over chunks of ``p`` on views
    of the two states, each chunk's products summed while they are in cache (faster on a CPU
    than one batched product and one sum; see docs/performance.md)."""
    P, rows, _ = g3.shape
    K = s3.shape[1]
    chunk = max(_CHUNK_ELEMENTS // (rows * K), -(-P // _MAX_CHUNKS), 1)
    sT = s3.transpose(0, 2, 1)
    dblock = (g3[:chunk] @ sT[:chunk]).sum(axis=0)
    for i in range(chunk, P, chunk):
        dblock += (g3[i:i + chunk] @ sT[i:i + chunk]).sum(axis=0)
    return dblock


def _split_block_grad(cores, lo, hi, D, merged):
    """Split the gradient ``D`` of a merged block ``(r_lo, M, N, r_{hi+1})`` over its cores.

    ``merged[t - lo]`` is the merge of the cores ``lo..t`` (``t < hi``) that the forward pass
    built on its way to the block (:class:`tensortrain.contraction.StepRecord`), so nothing
    is merged again.  One sweep from the right: ``D`` is the gradient of the merge of
    ``lo..t``; it gives core ``t``'s gradient with the merge of ``lo..t-1``, and that merge's
    gradient with core ``t``.  Every array keeps 2 to 6 axes, whatever the number of cores,
    and the work is two small GEMMs and one copy per core.
    """
    grads = [None] * (hi - lo + 1)
    r0 = D.shape[0]
    for t in range(hi, lo, -1):
        left = merged[t - lo - 1]                          # (r_lo, Mp, Np, r_t)
        _, Mp, Np, rt = left.shape
        _, mt, nt, r1 = cores[t].shape
        E = D.reshape(r0, Mp, mt, Np, nt, r1).transpose(0, 1, 3, 2, 4, 5).reshape(
            r0 * Mp * Np, mt * nt * r1)
        grads[t - lo] = (left.reshape(r0 * Mp * Np, rt).T @ E).reshape(rt, mt, nt, r1)
        D = (E @ cores[t].reshape(rt, mt * nt * r1).T).reshape(r0, Mp, Np, rt)
    grads[0] = D
    return grads


def matmul_backward(ctx, dy, need_input_grad=True):
    """Gradients of ``y = x @ W.T`` given ``dy = dL/dy`` of shape ``(B, M)``.

    Returns ``(dx, dcores)``: ``dx`` of shape ``(B, N)`` (``None`` when
    ``need_input_grad=False``) and one gradient per core, shaped like ``W.cores``.

    Complexity: two (batched) products per plan step: twice the forward's FLOPs.
    """
    W = ctx.W
    dy = _real_operand(dy, "dy")
    M, N = W.shape
    if dy.shape != (ctx.batch, M):
        raise ShapeError(f"matmul_backward: expected dy of shape {(ctx.batch, M)}, got "
                         f"{dy.shape}")
    xp = get_xp(dy, W.cores[0])
    Mp, Np = W.padded_shape
    g = _pad(dy.astype(ctx.dtype, copy=False), Mp, 1)
    dcores = [None] * W.d
    record, ws = ctx.record, ctx.workspace
    for idx in range(len(record) - 1, -1, -1):
        rec = record[idx]
        out = None
        size = rec.P * rec.K * rec.Q
        if ws is not None and idx > 0 and size >= ws.MIN_SIZE:   # an intermediate; dx is new
            out = ws.take(("grad", idx), size, ctx.dtype, xp)
        dblock, g = _gemm_grads(rec, g, idx > 0 or need_input_grad, xp, out)
        code = rec.code
        D = dblock.reshape(code.grad_shape).transpose(code.grad_axes)   # (r, M, N, r')
        lo, hi = code.step.lo, code.step.hi
        if lo == hi:
            dcores[lo] = D
        else:
            dcores[lo:hi + 1] = _split_block_grad(W.cores, lo, hi, D, rec.merged)
    dx = None
    if need_input_grad:
        dx = _crop(g.reshape(ctx.batch, Np), N, 1)
    return dx, dcores


def matmul_vjp(W, x, dy, objective=None):
    """``(y, dx, dcores)`` for ``y = x @ W.T``: forward and backward in one call
    (``objective`` as in :func:`matmul_forward`)."""
    y, ctx = matmul_forward(W, x, objective=objective)
    dx, dcores = matmul_backward(ctx, dy)
    return y, dx, dcores


def _check_dot_operands(a, b, where):
    if not isinstance(a, (TTTensor, TTMatrix)) or type(a) is not type(b):
        raise TypeError(f"{where} needs two TTTensors or two TTMatrix objects, got "
                        f"{type(a).__name__} and {type(b).__name__}")
    a._same_structure(b, where)
    _check_real(a.dtype, b.dtype)
    if isinstance(a, TTMatrix) and a.is_padded:
        raise NotImplementedError(f"{where} of padded TT-matrices is not implemented")


def _scaled_interfaces(a_cores, b_cores, xp):
    """Left and right interfaces of ``<a, b>`` on cores scaled by powers of two.

    Returns ``(a_hat, b_hat, left, right, a_exp, b_exp, left_exp, right_exp)``: ``a_k ==
    a_hat[k] * 2**a_exp[k]`` (likewise ``b``), and the true interfaces are ``left[k] *
    2**(left_exp[k] + sum_{j<k} (a_exp[j] + b_exp[j]))`` and ``right[k] * 2**(right_exp[k] +
    sum_{j>k} (a_exp[j] + b_exp[j]))``.  Every interface is rescaled after each core, so
    nothing overflows or underflows for any magnitude or ``d``.  The exponents come to the
    host in one transfer.
    """
    d = len(a_cores)
    a_hat, b_hat, exps = [], [], []
    for x, y in zip(a_cores, b_cores):
        x, ex = _scaling.normalize(x)
        y, ey = _scaling.normalize(y)
        a_hat.append(x)
        b_hat.append(y)
        exps += [ex, ey]
    dtype = np.result_type(a_hat[0].dtype, b_hat[0].dtype)
    left = [xp.ones((1, 1), dtype=dtype)]
    for k in range(d - 1):
        t = xp.tensordot(left[-1], a_hat[k], axes=([0], [0]))            # (rb, n, ra')
        v, e = _scaling.normalize(xp.tensordot(t, b_hat[k], axes=([0, 1], [0, 1])))
        left.append(v)
        exps.append(e)
    right = [None] * d
    right[d - 1] = xp.ones((1, 1), dtype=dtype)
    for k in range(d - 1, 0, -1):
        t = xp.tensordot(a_hat[k], right[k], axes=([2], [0]))             # (ra, n, rb')
        v, e = _scaling.normalize(xp.tensordot(t, b_hat[k], axes=([1, 2], [1, 2])))
        right[k - 1] = v
        exps.append(e)
    host = _host_ints(exps, xp)
    a_exp, b_exp = host[0:2 * d:2], host[1:2 * d:2]
    steps_left = host[2 * d:2 * d + d - 1]
    steps_right = host[2 * d + d - 1:]
    left_exp = [0]
    for e in steps_left:
        left_exp.append(left_exp[-1] + e)
    right_exp = [0] * d
    for i, k in enumerate(range(d - 1, 0, -1)):
        right_exp[k - 1] = right_exp[k] + steps_right[i]
    return a_hat, b_hat, left, right, a_exp, b_exp, left_exp, right_exp


def _host_ints(values, xp):
    """Host ints of a list of device (or NumPy) 0-d integers, in one transfer."""
    if not values:
        return []
    stacked = xp.stack([xp.asarray(v).astype(np.int64) for v in values])
    return [int(v) for v in to_host(stacked)]


def _dot_grad_parts(a, b):
    """Scaled value and core gradients of ``<a, b>``: ``(value, e_value, ga, ea, gb, eb)``
    with ``<a, b> = value * 2**e_value``, ``d<a,b>/da_k = ga[k] * 2**ea[k]`` and likewise for
    ``b``."""
    xp = get_xp(a.cores[0], b.cores[0])
    a_hat, b_hat, left, right, a_exp, b_exp, lexp, rexp = _scaled_interfaces(
        a._cores3(), b._cores3(), xp)
    total = sum(a_exp) + sum(b_exp)
    ga, gb, ea, eb = [], [], [], []
    for k in range(len(a_hat)):
        # d<a,b>/db_k[b0, i, b1] = sum L[a0, b0] a_k[a0, i, a1] R[a1, b1]
        la = xp.tensordot(left[k], a_hat[k], axes=([0], [0]))             # (rb0, n, ra1)
        gb.append(xp.tensordot(la, right[k], axes=([2], [0])))
        eb.append(lexp[k] + rexp[k] + total - b_exp[k])
        lb = xp.tensordot(left[k], b_hat[k], axes=([1], [0]))             # (ra0, n, rb1)
        ga.append(xp.tensordot(lb, right[k], axes=([2], [1])))
        ea.append(lexp[k] + rexp[k] + total - a_exp[k])
    k = len(a_hat) - 1
    t = xp.tensordot(left[k], a_hat[k], axes=([0], [0]))                   # (rb, n, 1)
    value = to_host(xp.tensordot(t, b_hat[k], axes=([0, 1, 2], [0, 1, 2])))[()]
    return float(value), lexp[k] + total, ga, ea, gb, eb


def dot_grad(a, b):
    """Gradients of ``dot(a, b)`` with respect to the cores of ``a`` and of ``b``.

    Returns ``(value, da_cores, db_cores)``; real TTTensor or unpadded TTMatrix operands of
    equal structure.  Cores and interfaces are scaled by powers of two on the way, so a
    value or gradient that is representable comes out right whatever the magnitudes of the
    cores (entries beyond the range are ``inf``).  Complexity: ``O(d n r^3)``.
    """
    _check_dot_operands(a, b, "dot_grad")
    value, ev, ga, ea, gb, eb = _dot_grad_parts(a, b)
    with np.errstate(over="ignore", under="ignore"):
        da = [_scaling.ldexp(g, e).reshape(c.shape) for g, e, c in zip(ga, ea, a.cores)]
        db = [_scaling.ldexp(g, e).reshape(c.shape) for g, e, c in zip(gb, eb, b.cores)]
    return _scaling.scalar_ldexp(value, ev), da, db


def norm_grad(a):
    """``(norm, dcores)``: the Frobenius norm of ``a`` and its gradient w.r.t. the cores.

    ``d||a||/dG_k = (d<a, a>/dG_k) / (2 ||a||)``, formed from the scaled parts so that neither
    ``<a, a>`` nor the gradient overflows on the way when the norm is representable.
    Complexity: ``O(d n r^3)``.
    """
    _check_dot_operands(a, a, "norm_grad")
    value, ev, ga, ea, gb, eb = _dot_grad_parts(a, a)
    if not value > 0:
        if value == 0:
            raise ZeroDivisionError("the norm is not differentiable at the zero tensor")
        raise TTError(f"norm_grad: the cores hold NaN or Inf (<a, a> = {value})")
    if ev % 2:                       # make the exponent even so that its half is exact
        value, ev = value * 2.0, ev - 1
    root = math.sqrt(value)          # ||a|| = root * 2**(ev // 2)
    half = ev // 2
    grads = []
    with np.errstate(over="ignore", under="ignore"):
        for x, y, e1, e2, c in zip(ga, gb, ea, eb, a.cores):
            # x * 2**e1 and y * 2**e2 are the same gradient for a == b; average them
            g = (_scaling.ldexp(x / (2 * root), e1 - half)
                 + _scaling.ldexp(y / (2 * root), e2 - half))
            grads.append(g.reshape(c.shape))
    return _scaling.scalar_ldexp(root, half), grads


def bilinear_grad(x, W, y):
    """``(value, dx, dcores, dy)`` for ``value = sum_b x_b^T W y_b``.

    ``x`` has shape ``(M,)`` or ``(B, M)``, ``y`` shape ``(N,)`` or ``(B, N)``.  It is the
    matmul backward pass with ``dL/d(W y) = x``: no dense ``W`` is formed.
    """
    x = as_float_array(x, "x")
    y = as_float_array(y, "y")
    vec = x.ndim == 1
    x2 = x[None, :] if vec else x
    y2 = y[None, :] if y.ndim == 1 else y
    if x2.shape[0] != y2.shape[0]:
        raise ShapeError(f"bilinear_grad: x and y need the same batch, got {x.shape} and "
                         f"{y.shape}")
    wy, ctx = matmul_forward(W, y2)                     # (B, M) = y @ W.T
    if x2.shape != wy.shape:
        raise ShapeError(f"bilinear_grad: x must have shape {wy.shape[1:]} or {wy.shape}, got "
                         f"{x.shape}")
    xp = get_xp(x2, wy)
    value = float(xp.sum(x2 * wy))
    dy, dcores = matmul_backward(ctx, x2)
    dx = wy[0] if vec else wy
    return value, dx, dcores, (dy[0] if y.ndim == 1 else dy)

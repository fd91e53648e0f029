"""The fast paths of the TT-matrix product and its backward pass give the same results as
the general ones: the named step records, the cached step programs, the single-GEMM and
chunked batched backward steps, the splitting of merged blocks with the forward's merges,
the workspace, the NumPy fast path of ``@`` and the layer's cached weight.

Gradients are checked against central finite differences of a dense matrix built here,
independently of ``tensortrain.contraction`` (``L = sum(dy * (x @ W.T))`` is affine in each
core entry, so the differences have no truncation error).  No test measures time.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _helpers import central_diff, to_numpy

import tensortrain as tt
from tensortrain import contraction, gradients
from tensortrain.errors import ShapeError
from tensortrain.matrix import TTMatrix
from tensortrain.nn.tt_layer import TTLinear


# ---- helpers -------------------------------------------------------------------------------------
def _dense(cores):
    """The dense (padded) matrix of TT-matrix cores, by einsum core by core."""
    acc = np.ones((1, 1, 1))
    for c in cores:
        M, N, _ = acc.shape
        _, m, n, s = c.shape
        acc = np.einsum("abr,rmns->ambns", acc, c).reshape(M * m, N * n, s)
    return acc[:, :, 0]


def _cores(rng, rows, cols, ranks):
    return [rng.standard_normal((ranks[k], rows[k], cols[k], ranks[k + 1]))
            / math.sqrt(ranks[k] * cols[k]) for k in range(len(rows))]


def _close(a, b, rtol=1e-10):
    a, b = to_numpy(a), np.asarray(b)
    scale = max(float(np.abs(b).max()), 1e-300)
    assert np.abs(a - b).max() <= rtol * scale, (float(np.abs(a - b).max()), scale)


def _fd_grads(cores, shape, x, dy):
    """Finite differences of ``sum(dy * (x @ A.T))`` in every core entry (``A`` the logical
    block of the dense matrix); the loss is linear in each entry, so a step of 1 is exact."""
    M, N = shape
    cs = [c.copy() for c in cores]
    return [central_diff(lambda: np.sum(dy * (x @ _dense(cs)[:M, :N].T)), c, h=1.0) for c in cs]


def _check_vjp(W, x, dy, blocks=None, monkeypatch=None, workspace=None):
    """``matmul_forward`` / ``matmul_backward`` (under a forced plan if ``blocks``) against
    the dense product and finite differences."""
    if blocks is not None:
        forced = contraction.plan_from_blocks(W.row_modes, W.col_modes, W.ranks, x.shape[0],
                                              blocks)
        monkeypatch.setattr(contraction, "plan_matmat", lambda *a, **k: forced)
    y, ctx = gradients.matmul_forward(W, x, workspace=workspace)
    dx, dcores = gradients.matmul_backward(ctx, dy)
    M, N = W.shape
    A = _dense([to_numpy(c) for c in W.cores])[:M, :N]
    xh, dyh = to_numpy(x), to_numpy(dy)
    _close(y, xh @ A.T)
    _close(dx, dyh @ A)
    for got, fd, c in zip(dcores, _fd_grads([to_numpy(c) for c in W.cores], W.shape, xh, dyh),
                          W.cores):
        assert got.shape == c.shape
        _close(got, fd, 1e-8)
    return ctx


# ---- records, programs and the shared GEMM sizes -------------------------------------------------
def test_records_are_named_and_consistent():
    W = tt.random_matrix((2, 3, 2), (3, 2, 2), 3, rng=1)
    _, ctx = gradients.matmul_forward(W, np.ones((4, W.shape[1])))
    assert ctx.record
    for rec in ctx.record:
        assert isinstance(rec, contraction.StepRecord)
        assert rec[0] is rec.step and rec[1] == rec.side        # positions kept
        g = rec.code.gemm
        assert (rec.side, rec.P, rec.K, rec.Q) == (g.side, g.P, g.K, g.Q)
        assert rec.block.shape == (g.rows, g.K)
        assert rec.state.size == g.P * g.K * g.Q
        assert len(rec.merged) == rec.step.hi - rec.step.lo
        assert rec.step.flops == g.flops and rec.step.state_size == g.size_out


@pytest.mark.parametrize("batch_last", [False, True])
def test_programs_match_the_cost_model(batch_last):
    rng = np.random.default_rng(0)
    for _ in range(30):
        d = int(rng.integers(1, 6))
        rows = tuple(int(v) for v in rng.integers(1, 4, d))
        cols = tuple(int(v) for v in rng.integers(1, 4, d))
        ranks = (1,) + tuple(int(v) for v in rng.integers(1, 4, d - 1)) + (1,)
        B = int(rng.integers(1, 5))
        plan = contraction.plan_matmat(rows, cols, ranks, B)
        codes, out_shape = contraction._program(plan, B, batch_last)
        assert contraction._program(plan, B, batch_last)[0] is codes        # cached
        assert out_shape == ((math.prod(rows), B) if batch_last else (B, math.prod(rows)))
        for code, step in zip(codes, plan.steps):
            assert code.step is step
            assert code.gemm.flops == step.flops                 # one size helper for both
            assert code.gemm.size_out == step.state_size
        # the cache is not part of the plan's value
        again = contraction.plan_from_blocks(rows, cols, ranks, B, plan.order)
        assert again == plan and hash(again) == hash(plan)
        cores = _cores(rng, rows, cols, ranks)
        X = rng.standard_normal((B, math.prod(cols)))
        xin = X.T.copy() if batch_last else X
        y = contraction.execute(plan, cores, xin, batch_last=batch_last)
        _close(y, (_dense(cores) @ X.T) if batch_last else (X @ _dense(cores).T))


def test_execute_with_another_batch_than_the_plan():
    rng = np.random.default_rng(1)
    cores = _cores(rng, (2, 3, 2), (3, 2, 2), (1, 2, 3, 1))
    plan = contraction.plan_matmat((2, 3, 2), (3, 2, 2), (1, 2, 3, 1), 4)
    for B in (1, 4, 7):
        X = rng.standard_normal((B, 12))
        _close(contraction.execute(plan, cores, X), X @ _dense(cores).T)
        _close(contraction.execute(plan, cores, X.T.copy(), batch_last=True), _dense(cores) @ X.T)


# ---- gradients on every path ---------------------------------------------------------------------
CASES = [
    # rows, cols, ranks, batch, logical shape (None: not padded)
    ((3,), (4,), (1, 1), 2, None),                       # d = 1: one first step, P and Q 1
    ((3,), (4,), (1, 1), 1, None),
    ((5,), (2,), (1, 1), 3, (4, 2)),                     # d = 1, padded rows
    ((2, 3, 2), (2, 2, 3), (1, 3, 3, 1), 1, None),       # batch 1: steps with P == 1
    ((4, 2), (1, 3), (1, 2, 1), 1, None),
    ((2, 3, 2), (2, 2, 3), (1, 3, 3, 1), 3, (10, 11)),   # padded on both sides
    ((3, 3, 2), (2, 2, 2), (1, 2, 2, 1), 4, (17, 8)),    # padded rows only
    ((2, 2), (3, 3), (1, 2, 1), 5, (4, 7)),              # padded columns only
]


@pytest.mark.parametrize("rows,cols,ranks,batch,shape", CASES)
def test_gradients_default_plans(xp, monkeypatch, rows, cols, ranks, batch, shape):
    monkeypatch.setattr(contraction.Workspace, "MIN_SIZE", 0)    # use it even for tiny arrays
    rng = np.random.default_rng(3)
    cores = _cores(rng, rows, cols, ranks)
    W = TTMatrix(cores, shape) if shape else TTMatrix(cores)
    x = rng.standard_normal((batch, W.shape[1]))
    dy = rng.standard_normal((batch, W.shape[0]))
    Wx = W.to(xp)
    _check_vjp(Wx, xp.asarray(x), xp.asarray(dy))
    _check_vjp(Wx, xp.asarray(x), xp.asarray(dy), workspace=contraction.Workspace())


FORCED = [
    # every kind of step, merged blocks among them, on a 4-core train
    [(0, 3)],                               # one block: the dense matrix
    [(0, 1), (2, 3)], [(2, 3), (0, 1)],     # first, then right / left
    [(1, 2), (0, 0), (3, 3)], [(1, 2), (3, 3), (0, 0)],
    [(3, 3), (1, 2), (0, 0)], [(0, 0), (1, 3)], [(3, 3), (0, 2)],
    [(1, 1), (2, 2), (0, 0), (3, 3)],
]


@pytest.mark.parametrize("blocks", FORCED, ids=str)
@pytest.mark.parametrize("batch,shape", [(1, None), (3, None), (2, (11, 13))])
def test_gradients_forced_plans(monkeypatch, blocks, batch, shape):
    """Single-GEMM steps with ``rows < K`` and ``rows >= K``, batched steps, merged blocks
    on each side, padded and unpadded."""
    rng = np.random.default_rng(5)
    rows, cols, ranks = (2, 3, 1, 2), (3, 2, 2, 2), (1, 2, 3, 2, 1)
    cores = _cores(rng, rows, cols, ranks)
    W = TTMatrix(cores, shape) if shape else TTMatrix(cores)
    x = rng.standard_normal((batch, W.shape[1]))
    dy = rng.standard_normal((batch, W.shape[0]))
    _check_vjp(W, x, dy, blocks, monkeypatch)


def test_single_gemm_orientations_are_all_exercised(monkeypatch):
    """``rows >= K`` and ``rows < K`` both occur among steps with ``P == 1`` and with
    ``Q == 1`` in the forced plans above."""
    rows, cols, ranks = (2, 3, 1, 2), (3, 2, 2, 2), (1, 2, 3, 2, 1)
    seen = set()
    for blocks in FORCED:
        for batch in (1, 3):
            plan = contraction.plan_from_blocks(rows, cols, ranks, batch, blocks)
            for code in contraction._program(plan, batch, False)[0]:
                g = code.gemm
                kind = "P1" if g.P == 1 else ("Q1" if g.Q == 1 else "batched")
                seen.add((kind, g.rows >= g.K))
    assert {("P1", True), ("P1", False), ("Q1", True), ("Q1", False), ("batched", True),
            ("batched", False)} <= seen


@pytest.mark.parametrize("chunk", [1, 2, 5])
def test_chunked_block_gradient(monkeypatch, chunk):
    """The block gradient of a batched step summed in chunks (a ragged last one included)
    equals the unchunked sum and finite differences."""
    rng = np.random.default_rng(6)
    rows, cols, ranks = (2, 3, 2), (3, 2, 2), (1, 2, 2, 1)
    cores = _cores(rng, rows, cols, ranks)
    W = TTMatrix(cores)
    x = rng.standard_normal((7, W.shape[1]))
    dy = rng.standard_normal((7, W.shape[0]))
    blocks = [(1, 1), (0, 0), (2, 2)]                   # batched steps with P = 7 and 21
    _, ctx = gradients.matmul_forward(W, x, objective="flops")
    plain = [rec for rec in ctx.record if rec.P > 1 and rec.Q > 1]
    assert plain
    with monkeypatch.context() as mp:
        mp.setattr(gradients, "_CHUNK_ELEMENTS", chunk)
        mp.setattr(gradients, "_MAX_CHUNKS", 10**6)
        _check_vjp(W, x, dy, blocks, mp)
        for rec in plain:
            g = rng.standard_normal((rec.P, rec.block.shape[0], rec.Q))
            s3 = rec.state.reshape(rec.P, rec.K, rec.Q)
            _close(gradients._batched_block_grad(s3, g), np.einsum("pnq,pkq->nk", g, s3))


def test_gradients_of_forty_cores_with_modes_one(monkeypatch):
    """d = 40, all modes 1 but three: default plan and plans merging up to all 40 cores."""
    rng = np.random.default_rng(8)
    d = 40
    rows, cols = [1] * d, [1] * d
    rows[0], cols[0], rows[21], cols[21], cols[39] = 2, 3, 3, 2, 2
    ranks = (1,) + tuple(int(v) for v in rng.integers(1, 3, d - 1)) + (1,)
    cores = _cores(rng, rows, cols, ranks)
    W = TTMatrix(cores)
    x = rng.standard_normal((2, W.shape[1]))
    dy = rng.standard_normal((2, W.shape[0]))
    _check_vjp(W, x, dy)
    for blocks in ([(0, d - 1)], [(0, 19), (20, d - 1)], [(20, d - 1), (0, 19)],
                   [(5, 30), (0, 4), (31, d - 1)], [(39, 39), (0, 38)]):
        with monkeypatch.context() as mp:
            _check_vjp(W, x, dy, blocks, mp)


def test_split_block_grad_matches_a_dense_derivative():
    """The merged-block gradient split over its cores (with the forward's merges) is the
    chain rule through ``merge_block``."""
    rng = np.random.default_rng(9)
    rows, cols, ranks = (2, 1, 3, 2), (1, 2, 2, 3), (2, 3, 1, 2, 3)
    cores = [rng.standard_normal((ranks[k], rows[k], cols[k], ranks[k + 1])) for k in range(4)]
    merged = [cores[0]]
    for t in range(1, 3):
        merged.append(contraction._merge_pair(merged[-1], cores[t]))
    D = rng.standard_normal(contraction.merge_block(cores, 0, 3).shape)
    grads = gradients._split_block_grad(cores, 0, 3, D, tuple(merged))
    for k in range(4):
        fd = np.empty(cores[k].shape)
        for idx in np.ndindex(cores[k].shape):
            vals = []
            for sign in (1.0, -1.0):
                cs = list(cores)
                cs[k] = cores[k].copy()
                cs[k][idx] += sign
                vals.append(float(np.sum(D * contraction.merge_block(cs, 0, 3))))
            fd[idx] = (vals[0] - vals[1]) / 2
        _close(grads[k], fd, 1e-10)


# ---- the workspace -------------------------------------------------------------------------------
def test_workspace_is_reused_and_never_returned(monkeypatch):
    monkeypatch.setattr(contraction.Workspace, "MIN_SIZE", 0)
    rng = np.random.default_rng(10)
    W = tt.random_matrix((4, 4, 4), (2, 3, 4), 3, rng=2)
    A = W.full()
    ws = contraction.Workspace()
    outputs = []
    for B in (5, 3, 8, 5):                        # shrinking and growing batches
        x = rng.standard_normal((B, W.shape[1]))
        dy = rng.standard_normal((B, W.shape[0]))
        y, ctx = gradients.matmul_forward(W, x, workspace=ws)
        dx, dcores = gradients.matmul_backward(ctx, dy)
        _close(y, x @ A.T)
        _close(dx, dy @ A)
        outputs.append((y, y.copy(), dx, dx.copy()))
        held = list(ws._arrays.values())
        assert held
        for arr in (y, dx, *dcores):
            assert not any(np.shares_memory(arr, h) for h in held)
    for y, y0, dx, dx0 in outputs:                # later calls did not overwrite results
        np.testing.assert_array_equal(y, y0)
        np.testing.assert_array_equal(dx, dx0)
    assert ws.nbytes > 0
    ws.clear()
    assert ws.nbytes == 0


def test_workspace_take_grows_and_keeps_dtype():
    ws = contraction.Workspace()
    a = ws.take("k", 10, np.float32, np)
    b = ws.take("k", 4, np.float32, np)
    assert a.size == 10 and b.size == 4 and np.shares_memory(a, b)
    c = ws.take("k", 20, np.float32, np)
    assert c.size == 20 and not np.shares_memory(a, c)
    d = ws.take("k", 4, np.float64, np)
    assert d.dtype == np.float64 and d.flags.c_contiguous


# ---- the NumPy fast path of @ --------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
def test_fast_path_matches_dense(dtype):
    rng = np.random.default_rng(11)
    W = TTMatrix(tt.random_matrix((2, 3, 2), (3, 2, 2), 2, rng=3).cores, (11, 10))
    A = W.full()
    X = rng.standard_normal((4, 10)).astype(dtype)
    Xr = rng.standard_normal((4, 11)).astype(dtype)
    tol = 1e-5 if np.dtype(dtype).itemsize <= 8 and dtype != np.complex128 else 1e-12
    for x in (X, np.asfortranarray(X), X[:, ::1], rng.standard_normal((4, 20))[:, ::2]):
        _close(x @ W.T, x @ A.T, tol)
        _close(W @ x.T, A @ x.T, tol)
        _close(W @ x[0], A @ x[0], tol)
    _close(Xr @ W, Xr @ A, tol)
    assert (X @ W.T).dtype == np.result_type(W.dtype, dtype)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")    # np.matrix, on purpose
def test_fast_path_keeps_the_checks():
    W = tt.random_matrix((2, 3), (3, 2), 2, rng=4)
    with pytest.raises(ShapeError, match=r"x @ W: W has 6 rows, but x has 5 columns"):
        np.ones((2, 5)) @ W
    with pytest.raises(ShapeError, match=r"W @ x: W has 6 columns, but x has 5 rows"):
        W @ np.ones((5, 2))
    with pytest.raises(ShapeError, match=r"W @ x: W has 6 columns, but x has length 5"):
        W @ np.ones(5)
    with pytest.raises(TypeError):
        np.ones((2, 6), dtype=np.int64) @ W
    with pytest.raises(TypeError):
        np.ones((2, 6), dtype=np.float16) @ W
    A = W.full()
    x = np.arange(12.0).reshape(2, 6)
    _close(np.asmatrix(x) @ W, x @ A)            # subclasses: their plain data
    _close(W @ [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], A @ np.arange(1.0, 7.0))
    _close(np.ones((3, 2, 6)) @ W, np.ones((3, 2, 6)) @ A)


def test_products_follow_a_patched_planner(monkeypatch):
    W = tt.random_matrix((2, 3, 2), (3, 2, 2), 2, rng=5)
    X = np.random.default_rng(12).standard_normal((3, W.shape[1]))
    forced = contraction.plan_from_blocks(W.row_modes, W.col_modes, W.ranks, 3, [(0, 2)])
    seen = []

    def planner(*args, **kw):
        seen.append(args)
        return forced

    X @ W.T                                       # a plan cached before the patch
    monkeypatch.setattr(contraction, "plan_matmat", planner)
    _close(X @ W.T, X @ W.full().T)
    assert seen


# ---- the layer -----------------------------------------------------------------------------------
def test_layer_weight_is_cached_and_follows_the_parameters():
    rng = np.random.default_rng(13)
    layer = TTLinear(12, 6, 2, in_modes=(3, 4), out_modes=(2, 3), dtype=np.float64, rng=0)
    W = layer.weight
    assert layer.weight is W
    x = rng.standard_normal((3, 12))
    for p in layer.cores:                         # in place, as the optimizers do
        p.data -= 0.1 * rng.standard_normal(p.data.shape)
    assert layer.weight is W
    _close(layer.forward(x) - layer.bias.data, x @ _dense([p.data for p in layer.cores]).T)
    layer.cores[0].data = layer.cores[0].data.copy()          # a new array: a new TTMatrix
    assert layer.weight is not W
    other = TTLinear(12, 6, 2, in_modes=(3, 4), out_modes=(2, 3), dtype=np.float64, rng=1)
    layer.load_state_dict(other.state_dict())
    np.testing.assert_array_equal(layer.forward(x), other.forward(x))


@pytest.mark.parametrize("min_size", [0, contraction.Workspace.MIN_SIZE])
def test_layer_gradients_with_its_workspace(monkeypatch, min_size):
    monkeypatch.setattr(contraction.Workspace, "MIN_SIZE", min_size)
    rng = np.random.default_rng(14)
    layer = TTLinear(13, 7, 3, dtype=np.float64, rng=0)       # padded on both sides
    x1, x2 = rng.standard_normal((4, 13)), rng.standard_normal((4, 13))
    dy = rng.standard_normal((4, 7))
    y1 = layer.forward(x1)
    y1c = y1.copy()
    layer.forward(x2)                             # replaces the first forward's cache
    layer.zero_grad()
    dx = layer.backward(dy)
    np.testing.assert_array_equal(y1, y1c)
    cores = [p.data.copy() for p in layer.cores]
    A = _dense(cores)[:7, :13]
    _close(dx, dy @ A)
    for p, fd in zip(layer.cores, _fd_grads(cores, (7, 13), x2, dy)):
        _close(p.grad, fd, 1e-8)
    layer.release_workspace()
    layer.forward(x1)
    _close(layer.backward(dy), dy @ A)


def test_layer_workspace_at_a_size_that_uses_it():
    """States above ``Workspace.MIN_SIZE``: the layer keeps them, and its results equal the
    product and gradients computed without a workspace, call after call."""
    rng = np.random.default_rng(15)
    layer = TTLinear(1024, 1000, 4, in_modes=(4, 8, 8, 4), out_modes=(4, 8, 8, 4),
                     dtype=np.float64, rng=0)                   # 1000 rows: padded output
    W = layer.weight
    for B in (64, 48, 64):
        x = rng.standard_normal((B, 1024))
        dy = rng.standard_normal((B, 1000))
        y0, ctx = gradients.matmul_forward(W, x)
        dx0, dcores0 = gradients.matmul_backward(ctx, dy)
        layer.zero_grad()
        y = layer.forward(x)
        dx = layer.backward(dy)
        _close(y - layer.bias.data, y0, 1e-13)
        _close(dx, dx0, 1e-13)
        for p, g0 in zip(layer.cores, dcores0):
            _close(p.grad, g0, 1e-13)
        _close(layer.bias.grad, dy.sum(axis=0), 1e-13)
    assert layer._workspace.nbytes > 0
    layer.release_workspace()
    assert "_workspace" not in vars(layer)

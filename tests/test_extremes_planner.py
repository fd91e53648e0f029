"""The contraction planner and merged blocks at extreme sizes: hundreds to thousands of cores,
blocks of more cores than NumPy has dimensions, and the restricted search beyond
``contraction.EXACT_MAX_CORES``."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _helpers import central_diff

pytest.importorskip("hypothesis")    # the GPU image has no hypothesis
from hypothesis import given, settings
from hypothesis import strategies as st

import tensortrain as tt
from tensortrain import contraction, gradients
from tensortrain.matrix import TTMatrix


# ---- helpers -------------------------------------------------------------------------------------
def _dense(cores):
    """The dense matrix of a TT-matrix, built core by core (independent of ``contraction``)."""
    acc = np.ones((1, 1, 1))                      # (rows so far, columns so far, rank)
    for c in cores:
        M, N, _ = acc.shape
        _, m, n, s = c.shape
        acc = np.einsum("abr,rmns->ambns", acc, c).reshape(M * m, N * n, s)
    return acc[:, :, 0]


def _cores(rng, row_modes, col_modes, ranks, scale=None):
    """Random float64 cores; entries scaled so that products stay of order one."""
    d = len(row_modes)
    out = []
    for k in range(d):
        shape = (ranks[k], row_modes[k], col_modes[k], ranks[k + 1])
        s = 1.0 / math.sqrt(ranks[k] * col_modes[k]) if scale is None else scale
        out.append(s * rng.standard_normal(shape))
    return out


def _assert_valid(plan, d, max_width=None):
    """The blocks are runs of cores that grow one interval and cover every core once."""
    covered = sorted(k for lo, hi in plan.order for k in range(lo, hi + 1))
    assert covered == list(range(d))
    again = contraction.plan_from_blocks(plan.row_modes, plan.col_modes, plan.ranks,
                                         plan.batch, plan.order, plan.itemsize)
    assert again.flops == plan.flops
    assert again.peak_elements == plan.peak_elements
    if max_width is not None:
        assert max(hi - lo + 1 for lo, hi in plan.order) <= max_width


def _assert_no_worse_than_sweeps(plan):
    """No worse than either one-core sweep, in the plan's own measure: FLOPs, or the
    modelled time of the 'time' / 'train' objectives (batch in front)."""
    for direction in ("left", "right"):
        sweep = contraction.fixed_sweep_plan(plan.row_modes, plan.col_modes, plan.ranks,
                                             plan.batch, direction, plan.itemsize)
        if plan.objective == "flops":
            assert plan.flops <= sweep.flops
        else:
            assert plan.objective in ("time", "train", "train_no_input_grad")
            train = plan.objective != "time"
            dx = plan.objective != "train_no_input_grad"
            assert (contraction.modeled_seconds(plan, train=train, input_grad=dx)
                    <= contraction.modeled_seconds(sweep, train=train, input_grad=dx)
                    * (1 + 1e-12))


def _close(a, b, rtol=1e-10):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    scale = max(float(np.max(np.abs(b))), 1e-300)
    assert float(np.max(np.abs(a - b))) <= rtol * scale


def _sparse_modes(d, positions, real):
    """Modes of 1 except at ``positions``, where the modes come from ``real``."""
    rows, cols = [1] * d, [1] * d
    for p, (m, n) in zip(positions, real, strict=True):
        rows[p], cols[p] = m, n
    return tuple(rows), tuple(cols)


# ---- long trains ---------------------------------------------------------------------------------
def test_identity_with_1000_unit_modes():
    W = tt.eye((1,) * 1000)
    y = W @ np.ones(1)
    np.testing.assert_array_equal(np.asarray(y), np.ones(1))
    plan = W.matmul_plan(1)
    _assert_valid(plan, 1000, contraction.SWEEP_MAX_BLOCK)
    _assert_no_worse_than_sweeps(plan)


@pytest.mark.parametrize("objective", ["flops", "time", "train", "train_no_input_grad"])
@pytest.mark.parametrize("d", [200, 1000])
@pytest.mark.parametrize("batch", [1, 5])
def test_qtt_plans_are_valid_and_beat_both_sweeps(d, batch, objective):
    ranks = (1,) + (2,) * (d - 1) + (1,)
    plan = contraction.plan_matmat((2,) * d, (2,) * d, ranks, batch, 8, objective)
    assert plan.objective == objective
    assert d > contraction.EXACT_MAX_CORES
    _assert_valid(plan, d, contraction.SWEEP_MAX_BLOCK)
    _assert_no_worse_than_sweeps(plan)
    assert isinstance(plan.describe(), str)


def test_describe_with_counts_beyond_float_range():
    d = 300
    plan = contraction.plan_matmat((4,) * d, (4,) * d, (1,) + (3,) * (d - 1) + (1,), 2)
    assert plan.dense_flops > 10**330       # beyond the float range
    text = plan.describe()
    assert "MFLOP" in text and "fewer than dense" in text


@pytest.mark.parametrize("d, positions", [
    (200, (0, 3, 57, 100, 101, 150, 198, 199)),
    (1000, (1, 2, 400, 401, 402, 998)),
])
def test_long_sparse_qtt_product_matches_dense(d, positions):
    rng = np.random.default_rng(d)
    rows, cols = _sparse_modes(d, positions, [(2, 2)] * len(positions))
    ranks = (1, *tuple(int(v) for v in rng.integers(1, 3, d - 1)), 1)
    cores = _cores(rng, rows, cols, ranks)
    W = TTMatrix(cores)
    A = _dense(cores)
    X = rng.standard_normal((3, math.prod(cols)))
    plan = W.matmul_plan(3)
    _assert_valid(plan, d, contraction.SWEEP_MAX_BLOCK)
    _assert_no_worse_than_sweeps(plan)
    _close(X @ W.T, X @ A.T)
    _close(W @ X.T, A @ X.T)


def test_eye_with_a_long_unit_tail():
    W = tt.eye((2,) * 10 + (1,) * 50)
    x = np.random.default_rng(0).standard_normal(2**10)
    np.testing.assert_allclose(np.asarray(W @ x), x, rtol=0, atol=0)
    # the same product with plans that merge more cores than NumPy has dimensions
    d = W.d
    for blocks in ([(0, d - 1)], [(0, 9), (10, d - 1)], [(d - 1, d - 1), (0, d - 2)],
                   contraction._plan_search(W.row_modes, W.col_modes, W.ranks, 1,
                                            exact_max_cores=d).order):
        plan = contraction.plan_from_blocks(W.row_modes, W.col_modes, W.ranks, 1, blocks)
        y = contraction.execute(plan, W.cores, x[None, :])
        np.testing.assert_allclose(y[0], x, rtol=0, atol=0)


def test_unit_modes_with_ranks_match_dense():
    rng = np.random.default_rng(7)
    d = 44
    rows, cols = _sparse_modes(d, (0, 20, 21, 43), [(2, 3), (3, 2), (2, 2), (3, 1)])
    ranks = (1, *tuple(int(v) for v in rng.integers(2, 4, d - 1)), 1)
    cores = _cores(rng, rows, cols, ranks)
    W = TTMatrix(cores)
    A = _dense(cores)
    assert A.shape == W.shape == (36, 12)
    _close(W.full(), A)
    X = rng.standard_normal((5, 12))
    _close(X @ W.T, X @ A.T)
    _close(W @ X.T, A @ X.T)
    _close(W @ X[0], A @ X[0])
    for blocks in ([(0, d - 1)], [(0, 38), (39, d - 1)], [(d - 1, d - 1), (0, d - 2)],
                   [(5, 5), (6, d - 1), (0, 4)]):
        plan = contraction.plan_from_blocks(rows, cols, ranks, 5, blocks)
        _close(contraction.execute(plan, cores, X), X @ A.T)
        _close(contraction.execute(plan, cores, X.T.copy(), batch_last=True), A @ X.T)


def test_merge_block_keeps_four_axes():
    rng = np.random.default_rng(3)
    d = 70
    rows, cols = _sparse_modes(d, (0, 35, 69), [(2, 1), (1, 3), (2, 2)])
    ranks = (1,) + (2,) * (d - 1) + (1,)
    cores = _cores(rng, rows, cols, ranks)
    merged = contraction.merge_block(cores, 0, d - 1)
    assert merged.shape == (1, 4, 6, 1)
    _close(merged[0, :, :, 0], _dense(cores))


# ---- gradients through wide blocks ---------------------------------------------------------------
def _fd_check(W, x, dy, plan_blocks, monkeypatch):
    """``matmul_vjp`` under a forced plan against central finite differences (float64) of
    ``L = sum(dy * (x @ W.T))`` in every entry of every core."""
    forced = contraction.plan_from_blocks(W.row_modes, W.col_modes, W.ranks, x.shape[0],
                                          plan_blocks)
    with monkeypatch.context() as mp:
        mp.setattr(contraction, "plan_matmat", lambda *args, **kw: forced)
        y, dx, dcores = gradients.matmul_vjp(W, x, dy)
    A = _dense(W.cores)
    _close(y, x @ A.T)
    _close(dx, dy @ A)                     # y is linear in x
    h = 1e-3                               # L is affine in each entry: no truncation error
    cores = [c.copy() for c in W.cores]
    for k, c in enumerate(cores):
        assert dcores[k].shape == c.shape
        fd = central_diff(lambda: np.sum(dy * (x @ _dense(cores).T)), c, h)
        _close(dcores[k], fd, rtol=1e-7)


@pytest.mark.parametrize("which", ["first", "left", "right"])
def test_gradients_through_a_wide_block(monkeypatch, which):
    rng = np.random.default_rng(11)
    d = 36
    rows, cols = _sparse_modes(d, (0, 17, 35), [(2, 3), (2, 2), (1, 2)])
    ranks = (1, *tuple(int(v) for v in rng.integers(1, 3, d - 1)), 1)
    W = TTMatrix(_cores(rng, rows, cols, ranks))
    x = rng.standard_normal((3, W.shape[1]))
    dy = rng.standard_normal((3, W.shape[0]))
    blocks = {"first": [(0, 34), (35, 35)],          # 35 cores absorbed first
              "left": [(35, 35), (0, 34)],           # 35 cores absorbed on the left
              "right": [(0, 0), (1, 35)]}[which]     # 35 cores absorbed on the right
    _fd_check(W, x, dy, blocks, monkeypatch)


def test_gradients_of_a_long_train_with_the_default_plan():
    rng = np.random.default_rng(12)
    d = 60
    rows, cols = _sparse_modes(d, (3, 30, 59), [(2, 2), (3, 2), (2, 1)])
    ranks = (1, *tuple(int(v) for v in rng.integers(1, 3, d - 1)), 1)
    W = TTMatrix(_cores(rng, rows, cols, ranks))
    x = rng.standard_normal((2, W.shape[1]))
    dy = rng.standard_normal((2, W.shape[0]))
    y, ctx = gradients.matmul_forward(W, x)
    dx, dcores = gradients.matmul_backward(ctx, dy)
    A = _dense(W.cores)
    _close(y, x @ A.T)
    _close(dx, dy @ A)
    # sum(dy * y) is linear in each core: <dcores[k], cores[k]> is the same value for every k
    value = float(np.sum(dy * y))
    for k in range(d):
        terms = dcores[k] * W.cores[k]
        assert abs(float(np.sum(terms)) - value) <= 1e-10 * float(np.sum(np.abs(terms)))


# ---- the restricted search -----------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(d=st.integers(1, 6), data=st.data(), batch=st.integers(1, 4),
       width=st.integers(1, 4), seed=st.integers(0, 2**31 - 1))
def test_restricted_search_gives_valid_plans(d, data, batch, width, seed):
    rows = tuple(data.draw(st.lists(st.integers(1, 4), min_size=d, max_size=d)))
    cols = tuple(data.draw(st.lists(st.integers(1, 4), min_size=d, max_size=d)))
    ranks = tuple([1, *data.draw(st.lists(st.integers(1, 3), min_size=d - 1, max_size=d - 1)), 1])
    restricted = contraction._plan_search(rows, cols, ranks, batch, exact_max_cores=0,
                                          max_block=width)
    exact = contraction._plan_search(rows, cols, ranks, batch, exact_max_cores=d)
    _assert_valid(restricted, d, width)
    _assert_no_worse_than_sweeps(restricted)
    assert exact.flops <= restricted.flops
    # the order is a block sweep: the absorbed interval always touches one end
    lo0, hi0 = restricted.order[0]
    assert lo0 == 0 or hi0 == d - 1
    rng = np.random.default_rng(seed)
    cores = _cores(rng, rows, cols, ranks)
    A = _dense(cores)
    X = rng.standard_normal((batch, math.prod(cols)))
    _close(contraction.execute(restricted, cores, X), X @ A.T)
    _close(contraction.execute(restricted, cores, X.T.copy(), batch_last=True), A @ X.T)


def test_threshold_between_the_searches():
    rng = np.random.default_rng(5)
    for d in (contraction.EXACT_MAX_CORES, contraction.EXACT_MAX_CORES + 1):
        rows = tuple(int(v) for v in rng.integers(1, 3, d))
        cols = tuple(int(v) for v in rng.integers(1, 3, d))
        ranks = (1, *tuple(int(v) for v in rng.integers(1, 4, d - 1)), 1)
        plan = contraction.plan_matmat(rows, cols, ranks, 4)
        exact = contraction._plan_search(rows, cols, ranks, 4, exact_max_cores=d)
        sweeps = contraction._plan_search(rows, cols, ranks, 4, exact_max_cores=0)
        expected = exact if d <= contraction.EXACT_MAX_CORES else sweeps
        assert plan.order == expected.order and plan.flops == expected.flops
        assert exact.flops <= sweeps.flops
        _assert_no_worse_than_sweeps(plan)


def test_plan_errors():
    with pytest.raises(ValueError, match="not next to"):
        contraction.plan_from_blocks((2, 2, 2), (2, 2, 2), (1, 2, 2, 1), 1, [(0, 0), (2, 2)])
    with pytest.raises(ValueError, match="not a run"):
        contraction.plan_from_blocks((2, 2), (2, 2), (1, 2, 1), 1, [(1, 0)])
    with pytest.raises(ValueError, match="do not cover"):
        contraction.plan_from_blocks((2, 2), (2, 2), (1, 2, 1), 1, [(0, 0)])
    with pytest.raises(ValueError, match=">= 1"):
        contraction.plan_matmat((2, 0), (2, 2), (1, 2, 1), 1)
    with pytest.raises(ValueError, match="ranks"):
        contraction.plan_matmat((2, 2), (2, 2), (1, 1), 1)

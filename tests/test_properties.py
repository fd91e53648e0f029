"""Hypothesis property tests (NumPy only): every operation against its dense oracle over
shapes with modes of size 1, d = 1, ranks above the mode sizes, and several dtypes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _helpers import host_random as _random
from _helpers import random_tt
from _helpers import tol as _tol

pytest.importorskip("hypothesis")  # the GPU image may lack it; the CPU suite installs it
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tensortrain as tt
from tensortrain import TTMatrix, TTTensor, contraction

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=100, **SETTINGS)
MANY = settings(max_examples=150, **SETTINGS)

DTYPES = st.sampled_from([np.float32, np.float64, np.complex128])
SEEDS = st.integers(0, 2**32 - 1)


# ---- strategies and helpers --------------------------------------------------------------------
@st.composite
def tt_specs(draw, max_d=4, max_mode=4, max_rank=5):
    d = draw(st.integers(1, max_d))
    modes = tuple(draw(st.lists(st.integers(1, max_mode), min_size=d, max_size=d)))
    ranks = [1, *draw(st.lists(st.integers(1, max_rank), min_size=d - 1, max_size=d - 1)), 1]
    return modes, ranks


def _hi(dtype):
    return np.complex128 if np.dtype(dtype).kind == "c" else np.float64


def _assert_close(got, ref, dtype, scale=None, factor=50.0):
    """``||got - ref|| <= factor * tol * scale`` with ``scale`` defaulting to ``||ref||``."""
    got = np.asarray(got).astype(_hi(dtype))
    ref = np.asarray(ref).astype(_hi(dtype))
    assert got.shape == ref.shape, (got.shape, ref.shape)
    if scale is None:
        scale = np.linalg.norm(ref.ravel())
    scale = max(float(scale), 1e-30)
    err = np.linalg.norm((got - ref).ravel())
    assert err <= factor * _tol(dtype) * scale, f"error {err:.3e} vs scale {scale:.3e}"


def _useful(modes):
    d = len(modes)
    return [1] + [min(math.prod(modes[:k]), math.prod(modes[k:])) for k in range(1, d)] + [1]


def _rand_tt(modes, ranks, dtype, seed):
    a = random_tt(modes, ranks, dtype, seed)
    assert all(r <= u for r, u in zip(a.ranks, _useful(modes), strict=True))  # ranks above modes are capped
    return a


# ---- TTTensor --------------------------------------------------------------------------------------
@MANY
@given(spec=tt_specs(), dtype=DTYPES, seed=SEEDS)
def test_from_dense_round_trip(spec, dtype, seed):
    modes, _ = spec
    a = _random(np.random.default_rng(seed), modes, dtype)
    x = TTTensor.from_dense(a)
    assert x.shape == modes
    assert x.dtype == np.dtype(dtype)
    assert all(r <= u for r, u in zip(x.ranks, _useful(modes), strict=True))
    _assert_close(x.full(), a, dtype)


@MANY
@given(spec=tt_specs(), dtype=DTYPES, seed=SEEDS, eps=st.floats(0.0, 1.0))
def test_from_dense_eps_bound(spec, dtype, seed, eps):
    modes, _ = spec
    a = _random(np.random.default_rng(seed), modes, dtype)
    x = TTTensor.from_dense(a, eps=eps)
    err = np.linalg.norm((x.full().astype(_hi(dtype)) - a).ravel())
    assert err <= (eps + 20 * _tol(dtype)) * np.linalg.norm(a.ravel())


@MANY
@given(spec=tt_specs(), dtype=DTYPES, seed=SEEDS)
def test_round_eps0_preserves_values(spec, dtype, seed):
    modes, ranks = spec
    a = _rand_tt(modes, ranks, dtype, seed)
    b = a.round(0.0)
    assert all(rb <= ra for rb, ra in zip(b.ranks, a.ranks, strict=True))
    _assert_close(b.full(), a.full(), dtype)
    # and round(a + a) == 2a, with ranks no larger than a's
    c = (a + a).round(0.0)
    _assert_close(c.full(), 2 * a.full().astype(_hi(dtype)), dtype)
    assert all(rc <= ra for rc, ra in zip(c.ranks, a.ranks, strict=True))
    # a sum has ranks above the useful ones; rounding brings them back under
    b = _rand_tt(modes, ranks[::-1], dtype, seed + 1)
    s = (a + b).round(0.0)
    assert all(r <= u for r, u in zip(s.ranks, _useful(modes), strict=True))
    _assert_close(s.full(), a.full().astype(_hi(dtype)) + b.full(), dtype,
                  np.linalg.norm(a.full()) + np.linalg.norm(b.full()))


@MANY
@given(spec=tt_specs(max_rank=6), dtype=DTYPES, seed=SEEDS, eps=st.floats(0.0, 1.0),
       cap=st.one_of(st.none(), st.integers(1, 4)))
def test_round_eps_bound_and_cap(spec, dtype, seed, eps, cap):
    modes, ranks = spec
    a = _rand_tt(modes, ranks, dtype, seed)
    b = a.round(eps, max_rank=cap)
    fa = a.full().astype(_hi(dtype))
    if cap is None:
        err = np.linalg.norm((b.full().astype(_hi(dtype)) - fa).ravel())
        assert err <= (eps + 20 * _tol(dtype)) * np.linalg.norm(fa.ravel())
    else:
        assert b.max_rank <= cap
    assert b.shape == a.shape


@MANY
@given(spec=tt_specs(), dtype=DTYPES, seed=SEEDS,
       alpha=st.floats(-3, 3, allow_nan=False).filter(lambda v: abs(v) > 1e-3))
def test_arithmetic_matches_dense(spec, dtype, seed, alpha):
    modes, ranks = spec
    a = _rand_tt(modes, ranks, dtype, seed)
    b = _rand_tt(modes, ranks[::-1], dtype, seed + 1)
    fa, fb = a.full().astype(_hi(dtype)), b.full().astype(_hi(dtype))
    scale = np.linalg.norm(fa.ravel()) + np.linalg.norm(fb.ravel())
    _assert_close((a + b).full(), fa + fb, dtype, scale)
    _assert_close((a - b).full(), fa - fb, dtype, scale)
    _assert_close((-a).full(), -fa, dtype, scale)
    _assert_close((alpha * a).full(), alpha * fa, dtype, abs(alpha) * scale)
    _assert_close((a * alpha).full(), alpha * fa, dtype, abs(alpha) * scale)
    _assert_close((a / alpha).full(), fa / alpha, dtype, scale / abs(alpha))
    prod_scale = np.linalg.norm(np.abs(fa).ravel() * np.abs(fb).ravel()) + 1e-300
    _assert_close((a * b).full(), fa * fb, dtype, prod_scale)
    assert (a + b).dtype == (a * b).dtype == (alpha * a).dtype == np.dtype(dtype)


@MANY
@given(spec=tt_specs(), dtype=DTYPES, seed=SEEDS)
def test_dot_norm_sum_match_dense(spec, dtype, seed):
    modes, ranks = spec
    a = _rand_tt(modes, ranks, dtype, seed)
    b = _rand_tt(modes, ranks, dtype, seed + 7)
    fa, fb = a.full().astype(_hi(dtype)), b.full().astype(_hi(dtype))
    na, nb = np.linalg.norm(fa.ravel()), np.linalg.norm(fb.ravel())
    tol = 50 * _tol(dtype)
    assert abs(tt.dot(a, b) - np.vdot(fa, fb)) <= tol * na * nb
    assert abs(tt.dot(b, a) - np.vdot(fb, fa)) <= tol * na * nb
    assert abs(tt.dot(a, -a) + na * na) <= tol * na * na
    sign, logabs = tt.log_dot(a, b)
    ref = np.vdot(fa, fb)
    if abs(ref) > 1e-3 * na * nb:
        assert abs(sign * math.exp(logabs) - ref) <= tol * na * nb
    assert a.norm() == pytest.approx(na, rel=tol)
    assert a.log_norm() == pytest.approx(math.log(na), abs=tol)
    total = complex(np.asarray(a.sum()))
    assert abs(total - complex(fa.sum())) <= tol * na * math.sqrt(fa.size)
    d = len(modes)
    for axis in range(-d, d):
        s = a.sum(axis=axis)
        ref = fa.sum(axis=axis)
        got = s.full() if isinstance(s, TTTensor) else np.asarray(s)
        _assert_close(got, ref, dtype, na * math.sqrt(fa.size))


@MANY
@given(spec=tt_specs(max_d=3), spec2=tt_specs(max_d=3), dtype=DTYPES, seed=SEEDS)
def test_kron_matches_dense(spec, spec2, dtype, seed):
    a = _rand_tt(*spec, dtype, seed)
    b = _rand_tt(*spec2, dtype, seed + 3)
    k = tt.kron(a, b)
    assert k.shape == a.shape + b.shape
    ref = np.kron(a.full().ravel(), b.full().ravel())
    _assert_close(k.full().ravel(), ref, dtype)


@st.composite
def index_keys(draw, modes):
    key = []
    for n in modes:
        kind = draw(st.sampled_from(["int", "slice", "list", "full"]))
        if kind == "int":
            key.append(draw(st.integers(-n, n - 1)))
        elif kind == "slice":
            sl = draw(st.slices(n))
            if len(range(*sl.indices(n))) == 0:
                sl = slice(None)
            key.append(sl)
        elif kind == "list":
            key.append(draw(st.lists(st.integers(-n, n - 1), min_size=1, max_size=4)))
        else:
            key.append(slice(None))
    return tuple(key)


def _orthogonal_index(dense, key):
    """Index a NumPy array axis by axis (integer arrays select orthogonally, like np.ix_)."""
    out = dense
    ax = 0
    for k in key:
        if isinstance(k, int):
            out = np.take(out, k, axis=ax)
        elif isinstance(k, slice):
            out = out[(slice(None),) * ax + (k,)]
            ax += 1
        else:
            out = np.take(out, np.asarray(k), axis=ax)
            ax += 1
    return out


@MANY
@given(data=st.data(), spec=tt_specs(), dtype=DTYPES, seed=SEEDS)
def test_indexing_matches_dense(data, spec, dtype, seed):
    modes, ranks = spec
    a = _rand_tt(modes, ranks, dtype, seed)
    fa = a.full()
    key = data.draw(index_keys(modes))
    ref = _orthogonal_index(fa, key)
    got = a[key]
    if all(isinstance(k, int) for k in key):
        assert np.ndim(got) == 0
        assert abs(complex(got) - complex(ref)) <= 50 * _tol(dtype) * np.linalg.norm(fa.ravel())
    else:
        assert isinstance(got, TTTensor)
        assert got.shape == ref.shape
        _assert_close(got.full(), ref, dtype, np.linalg.norm(fa.ravel()))
    # numpy's own basic indexing agrees when no integer arrays are involved
    if not any(isinstance(k, list) for k in key):
        np.testing.assert_array_equal(ref, fa[key])


@MANY
@given(spec=tt_specs(), dtype=DTYPES, seed=SEEDS, direction=st.sampled_from(["left", "right"]))
def test_orthogonalize_preserves_values(spec, dtype, seed, direction):
    modes, ranks = spec
    a = _rand_tt(modes, ranks, dtype, seed)
    b = a.orthogonalize(direction)
    _assert_close(b.full(), a.full(), dtype)
    cores = b.cores[:-1] if direction == "left" else b.cores[1:]
    for c in cores:
        if direction == "left":
            q = c.reshape(-1, c.shape[2]).astype(_hi(dtype))
            g = q.conj().T @ q
        else:
            q = c.reshape(c.shape[0], -1).astype(_hi(dtype))
            g = q @ q.conj().T
        np.testing.assert_allclose(g, np.eye(g.shape[0]), atol=50 * _tol(dtype))


# ---- TTMatrix ------------------------------------------------------------------------------------
@st.composite
def matrix_specs(draw, max_d=3, max_mode=4, max_rank=4):
    """Random cores with a logical shape inside the padded one (padding holds nonzeros)."""
    d = draw(st.integers(1, max_d))
    rows = tuple(draw(st.lists(st.integers(1, max_mode), min_size=d, max_size=d)))
    cols = tuple(draw(st.lists(st.integers(1, max_mode), min_size=d, max_size=d)))
    ranks = [1, *draw(st.lists(st.integers(1, max_rank), min_size=d - 1, max_size=d - 1)), 1]
    M = draw(st.integers(1, math.prod(rows)))
    N = draw(st.integers(1, math.prod(cols)))
    return rows, cols, ranks, (M, N)


def _rand_matrix(spec, dtype, seed):
    rows, cols, ranks, shape = spec
    rng = np.random.default_rng(seed)
    cores = [_random(rng, (ranks[k], rows[k], cols[k], ranks[k + 1]), dtype)
             for k in range(len(rows))]
    return TTMatrix(cores, shape)


@MANY
@given(M=st.integers(1, 40), N=st.integers(1, 40), dtype=DTYPES, seed=SEEDS)
def test_matrix_from_dense_auto_modes(M, N, dtype, seed):
    A = _random(np.random.default_rng(seed), (M, N), dtype)
    W = TTMatrix.from_dense(A)
    assert W.shape == (M, N)
    assert W.padded_shape[0] >= M and W.padded_shape[1] >= N
    F = W.full()
    assert F.shape == (M, N)
    _assert_close(F, A, dtype)
    assert W.norm() == pytest.approx(np.linalg.norm(A.astype(_hi(dtype))), rel=50 * _tol(dtype))


@MANY
@given(spec=matrix_specs(), dtype=DTYPES, seed=SEEDS, batch=st.integers(1, 5))
def test_matrix_matvec_and_adjoint(spec, dtype, seed, batch):
    W = _rand_matrix(spec, dtype, seed)
    A = W.full().astype(_hi(dtype))
    M, N = W.shape
    rng = np.random.default_rng(seed + 1)
    x = _random(rng, (N, batch), dtype)
    y = _random(rng, (M, batch), dtype)
    scale = np.linalg.norm(A) * (np.linalg.norm(x) + np.linalg.norm(y)) + 1e-300
    Wx = W @ x
    assert Wx.shape == (M, batch)
    _assert_close(Wx, A @ x, dtype, scale)
    _assert_close(W @ x[:, 0], A @ x[:, 0], dtype, scale)
    _assert_close(y.T @ W, y.T @ A, dtype, scale)
    # <W x, y> == <x, W^H y>
    WHy = W.H @ y
    lhs = np.vdot(Wx.astype(_hi(dtype)), y)
    rhs = np.vdot(x, WHy.astype(_hi(dtype)))
    assert abs(lhs - rhs) <= 50 * _tol(dtype) * scale * (np.linalg.norm(x) + np.linalg.norm(y))
    # norm and rounding act on the logical block only
    assert W.norm() == pytest.approx(np.linalg.norm(A), rel=50 * _tol(dtype), abs=1e-300)
    _assert_close(W.round(0.0).full(), A, dtype)


@FEW
@given(spec=matrix_specs(), dtype=DTYPES, seed=SEEDS, L=st.integers(1, 4),
       r=st.integers(1, 3), padded=st.booleans())
def test_matrix_matmul_matrix(spec, dtype, seed, L, r, padded):
    W = _rand_matrix(spec, dtype, seed)
    rows, cols, _ranks, (M, N) = spec
    d = len(rows)
    vcols = tuple([1] * (d - 1) + [L + 1])
    vspec = (cols, vcols, [1] + [r] * (d - 1) + [1], (N, L if padded else L + 1))
    V = _rand_matrix(vspec, dtype, seed + 2)
    P = W @ V
    assert P.shape == (M, V.shape[1])
    ref = W.full().astype(_hi(dtype)) @ V.full().astype(_hi(dtype))
    scale = np.linalg.norm(W.full()) * np.linalg.norm(V.full())
    _assert_close(P.full(), ref, dtype, scale)


@FEW
@given(spec=matrix_specs(), dtype=DTYPES, seed=SEEDS)
def test_matrix_matmul_tensor(spec, dtype, seed):
    W = _rand_matrix(spec, dtype, seed)
    rows, cols, _ranks, (M, N) = spec
    v = _rand_tt(cols, 2, dtype, seed + 5)
    y = W @ v
    assert y.shape == rows
    flat = y.full().reshape(-1).astype(_hi(dtype))
    ref = W.full().astype(_hi(dtype)) @ v.full().reshape(-1)[:N]
    scale = np.linalg.norm(W.full()) * np.linalg.norm(v.full())
    _assert_close(flat[:M], ref, dtype, scale)
    assert np.linalg.norm(flat[M:]) <= 50 * _tol(dtype) * scale


@FEW
@given(spec=matrix_specs(), dtype=DTYPES, seed=SEEDS)
def test_matrix_add_dot_match_dense(spec, dtype, seed):
    rows, cols, _ranks, shape = spec
    W = _rand_matrix(spec, dtype, seed)
    V = _rand_matrix((rows, cols, [1] + [2] * (len(rows) - 1) + [1], shape), dtype, seed + 9)
    A, B = W.full().astype(_hi(dtype)), V.full().astype(_hi(dtype))
    scale = np.linalg.norm(A) + np.linalg.norm(B)
    _assert_close((W + V).full(), A + B, dtype, scale)
    _assert_close((W - 2 * V).full(), A - 2 * B, dtype, 3 * scale)
    _assert_close((W * V).full(), A * B, dtype, np.linalg.norm(np.abs(A) * np.abs(B)) + 1e-300)
    assert abs(tt.dot(W, V) - np.vdot(A, B)) <= 50 * _tol(dtype) * scale ** 2
    assert (W + V).norm() == pytest.approx(np.linalg.norm(A + B), rel=50 * _tol(dtype),
                                           abs=50 * _tol(dtype) * scale)


# ---- contraction planner -------------------------------------------------------------------------
def _all_block_orders(d):
    """Every valid plan: a first block, then blocks added on the left or right."""
    out = []

    def rec(interval, blocks):
        i, j = interval
        if interval == (0, d - 1):
            out.append(list(blocks))
            return
        for hi in range(j + 1, d):
            rec((i, hi), [*blocks, (j + 1, hi)])
        for lo in range(i):
            rec((lo, j), [*blocks, (lo, i - 1)])

    for i in range(d):
        for j in range(i, d):
            rec((i, j), [(i, j)])
    return out


@MANY
@given(d=st.integers(1, 5), data=st.data(), batch=st.integers(1, 8), seed=SEEDS)
def test_planner_beats_fixed_sweeps_and_executes(d, data, batch, seed):
    rows = tuple(data.draw(st.lists(st.integers(1, 5), min_size=d, max_size=d)))
    cols = tuple(data.draw(st.lists(st.integers(1, 5), min_size=d, max_size=d)))
    ranks = tuple([1, *data.draw(st.lists(st.integers(1, 6), min_size=d - 1, max_size=d - 1)), 1])
    plan = contraction.plan_matmat(rows, cols, ranks, batch)
    sweeps = [contraction.fixed_sweep_plan(rows, cols, ranks, batch, direction)
              for direction in ("left", "right")]
    for s in sweeps:
        assert plan.flops <= s.flops
    if d <= 4:  # the dynamic program finds the cheapest of all orders and groupings
        best = min(contraction.plan_from_blocks(rows, cols, ranks, batch, blocks).flops
                   for blocks in _all_block_orders(d))
        assert plan.flops == best
    rng = np.random.default_rng(seed)
    cores = [rng.standard_normal((ranks[k], rows[k], cols[k], ranks[k + 1])) for k in range(d)]
    W = TTMatrix(cores)
    assert W.matmul_plan(batch, objective="flops").flops == plan.flops
    timed = []
    for objective, batch_last in (("time", False), ("time", True), ("train", False),
                                  ("train_no_input_grad", False)):
        tplan = contraction.plan_matmat(rows, cols, ranks, batch, 8, objective, batch_last)
        timed.append(tplan)
        train = objective != "time"
        dx = objective != "train_no_input_grad"
        cost = contraction.modeled_seconds(tplan, batch_last, train, dx)
        for s in [plan, *sweeps]:
            assert cost <= contraction.modeled_seconds(s, batch_last, train, dx) * (1 + 1e-12)
        if d <= 4:  # the same dynamic program, exact for the modelled time too
            best = min(contraction.modeled_seconds(
                contraction.plan_from_blocks(rows, cols, ranks, batch, blocks), batch_last, train,
                dx) for blocks in _all_block_orders(d))
            assert cost == pytest.approx(best, rel=1e-12)
    X = rng.standard_normal((batch, math.prod(cols)))
    ref = X @ W.full().T
    scale = np.linalg.norm(X) * np.linalg.norm(W.full())
    for p in [plan, *sweeps, *timed]:
        _assert_close(contraction.execute(p, W.cores, X), ref, np.float64, scale)
        _assert_close(contraction.execute(p, W.cores, X.T.copy(), batch_last=True), ref.T,
                      np.float64, scale)

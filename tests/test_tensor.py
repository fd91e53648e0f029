"""Oracle tests for TTTensor: dense reconstruction on small sizes, the eps / max_rank
contract, rounding, orthogonalization, reductions, indexing, arithmetic, numerics at large d
and the SVD fallback.  Data is made on the host with a seeded generator, then moved to ``xp``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
from _helpers import assert_close as _close
from _helpers import host_random as _host_random
from _helpers import random_tt, to_numpy
from _helpers import rel_err as _rel_err
from _helpers import tol as _tol

import tensortrain as tt
from tensortrain import TTTensor, _backend

DTYPES = [np.float32, np.float64, np.complex128]
DTYPE_IDS = ["float32", "float64", "complex128"]


# ---- helpers ------------------------------------------------------------------------------
def _useful_ranks(shape):
    d = len(shape)
    return tuple(
        [1] + [min(math.prod(shape[:k]), math.prod(shape[k:])) for k in range(1, d)] + [1])


def _rand_tt(xp, modes, ranks, dtype=np.float64, seed=0):
    return random_tt(modes, ranks, dtype, seed, xp)


def _full(a):
    return to_numpy(a.full())


# ---- from_dense -------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 2, 4), (6,), (1, 4, 1, 3), (5, 1), (1,),
                                   (2, 2, 2, 2, 2, 2)])
def test_from_dense_exact(xp, rng, dtype, shape):
    a = _host_random(rng, shape, dtype)
    x = TTTensor.from_dense(xp.asarray(a))
    assert x.shape == shape
    assert x.ndim == len(shape)
    assert x.size == a.size
    assert x.dtype == np.dtype(dtype)
    assert x.backend == xp.__name__
    assert x.ranks[0] == 1 and x.ranks[-1] == 1
    full = _full(x)
    assert full.shape == shape
    assert full.dtype == np.dtype(dtype)
    _close(full, a, dtype)
    # flattening agrees with C order
    _close(full.reshape(-1), a.reshape(-1), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape", [(3, 4, 5), (2, 3, 2, 4), (4, 4, 4, 4), (1, 4, 1, 3)])
def test_from_dense_ranks_never_above_useful(xp, rng, dtype, shape):
    a = _host_random(rng, shape, dtype)
    x = TTTensor.from_dense(xp.asarray(a))
    useful = _useful_ranks(shape)
    assert all(r <= u for r, u in zip(x.ranks, useful, strict=True)), (x.ranks, useful)
    # a random dense tensor has full TT-ranks
    assert x.ranks == useful


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("modes, ranks", [((4, 5, 6), (1, 2, 3, 1)), ((3, 3, 3, 3), 2),
                                          ((2, 5, 2, 5, 2), (1, 2, 3, 3, 2, 1)),
                                          ((6, 6), (1, 3, 1))])
def test_exact_recovery_of_known_rank(xp, dtype, modes, ranks):
    a = _rand_tt(xp, modes, ranks, dtype=dtype, seed=1)
    dense = a.full()
    b = TTTensor.from_dense(dense, eps=1e-6 if np.dtype(dtype) == np.float32 else 1e-12)
    assert b.ranks == a.ranks
    _close(b.full(), dense, dtype)


def test_exact_recovery_eps0_no_roundoff_ranks(xp):
    a = _rand_tt(xp, (4, 5, 6, 3), (1, 2, 3, 2, 1), seed=3)
    b = TTTensor.from_dense(a.full())  # eps = 0: round-off singular values are dropped
    assert b.ranks == a.ranks


@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=["float64", "complex128"])
@pytest.mark.parametrize("eps", [1e-1, 3e-2, 1e-2, 1e-3, 0.3, 0.9])
def test_from_dense_eps_bound_noise(xp, rng, dtype, eps):
    a = _host_random(rng, (4, 5, 3, 6), dtype)
    x = TTTensor.from_dense(xp.asarray(a), eps=eps)
    err = np.linalg.norm((_full(x) - a).ravel())
    assert err <= eps * np.linalg.norm(a.ravel()) * (1 + 1e-10)
    assert all(r <= u for r, u in zip(x.ranks, _useful_ranks(a.shape), strict=True))


def test_from_dense_eps_truncates_low_rank_plus_noise(xp, rng):
    base = _full(_rand_tt(np, (5, 6, 5, 6), 2, seed=7))
    noise = rng.standard_normal(base.shape)
    a = base + 1e-6 * noise / np.linalg.norm(noise.ravel()) * np.linalg.norm(base.ravel())
    x = TTTensor.from_dense(xp.asarray(a), eps=1e-4)
    assert x.ranks == (1, 2, 2, 2, 1)
    assert _rel_err(_full(x), a) <= 1e-4
    # the eps bound is monotone: a smaller eps never gives smaller ranks
    y = TTTensor.from_dense(xp.asarray(a), eps=1e-9)
    assert all(ry >= rx for ry, rx in zip(y.ranks, x.ranks, strict=True))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_from_dense_max_rank(xp, rng, dtype):
    a = _host_random(rng, (4, 5, 3, 6), dtype)
    for cap in (1, 2, 3, 7):
        x = TTTensor.from_dense(xp.asarray(a), max_rank=cap)
        assert x.max_rank <= cap
        assert x.ranks == tuple(min(cap, u) for u in _useful_ranks(a.shape))
    caps = (2, 3, 1)
    x = TTTensor.from_dense(xp.asarray(a), max_rank=caps)
    assert all(r <= c for r, c in zip(x.ranks[1:-1], caps, strict=True))
    x = TTTensor.from_dense(xp.asarray(a), max_rank=[1, 2, 3, 1, 1])
    assert all(r <= c for r, c in zip(x.ranks[1:-1], (2, 3, 1), strict=True))


def test_from_dense_max_rank_and_eps_stricter_wins(xp, rng):
    a = _host_random(rng, (4, 5, 3, 6), np.float64)
    loose = TTTensor.from_dense(xp.asarray(a), eps=0.5)
    both = TTTensor.from_dense(xp.asarray(a), eps=0.5, max_rank=2)
    assert all(r <= min(2, rl) for r, rl in zip(both.ranks, loose.ranks, strict=True))
    tight = TTTensor.from_dense(xp.asarray(a), eps=1e-8, max_rank=2)
    assert tight.max_rank <= 2


def test_from_dense_max_rank_best_is_svd_optimal_for_d2(xp, rng):
    a = rng.standard_normal((7, 9))
    x = TTTensor.from_dense(xp.asarray(a), max_rank=3)
    s = np.linalg.svd(a, compute_uv=False)
    err = np.linalg.norm(_full(x) - a)
    assert err == pytest.approx(np.sqrt(np.sum(s[3:] ** 2)), rel=1e-10)


def test_from_dense_wide_unfolding(xp, rng):
    # first unfolding 2 x 1500: the QR-reduced (wide) path
    a = rng.standard_normal((2, 30, 50))
    x = TTTensor.from_dense(xp.asarray(a))
    _close(x.full(), a, np.float64)
    y = TTTensor.from_dense(xp.asarray(a), eps=0.2)
    assert _rel_err(_full(y), a) <= 0.2


@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=["float64", "complex128"])
@pytest.mark.parametrize("shape", [(2, 30, 50), (2, 100, 200)])  # 2 x 20000: the chunked TSQR
def test_from_dense_wide_unfolding_dtypes(xp, rng, dtype, shape):
    a = _host_random(rng, shape, dtype)
    x = TTTensor.from_dense(xp.asarray(a))
    assert x.ranks == _useful_ranks(shape)
    _close(x.full(), a, dtype)
    y = TTTensor.from_dense(xp.asarray(a), eps=0.25)
    assert _rel_err(_full(y), a) <= 0.25
    z = TTTensor.from_dense(xp.asarray(a), max_rank=3)
    assert z.max_rank <= 3


def test_from_dense_and_round_of_zero(xp):
    z = TTTensor.from_dense(xp.zeros((3, 4, 5)))
    assert z.ranks == (1, 1, 1, 1)
    np.testing.assert_array_equal(_full(z), 0)
    r = tt.zeros((3, 4, 5), xp=xp).round(0.1)
    assert r.ranks == (1, 1, 1, 1)
    np.testing.assert_array_equal(_full(r), 0)


# ---- round ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_round_idempotent(xp, dtype):
    a = _rand_tt(xp, (3, 4, 5, 3), 6, dtype=dtype, seed=2)
    eps = 1e-2 if np.dtype(dtype) == np.float32 else 1e-8
    r1 = a.round(eps)
    r2 = r1.round(eps)
    assert r2.ranks == r1.ranks
    _close(r2.full(), r1.full(), dtype)
    r1 = a.round(0.3)
    r2 = r1.round(0.0)
    assert r2.ranks == r1.ranks
    _close(r2.full(), r1.full(), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_round_sum_is_twice(xp, dtype):
    a = _rand_tt(xp, (3, 4, 5, 3), (1, 2, 3, 2, 1), dtype=dtype, seed=4)
    s = a + a
    assert s.ranks == (1, 4, 6, 4, 1)
    for eps in (0.0, 1e-8):
        r = s.round(eps)
        assert r.ranks == a.ranks
        _close(r.full(), 2 * to_numpy(a.full()), dtype)
    r = tt.round(s, 1e-8)
    assert r.ranks == a.ranks


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("eps", [0.05, 0.2, 0.5])
def test_round_eps_bound(xp, dtype, eps):
    a = _rand_tt(xp, (4, 4, 4, 4, 4), 8, dtype=dtype, seed=5)
    b = a.round(eps)
    fa = _full(a).astype(np.complex128 if np.dtype(dtype).kind == "c" else np.float64)
    err = np.linalg.norm((_full(b) - fa).ravel())
    slack = 1e-4 if np.dtype(dtype) == np.float32 else 1e-10
    assert err <= (eps + slack) * np.linalg.norm(fa.ravel())
    assert all(rb <= ra for rb, ra in zip(b.ranks, a.ranks, strict=True))


def test_round_eps0_preserves_values(xp):
    a = _rand_tt(xp, (3, 4, 5, 3), 8, seed=6)
    b = a.round()
    _close(b.full(), a.full(), np.float64)
    assert all(r <= u for r, u in zip(b.ranks, _useful_ranks(a.shape), strict=True))
    assert a.ranks == (1, 3, 8, 3, 1)  # random_tensor caps ranks at the useful ones
    assert b.ranks == a.ranks  # a generic TT of these ranks is not compressible


def test_round_max_rank(xp):
    a = _rand_tt(xp, (4, 4, 4, 4, 4), 8, seed=8)
    for cap in (1, 2, 5):
        b = a.round(max_rank=cap)
        assert b.max_rank <= cap
        c = a.round(eps=1e-12, max_rank=cap)
        assert c.max_rank <= cap
    b = a.round(max_rank=[1, 3, 2, 4, 5, 1])
    assert all(r <= c for r, c in zip(b.ranks, (1, 3, 2, 4, 5, 1), strict=True))
    b = a.round(max_rank=(3, 2, 4, 5))
    assert all(r <= c for r, c in zip(b.ranks, (1, 3, 2, 4, 5, 1), strict=True))
    # rank-1 truncation of a rank-1 tensor is exact
    one = _rand_tt(xp, (3, 4, 5), 1, seed=9)
    _close(one.round(max_rank=1).full(), one.full(), np.float64)


def test_round_max_rank_d2_is_svd_optimal(xp, rng):
    a = rng.standard_normal((6, 8))
    x = TTTensor.from_dense(xp.asarray(a))
    y = x.round(max_rank=2)
    s = np.linalg.svd(a, compute_uv=False)
    assert np.linalg.norm(_full(y) - a) == pytest.approx(np.sqrt(np.sum(s[2:] ** 2)), rel=1e-10)


def test_round_d1(xp, rng):
    a = rng.standard_normal(7)
    x = TTTensor.from_dense(xp.asarray(a))
    _close(x.round(0.1).full(), a, np.float64)


# ---- orthogonalize ------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("direction", ["left", "right"])
def test_orthogonalize(xp, dtype, direction):
    a = _rand_tt(xp, (3, 4, 1, 5, 2), (1, 3, 4, 4, 2, 1), dtype=dtype, seed=10)
    b = a.orthogonalize(direction)
    assert b.shape == a.shape
    _close(b.full(), a.full(), dtype)
    cores = [to_numpy(c) for c in b.cores]
    atol = 50 * _tol(dtype)
    if direction == "left":
        check = cores[:-1]
        for c in check:
            q = c.reshape(c.shape[0] * c.shape[1], c.shape[2])
            np.testing.assert_allclose(q.conj().T @ q, np.eye(q.shape[1]), atol=atol)
    else:
        check = cores[1:]
        for c in check:
            q = c.reshape(c.shape[0], c.shape[1] * c.shape[2])
            np.testing.assert_allclose(q @ q.conj().T, np.eye(q.shape[0]), atol=atol)
    c = tt.orthogonalize(a, direction)
    _close(c.full(), a.full(), dtype)


def test_orthogonalize_bad_direction(xp):
    a = _rand_tt(xp, (2, 3), 2)
    with pytest.raises(tt.TTError, match="direction"):
        a.orthogonalize("up")


# ---- norm, dot, sum -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("modes", [(3, 4, 5), (2,), (1, 3, 1), (2, 2, 2, 2, 2)])
def test_norm(xp, dtype, modes):
    a = _rand_tt(xp, modes, 3, dtype=dtype, seed=11)
    ref = np.linalg.norm(_full(a).ravel())
    assert isinstance(a.norm(), float)
    assert a.norm() == pytest.approx(ref, rel=10 * _tol(dtype))
    assert tt.norm(a) == pytest.approx(ref, rel=10 * _tol(dtype))
    assert a.log_norm() == pytest.approx(math.log(ref), abs=10 * _tol(dtype))


def test_norm_zero(xp):
    z = tt.zeros((3, 4), xp=xp)
    assert z.norm() == 0.0
    assert z.log_norm() == -math.inf
    a = _rand_tt(xp, (3, 4), 2)
    assert (a - a).norm() == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("modes", [(3, 4, 5), (4,), (1, 3, 2, 1)])
def test_dot(xp, dtype, modes):
    a = _rand_tt(xp, modes, 3, dtype=dtype, seed=12)
    b = _rand_tt(xp, modes, 2, dtype=dtype, seed=13)
    ref = np.vdot(_full(a), _full(b))  # conjugates the first argument
    got = tt.dot(a, b)
    scale = np.linalg.norm(_full(a)) * np.linalg.norm(_full(b))
    assert abs(got - ref) <= 10 * _tol(dtype) * scale
    got_ba = tt.dot(b, a)
    assert abs(got_ba - np.conj(ref)) <= 10 * _tol(dtype) * scale
    assert tt.dot(a, a) == pytest.approx(a.norm() ** 2, rel=10 * _tol(dtype))
    sign, logabs = tt.log_dot(a, b)
    assert abs(sign) == pytest.approx(1.0)
    assert sign * math.exp(logabs) == pytest.approx(ref, rel=10 * _tol(dtype))


def test_dot_complex_conjugates_first(xp):
    a = _rand_tt(xp, (2, 3), 2, dtype=np.complex128, seed=14)
    b = 1j * a
    # <a, i a> = i ||a||^2, and <i a, a> = -i ||a||^2
    n2 = a.norm() ** 2
    assert tt.dot(a, b) == pytest.approx(1j * n2)
    assert tt.dot(b, a) == pytest.approx(-1j * n2)


def test_dot_orthogonal_is_zero(xp):
    e0 = np.zeros((2, 3))
    e0[0, 0] = 1
    e1 = np.zeros((2, 3))
    e1[1, 2] = 1
    a, b = TTTensor.from_dense(xp.asarray(e0)), TTTensor.from_dense(xp.asarray(e1))
    assert tt.dot(a, b) == 0
    assert tt.log_dot(a, b)[1] == -math.inf


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_sum(xp, dtype):
    a = _rand_tt(xp, (3, 4, 2, 5), 3, dtype=dtype, seed=15)
    fa = _full(a)
    total = a.sum()
    assert np.ndim(to_numpy(total)) == 0
    assert complex(to_numpy(total)) == pytest.approx(complex(fa.sum()), rel=1e-3 if
                                                      np.dtype(dtype) == np.float32 else 1e-9,
                                                      abs=1e-4 if np.dtype(dtype) == np.float32
                                                      else 1e-10)
    for axis in (0, 1, 3, -1, (0, 2), (1, 3), [0, 1, 2], (0, 1, 2, 3)):
        ref = fa.sum(axis=tuple(axis) if isinstance(axis, list) else axis)
        got = a.sum(axis=axis)
        if isinstance(got, TTTensor):
            assert got.shape == ref.shape
            got = got.full()
        _close(got, ref, dtype, scale=100)


def test_sum_bad_axis(xp):
    a = _rand_tt(xp, (2, 3), 2)
    with pytest.raises(tt.TTIndexError, match="out of range"):
        a.sum(axis=2)
    with pytest.raises(TypeError, match="axis"):
        a.sum(axis=1.5)


# ---- indexing -----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_element_access(xp, dtype):
    a = _rand_tt(xp, (3, 4, 5), 3, dtype=dtype, seed=16)
    fa = _full(a)
    tol = 10 * _tol(dtype)
    for idx in [(0, 0, 0), (2, 3, 4), (1, 2, 3), (-1, -1, -1), (-3, 0, -5), (np.int64(1), 2, 0)]:
        got = complex(to_numpy(a[idx]))
        assert got == pytest.approx(complex(fa[idx]), rel=tol, abs=tol)
    with pytest.raises(tt.TTIndexError, match="out of range"):
        a[3, 0, 0]
    with pytest.raises(tt.TTIndexError, match="out of range"):
        a[0, -5, 0]
    with pytest.raises(tt.TTIndexError, match="too many"):
        a[0, 0, 0, 0]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_slicing(xp, dtype):
    a = _rand_tt(xp, (3, 4, 5, 2), 3, dtype=dtype, seed=17)
    fa = _full(a)
    keys = [
        (slice(None), 1),
        1,
        (1, slice(None), 2),
        (slice(1, 3), Ellipsis, [0, 1]),
        (Ellipsis, 1),
        (Ellipsis,),
        (slice(None, None, 2), slice(3, 0, -1), -2),
        (0, [3, 1, 1], slice(None), 1),
        (-1, np.array([0, -1]), slice(None), 0),
        (slice(None), -1, -1, slice(None)),
        (0, 0, 0),
    ]
    for key in keys:
        ref = fa[key]
        got = a[key]
        assert isinstance(got, TTTensor), key
        assert got.shape == ref.shape, key
        _close(got.full(), ref, dtype, scale=100)


def test_slicing_with_ellipsis_middle(xp):
    a = _rand_tt(xp, (3, 4, 5), 2, seed=18)
    fa = _full(a)
    got = a[1:3, ..., [0, 2]]
    ref = fa[1:3, ..., [0, 2]]
    assert got.shape == ref.shape == (2, 4, 2)
    _close(got.full(), ref, np.float64)


def test_orthogonal_indexing_with_two_arrays(xp):
    a = _rand_tt(xp, (3, 4, 5), 2, seed=19)
    fa = _full(a)
    # two array indices select orthogonally (like np.ix_), not pointwise like numpy fancy
    got = a[[0, 2], :, [1, 3, 4]]
    ref = fa[np.ix_([0, 2], range(4), [1, 3, 4])]
    assert got.shape == (2, 4, 3)
    _close(got.full(), ref, np.float64)


def test_bad_indices(xp):
    a = _rand_tt(xp, (3, 4), 2)
    with pytest.raises(tt.TTIndexError, match="single ellipsis"):
        a[..., ...]
    with pytest.raises(tt.TTIndexError, match="selects nothing"):
        a[3:, 0]
    with pytest.raises(tt.TTIndexError, match="integer array"):
        a[[0.5, 1.0]]
    with pytest.raises(tt.TTIndexError, match="out of range"):
        a[[0, 3]]
    with pytest.raises(tt.TTIndexError, match="unsupported index"):
        a["x"]
    assert len(a) == 3


# ---- conversions --------------------------------------------------------------------------------
def test_astype_and_to(xp):
    a = _rand_tt(xp, (3, 4, 5), 3, seed=20)
    for dt in (np.float32, np.complex128, np.complex64, np.float64):
        b = a.astype(dt)
        assert b.dtype == np.dtype(dt)
        assert all(c.dtype == np.dtype(dt) for c in b.cores)
        _close(b.full(), a.full(), dt)
    with pytest.raises(TypeError, match="floating-point"):
        a.astype(np.int32)
    h = a.to("numpy")
    assert h.backend == "numpy"
    assert all(isinstance(c, np.ndarray) for c in h.cores)
    np.testing.assert_allclose(h.full(), _full(a), rtol=1e-12)
    assert a.to(xp) is a
    assert a.to(xp.__name__).backend == xp.__name__


def test_conj(xp):
    a = _rand_tt(xp, (3, 4), 2, dtype=np.complex128, seed=21)
    np.testing.assert_allclose(_full(a.conj()), np.conj(_full(a)), rtol=1e-12)
    r = _rand_tt(xp, (3, 4), 2, seed=21)
    assert r.conj() is r


def test_repr_shows_structure_not_data(xp):
    a = _rand_tt(xp, (3, 4, 5), 2)
    s = repr(a)
    assert "shape=(3, 4, 5)" in s and "ranks=(1, 2, 2, 1)" in s and "float64" in s
    assert xp.__name__ in s


def test_immutable(xp):
    a = _rand_tt(xp, (3, 4), 2)
    with pytest.raises(AttributeError):
        a.cores = ()
    with pytest.raises(TypeError, match="ambiguous"):
        bool(a)


# ---- arithmetic ------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("modes", [(3, 4, 5), (6,), (1, 2, 1, 3)])
def test_arithmetic(xp, dtype, modes):
    a = _rand_tt(xp, modes, 3, dtype=dtype, seed=22)
    b = _rand_tt(xp, modes, 2, dtype=dtype, seed=23)
    fa, fb = _full(a), _full(b)
    _close((a + b).full(), fa + fb, dtype)
    _close((a - b).full(), fa - fb, dtype)
    _close((-a).full(), -fa, dtype)
    _close((+a).full(), fa, dtype)
    _close((2.5 * a).full(), 2.5 * fa, dtype)
    _close((a * 2.5).full(), 2.5 * fa, dtype)
    _close((a / 4.0).full(), fa / 4.0, dtype)
    _close((a * b).full(), fa * fb, dtype)
    _close((a * np.float32(3)).full(), 3 * fa, dtype)
    _close((a * xp.asarray(3.0, dtype=dtype)).full(), 3 * fa, dtype)
    if np.dtype(dtype).kind == "c":
        _close(((1 - 2j) * a).full(), (1 - 2j) * fa, dtype)
    # structure of the results
    d = len(modes)
    if d > 1:
        assert (a + b).ranks[1:-1] == tuple(x + y for x, y in zip(a.ranks[1:-1], b.ranks[1:-1], strict=True))
    assert (a * b).ranks == tuple(x * y for x, y in zip(a.ranks, b.ranks, strict=True))
    assert (2 * a).ranks == a.ranks
    assert (a + b).dtype == np.dtype(dtype)
    assert (2 * a).dtype == np.dtype(dtype)


def test_arithmetic_mixed_dtype_promotes(xp):
    a = _rand_tt(xp, (3, 4), 2, dtype=np.float32, seed=24)
    b = _rand_tt(xp, (3, 4), 2, dtype=np.complex128, seed=25)
    c = a + b
    assert c.dtype == np.complex128
    _close(c.full(), _full(a).astype(np.complex128) + _full(b), np.complex128, scale=1e6)


def test_arithmetic_errors(xp):
    a = _rand_tt(xp, (3, 4), 2)
    b = _rand_tt(xp, (4, 3), 2)
    with pytest.raises(tt.ShapeError, match="equal shapes"):
        a + b
    with pytest.raises(tt.ShapeError, match="equal shapes"):
        a * b
    with pytest.raises(TypeError):
        a + 1.0
    with pytest.raises(TypeError):
        a * "x"
    with pytest.raises(TypeError):
        a @ a


# ---- kron ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_kron(xp, dtype):
    a = _rand_tt(xp, (2, 3), 2, dtype=dtype, seed=26)
    b = _rand_tt(xp, (4, 1, 2), 2, dtype=dtype, seed=27)
    k = tt.kron(a, b)
    assert k.shape == (2, 3, 4, 1, 2)
    assert k.ranks == a.ranks + b.ranks[1:]
    ref = np.kron(_full(a).ravel(), _full(b).ravel())
    _close(k.full().ravel(), ref, dtype)


def test_kron_mixed_dtype_and_errors(xp):
    a = _rand_tt(xp, (2, 3), 2, dtype=np.float32, seed=28)
    b = _rand_tt(xp, (3,), 1, dtype=np.float64, seed=29)
    k = tt.kron(a, b)
    assert k.dtype == np.float64
    _close(k.full().ravel(), np.kron(_full(a).ravel(), _full(b).ravel()), np.float32)
    with pytest.raises(TypeError, match="TTTensor or TTMatrix"):
        tt.kron(a, np.ones(3))
    with pytest.raises(TypeError, match="kron needs"):
        tt.kron(a, tt.eye((2, 2), xp=xp))


# ---- constructors ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_zeros_ones(xp, dtype):
    z = tt.zeros((3, 1, 4), dtype=dtype, xp=xp)
    o = tt.ones((3, 1, 4), dtype=dtype, xp=xp)
    assert z.shape == o.shape == (3, 1, 4)
    assert z.ranks == o.ranks == (1, 1, 1, 1)
    assert z.dtype == o.dtype == np.dtype(dtype)
    assert z.backend == o.backend == xp.__name__
    np.testing.assert_array_equal(_full(z), np.zeros((3, 1, 4)))
    np.testing.assert_array_equal(_full(o), np.ones((3, 1, 4)))
    assert o.norm() == pytest.approx(math.sqrt(12), rel=10 * _tol(dtype))
    assert complex(to_numpy(o.sum())) == pytest.approx(12)
    assert tt.zeros(5, xp=xp).shape == (5,)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_random_tensor_unit_variance(xp, dtype):
    modes = (4, 5, 6, 5)
    vals = []
    for seed in range(40):
        a = _rand_tt(xp, modes, 3, dtype=dtype, seed=100 + seed)
        vals.append(_full(a).ravel())
    v = np.concatenate(vals)
    assert np.mean(np.abs(v) ** 2) == pytest.approx(1.0, abs=0.15)
    assert abs(np.mean(v)) < 0.1
    assert a.ranks == (1, 3, 3, 3, 1)
    assert a.dtype == np.dtype(dtype)


@pytest.mark.parametrize("std", [1e-3, 7.0])
def test_random_tensor_std_scales_every_core_equally(xp, std):
    modes = (4, 5, 6, 5)
    ref = _rand_tt(xp, modes, 3, seed=7)
    a = tt.random_tensor(modes, 3, rng=np.random.default_rng(7), xp=xp, std=std)
    share = std ** (1 / len(modes))
    for c, c_ref in zip(a.cores, ref.cores, strict=True):
        np.testing.assert_allclose(to_numpy(c), share * to_numpy(c_ref), rtol=1e-15)
    v = np.concatenate([_full(tt.random_tensor(modes, 3, rng=s, xp=xp, std=std)).ravel()
                        for s in range(40)])
    assert np.mean(v ** 2) / std ** 2 == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize("std", [1e-200, 1e200])
def test_random_tensor_std_keeps_cores_balanced_at_large_d(std):
    d = 2000
    a = tt.random_tensor((2,) * d, 2, rng=3, std=std)
    peaks = [float(np.abs(c).max()) for c in a.cores]
    assert all(0.1 < p < 10 for p in peaks)      # the share std**(1/d) is about 0.8 or 1.26
    assert math.isfinite(a.log_norm())


def test_random_tensor_caps_ranks_and_is_seeded(xp):
    a = _rand_tt(xp, (2, 3, 2), 10, seed=5)
    assert a.ranks == (1, 2, 2, 1)
    b = _rand_tt(xp, (2, 3, 2), 10, seed=5)
    np.testing.assert_array_equal(_full(a), _full(b))
    c = _rand_tt(xp, (2, 3, 2), 10, seed=6)
    assert not np.allclose(_full(a), _full(c))


# ---- d = 1 and modes of size 1 --------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_d1_tensor(xp, rng, dtype):
    v = _host_random(rng, (7,), dtype)
    a = TTTensor.from_dense(xp.asarray(v))
    assert a.d == 1 and a.ranks == (1, 1)
    _close(a.full(), v, dtype)
    assert a.norm() == pytest.approx(np.linalg.norm(v), rel=10 * _tol(dtype))
    assert tt.dot(a, a) == pytest.approx(np.vdot(v, v).real, rel=10 * _tol(dtype))
    assert complex(to_numpy(a.sum())) == pytest.approx(complex(v.sum()), rel=100 * _tol(dtype))
    assert complex(to_numpy(a[3])) == pytest.approx(complex(v[3]), rel=10 * _tol(dtype))
    _close(a[1:4].full(), v[1:4], dtype)
    _close((a + a).full(), 2 * v, dtype)
    _close((a * a).full(), v * v, dtype)
    _close(a.round(0.5).full(), v, dtype)
    _close(a.orthogonalize("left").full(), v, dtype)
    _close(a.orthogonalize("right").full(), v, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_modes_of_size_one(xp, rng, dtype):
    shape = (1, 3, 1, 1, 4, 1)
    v = _host_random(rng, shape, dtype)
    a = TTTensor.from_dense(xp.asarray(v))
    _close(a.full(), v, dtype)
    assert max(a.ranks) == 1 or a.ranks == _useful_ranks(shape)
    assert a.ranks == _useful_ranks(shape)
    b = _rand_tt(xp, shape, 4, dtype=dtype, seed=30)
    fb = _full(b)
    _close((a + b).round(0).full(), v + fb, dtype)
    _close(b[0, :, 0, 0, :, 0].full(), fb[0, :, 0, 0, :, 0], dtype)
    assert b.norm() == pytest.approx(np.linalg.norm(fb), rel=10 * _tol(dtype))
    _close(b.sum(axis=(0, 2)).full(), fb.sum(axis=(0, 2)), dtype)
    c = tt.ones((1, 1, 1), dtype=dtype, xp=xp)
    assert c.norm() == pytest.approx(1.0)
    assert complex(to_numpy(c[0, 0, 0])) == 1


# ---- numerics at scale ------------------------------------------------------------------------
def _orthogonal_chain(d, rng, dtype=np.float64):
    """Host cores of a rank-2 TT with modes 2 that is left-orthogonal with a unit last core,
    so its norm is exactly 1."""
    cores = []
    r_prev = 1
    for _ in range(d - 1):
        q, _r = np.linalg.qr(rng.standard_normal((r_prev * 2, 2)))
        cores.append(q.reshape(r_prev, 2, 2))
        r_prev = 2
    last = rng.standard_normal((2, 2, 1))
    cores.append(last / np.linalg.norm(last))
    return cores


def _log_norm_reference(cores):
    """log ||tt|| by an independent renormalised Gram sweep on the host (float64)."""
    g = np.ones((1, 1))
    log_s = 0.0
    for c in cores:
        g = np.einsum("ab,aic,bid->cd", g, np.conj(c), c).real
        s = np.max(np.abs(g))
        g = g / s
        log_s += math.log(s)
    return 0.5 * (log_s + math.log(g[0, 0]))


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_norm_and_dot_no_overflow_d1000(xp, dtype):
    rng = np.random.default_rng(42)
    d = 1000
    base = _orthogonal_chain(d, rng)
    if np.dtype(dtype).kind == "c":  # a unit complex phase per core keeps the norm
        base = [c * np.exp(1j * rng.uniform(0, 2 * np.pi)) for c in base]
    scaled = [(c * (10.0 if k < d // 2 else 0.1)).astype(dtype) for k, c in enumerate(base)]
    # the partial products overflow a naive sweep: ||G_1..G_500|| ~ 10^500
    a = TTTensor([xp.asarray(c) for c in scaled])
    assert a.d == d and a.dtype == np.dtype(dtype)
    # float32: 1000 cores of round-off, and log(10) terms summed in single precision
    tol = 1e-8 if np.dtype(dtype) != np.float32 else 10 * _tol(dtype)
    n = a.norm()
    assert math.isfinite(n)
    assert n == pytest.approx(1.0, rel=tol)
    assert a.log_norm() == pytest.approx(0.0, abs=tol)
    dd = tt.dot(a, a)
    assert np.isfinite(dd)
    assert dd == pytest.approx(1.0, rel=tol)
    sign, logabs = tt.log_dot(a, a)
    assert logabs == pytest.approx(2 * a.log_norm(), abs=2 * tol)
    assert sign == pytest.approx(1.0)


def test_norm_and_dot_no_overflow_d1000_generic(xp):
    """Generic (non-orthogonal) cores: the expected norm is computed independently."""
    rng = np.random.default_rng(43)
    d = 1000
    base = [rng.standard_normal((1 if k == 0 else 2, 2, 1 if k == d - 1 else 2)) / 1.5
            for k in range(d)]
    expected_log = _log_norm_reference(base)  # the scalings below cancel
    scaled = [c * (10.0 if k < d // 2 else 0.1) for k, c in enumerate(base)]
    a = TTTensor([xp.asarray(c) for c in scaled])
    assert a.log_norm() == pytest.approx(expected_log, rel=1e-9, abs=1e-8)
    if abs(expected_log) < 300:
        assert a.norm() == pytest.approx(math.exp(expected_log), rel=1e-7)
        assert tt.dot(a, a) == pytest.approx(math.exp(2 * expected_log), rel=1e-7)
    sign, logabs = tt.log_dot(a, a)
    assert sign == pytest.approx(1.0)
    assert logabs == pytest.approx(2 * expected_log, rel=1e-9, abs=1e-8)


def test_log_norm_finite_where_norm_overflows(xp):
    rng = np.random.default_rng(44)
    d = 1000
    base = _orthogonal_chain(d, rng)
    a = TTTensor([xp.asarray(10.0 * c) for c in base])  # ||a|| = 10^1000
    expected = d * math.log(10.0)
    assert a.log_norm() == pytest.approx(expected, rel=1e-10)
    assert math.isinf(a.norm())
    sign, logabs = tt.log_dot(a, a)
    assert math.isfinite(logabs)
    assert logabs == pytest.approx(2 * expected, rel=1e-10)
    assert sign == pytest.approx(1.0)
    assert math.isinf(tt.dot(a, a))
    # and the tiny side: ||b|| = 10^-1000 underflows to 0 but log_norm stays finite
    b = TTTensor([xp.asarray(0.1 * c) for c in base])
    assert b.log_norm() == pytest.approx(-expected, rel=1e-10)
    assert b.norm() == 0.0
    assert tt.log_dot(b, b)[1] == pytest.approx(-2 * expected, rel=1e-10)


def test_round_no_underflow_d1000(xp):
    rng = np.random.default_rng(45)
    d = 1000
    base = _orthogonal_chain(d, rng)
    scaled = [c * (10.0 if k < d // 2 else 0.1) for k, c in enumerate(base)]
    a = TTTensor([xp.asarray(c) for c in scaled])
    b = a.round(1e-8)
    # ||a - b|| <= eps ||a|| with ||a|| = 1: b must keep the norm and the entries
    assert b.norm() == pytest.approx(1.0, rel=1e-6)
    assert tt.dot(a, b) == pytest.approx(1.0, rel=1e-6)
    assert b.ranks == a.ranks


@pytest.mark.parametrize("direction", ["left", "right"])
def test_orthogonalize_no_overflow_d1000(xp, direction):
    rng = np.random.default_rng(46)
    d = 1000
    base = _orthogonal_chain(d, rng)
    scaled = [c * (10.0 if k < d // 2 else 0.1) for k, c in enumerate(base)]
    a = TTTensor([xp.asarray(c) for c in scaled])
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        b = a.orthogonalize(direction)
    assert b.norm() == pytest.approx(1.0, rel=1e-8)
    assert tt.dot(a, b) == pytest.approx(1.0, rel=1e-8)


@pytest.mark.parametrize("bad", [np.nan, np.inf], ids=["nan", "inf"])
def test_norm_of_nonfinite_tensor_is_not_zero(xp, bad):
    c0 = np.ones((1, 2, 2))
    c1 = np.ones((2, 2, 1))
    c1[0, 0, 0] = bad
    a = TTTensor([xp.asarray(c0), xp.asarray(c1)])
    with np.errstate(all="ignore"):
        ref = np.linalg.norm(_full(a))  # nan or inf
        n = a.norm()
        ln = a.log_norm()
    assert not math.isfinite(ref)
    assert not math.isfinite(n)         # observed: 0.0
    assert ln != -math.inf              # observed: -inf (the zero tensor's value)


# ---- SVD fallback ------------------------------------------------------------------------------
@pytest.mark.parametrize("layer", ["direct", "scipy"])
def test_svd_gesdd_failure_falls_back_to_gesvd(monkeypatch, rng, layer):
    """Either way to LAPACK (the direct call with a cached workspace, or scipy.linalg.svd
    where that is not available) failing in gesdd falls back to gesvd with a warning."""
    calls = {"gesdd": 0, "gesvd": 0}
    if layer == "scipy":
        real_svd = scipy.linalg.svd

        def flaky_svd(a, *args, lapack_driver="gesdd", **kwargs):
            calls[lapack_driver] += 1
            if lapack_driver == "gesdd":
                raise np.linalg.LinAlgError("SVD did not converge")
            return real_svd(a, *args, lapack_driver=lapack_driver, **kwargs)

        monkeypatch.setattr(_backend, "_direct_svd", lambda a, driver, compute_uv=True: None)
        monkeypatch.setattr(scipy.linalg, "svd", flaky_svd)
    else:
        real_direct = _backend._direct_svd

        def flaky_direct(a, driver, compute_uv=True):
            calls[driver] += 1
            if driver == "gesdd":
                raise np.linalg.LinAlgError("SVD (gesdd) did not converge")
            return real_direct(a, driver, compute_uv)

        monkeypatch.setattr(_backend, "_direct_svd", flaky_direct)
    a = rng.standard_normal((4, 5, 6))
    with pytest.warns(RuntimeWarning, match="gesvd"):
        x = TTTensor.from_dense(a)
    assert calls["gesdd"] >= 1 and calls["gesvd"] >= 1
    np.testing.assert_allclose(x.full(), a, rtol=1e-10, atol=1e-10)
    assert x.ranks == _useful_ranks(a.shape)
    with pytest.warns(RuntimeWarning):
        y = TTTensor.from_dense(a, eps=0.3)
    assert _rel_err(y.full(), a) <= 0.3
    with pytest.warns(RuntimeWarning):
        z = x.round(max_rank=2)
    assert z.max_rank <= 2


def test_svd_both_drivers_fail_raises(monkeypatch, rng):
    def broken(a, *args, **kwargs):
        raise np.linalg.LinAlgError("SVD did not converge")

    monkeypatch.setattr(_backend, "_direct_svd", broken)
    monkeypatch.setattr(scipy.linalg, "svd", broken)
    with pytest.warns(RuntimeWarning), pytest.raises(np.linalg.LinAlgError):
        TTTensor.from_dense(rng.standard_normal((3, 4)))


# ---- input validation --------------------------------------------------------------------------
def test_from_dense_validation(xp):
    with pytest.raises(tt.TTError, match="NaN or Inf"):
        TTTensor.from_dense(xp.asarray(np.array([[1.0, np.nan], [0.0, 1.0]])))
    with pytest.raises(TypeError, match="floating-point"):
        TTTensor.from_dense(xp.asarray(np.ones((2, 2), dtype=np.int64)))
    with pytest.raises(tt.TTError, match="eps"):
        TTTensor.from_dense(xp.asarray(np.ones((2, 2))), eps=-1.0)
    with pytest.raises(tt.RankError, match="max_rank"):
        TTTensor.from_dense(xp.asarray(np.ones((2, 2))), max_rank=0)
    with pytest.raises(tt.RankError, match="left rank"):
        TTTensor([xp.ones((1, 2, 3)), xp.ones((2, 2, 1))])

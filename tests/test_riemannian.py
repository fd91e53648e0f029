"""Riemannian geometry of fixed-rank TTs: projections, tangent vectors, retraction, transport,
sampled entries and the general optimizer, against dense NumPy oracles."""

import math
import warnings

import numpy as np
import pytest

import tensortrain as tt
from tensortrain import riemannian as R
from tensortrain.errors import (
    ConvergenceWarning,
    RankError,
    ShapeError,
    TTError,
    TTIndexError,
)


def _host(a):
    return a.get() if type(a).__module__.split(".")[0] == "cupy" else np.asarray(a)


def _rel(a, b):
    a, b = _host(a), _host(b)
    nb = np.linalg.norm(b.ravel())
    return np.linalg.norm((a - b).ravel()) / (nb if nb > 0 else 1.0)


def _dense_projector(x):
    """The orthogonal projector onto the tangent space at ``x`` as a dense matrix: spanned by
    the derivatives of the TT with respect to every core entry (small sizes only)."""
    cores = [np.asarray(c) for c in x.cores]
    cols = []
    for k, c in enumerate(cores):
        for j in range(c.size):
            e = np.zeros(c.size)
            e[j] = 1.0
            tmp = list(cores)
            tmp[k] = e.reshape(c.shape)
            cols.append(tt.TTTensor(tmp).full().ravel())
    rank = np.linalg.matrix_rank(np.array(cols).T)
    u = np.linalg.svd(np.array(cols).T, full_matrices=False)[0]
    basis = u[:, :rank]
    return basis @ basis.T


SHAPES = [((5,), 1), ((3, 4), 2), ((4, 5, 6), 3), ((2, 3, 4, 3), 2), ((3, 1, 4), 2)]


@pytest.mark.parametrize(("shape", "r"), SHAPES)
def test_projection_matches_the_dense_orthogonal_projector(shape, r):
    x = tt.random_tensor(shape, ranks=r, rng=1)
    z = tt.random_tensor(shape, ranks=3, rng=2)
    p = R.project(z, x)
    want = _dense_projector(x) @ z.full().ravel()
    assert _rel(p.full().ravel(), want) < 1e-10
    assert p.to_tt().shape == x.shape


@pytest.mark.parametrize(("shape", "r"), SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_geometry_properties_small(xp, shape, r, dtype):
    x = tt.random_tensor(shape, ranks=r, rng=1, dtype=dtype, xp=xp)
    z = tt.random_tensor(shape, ranks=3, rng=2, dtype=dtype, xp=xp)
    T = R.TangentSpace(x)
    p = R.project(z, T)
    pf = _host(p.full())
    # idempotent: P P z = P z
    assert _rel(R.project(p.to_tt(), T).full(), pf) < 1e-12
    # orthogonal: <z - P z, xi> = 0 for tangent xi
    xi = R.project(tt.random_tensor(shape, ranks=2, rng=5, dtype=dtype, xp=xp), T)
    resid = _host(z.full()) - pf
    scale = np.linalg.norm(resid) * xi.norm()
    assert abs(np.vdot(resid, _host(xi.full()))) <= 1e-12 * scale
    # x lies in its own tangent space
    assert _rel(R.project(x, T).full(), x.full()) < 1e-12
    assert _rel(T.as_tangent().full(), x.full()) < 1e-12
    # retraction of a zero step is x
    assert _rel(R.retract(T, T.zero()).full(), x.full()) < 1e-12
    # dot and norm of tangent vectors agree with the dense tensors
    want = np.vdot(pf, _host(xi.full()))
    assert abs(p.dot(xi) - want) < 1e-12 * np.linalg.norm(pf) * xi.norm()
    assert math.isclose(p.norm(), np.linalg.norm(pf), rel_tol=1e-12)
    # the gauge conditions U_k^H delta_k = 0
    for k in range(len(shape) - 1):
        u = _host(T.U[k]).reshape(-1, T.ranks[k + 1])
        dk = _host(p.deltas[k]).reshape(-1, T.ranks[k + 1])
        assert np.abs(u.conj().T @ dk).max() < 1e-12 * (1 + np.abs(dk).max())


def test_tangent_vector_algebra_and_ranks():
    x = tt.random_tensor((3, 4, 5, 2), ranks=2, rng=0)
    T = R.TangentSpace(x)
    a = R.project(tt.random_tensor(x.shape, ranks=2, rng=1), T)
    b = R.project(tt.random_tensor(x.shape, ranks=3, rng=2), T)
    c = 2.0 * a - b / 4 + (-a) + (+b)
    want = 2 * a.full() - b.full() / 4 - a.full() + b.full()
    assert _rel(c.full(), want) < 1e-13
    assert _rel((a * 3).full(), 3 * a.full()) < 1e-13
    assert c.ranks == (1, 4, 4, 4, 1)
    assert c.to_tt().ranks == c.ranks
    with pytest.raises(TypeError, match="ambiguous"):
        bool(a)
    with pytest.raises(TypeError):
        a * a
    assert "TangentVector" in repr(a) and "TangentSpace" in repr(T)


def test_tangent_vectors_at_different_points_are_refused():
    x = tt.random_tensor((3, 4, 5), ranks=2, rng=0)
    y = tt.random_tensor((3, 4, 5), ranks=2, rng=1)
    a = R.project(x, x)
    b = R.project(x, y)
    with pytest.raises(TTError, match="same point"):
        a + b
    with pytest.raises(TTError, match="same point"):
        a.dot(b)
    with pytest.raises(TTError, match="another point"):
        R.retract(y, a)
    with pytest.raises(TypeError, match="TangentVector"):
        a.dot(x)
    # two projections at the same TTTensor object share the (deterministic) orthogonal cores
    c = R.project(y, x)
    assert _rel((c - a).full(), c.full() - a.full()) < 1e-12
    assert abs(c.dot(a) - np.vdot(c.full(), a.full())) < 1e-10 * c.norm() * a.norm()


def test_transport_is_projection_and_sum_of_tts():
    x = tt.random_tensor((3, 4, 5), ranks=2, rng=0)
    y = tt.random_tensor((3, 4, 5), ranks=2, rng=1)
    z1 = tt.random_tensor((3, 4, 5), ranks=2, rng=2)
    z2 = tt.random_tensor((3, 4, 5), ranks=3, rng=3)
    xi = R.project(z1, x)
    moved = R.transport(xi, y)
    assert moved.space.x is y
    assert _rel(moved.full().ravel(), _dense_projector(y) @ xi.full().ravel()) < 1e-10
    both = R.project([z1, z2], x)
    assert _rel(both.full(), R.project(z1 + z2, x).full()) < 1e-12
    g = R.gradient(x, [z1, -1.0 * z2])
    assert _rel(g.full(), R.project(z1 - z2, x).full()) < 1e-12
    assert _rel(R.project(xi, y).full(), moved.full()) < 1e-12


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
def test_project_matmul_equals_the_projection_of_the_product(xp, dtype):
    x = tt.random_tensor((2, 3, 4), ranks=2, rng=1, dtype=dtype, xp=xp)
    a = tt.random_matrix((2, 3, 4), (3, 2, 2), ranks=3, rng=2, dtype=dtype, xp=xp)
    b = tt.random_tensor((3, 2, 2), ranks=2, rng=3, dtype=dtype, xp=xp)
    p = R.project_matmul(x, a, b)
    want = R.project(a @ b, x)
    assert _rel(p.full(), want.full()) < 1e-12
    with pytest.raises(ShapeError, match="row modes"):
        R.project_matmul(x, a, tt.random_tensor((3, 2, 3), ranks=2, rng=4, xp=xp))
    with pytest.raises(TypeError, match="TTMatrix"):
        R.project_matmul(x, b, b)
    with pytest.raises(TypeError, match="project_matmul"):
        R.project(a, x)


def test_geometry_at_large_d():
    d = 200
    x = tt.random_tensor((2,) * d, ranks=3, rng=1)
    z = tt.random_tensor((2,) * d, ranks=2, rng=2)
    T = R.TangentSpace(x)
    p = R.project(z, T)
    q = R.project(p.to_tt(), T)
    assert (p - q).norm() <= 1e-12 * p.norm()
    xi = R.project(tt.random_tensor((2,) * d, ranks=2, rng=3), T)
    # <z - P z, xi> with TT inner products (the magnitudes are near 1e24 here)
    lhs = tt.dot(z, xi.to_tt()) - p.dot(xi)
    assert abs(lhs) <= 1e-11 * z.norm() * xi.norm()
    # x in T_x, and a zero step retracts to x: compared entrywise at 500 random indices
    # (the norm of a difference of two TTs at d = 200 carries a cancellation of its own)
    idx = np.random.default_rng(0).integers(0, 2, (500, d))
    want = R.gather(x, idx)
    assert (R.project(x, T) - T.as_tangent()).norm() <= 1e-13 * x.norm()
    assert _rel(R.project(x, T).at(idx), want) < 1e-12
    assert _rel(R.gather(R.retract(x, T.zero()), idx), want) < 1e-12
    assert math.isclose(p.norm(), tt.norm(p.to_tt()), rel_tol=1e-10)


@pytest.mark.parametrize("scale", [2.0 ** 0.5, 2.0 ** -0.75])
def test_projection_at_d_1000_with_huge_and_tiny_norms(scale):
    # ||x|| = scale**1000 * 2**500: about 1e301 and 1e-76, partial products far outside
    d = 1000
    x = scale * tt.ones((2,) * d)
    x = tt.TTTensor([c * scale for c in x.cores])
    z = x + x
    T = R.TangentSpace(x)
    p = R.project(z, T)
    nx = x.norm()
    assert math.isfinite(nx) and nx > 0
    assert math.isclose(p.norm(), 2 * nx, rel_tol=1e-10)
    assert all(bool(np.isfinite(c).all()) for c in p.deltas)
    assert abs((p - 2.0 * T.as_tangent()).norm()) <= 1e-10 * nx
    idx = np.random.default_rng(0).integers(0, 2, (5, d))
    want = x[tuple(idx[0])]
    assert math.isclose(R.gather(x, idx)[0], want, rel_tol=1e-10)
    assert math.isclose(p.at(idx)[0], 2 * want, rel_tol=1e-9)


# ---- sampled entries ----------------------------------------------------------------------------
def _samples(shape, n, rng):
    return np.stack([rng.integers(0, m, n) for m in shape], axis=1)


@pytest.mark.parametrize(("shape", "r"), SHAPES)
def test_sparse_projection_equals_dense_projection(xp, shape, r):
    rng = np.random.default_rng(3)
    x = tt.random_tensor(shape, ranks=r, rng=1, xp=xp)
    idx = _samples(shape, 40, rng)
    vals = rng.standard_normal(40)
    dense = np.zeros(shape)
    np.add.at(dense, tuple(idx.T), vals)          # duplicate indices add up
    want = R.project(tt.TTTensor.from_dense(xp.asarray(dense)), x)
    got = R.project(R.SparseTensor(idx, xp.asarray(vals), shape), x)
    assert _rel(got.full(), want.full()) < 1e-12
    got2 = R.project((xp.asarray(idx), xp.asarray(vals)), x)
    assert _rel(got2.full(), want.full()) < 1e-12


def test_entries_at_samples_are_vectorized_and_exact():
    rng = np.random.default_rng(0)
    x = tt.random_tensor((4, 5, 3, 6), ranks=3, rng=1)
    idx = _samples(x.shape, 200, rng)
    full = x.full()
    assert np.abs(R.gather(x, idx) - full[tuple(idx.T)]).max() < 1e-12 * np.abs(full).max()
    xi = R.project(tt.random_tensor(x.shape, ranks=2, rng=2), x)
    assert np.abs(xi.at(idx) - xi.full()[tuple(idx.T)]).max() < 1e-12 * np.abs(full).max()
    # complex and float32 keep their dtype
    xc = tt.random_tensor((3, 4), ranks=2, rng=1, dtype=np.complex128)
    assert R.gather(xc, [[1, 2], [0, 3]]).dtype == np.complex128
    x32 = tt.random_tensor((3, 4, 2), ranks=2, rng=1, dtype=np.float32)
    got = R.gather(x32, [[1, 2, 1]])
    assert got.dtype == np.float32
    assert abs(got[0] - x32.full()[1, 2, 1]) < 1e-6


def test_gather_survives_partial_products_outside_the_range():
    d = 120
    cores = [np.full((1, 2, 1), 1e10)] * (d // 2) + [np.full((1, 2, 1), 1e-10)] * (d // 2)
    x = tt.TTTensor(cores)
    idx = np.zeros((3, d), dtype=np.int64)
    assert np.allclose(R.gather(x, idx), 1.0, rtol=1e-12)


def test_sparse_tensor_copies_what_the_caller_mutates_later():
    rng = np.random.default_rng(0)
    x = tt.random_tensor((3, 4, 5), ranks=2, rng=1)
    idx = _samples(x.shape, 30, rng)
    vals = rng.standard_normal(30)
    s = R.SparseTensor(idx, vals, x.shape)
    before = R.project(s, x).full()
    idx[:] = 0
    vals[:] = 7.0
    assert _rel(R.project(s, x).full(), before) == 0
    assert s.nnz == 30 and "SparseTensor" in repr(s)


def test_bad_sparse_input_is_refused_with_clear_errors():
    shape = (3, 4, 5)
    x = tt.random_tensor(shape, ranks=2, rng=1)
    idx = np.array([[0, 1, 2], [2, 3, 4]])
    vals = np.array([1.0, 2.0])
    with pytest.raises(ShapeError, match=r"shape \(n_samples, 3\).*got shape \(2, 2\)"):
        R.SparseTensor(idx[:, :2], vals, shape)
    with pytest.raises(TTIndexError, match=r"indices\[:, 1\] holds 4, out of range for mode 1"):
        R.SparseTensor(np.array([[0, 4, 0]]), vals[:1], shape)
    with pytest.raises(TTIndexError, match=r"holds -1.*not wrapped"):
        R.gather(x, np.array([[0, -1, 0]]))
    with pytest.raises(TypeError, match="integer dtype"):
        R.SparseTensor(idx.astype(float), vals, shape)
    with pytest.raises(ShapeError, match=r"one value per row of indices \(2\), got shape \(3,\)"):
        R.SparseTensor(idx, np.ones(3), shape)
    with pytest.raises(TypeError, match="floating-point"):
        R.SparseTensor(idx, np.array([1, 2]), shape)
    with pytest.raises(TTError, match="NaN or Inf"):
        R.SparseTensor(idx, np.array([1.0, np.nan]), shape)
    with pytest.raises(TTError, match="empty"):
        R.SparseTensor(np.zeros((0, 3), dtype=int), np.zeros(0), shape)
    with pytest.raises(ShapeError, match="shape"):
        R.project(R.SparseTensor(idx, vals, (3, 4, 6)), x)
    with pytest.raises(TypeError, match="integer array"):
        R.gather(x, "0,1,2")
    with pytest.raises(TypeError, match="TTTensor"):
        R.gather(x.full(), idx)


def test_bad_geometry_input():
    x = tt.random_tensor((3, 4, 5), ranks=2, rng=1)
    with pytest.raises(TypeError, match="TTTensor or a TangentSpace"):
        R.project(x, x.full())
    with pytest.raises(ShapeError, match="shape"):
        R.project(tt.random_tensor((3, 4, 6), ranks=2, rng=1), x)
    with pytest.raises(TypeError, match="TangentVector"):
        R.retract(x, x)
    with pytest.raises(TypeError, match="TangentVector"):
        R.transport(x, x)
    with pytest.raises(TypeError, match="a TTTensor point"):
        R.TangentSpace(x.full())
    bad = tt.TTTensor([np.full((1, 2, 1), np.nan), np.ones((1, 2, 1))])
    with pytest.raises(TTError, match="NaN or Inf"):
        R.TangentSpace(bad)
    with pytest.raises(TTError, match="empty list"):
        R.project([], x)
    with pytest.raises(RankError, match="max_rank"):
        R.retract(x, R.project(x, x), ranks=[1, 2, 3, 4, 5])


def test_retract_caps_the_ranks():
    x = tt.random_tensor((3, 4, 5, 3), ranks=3, rng=1)
    xi = R.project(tt.random_tensor(x.shape, ranks=3, rng=2), x)
    y = R.retract(x, 0.1 * xi)
    assert y.ranks == x.ranks
    y1 = R.retract(x, 0.1 * xi, ranks=1)
    assert y1.ranks == (1, 1, 1, 1, 1)
    # first-order: ||R(x, t xi) - (x + t xi)|| = O(t^2)
    errs = [(R.retract(x, t * xi) - (x + t * xi.to_tt())).norm() for t in (1e-2, 1e-3)]
    assert errs[1] < errs[0] / 50


# ---- the optimizer -------------------------------------------------------------------------------
def test_t3f_anchor_riemannian_descent_beats_rounding():
    """t3f's tutorial: rank-2 fit of a rank-16 TT of shape 2^10 with 100 Riemannian gradient
    steps of length 1 ends below the loss of TT rounding (t3f reports 488.4 vs 518.4)."""
    target = tt.random_tensor((2,) * 10, ranks=16, rng=7)

    def fun(x):
        return 0.5 * (x - target).norm() ** 2, [x, -1.0 * target]

    x0 = tt.random_tensor((2,) * 10, ranks=2, rng=8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        x, info = R.minimize(fun, x0, method="gd", step=1.0, max_iter=100, tol=0,
                             return_info=True)
    rounded = target.round(max_rank=2)
    loss_round = fun(rounded)[0]
    assert info.iterations == 100
    assert info.loss[-1] < loss_round
    assert x.ranks == (1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 1)


def test_minimize_cg_with_line_search_decreases_and_converges():
    a = tt.random_tensor((3,) * 5, ranks=2, rng=0)

    def fun(x):
        return 0.5 * (x - a).norm() ** 2, [x, -1.0 * a]

    x0 = tt.random_tensor((3,) * 5, ranks=2, rng=1)
    x, info = R.minimize(fun, x0, method="cg", max_iter=300, tol=1e-9, return_info=True)
    assert info.converged and info.reason == "tolerance"
    assert (x - a).norm() < 1e-6 * a.norm()
    assert all(b <= c * (1 + 1e-12) for b, c in zip(info.loss[1:], info.loss[:-1], strict=True))


def test_minimize_with_sampled_gradient_and_its_cap_warning():
    rng = np.random.default_rng(0)
    a = tt.random_tensor((5,) * 4, ranks=2, rng=0)
    idx = np.stack([rng.integers(0, 5, 300) for _ in range(4)], axis=1)
    vals = R.gather(a, idx)

    def fun(x):
        res = R.gather(x, idx) - vals
        return 0.5 * float(res @ res), R.SparseTensor(idx, res, x.shape)

    x0 = tt.random_tensor((5,) * 4, ranks=2, rng=1)
    with pytest.warns(ConvergenceWarning, match="cap of 3 iterations"):
        _, info = R.minimize(fun, x0, max_iter=3, return_info=True)
    assert info.loss[-1] < info.loss[0] and info.reason == "cap"


def test_minimize_bad_input():
    x = tt.random_tensor((3, 3), ranks=1, rng=0)

    def fun(x):
        return 0.0, x

    with pytest.raises(TypeError, match="callable"):
        R.minimize(1, x)
    with pytest.raises(TypeError, match="x0 must be a TTTensor"):
        R.minimize(fun, x.full())
    with pytest.raises(TTError, match="'cg' or 'gd'"):
        R.minimize(fun, x, method="newton")
    with pytest.raises(TTError, match="max_iter must be >= 1, got 0"):
        R.minimize(fun, x, max_iter=0)
    with pytest.raises(TTError, match="step"):
        R.minimize(fun, x, step=-1.0)
    with pytest.raises(TypeError, match="tol"):
        R.minimize(fun, x, tol="small")
    with pytest.raises(TypeError, match=r"\(loss, euclidean_gradient\)"):
        R.minimize(lambda x: 1.0, x)

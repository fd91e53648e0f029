"""Oracle tests for TTMatrix: dense reconstruction (given and automatic, padded modes), products
with dense arrays, TT-matrices and TT-tensors, the adjoint identity, norms and rounding on the
logical block of padded matrices, the contraction planner and the SciPy LinearOperator.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _helpers import assert_close as _close
from _helpers import host_random as _host_random
from _helpers import rel_err as _rel_err
from _helpers import to_numpy
from _helpers import tol as _tol
from scipy.sparse.linalg import cg

import tensortrain as tt
from tensortrain import TTMatrix, TTTensor, contraction

DTYPES = [np.float32, np.float64, np.complex128]
DTYPE_IDS = ["float32", "float64", "complex128"]


# ---- helpers ------------------------------------------------------------------------------
def _full(W):
    return to_numpy(W.full())


def _padded_random(xp, row_modes, col_modes, shape, ranks=3, dtype=np.float64, seed=0):
    """A TTMatrix of logical ``shape`` whose padding holds random nonzero values."""
    R = tt.random_matrix(row_modes, col_modes, ranks, rng=np.random.default_rng(seed),
                         dtype=dtype, xp=xp)
    return TTMatrix(list(R.cores), shape)


def _padded_dense(W):
    """The dense matrix over the padded modes (padding included), from the cores."""
    U = TTMatrix(list(W.cores))
    return _full(U)


# ---- from_dense --------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape, row_modes, col_modes", [
    ((12, 20), (3, 4), (4, 5)),
    ((24, 6), (2, 3, 4), (1, 2, 3)),
    ((10, 7), (3, 4), (2, 4)),            # given modes covering a padded size
    ((5, 8), (5,), (8,)),
    ((1, 6), (1, 1), (2, 3)),
])
def test_from_dense_given_modes(xp, rng, dtype, shape, row_modes, col_modes):
    A = _host_random(rng, shape, dtype)
    W = TTMatrix.from_dense(xp.asarray(A), row_modes=row_modes, col_modes=col_modes)
    assert W.shape == shape
    assert W.row_modes == row_modes and W.col_modes == col_modes
    assert W.padded_shape == (math.prod(row_modes), math.prod(col_modes))
    assert W.is_padded == (W.padded_shape != shape)
    assert W.ndim == 2 and W.d == len(row_modes)
    assert W.dtype == np.dtype(dtype)
    assert W.backend == xp.__name__
    _close(W.full(), A, dtype)
    # the cores hold zeros in the padding
    P = _padded_dense(W)
    assert np.abs(P[shape[0]:, :]).max(initial=0) <= 10 * _tol(dtype) * np.abs(A).max()
    assert np.abs(P[:, shape[1]:]).max(initial=0) <= 10 * _tol(dtype) * np.abs(A).max()


@pytest.mark.parametrize("shape", [(997, 997), (1000, 784), (10, 1024), (7, 3), (1, 5),
                                   (13, 17), (1, 1), (64, 1)])
def test_from_dense_auto_modes_awkward_sizes(xp, rng, shape):
    A = rng.standard_normal(shape)
    W = TTMatrix.from_dense(xp.asarray(A))
    assert W.shape == A.shape
    Mp, Np = W.padded_shape
    assert Mp >= shape[0] and Np >= shape[1]
    assert (Mp, Np) == (math.prod(W.row_modes), math.prod(W.col_modes))
    assert len(W.row_modes) == len(W.col_modes) == W.d
    assert Mp <= 1.1 * shape[0] + 1 and Np <= 1.1 * shape[1] + 1   # bounded padding
    F = _full(W)
    assert F.shape == A.shape
    np.testing.assert_allclose(F, A, rtol=0, atol=1e-10)
    assert ("padded_shape" in repr(W)) == W.is_padded
    assert f"shape={shape}" in repr(W)


def test_from_dense_997_is_padded(xp, rng):
    A = rng.standard_normal((997, 997))
    W = TTMatrix.from_dense(xp.asarray(A), max_rank=4)
    assert W.is_padded and W.padded_shape[0] > 997
    assert W.shape == (997, 997)
    assert W.max_rank <= 4


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_from_dense_eps_and_max_rank(xp, rng, dtype):
    A = _host_random(rng, (30, 42), dtype)  # auto modes
    for eps in (0.05, 0.3):
        W = TTMatrix.from_dense(xp.asarray(A), eps=eps)
        slack = 1e-4 if np.dtype(dtype) == np.float32 else 1e-10
        assert _rel_err(_full(W), A) <= eps + slack
    W = TTMatrix.from_dense(xp.asarray(A), max_rank=2)
    assert W.max_rank <= 2
    W = TTMatrix.from_dense(xp.asarray(A), d=3)
    assert W.d == 3 and W.shape == (30, 42)
    _close(W.full(), A, dtype)


def test_from_dense_known_low_rank_recovered(xp):
    R = tt.random_matrix((2, 3, 4), (3, 2, 2), 2, rng=np.random.default_rng(3), xp=xp)
    A = R.full()
    W = TTMatrix.from_dense(A, row_modes=(2, 3, 4), col_modes=(3, 2, 2), eps=1e-12)
    assert W.ranks == R.ranks
    _close(W.full(), A, np.float64)


def test_from_dense_errors(xp):
    with pytest.raises(tt.ShapeError, match="2-D"):
        TTMatrix.from_dense(xp.ones((2, 3, 4)))
    with pytest.raises(tt.ModeError, match="cover"):
        TTMatrix.from_dense(xp.ones((10, 4)), row_modes=(3, 3), col_modes=(2, 2))
    with pytest.raises(tt.ModeError, match="same length"):
        TTMatrix.from_dense(xp.ones((4, 4)), row_modes=(2, 2), col_modes=(4,))


# ---- dense products -------------------------------------------------------------------------------
def _matrices(xp, dtype, rng):
    """(name, W, dense W) for an exact and a padded TTMatrix (padding holding nonzeros)."""
    A = _host_random(rng, (12, 20), dtype)
    W1 = TTMatrix.from_dense(xp.asarray(A), row_modes=(3, 4), col_modes=(4, 5))
    W2 = _padded_random(xp, (2, 3, 2), (3, 2, 4), (10, 21), ranks=3, dtype=dtype, seed=5)
    W3 = TTMatrix.from_dense(xp.asarray(_host_random(rng, (13, 7), dtype)))  # auto, padded
    return [("exact", W1, A), ("padded", W2, _full(W2)), ("auto", W3, _full(W3))]


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_matvec_dense(xp, rng, dtype):
    for name, W, A in _matrices(xp, dtype, rng):
        M, N = W.shape
        x1 = _host_random(rng, (N,), dtype)
        x2 = _host_random(rng, (N, 4), dtype)
        x3 = _host_random(rng, (3, N, 5), dtype)
        y1 = W @ xp.asarray(x1)
        assert y1.shape == (M,), name
        _close(y1, A @ x1, dtype)
        y2 = W @ xp.asarray(x2)
        assert y2.shape == (M, 4)
        _close(y2, A @ x2, dtype)
        y3 = W @ xp.asarray(x3)
        assert y3.shape == (3, M, 5)
        _close(y3, A @ x3, dtype)
        # a single column, and non-contiguous operands (a transposed view, Fortran order)
        _close(W @ xp.asarray(x2[:, :1]), A @ x2[:, :1], dtype)
        xT = xp.asarray(np.ascontiguousarray(x2.T)).T
        _close(W @ xT, A @ x2, dtype)
        _close(W @ xp.asarray(np.asfortranarray(x2)), A @ x2, dtype)
        _close(W @ xp.asarray(x2)[:, ::2], A @ x2[:, ::2], dtype)
        # an empty batch
        assert (W @ xp.zeros((N, 0), dtype=dtype)).shape == (M, 0)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_rmatvec_dense(xp, rng, dtype):
    for name, W, A in _matrices(xp, dtype, rng):
        M, N = W.shape
        x1 = _host_random(rng, (M,), dtype)
        x2 = _host_random(rng, (6, M), dtype)
        x3 = _host_random(rng, (2, 3, M), dtype)
        y1 = xp.asarray(x1) @ W          # ndarray @ W reaches W.__rmatmul__
        assert y1.shape == (N,), name
        _close(y1, x1 @ A, dtype)
        y2 = xp.asarray(x2) @ W
        assert y2.shape == (6, N)
        _close(y2, x2 @ A, dtype)
        y3 = xp.asarray(x3) @ W
        assert y3.shape == (2, 3, N)
        _close(y3, x3 @ A, dtype)
        _close(xp.asarray(np.asfortranarray(x2)) @ W, x2 @ A, dtype)
        _close(xp.asarray(x2)[::2] @ W, x2[::2] @ A, dtype)
        _close(W.__rmatmul__(xp.asarray(x2)), x2 @ A, dtype)


def test_matmul_list_operand():
    # NumPy only: a list becomes a NumPy array (CuPy itself refuses lists in matmul)
    W = TTMatrix.from_dense(np.arange(6.0).reshape(2, 3))
    _close(W @ [1.0, 2.0, 3.0], np.arange(6.0).reshape(2, 3) @ [1.0, 2.0, 3.0], np.float64)


def test_matvec_shape_errors(xp):
    W = TTMatrix.from_dense(xp.ones((4, 6)), row_modes=(2, 2), col_modes=(2, 3))
    with pytest.raises(tt.ShapeError, match="6 columns"):
        W @ xp.ones(5)
    with pytest.raises(tt.ShapeError, match="6 columns"):
        W @ xp.ones((5, 2))
    with pytest.raises(tt.ShapeError, match="4 rows"):
        xp.ones((2, 5)) @ W
    with pytest.raises(tt.ShapeError, match="scalar"):
        W @ xp.asarray(1.0)
    with pytest.raises(TypeError):
        W @ "x"


# ---- TTMatrix @ TTMatrix and TTMatrix @ TTTensor -------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_matmul_tt_matrix(xp, rng, dtype):
    A = _host_random(rng, (12, 20), dtype)
    B = _host_random(rng, (20, 6), dtype)
    W = TTMatrix.from_dense(xp.asarray(A), row_modes=(3, 4), col_modes=(4, 5))
    V = TTMatrix.from_dense(xp.asarray(B), row_modes=(4, 5), col_modes=(2, 3))
    P = W @ V
    assert isinstance(P, TTMatrix)
    assert P.shape == (12, 6)
    assert P.row_modes == (3, 4) and P.col_modes == (2, 3)
    assert P.ranks == tuple(a * b for a, b in zip(W.ranks, V.ranks, strict=True))
    _close(P.full(), A @ B, dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_matmul_tt_matrix_padded_inner(xp, dtype):
    # inner dimension 21 covered by col modes (3, 2, 4) = 24; both sides hold padding garbage
    W = _padded_random(xp, (2, 3, 2), (3, 2, 4), (10, 21), ranks=3, dtype=dtype, seed=11)
    V = _padded_random(xp, (3, 2, 4), (2, 2, 2), (21, 7), ranks=2, dtype=dtype, seed=12)
    P = W @ V
    assert P.shape == (10, 7)
    ref = _full(W) @ _full(V)
    _close(P.full(), ref, dtype)
    # and the product behaves like the logical matrix in further operations
    x = _host_random(np.random.default_rng(0), (7,), dtype)
    _close(P @ xp.asarray(x), ref @ x, dtype)
    assert P.norm() == pytest.approx(np.linalg.norm(ref), rel=10 * _tol(dtype))


def test_matmul_tt_matrix_auto_padded(xp, rng):
    A = rng.standard_normal((13, 997))
    B = rng.standard_normal((997, 5))
    W = TTMatrix.from_dense(xp.asarray(A), d=4)
    V = TTMatrix.from_dense(xp.asarray(B), row_modes=W.col_modes, col_modes=(1, 1, 5, 1))
    assert W.is_padded and V.is_padded
    _close((W @ V).full(), A @ B, np.float64)


def test_matmul_tt_matrix_errors(xp):
    W = tt.random_matrix((2, 3), (4, 5), 2, rng=0, xp=xp)
    V = tt.random_matrix((5, 4), (2, 2), 2, rng=1, xp=xp)
    with pytest.raises(tt.ShapeError, match="V's rows"):
        W @ V


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_matmul_tt_tensor(xp, rng, dtype):
    A = _host_random(rng, (12, 20), dtype)
    W = TTMatrix.from_dense(xp.asarray(A), row_modes=(3, 4), col_modes=(4, 5))
    v = tt.random_tensor((4, 5), 3, rng=np.random.default_rng(7), dtype=dtype, xp=xp)
    y = W @ v
    assert isinstance(y, TTTensor)
    assert y.shape == (3, 4)
    _close(y.full().reshape(-1), A @ _full(v).reshape(-1), dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_matmul_tt_tensor_padded(xp, dtype):
    M, N = 10, 21
    W = _padded_random(xp, (2, 3, 2), (3, 2, 4), (M, N), ranks=3, dtype=dtype, seed=21)
    # v has nonzero entries beyond N: they must be ignored
    v = tt.random_tensor((3, 2, 4), 2, rng=np.random.default_rng(22), dtype=dtype, xp=xp)
    y = W @ v
    assert isinstance(y, TTTensor)
    assert y.shape == W.row_modes  # the padded row modes
    flat = to_numpy(y.full()).reshape(-1)
    ref = _full(W) @ _full(v).reshape(-1)[:N]
    _close(flat[:M], ref, dtype)
    scale = np.linalg.norm(ref)
    assert np.abs(flat[M:]).max() <= 10 * _tol(dtype) * scale
    with pytest.raises(tt.ShapeError, match="col_modes"):
        W @ tt.random_tensor((4, 2, 3), 2, rng=0, dtype=dtype, xp=xp)


# ---- adjoint, transposes --------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_adjoint_identity(xp, rng, dtype):
    for name, W, _A in _matrices(xp, dtype, rng):
        M, N = W.shape
        x = _host_random(rng, (N,), dtype)
        y = _host_random(rng, (M,), dtype)
        Wx = to_numpy(W @ xp.asarray(x))
        adj = W.H if np.dtype(dtype).kind == "c" else W.T
        WTy = to_numpy(adj @ xp.asarray(y))
        lhs = np.vdot(Wx, y)
        rhs = np.vdot(x, WTy)
        scale = np.linalg.norm(Wx) * np.linalg.norm(y) + np.linalg.norm(x) * np.linalg.norm(WTy)
        assert abs(lhs - rhs) <= 10 * _tol(dtype) * scale, name
        # the real bilinear form with the plain transpose holds for every dtype
        WTy_plain = to_numpy(W.T @ xp.asarray(y))
        assert abs(np.dot(Wx, y) - np.dot(x, WTy_plain)) <= 10 * _tol(dtype) * scale


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_transpose_and_hermitian(xp, rng, dtype):
    for _name, W, A in _matrices(xp, dtype, rng):
        assert W.T.shape == (W.shape[1], W.shape[0])
        assert W.T.row_modes == W.col_modes and W.T.col_modes == W.row_modes
        _close(W.T.full(), A.T, dtype)
        _close(W.H.full(), A.conj().T, dtype)
        _close(W.T.T.full(), A, dtype)
        _close(W.conj().full(), A.conj(), dtype)
        x = _host_random(rng, (W.shape[0], 2), dtype)
        _close(W.H @ xp.asarray(x), A.conj().T @ x, dtype)


# ---- norm, dot, arithmetic and round on padded matrices -----------------------------------------------
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_norm_dot_padded_logical(xp, rng, dtype):
    A = _host_random(rng, (10, 21), dtype)
    W = TTMatrix.from_dense(xp.asarray(A), row_modes=(2, 3, 2), col_modes=(3, 2, 4))
    R = _padded_random(xp, (2, 3, 2), (3, 2, 4), (10, 21), ranks=3, dtype=dtype, seed=31)
    FR = _full(R)
    rel = 10 * _tol(dtype)
    assert W.norm() == pytest.approx(np.linalg.norm(A), rel=rel)
    assert R.norm() == pytest.approx(np.linalg.norm(FR), rel=rel)
    # the padding of R is nonzero, so the padded norm differs: make sure the check has teeth
    assert np.linalg.norm(_padded_dense(R)) > 1.01 * np.linalg.norm(FR)
    S = W + R
    FS = A + FR
    _close(S.full(), FS, dtype)
    assert S.norm() == pytest.approx(np.linalg.norm(FS), rel=rel)
    assert tt.norm(S) == pytest.approx(np.linalg.norm(FS), rel=rel)
    assert S.log_norm() == pytest.approx(math.log(np.linalg.norm(FS)), abs=rel)
    scale = np.linalg.norm(FS) * np.linalg.norm(FR)
    assert abs(tt.dot(S, R) - np.vdot(FS, FR)) <= rel * scale
    assert abs(tt.dot(R, S) - np.vdot(FR, FS)) <= rel * scale
    sign, logabs = tt.log_dot(S, R)
    assert abs(sign * math.exp(logabs) - np.vdot(FS, FR)) <= rel * scale
    D = S - 2.0 * R
    _close(D.full(), FS - 2 * FR, dtype)
    assert D.norm() == pytest.approx(np.linalg.norm(FS - 2 * FR), rel=rel)
    H = S * R
    _close(H.full(), FS * FR, dtype)
    assert H.norm() == pytest.approx(np.linalg.norm(FS * FR), rel=rel)
    _close((-S).full(), -FS, dtype)
    _close((S / 3).full(), FS / 3, dtype)
    # rounding keeps the logical matrix
    Rd = S.round()
    _close(Rd.full(), FS, dtype)
    assert Rd.norm() == pytest.approx(np.linalg.norm(FS), rel=rel)
    assert Rd.shape == S.shape and Rd.row_modes == S.row_modes


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("eps", [0.1, 0.4])
def test_round_padded_eps_bound(xp, dtype, eps):
    R = _padded_random(xp, (2, 3, 2, 3), (3, 2, 3, 2), (33, 35), ranks=6, dtype=dtype, seed=41)
    FR = _full(R)
    B = R.round(eps)
    slack = 1e-4 if np.dtype(dtype) == np.float32 else 1e-10
    assert np.linalg.norm(_full(B) - FR) <= (eps + slack) * np.linalg.norm(FR)
    C = R.round(max_rank=2)
    assert C.max_rank <= 2
    assert C.shape == R.shape


def test_round_padded_is_idempotent(xp):
    R = _padded_random(xp, (2, 3, 2), (3, 2, 4), (10, 21), ranks=4, seed=42)
    B = R.round(1e-10)
    C = B.round(1e-10)
    assert C.ranks == B.ranks
    _close(C.full(), B.full(), np.float64)
    D = (R + R).round(1e-10)
    _close(D.full(), 2 * _full(R), np.float64)
    assert D.ranks == B.ranks


def test_orthogonalize_matrix(xp):
    W = _padded_random(xp, (2, 3, 2), (3, 2, 4), (10, 21), ranks=4, seed=43)
    for direction in ("left", "right"):
        _close(W.orthogonalize(direction).full(), W.full(), np.float64)


def test_add_structure_errors(xp):
    W = tt.random_matrix((2, 3), (3, 2), 2, rng=0, xp=xp)
    V = tt.random_matrix((3, 2), (2, 3), 2, rng=1, xp=xp)
    with pytest.raises(tt.ShapeError, match="equal shapes and modes"):
        W + V
    with pytest.raises(TypeError):
        W + tt.random_tensor((6, 6), 2, rng=0, xp=xp)


# ---- compression, eye, constructors -------------------------------------------------------------------
def test_compression_and_num_params(xp, rng):
    A = rng.standard_normal((1000, 784))
    W = TTMatrix.from_dense(xp.asarray(A), max_rank=4)
    assert W.num_params == sum(int(np.prod(c.shape)) for c in W.cores)
    assert W.compression == pytest.approx(1000 * 784 / W.num_params)
    assert W.compression > 100
    V = TTMatrix.from_dense(xp.asarray(rng.standard_normal((997, 997))), max_rank=3)
    assert V.compression == pytest.approx(997 * 997 / V.num_params)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_eye(xp, dtype):
    E = tt.eye(997, dtype=dtype, xp=xp)
    assert E.shape == (997, 997)
    assert E.ranks == (1,) * (E.d + 1)
    assert E.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(_full(E), np.eye(997))
    assert E.norm() == pytest.approx(math.sqrt(997), rel=10 * _tol(dtype))
    x = np.random.default_rng(0).standard_normal(997).astype(dtype)
    _close(E @ xp.asarray(x), x, dtype)
    J = tt.eye((2, 3, 4), dtype=dtype, xp=xp)
    assert J.shape == (24, 24)
    np.testing.assert_array_equal(_full(J), np.eye(24))
    assert tt.eye(1, xp=xp).shape == (1, 1)


def test_zeros_ones_matrix(xp):
    Z = tt.zeros(((2, 3), (4, 1)), xp=xp)
    U = tt.ones(((2, 3), (4, 1)), xp=xp)
    assert Z.shape == U.shape == (6, 4)
    np.testing.assert_array_equal(_full(Z), np.zeros((6, 4)))
    np.testing.assert_array_equal(_full(U), np.ones((6, 4)))


def test_random_matrix_unit_variance(xp):
    vals = [_full(tt.random_matrix((2, 3, 4), (4, 3, 2), 3, rng=s, xp=xp)).ravel()
            for s in range(30)]
    v = np.concatenate(vals)
    assert np.mean(v ** 2) == pytest.approx(1.0, abs=0.15)


def test_random_matrix_std_is_a_variance_target(xp):
    std = math.sqrt(2 / (24 + 24))                 # Glorot for a 24 x 24 weight
    vals = [_full(tt.random_matrix((2, 3, 4), (4, 3, 2), 3, rng=s, xp=xp, std=std)).ravel()
            for s in range(30)]
    v = np.concatenate(vals)
    assert np.mean(v ** 2) / std ** 2 == pytest.approx(1.0, abs=0.15)


def test_kron_matrix(xp):
    a = _padded_random(xp, (2, 3), (3, 2), (5, 6), ranks=2, seed=51)
    b = tt.random_matrix((2, 2), (3, 1), 2, rng=52, xp=xp)
    k = tt.kron(a, b)
    assert k.shape == (5 * 4, 6 * 3)
    _close(k.full(), np.kron(_full(a), _full(b)), np.float64)
    with pytest.raises(NotImplementedError, match="padded"):
        tt.kron(b, a)


def test_repr_matrix(xp):
    W = tt.random_matrix((2, 3), (4, 5), 2, rng=0, xp=xp)
    s = repr(W)
    assert "TTMatrix(shape=(6, 20)" in s and "row_modes=(2, 3)" in s and "padded" not in s


# ---- contraction planner -----------------------------------------------------------------------------
def test_matmul_cost_is_the_old_name_of_matmul_plan(xp):
    W = tt.random_matrix((4, 4, 4), (2, 7, 8), 3, rng=3, xp=xp, dtype=np.float32)
    for batch in (1, 100):
        new, old = W.matmul_plan(batch), W.matmul_cost(batch)
        assert isinstance(new, contraction.ContractionPlan)
        assert (new.order, new.flops, new.peak_bytes) == (old.order, old.flops, old.peak_bytes)
        assert new.peak_bytes == W.matmul_plan(batch, itemsize=4).peak_bytes
        flops4 = W.matmul_plan(batch, itemsize=4, objective="flops")
        flops8 = W.matmul_plan(batch, itemsize=8, objective="flops")
        assert flops8.peak_bytes == 2 * flops4.peak_bytes   # the same plan, larger items
        # the modelled time depends on the item size, so the 'time' plan may change with it
        assert W.matmul_plan(batch, itemsize=8).itemsize == 8


@pytest.mark.parametrize("seed", range(8))
def test_matmul_cost_plan_beats_fixed_sweeps_and_executes(xp, seed):
    rng = np.random.default_rng(seed)
    d = int(rng.integers(1, 6))
    row_modes = tuple(int(m) for m in rng.integers(1, 6, size=d))
    col_modes = tuple(int(m) for m in rng.integers(1, 6, size=d))
    R = tt.random_matrix(row_modes, col_modes, int(rng.integers(1, 7)), rng=rng, xp=xp)
    for batch in (1, 3, 17):
        plan = R.matmul_plan(batch, objective="flops")
        assert isinstance(plan, tt.ContractionPlan)
        assert plan.batch == batch
        assert plan.itemsize == 8
        assert plan.peak_bytes == 8 * plan.peak_elements
        assert plan.dense_flops == 2 * batch * math.prod(row_modes) * math.prod(col_modes)
        left = contraction.fixed_sweep_plan(row_modes, col_modes, R.ranks, batch, "left")
        right = contraction.fixed_sweep_plan(row_modes, col_modes, R.ranks, batch, "right")
        assert plan.flops <= left.flops
        assert plan.flops <= right.flops
        assert sorted(k for lo, hi in plan.order for k in range(lo, hi + 1)) == list(range(d))
        assert isinstance(plan.describe(), str)
        # the time objectives: never worse, by their own model, than the FLOP plan or a sweep
        timed = []
        for objective, batch_last, train in (("time", False, False), ("time", True, False),
                                              ("train", False, True),
                                              ("train_no_input_grad", False, True)):
            tplan = R.matmul_plan(batch, objective=objective, batch_last=batch_last)
            assert tplan.objective == objective
            dx = objective != "train_no_input_grad"
            cost = [contraction.modeled_seconds(p, batch_last, train, dx)
                    for p in (tplan, plan, left, right)]
            assert cost[0] <= min(cost[1:]) * (1 + 1e-12), (objective, cost)
            timed.append(tplan)
        X = rng.standard_normal((batch, math.prod(col_modes)))
        ref = X @ _full(R).T
        for p in (plan, left, right, *timed):
            Y = contraction.execute(p, R.cores, xp.asarray(X))
            assert Y.shape == ref.shape
            _close(Y, ref, np.float64)
            Yt = contraction.execute(p, R.cores, xp.asarray(X.T.copy()), batch_last=True)
            assert Yt.shape == ref.T.shape
            _close(Yt, ref.T, np.float64)


def test_matmul_cost_padded_and_errors(xp, rng):
    W = TTMatrix.from_dense(xp.asarray(rng.standard_normal((997, 997))), max_rank=4)
    plan = W.matmul_plan(batch=32, objective="flops")
    assert plan.flops < plan.dense_flops
    left = contraction.fixed_sweep_plan(W.row_modes, W.col_modes, W.ranks, 32, "left")
    right = contraction.fixed_sweep_plan(W.row_modes, W.col_modes, W.ranks, 32, "right")
    assert plan.flops <= min(left.flops, right.flops)
    assert W.astype(np.float32).matmul_plan(4).itemsize == 4
    with pytest.raises(tt.ShapeError, match="batch"):
        W.matmul_plan(0)


# ---- SciPy LinearOperator ---------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.complex128], ids=["float64", "complex128"])
def test_as_linear_operator(rng, dtype):
    for _name, W, A in _matrices(np, dtype, rng):
        op = tt.as_linear_operator(W)
        M, N = W.shape
        assert op.shape == (M, N)
        assert op.dtype == np.dtype(dtype)
        x = _host_random(rng, (N,), dtype)
        y = _host_random(rng, (M,), dtype)
        X = _host_random(rng, (N, 3), dtype)
        Y = _host_random(rng, (M, 2), dtype)
        _close(op.matvec(x), A @ x, dtype)
        _close(op.rmatvec(y), A.conj().T @ y, dtype)
        _close(op @ X, A @ X, dtype)
        _close(op.H @ Y, A.conj().T @ Y, dtype)
        _close(op.matvec(x.reshape(-1, 1)).reshape(-1), A @ x, dtype)
    with pytest.raises(TypeError, match="TTMatrix"):
        tt.as_linear_operator(np.eye(3))


@pytest.mark.parametrize("n", [64, 97])
def test_as_linear_operator_cg_solve(rng, n):
    R = rng.standard_normal((n, n)) / math.sqrt(n)
    A = np.eye(n) + 0.1 * R.T @ R
    W = TTMatrix.from_dense(A, eps=1e-13)
    assert W.shape == (n, n)
    np.testing.assert_allclose(W.full(), A, atol=1e-11)
    b = rng.standard_normal(n)
    x, info = cg(tt.as_linear_operator(W), b, rtol=1e-12, maxiter=500)
    assert info == 0
    np.testing.assert_allclose(x, np.linalg.solve(A, b), rtol=1e-8, atol=1e-9)


# ---- float32 and complex128 end to end --------------------------------------------------------------
def test_float32_end_to_end(xp, rng):
    A = rng.standard_normal((40, 36)).astype(np.float32)
    W = TTMatrix.from_dense(xp.asarray(A))
    assert W.dtype == np.float32
    assert all(c.dtype == np.float32 for c in W.cores)
    x = rng.standard_normal((36, 8)).astype(np.float32)
    y = W @ xp.asarray(x)
    assert y.dtype == np.float32
    _close(y, A.astype(np.float64) @ x, np.float32, scale=20)
    assert W.norm() == pytest.approx(np.linalg.norm(A.astype(np.float64)), rel=1e-4)
    W64 = W.astype(np.float64)
    assert W64.dtype == np.float64
    _close(W64.full(), A, np.float32)


def test_complex128_end_to_end(xp, rng):
    A = _host_random(rng, (18, 22), np.complex128)
    W = TTMatrix.from_dense(xp.asarray(A))
    assert W.dtype == np.complex128
    _close(W.full(), A, np.complex128)
    x = _host_random(rng, (22, 3), np.complex128)
    _close(W @ xp.asarray(x), A @ x, np.complex128)
    _close(xp.asarray(x.T) @ W.T, (A @ x).T, np.complex128)
    assert W.norm() == pytest.approx(np.linalg.norm(A), rel=1e-10)
    assert tt.dot(W, W) == pytest.approx(np.vdot(A, A), rel=1e-10)
    assert tt.dot(W, 1j * W) == pytest.approx(1j * np.vdot(A, A), rel=1e-10)

"""Approximate products by AMEn-mv (tensortrain.solvers.products): agreement with the exact
product and with (A @ x).round(eps) within the eps bound, the exact path, extremes, errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from _helpers import to_numpy

import tensortrain as tt
from tensortrain import decompositions, qtt
from tensortrain.errors import ConvergenceWarning, ShapeError, TTError
from tensortrain.solvers.products import (
    EXACT_MAX_WORK,
    ProductInfo,
    _exact_work,
    hadamard,
    matmul,
    matvec,
)


def diff_norm(a, b):
    """||a - b||_F by one orthogonalizing sweep of the difference (exact scaling)."""
    d = a - b
    _, e, last = decompositions.orthogonal_sweep(list(d._cores3()), "left")
    return math.ldexp(last, e)


def rel(a, b):
    return diff_norm(a, b) / b.norm()


def smooth_pair(L=12, eps=1e-10):
    t = np.linspace(0.0, 1.0, 2 ** L)
    a = qtt.quantize(tt.TTTensor.from_dense(1.0 / (1.0 + 400.0 * (t - 0.3) ** 2)), eps=eps)
    b = qtt.quantize(tt.TTTensor.from_dense(np.exp(-40 * (t - 0.6) ** 2) + np.sin(30 * t)),
                     eps=eps)
    return a, b


@pytest.mark.parametrize("eps", [1e-3, 1e-6, 1e-10])
def test_matvec_structured_agrees_with_rounded_exact(eps):
    a, b = smooth_pair()
    A = (qtt.laplacian_1d(12) + qtt.diag(a)).round()
    exact = A @ b
    y, info = matvec(A, b, eps, method="amen", return_info=True)
    assert isinstance(info, ProductInfo) and info.method == "amen" and info.converged
    assert info.rank_product == max(p * q for p, q in zip(A.ranks, b.ranks, strict=True))
    z = exact.round(eps)
    # the eps bound against the exact product, and agreement with the rounded product
    assert rel(y, exact) <= eps
    assert rel(y, z) <= 2 * eps
    assert y.max_rank <= z.max_rank + 1
    assert info.ranks == y.ranks


@pytest.mark.parametrize("d,n,R,r", [(6, 3, 4, 5), (8, 2, 6, 6)])
def test_matvec_random_dense_oracle(xp, d, n, R, r):
    A = tt.random_matrix((n,) * d, (n,) * d, R, rng=1, xp=xp)
    x = tt.random_tensor((n,) * d, r, rng=2, xp=xp)
    dense = to_numpy(A.full()) @ to_numpy(x.full()).reshape(-1)
    for eps in (1e-2, 1e-8):
        y = matvec(A, x, eps, method="amen", rng=0)
        err = np.linalg.norm(to_numpy(y.full()).reshape(-1) - dense) / np.linalg.norm(dense)
        assert err <= eps
        assert y.backend == xp.__name__


def test_matvec_rectangular_modes_and_x0():
    A = tt.random_matrix((2, 3, 4, 2), (3, 2, 2, 3), 3, rng=5)
    x = tt.random_tensor((3, 2, 2, 3), 3, rng=6)
    dense = A.full() @ x.full().reshape(-1)
    y = matvec(A, x, 1e-10, method="amen")
    assert y.shape == (2, 3, 4, 2)
    np.testing.assert_allclose(y.full().reshape(-1), dense, rtol=0,
                               atol=1e-9 * np.linalg.norm(dense))
    y0 = tt.random_tensor((2, 3, 4, 2), 2, rng=7)
    y2 = matvec(A, x, 1e-10, method="amen", x0=y0)
    np.testing.assert_allclose(y2.full().reshape(-1), dense, rtol=0,
                               atol=1e-9 * np.linalg.norm(dense))


def test_matvec_padded_operator_reads_logical_block():
    rng = np.random.default_rng(3)
    M = rng.standard_normal((5, 7))
    W = tt.TTMatrix.from_dense(M, row_modes=(2, 3), col_modes=(2, 4))
    assert W.is_padded
    x = tt.random_tensor((2, 4), 2, rng=1)
    ref = W @ x
    y = matvec(W, x, 1e-12, method="amen")
    assert rel(y, ref) <= 1e-12


def test_complex_and_float32():
    rng = 11
    A = tt.random_matrix((2,) * 6, (2,) * 6, 3, rng=rng, dtype=np.complex128)
    x = tt.random_tensor((2,) * 6, 3, rng=rng + 1, dtype=np.complex128)
    y = matvec(A, x, 1e-10, method="amen")
    assert y.dtype == np.complex128
    dense = A.full() @ x.full().reshape(-1)
    np.testing.assert_allclose(y.full().reshape(-1), dense, atol=1e-9 * np.linalg.norm(dense))
    h = hadamard(x, x.conj(), 1e-10, method="amen")
    scale = np.abs(x.full()).max() ** 2
    np.testing.assert_allclose(h.full(), np.abs(x.full()) ** 2, atol=1e-9 * scale)
    C = matmul(A, A.H, 1e-10, method="amen")
    np.testing.assert_allclose(C.full(), A.full() @ A.full().conj().T,
                               atol=1e-9 * np.linalg.norm(A.full()) ** 2)
    A32 = (qtt.laplacian_1d(8, dtype=np.float32) + qtt.diag(qtt.sin(8, 3.0, dtype=np.float32)))
    x32 = qtt.cos(8, 2.0, dtype=np.float32)
    y32 = matvec(A32, x32, 1e-4, method="amen")
    assert y32.dtype == np.float32
    ref = A32.full().astype(np.float64) @ x32.full().reshape(-1).astype(np.float64)
    assert np.linalg.norm(y32.full().reshape(-1) - ref) <= 1e-3 * np.linalg.norm(ref)


def test_exact_path_and_auto_rule():
    A = qtt.laplacian_1d(10)
    x = qtt.sin(10, 2.0)
    y, info = matvec(A, x, 1e-12, return_info=True)
    assert info.method == "exact" and info.sweeps == 0 and info.changes == ()
    assert _exact_work(A.ranks, x.ranks, A.row_modes, A.col_modes) <= EXACT_MAX_WORK
    assert rel(y, A @ x) <= 1e-12
    a, b = smooth_pair(eps=1e-12)
    big = (qtt.laplacian_1d(12) + qtt.diag(a)).round()
    # the documented rule: 4 (R r)^3 for QTT, above the limit from R r of about 101
    work = _exact_work(big.ranks, b.ranks, big.row_modes, big.col_modes)
    assert work == 4 * (big.max_rank * b.max_rank) ** 3 > EXACT_MAX_WORK
    _, info = matvec(big, b, 1e-10, return_info=True)
    assert info.method == "amen"
    _, info = matvec(big, b, 1e-10, method="exact", return_info=True)
    assert info.method == "exact"
    # matmul counts the column modes of B in the work: QTT matrices switch at R r of about 64
    C = (qtt.laplacian_1d(8) + qtt.diag(qtt.sin(8, 4.0)) + qtt.diag(qtt.cos(8, 3.0))).round()
    _, info = matmul(C, C, 1e-10, return_info=True)
    assert info.method == ("amen" if 16 * (C.max_rank ** 2) ** 3 > EXACT_MAX_WORK else "exact")
    # hadamard of small ranks: exact
    _, info = hadamard(x, x, 1e-10, return_info=True)
    assert info.method == "exact"


def test_max_rank_cap():
    a, b = smooth_pair()
    A = (qtt.laplacian_1d(12) + qtt.diag(a)).round()
    y = matvec(A, b, 1e-12, max_rank=4, method="amen")
    assert y.max_rank <= 4
    # a cap that binds: the error is that of a rank-4 approximation, not small
    assert rel(y, A @ b) > 1e-6


def test_matmul_dense_and_structured():
    A = qtt.laplacian_1d(8) + qtt.diag(qtt.sin(8, 4.0))
    A = A.round()
    C = matmul(A, A, 1e-12, method="amen")
    np.testing.assert_allclose(C.full(), A.full() @ A.full(), atol=1e-10)
    B = tt.random_matrix((2, 3, 2), (3, 2, 2), 2, rng=3)
    D = tt.random_matrix((3, 2, 2), (2, 2, 2), 3, rng=4)
    P = matmul(B, D, 1e-10, method="amen")
    assert P.shape == (12, 8) and P.row_modes == (2, 3, 2) and P.col_modes == (2, 2, 2)
    ref = B.full() @ D.full()
    np.testing.assert_allclose(P.full(), ref, atol=1e-9 * np.linalg.norm(ref))
    E = matmul(B, D, 1e-10, method="exact")
    np.testing.assert_allclose(E.full(), ref, atol=1e-9 * np.linalg.norm(ref))


def test_hadamard_tensor_and_matrix():
    a, b = smooth_pair()
    y = hadamard(a, b, 1e-10, method="amen")
    assert rel(y, a * b) <= 1e-10
    assert y.max_rank <= (a * b).round(1e-10).max_rank + 1
    M1 = tt.random_matrix((2, 3), (3, 2), 2, rng=0)
    M2 = tt.random_matrix((2, 3), (3, 2), 3, rng=1)
    H = hadamard(M1, M2, 1e-12, method="amen")
    assert isinstance(H, tt.TTMatrix)
    np.testing.assert_allclose(H.full(), M1.full() * M2.full(), atol=1e-11)


def test_long_train_and_magnitudes_no_overflow():
    # d = 1000: A = 2 I (rank 1) and x with cores of 2**-1 or huge values: ||A x|| = 2**1000 ||x||
    d = 1000
    A = 2.0 * qtt.identity(d)
    A = tt.TTMatrix([c * 2.0 if k else c for k, c in enumerate(A.cores)])   # 2**1000 I
    x = qtt.exp(d, 0.5) + qtt.sin(d, 1.0)
    y, info = matvec(A, x, 1e-8, method="amen", return_info=True)
    assert info.converged
    assert all(np.isfinite(c).all() for c in y.cores)
    assert y.log_norm() == pytest.approx(x.log_norm() + 1000 * math.log(2), rel=1e-10)
    bits = (1, 0) * 500
    ratio = y[bits] / x[bits] if abs(x[bits]) > 0 else None
    assert ratio is None or math.log2(abs(ratio)) == pytest.approx(1000, abs=1e-6)
    # tiny magnitudes: the same with a factor 2**-1000
    B = tt.TTMatrix([c * 0.5 for c in qtt.identity(d).cores])
    z = matvec(B, x, 1e-8, method="amen")
    assert z.log_norm() == pytest.approx(x.log_norm() - 1000 * math.log(2), rel=1e-10)


def test_laplacian_qtt_L40():
    L = 40
    A = qtt.laplacian_1d(L) + qtt.diag(qtt.cos(L, 1.0))
    x = qtt.sin(L, 2.0) + qtt.exp(L, -1.0)
    ref = A @ x
    y = matvec(A, x, 1e-10, method="amen")
    assert rel(y, ref) <= 1e-10


def test_inputs_mutated_afterwards():
    rng = np.random.default_rng(0)
    cores = [rng.standard_normal((1, 2, 2, 2)), rng.standard_normal((2, 2, 2, 2)),
             rng.standard_normal((2, 2, 2, 1))]
    A = tt.TTMatrix(cores)
    x = tt.random_tensor((2, 2, 2), 2, rng=1)
    dense = A.full() @ x.full().reshape(-1)
    a_before = [c.copy() for c in A.cores]
    x_before = [c.copy() for c in x.cores]
    y = matvec(A, x, 1e-12, method="amen")
    for c, b in zip(A.cores + x.cores, a_before + x_before, strict=True):
        np.testing.assert_array_equal(c, b)          # the inputs are not written into
    before = y.full().copy()
    for c in cores:
        c[...] = np.nan
    np.testing.assert_array_equal(y.full(), before)
    np.testing.assert_allclose(before.reshape(-1), dense, atol=1e-10 * np.linalg.norm(dense))


def test_reproducible_with_seed():
    a, b = smooth_pair()
    A = (qtt.laplacian_1d(12) + qtt.diag(a)).round()
    y1 = matvec(A, b, 1e-8, method="amen", rng=5)
    y2 = matvec(A, b, 1e-8, method="amen", rng=5)
    assert y1.ranks == y2.ranks
    for c1, c2 in zip(y1.cores, y2.cores, strict=True):
        np.testing.assert_array_equal(c1, c2)


def test_cap_warns():
    A = tt.random_matrix((2,) * 10, (2,) * 10, 4, rng=0)
    x = tt.random_tensor((2,) * 10, 8, rng=1)
    with pytest.warns(ConvergenceWarning, match="matvec stopped at its cap of 1 half sweeps"):
        matvec(A, x, 1e-12, nswp=1, method="amen")


def test_kickrank_zero_keeps_initial_ranks():
    a, b = smooth_pair()
    A = (qtt.laplacian_1d(12) + qtt.diag(a)).round()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        y = matvec(A, b, 1e-12, kickrank=0, nswp=3, method="amen")
    assert y.max_rank <= b.max_rank


def test_errors():
    A = qtt.laplacian_1d(4)
    x = qtt.sin(4, 1.0)
    with pytest.raises(TypeError, match="matvec: A must be a TTMatrix, got TTTensor"):
        matvec(x, x)
    with pytest.raises(TypeError, match="matvec: x must be a TTTensor, got ndarray"):
        matvec(A, np.ones(16))
    with pytest.raises(ShapeError, match=r"x must have shape A.col_modes \(2, 2, 2, 2\)"):
        matvec(A, qtt.sin(5, 1.0))
    bad = tt.TTTensor([c.copy() for c in x.cores])
    bad.cores[2][0, 0, 0] = np.nan
    with pytest.raises(TTError, match=r"x holds NaN or Inf \(in cores\[2\]\)"):
        matvec(A, bad)
    Abad = tt.TTMatrix([c.copy() for c in A.cores])
    Abad.cores[1][0, 0, 0, 0] = np.inf
    with pytest.raises(TTError, match=r"A holds NaN or Inf \(in cores\[1\]\)"):
        matvec(Abad, x)
    with pytest.raises(TTError, match="method must be one of"):
        matvec(A, x, method="fast")
    with pytest.raises(TTError, match="eps must be a number >= 0"):
        matvec(A, x, eps=-1)
    with pytest.raises(TTError, match="nswp must be >= 1"):
        matvec(A, x, nswp=0)
    with pytest.raises(TypeError, match="kickrank must be an integer"):
        matvec(A, x, kickrank=1.5)
    with pytest.raises(ShapeError, match=r"x0 must have shape A\.row_modes"):
        matvec(A, x, x0=qtt.sin(3, 1.0))
    with pytest.raises(TypeError, match="x0 must be a TTTensor"):
        matvec(A, x, x0=A)
    with pytest.raises(TypeError, match="rng must be None"):
        matvec(A + A, x + x, method="amen", rng="seed")
    with pytest.raises(TypeError, match="matmul: A and B must be TTMatrix objects"):
        matmul(A, x)
    with pytest.raises(ShapeError, match="B's rows must match A's columns"):
        matmul(A, qtt.identity(3))
    with pytest.raises(TTError, match=r"B holds NaN or Inf"):
        matmul(A, Abad)
    with pytest.raises(TypeError, match="two TTTensors or two TTMatrix objects"):
        hadamard(A, x)
    with pytest.raises(ShapeError, match="same shape"):
        hadamard(x, qtt.sin(5, 1.0))
    with pytest.raises(ShapeError, match="same modes and shape"):
        hadamard(A, tt.random_matrix((4, 4), (4, 4), 1, rng=0))
    with pytest.raises(TTError, match=r"a holds NaN or Inf"):
        hadamard(bad, x)


def test_zero_operands_eps_zero_and_small_d():
    A = qtt.laplacian_1d(8)
    x = qtt.sin(8, 1.0) + qtt.exp(8, 2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # converges: no ConvergenceWarning
        y, info = matvec(A, tt.zeros((2,) * 8), 1e-8, method="amen", return_info=True)
        assert y.norm() == 0.0 and info.converged
        y = matvec(0.0 * A, x, 1e-8, method="amen")
        assert y.norm() == 0.0
        y = matvec(A, x, 0.0, method="amen")      # eps = 0: exact up to round-off
    assert rel(y, A @ x) <= 1e-13
    B = tt.random_matrix((3, 4), (3, 4), 2, rng=0)
    v = tt.random_tensor((3, 4), 2, rng=1)
    np.testing.assert_allclose(matvec(B, v, 1e-12, method="amen").full().reshape(-1),
                               B.full() @ v.full().reshape(-1), atol=1e-13)
    B1 = tt.random_matrix((5,), (5,), 1, rng=0)
    v1 = tt.random_tensor((5,), 1, rng=1)
    y1, info = matvec(B1, v1, 1e-12, method="amen", return_info=True)
    assert info.method == "exact"                 # one core: the product is its projection
    np.testing.assert_allclose(y1.full(), B1.full() @ v1.full(), atol=1e-14)

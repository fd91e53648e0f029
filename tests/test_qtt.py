"""tensortrain.qtt: every operator against its dense NumPy/SciPy matrix for small L, exact ranks,
and entries / norms / matvecs at L = 40 and beyond."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
from _helpers import to_numpy

import tensortrain as tt
from tensortrain import qtt
from tensortrain.errors import ModeError, TTError


def dense_laplacian(N, bc=("dirichlet", "dirichlet")):
    """tridiag(-1, 2, -1) with Neumann corners or periodic wrap, from SciPy."""
    A = sp.diags([-np.ones(N - 1), 2 * np.ones(N), -np.ones(N - 1)], [-1, 0, 1]).toarray()
    if bc[0] == "periodic":
        A[0, -1] -= 1
        A[-1, 0] -= 1
    if bc[0] == "neumann":
        A[0, 0] -= 1
    if bc[1] == "neumann":
        A[-1, -1] -= 1
    return A


def full(W):
    return to_numpy(W.full())


def vec(x):
    return to_numpy(x.full()).reshape(-1)


BCS = ["dirichlet", "neumann", "periodic", ("dirichlet", "neumann"), ("neumann", "dirichlet")]


@pytest.mark.parametrize("bc", BCS)
@pytest.mark.parametrize("L", [1, 2, 3, 5])
def test_laplacian_1d_dense(xp, L, bc):
    A = qtt.laplacian_1d(L, bc, xp=xp)
    pair = (bc, bc) if isinstance(bc, str) else bc
    np.testing.assert_array_equal(full(A), dense_laplacian(2 ** L, pair))
    assert A.backend == xp.__name__


def test_laplacian_ranks_and_exact_rank():
    # the stated ranks, and they are the true ranks for Dirichlet (rounding finds nothing)
    assert qtt.laplacian_1d(6).ranks == (1, 3, 3, 3, 3, 3, 1)
    assert qtt.laplacian_1d(6).round().ranks == (1, 3, 3, 3, 3, 3, 1)
    assert max(qtt.laplacian_1d(6, "periodic").ranks) == 3
    assert max(qtt.laplacian_1d(6, "neumann").ranks) == 5
    assert max(qtt.laplacian_1d(6, ("dirichlet", "neumann")).ranks) == 4
    A = qtt.laplacian([4, 4, 4])
    assert A.ranks == (1, 3, 3, 3, 2, 4, 4, 4, 2, 4, 4, 4, 1)


@pytest.mark.parametrize("dims", [[2, 3], [3, 1, 2], [1, 1, 1]])
def test_laplacian_dd_kron_sum(dims):
    A = qtt.laplacian(dims)
    blocks = [dense_laplacian(2 ** L) for L in dims]
    ref = 0
    for k in range(len(dims)):
        M = np.eye(1)
        for j, L in enumerate(dims):
            M = np.kron(M, blocks[j] if j == k else np.eye(2 ** L))
        ref = ref + M
    np.testing.assert_array_equal(full(A), ref)
    # the general kron_sum of the 1-D operators agrees
    K = qtt.kron_sum([qtt.laplacian_1d(L) for L in dims])
    np.testing.assert_array_equal(full(K), ref)


def test_laplacian_mixed_bc_and_h_per_dimension():
    A = qtt.laplacian([2, 3], bc=["periodic", ("neumann", "dirichlet")], h=[0.5, 0.25])
    A1 = dense_laplacian(4, ("periodic", "periodic")) / 0.25
    A2 = dense_laplacian(8, ("neumann", "dirichlet")) / 0.0625
    ref = np.kron(A1, np.eye(8)) + np.kron(np.eye(4), A2)
    np.testing.assert_allclose(full(A), ref, rtol=1e-15, atol=0)


@pytest.mark.parametrize("bc", ["dirichlet", "neumann", "periodic"])
def test_h_unit_scaling(bc):
    L = 4
    h = qtt.grid_step(L, 0.0, 1.0, bc)
    np.testing.assert_allclose(full(qtt.laplacian_1d(L, bc, h="unit")),
                               dense_laplacian(16, (bc, bc)) / h ** 2, rtol=1e-14)
    np.testing.assert_allclose(full(qtt.laplacian_1d(L, bc, h=h)),
                               dense_laplacian(16, (bc, bc)) / h ** 2, rtol=1e-14)


def test_dirichlet_eigenvalue_known_form():
    # lowest eigenvalue of the scaled Dirichlet Laplacian on [0, 1]: (4/h^2) sin^2(pi h / 2)
    L = 7
    h = qtt.grid_step(L)
    lam = np.linalg.eigvalsh(full(qtt.laplacian_1d(L, h="unit")))[0]
    assert lam == pytest.approx(4 / h ** 2 * math.sin(math.pi * h / 2) ** 2, rel=1e-12)


def test_laplacian_L40_entries_norm_matvec():
    L = 40
    A = qtt.laplacian_1d(L)
    N = 2 ** L
    assert A.ranks == (1,) + (3,) * (L - 1) + (1,)
    bits = lambda i: tuple(int(c) for c in format(i, f"0{L}b"))  # noqa: E731

    def entry(i, j):
        pairs = zip(bits(i), bits(j), strict=True)
        c = [A.cores[k][:, bi, bj, :] for k, (bi, bj) in enumerate(pairs)]
        m = c[0]
        for ck in c[1:]:
            m = m @ ck
        return float(m[0, 0])

    for i, j, v in [(0, 0, 2), (0, 1, -1), (1, 0, -1), (N - 1, N - 1, 2), (N - 2, N - 1, -1),
                    (2 ** 39, 2 ** 39 - 1, -1), (2 ** 39 - 1, 2 ** 39, -1), (5, 7, 0),
                    (0, N - 1, 0), (12345678901, 12345678901, 2)]:
        assert entry(i, j) == v
    # ||A||_F^2 = 4 N + 2 (N - 1)
    assert A.norm() == pytest.approx(math.sqrt(6 * N - 2), rel=1e-12)
    # periodic: A @ ones = 0 exactly; Dirichlet: A @ ones = e_0 + e_{N-1}
    ones = tt.ones((2,) * L)
    assert (qtt.laplacian_1d(L, "periodic") @ ones).norm() == pytest.approx(0, abs=1e-6)
    y = A @ ones
    assert y[(0,) * L] == pytest.approx(1) and y[(1,) * L] == pytest.approx(1)
    assert y[(0,) * 20 + (1,) * 20] == pytest.approx(0, abs=1e-12)
    # on the grid x: -x'' = 0 inside; boundary values from the Dirichlet ghosts
    x = qtt.grid(L, 0.0, float(N - 1))
    y = (A @ x).round(1e-12)
    assert max(y.ranks) <= 3
    assert y[(0,) * L] == pytest.approx(-1, rel=1e-9)
    assert y[(1,) * L] == pytest.approx(N, rel=1e-9)
    assert y[(0,) + (1,) * (L - 1)] == pytest.approx(0, abs=1e-3)


def test_laplacian_thousands_of_bits_no_overflow():
    A = qtt.laplacian_1d(2000, h="unit")
    # ||A||_F ~ 2**4000 sqrt(6 N): finite in log form, finite cores
    assert A.log_norm() == pytest.approx(4000 * math.log(2) + 0.5 * math.log(6)
                                         + 1000 * math.log(2), rel=1e-12)
    assert all(np.isfinite(c).all() for c in A.cores)
    B = qtt.laplacian([1000, 1000], h="unit")
    assert math.isfinite(B.log_norm())


@pytest.mark.parametrize("periodic", [False, True])
@pytest.mark.parametrize("offset", [1, -1, 3, -6, 15])
def test_shift_dense(xp, offset, periodic):
    S = qtt.shift(4, offset, periodic=periodic, xp=xp)
    ref = np.roll(np.eye(16), offset, axis=0) if periodic else np.eye(16, k=-offset)
    np.testing.assert_array_equal(full(S), ref)
    assert S.max_rank <= 2
    x = np.arange(16.0)
    y = to_numpy(S @ xp.asarray(x))
    np.testing.assert_array_equal(y, ref @ x)


def test_shift_large_L():
    L = 40
    S = qtt.shift(L, 1)
    x = qtt.grid(L, 0.0, float(2 ** L - 1))          # x_i = i
    y = S @ x                                          # y_i = i - 1, y_0 = 0
    assert y[(0,) * L] == 0
    assert y[(1,) * L] == pytest.approx(2 ** L - 2, rel=1e-14)
    assert y[(0,) * 39 + (1,)] == pytest.approx(0, abs=1e-3)
    Sc = qtt.shift(L, 2 ** 39 + 3, periodic=True)
    assert Sc.max_rank <= 2
    z = Sc @ x
    assert z[(0,) * L] == pytest.approx(2 ** L - 2 ** 39 - 3, rel=1e-14)


@pytest.mark.parametrize("kind", ["forward", "backward", "central"])
@pytest.mark.parametrize("bc", ["dirichlet", "periodic"])
def test_gradient_dense(kind, bc):
    N = 16
    Pf = np.roll(np.eye(N), -1, axis=0) if bc == "periodic" else np.eye(N, k=1)
    Pb = np.roll(np.eye(N), 1, axis=0) if bc == "periodic" else np.eye(N, k=-1)
    ref = {"forward": Pf - np.eye(N), "backward": np.eye(N) - Pb, "central": (Pf - Pb) / 2}[kind]
    G = qtt.gradient(4, kind=kind, bc=bc, h=0.25)
    np.testing.assert_allclose(full(G), ref / 0.25, rtol=1e-15)
    assert G.max_rank <= 3


def test_toeplitz_and_complex():
    T = qtt.toeplitz(5, {-2: 1.0, 0: 1j, 3: -0.5})
    assert T.dtype == np.complex128
    ref = np.eye(32, k=-2) + 1j * np.eye(32) - 0.5 * np.eye(32, k=3)
    np.testing.assert_array_equal(full(T), ref)
    Tc = qtt.toeplitz(3, {1: 2.0, -1: 1.0}, periodic=True, dtype=np.complex64)
    assert Tc.dtype == np.complex64
    ref = 2 * np.roll(np.eye(8), -1, axis=0) + np.roll(np.eye(8), 1, axis=0)
    np.testing.assert_array_equal(full(Tc), ref)


def test_identity_and_diag(xp):
    np.testing.assert_array_equal(full(qtt.identity(5, xp=xp)), np.eye(32))
    x = qtt.sin(5, 2.0, xp=xp)
    D = qtt.diag(x)
    np.testing.assert_allclose(full(D), np.diag(vec(x)), atol=1e-15)
    assert D.ranks == x.ranks
    y = qtt.cos(5, 1.0, xp=xp)
    np.testing.assert_allclose(vec(D @ y), vec(x) * vec(y), atol=1e-14)


@pytest.mark.parametrize("endpoint", [True, False])
def test_vectors_dense(xp, endpoint):
    L, a, b = 6, -1.5, 2.0
    t = np.linspace(a, b, 2 ** L, endpoint=endpoint)
    x = qtt.grid(L, a, b, endpoint=endpoint, xp=xp)
    assert x.ranks == (1,) + (2,) * (L - 1) + (1,)
    np.testing.assert_allclose(vec(x), t, rtol=1e-14, atol=1e-14)
    e = qtt.exp(L, -0.7, a, b, endpoint=endpoint, xp=xp)
    assert e.max_rank == 1
    np.testing.assert_allclose(vec(e), np.exp(-0.7 * t), rtol=1e-13)
    ec = qtt.exp(L, 2j, a, b, endpoint=endpoint, xp=xp)
    assert ec.dtype == np.complex128
    np.testing.assert_allclose(vec(ec), np.exp(2j * t), rtol=1e-13)
    s = qtt.sin(L, 3.0, a, b, phase=0.4, endpoint=endpoint, xp=xp)
    c = qtt.cos(L, 3.0, a, b, phase=0.4, endpoint=endpoint, xp=xp)
    assert s.max_rank == 2 and c.max_rank == 2
    np.testing.assert_allclose(vec(s), np.sin(3 * t + 0.4), atol=1e-13)
    np.testing.assert_allclose(vec(c), np.cos(3 * t + 0.4), atol=1e-13)


def test_float32_dtype():
    A = qtt.laplacian_1d(5, dtype=np.float32)
    assert A.dtype == np.float32
    x = qtt.sin(5, 1.0, dtype=np.float32)
    assert x.dtype == np.float32
    np.testing.assert_allclose(vec(x), np.sin(np.linspace(0, 1, 32)), atol=1e-6)


def test_vectors_large_L():
    L = 40
    N = 2 ** L
    x = qtt.grid(L)
    i = 987654321012
    bits = tuple(int(c) for c in format(i, f"0{L}b"))
    assert x[bits] == pytest.approx(i / (N - 1), rel=1e-12)
    # ||x||^2 = sum (i/(N-1))^2 = N (2N - 1) / (6 (N - 1))
    assert x.norm() == pytest.approx(math.sqrt(N * (2 * N - 1) / (6 * (N - 1))), rel=1e-10)
    s = qtt.sin(L, 5.0)
    assert s[bits] == pytest.approx(math.sin(5.0 * i / (N - 1)), rel=1e-9)
    e = qtt.exp(L, 3.0)
    assert e[(1,) * L] == pytest.approx(math.exp(3.0), rel=1e-12)
    # sum of exp(3 t) over the grid ~ N (e^3 - 1) / 3
    assert e.sum() == pytest.approx(N * (math.exp(3) - 1) / 3, rel=1e-6)
    # thousands of bits: the exp cores are balanced, nothing overflows
    big = qtt.exp(1000, 800.0)
    assert all(np.isfinite(c).all() and abs(c).max() < 10 for c in big.cores)
    assert big.log_norm() == pytest.approx(
        0.5 * (1000 * math.log(2) + 1600 - math.log(1600)), rel=1e-6)


def test_laplacian_of_sine_matvec():
    # periodic: A sin(w t) = 2 (1 - cos(w h)) sin(w t) exactly, at t_i = i h, w h N = 2 pi k.
    # L = 20: the second difference cancels to about h^2 = 1e-12 relative, far above
    # round-off (at L = 40, h^2 = 1e-24 is below it: no double-precision method resolves it)
    L = 20
    N = 2 ** L
    h = 1.0 / N
    w = 2 * math.pi * 3
    s = qtt.sin(L, w, 0.0, 1.0 - h)
    y = (qtt.laplacian_1d(L, "periodic", h="unit") @ s).round(1e-13)
    lam = 2 * (1 - math.cos(w * h)) / h ** 2
    for i in (12345, 2 ** 19 + 7, N - 3):
        bits = tuple(int(c) for c in format(i, f"0{L}b"))
        assert y[bits] == pytest.approx(lam * math.sin(w * i * h), rel=1e-4, abs=0)
    assert y.norm() == pytest.approx(lam * s.norm(), rel=1e-4)


@pytest.mark.parametrize("eps", [0.0, 1e-3])
def test_quantize_dequantize_tensor(xp, rng, eps):
    a = rng.standard_normal((8, 4, 16))
    t = tt.TTTensor.from_dense(xp.asarray(a))
    q = qtt.quantize(t, eps=eps)
    assert q.shape == (2,) * 9
    err = np.linalg.norm(vec(q) - a.reshape(-1)) / np.linalg.norm(a)
    assert err <= max(eps, 1e-14)
    back = qtt.dequantize(q, (8, 4, 16))
    assert back.shape == (8, 4, 16)
    np.testing.assert_allclose(to_numpy(back.full()), to_numpy(q.full()).reshape(8, 4, 16),
                               atol=1e-13)


def test_quantize_eps_bound_and_caps(rng):
    x = tt.random_tensor((64, 32), 3, rng=0)
    for eps in (0.05, 0.3):
        q = qtt.quantize(x, eps=eps)
        d = np.linalg.norm(vec(q) - vec(x)) / np.linalg.norm(vec(x))
        assert d <= eps
    q = qtt.quantize(x, max_rank=2)
    assert q.max_rank <= 3          # new bonds capped at 2, the old bond keeps rank 3
    assert all(r <= 2 for k, r in enumerate(q.ranks[1:-1]) if k != 5)


def test_quantize_matrix_and_base(rng):
    M = rng.standard_normal((32, 32))
    W = tt.TTMatrix.from_dense(M, row_modes=(8, 4), col_modes=(8, 4))
    Wq = qtt.quantize(W)
    assert Wq.row_modes == (2,) * 5 and Wq.col_modes == (2,) * 5
    np.testing.assert_allclose(full(Wq), M, atol=1e-12)
    Wb = qtt.dequantize(Wq, ((8, 4), (8, 4)))
    np.testing.assert_allclose(full(Wb), M, atol=1e-12)
    t = tt.TTTensor.from_dense(rng.standard_normal((9, 27)))
    q3 = qtt.quantize(t, base=3)
    assert q3.shape == (3,) * 5
    np.testing.assert_allclose(vec(q3), vec(t), atol=1e-13)


def test_quantize_d_in_the_hundreds_magnitudes():
    # 300 cores of mode 4, each scaled by 1e3: the tensor's norm is 1e900 * ..., no overflow
    cores = [np.full((1, 4, 1), 1e3) for _ in range(300)]
    x = tt.TTTensor(cores)
    q = qtt.quantize(x)
    assert q.d == 600
    assert q.log_norm() == pytest.approx(x.log_norm(), rel=1e-12)
    assert all(np.isfinite(c).all() for c in q.cores)


def test_quantize_input_mutation_is_harmless(rng):
    a = rng.standard_normal((1, 8, 1))
    x = tt.TTTensor([a])
    q = qtt.quantize(x)
    before = vec(q).copy()
    a[:] = 0.0                       # the caller mutates its array afterwards
    np.testing.assert_array_equal(vec(q), before)


def test_kron_sum_general():
    A1 = qtt.laplacian_1d(2)
    G = qtt.gradient(3)
    K = qtt.kron_sum([A1, G, qtt.identity(1)])
    ref = (np.kron(np.kron(full(A1), np.eye(8)), np.eye(2))
           + np.kron(np.kron(np.eye(4), full(G)), np.eye(2)) + np.eye(64))
    np.testing.assert_array_equal(full(K), ref)
    # non-QTT modes
    B = tt.random_matrix((3, 2), (3, 2), 2, rng=0)
    C = tt.random_matrix((4,), (4,), 1, rng=1)
    K = qtt.kron_sum([B, C])
    np.testing.assert_allclose(full(K), np.kron(full(B), np.eye(4)) + np.kron(np.eye(6), full(C)),
                               atol=1e-13)


def test_errors():
    with pytest.raises(ModeError, match="must be >= 1"):
        qtt.laplacian_1d(0)
    with pytest.raises(TypeError, match="integer"):
        qtt.laplacian_1d(2.5)
    with pytest.raises(TTError, match="unknown boundary condition 'robin'"):
        qtt.laplacian_1d(3, "robin")
    with pytest.raises(TTError, match="periodic boundary applies to both ends"):
        qtt.laplacian_1d(3, ("periodic", "dirichlet"))
    with pytest.raises(TTError, match="h must be None"):
        qtt.laplacian_1d(3, h=-1.0)
    with pytest.raises(TTError, match="h must be None"):
        qtt.laplacian_1d(3, h="meters")
    with pytest.raises(TTError, match="one per dimension"):
        qtt.laplacian([3, 3], h=[1.0, 2.0, 3.0])
    with pytest.raises(ModeError, match="empty"):
        qtt.laplacian([])
    with pytest.raises(TTError, match="outside the 8 x 8 matrix"):
        qtt.shift(3, 8)
    with pytest.raises(TypeError, match="non-empty dict"):
        qtt.toeplitz(3, [1, 2])
    with pytest.raises(TypeError, match="complex coefficients need a complex dtype"):
        qtt.toeplitz(3, {0: 1j}, dtype=np.float64)
    with pytest.raises(TTError, match="kind must be one of"):
        qtt.gradient(3, kind="upwind")
    with pytest.raises(TTError, match="'dirichlet' or 'periodic'"):
        qtt.gradient(3, bc="neumann")
    with pytest.raises(TypeError, match="diag needs a TTTensor"):
        qtt.diag(qtt.identity(2))
    with pytest.raises(TypeError, match="must be a number"):
        qtt.grid(3, "a", 1.0)
    with pytest.raises(TTError, match="must be finite"):
        qtt.sin(3, float("nan"))
    with pytest.raises(TypeError, match="float32, float64"):
        qtt.identity(3, dtype=np.int64)
    with pytest.raises(ModeError, match="is not a power of 2"):
        qtt.quantize(tt.random_tensor((6, 4), 2, rng=0))
    with pytest.raises(TypeError, match="quantize needs a TTTensor or TTMatrix"):
        qtt.quantize(np.ones(8))
    with pytest.raises(TTError, match="eps must be a number >= 0"):
        qtt.quantize(tt.ones((4, 4)), eps=-1.0)
    with pytest.raises(ModeError, match="padded"):
        qtt.quantize(tt.TTMatrix.from_dense(np.ones((5, 5)), row_modes=(2, 4),
                                            col_modes=(2, 4)))
    with pytest.raises(ModeError, match="cannot merge"):
        qtt.dequantize(tt.ones((2,) * 4), (4, 8))
    with pytest.raises(ModeError, match="cover only"):
        qtt.dequantize(tt.ones((2,) * 4), (4,))
    with pytest.raises(TypeError, match="row_modes, col_modes"):
        qtt.dequantize(qtt.identity(4), (4, 4))
    with pytest.raises(TypeError, match="list of TTMatrix"):
        qtt.kron_sum(qtt.identity(2))
    with pytest.raises(ModeError, match="square"):
        qtt.kron_sum([tt.random_matrix((2, 2), (2, 4), 1, rng=0)])
    with pytest.raises(TypeError, match=r"operators\[1\] must be a TTMatrix"):
        qtt.kron_sum([qtt.identity(2), tt.ones((2, 2))])


def test_gradient_and_2d_laplacian_large():
    L = 40
    N = 2 ** L
    x = qtt.grid(L, 0.0, float(N - 1))                    # x_i = i, exact in float64
    g = qtt.gradient(L) @ x                               # forward: x_{i+1} - x_i, x_N = 0
    assert g[(0,) * L] == pytest.approx(1.0, rel=1e-9)
    assert g[(1,) * (L - 1) + (0,)] == pytest.approx(1.0, rel=1e-3)
    assert g[(1,) * L] == pytest.approx(-(N - 1), rel=1e-12)
    # 2-D Dirichlet Laplacian on a 2**20 x 2**20 grid times ones: the count of boundary sides
    A = qtt.laplacian([20, 20])
    y = A @ tt.ones((2,) * 40)
    M = 2 ** 20
    assert y[(0,) * 40] == pytest.approx(2.0)
    assert y[(0,) * 20 + (0,) * 19 + (1,)] == pytest.approx(1.0)
    assert y[(0, 1) * 20] == pytest.approx(0.0, abs=1e-9)
    assert y[(1,) * 40] == pytest.approx(2.0)
    assert y.norm() ** 2 == pytest.approx(4 * (M - 2) + 16, rel=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.complex64, np.complex128])
def test_quantize_dtypes(rng, dtype):
    a = rng.standard_normal((16, 8))
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal((16, 8))
    a = a.astype(dtype)
    q = qtt.quantize(tt.TTTensor.from_dense(a))
    assert q.dtype == dtype
    tol = 1e-5 if np.dtype(dtype).itemsize <= 8 else 1e-13
    np.testing.assert_allclose(vec(q), a.reshape(-1), atol=tol * np.abs(a).max())
    back = qtt.dequantize(q, (16, 8))
    assert back.dtype == dtype

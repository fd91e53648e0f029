"""tensortrain.solvers.solve (AMEn): dense NumPy oracles, local solvers, magnitudes, errors."""

import math
import warnings

import numpy as np
import pytest

import tensortrain as tt
from tensortrain.errors import ConvergenceWarning, ShapeError, TTError
from tensortrain.solvers import SolveInfo, _local, solve


def to_numpy(a):
    return a.get() if type(a).__module__.split(".")[0] == "cupy" else np.asarray(a)


def host_random(rng, shape, dtype=np.float64):
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def tridiag(n, a=2.0, b=-1.0):
    return a * np.eye(n) + b * (np.eye(n, k=1) + np.eye(n, k=-1))


def kron_sum(mats, xp=np):
    """``sum_k I x .. x T_k x .. x I`` as a rank-2 TTMatrix (``tt.qtt.kron_sum`` of one-core
    operators; that construction is checked against dense Kronecker sums in test_qtt.py)."""
    return tt.qtt.kron_sum([tt.TTMatrix([xp.asarray(t[None, :, :, None])]) for t in mats])


def rel(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.mark.parametrize("local_solver", ["auto", "direct", "gmres", "cg"])
def test_laplacian_against_dense_solve(xp, local_solver):
    A = kron_sum([tridiag(6), tridiag(5, 2.5), tridiag(4, 3.0)], xp)
    b = tt.random_tensor((6, 5, 4), 2, rng=1).to(xp)
    x, info = solve(A, b, eps=1e-10, local_solver=local_solver, return_info=True)
    want = np.linalg.solve(to_numpy(A.full()), to_numpy(b.full()).ravel())
    assert rel(to_numpy(x.full()).ravel(), want) < 1e-8
    assert isinstance(info, SolveInfo) and info.converged
    assert info.residual < 1e-9 and info.residuals[-1] <= 1e-10
    assert len(info.residuals) == info.sweeps == len(info.max_ranks)
    if local_solver in ("gmres", "cg"):
        assert sum(info.local_iterations) > 0
    if local_solver == "direct":
        assert sum(info.local_iterations) == 0


def test_nonsymmetric_random_operator_complex():
    rng = np.random.default_rng(3)
    n = 4
    mats = [np.eye(n) * 4 + host_random(rng, (n, n), np.complex128) * 0.4 for _ in range(4)]
    A = kron_sum(mats)
    b = tt.random_tensor((n,) * 4, 3, rng=2, dtype=np.complex128)
    x, info = solve(A, b, eps=1e-10, return_info=True, local_solver="gmres")
    assert x.dtype == np.complex128
    want = np.linalg.solve(A.full(), b.full().ravel())
    assert rel(x.full().ravel(), want) < 1e-8
    # the true residual reported is the one we measure densely
    res = np.linalg.norm(A.full() @ x.full().ravel() - b.full().ravel()) / np.linalg.norm(
        b.full())
    assert info.residual == pytest.approx(res, rel=1e-3, abs=1e-14)


def test_ranks_grow_from_rank_one_start_and_x0_is_not_modified():
    A = kron_sum([tridiag(8)] * 4)
    b = tt.random_tensor((8,) * 4, 3, rng=5)
    x0 = tt.ones((8,) * 4)
    before = [c.copy() for c in x0.cores]
    x, info = solve(A, b, eps=1e-9, x0=x0, return_info=True)
    assert max(x.ranks) > 1
    assert all(np.array_equal(c, d) for c, d in zip(x0.cores, before, strict=True))
    assert info.residual < 1e-8


def test_without_enrichment_ranks_cannot_grow():
    A = kron_sum([tridiag(6)] * 3)
    b = tt.random_tensor((6,) * 3, 3, rng=5)
    x0 = tt.ones((6,) * 3)
    with pytest.warns(ConvergenceWarning, match="cap of nswp=4"):
        x = solve(A, b, eps=1e-10, x0=x0, kickrank=0, nswp=4)
    assert max(x.ranks) == 1


def test_max_rank_caps_the_solution():
    A = kron_sum([tridiag(8)] * 4)
    b = tt.random_tensor((8,) * 4, 4, rng=7)
    with pytest.warns(ConvergenceWarning):
        x = solve(A, b, eps=1e-12, max_rank=3, nswp=4)
    assert max(x.ranks) <= 3


def test_one_core_and_zero_rhs():
    T = tridiag(7)
    A = tt.TTMatrix([T[None, :, :, None]])
    b = tt.TTTensor([np.arange(1.0, 8.0)[None, :, None]])
    x = solve(A, b)
    np.testing.assert_allclose(x.full(), np.linalg.solve(T, np.arange(1.0, 8.0)), rtol=1e-10)
    z = solve(A, 0.0 * b)
    assert z.norm() == 0


def test_exact_start_stops_after_one_sweep():
    A = kron_sum([tridiag(5)] * 3)
    x_true = tt.random_tensor((5,) * 3, 2, rng=8)
    b = (A @ x_true).round(1e-14)
    x, info = solve(A, b, eps=1e-8, x0=x_true, return_info=True)
    assert info.sweeps == 1 and info.converged
    assert (x - x_true).norm() <= 1e-8 * x_true.norm()
    # the result shares no memory with the inputs: the caller may change them afterwards
    full = x.full().copy()
    for c in list(x_true.cores) + list(b.cores) + list(A.cores):
        c[...] = 0.0
    np.testing.assert_array_equal(x.full(), full)


def test_long_chain_and_extreme_magnitudes_do_not_overflow():
    # d = 300 cores: the interfaces of <x|A|x> would be 4**300 ~ 1e180 and beyond; scaling
    # keeps them finite.  A = 1e200 * (kron sum), b = 1e-100 * ones: x = 1e-300 / ...
    d = 300
    n = 2
    T = np.array([[3.0, -1.0], [-1.0, 3.0]])
    A = kron_sum([T] * d)
    b = tt.ones((n,) * d)
    x, info = solve(A, b, eps=1e-10, return_info=True)
    # the exact solution is the constant 1 / (2 d) (A 1 = 2 d 1)
    assert info.residual < 1e-9
    assert x.log_norm() == pytest.approx(math.log(1 / (2 * d)) + d / 2 * math.log(2), rel=1e-9)
    big = 2.0 ** 400 * A
    small = 2.0 ** -600 * b
    y, info = solve(big, small, eps=1e-10, return_info=True)
    assert info.residual < 1e-9 and np.all([np.isfinite(c).all() for c in y.cores])
    assert y.log_norm() == pytest.approx(x.log_norm() - 1000 * math.log(2), rel=1e-12)


def test_singular_system_warns_after_nswp_with_a_clear_message():
    T = tridiag(4)
    T[1, :] = 0.0                      # rows (1, :, :) of A vanish; b = 1 there: inconsistent
    A = tt.TTMatrix([t[None, :, :, None] for t in (T, tridiag(4), tridiag(4))])
    b = tt.ones((4, 4, 4))
    with pytest.warns(ConvergenceWarning, match="singular or ill-conditioned"):
        x, info = solve(A, b, eps=1e-10, nswp=5, return_info=True)
    assert not info.converged and info.sweeps == 5 and info.residual > 1e-3
    assert np.all([np.isfinite(c).all() for c in x.cores])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        solve(A, b, eps=1e-10, nswp=2, warn=False)


def test_bad_input_is_typed():
    A = kron_sum([tridiag(4)] * 3)
    b = tt.ones((4, 4, 4))
    with pytest.raises(TypeError, match="A must be a TTMatrix"):
        solve(A.full(), b)
    with pytest.raises(TypeError, match="b must be a TTTensor"):
        solve(A, b.full())
    rect = tt.random_matrix((4, 4, 4), (4, 4, 2), 2, rng=0)
    with pytest.raises(ShapeError, match="square"):
        solve(rect, tt.ones((4, 4, 2)))
    with pytest.raises(ShapeError, match=r"operator's modes \(4, 4, 4\), got shape \(4, 4\)"):
        solve(A, tt.ones((4, 4)))
    with pytest.raises(ShapeError, match="x0 must have"):
        solve(A, b, x0=tt.ones((4, 4, 3)))
    nan_a = tt.TTMatrix([A.cores[0], A.cores[1] * np.nan, A.cores[2]])
    with pytest.raises(TTError, match=r"A holds NaN or Inf \(in cores\[1\]\)"):
        solve(nan_a, b)
    nan_b = tt.TTTensor([b.cores[0], b.cores[1], b.cores[2] * np.inf])
    with pytest.raises(TTError, match=r"b holds NaN or Inf \(in cores\[2\]\)"):
        solve(A, nan_b)
    with pytest.raises(TTError, match="eps must be > 0"):
        solve(A, b, eps=0.0)
    with pytest.raises(TTError, match="local_solver must be one of"):
        solve(A, b, local_solver="lu")
    with pytest.raises(TTError, match="nswp must be >= 1"):
        solve(A, b, nswp=0)
    with pytest.raises(TypeError, match="kickrank must be an integer"):
        solve(A, b, kickrank=1.5)
    with pytest.raises(TypeError, match="rng must be"):
        solve(A, b, rng="seed")
    padded = tt.TTMatrix.from_dense(np.eye(5) * 2.0, row_modes=(2, 3), col_modes=(2, 3))
    with pytest.raises(ShapeError, match="padded"):
        solve(padded, tt.ones((2, 3)))


def test_local_operator_matches_its_dense_matrix_and_preconditioner_inverts():
    rng = np.random.default_rng(0)
    left = rng.standard_normal((3, 2, 3))
    right = rng.standard_normal((4, 2, 4))
    T = tridiag(5)
    core = np.zeros((2, 5, 5, 2))
    core[0, :, :, 0] = np.eye(5)
    core[1, :, :, 0] = T
    core[1, :, :, 1] = np.eye(5)
    op = _local.LocalOperator(left, core, right)
    assert {k: v[0] for k, v in op.blocks.items()} == {(0, 0): "eye", (1, 0): "dense",
                                                       (1, 1): "eye"}
    y = rng.standard_normal((3, 5, 4))
    np.testing.assert_allclose(op.apply(y).ravel(), op.dense() @ y.ravel(), rtol=1e-12)
    block = rng.standard_normal((60, 2))
    np.testing.assert_allclose(op.matvec(block), op.dense() @ block, rtol=1e-12)
    # with diagonal interfaces the preconditioner is the exact inverse
    dl = np.zeros_like(left)
    dr = np.zeros_like(right)
    for c in range(2):
        dl[:, c, :] = np.diag(rng.uniform(1, 2, 3))
        dr[:, c, :] = np.diag(rng.uniform(1, 2, 4))
    op = _local.LocalOperator(dl, core, dr)
    prec = op.preconditioner({})
    np.testing.assert_allclose(op.apply(prec(y)), y, rtol=1e-10, atol=1e-12)


def test_gmres_and_cg_meet_their_tolerance():
    rng = np.random.default_rng(2)
    left = np.eye(3)[:, None, :] + 0.1 * rng.standard_normal((3, 1, 3))
    left = (left + left.transpose(2, 1, 0)) / 2
    right = np.eye(2)[:, None, :]
    core = tridiag(6)[None, :, :, None]
    op = _local.LocalOperator(left, core, right)
    f = rng.standard_normal((3, 6, 2))
    for solver in (_local.gmres, _local.cg):
        y, its = solver(op, f, np.zeros_like(f), 1e-10, 500)
        assert np.linalg.norm(op.apply(y) - f) <= 1e-10 * np.linalg.norm(f) * 1.0001
        assert 0 < its <= 500
    y, its = _local.gmres(op, f, np.zeros_like(f), 1e-14, 5)
    assert its <= 5


def test_float32():
    T = tridiag(6).astype(np.float32)
    A = kron_sum([T] * 3)
    b = tt.ones((6, 6, 6), dtype=np.float32)
    x, info = solve(A, b, eps=1e-5, return_info=True)
    assert x.dtype == np.float32 and info.converged and info.residual < 1e-4
    want = np.linalg.solve(A.full().astype(np.float64), np.ones(216))
    assert rel(x.full().ravel(), want) < 1e-4


def test_qtt_laplacian_against_dense():
    qtt = pytest.importorskip("tensortrain.qtt")
    A = qtt.laplacian([4, 3])                  # 16 x 8 grid, 7 cores of mode 2
    b = tt.ones(A.col_modes)
    x, info = solve(A, b, eps=1e-10, x0=b, return_info=True)
    want = np.linalg.solve(A.full(), np.ones(A.shape[0]))
    assert rel(x.full().ravel(), want) < 1e-8 and info.converged

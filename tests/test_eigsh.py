"""tensortrain.solvers.eigsh (block DMRG): dense and sparse oracles, closed forms, errors."""

import math
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.sparse.linalg as sla

import tensortrain as tt
from tensortrain.errors import ConvergenceWarning, ShapeError, TTError
from tensortrain.solvers import EigInfo, _local, eigsh

X = np.array([[0.0, 1.0], [1.0, 0.0]])
Z = np.diag([1.0, -1.0])


def to_numpy(a):
    return a.get() if type(a).__module__.split(".")[0] == "cupy" else np.asarray(a)


def tridiag(n, a=2.0, b=-1.0):
    return a * np.eye(n) + b * (np.eye(n, k=1) + np.eye(n, k=-1))


def kron_sum(mats, xp=np):
    """``sum_k I x .. x T_k x .. x I`` as a rank-2 TTMatrix (``tt.qtt.kron_sum`` of one-core
    operators; that construction is checked against dense Kronecker sums in test_qtt.py)."""
    return tt.qtt.kron_sum([tt.TTMatrix([xp.asarray(t[None, :, :, None])]) for t in mats])


def site(m):
    return tt.TTMatrix([m[None, :, :, None]])


def chain_term(ops, n_sites):
    out = None
    for i in range(n_sites):
        f = site(ops[i]) if i in ops else tt.eye((2,))
        out = f if out is None else tt.kron(out, f)
    return out


def tfim(n_sites, g):
    """Open transverse-field Ising chain ``-sum Z_i Z_i+1 - g sum X_i`` from the public
    algebra (kron, eye, +, round)."""
    h = None
    for i in range(n_sites - 1):
        t = -1.0 * chain_term({i: Z, i + 1: Z}, n_sites)
        h = t if h is None else (h + t).round(1e-13)
    for i in range(n_sites):
        h = (h + (-g) * chain_term({i: X}, n_sites)).round(1e-13)
    return h


def tfim_sparse(n_sites, g):
    eye = sp.identity(2, format="csr")

    def op(ms):
        out = sp.identity(1, format="csr")
        for i in range(n_sites):
            out = sp.kron(out, ms.get(i, eye), format="csr")
        return out

    h = sp.csr_matrix((2 ** n_sites, 2 ** n_sites))
    for i in range(n_sites - 1):
        h = h - op({i: sp.csr_matrix(Z), i + 1: sp.csr_matrix(Z)})
    for i in range(n_sites):
        h = h - g * op({i: sp.csr_matrix(X)})
    return h


def test_lowest_eigenpairs_against_dense(xp):
    A = kron_sum([tridiag(6), tridiag(5, 2.5), tridiag(4, 3.0)], xp)
    w, v, info = eigsh(A, k=3, eps=1e-8, return_info=True)
    dense = to_numpy(A.full())
    want = np.linalg.eigvalsh(dense)[:3]
    np.testing.assert_allclose(w, want, rtol=1e-11)
    assert isinstance(info, EigInfo) and info.converged and len(v) == 3
    vecs = np.stack([to_numpy(x.full()).ravel() for x in v], axis=1)
    np.testing.assert_allclose(vecs.T @ vecs, np.eye(3), atol=1e-8)
    np.testing.assert_allclose(dense @ vecs, vecs * want, atol=1e-7)
    assert len(info.changes) == info.sweeps == len(info.eigenvalues)


def test_largest_and_complex_hermitian():
    rng = np.random.default_rng(4)
    mats = []
    for n in (4, 3, 5):
        h = rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))
        mats.append((h + h.conj().T) / 2)
    A = kron_sum(mats)
    w, v = eigsh(A, k=2, which="LA", eps=1e-8)
    want = np.linalg.eigvalsh(A.full())[::-1][:2]
    np.testing.assert_allclose(w, want, rtol=1e-10)
    assert v[0].dtype == np.complex128
    x = v[0].full().ravel()
    np.testing.assert_allclose(A.full() @ x, w[0] * x, atol=1e-6)


def test_dirichlet_laplacian_closed_form_many_dimensions():
    # d = 30, n = 8: the lowest eigenvalue is d * (2 - 2 cos(pi / (n + 1)))
    d, n = 30, 8
    A = kron_sum([tridiag(n)] * d)
    w, v = eigsh(A, eps=1e-8)
    want = d * (2 - 2 * math.cos(math.pi / (n + 1)))
    assert abs(w[0] - want) <= 1e-10 * want
    assert v[0].norm() == pytest.approx(1.0, rel=1e-12)


def test_qtt_laplacian_closed_form():
    qtt = pytest.importorskip("tensortrain.qtt")
    A = qtt.laplacian([6, 6, 6])          # 64^3 grid, 18 cores of mode 2
    w, _ = eigsh(A, eps=1e-8)
    want = 3 * (2 - 2 * math.cos(math.pi / 65))
    assert abs(w[0] - want) <= 1e-10 * want


def test_spin_chain_against_scipy_sparse():
    n_sites, g = 10, 1.0
    H = tfim(n_sites, g)
    w, _, info = eigsh(H, k=2, eps=1e-7, return_info=True)
    ref = np.sort(sla.eigsh(tfim_sparse(n_sites, g), k=2, which="SA")[0])
    np.testing.assert_allclose(w, ref, rtol=1e-10)
    assert max(info.ranks) > 2


def test_extreme_scale_and_long_chain():
    # 2**-900 times a 200-core operator: eigenvalues far below the squares of the interfaces
    d = 200
    T = np.array([[2.0, -1.0], [-1.0, 2.0]])      # eigenvalues 1 and 3
    A = kron_sum([T] * d)
    w, _ = eigsh(2.0 ** -900 * A, eps=1e-8)
    assert w[0] == pytest.approx(2.0 ** -900 * d, rel=1e-10)
    w, _ = eigsh(2.0 ** 500 * A, which="LA", eps=1e-8)
    assert w[0] == pytest.approx(2.0 ** 500 * 3 * d, rel=1e-10)


def test_exact_start_converges_at_once_and_x0_untouched():
    A = kron_sum([tridiag(5)] * 3)
    _, v = eigsh(A, eps=1e-10)
    before = [c.copy() for c in v[0].cores]
    w, _, info = eigsh(A, x0=v[0], eps=1e-10, return_info=True)
    assert info.sweeps <= 2
    assert all(np.array_equal(c, d) for c, d in zip(v[0].cores, before, strict=True))
    np.testing.assert_allclose(w[0], np.linalg.eigvalsh(A.full())[0], rtol=1e-12)


def test_cap_warns():
    A = kron_sum([tridiag(6)] * 4)
    with pytest.warns(ConvergenceWarning, match="cap of nswp=1"):
        eigsh(A, nswp=1, eps=1e-10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eigsh(A, nswp=1, eps=1e-10, warn=False)


def test_lobpcg_path_matches_dense():
    rng = np.random.default_rng(5)
    left = rng.standard_normal((4, 1, 4))
    left = (left + left.transpose(2, 1, 0)) / 2 + 10 * np.eye(4)[:, None, :]
    right = np.eye(5)[:, None, :]
    core = tridiag(12)[None, :, :, None]
    op = _local.LocalOperator(left, core, right)
    want = np.linalg.eigvalsh(op.dense())
    x0 = rng.standard_normal((op.shape[0], 2))
    w, _, _ = _local.lobpcg(op, x0, 2, "SA", 1e-10, 2000)
    np.testing.assert_allclose(w, want[:2], rtol=1e-8)
    w, _, _ = _local.lobpcg(op, x0, 1, "LA", 1e-10, 2000)
    np.testing.assert_allclose(w, want[-1:], rtol=1e-8)


def test_bad_input_is_typed():
    A = kron_sum([tridiag(3)] * 3)
    with pytest.raises(TypeError, match="A must be a TTMatrix"):
        eigsh(A.full())
    rng = np.random.default_rng(0)
    nonsym = tt.TTMatrix([rng.standard_normal((1, 3, 3, 1)) for _ in range(3)])
    with pytest.raises(TTError, match=r"needs a Hermitian A: \|\|A - A\^H\|\|_F"):
        eigsh(nonsym)
    rect = tt.random_matrix((3, 3), (3, 2), 2, rng=0)
    with pytest.raises(ShapeError, match="square"):
        eigsh(rect)
    with pytest.raises(TTError, match="k must be at most the size of A"):
        eigsh(A, k=28)
    with pytest.raises(TTError, match="which must be one of"):
        eigsh(A, which="LM")
    with pytest.raises(TTError, match="x0 must hold k=2 vectors, got 1"):
        eigsh(A, k=2, x0=[tt.ones((3, 3, 3))])
    with pytest.raises(TypeError, match="x0 must be a TTTensor"):
        eigsh(A, x0=np.ones(27))
    with pytest.raises(ShapeError, match="x0"):
        eigsh(A, x0=tt.ones((3, 3)))
    nan_a = tt.TTMatrix([A.cores[0] * np.nan, A.cores[1], A.cores[2]])
    with pytest.raises(TTError, match="NaN or Inf"):
        eigsh(nan_a)
    with pytest.raises(TTError, match="k must be >= 1"):
        eigsh(A, k=0)


def test_float32_passes_the_hermitian_check_and_keeps_its_dtype():
    T = tridiag(6).astype(np.float32)
    A = tt.TTMatrix([T[None, :, :, None]] * 3)       # Kronecker product T x T x T
    w, v = eigsh(A, eps=1e-3)
    assert v[0].dtype == np.float32
    # float32 round-off on the smallest of eigenvalues spread over [0.008, 55]:
    # u ||A|| / |l| = 6e-8 * 55 / 0.008 = 4e-4
    assert w[0] == pytest.approx(np.linalg.eigvalsh(tridiag(6))[0] ** 3, rel=2e-3)

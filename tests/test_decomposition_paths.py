"""The paths of TT-SVD (Gram/eigh, QR, SVD) and of rounding, each forced and compared with the
plain SVD truncation: same ranks, errors within the eps bound, at any magnitude, for real and
complex data in single and double precision.  Nothing here measures time."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _helpers import host_random, rel_err, to_numpy

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tensortrain as tt
from tensortrain import TTTensor, _backend
from tensortrain import decompositions as D
from tensortrain.errors import TTError

PATHS = ("auto", "gram", "qr", "svd")
FEW = settings(max_examples=30, deadline=None,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _wide(dtype):
    return np.complex128 if np.dtype(dtype).kind == "c" else np.float64


def _orth(rng, m, n, dtype):
    z = rng.standard_normal((m, n))
    if np.dtype(dtype).kind == "c":
        z = z + 1j * rng.standard_normal((m, n))
    return np.linalg.qr(z)[0]


def matrix_with_spectrum(rng, p, q, s, dtype=np.float64):
    """A ``p x q`` matrix whose singular values are ``s`` (to round-off)."""
    k = len(s)
    left = _orth(rng, p, k, dtype) * np.asarray(s)
    return (left @ _orth(rng, q, k, dtype).conj().T).astype(dtype)


def tt_plus_noise(rng, modes, rank, noise, dtype=np.float64):
    """Dense tensor of a random TT of the given rank (cores decaying in scale) plus noise of
    relative norm ``noise``."""
    x = tt.random_tensor(modes, rank, rng=int(rng.integers(2**31)), dtype=_wide(dtype)).full()
    z = rng.standard_normal(x.shape)
    if np.dtype(dtype).kind == "c":
        x = x + 1j * tt.random_tensor(modes, rank, rng=int(rng.integers(2**31))).full()
        z = z + 1j * rng.standard_normal(x.shape)
    z *= noise * np.linalg.norm(x) / np.linalg.norm(z)
    return (x + z).astype(dtype)


def run(a, eps=0.0, max_rank=None, method="auto", modes=None):
    """``(TTTensor, report)`` of ``tt_svd`` with the given path."""
    report = []
    caps = None if max_rank is None else (max_rank,) * (a.ndim - 1)
    cores = D.tt_svd(a, a.shape if modes is None else modes, eps, caps, method=method,
                     report=report)
    return TTTensor(cores), report


def rel_error(t, a):
    wide = _wide(a.dtype)
    return rel_err(to_numpy(t.full()).astype(wide), to_numpy(a).astype(wide))


def slack(dtype, a):
    return 64 * float(np.finfo(np.dtype(dtype)).eps) * max(a.ndim, 1) * math.sqrt(a.size)


# ---- 1. every path forced, against the SVD truncation ---------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128, np.complex64])
@pytest.mark.parametrize("eps", [1e-1, 1e-3])
def test_paths_match_svd_truncation(dtype, eps):
    rng = np.random.default_rng(11)
    a = tt_plus_noise(rng, (6, 7, 8, 9), 4, 1e-6, dtype)
    ref, ref_path = run(a, eps, method="svd")
    assert set(ref_path) == {"svd"}
    for method in PATHS:
        t, path = run(a, eps, method=method)
        assert t.ranks == ref.ranks, (method, path)
        assert rel_error(t, a) <= eps + slack(dtype, a)
        assert t.dtype == a.dtype
    _, path = run(a, eps, method="gram")
    assert all(p.startswith("gram") and ">" not in p for p in path), path
    _, path = run(a, eps, method="qr")
    assert path[0] == "qr"                      # 6 x 504 is wide


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
def test_gram_matrix_path_matches_svd_on_a_known_spectrum(dtype):
    rng = np.random.default_rng(3)
    s = np.concatenate([np.logspace(0, -2, 12), 1e-9 * np.ones(48)])
    a = matrix_with_spectrum(rng, 60, 700, s, dtype)
    for eps in (1e-1, 1e-2, 1e-5):
        ref, _ = run(a, eps, method="svd")
        t, path = run(a, eps, method="gram")
        assert ">" not in path[0], path
        assert t.ranks == ref.ranks
        assert rel_error(t, a) <= eps + slack(dtype, a)
        auto, path = run(a, eps)
        assert path[0].startswith("gram") and auto.ranks == ref.ranks


def test_tall_unfolding_on_the_gram_path():
    rng = np.random.default_rng(4)
    a = matrix_with_spectrum(rng, 900, 40, np.logspace(0, -6, 40))
    for eps in (1e-1, 1e-3):
        ref, _ = run(a, eps, method="svd")
        t, path = run(a, eps, method="gram")
        assert path == ["gram"] and t.ranks == ref.ranks
        assert rel_error(t, a) <= eps + slack(np.float64, a)
        assert t.cores[0].shape == (1, 900, t.ranks[1])


def test_auto_takes_qr_where_eps_is_below_the_gram_resolution():
    # the workload of the benchmarks: TT-rank 8 plus noise 1e-10, eps 1e-8 (float64)
    rng = np.random.default_rng(5)
    a = tt_plus_noise(rng, (4,) * 8, 8, 1e-10)
    t, path = run(a, 1e-8)
    assert path[0] == "qr" and "gram" not in "".join(path)
    ref, _ = run(a, 1e-8, method="svd")
    assert t.ranks == ref.ranks == (1, 4, 8, 8, 8, 8, 8, 4, 1)
    assert rel_error(t, a) <= 1e-8
    # forced, the Gram path sees that it cannot resolve this cut and falls back
    t, path = run(a, 1e-8, method="gram")
    assert any(p in ("gram>qr", "gram>svd") for p in path)
    assert t.ranks == ref.ranks and rel_error(t, a) <= 1e-8


def test_gram_rule_threshold():
    # delta^2 against GRAM_SAFETY * u * ||M||_F^2, decided before the Gram matrix is formed
    rng = np.random.default_rng(6)
    m = rng.standard_normal((64, 512))
    n2 = float(np.linalg.norm(m)) ** 2
    u = np.finfo(np.float64).eps / 2
    edge = math.sqrt(D.GRAM_SAFETY * u * n2)
    assert D._gram_precision(m, 1.01 * edge, None, n2, False) == np.float64
    assert D._gram_precision(m, 0.99 * edge, None, n2, False) is None
    assert D._gram_precision(m, 0.99 * edge, 10, n2, False) == np.float64    # a cap may decide
    assert D._gram_precision(m[:8, :64], 1.0, None, n2, False) is None       # too small to pay
    assert D._gram_precision(m.astype(np.float32), 0.0, None, n2, False) == np.float64


def test_max_rank_only_uses_gram_and_matches_svd():
    rng = np.random.default_rng(7)
    a = rng.standard_normal((8, 32, 32, 8))
    ref, _ = run(a, 0.0, 8, method="svd")
    t, path = run(a, 0.0, 8)
    assert path[1] == "gram" and t.ranks == ref.ranks == (1, 8, 8, 8, 1)
    np.testing.assert_allclose(rel_error(t, a), rel_error(ref, a), rtol=1e-10)
    # the same with a cap the unfolding cannot use: an SVD decides the round-off rank
    _, path = run(a, 0.0, 2000)
    assert "gram" not in "".join(path)


def test_matrix_from_dense_1024_max_rank():
    rng = np.random.default_rng(8)
    a = rng.standard_normal((1024, 1024))
    w = tt.TTMatrix.from_dense(a, row_modes=(4, 8, 8, 4), col_modes=(4, 8, 8, 4), max_rank=16)
    assert w.ranks == (1, 16, 16, 16, 1)
    assert np.linalg.norm(w.full() - a) <= np.linalg.norm(a)


# ---- 2. rank-deficient and exactly low-rank inputs -------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
@pytest.mark.parametrize("method", PATHS)
def test_exactly_low_rank(dtype, method):
    # TT-rank 3 exactly (every unfolding rank deficient), and a matrix of rank 3 whose
    # middle unfolding is the only deficient one
    rng = np.random.default_rng(9)
    a = tt_plus_noise(rng, (8, 12, 20, 20), 3, 0.0, dtype)
    b = matrix_with_spectrum(rng, 96, 400, [3.0, 2.0, 1.0], dtype).reshape(8, 12, 20, 20)
    r = 6 if np.dtype(dtype).kind == "c" else 3           # real and imaginary parts of rank 3
    for x, expect in ((a, (1, r, r, r, 1)), (b, (1, 8, 3, 20, 1))):
        for eps in (0.0, 1e-3):
            t, path = run(x, eps, method=method)
            ref, _ = run(x, eps, method="svd")
            assert t.ranks == ref.ranks == expect, path
            assert rel_error(t, x) <= eps + slack(dtype, x)


@pytest.mark.parametrize("method", PATHS)
def test_zero_and_rank_one_inputs(method):
    z = np.zeros((20, 30, 40))
    t, _ = run(z, 0.1, method=method)
    assert t.ranks == (1, 1, 1, 1) and np.abs(t.full()).max() == 0
    v = np.einsum("i,j,k->ijk", *(np.linspace(1, 2, n) for n in (20, 30, 40)))
    for eps in (0.0, 0.5):
        t, _ = run(v, eps, method=method)
        assert t.ranks == (1, 1, 1, 1)
        assert rel_error(t, v) < 1e-13


def test_ranks_never_exceed_useful_rank():
    rng = np.random.default_rng(10)
    a = rng.standard_normal((3, 50, 2, 60))
    for method in PATHS:
        for eps in (0.0, 0.05):
            t, _ = run(a, eps, method=method)
            for k in range(1, 4):
                assert t.ranks[k] <= min(math.prod(a.shape[:k]), math.prod(a.shape[k:]))


def test_result_never_shares_memory_with_input():
    # every unfolding full rank and not tall: the Gram, QR and SVD paths keep them whole
    rng = np.random.default_rng(12)
    a = rng.standard_normal((2, 2, 64, 64))
    for method in PATHS:
        t, _ = run(a, 0.0 if method != "gram" else 1e-3, method=method)
        assert not any(np.may_share_memory(c, a) for c in t.cores)
        before = t.full()
        a[0, 0, 0, 0] += 1.0
        np.testing.assert_array_equal(t.full(), before)


# ---- 3. the eps bound on every path, any shape and magnitude --------------------------------

_EMAX = {np.float32: 110, np.float64: 1000}


def _real(dtype):
    return {np.dtype(np.complex128): np.float64, np.dtype(np.complex64): np.float32}.get(
        np.dtype(dtype), np.dtype(dtype).type)


@st.composite
def decomposable(draw):
    dtype = draw(st.sampled_from([np.float64, np.float32, np.complex128]))
    d = draw(st.integers(2, 4))
    modes = tuple(draw(st.integers(1, 9)) for _ in range(d))
    rank = draw(st.integers(1, 6))
    noise = draw(st.sampled_from([0.0, 1e-6, 1e-3, 1e-1]))
    seed = draw(st.integers(0, 2**31 - 1))
    e = draw(st.integers(-_EMAX[_real(dtype)], _EMAX[_real(dtype)]))
    a = tt_plus_noise(np.random.default_rng(seed), modes, rank, noise, dtype)
    return a, e


@FEW
@given(case=decomposable(), eps=st.sampled_from([1e-1, 1e-2, 1e-4]),
       method=st.sampled_from(PATHS))
def test_eps_bound_every_path_any_magnitude(case, eps, method):
    a, e = case
    big = np.ldexp(a.real, e) if a.dtype.kind != "c" else (np.ldexp(a.real, e)
                                                           + 1j * np.ldexp(a.imag, e))
    big = big.astype(a.dtype)
    t, _ = run(big, eps, method=method)
    assert all(np.isfinite(c).all() for c in t.cores)
    # compare in the frame scaled back by 2**-e (exact), where everything is representable
    full = t.full().astype(_wide(a.dtype))
    back = np.ldexp(full.real, -e) + (1j * np.ldexp(full.imag, -e) if a.dtype.kind == "c" else 0)
    ref = np.ldexp(big.real.astype(np.float64), -e) + (
        1j * np.ldexp(big.imag.astype(np.float64), -e) if a.dtype.kind == "c" else 0)
    err = np.linalg.norm((back - ref).ravel())
    assert err <= (eps + slack(a.dtype, a)) * np.linalg.norm(ref.ravel())
    for k in range(1, a.ndim):
        assert t.ranks[k] <= min(math.prod(a.shape[:k]), math.prod(a.shape[k:]))
    # outside the window where no scaling happens, 2**e a and 2**(e+1) a are scaled to the
    # same numbers before any arithmetic: same ranks
    if abs(e) > {np.float32: 40, np.float64: 300}[_real(a.dtype)]:
        step = 1 if e > 0 else -1
        nxt = np.ldexp(a.real, e + step) + (1j * np.ldexp(a.imag, e + step)
                                             if a.dtype.kind == "c" else 0)
        again, _ = run(nxt.astype(a.dtype), eps, method=method)
        assert again.ranks == t.ranks


@pytest.mark.parametrize("scale_exp, dtype", [(-1000, np.float64), (1000, np.float64),
                                              (-120, np.float32), (120, np.float32),
                                              (-1000, np.complex128)])
def test_gram_path_at_extreme_magnitudes(scale_exp, dtype):
    rng = np.random.default_rng(13)
    a = tt_plus_noise(rng, (5, 6, 7, 8), 4, 1e-4, dtype)
    ref, _ = run(a, 1e-2, method="svd")
    if np.dtype(dtype).kind == "c":
        big = (np.ldexp(a.real, scale_exp) + 1j * np.ldexp(a.imag, scale_exp)).astype(dtype)
    else:
        big = np.ldexp(a, scale_exp).astype(dtype)
    for method in ("gram", "auto"):
        t, path = run(big, 1e-2, method=method)
        assert t.ranks == ref.ranks, path
        assert all(np.isfinite(c).all() for c in t.cores)
        full = t.full().astype(_wide(dtype))
        back = np.ldexp(full.real, -scale_exp) + (
            1j * np.ldexp(full.imag, -scale_exp) if np.dtype(dtype).kind == "c" else 0)
        err = np.linalg.norm((back - a.astype(_wide(dtype))).ravel())
        assert err <= (1e-2 + slack(dtype, a)) * np.linalg.norm(a.astype(_wide(dtype)).ravel())
    _, path = run(big, 1e-2, method="gram")
    assert all(">" not in p for p in path)


# ---- 4. rounding ---------------------------------------------------------------------------


def _round(x, eps=0.0, max_rank=None, method="auto"):
    report = []
    caps = None if max_rank is None else (max_rank,) * (x.ndim - 1)
    return TTTensor(D.round_cores(list(x.cores), eps, caps, method=method, report=report)), report


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
def test_round_paths_agree(dtype):
    a = tt.random_tensor((8,) * 6, 7, rng=1, dtype=dtype)
    b = tt.random_tensor((8,) * 6, 5, rng=2, dtype=dtype)
    s = a + b
    for kw in ({"eps": 1e-8}, {"eps": 0.3}, {"max_rank": 6}, {}):
        fast, report = _round(s, **kw)
        ref, ref_report = _round(s, method="svd", **kw)
        assert set(ref_report) == {"svd"}
        assert fast.ranks == ref.ranks
        err = (s - fast).norm() / s.norm()
        if "eps" in kw:
            assert err <= kw["eps"] + 1e-4 * (dtype == np.float32) + 1e-12
        np.testing.assert_allclose(err, (s - ref).norm() / s.norm(), rtol=1e-3, atol=1e-5)
    _, report = _round(s, eps=1e-8, method="qr")
    assert "keep" in report                      # interior bonds of a random sum: nothing to cut
    _, report = _round(s, eps=1e-8)
    assert "gram" in report                      # ... which 'auto' proves without a QR
    if dtype != np.float32:                      # (the float32 margin, ~1e-7 * dims, is wider)
        assert "keep" not in report
    _, report = _round(s, eps=0.3)
    assert "cut" in report


def _spectrum_sum(c, d=6, rng=11):
    """``x + c y``: a rank-3 ``x`` plus a rank-2 ``y`` scaled by ``c``, so that at every interior
    bond two singular values are of order ``c ||y||`` and can be made to straddle any cut."""
    x = tt.random_tensor((6,) * d, 3, rng=rng)
    y = tt.random_tensor((6,) * d, 2, rng=rng + 1)
    return x * (1 / x.norm()) + y * (c / y.norm())


@pytest.mark.parametrize("c", [1e-12, 1e-9, 3e-9, 1e-8, 3e-8, 1e-7, 1e-6, 1e-4, 1e-2])
def test_round_certificate_never_keeps_what_qr_cuts(c):
    """Across the cut (``delta = eps / sqrt(d - 1)``, about 4.5e-9 here), the certified path
    keeps exactly the ranks of the QR path: a certificate only ever fires far above the cut,
    where the QR path keeps everything too."""
    s = _spectrum_sum(c)
    eps = 1e-8
    auto, rep = _round(s, eps=eps)
    qr, _ = _round(s, eps=eps, method="qr")
    svd, _ = _round(s, eps=eps, method="svd")
    assert auto.ranks == qr.ranks == svd.ranks
    assert (auto - s).norm() <= eps * s.norm()
    if "gram" in rep:                             # nothing was cut where it certified
        kept = zip(auto.ranks[1:-1], s.ranks[1:-1], rep, strict=True)
        assert all(a == b for a, b, t in kept if t == "gram")
    if c <= 3e-9:                                 # below the cut: c y is dropped everywhere
        assert max(auto.ranks) == 3 and "gram" not in rep[1:-1]
    if c >= 1e-4:                                 # far above: every interior bond certified
        assert max(auto.ranks) == 5 and set(rep[1:-1]) == {"gram"}


def test_round_certificate_falls_back_mid_train():
    """Bond 3 of a random rank-5 train is inflated to rank 6 by a direction that adds nothing,
    so it must be cut while the bonds around it certify: the certified cores before the cut
    are made orthogonal first, the cut is the QR path's, and certification resumes after the
    next bond that keeps everything."""
    x = tt.random_tensor((6,) * 8, 5, rng=21)
    cores = [c.copy() for c in x.cores]
    cores[3] = np.concatenate([cores[3], cores[3][:, :, :1]], axis=2)            # (5, 6, 6)
    cores[4] = np.concatenate([cores[4], np.zeros_like(cores[4][:1])], axis=0)   # (6, 6, 5)
    z = TTTensor(cores)
    assert z.ranks[4] == 6
    np.testing.assert_allclose(z.full(), x.full(), rtol=0, atol=1e-12 * np.abs(x.full()).max())
    auto, rep = _round(z, eps=1e-10)
    qr, _ = _round(z, eps=1e-10, method="qr")
    assert auto.ranks == qr.ranks == x.ranks
    assert rep[:3] == ["gram"] * 3 and rep[3] == "cut"
    assert rep[4] == "keep" and "gram" in rep[5:]      # the next bond is not tried, then again
    assert (auto - z).norm() <= 1e-10 * z.norm()
    left = [c.reshape(-1, c.shape[2]) for c in auto.cores[:3]]
    for m in left:                                     # cores before the cut: orthonormal
        np.testing.assert_allclose(m.T @ m, np.eye(m.shape[1]), atol=1e-13)


@pytest.mark.parametrize("dtype,scale", [(np.float32, 1e-30), (np.float32, 1e30),
                                         (np.float64, 1e-300), (np.float64, 1e300)])
def test_round_certificate_extreme_magnitudes(dtype, scale):
    a = tt.random_tensor((4,) * 8, 3, rng=5, dtype=dtype)
    b = tt.random_tensor((4,) * 8, 2, rng=6, dtype=dtype)
    s = (a + b) * scale
    auto, rep = _round(s, eps=1e-3 if dtype == np.float32 else 1e-10)
    qr, _ = _round(s, eps=1e-3 if dtype == np.float32 else 1e-10, method="qr")
    assert auto.ranks == qr.ranks and auto.ranks[2:-2] == s.ranks[2:-2]
    ref = s.norm()
    assert math.isfinite(ref) and ref > 0
    tol = 1e-5 if dtype == np.float32 else 1e-13
    assert (auto - s).norm() <= tol * ref
    assert rep[2:-2] == ["gram"] * (len(rep) - 4)


def test_round_certificate_d2000_and_caller_mutation():
    """``x + y`` with ``x`` and ``y`` rank-1 and orthogonal at every site: every bond has the
    singular values (1, 1), far above any cut, so all 1999 bonds certify at ``d = 2000``
    (the margin grows with the summed core sizes, here 12,000 times ``eps``)."""
    theta = np.random.default_rng(9).uniform(0, np.pi, 2000)
    x = TTTensor([np.array([np.cos(t), np.sin(t)]).reshape(1, 2, 1) for t in theta])
    y = TTTensor([np.array([-np.sin(t), np.cos(t)]).reshape(1, 2, 1) for t in theta])
    s = TTTensor([c.copy() for c in (x + y).cores])
    r, rep = _round(s, eps=1e-10)
    assert r.ranks == s.ranks == (1,) + (2,) * 1999 + (1,)
    assert rep == ["gram"] * 1999
    np.testing.assert_allclose(r.norm(), math.sqrt(2), rtol=1e-12)
    np.testing.assert_allclose(tt.dot(r, x), 1.0, rtol=1e-12)
    np.testing.assert_allclose(tt.dot(r, y), 1.0, rtol=1e-12)
    before = [c.copy() for c in r.cores]
    for c in s.cores:                             # the caller overwrites its cores afterwards
        c[...] = 0.0
    assert all(np.array_equal(a, b) for a, b in zip(before, r.cores, strict=True))
    assert s.norm() == 0.0
    # a long random chain: few bonds certify, and the ranks are the QR path's
    a = tt.random_tensor((2,) * 2000, 2, rng=7) + tt.random_tensor((2,) * 2000, 2, rng=8)
    r, rep = _round(a, eps=1e-10)
    ref, _ = _round(a, eps=1e-10, method="qr")
    assert r.ranks == ref.ranks
    assert (r - a).norm() <= 1e-10 * a.norm()


def test_round_rank_deficient_sum():
    x = tt.random_tensor((4,) * 7, 5, rng=3)
    for method in ("auto", "svd"):
        r, _ = _round(x + x, eps=1e-10, method=method)
        assert r.ranks == x.ranks
        assert (r - 2 * x).norm() <= 1e-10 * 2 * x.norm()


@pytest.mark.parametrize("method", ("auto", "svd"))
def test_round_d1000(method):
    x = tt.ones((2,) * 1000) * 3
    r, _ = _round(x, method=method)
    assert r.ranks == (1,) * 1001
    assert r.log_norm() == pytest.approx(math.log(3) + 500 * math.log(2), rel=1e-13)
    y, _ = _round(x + x, eps=1e-12, method=method)
    assert y.ranks == (1,) * 1001
    assert y.log_norm() == pytest.approx(math.log(6) + 500 * math.log(2), rel=1e-13)
    assert y[(0,) * 1000] == pytest.approx(6.0, rel=1e-12)
    assert all(np.isfinite(c).all() for c in y.cores)


def test_unknown_method_is_refused():
    with pytest.raises(TTError, match="method must be one of"):
        D.tt_svd(np.ones((2, 2)), (2, 2), method="randomized")
    with pytest.raises(TTError, match="method must be one of"):
        D.round_cores(list(tt.ones((2, 2)).cores), method="gram")


# ---- 5. the linear-algebra helpers behind the paths ------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("shape", [(320, 40), (40, 320), (7, 7), (1, 5), (5, 1), (300, 290)])
def test_backend_qr_svd_gram(dtype, shape):
    a = host_random(np.random.default_rng(14), shape, dtype)
    tol = 50 * float(np.finfo(dtype).eps) * max(shape)
    q, r = _backend.qr(a)
    assert q.dtype == a.dtype and r.dtype == a.dtype
    assert np.abs(q @ r - a).max() <= tol * np.abs(a).max()
    np.testing.assert_allclose(q.conj().T @ q, np.eye(q.shape[1]), atol=tol)
    np.testing.assert_array_equal(np.tril(r, -1), 0)
    u, s, vh = _backend.svd(a)
    assert np.abs((u * s) @ vh - a).max() <= tol * np.abs(a).max()
    np.testing.assert_allclose(s, np.linalg.svd(a.astype(_wide(dtype)), compute_uv=False),
                               rtol=tol, atol=tol * s[0])
    np.testing.assert_allclose(_backend.svdvals(a), s, rtol=tol, atol=tol * s[0])
    for rows in (True, False):
        g = _backend.gram(a, rows=rows)
        ref = a @ a.conj().T if rows else a.conj().T @ a
        np.testing.assert_allclose(np.tril(g), np.tril(ref), atol=tol * np.abs(ref).max())
    if shape[0] < shape[1]:
        rf = _backend.wide_r_factor(a)
        np.testing.assert_allclose(np.linalg.svd(rf, compute_uv=False), s, rtol=tol,
                                   atol=tol * s[0])


def test_backend_eigh_subsets_and_pivoted_cholesky():
    rng = np.random.default_rng(15)
    m = matrix_with_spectrum(rng, 120, 300, np.logspace(0, -8, 120))
    g = _backend.gram(m)
    w_all = np.linalg.eigvalsh(g)[::-1]
    w, v = _backend.eigh(g.copy())
    np.testing.assert_allclose(w, w_all, atol=1e-14)
    np.testing.assert_allclose(g @ v, v * w, atol=1e-13)
    w, v = _backend.eigh(g.copy(), top=7)
    assert v.shape == (120, 7)
    np.testing.assert_allclose(w, w_all[:7], rtol=1e-12)
    w, v = _backend.eigh(g.copy(), above=(w_all[30] + w_all[31]) / 2)
    assert w.shape == (31,)
    f, k = _backend.pivoted_cholesky(g, 1e-10)
    assert _backend.pivoted_cholesky(g, 1e-10, max_rank=k - 1) == (None, k)
    assert f.shape == (120, k) and k < 120
    assert np.abs(f @ f.T - g).max() <= 120 * 1e-10


def test_truncation_rank_small_spectra_match_the_array_path(monkeypatch):
    """Short spectra take a plain-Python path; it must give the NumPy path's rank exactly,
    ties at the cut, zeros, huge and tiny magnitudes and caps included."""
    rng = np.random.default_rng(5)
    cases = 0
    for trial in range(3000):
        n = int(rng.integers(1, D._SMALL_SPECTRUM + 1))
        s = np.sort(10.0 ** rng.uniform(-14, 0, n))[::-1] * 10.0 ** rng.uniform(-150, 150)
        if trial % 4 == 0:
            s[n // 2:] = 0.0
        top = float(s[0])
        delta = (0.0 if trial % 7 == 0 else
                 float(np.sqrt(np.sum(s[-2:] ** 2))) if trial % 5 == 0 else
                 top * 10.0 ** rng.uniform(-16, 0))
        cap = None if trial % 3 else int(rng.integers(1, n + 2))
        shape = (int(rng.integers(1, 300)), int(rng.integers(1, 300)))
        dtype = np.float32 if trial % 6 == 0 else np.float64
        fast = D.truncation_rank(s, delta, cap, shape, dtype)
        monkeypatch.setattr(D, "_SMALL_SPECTRUM", -1)
        ref = D.truncation_rank(s, delta, cap, shape, dtype)
        monkeypatch.undo()
        assert fast == ref, (s, delta, cap, shape, dtype)
        cases += fast != n
    assert cases > 1000                           # most cases cut something

"""Extreme magnitudes, aliasing and hostile inputs: the cases that once returned wrong numbers.

The oracle for norms, inner products and the eps bound is exact rational arithmetic
(:class:`fractions.Fraction` holds every float exactly, and ``math.log`` of a Python int works
at any size), so it is independent of every scaling trick in the package.
"""

from __future__ import annotations

import decimal
import math
from fractions import Fraction

import numpy as np
import pytest

pytest.importorskip("hypothesis")    # the GPU image has no hypothesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tensortrain as tt
from tensortrain import TTMatrix, TTTensor, _cores
from tensortrain.decompositions import orthogonal_sweep
from tensortrain.errors import TTError, TTFileError, TTIndexError
from tensortrain.gradients import dot_grad, norm_grad

# ---- the exact oracle ------------------------------------------------------------------------


def _fractions(core):
    r0, n, r1 = core.shape
    return [[[Fraction(float(core[a, i, b])) for b in range(r1)] for i in range(n)]
            for a in range(r0)]


def exact_entries(cores):
    """All entries of the TT (C-order) as Fractions."""
    cores = [np.asarray(c).reshape(c.shape[0], -1, c.shape[-1]) for c in cores]
    first = _fractions(cores[0])
    rows = [first[0][i] for i in range(cores[0].shape[1])]        # vectors of length r1
    for c in cores[1:]:
        fc = _fractions(c)
        r0, n, r1 = c.shape
        rows = [[sum((v[a] * fc[a][i][b] for a in range(r0)), Fraction(0)) for b in range(r1)]
                for v in rows for i in range(n)]
    return [v[0] for v in rows]


def exact_dense(a):
    return [Fraction(float(x)) for x in np.asarray(a).reshape(-1)]


def sqnorm(entries):
    return sum((x * x for x in entries), Fraction(0))


def flog(q: Fraction) -> float:
    """Natural log of a positive Fraction of any size."""
    return math.log(q.numerator) - math.log(q.denominator)


def exact_log_norm(entries) -> float:
    s = sqnorm(entries)
    return -math.inf if s == 0 else 0.5 * flog(s)


def exact_sqrt(q: Fraction) -> float:
    """``sqrt(q)`` correctly rounded enough (50 digits) to judge a few ulps of float64."""
    with decimal.localcontext() as ctx:
        ctx.prec = 50
        ctx.Emax = 10 ** 6
        ctx.Emin = -10 ** 6
        return float((decimal.Decimal(q.numerator) / decimal.Decimal(q.denominator)).sqrt())


def ulp_rel(dtype) -> float:
    return float(np.finfo(np.dtype(dtype)).eps)


# ---- 1. norms and decompositions at extreme magnitudes -----------------------------------------

B4 = np.random.default_rng(0).standard_normal((8, 8, 8, 8))


@pytest.mark.parametrize("scale, dtype", [
    (1e18, np.float32), (1e30, np.float32), (1e-30, np.float32), (1e-18, np.float32),
    (1e155, np.float64), (1e300, np.float64), (1e-300, np.float64),
])
def test_from_dense_eps_bound_at_any_magnitude(scale, dtype):
    a = (scale * B4).astype(dtype)
    t = TTTensor.from_dense(a, eps=0.1)
    ref = TTTensor.from_dense(B4.astype(dtype), eps=0.1)
    # compare in the scaled frame, where float64 holds everything
    err = np.linalg.norm(t.full().astype(np.float64) / scale - a.astype(np.float64) / scale)
    assert err <= 0.1 * np.linalg.norm(a.astype(np.float64) / scale)
    assert t.ranks[1] > 1                       # the old code collapsed to rank 1
    assert t.ranks == ref.ranks
    assert all(np.isfinite(c).all() for c in t.cores)


@pytest.mark.parametrize("scale", [1e18, 1e30, 1e-30])
def test_matrix_from_dense_float32_extreme(scale):
    a = (scale * np.random.default_rng(1).standard_normal((64, 64))).astype(np.float32)
    w = TTMatrix.from_dense(a, row_modes=(4, 4, 4), col_modes=(4, 4, 4), eps=1e-3)
    assert w.ranks[1] > 1
    rel = np.linalg.norm(w.full().astype(np.float64) / scale - a / scale) / np.linalg.norm(a / scale)
    assert rel <= 1e-3


@pytest.mark.parametrize("value", [1e20, 1e30, 3e38, 1e-25, 1e-30, 1e-38])
def test_single_core_norm_float32_few_ulps(value):
    x = TTTensor([np.full((1, 3, 1), value, np.float32)])
    stored = float(np.float32(value))                  # the value the core really holds
    true = stored * math.sqrt(3)                       # representable in float64
    assert x.norm() == pytest.approx(true, rel=4 * ulp_rel(np.float32))
    assert x.log_norm() == pytest.approx(math.log(true), rel=1e-12, abs=1e-6)
    assert x.norm() > 0 and math.isfinite(x.log_norm())


@pytest.mark.parametrize("value", [1e300, 1e-300, 5e-320])
def test_single_core_norm_float64_few_ulps(value):
    x = TTTensor([np.full((1, 4, 1), value)])
    assert x.norm() == pytest.approx(2 * value, rel=4 * ulp_rel(np.float64))


def test_log_norm_finite_for_d_1100_with_huge_scale():
    big = 2.0 ** 600 * tt.ones((2,) * 1100)
    true = 600 * math.log(2) + 550 * math.log(2)      # ||ones|| = 2**550
    assert big.log_norm() == pytest.approx(true, rel=1e-13)
    assert big.norm() == math.inf                       # 2**1150 is beyond float64
    r = big.round()
    assert r.ranks == (1,) * 1101
    assert r.log_norm() == pytest.approx(true, rel=1e-13)
    assert all(np.isfinite(c).all() for c in r.cores)


def test_cores_that_overflow_only_in_products():
    y = TTTensor([np.full((1, 2, 1), v) for v in (1e200, 1e200, 1e-200, 1e-200)])
    assert y.norm() == pytest.approx(4.0, rel=4e-16)
    assert tt.dot(y, y) == pytest.approx(16.0, rel=8e-16)
    assert y.sum() == pytest.approx(16.0, rel=4e-16)
    assert y[0, 0, 0, 0] == pytest.approx(1.0, rel=4e-16)
    assert y[1, 0, 1, 1] == pytest.approx(1.0, rel=4e-16)
    np.testing.assert_allclose(y.full(), np.ones((2, 2, 2, 2)), rtol=4e-16)
    r = (y + y).round()
    assert r.ranks == (1, 1, 1, 1, 1)
    assert r.norm() == pytest.approx(8.0, rel=1e-15)
    np.testing.assert_allclose(r.full(), 2 * np.ones((2, 2, 2, 2)), rtol=1e-15)
    # partial sums and slices keep the scale too
    s = y.sum(axis=(0, 1))
    np.testing.assert_allclose(s.full(), 4 * np.ones((2, 2)), rtol=1e-15)
    assert y[0, 0].full() == pytest.approx(np.ones((2, 2)), rel=1e-15)
    o = y.orthogonalize("left")
    np.testing.assert_allclose(o.full(), np.ones((2, 2, 2, 2)), rtol=1e-14)


def test_float32_scalar_beyond_range_keeps_tensor_finite():
    x = tt.ones((2,) * 10, dtype=np.float32)
    y = 1e40 * x                                   # 1e40 is not a float32, the entries of y aren't
    assert y.dtype == np.float32
    assert all(np.isfinite(c).all() for c in y.cores)
    assert y.norm() == pytest.approx(1e40 * 32, rel=1e-6)
    z = (y / 1e40)
    np.testing.assert_allclose(z.full(), np.ones((2,) * 10), rtol=1e-6)
    assert (np.float64(2.0) * x).dtype == np.float64   # NumPy promotion kept
    assert {c.dtype for c in (np.float64(2.0) * x).cores} == {np.dtype(np.float64)}
    assert {c.dtype for c in (np.float64(1e300) * x).cores} == {np.dtype(np.float64)}


def test_tiny_probability_tensor_is_not_zero():
    # a d = 60 product distribution with entries ~1e-36 in float32: not the zero tensor
    p = TTTensor([np.full((1, 2, 1), 0.25, np.float32) for _ in range(60)])
    assert p.log_norm() == pytest.approx(60 * math.log(0.25 * math.sqrt(2)), rel=1e-6)
    assert p.norm() > 0
    assert p.sum() == pytest.approx(0.5 ** 60, rel=1e-6) or float(p.sum()) == 0.0
    assert tt.log_dot(p, p)[1] == pytest.approx(2 * p.log_norm(), rel=1e-6)


def test_norm_nan_and_zero_are_reported():
    z = tt.zeros((3, 4))
    assert z.norm() == 0.0 and z.log_norm() == -math.inf
    bad = TTTensor([np.array([[[1.0], [np.nan]]]), np.ones((1, 2, 1))])
    assert math.isnan(bad.norm()) and math.isnan(bad.log_norm())
    inf = TTTensor([np.array([[[1.0], [np.inf]]]), np.ones((1, 2, 1))])
    assert math.isnan(inf.log_norm())
    with pytest.raises(TTError, match="NaN or Inf"):
        inf.round()


# ---- 2. from_dense never shares memory with its input -----------------------------------------


def test_from_dense_d1_copies():
    a = np.arange(5.0)
    t = TTTensor.from_dense(a)
    a[0] = 99
    np.testing.assert_array_equal(t.full(), np.arange(5.0))


def test_matrix_from_dense_small_copies():
    a = np.ones((7, 11))
    w = TTMatrix.from_dense(a)
    assert w.d == 1
    a[0, 0] = 5
    np.testing.assert_array_equal(w.full(), np.ones((7, 11)))


@pytest.mark.parametrize("shape", [(5,), (2, 3), (2, 3, 4)])
def test_from_dense_result_independent_of_later_writes(shape):
    a = np.random.default_rng(0).standard_normal(shape)
    keep = a.copy()
    t = TTTensor.from_dense(a)
    a[...] = 7.0
    np.testing.assert_allclose(t.full(), keep, atol=1e-13)


def test_full_is_a_new_array():
    c = np.arange(6.0).reshape(1, 6, 1)
    t = TTTensor([c])
    f = t.full()
    f[0] = 100
    assert c[0, 0, 0] == 0.0


# ---- 3. masked arrays --------------------------------------------------------------------------


def test_masked_array_refused():
    m = np.ma.masked_invalid([1.0, np.nan, 2.0])
    with pytest.raises(TypeError, match=r"masked array.*a\.filled"):
        TTTensor.from_dense(m)
    with pytest.raises(TypeError, match="masked array"):
        TTMatrix.from_dense(np.ma.masked_array(np.ones((4, 4)), mask=np.eye(4)))
    with pytest.raises(TypeError, match="masked array"):
        tt.eye(4) @ np.ma.masked_array(np.ones(4))


@pytest.mark.filterwarnings("ignore:the matrix subclass:PendingDeprecationWarning")
def test_ndarray_subclass_used_as_plain_data():
    m = np.matrix([[1.0, 2.0], [3.0, 4.0]])
    w = TTMatrix.from_dense(m)
    np.testing.assert_allclose(w.full(), np.asarray(m))
    assert type(w.cores[0]) is np.ndarray


# ---- weak errors made clear --------------------------------------------------------------------


def test_random_tensor_negative_seed():
    with pytest.raises(TTError, match="rng seed must be a non-negative integer, got -1"):
        tt.random_tensor((2, 2), 2, rng=-1)
    with pytest.raises(TypeError, match=r"rng must be None.*got bool"):
        tt.random_tensor((2, 2), 2, rng=True)
    with pytest.raises(TypeError, match=r"rng must be None.*got float"):
        tt.random_tensor((2, 2), 2, rng=1.5)


def test_max_rank_zero_d_array():
    a = np.random.default_rng(0).standard_normal((4, 4, 4))
    t = TTTensor.from_dense(a, max_rank=np.array(2))
    assert max(t.ranks) == 2
    with pytest.raises(TypeError, match=r"max_rank must be an int.*0-d array of dtype float64"):
        TTTensor.from_dense(a, max_rank=np.array(2.5))
    with pytest.raises(TypeError, match=r"max_rank must be an int.*got str"):
        TTTensor.from_dense(a, max_rank="22")


def test_sum_duplicate_axis():
    x = tt.ones((2, 3, 4))
    with pytest.raises(TTIndexError, match=r"axis \(0, 0\) names mode 0 twice"):
        x.sum(axis=(0, 0))
    with pytest.raises(TTIndexError, match="names mode 2 twice"):
        x.sum(axis=(2, -1))


def test_load_refuses_float_shape(tmp_path):
    w = TTMatrix.from_dense(np.ones((5, 6)), row_modes=(2, 3), col_modes=(3, 2))
    path = tmp_path / "w.npz"
    tt.save(path, w)
    with np.load(path) as z:
        data = dict(z)
    data["shape"] = np.array([5.0, 6.0])
    bad = tmp_path / "bad.npz"
    np.savez(bad, **data)
    with pytest.raises(TTFileError, match="malformed 'shape' entry: expected two integers"):
        tt.load(bad)
    data["shape"] = np.array([5, 6, 1])
    np.savez(bad, **data)
    with pytest.raises(TTFileError, match="malformed 'shape'"):
        tt.load(bad)


# ---- property tests across the whole exponent range ---------------------------------------------

_EXP = {np.float32: 100, np.float64: 900}   # per-core exponent offsets drawn from +-this


@st.composite
def extreme_tt(draw, dtype, max_d=4, max_n=3, max_r=2, shape=None, ranks=None):
    """A TT whose cores have wildly different magnitudes: per-core offsets over most of the
    exponent range (so partial products over- or underflow), a spread of up to 2**24 inside a
    core, some exact zeros and negative entries."""
    if shape is None:
        d = draw(st.integers(1, max_d))
        shape = tuple(draw(st.integers(1, max_n)) for _ in range(d))
    d = len(shape)
    if ranks is None:
        ranks = (1, *tuple(draw(st.integers(1, max_r)) for _ in range(d - 1)), 1)
    emax = _EXP[dtype]
    cores = []
    for k in range(d):
        size = ranks[k] * shape[k] * ranks[k + 1]
        offset = draw(st.integers(-emax, emax))
        mant = draw(st.lists(st.floats(-1, 1, allow_nan=False, allow_subnormal=False, width=32), min_size=size,
                             max_size=size))
        spread = draw(st.lists(st.integers(-24, 0), min_size=size, max_size=size))
        vals = np.ldexp(np.array(mant, np.float64), np.array(spread) + offset)
        cores.append(vals.astype(dtype).reshape(ranks[k], shape[k], ranks[k + 1]))
    return TTTensor(cores)


_settings = settings(max_examples=60, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _check_norm(x, dtype):
    entries = exact_entries(x.cores)
    true_log = exact_log_norm(entries)
    got_log = x.log_norm()
    if true_log == -math.inf:
        assert got_log == -math.inf and x.norm() == 0.0
        return
    # the QR sweep's round-off in the cores' precision, relative to the norm
    tol = 64 * ulp_rel(dtype)
    assert math.isfinite(got_log)
    assert abs(got_log - true_log) <= tol + 4 * ulp_rel(np.float64) * abs(true_log)
    norm = x.norm()
    if true_log > math.log(np.finfo(np.float64).max) + 1e-9:
        assert norm == math.inf
    elif true_log < math.log(np.finfo(np.float64).smallest_subnormal) - 1e-9:
        assert norm == 0.0
    else:
        assert norm == pytest.approx(exact_sqrt(sqnorm(entries)), rel=2 * tol, abs=1e-300)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@_settings
@given(data=st.data())
def test_property_norm_and_log_norm(dtype, data):
    x = data.draw(extreme_tt(dtype))
    _check_norm(x, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@_settings
@given(data=st.data())
def test_property_dot(dtype, data):
    a = data.draw(extreme_tt(dtype))
    b = data.draw(extreme_tt(dtype, shape=a.shape))
    exact = sum((p * q for p, q in zip(exact_entries(a.cores), exact_entries(b.cores), strict=True)),
                Fraction(0))
    sign, logabs = tt.log_dot(a, b)
    if exact == 0:
        # cancellation to exact zero may leave round-off; it must be tiny against |a||b|
        if logabs != -math.inf:
            assert logabs <= a.log_norm() + b.log_norm() + math.log(64 * ulp_rel(dtype))
        return
    scale = a.log_norm() + b.log_norm()            # Cauchy-Schwarz: round-off is relative to this
    true_log = flog(abs(exact))
    gap = scale - true_log                          # >= 0; large when the sum cancels
    tol = 64 * ulp_rel(dtype) * math.exp(min(gap, 50))
    if tol < 0.5:
        assert sign == (1.0 if exact > 0 else -1.0)
        assert abs(logabs - true_log) <= 2 * tol + 4 * ulp_rel(np.float64) * abs(true_log)
        value = tt.dot(a, b)
        if -700 < true_log < 700:
            assert value == pytest.approx(float(exact), rel=4 * tol, abs=1e-300)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("eps", [0.0, 0.3])
@_settings
@given(data=st.data())
def test_property_round_eps_bound(dtype, eps, data):
    a = data.draw(extreme_tt(dtype, max_r=3))
    b = tt.round(a, eps=eps)
    assert all(np.isfinite(c).all() for c in b.cores)
    ea, eb = exact_entries(a.cores), exact_entries(b.cores)
    na = sqnorm(ea)
    err = sqnorm([p - q for p, q in zip(ea, eb, strict=True)])
    slack = 64 * ulp_rel(dtype) * a.d
    assert err <= Fraction(eps + slack) ** 2 * na
    assert all(rb <= ra for ra, rb in zip(a.ranks, b.ranks, strict=True))


def _close_in_dtype(got, exact: Fraction, dtype, scale: Fraction, tol):
    """``got`` (a dtype scalar) against the exact value: within ``tol`` relative to ``scale``
    (the sum of absolute values, which bounds the round-off), or both beyond the range."""
    info = np.finfo(dtype)
    # at the edge of the range: rounding may legitimately give inf
    if abs(exact) > Fraction(float(info.max)) * (1 - tol) and not np.isfinite(got):
        return
    assert np.isfinite(got)
    assert abs(Fraction(float(got)) - exact) <= tol * scale + Fraction(float(info.smallest_subnormal))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@_settings
@given(data=st.data())
def test_property_full_sum_and_entries(dtype, data):
    x = data.draw(extreme_tt(dtype))
    entries = exact_entries(x.cores)
    mags = [abs(v) for v in exact_entries([np.abs(c) for c in x.cores])]
    tol = Fraction(64 * ulp_rel(dtype))
    full = x.full().reshape(-1)
    for got, exact, mag in zip(full, entries, mags, strict=True):
        _close_in_dtype(got, exact, dtype, mag, tol)
    idx = tuple(data.draw(st.integers(0, n - 1)) for n in x.shape)
    flat = int(np.ravel_multi_index(idx, x.shape))
    _close_in_dtype(x[idx], entries[flat], dtype, mags[flat], tol)
    _close_in_dtype(x.sum(), sum(entries, Fraction(0)), dtype, sum(mags, Fraction(0)), tol)


@st.composite
def extreme_dense(draw, dtype):
    d = draw(st.integers(1, 4))
    shape = tuple(draw(st.integers(1, 4)) for _ in range(d))
    size = math.prod(shape)
    info = np.finfo(dtype)
    # a common scale anywhere in the range, a spread of up to 2**30 (squares of the small
    # entries underflow next to the large ones), some zeros
    top = draw(st.integers(info.minexp + 32, info.maxexp - 2))
    mant = draw(st.lists(st.floats(-1, 1, allow_nan=False, allow_subnormal=False, width=32), min_size=size,
                         max_size=size))
    spread = draw(st.lists(st.integers(-30, 0), min_size=size, max_size=size))
    vals = np.ldexp(np.array(mant, np.float64), np.array(spread) + top)
    return vals.astype(dtype).reshape(shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.5])
@_settings
@given(data=st.data())
def test_property_from_dense_eps_bound(dtype, eps, data):
    a = data.draw(extreme_dense(dtype))
    t = TTTensor.from_dense(a, eps=eps)
    assert all(np.isfinite(c).all() for c in t.cores)
    ea = exact_dense(a)
    et = exact_entries(t.cores)
    err = sqnorm([p - q for p, q in zip(ea, et, strict=True)])
    slack = 64 * ulp_rel(dtype) * max(a.ndim, 1) * math.sqrt(a.size)
    assert err <= Fraction(eps + slack) ** 2 * sqnorm(ea)
    # TT-SVD is invariant under power-of-two scaling: two placements of the same data near
    # the top of the range (both outside the window where no scaling happens) are the same
    # numbers to the algorithm, hence give the same ranks
    amax = float(np.abs(a).max())
    if amax > 0:
        e_a = math.frexp(amax)[1]
        hi = np.finfo(dtype).maxexp
        up1 = np.ldexp(a, hi - 3 - e_a).astype(dtype)
        up2 = np.ldexp(a, hi - 9 - e_a).astype(dtype)
        assert TTTensor.from_dense(up1, eps=eps).ranks == TTTensor.from_dense(up2, eps=eps).ranks


def test_property_helpers_agree_with_numpy():
    # the oracle itself, on ordinary numbers
    x = tt.random_tensor((2, 3, 2), 2, rng=3)
    np.testing.assert_allclose([float(v) for v in exact_entries(x.cores)],
                               x.full().reshape(-1), rtol=1e-14)
    assert exact_log_norm(exact_entries(x.cores)) == pytest.approx(
        math.log(np.linalg.norm(x.full())), rel=1e-14)


# ---- gradients of dot and norm at extreme magnitudes ---------------------------------------------


def test_norm_grad_of_cores_that_overflow_only_in_products():
    values = (1e200, 1e200, 1e-200, 1e-200)
    y = TTTensor([np.full((1, 2, 1), v) for v in values])
    nrm, grads = norm_grad(y)
    assert nrm == pytest.approx(4.0, rel=1e-15)
    # ||y|| = prod_k ||G_k||, so d||y||/dG_k = G_k / ||G_k||**2 * ||y|| = 2 / v_k per entry
    for g, v in zip(grads, values, strict=True):
        np.testing.assert_allclose(g, np.full((1, 2, 1), 2.0 / v), rtol=1e-15)
    value, da, _db = dot_grad(y, y)
    assert value == pytest.approx(16.0, rel=1e-15)
    for g, v in zip(da, values, strict=True):
        np.testing.assert_allclose(g, np.full((1, 2, 1), 8.0 / v), rtol=1e-15)


@pytest.mark.parametrize("dtype, emax", [(np.float32, 60), (np.float64, 500)])
def test_grads_follow_a_rebalancing_of_the_cores(dtype, emax):
    """Scaling core k by 2**s_k with sum(s_k) = 0 leaves the tensor unchanged and divides the
    gradient of core k by 2**s_k, exactly; the scaled version overflows without rescaling."""
    rng = np.random.default_rng(5)
    x = tt.random_tensor((3, 4, 2, 3), 3, rng=rng, dtype=dtype)
    z = tt.random_tensor((3, 4, 2, 3), 2, rng=rng, dtype=dtype)
    shifts = [emax, emax, -emax, -emax]
    xs = TTTensor([np.ldexp(c, s).astype(dtype) for c, s in zip(x.cores, shifts, strict=True)])
    zs = TTTensor([np.ldexp(c, -s).astype(dtype) for c, s in zip(z.cores, shifts, strict=True)])
    n0, g0 = norm_grad(x)
    n1, g1 = norm_grad(xs)
    rtol = 50 * ulp_rel(dtype)
    assert n1 == pytest.approx(n0, rel=rtol)
    for a, b, s in zip(g0, g1, shifts, strict=True):
        np.testing.assert_allclose(np.ldexp(b.astype(np.float64), s), a, rtol=rtol,
                                   atol=rtol * np.abs(a).max())
    v0, da0, db0 = dot_grad(x, z)
    v1, da1, db1 = dot_grad(xs, zs)
    assert v1 == pytest.approx(v0, rel=rtol, abs=rtol * n0 * z.norm())
    for a, b, s in zip(da0, da1, shifts, strict=True):
        np.testing.assert_allclose(np.ldexp(b.astype(np.float64), s), a, rtol=rtol,
                                   atol=rtol * np.abs(a).max())
    for a, b, s in zip(db0, db1, shifts, strict=True):
        np.testing.assert_allclose(np.ldexp(b.astype(np.float64), -s), a, rtol=rtol,
                                   atol=rtol * np.abs(a).max())


# ---- the two sweeps behind norm and dot agree ------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128])
def test_fast_and_scaled_sweeps_agree(dtype):
    rng = np.random.default_rng(11)
    for d, r in [(1, 1), (3, 2), (8, 5), (1000, 2)]:
        x = tt.random_tensor((3,) * d, r, rng=rng, dtype=dtype)
        fast_v, fast_e = _cores.norm_parts(x.cores)          # cores in the window: fast sweep
        _, slow_e, slow_v = orthogonal_sweep(x.cores, "left")
        got = math.log(fast_v) + fast_e * math.log(2)
        want = math.log(slow_v) + slow_e * math.log(2)
        assert got == pytest.approx(want, rel=1e-5 if dtype == np.float32 else 1e-12)
        m_fast, e_fast = _cores._dot_sweep(x.cores, x.cores, scale_cores=False)
        m_slow, e_slow = _cores._dot_sweep(x.cores, x.cores, scale_cores=True)
        assert math.log(abs(m_fast)) + e_fast * math.log(2) == pytest.approx(
            math.log(abs(m_slow)) + e_slow * math.log(2), rel=1e-5 if dtype == np.float32 else 1e-12)
    # a cancelling difference: the QR sweep keeps its relative accuracy (no Gram matrix)
    a = tt.random_tensor((4,) * 6, 3, rng=rng)
    b = a + 1e-9 * tt.random_tensor((4,) * 6, 2, rng=rng)
    diff = b - a
    assert diff.norm() == pytest.approx(np.linalg.norm(b.full() - a.full()), rel=1e-5)

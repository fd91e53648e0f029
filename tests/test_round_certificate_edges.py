"""Edge cases of the Gram certificate of TT rounding (``round_cores(method='auto')``).

A certified bond keeps its core as it is.  The claims checked here: a certificate never
changes a rank (``'auto'`` gives the ranks of ``'qr'`` and ``'svd'``), the ``eps`` bound holds,
the result represents the same tensor, and nothing raises or warns where the QR path does
not.  Cases not covered by ``test_decomposition_paths.py``: complex data across the cut, per-bond
caps mixing binding and non-binding values, a padded TT-matrix (``ref_log_norm``), ``d = 2``,
bonds with ``r0 n == r1``, the zero tensor, NaN/Inf, a huge or infinite ``eps``, long complex
and single-precision trains, and a check of each certified bond against a dense SVD.
Nothing here measures time.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tensortrain as tt
from tensortrain import TTMatrix, TTTensor
from tensortrain import decompositions as D
from tensortrain.errors import TTError

DTYPES = (np.float64, np.float32, np.complex128, np.complex64)
METHODS = ("auto", "qr", "svd")


def _single(dtype):
    return np.finfo(dtype).eps > 1e-10


def _round(x, eps=0.0, caps=None, method="auto", ref=None):
    report = []
    cores = D.round_cores(list(x.cores), eps, caps, ref_log_norm=ref, method=method,
                          report=report)
    return TTTensor(cores), report


def _all_methods(x, eps=0.0, caps=None):
    return {m: _round(x, eps, caps, m) for m in METHODS}


def _unit(x):
    return x * (1.0 / x.norm())


# ---- ranks equal the QR path's, on random inputs ---------------------------------------------


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data())
def test_auto_ranks_equal_qr_and_eps_bound(data):
    d = data.draw(st.integers(2, 6), label="d")
    modes = tuple(data.draw(st.lists(st.integers(1, 4), min_size=d, max_size=d), label="modes"))
    dtype = data.draw(st.sampled_from(DTYPES), label="dtype")
    single = _single(dtype)
    kind = data.draw(st.sampled_from(["x+cy", "a+a", "a-a+cy"]), label="kind")
    a = tt.random_tensor(modes, data.draw(st.integers(1, 4)), rng=data.draw(st.integers(0, 9999)),
                         dtype=dtype)
    b = tt.random_tensor(modes, data.draw(st.integers(1, 4)), rng=data.draw(st.integers(0, 9999)),
                         dtype=dtype)
    c = 10.0 ** data.draw(st.floats(-7.0 if single else -13.0, 1.0), label="log10 c")
    x = {"x+cy": a + b * c, "a+a": a + a, "a-a+cy": a - a + b * c}[kind]
    scale = data.draw(st.sampled_from([1.0, 1e-30, 1e30] if single else [1.0, 1e-300, 1e300]))
    x = x * scale
    eps = data.draw(st.sampled_from([0.0, 1e-12, 1e-8, 1e-5, 1e-3, 0.1, 0.5]), label="eps")
    if single:
        eps = 0.0 if eps == 0 else max(eps, 1e-4)
    caps = None
    if data.draw(st.booleans(), label="caps"):
        caps = data.draw(st.lists(st.one_of(st.none(), st.integers(1, 6)), min_size=d - 1,
                                  max_size=d - 1), label="caps list")
    res = _all_methods(x, eps, caps)
    auto, rep = res["auto"]
    assert auto.ranks == res["qr"][0].ranks == res["svd"][0].ranks, (rep, res["qr"][1])
    assert len(rep) == d - 1
    assert all(np.isfinite(core).all() for core in auto.cores)
    norm = x.norm()
    # round-off of the representation of x itself (a - a) and of the difference norm
    slack = (3e-5 if single else 1e-12) * (norm + 2 * a.norm() * scale + c * b.norm() * scale)
    err = (auto - x).norm()
    if caps is None:
        assert err <= eps * norm + slack
    else:
        assert err <= (res["qr"][0] - x).norm() * 1.5 + slack
    for k, tag in enumerate(rep):                  # a certified bond keeps its rank
        if tag == "gram":
            assert auto.ranks[k + 1] == x.ranks[k + 1] or auto.ranks[k + 1] == res["qr"][0].ranks[k + 1]


# ---- complex data across the cut --------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.complex128, np.complex64])
def test_complex_sum_across_the_cut(dtype):
    """``x + c y`` with complex cores, ``c`` swept across ``delta``: the certificate (``G =
    C^H G C``, conjugated) keeps exactly the QR path's ranks on both sides of the cut and
    certifies the interior bonds far above it."""
    eps = 1e-3 if _single(dtype) else 1e-8
    x = _unit(tt.random_tensor((5,) * 6, 3, rng=31, dtype=dtype))
    y = _unit(tt.random_tensor((5,) * 6, 2, rng=32, dtype=dtype))
    seen_gram = False
    for log_c in np.linspace(math.log10(eps) - 3, math.log10(eps) + 3, 25):
        s = x + y * (1j * 10.0 ** log_c)
        res = _all_methods(s, eps)
        auto, rep = res["auto"]
        assert auto.ranks == res["qr"][0].ranks == res["svd"][0].ranks, (log_c, rep)
        assert (auto - s).norm() <= eps * s.norm() * (1 + 1e-6) + (1e-5 if _single(dtype) else 1e-13)
        seen_gram |= "gram" in rep
    s = x + y * 0.5j
    auto, rep = _round(s, eps)
    assert set(rep[1:-1]) == {"gram"} and auto.ranks[2:-2] == s.ranks[2:-2]
    assert seen_gram


# ---- per-bond caps ---------------------------------------------------------------------------


def test_per_bond_caps_mixing_binding_and_free_bonds():
    a = tt.random_tensor((4,) * 7, 3, rng=41)
    b = tt.random_tensor((4,) * 7, 2, rng=42)
    s = a + b * 0.3                                        # interior ranks 5
    caps = [None, 5, 2, 9, 5, 3]                           # free, equal, binding, above, equal, binding
    res = _all_methods(s, 1e-10, caps)
    auto, rep = res["auto"]
    assert auto.ranks == res["qr"][0].ranks == res["svd"][0].ranks == (1, 4, 5, 2, 5, 5, 3, 1)
    assert rep[2] != "gram" and rep[5] != "gram"           # a binding cap is never certified
    assert "gram" in rep                                    # the free bonds still are
    assert (auto - s).norm() == pytest.approx((res["qr"][0] - s).norm(), rel=1e-6)


# ---- padded TT-matrix: ref_log_norm ----------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
def test_padded_ttmatrix_round_certifies_with_logical_reference(dtype):
    """A 100 x 37 matrix pads its modes; ``W.round`` passes the logical norm as
    ``ref_log_norm`` while the round-off margin must use the padded norm."""
    rng = np.random.default_rng(51)
    i, j = np.indices((100, 37))
    m = 1.0 / (1.0 + i + j) + 1e-7 * rng.standard_normal((100, 37))
    if np.dtype(dtype).kind == "c":
        m = m * (1 + 2j)
    w = TTMatrix.from_dense(m.astype(dtype))
    assert w.is_padded
    w2 = w + w * 0.25
    dense = w2.full()
    ref = w2.log_norm()
    single = _single(dtype)
    for eps in (1e-1, 1e-3, 1e-6, 1e-9, 0.0):
        ranks = {}
        for method in METHODS:
            report = []
            cores = D.round_cores(list(w2._cores3()), eps, None, ref_log_norm=ref,
                                  method=method, report=report)
            r = w2._with_cores3(cores)
            ranks[method] = r.ranks
            err = np.linalg.norm(r.full() - dense)
            assert err <= (eps + (3e-6 if single else 1e-13)) * np.linalg.norm(dense)
        assert ranks["auto"] == ranks["qr"] == ranks["svd"]
        assert w2.round(eps).ranks == ranks["qr"]
    # random (incompressible) data: the interior bond is certified against the logical norm
    g = TTMatrix.from_dense(rng.standard_normal((100, 37)).astype(dtype))
    g2 = g + g * 0.5
    report = []
    D.round_cores(list(g2._cores3()), 1e-6, None, ref_log_norm=g2.log_norm(), report=report)
    assert report[-1] == "gram"
    np.testing.assert_allclose(g2.round(1e-6).full(), g2.full(),
                               atol=(1e-4 if single else 1e-12) * np.abs(g2.full()).max())


# ---- small and degenerate trains -------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES)
def test_d2_certified(dtype):
    a = tt.random_tensor((7, 9), 3, rng=61, dtype=dtype)
    b = tt.random_tensor((7, 9), 3, rng=62, dtype=dtype)
    s = a + b
    auto, rep = _round(s, 1e-3 if _single(dtype) else 1e-10)
    qr, rep_qr = _round(s, 1e-3 if _single(dtype) else 1e-10, method="qr")
    assert rep == ["gram"] and rep_qr == ["keep"]
    assert auto.ranks == qr.ranks == (1, 6, 1)
    tol = 1e-5 if _single(dtype) else 1e-13
    np.testing.assert_allclose(auto.full(), s.full(), atol=tol * np.abs(s.full()).max())


def test_square_bonds_r0n_equal_r1():
    """A full-rank ``(2,)^6`` tensor has ``r0 n == r1`` at its first bonds (the QR path takes
    an SVD there): certificates there keep the same ranks and the same tensor."""
    dense = np.random.default_rng(71).standard_normal((2,) * 6)
    x = TTTensor.from_dense(dense)
    assert x.ranks == (1, 2, 4, 8, 4, 2, 1)
    for eps in (0.0, 1e-12, 1e-3):
        res = _all_methods(x, eps)
        auto, rep = res["auto"]
        assert auto.ranks == res["qr"][0].ranks == res["svd"][0].ranks == x.ranks
        assert rep == ["gram"] * 5 and res["qr"][1][:3] == ["svd"] * 3
        np.testing.assert_allclose(auto.full(), dense, atol=1e-12)
    # a cut in the middle bond after certified square bonds
    res = _all_methods(x, 0.3)
    assert res["auto"][0].ranks == res["qr"][0].ranks == res["svd"][0].ranks
    assert (res["auto"][0] - x).norm() <= 0.3 * x.norm()


def test_zero_tensor_and_nonfinite_cores():
    z = tt.random_tensor((3,) * 5, 2, rng=81) * 0.0
    for method in METHODS:
        r, rep = _round(z, 1e-3, method=method)
        assert r.ranks == (1,) * 6 and r.norm() == 0.0 and "gram" not in rep
    x = tt.random_tensor((3,) * 5, 2, rng=82) + tt.random_tensor((3,) * 5, 2, rng=83)
    for bad in (np.nan, np.inf, -np.inf):
        cores = [c.copy() for c in x.cores]
        cores[2][0, 1, 0] = bad
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            with pytest.raises(TTError, match="NaN or Inf"):
                D.round_cores(cores, 1e-3, method="auto")


def test_caller_mutation_and_inputs_untouched_small_d():
    for d in (2, 3, 5):
        a = tt.random_tensor((3,) * d, 2, rng=90 + d)
        b = tt.random_tensor((3,) * d, 2, rng=95 + d)
        cores = [c.copy() for c in (a + b * 0.5).cores]
        snapshot = [c.copy() for c in cores]
        report = []
        out = D.round_cores(cores, 1e-10, report=report)
        assert "gram" in report
        assert all(np.array_equal(c, s) for c, s in zip(cores, snapshot, strict=True))
        kept = [c.copy() for c in out]
        for c in cores:
            c[...] = 7.0
        assert all(np.array_equal(c, s) for c, s in zip(out, kept, strict=True))


# ---- soundness against a dense SVD -----------------------------------------------------------


@pytest.mark.parametrize("dtype,eps", [(np.float32, 0.0), (np.float32, 0.05), (np.float64, 0.0),
                                       (np.float64, 1e-6), (np.complex64, 0.05)])
def test_certified_bonds_are_above_the_cut_in_a_dense_svd(dtype, eps):
    """Independent of the QR path: at every certified bond the singular values of the dense
    unfolding (in double precision) all exceed ``delta`` and the round-off level."""
    wide = np.complex128 if np.dtype(dtype).kind == "c" else np.float64
    modes = (3, 4, 3, 4, 3)
    d = len(modes)
    x = _unit(tt.random_tensor(modes, 3, rng=101, dtype=dtype))
    y = _unit(tt.random_tensor(modes, 2, rng=102, dtype=dtype))
    certified = 0
    for c in (1e-6, 1e-4, 1e-3, 0.01, 0.03, 0.1, 0.3, 1.0):
        s = x + y * c
        r, rep = _round(s, eps)
        full = s.astype(wide).full()
        norm = np.linalg.norm(full)
        delta = eps / math.sqrt(d - 1) * norm
        for k, tag in enumerate(rep):
            if tag != "gram":
                continue
            certified += 1
            sv = np.linalg.svd(full.reshape(math.prod(modes[:k + 1]), -1), compute_uv=False)
            kept = r.ranks[k + 1]
            assert kept <= sv.size
            smin = sv[kept - 1]
            shape = (s.ranks[k] * modes[k], s.ranks[k + 1])
            assert smin > delta
            assert smin > 8 * max(shape) * np.finfo(dtype).eps * sv[0]
    assert certified > 0


# ---- long trains -----------------------------------------------------------------------------


@pytest.mark.parametrize("dtype,d", [(np.complex64, 1200), (np.float32, 1500), (np.complex128, 1200)])
def test_long_train_single_and_complex(dtype, d):
    theta = np.random.default_rng(111).uniform(0, np.pi, d)
    phase = np.exp(1j * theta) if np.dtype(dtype).kind == "c" else np.ones(d)
    x = TTTensor([(p * np.array([np.cos(t), np.sin(t)])).reshape(1, 2, 1).astype(dtype)
                  for t, p in zip(theta, phase, strict=True)])
    y = TTTensor([np.array([-np.sin(t), np.cos(t)]).reshape(1, 2, 1).astype(dtype) for t in theta])
    s = x + y * 0.5
    eps = 1e-3 if _single(dtype) else 1e-10
    auto, rep = _round(s, eps)
    qr, _ = _round(s, eps, method="qr")
    assert auto.ranks == qr.ranks == s.ranks
    assert rep.count("gram") == d - 1
    assert auto.log_norm() == pytest.approx(s.log_norm(), abs=1e-5 if _single(dtype) else 1e-12)
    assert abs(tt.dot(auto, y) / tt.dot(y, y) - 0.5) < (1e-3 if _single(dtype) else 1e-10)


# ---- problems the review found (fixed) --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype,eps", [(np.float64, math.inf), (np.float64, 1e200),
                                       (np.float32, math.inf), (np.float32, 1e20)])
def test_huge_eps_does_not_warn(dtype, eps):
    x = tt.random_tensor((3,) * 4, 2, rng=121, dtype=dtype) + \
        tt.random_tensor((3,) * 4, 2, rng=122, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = x.round(eps)
    assert r.ranks == (1,) * 5


@pytest.mark.parametrize("eps", [math.inf, 1e200])
def test_huge_eps_result_matches_qr(eps):
    x = tt.random_tensor((3,) * 4, 2, rng=121) + tt.random_tensor((3,) * 4, 2, rng=122)
    auto, _ = _round(x, eps)
    qr, _ = _round(x, eps, method="qr")
    assert auto.ranks == qr.ranks == (1,) * 5


def test_all_certified_result_is_right_orthogonal_after_the_centre():
    a = tt.random_tensor((4,) * 6, 3, rng=131)
    b = tt.random_tensor((4,) * 6, 2, rng=132)
    s = (a + b) * 1e6
    r, rep = _round(s, 1e-10)
    assert rep[1:] == ["gram"] * 4                     # bond 0 is an SVD (r0 n < r1)
    for core in r.cores[2:]:                           # core 1 is the centre
        w = core.reshape(core.shape[0], -1)
        np.testing.assert_allclose(w @ w.T, np.eye(w.shape[0]), atol=1e-12)


def test_d1_round_does_not_share_the_callers_core():
    x = TTTensor([np.arange(5.0).reshape(1, 5, 1)])
    r = x.round(1e-3)
    x.cores[0][...] = -1.0                        # the caller overwrites its core afterwards
    np.testing.assert_array_equal(r.cores[0].ravel(), np.arange(5.0))

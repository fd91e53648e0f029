"""The norm's Gram sweep (``_cores.norm_parts``): accuracy against dense float64 and exact
products, tiny and huge magnitudes, d = 1000, the scaled and QR fallbacks, and which path runs."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import tensortrain as tt
from tensortrain import _cores
from tensortrain.decompositions import orthogonal_sweep
from tensortrain.tensor import TTTensor


def _dense_norm(x):
    """The Frobenius norm of the dense tensor contracted from the cores in double precision."""
    wide = np.complex128 if x.dtype.kind == "c" else np.float64
    return float(np.linalg.norm(TTTensor([c.astype(wide) for c in x.cores]).full().reshape(-1)))


def _count_qr(monkeypatch):
    calls = []

    def counting(cores, direction="left"):
        calls.append(direction)
        return orthogonal_sweep(cores, direction)

    monkeypatch.setattr(_cores, "orthogonal_sweep", counting)
    return calls


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
def test_gram_norm_matches_dense_and_dot(dtype, monkeypatch):
    calls = _count_qr(monkeypatch)
    rng = np.random.default_rng(3)
    shape, ranks = (3, 4, 2, 5, 3), (1, 3, 4, 4, 2, 1)
    cores = []
    for k, n in enumerate(shape):
        c = rng.standard_normal((ranks[k], n, ranks[k + 1]))
        if np.dtype(dtype).kind == "c":
            c = c + 1j * rng.standard_normal(c.shape)
        cores.append(c.astype(dtype))
    x = TTTensor(cores)
    want = _dense_norm(x)
    # float32 cores are swept in float64: the only error is that of the dense reference
    assert x.norm() == pytest.approx(want, rel=1e-14)
    dot_rel = 1e-6 if dtype == np.float32 else 1e-14       # dot sweeps float32 in float32
    assert x.norm() == pytest.approx(math.sqrt(abs(tt.dot(x, x))), rel=dot_rel)
    assert calls == []                                  # the Gram sweep, no QR


def test_norm_of_a_large_random_tt_takes_the_gram_path(monkeypatch):
    calls = _count_qr(monkeypatch)
    a = tt.random_tensor((8,) * 20, 30, rng=0)
    _, exp2, last = orthogonal_sweep(a._cores3(), "left")      # the QR sweep as reference
    assert a.norm() == pytest.approx(math.ldexp(last, exp2), rel=1e-13)
    assert calls == []


@pytest.mark.parametrize(("dtype", "exp"), [(np.float64, e) for e in (-1070, -700, -300, -3, 5,
                                                                        300, 700, 1100)]
                         + [(np.float32, e) for e in (-400, -150, -3, 5, 150, 400)])
def test_tiny_and_huge_norms_keep_full_relative_accuracy(dtype, exp):
    # rank-2 cores in the window times one power of two spread over all cores, so every
    # core stays representable; the norm is exactly 2**exp times that of the unscaled TT
    rng = np.random.default_rng(1)
    base = tt.random_tensor((3, 2, 4, 3), 2, rng=rng, dtype=dtype)
    want = base.norm()
    d = base.d
    shares = [exp // d + (1 if k < exp % d else 0) for k in range(d)]
    with np.errstate(under="raise", over="raise"):
        scaled = TTTensor([np.ldexp(c, s).astype(dtype) for c, s in zip(base.cores, shares,
                                                                        strict=True)])
    true_log = math.log(want) + exp * math.log(2.0)
    assert scaled.log_norm() == pytest.approx(true_log, rel=1e-15, abs=1e-13)
    got = scaled.norm()
    if true_log > math.log(np.finfo(np.float64).max):
        assert got == math.inf
    elif true_log < math.log(np.finfo(np.float64).tiny):      # subnormal or zero in float64
        assert got == pytest.approx(math.exp(true_log), rel=1e-3, abs=5e-324)
    else:
        assert got == pytest.approx(math.ldexp(want, exp), rel=1e-14)


def test_d_1000_product_tensor_and_random_tt():
    # rank 1: ||a|| is the product of the core norms, known exactly in log form
    rng = np.random.default_rng(7)
    vecs = [rng.uniform(0.1, 0.6, size=(1, 3, 1)) for _ in range(1000)]
    x = TTTensor(vecs)
    true_log = sum(math.log(np.linalg.norm(v)) for v in vecs)
    assert x.log_norm() == pytest.approx(true_log, rel=1e-13)
    assert x.norm() == 0.0 or x.norm() == pytest.approx(math.exp(true_log), rel=1e-10)
    # rank 3, d = 1000: against the (fully scaled) QR sweep
    y = tt.random_tensor((2,) * 1000, 3, rng=2)
    _, exp2, last = orthogonal_sweep(y._cores3(), "left")
    assert y.log_norm() == pytest.approx(exp2 * math.log(2.0) + math.log(last), rel=1e-13)


def test_cores_outside_the_window_take_the_scaled_sweep_without_warnings(monkeypatch):
    calls = _count_qr(monkeypatch)
    # one core at 2**400 and one at 2**-400: outside in_window's 2**+-256, squares would
    # overflow and underflow in an unscaled step
    x = TTTensor([np.full((1, 2, 1), 2.0 ** 400), np.full((1, 2, 1), 2.0 ** -400),
                  np.full((1, 2, 1), 3.0)])
    assert not _cores.in_window(x._cores3())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert x.norm() == pytest.approx(math.sqrt(8) * 3.0, rel=1e-15)
        inside = TTTensor([np.full((1, 2, 1), 2.0 ** 250), np.full((1, 2, 1), 2.0 ** 250),
                           np.full((1, 2, 1), 2.0 ** -500)])
        assert _cores.in_window(inside._cores3()) is False
        assert inside.norm() == pytest.approx(math.sqrt(8), rel=1e-15)
        edge = TTTensor([np.full((1, 2, 1), 2.0 ** 255) for _ in range(3)])
        assert _cores.in_window(edge._cores3())
        assert edge.norm() == pytest.approx(math.sqrt(8) * 2.0 ** 765, rel=1e-15)
    assert calls == []


def test_complete_cancellation_falls_back_to_the_qr_sweep(monkeypatch):
    calls = _count_qr(monkeypatch)
    a = tt.random_tensor((3, 4, 5), 3, rng=4)
    z = a - a
    assert z.norm() <= 1e-14 * a.norm()
    assert tt.zeros((3, 4)).norm() == 0.0
    assert len(calls) == 2
    nan = TTTensor([np.full((1, 2, 1), np.nan), np.ones((1, 2, 1))])
    assert math.isnan(nan.norm())


@pytest.mark.parametrize("scale", [1e-3, 1e-6, 1e-9])
def test_partial_cancellation_is_detected_and_taken_by_qr(scale, monkeypatch):
    # (a + s b) - a is s b exactly in TT form, but its entries are differences of terms
    # 1/s larger: a Gram sweep alone would lose about (1/s)**2 ulps, the QR sweep 1/s
    a = tt.random_tensor((4,) * 8, 6, rng=21)
    b = tt.random_tensor((4,) * 8, 6, rng=22)
    want = scale * b.norm()
    calls = _count_qr(monkeypatch)
    diff = (a + scale * b) - a
    worst = _cores._gram_sweep(diff._cores3(), np, scale_cores=False)[2]
    assert worst > _cores.GRAM_MAX_CANCELLATION[0]
    assert diff.norm() == pytest.approx(want, rel=max(1e-12, 1e-15 / scale))
    assert len(calls) == 1
    # the same sizes without cancellation stay on the Gram sweep
    assert (a + scale * b).norm() == pytest.approx(math.sqrt(tt.dot(a + scale * b,
                                                                    a + scale * b)), rel=1e-14)
    assert len(calls) == 1


def test_norm_of_float32_tt_with_entries_far_below_float32_range():
    # each entry is 2**-90 * 2**-90 = 2**-180: below float32's range, not the zero tensor
    x = TTTensor([np.full((1, 4, 1), 2.0 ** -90, np.float32) for _ in range(2)])
    assert x.norm() == pytest.approx(4 * 2.0 ** -180, rel=1e-15)


def test_norm_on_either_backend_matches_the_host(xp):
    # the device path keeps traces, exponents and cancellation ratios on the device and
    # brings them to the host once; same results as NumPy
    a = tt.random_tensor((4, 3, 5, 2, 3), 3, rng=11)
    b = tt.random_tensor((4, 3, 5, 2, 3), 3, rng=12)
    on = TTTensor([xp.asarray(c) for c in a.cores])
    assert on.norm() == pytest.approx(a.norm(), rel=1e-13)
    big = TTTensor([xp.asarray(np.ldexp(c, 300)) for c in a.cores])        # scaled sweep
    assert big.log_norm() == pytest.approx(a.log_norm() + 1500 * math.log(2.0), rel=1e-14)
    near = a + 1e-9 * b                                     # entries cancel: the QR sweep
    diff = TTTensor([xp.asarray(c) for c in (near - a).cores])
    assert diff.norm() == pytest.approx(1e-9 * b.norm(), rel=1e-6)


def test_dot_sweep_with_lazy_rescaling_at_d_1000_and_the_window_edges():
    # the running matrix is rescaled only when it drifts 2**16 from 1; d = 1000 and cores at
    # the edges of in_window's 2**+-256 must still neither overflow nor lose accuracy
    y = tt.random_tensor((2,) * 1000, 3, rng=2)
    sign, logabs = tt.log_dot(y, y)
    assert sign == 1.0
    assert logabs == pytest.approx(2 * y.log_norm(), rel=1e-13)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for e in (252, -254):            # largest entries 2**252..2**254 or 2**-254..2**-252
            x = TTTensor([np.full((1, 3, 1), 2.0 ** e) * (k + 1) for k in range(4)])
            # <x, x> = 3**4 * (1 2 3 4)**2 * 2**(8 e): beyond float64 itself, so in logs
            want = math.log(3.0 ** 4 * 24.0 ** 2) + 8 * e * math.log(2.0)
            assert _cores.in_window(x._cores3())
            assert tt.log_dot(x, x)[1] == pytest.approx(want, rel=1e-14)

"""Losses: values against direct float64 formulas, gradients against finite differences,
stability for huge logits, and validation."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import central_diff, to_numpy

from tensortrain.errors import ShapeError, TTError
from tensortrain.nn.losses import accuracy, mse, softmax_cross_entropy


def _reference_ce(logits, labels):
    logits = np.asarray(logits, np.float64)
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return -np.mean(np.log(p[np.arange(len(labels)), labels]))


def _case(xp, batch=6, classes=5, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((batch, classes)) * 2
    labels = rng.integers(0, classes, batch)
    return xp.asarray(logits.astype(dtype)), xp.asarray(labels), logits, labels


def test_cross_entropy_matches_direct_formula(xp):
    logits, labels, lh, yh = _case(xp)
    loss, d = softmax_cross_entropy(logits, labels)
    assert isinstance(loss, type(logits)) and loss.ndim == 0
    assert loss.dtype == np.float64
    assert float(loss) == pytest.approx(_reference_ce(lh, yh), rel=1e-12)
    p = np.exp(lh) / np.exp(lh).sum(axis=1, keepdims=True)
    onehot = np.eye(lh.shape[1])[yh]
    np.testing.assert_allclose(to_numpy(d), (p - onehot) / len(yh), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(to_numpy(d).sum(axis=1), 0, atol=1e-15)


def test_cross_entropy_gradient_finite_differences(xp):
    logits, labels, lh, _yh = _case(xp, batch=4, classes=3, seed=1)
    _, d = softmax_cross_entropy(logits, labels)
    point = lh.copy()
    num = central_diff(lambda: softmax_cross_entropy(xp.asarray(point), labels)[0], point, h=1e-6)
    np.testing.assert_allclose(to_numpy(d), num, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_is_stable_for_huge_logits(xp, dtype):
    logits = xp.asarray(np.array([[1e4, 0.0, -1e4], [1e4, 1e4, -1e4], [-1e4, -1e4, -1e4]],
                                 dtype))
    labels = xp.asarray(np.array([0, 1, 2]))
    loss, d = softmax_cross_entropy(logits, labels)
    assert loss.dtype == dtype
    # row 0: log-prob 0; row 1: log(2); row 2: log(3)
    assert float(loss) == pytest.approx((0 + np.log(2) + np.log(3)) / 3, rel=1e-5)
    assert np.isfinite(to_numpy(d)).all()
    loss, _ = softmax_cross_entropy(logits, xp.asarray(np.array([1, 2, 0])))
    assert float(loss) == pytest.approx((1e4 + 2e4 + np.log(2) + np.log(3)) / 3, rel=1e-6)


def test_cross_entropy_float32(xp):
    logits, labels, lh, yh = _case(xp, dtype=np.float32)
    loss, d = softmax_cross_entropy(logits, labels)
    assert loss.dtype == np.float32 and d.dtype == np.float32
    assert float(loss) == pytest.approx(_reference_ce(lh.astype(np.float32), yh), rel=1e-5)


def test_cross_entropy_validation():
    logits = np.zeros((3, 4))
    with pytest.raises(TTError, match=r"labels must be class indices in \[0, 4\), got values "
                                      r"in \[0, 4\]"):
        softmax_cross_entropy(logits, np.array([0, 1, 4]))
    with pytest.raises(TTError, match=r"got values in \[-1, 2\]"):
        softmax_cross_entropy(logits, np.array([-1, 1, 2]))
    with pytest.raises(TypeError, match="labels must be integer class indices, got dtype float64"):
        softmax_cross_entropy(logits, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ShapeError, match=r"labels must have shape \(3,\) to match the logits, "
                                         r"got \(2,\)"):
        softmax_cross_entropy(logits, np.array([0, 1]))
    with pytest.raises(ShapeError, match=r"logits must have shape \(batch, classes\), got \(4,\)"):
        softmax_cross_entropy(np.zeros(4), np.array([0]))
    with pytest.raises(ShapeError, match="at least one sample"):
        softmax_cross_entropy(np.zeros((0, 4)), np.zeros(0, np.int64))
    with pytest.raises(TypeError, match="expects floating-point inputs, got dtype int64"):
        softmax_cross_entropy(np.zeros((3, 4), np.int64), np.array([0, 1, 2]))
    with pytest.raises(TypeError, match="labels must be a NumPy or CuPy array"):
        softmax_cross_entropy(logits, [0, 1, 2])


def test_mse_value_and_gradient(xp):
    rng = np.random.default_rng(2)
    ph, th = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    loss, d = mse(xp.asarray(ph), xp.asarray(th))
    assert isinstance(loss, type(xp.asarray(ph))) and loss.ndim == 0
    assert float(loss) == pytest.approx(np.mean((ph - th) ** 2), rel=1e-12)
    pc = ph.copy()
    num = central_diff(lambda: float(mse(xp.asarray(pc), xp.asarray(th))[0]), pc, h=1e-6)
    np.testing.assert_allclose(to_numpy(d), num, rtol=1e-6, atol=1e-9)


def test_mse_large_values_and_dtypes(xp):
    p = xp.asarray(np.full((2, 3), 1e4, np.float32))
    t = xp.asarray(np.zeros((2, 3), np.float32))
    loss, d = mse(p, t)
    assert loss.dtype == np.float32 and d.dtype == np.float32
    assert float(loss) == pytest.approx(1e8)
    assert np.isfinite(to_numpy(d)).all()
    loss, _ = mse(p, xp.asarray(np.zeros((2, 3), np.int64)))   # integer targets are fine
    assert float(loss) == pytest.approx(1e8)


def test_mse_validation():
    with pytest.raises(ShapeError, match=r"pred has shape \(2, 3\) but target has shape \(3, 2\)"):
        mse(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(TypeError, match="expects floating-point inputs"):
        mse(np.zeros((2, 3), np.int32), np.zeros((2, 3)))
    with pytest.raises(TypeError, match="target must be a NumPy or CuPy array"):
        mse(np.zeros(2), [0.0, 0.0])
    with pytest.raises(ShapeError, match="pred is empty"):
        mse(np.zeros(0), np.zeros(0))


def test_accuracy(xp):
    logits = xp.asarray(np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]]))
    labels = xp.asarray(np.array([1, 0, 0, 0]))
    acc = accuracy(logits, labels)
    assert acc.ndim == 0 and isinstance(acc, type(logits))
    assert float(acc) == pytest.approx(0.75)
    with pytest.raises(ShapeError, match=r"labels must have shape \(4,\)"):
        accuracy(logits, labels[:2])

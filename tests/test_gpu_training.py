"""GPU-only checks of training: no host round-trip per step, and NumPy/CuPy agreement."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from _helpers import HAS_CUPY, to_numpy

from tensortrain import nn

pytestmark = pytest.mark.gpu


def _net(xp, dtype):
    rng = np.random.default_rng(0)
    return nn.Sequential(
        nn.TTLinear(64, 64, 4, in_modes=(4, 4, 4), out_modes=(4, 4, 4), dtype=dtype, xp=xp,
                    rng=rng),
        nn.BatchNorm1d(64, dtype=dtype, xp=xp),
        nn.ReLU(),
        nn.Dropout(0.1, rng=1),
        nn.Linear(64, 10, dtype=dtype, xp=xp, rng=rng),
    )


def _step(model, opt, x, y):
    opt.zero_grad()
    logits = model.forward(x)
    loss, dlogits = nn.softmax_cross_entropy(logits, y)
    model.backward(dlogits)
    opt.step()
    return loss


@pytest.fixture
def cupy():
    if not HAS_CUPY:
        pytest.skip("CuPy with a CUDA device is not available")
    return importlib.import_module("cupy")


def test_training_step_does_not_synchronize(cupy):
    cupyx = importlib.import_module("cupyx")

    model = _net(cupy, np.float32)
    opt = nn.Adam(model.parameters(), lr=1e-3, max_grad_norm=1.0)
    rng = np.random.default_rng(2)
    x = cupy.asarray(rng.standard_normal((32, 64)).astype(np.float32))
    y = cupy.asarray(rng.integers(0, 10, 32))
    _step(model, opt, x, y)                 # warm-up: plans, kernels, optimizer state
    cupy.cuda.Device().synchronize()
    with cupyx.allow_synchronize(False):    # raises on any device-to-host synchronization
        for _ in range(3):
            loss = _step(model, opt, x, y)
    assert np.isfinite(float(loss))


def test_numpy_and_cupy_training_agree(cupy):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((16, 64))
    y = rng.integers(0, 10, 16)
    losses = {}
    for name, xp in (("numpy", np), ("cupy", cupy)):
        model = _net(xp, np.float64)
        model.layers[3].p = 0.0                 # dropout masks differ between backends
        opt = nn.SGD(model.parameters(), lr=0.1, momentum=0.9)
        xs, ys = xp.asarray(x), xp.asarray(y)
        losses[name] = [float(to_numpy(_step(model, opt, xs, ys))) for _ in range(5)]
    np.testing.assert_allclose(losses["cupy"], losses["numpy"], rtol=1e-9)

"""Shared fixtures: every test that takes ``xp`` runs on NumPy and, where CuPy and a CUDA
device exist, on CuPy (marked ``gpu``; skipped cleanly elsewhere)."""

from __future__ import annotations

import numpy as np
import pytest


def _cupy_available():
    try:
        import cupy  # noqa: PLC0415

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # ImportError, or CUDA driver/runtime errors
        return False


HAS_CUPY = _cupy_available()


@pytest.fixture(
    params=[
        pytest.param("numpy", id="numpy"),
        pytest.param("cupy", id="cupy", marks=pytest.mark.gpu),
    ]
)
def xp(request):
    """The array module under test."""
    if request.param == "cupy":
        if not HAS_CUPY:
            pytest.skip("CuPy with a CUDA device is not available")
        import cupy  # noqa: PLC0415

        return cupy
    return np


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def to_numpy(a):
    """Host copy of a NumPy or CuPy array (or scalar)."""
    if type(a).__module__.split(".")[0] == "cupy":
        return a.get()
    return np.asarray(a)


# tolerances by dtype: (rtol, atol)
TOL = {
    np.dtype(np.float32): 2e-4,
    np.dtype(np.float64): 1e-10,
    np.dtype(np.complex64): 2e-4,
    np.dtype(np.complex128): 1e-10,
}


def host_random(rng, shape, dtype=np.float64):
    """Gaussian data of ``dtype`` made on the host (complex: independent real and imaginary)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        a = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    else:
        a = rng.standard_normal(shape)
    return a.astype(dtype)


def rel_err(x, y):
    """``||x - y||_F / ||y||_F`` (absolute when ``y`` is zero)."""
    x, y = np.asarray(x), np.asarray(y)
    ny = np.linalg.norm(y.ravel())
    return np.linalg.norm((x - y).ravel()) / (ny if ny > 0 else 1.0)

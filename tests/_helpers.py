"""Shared test helpers: host copies, per-dtype tolerances, seeded random data and central
finite differences.  Import them as ``from _helpers import ...`` (``tests`` is on the pytest
``pythonpath``); fixtures stay in ``conftest.py``."""

from __future__ import annotations

import importlib

import numpy as np

import tensortrain as tt


def _cupy_available():
    try:
        cupy = importlib.import_module("cupy")
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # ImportError, or CUDA driver/runtime errors
        return False


HAS_CUPY = _cupy_available()


def to_numpy(a):
    """Host copy of a NumPy or CuPy array (or scalar)."""
    if type(a).__module__.split(".")[0] == "cupy":
        return a.get()
    return np.asarray(a)


# ---- tolerances ---------------------------------------------------------------------------------
# relative tolerances by dtype, a few units of round-off of a short chain of products
TOL = {
    np.dtype(np.float32): 2e-4,
    np.dtype(np.float64): 1e-10,
    np.dtype(np.complex64): 2e-4,
    np.dtype(np.complex128): 1e-10,
}


def tol(dtype):
    """The relative tolerance of ``dtype`` (see :data:`TOL`)."""
    return TOL[np.dtype(dtype)]


def rel_err(x, y):
    """``||x - y||_F / ||y||_F`` (absolute when ``y`` is zero)."""
    x, y = np.asarray(x), np.asarray(y)
    ny = np.linalg.norm(y.ravel())
    return np.linalg.norm((x - y).ravel()) / (ny if ny > 0 else 1.0)


def assert_close(x, y, dtype, scale=10.0):
    """Relative Frobenius closeness within ``scale * tol(dtype)`` (host or device arrays)."""
    x, y = to_numpy(x), to_numpy(y)
    assert x.shape == y.shape, (x.shape, y.shape)
    err = rel_err(x, y)
    assert err <= scale * tol(dtype), f"relative error {err:.3e} > {scale * tol(dtype):.1e}"


# ---- random data --------------------------------------------------------------------------------
def host_random(rng, shape, dtype=np.float64):
    """Gaussian data of ``dtype`` made on the host (complex: independent real and imaginary)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        a = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    else:
        a = rng.standard_normal(shape)
    return a.astype(dtype)


def random_tt(modes, ranks, dtype=np.float64, seed=0, xp=None):
    """A seeded :func:`tensortrain.random_tensor` (drawn on the host, moved to ``xp``)."""
    return tt.random_tensor(modes, ranks, rng=np.random.default_rng(seed), dtype=dtype, xp=xp)


# ---- finite differences -------------------------------------------------------------------------
def central_diff(loss, a, h=1e-6):
    """Central finite differences ``(L(a + h e_i) - L(a - h e_i)) / 2h`` of the scalar
    ``loss()`` in every entry of the real array ``a`` (NumPy or CuPy).

    ``loss`` takes no arguments and reads ``a``, which is perturbed in place, one entry at a
    time, and restored exactly. Returns a float64 host array of ``a``'s shape.
    """
    grad = np.zeros(a.shape)
    for idx in np.ndindex(a.shape):
        old = a[idx].item()
        a[idx] = old + h
        lp = float(loss())
        a[idx] = old - h
        lm = float(loss())
        a[idx] = old
        grad[idx] = (lp - lm) / (2 * h)
    return grad

"""Backend handling: no cupy import, backend from the arrays, NumPy and CuPy agree."""

from __future__ import annotations

import importlib
import subprocess
import sys

import numpy as np
import pytest
from _helpers import HAS_CUPY, to_numpy

import tensortrain as tt
from tensortrain import _backend
from tensortrain._backend import get_xp, resolve_xp


def test_import_does_not_import_cupy():
    code = ("import sys, numpy as np, tensortrain as tt\n"
            "w = tt.random_matrix((2, 3), (3, 2), 2, rng=0)\n"
            "y = w @ np.ones(6); w.round(1e-3); tt.save\n"
            "print('cupy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_package_does_not_need_opt_einsum():
    """opt_einsum is a benchmark extra, not a dependency: importing every module of the
    package and running the planner must not load it."""
    code = ("import sys, pkgutil, importlib, numpy as np, tensortrain as tt\n"
            "for m in pkgutil.walk_packages(tt.__path__, 'tensortrain.'):\n"
            "    if m.name != 'tensortrain.__main__':\n"
            "        importlib.import_module(m.name)\n"
            "w = tt.random_matrix((2, 3), (3, 2), 2, rng=0)\n"
            "y = np.ones((4, 6)) @ w.T; w.matmul_plan(4)\n"
            "print('opt_einsum' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_get_xp_from_arrays():
    assert get_xp(np.ones(2), 3.0, None) is np
    assert get_xp() is np


def test_resolve_xp_names():
    assert resolve_xp(None) is np
    assert resolve_xp("numpy") is np
    assert resolve_xp(np) is np
    with pytest.raises(ValueError, match="unknown backend 'tpu'"):
        resolve_xp("tpu")
    with pytest.raises(TypeError, match="xp must be None"):
        resolve_xp(3)


@pytest.mark.skipif(HAS_CUPY, reason="checks the message shown without CuPy")
def test_cupy_requested_without_cupy():
    try:
        importlib.import_module("cupy")
    except ImportError:
        with pytest.raises(ImportError, match="CuPy is not installed"):
            resolve_xp("cupy")
    else:  # cupy importable but no device: nothing to check here
        pytest.skip("cupy is importable on this machine")


def test_backend_property(xp):
    a = tt.random_tensor((2, 3, 4), 2, rng=0, xp=xp)
    assert a.backend == xp.__name__.split(".")[0]
    assert a.xp is xp
    assert tt.TTTensor.from_dense(xp.asarray(np.ones((2, 2)))).backend == a.backend


@pytest.mark.gpu
def test_numpy_and_cupy_agree():
    if not HAS_CUPY:
        pytest.skip("CuPy with a CUDA device is not available")
    cupy = importlib.import_module("cupy")

    rng = np.random.default_rng(5)
    a_np = rng.standard_normal((6, 5, 4, 3))
    A_np = rng.standard_normal((997, 130))
    x_np = rng.standard_normal((130, 7))
    t_np = tt.TTTensor.from_dense(a_np, eps=1e-3)
    t_cp = tt.TTTensor.from_dense(cupy.asarray(a_np), eps=1e-3)
    assert t_np.ranks == t_cp.ranks
    np.testing.assert_allclose(to_numpy(t_cp.full()), t_np.full(), rtol=1e-9, atol=1e-9)
    W_np = tt.TTMatrix.from_dense(A_np, max_rank=6)
    W_cp = W_np.to("cupy")
    assert W_cp.backend == "cupy" and W_cp.to("numpy").backend == "numpy"
    np.testing.assert_allclose(to_numpy(W_cp @ cupy.asarray(x_np)), W_np @ x_np, rtol=1e-9,
                               atol=1e-9)
    np.testing.assert_allclose(W_cp.norm(), W_np.norm(), rtol=1e-10)
    np.testing.assert_allclose(tt.dot(W_cp, W_cp), tt.dot(W_np, W_np), rtol=1e-10)
    r_np, r_cp = (t_np + t_np).round(1e-8), (t_cp + t_cp).round(1e-8)
    assert r_np.ranks == r_cp.ranks
    np.testing.assert_allclose(to_numpy(r_cp.full()), r_np.full(), rtol=1e-9, atol=1e-9)


@pytest.mark.gpu
def test_mixed_backends_raise():
    if not HAS_CUPY:
        pytest.skip("CuPy with a CUDA device is not available")
    cupy = importlib.import_module("cupy")

    w = tt.random_matrix((2, 3), (3, 2), 2, rng=0)
    with pytest.raises(TypeError, match="different backends"):
        w @ cupy.ones(6)
    with pytest.raises(TypeError, match="different backends"):
        w + w.to("cupy")
    with pytest.raises(TypeError, match="different backends"):
        tt.dot(w, w.to("cupy"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex64, np.complex128])
@pytest.mark.parametrize("shape", [(1, 1), (4, 9), (9, 4), (6, 6), (70, 30)])
def test_direct_svd_matches_scipy(dtype, shape):
    """The LAPACK-direct thin SVD (workspace cached per shape) against ``scipy.linalg.svd``:
    same singular values, a reconstruction to round-off, orthonormal factors, the input
    untouched, and twice in a row (the cached call)."""
    import scipy.linalg  # noqa: PLC0415

    rng = np.random.default_rng(3)
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    a = a.astype(dtype)
    keep = a.copy()
    tol = 50 * np.finfo(dtype).eps * max(shape)
    ref = scipy.linalg.svd(a, full_matrices=False, compute_uv=False)
    for _ in range(2):
        for driver in ("gesdd", "gesvd"):
            u, s, vh = _backend._direct_svd(a, driver)
            assert u.dtype == a.dtype and vh.dtype == a.dtype and s.dtype == ref.dtype
            np.testing.assert_allclose(s, ref, rtol=tol, atol=tol * ref[0])
            np.testing.assert_allclose((u * s) @ vh, a, atol=tol * ref[0])
            k = min(shape)
            np.testing.assert_allclose(u.conj().T @ u, np.eye(k), atol=tol)
            np.testing.assert_allclose(vh @ vh.conj().T, np.eye(k), atol=tol)
            s_only = _backend._direct_svd(a, driver, compute_uv=False)
            np.testing.assert_allclose(s_only, ref, rtol=tol, atol=tol * ref[0])
    np.testing.assert_array_equal(a, keep)


def test_svdvals_falls_back_to_gesvd(monkeypatch):
    real = _backend._direct_svd
    calls = []

    def flaky(a, driver, compute_uv=True):
        calls.append(driver)
        if driver == "gesdd":
            raise np.linalg.LinAlgError("SVD (gesdd) did not converge")
        return real(a, driver, compute_uv)

    monkeypatch.setattr(_backend, "_direct_svd", flaky)
    a = np.random.default_rng(4).standard_normal((6, 5))
    np.testing.assert_allclose(_backend.svdvals(a), np.linalg.svd(a, compute_uv=False),
                               rtol=1e-13)
    assert calls == ["gesdd", "gesvd"]


def test_direct_svd_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(_backend, "_SVD_CALLS_MAX", 5)
    _backend._SVD_CALLS.clear()
    rng = np.random.default_rng(6)
    for m in range(1, 13):
        a = rng.standard_normal((m, 3))
        u, s, vh = _backend._direct_svd(a, "gesdd")
        np.testing.assert_allclose((u * s) @ vh, a, atol=1e-12)
        assert len(_backend._SVD_CALLS) <= 5

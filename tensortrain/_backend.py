"""Array-backend resolution: the only module that names CuPy.

The backend of every operation is decided from the arrays themselves (``type(x).__module__``),
never from global state.  CuPy is imported only when a CuPy array is already present, so
``import tensortrain`` never imports it.
"""

from __future__ import annotations

import sys
import types
import warnings

import numpy as np

from .errors import BackendError, TTError

__all__ = ["get_xp", "backend_name", "resolve_xp", "to_host", "svd", "qr", "wide_r_factor", "is_array"]


def _is_cupy_array(x) -> bool:
    return type(x).__module__.split(".")[0] == "cupy"


def is_array(x) -> bool:
    """True for a NumPy or CuPy ndarray."""
    return isinstance(x, np.ndarray) or _is_cupy_array(x)


def get_xp(*arrays):
    """Return the array module (``numpy`` or ``cupy``) that owns ``arrays``.

    Non-array arguments (Python scalars, ``None``) are ignored.  Mixing NumPy and CuPy arrays
    raises :class:`~tensortrain.errors.BackendError` (a ``TypeError``).
    """
    found = None
    for a in arrays:
        if type(a) is np.ndarray:  # the common case first: no module-name lookup
            if found is None:
                found = "numpy"
            elif found != "numpy":
                _mixed()
            continue
        if _is_cupy_array(a):
            name = "cupy"
        elif isinstance(a, np.ndarray):  # NumPy scalars (np.generic) act on any backend
            name = "numpy"
        else:
            continue
        if found is None:
            found = name
        elif found != name:
            _mixed()
    if found == "cupy":
        return sys.modules["cupy"]
    return np


def _mixed():
    raise BackendError(
        "operands live on different backends (numpy and cupy); move one of them "
        "first, e.g. with .to('cupy') / .to('numpy') on TT objects or "
        "cupy.asarray / cupy.asnumpy on arrays"
    )


def backend_name(xp) -> str:
    return xp.__name__.split(".")[0]


def resolve_xp(xp):
    """Turn ``None``, ``'numpy'``, ``'cupy'`` or a module into an array module."""
    if xp is None:
        return np
    if isinstance(xp, str):
        name = xp.lower()
        if name in ("numpy", "np", "cpu"):
            return np
        if name in ("cupy", "cp", "gpu", "cuda"):
            try:
                import cupy  # noqa: PLC0415  (the one deliberate cupy import)
            except ImportError as exc:  # pragma: no cover - depends on the machine
                raise ImportError(
                    "xp='cupy' was requested but CuPy is not installed; install the "
                    "'cuda12' or 'cuda13' extra of tensortrain"
                ) from exc
            return cupy
        raise TTError(f"unknown backend {xp!r}; expected 'numpy', 'cupy' or a module")
    if isinstance(xp, types.ModuleType) and backend_name(xp) in ("numpy", "cupy"):
        return sys.modules[backend_name(xp)]
    raise TypeError(f"xp must be None, 'numpy', 'cupy' or the numpy/cupy module, got {xp!r}")


def to_host(a):
    """Copy an array to a NumPy array on the host (no-op for NumPy)."""
    if _is_cupy_array(a):
        return a.get()
    return np.asarray(a)


def asarray(a, xp):
    """Move or convert ``a`` to backend ``xp``."""
    if backend_name(xp) == "numpy":
        return to_host(a)
    return xp.asarray(a)


def svd(a):
    """Thin SVD ``a = u @ diag(s) @ vh`` with a fallback driver.

    NumPy arrays use LAPACK ``gesdd`` through SciPy and fall back to the slower but more
    robust ``gesvd`` when ``gesdd`` does not converge.  CuPy arrays use cuSOLVER and fall back
    to the host ``gesvd`` path when that fails.
    """
    if _is_cupy_array(a):
        xp = sys.modules["cupy"]
        try:
            return xp.linalg.svd(a, full_matrices=False)
        except np.linalg.LinAlgError:  # pragma: no cover - needs a pathological GPU input
            warnings.warn("cuSOLVER SVD did not converge; retrying on the host with gesvd",
                          RuntimeWarning, stacklevel=3)
            u, s, vh = _host_svd(a.get(), "gesvd")
            return xp.asarray(u), xp.asarray(s), xp.asarray(vh)
    return _host_svd(a, "gesdd")


def _host_svd(a, driver):
    import scipy.linalg  # noqa: PLC0415  (scipy import kept off the import path of the package)

    try:
        return scipy.linalg.svd(a, full_matrices=False, check_finite=False, lapack_driver=driver)
    except np.linalg.LinAlgError:
        if driver == "gesvd":
            raise
        warnings.warn("LAPACK gesdd did not converge; falling back to the gesvd driver",
                      RuntimeWarning, stacklevel=4)
        return scipy.linalg.svd(a, full_matrices=False, check_finite=False, lapack_driver="gesvd")


def wide_r_factor(a, chunk_rows=16384):
    """Upper-triangular ``R`` (``p x p``) with ``a^H = Q R`` for a wide ``a`` of shape ``(p, q)``.

    ``Q`` is never formed.  On NumPy the tall ``a^H`` is split into row blocks whose QR
    factorizations run in cache (a TSQR tree of depth one), several times faster than one
    LAPACK ``geqrf`` on a very thin matrix while just as stable.
    """
    p, q = a.shape
    if _is_cupy_array(a):
        xp = sys.modules["cupy"]
        return xp.linalg.qr(xp.conj(a).T, mode="r")[:p]
    import scipy.linalg  # noqa: PLC0415

    ah = np.conj(a).T if np.iscomplexobj(a) else a.T
    chunk = max(chunk_rows, 8 * p)
    if q <= chunk:
        return scipy.linalg.qr(ah, mode="r", check_finite=False)[0][:p]
    blocks = [scipy.linalg.qr(ah[s:s + chunk], mode="r", check_finite=False)[0][:p]
              for s in range(0, q, chunk)]
    return scipy.linalg.qr(np.concatenate(blocks, axis=0), mode="r", check_finite=False)[0][:p]


def qr(a):
    """Reduced QR decomposition on either backend."""
    xp = get_xp(a)
    return xp.linalg.qr(a, mode="reduced")

"""Array-backend resolution, and the backend-specific linear algebra.

The backend of every operation is decided from the arrays themselves (``type(x).__module__``),
never from global state: :func:`get_xp` returns ``numpy`` or the already imported ``cupy``
module, and the rest of the package calls array functions through it.  CuPy is imported
only when a CuPy array is already present, so ``import tensortrain`` never imports it.  Two
modules import from CuPy: this one, and :mod:`tensortrain.interop`, whose
``as_linear_operator`` imports ``cupyx.scipy.sparse.linalg`` for a TT-matrix on CuPy (other
modules refer to it only by the name ``'cupy'``).
"""

from __future__ import annotations

import functools
import math
import sys
import types
import warnings

import numpy as np

from .errors import BackendError, TTError

__all__ = ["get_xp", "backend_name", "resolve_xp", "to_host", "svd", "svdvals", "qr",
           "wide_r_factor", "gram", "eigh", "pivoted_cholesky", "is_positive_definite", "matmul",
           "frobenius_norm", "is_array"]


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
    robust ``gesvd`` when ``gesdd`` does not converge.  A skinny matrix (one side at least
    twice the other, the short side at most ``_SKINNY_MAX``) is first reduced by :func:`qr`
    (``a = Q R``, or ``a^H = Q R`` when wide) and only the small square ``R`` goes to
    ``gesdd``: LAPACK's own reduction inside ``gesdd`` uses the unblocked ``geqrf`` panel,
    which is several times slower on such shapes (timings: docs/performance.md).  CuPy
    arrays use cuSOLVER and fall back to the host ``gesvd`` path when that fails.
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
    m, n = a.shape
    if 0 < n <= _SKINNY_MAX and m >= 2 * n:
        q, r = qr(a)
        u, s, vh = _host_svd(r, "gesdd")
        return matmul(q, u), s, vh
    if 0 < m <= _SKINNY_MAX and n >= 2 * m:
        q, r = qr(_conj_t(a))          # a = r^H q^H
        u, s, vh = _host_svd(_conj_t(r), "gesdd")
        return u, s, _conj_t(matmul(q, _conj_t(vh)))
    return _host_svd(a, "gesdd")


def svdvals(a):
    """Singular values of ``a`` (descending), without the singular vectors.

    Skinny matrices are reduced by :func:`qr` first, as in :func:`svd`.
    """
    if _is_cupy_array(a):
        xp = sys.modules["cupy"]
        return xp.linalg.svd(a, compute_uv=False)
    m, n = a.shape
    if 0 < min(m, n) <= _SKINNY_MAX and max(m, n) >= 2 * min(m, n):
        a = qr(a if m >= n else _conj_t(a))[1]
    try:
        return _lapack_svd(a, "gesdd", compute_uv=False)
    except np.linalg.LinAlgError:
        return _lapack_svd(a, "gesvd", compute_uv=False)


#: Short side up to which :func:`qr` uses the recursive blocked ``geqrt`` (and :func:`svd`
#: reduces skinny matrices by it first).
_SKINNY_MAX = 256


def _conj_t(a):
    return a.conj().T if a.dtype.kind == "c" else a.T


#: ``(driver, dtype char, m, n) -> (LAPACK routine, lwork)`` of :func:`_host_svd`'s direct path.
_SVD_CALLS: dict = {}
_SVD_CALLS_MAX = 4096


def _direct_svd(a, driver, compute_uv=True):
    """Thin SVD (or, with ``compute_uv=False``, the singular values alone) by the LAPACK
    routine itself, its workspace size cached per shape: a third of the cost of
    ``scipy.linalg.svd`` (its checks and workspace query) on the small matrices of TT sweeps.
    ``None`` where the routine or the query is not available."""
    key = (driver, a.dtype.char, *a.shape, compute_uv)
    call = _SVD_CALLS.get(key)
    if call is None:
        import scipy.linalg.lapack as lapack  # noqa: PLC0415

        try:
            fn, query = lapack.get_lapack_funcs((driver, driver + "_lwork"), (a,))
            lwork = lapack._compute_lwork(query, a.shape[0], a.shape[1], compute_uv=compute_uv,
                                          full_matrices=False)
        except (AttributeError, ValueError, TypeError):  # pragma: no cover - other SciPy
            return None
        if len(_SVD_CALLS) >= _SVD_CALLS_MAX:     # many shapes (growing ranks): start over
            _SVD_CALLS.clear()
        call = _SVD_CALLS[key] = (fn, lwork)
    fn, lwork = call
    u, s, vh, info = fn(a, compute_uv=int(compute_uv), lwork=lwork, full_matrices=0,
                        overwrite_a=0)
    if info > 0:
        raise np.linalg.LinAlgError(f"SVD ({driver}) did not converge")
    if info < 0:  # pragma: no cover - only for invalid arguments
        raise ValueError(f"LAPACK {driver}: illegal value in argument {-info}")
    return (u, s, vh) if compute_uv else s


def _host_svd(a, driver):
    try:
        return _lapack_svd(a, driver)
    except np.linalg.LinAlgError:
        if driver == "gesvd":
            raise
        warnings.warn("LAPACK gesdd did not converge; falling back to the gesvd driver",
                      RuntimeWarning, stacklevel=4)
        return _lapack_svd(a, "gesvd")


def _lapack_svd(a, driver, compute_uv=True):
    """Thin SVD (or the singular values alone) by one LAPACK driver: the direct call where it
    is available, else ``scipy.linalg.svd``."""
    if a.dtype.char in "fdFD" and 0 not in a.shape:
        out = _direct_svd(a, driver, compute_uv)
        if out is not None:
            return out
    import scipy.linalg  # noqa: PLC0415  (scipy import kept off the import path of the package)

    return scipy.linalg.svd(a, full_matrices=False, compute_uv=compute_uv, check_finite=False,
                            lapack_driver=driver)


def _geqrt_r(block):
    """``R`` (``k x n``, ``k = min(m, n)``) of an ``m x n`` block that the caller owns (it is
    overwritten), by LAPACK's recursive blocked ``geqrt``; ``None`` where SciPy lacks it."""
    import scipy.linalg.lapack as lapack  # noqa: PLC0415

    try:
        geqrt = lapack.get_lapack_funcs("geqrt", (block,))
    except (ValueError, AttributeError):  # pragma: no cover - SciPy without geqrt
        return None
    k = min(block.shape)
    vr, _, info = geqrt(k, block, overwrite_a=True)
    if info != 0:  # pragma: no cover - only for invalid arguments
        raise np.linalg.LinAlgError(f"LAPACK geqrt failed (info={info})")
    return np.triu(vr[:k])


def wide_r_factor(a, chunk_rows=4096):
    """Upper-triangular ``R`` (``p x p``) with ``a^H = Q R`` for a wide ``a`` of shape ``(p, q)``.

    ``Q`` is never formed.  On NumPy the tall ``a^H`` is split into row blocks of
    ``max(chunk_rows, 8 p)`` rows, copied one at a time into a Fortran-ordered buffer that
    stays in cache, and factorized by LAPACK's recursive blocked ``geqrt`` (level-3 BLAS; the
    classic ``geqrf`` works on panels this thin with level-2 BLAS only, several times slower
    here); the stacked ``R`` factors are factorized once more (a TSQR tree of depth one).
    Householder throughout, so just as stable as one QR of the whole matrix.
    """
    p, q = a.shape
    if _is_cupy_array(a):
        xp = sys.modules["cupy"]
        return xp.linalg.qr(xp.conj(a).T, mode="r")[:p]
    chunk = max(chunk_rows, 8 * p)
    blocks = []
    for s in range(0, q, chunk):
        piece = a[:, s:s + chunk]
        blk = np.empty((piece.shape[1], p), dtype=a.dtype, order="F")
        if a.dtype.kind == "c":
            np.conjugate(piece.T, out=blk)
        else:
            blk[...] = piece.T
        r = _geqrt_r(blk)
        if r is None:  # pragma: no cover - SciPy without geqrt
            import scipy.linalg  # noqa: PLC0415

            return scipy.linalg.qr(_conj_t(a), mode="r", check_finite=False)[0][:p]
        blocks.append(r)
    if len(blocks) == 1:
        return blocks[0]
    return _geqrt_r(np.asfortranarray(np.concatenate(blocks, axis=0)))


def qr(a):
    """Reduced QR decomposition ``a = q @ r`` on either backend.

    NumPy matrices whose short side is at most ``_SKINNY_MAX`` use LAPACK's recursive blocked
    ``geqrt`` and form ``q = I - V T V^H`` (the compact WY form it returns) with one GEMM; the
    classic ``geqrf`` + ``orgqr`` pair behind ``numpy.linalg.qr`` is several times slower on
    the ``(r n) x r`` core matrices of TT sweeps (timings: docs/performance.md).  Larger
    matrices use ``numpy.linalg.qr``.
    """
    xp = get_xp(a)
    if xp is not np:
        return xp.linalg.qr(a, mode="reduced")
    m, n = a.shape
    k = min(m, n)
    if k == 0 or k > _SKINNY_MAX or a.dtype.char not in "fdFD":
        return np.linalg.qr(a, mode="reduced")
    import scipy.linalg.lapack as lapack  # noqa: PLC0415

    try:
        geqrt = lapack.get_lapack_funcs("geqrt", (a,))
    except (ValueError, AttributeError):  # pragma: no cover - SciPy without geqrt
        return np.linalg.qr(a, mode="reduced")
    vr, t, info = geqrt(k, a)
    if info != 0:  # pragma: no cover - only for invalid arguments
        raise np.linalg.LinAlgError(f"LAPACK geqrt failed (info={info})")
    lower, upper, diag = _triangle_indices(k)
    r = vr[:k].copy()
    r[lower] = 0
    v = vr[:, :k].copy()
    v[upper] = 0
    v[diag, diag] = 1
    # Q = I - V T V^H, thin part: the first k columns of the identity minus V (T V1^H)
    q = matmul(v, t @ _conj_t(v[:k]))
    np.negative(q, out=q)
    q[diag, diag] += 1
    return q, r


@functools.lru_cache(maxsize=64)
def _triangle_indices(k):
    """Strictly lower and strictly upper index pairs of a ``k x k`` block, and its diagonal."""
    return np.tril_indices(k, -1), np.triu_indices(k, 1), np.arange(k)


#: Products with fewer multiply-adds than this use ``@`` (NumPy's BLAS, single-threaded at
#: this size); larger ones go to SciPy's BLAS (see :func:`matmul`).
_SMALL_MNK = 1 << 16


def matmul(a, b, adjoint_a=False):
    """``a @ b``, or ``a^H @ b`` with ``adjoint_a``, as a C-ordered array.

    NumPy and SciPy each load their own OpenBLAS, each with its own thread pool, and an
    OpenBLAS thread keeps spinning for a while after its call returns: alternating large
    NumPy products with SciPy's LAPACK calls (QR, SVD, eigensolvers) left the two pools
    fighting for the cores, and the TT-SVD of a (4,)^10 tensor took twice as long on two
    threads as on one.  The decompositions therefore do their large products here, with
    SciPy's BLAS ``gemm`` on the transposed (Fortran) views, so no operand is copied and one
    pool does all the heavy work.  CuPy and small products use ``@``.
    """
    if _is_cupy_array(a) or _is_cupy_array(b):
        return (_conj_t(a) if adjoint_a else a) @ b
    m = a.shape[1] if adjoint_a else a.shape[0]
    k = a.shape[0] if adjoint_a else a.shape[1]
    n = b.shape[1]
    if (a.dtype != b.dtype or a.dtype.char not in "fdFD" or m * n * k < _SMALL_MNK
            or 0 in (m, n, k)):
        return (_conj_t(a) if adjoint_a else a) @ b
    import scipy.linalg.blas as blas  # noqa: PLC0415

    gemm = blas.get_blas_funcs("gemm", (a, b))
    a = np.ascontiguousarray(a)
    b = np.ascontiguousarray(b)
    # C^T = b^T op(a)^T, in Fortran terms on the F-contiguous views b.T and a.T:
    # a @ b:    op(a)^T = a^T                  -> a.T untransposed
    # a^H @ b:  op(a)^T = conj(a) = (a.T)^H    -> a.T conjugate-transposed
    if adjoint_a:
        ct = gemm(1.0, b.T, a.T, trans_b=2 if a.dtype.kind == "c" else 1)
    else:
        ct = gemm(1.0, b.T, a.T)
    return ct.T


def frobenius_norm(a):
    """``||a||_F`` as a host float (``inf`` when the sum of squares overflows).

    NumPy arrays of more than a few thousand entries go through SciPy's BLAS ``dot`` (one
    pool; see :func:`matmul`).
    """
    if _is_cupy_array(a):
        xp = sys.modules["cupy"]
        return float(xp.linalg.norm(a.reshape(-1)))
    flat = np.ascontiguousarray(a).reshape(-1)
    # OpenBLAS threads a dot product from about 10^4 entries: NumPy's would wake its pool
    if flat.size < 4096 or flat.dtype.char not in "fdFD":
        return float(np.linalg.norm(flat))
    import scipy.linalg.blas as blas  # noqa: PLC0415

    if flat.dtype.kind == "c":
        s = blas.get_blas_funcs("dotc", (flat,))(flat, flat).real
    else:
        s = blas.get_blas_funcs("dot", (flat,))(flat, flat)
    return math.sqrt(float(s)) if s >= 0 else math.nan


def gram(a, rows=True, dtype=None, lower_only=False, block_bytes=1 << 25):
    """Gram matrix ``a a^H`` (``rows=True``) or ``a^H a``: the full Hermitian matrix, or with
    ``lower_only`` only its lower triangle (enough for :func:`eigh` and
    :func:`pivoted_cholesky`; the upper one is then unspecified).

    With ``dtype`` (e.g. float64 for float32 data) the product is accumulated in that
    precision over blocks of the long side converted one at a time (about ``block_bytes``
    each), so no converted copy of the whole of ``a`` is made.  NumPy data go through SciPy's
    BLAS ``syrk``/``herk`` (half the multiply-adds of a general product, no conjugate
    copied, the same thread pool as the LAPACK calls; see :func:`matmul`).
    """
    if dtype is None or np.dtype(dtype) == a.dtype:
        return _gram_block(a, rows, lower_only)
    xp = get_xp(a)
    p, q = a.shape
    short = p if rows else q
    step = max(1, block_bytes // (np.dtype(dtype).itemsize * max(short, 1)))
    long_side = q if rows else p
    g = None
    for s in range(0, long_side, step):
        blk = (a[:, s:s + step] if rows else a[s:s + step]).astype(dtype)
        part = _gram_block(blk, rows, lower_only)
        if g is None:
            g = part
        else:
            g += part
    if g is None:
        return xp.zeros((short, short), dtype=dtype)
    return g


def _gram_block(a, rows, lower_only=False):
    p, q = a.shape
    if (_is_cupy_array(a) or a.dtype.char not in "fdFD"
            or p * q * min(p, q) < _SMALL_MNK):
        return a @ _conj_t(a) if rows else _conj_t(a) @ a
    import scipy.linalg.blas as blas  # noqa: PLC0415

    cplx = a.dtype.kind == "c"
    rk = blas.get_blas_funcs("herk" if cplx else "syrk", (a,))
    a = np.ascontiguousarray(a)
    # on the Fortran view A = a.T (q x p): rows -> A^T A = a a^T (trans 1), conj(a a^H) for
    # herk (trans 2); columns -> A A^T = a^T a (trans 0), conj(a^H a) for herk.  Either way
    # the transpose of the result is the wanted matrix, whose lower triangle is then valid.
    g = rk(1.0, a.T, trans=(2 if cplx else 1) if rows else 0).T
    if lower_only:
        return g
    lower = np.tril(g, -1)
    return g - np.triu(g, 1) + _conj_t(lower)


def eigh(g, top=None, above=None, overwrite=False):
    """Eigenpairs of the Hermitian ``g`` (lower triangle read), largest first.

    ``top=k`` returns only the ``k`` largest eigenpairs and ``above=t`` only those with
    eigenvalue ``> t``: on NumPy both go to LAPACK ``syevr``/``heevr`` with its subset option,
    whose cost beyond the tridiagonal reduction grows with the number of pairs returned; all
    pairs go to the divide-and-conquer ``syevd``/``heevd``.  ``g`` may be overwritten when
    ``overwrite`` is true.  CuPy computes all pairs (cuSOLVER ``syevd``) and slices.
    Returns ``(w, v)``: ``w`` descending, ``v[:, i]`` the eigenvector of ``w[i]``.
    """
    n = g.shape[0]
    if _is_cupy_array(g):
        xp = sys.modules["cupy"]
        w, v = xp.linalg.eigh(g, UPLO="L")
        w, v = w[::-1], v[:, ::-1]
        if top is not None:
            w, v = w[:top], v[:, :top]
        elif above is not None:
            k = int(to_host(xp.count_nonzero(w > above)))
            w, v = w[:k], v[:, :k]
        return w, v
    import scipy.linalg  # noqa: PLC0415

    kw = {"lower": True, "check_finite": False, "overwrite_a": overwrite}
    if top is not None and top < n:
        w, v = scipy.linalg.eigh(g, subset_by_index=(n - top, n - 1), driver="evr", **kw)
    elif above is not None:
        w, v = scipy.linalg.eigh(g, subset_by_value=(above, np.inf), driver="evr", **kw)
    else:
        w, v = scipy.linalg.eigh(g, driver="evd", **kw)
    return w[::-1], v[:, ::-1]


def pivoted_cholesky(g, tol, max_rank=None):
    """Rank-revealing Cholesky of the Hermitian positive semidefinite ``g`` (lower triangle
    read, not overwritten): ``(f, k)`` with ``f`` of shape ``(n, k)`` and ``g ~= f f^H``.

    LAPACK ``pstrf`` (diagonal pivoting) stops once every remaining pivot is ``<= tol``, so
    ``g - f f^H`` is positive semidefinite up to round-off with trace at most
    ``(n - k) tol``; the cost is ``O(n^2 k)`` (``O(n^3 / 3)`` when it runs to full rank).
    ``f`` is None when ``k > max_rank`` (the caller wants the factor only for a small rank),
    and ``(None, None)`` is returned where ``pstrf`` is not available (CuPy, or a SciPy
    without it): the caller then computes the eigenpairs of ``g`` itself.
    """
    if _is_cupy_array(g):
        return None, None
    import scipy.linalg.lapack as lapack  # noqa: PLC0415

    try:
        pstrf = lapack.get_lapack_funcs("pstrf", (g,))
    except (ValueError, AttributeError):  # pragma: no cover - SciPy without pstrf
        return None, None
    c, piv, k, info = pstrf(g, tol=tol, lower=1)
    if info < 0:  # pragma: no cover - only for invalid arguments
        raise np.linalg.LinAlgError(f"LAPACK pstrf failed (info={info})")
    k = int(k)
    if max_rank is not None and k > max_rank:
        return None, k
    f = np.zeros((g.shape[0], k), dtype=c.dtype)
    f[np.asarray(piv[:], dtype=np.intp) - 1] = np.tril(c[:, :k])
    return f, k


def is_positive_definite(g):
    """Whether LAPACK ``potrf`` factors the Hermitian ``g`` (upper triangle read; ``g`` is
    overwritten), or None where this cannot be asked cheaply (CuPy arrays).

    A successful Cholesky factorization is a certificate: the computed factor is the exact
    factor of ``g + E`` with ``||E||_2 <= n gamma_{n+1} ||g||_2``, ``gamma_k = k u / (1 - k u)``
    (Higham, *Accuracy and Stability of Numerical Algorithms*, Thm. 10.5), so
    ``lambda_min(g) >= -n gamma_{n+1} ||g||_2``.  A failure says nothing more
    than that ``g`` is not safely positive definite.  ``O(n^3 / 3)``, no vectors formed.
    """
    if _is_cupy_array(g):
        return None
    import scipy.linalg.lapack as lapack  # noqa: PLC0415

    potrf = lapack.get_lapack_funcs("potrf", (g,))
    _, info = potrf(g, lower=0, clean=0, overwrite_a=1)
    if info < 0:  # pragma: no cover - only for invalid arguments
        raise np.linalg.LinAlgError(f"LAPACK potrf failed (info={info})")
    return info == 0

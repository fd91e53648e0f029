"""teneva: TT-tensors as plain lists of NumPy cores ``(r, n, r')``.

API used (teneva 0.14 docs): ``teneva.svd(Y_full, e, r)`` (TT-SVD), ``teneva.add``,
``teneva.truncate(Y, e, r)`` (rounding; relative ``e``), ``teneva.norm``,
``teneva.mul_scalar`` (inner product).

``teneva.svd``'s ``e`` is an *absolute* accuracy (each bond discards singular values whose
squared sum stays below ``e**2``), so the relative ``eps`` is passed as
``eps / sqrt(d - 1) * ||A||_F``, the norm being computed inside the timed call.  teneva has no
TT-matrix decomposition for general modes (``svd_matrix`` is for 2^q x 2^q QTT matrices), so
the 1024 x 1024 case reshapes and permutes the matrix into the (16, 64, 64, 16) tensor of the
pairs (m_k, n_k), inside the timed call, and runs ``teneva.svd`` on it.
"""

from __future__ import annotations

import numpy as np
import teneva

NOT_AVAILABLE = {
    "matvec_fc6_b1": "no TT-matrix x dense product (teneva works with TT-tensors)",
    "matvec_fc6_b100": "no TT-matrix x dense product",
    "matvec_1024_b256": "no TT-matrix x dense product",
    "layer_fc6_b100": "no TT layer and no autodiff (NumPy only)",
    "layer_1024_b256": "no TT layer and no autodiff",
    "tiny_matvec": "no TT-matrix x dense product",
}


def setup(threads):
    return {}


def versions():
    from importlib.metadata import version  # noqa: PLC0415

    return {"teneva": version("teneva"), "numpy": np.__version__}


def _cores_out(Y):
    return {"cores": Y}


def case_svd_tensor(inp):
    A = inp["svd_tensor__A"]
    d = A.ndim

    def fn():
        return teneva.svd(A, e=1e-8 / np.sqrt(d - 1) * np.linalg.norm(A))

    return fn, _cores_out, "teneva.svd(A, e=eps/sqrt(d-1)*||A||) (e is absolute)"


def case_svd_matrix(inp):
    M = inp["svd_matrix__M"]
    modes = (4, 8, 8, 4)

    def fn():
        t = M.reshape(modes + modes).transpose(0, 4, 1, 5, 2, 6, 3, 7).reshape(16, 64, 64, 16)
        return teneva.svd(t, e=0.0, r=16)

    def finish(Y):
        return {"cores": [c.reshape(c.shape[0], m, m, c.shape[2]) for c, m in zip(Y, modes)]}

    return fn, finish, ("no TT-matrix SVD: teneva.svd(e=0, r=16) of the permuted "
                        "(16,64,64,16) tensor (permutation included in the time)")


def case_round_sum(inp):
    x, y = inp.cores("round_sum__x"), inp.cores("round_sum__y")
    return (lambda: teneva.truncate(teneva.add(x, y), e=1e-8)), _cores_out, \
        "teneva.truncate(teneva.add(x, y), e=1e-8) (eigh of Gram matrices, its default)"


def case_norm(inp):
    a = inp.cores("norm__a")
    return (lambda: teneva.norm(a)), (lambda v: {"value": v}), \
        "teneva.norm(a) (sqrt of mul_scalar(a, a))"


def case_tiny_dot(inp):
    a, b = inp.cores("tiny__a"), inp.cores("tiny__b")
    return (lambda: teneva.mul_scalar(a, b)), (lambda v: {"value": v}), "teneva.mul_scalar(a, b)"


def case_tiny_norm(inp):
    a = inp.cores("tiny__a")
    return (lambda: teneva.norm(a)), (lambda v: {"value": v}), "teneva.norm(a)"


def case_tiny_round(inp):
    a = inp.cores("tiny__a")
    return (lambda: teneva.truncate(teneva.add(a, a), e=1e-10)), _cores_out, \
        "teneva.truncate(teneva.add(a, a), e=1e-10)"


def case_tiny_from_dense(inp):
    A = inp["tiny__T"]
    return (lambda: teneva.svd(A, e=0.0, r=2)), _cores_out, "teneva.svd(T, e=0, r=2)"

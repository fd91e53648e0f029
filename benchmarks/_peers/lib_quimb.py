"""quimb (``quimb.tensor``): MPS / MPO with NumPy arrays.

API used (quimb 1.x docs): ``MatrixProductState(arrays, shape='lpr')``,
``MatrixProductState.from_dense(psi, dims, cutoff=, cutoff_mode=, max_bond=)``,
``MatrixProductOperator(arrays, shape='ludr')``, ``MatrixProductOperator.from_dense(A, dims,
max_bond=, cutoff=)`` (square operators only: the same dims for rows and columns),
``add_MPS``, ``compress(cutoff=, cutoff_mode=)``, ``norm()``, ``a.H @ b`` and, for the
TT-matrix x dense products, a plain tensor-network contraction of the MPO with the input
batch as one more tensor (``(mpo & x).contract(output_inds=...)``, quimb's default path
optimizer).

Accuracy: quimb truncates per bond by ``cutoff_mode='rsum2'`` (discarded sum of squared
singular values relative to the total); ``cutoff = eps**2 / (d - 1)`` gives the same
per-bond budget as tensortrain's ``eps``.
"""

from __future__ import annotations

import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import quimb
    import quimb.tensor as qtn

NOT_AVAILABLE = {
    "layer_fc6_b100": "no TT layer and no autodiff of its own (quimb networks can hold torch "
                      "arrays, but there is no layer API to time)",
    "layer_1024_b256": "no TT layer and no autodiff of its own",
}


def setup(threads):
    return {}


def versions():
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    out = {"quimb": quimb.__version__, "numpy": np.__version__}
    for dist in ("cotengra", "autoray", "numba"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def _cutoff(eps, d):
    return eps ** 2 / (d - 1)


def _mps(cores):
    """tensortrain cores (r, n, r') -> an open MPS (no boundary bonds)."""
    arrays = [cores[0][0]] + list(cores[1:-1]) + [cores[-1][:, :, 0]]
    return qtn.MatrixProductState(arrays, shape="lpr")


def _mps_cores(mps):
    mps = mps.copy()
    mps.permute_arrays("lpr")
    arrs = list(mps.arrays)
    return [arrs[0][None]] + arrs[1:-1] + [arrs[-1][:, :, None]]


def _mpo(cores):
    arrays = [cores[0][0]] + list(cores[1:-1]) + [cores[-1][..., 0]]
    return qtn.MatrixProductOperator(arrays, shape="ludr")


def _mpo_cores(mpo):
    mpo = mpo.copy()
    mpo.permute_arrays("ludr")
    arrs = list(mpo.arrays)
    return [arrs[0][None]] + arrs[1:-1] + [arrs[-1][..., None]]


def case_svd_tensor(inp):
    A = inp["svd_tensor__A"]
    d = A.ndim
    cut = _cutoff(1e-8, d)
    return (lambda: qtn.MatrixProductState.from_dense(A, dims=A.shape, cutoff=cut,
                                                       cutoff_mode="rsum2")), \
        (lambda m: {"cores": _mps_cores(m)}), \
        "MatrixProductState.from_dense(A, cutoff=eps^2/(d-1), cutoff_mode='rsum2')"


def case_svd_matrix(inp):
    M = inp["svd_matrix__M"]
    return (lambda: qtn.MatrixProductOperator.from_dense(M, dims=(4, 8, 8, 4), max_bond=16,
                                                          cutoff=0.0)), \
        (lambda m: {"cores": _mpo_cores(m)}), \
        "MatrixProductOperator.from_dense(M, dims=(4,8,8,4), max_bond=16, cutoff=0)"


def case_round_sum(inp):
    x, y = _mps(inp.cores("round_sum__x")), _mps(inp.cores("round_sum__y"))
    cut = _cutoff(1e-8, x.L)

    def fn():
        s = x.add_MPS(y)
        s.compress(cutoff=cut, cutoff_mode="rsum2")
        return s

    return fn, (lambda m: {"cores": _mps_cores(m)}), \
        "s = x.add_MPS(y); s.compress(cutoff=eps^2/(d-1), cutoff_mode='rsum2')"


def case_norm(inp):
    a = _mps(inp.cores("norm__a"))
    return (lambda: a.norm()), (lambda v: {"value": v}), "a.norm() (contracts <a|a>)"


def matvec(inp, w, x):
    mpo = _mpo(inp.cores(w))
    X = inp[x]
    in_modes = tuple(c.shape[2] for c in inp.cores(w))
    d = len(in_modes)
    x_inds = ("batch",) + tuple(mpo.lower_ind(i) for i in range(d))
    y_inds = ("batch",) + tuple(mpo.upper_ind(i) for i in range(d))
    shape = (X.shape[0],) + in_modes

    def fn():
        xt = qtn.Tensor(X.reshape(shape), inds=x_inds)
        out = (mpo & xt).contract(output_inds=y_inds)
        return out.data.reshape(X.shape[0], -1)

    return fn, (lambda y: {"y": y}), "(mpo & Tensor(X)).contract(output_inds=...)"


def case_tiny_dot(inp):
    a, b = _mps(inp.cores("tiny__a")), _mps(inp.cores("tiny__b"))
    return (lambda: a.H @ b), (lambda v: {"value": v}), "a.H @ b"


def case_tiny_norm(inp):
    a = _mps(inp.cores("tiny__a"))
    return (lambda: a.norm()), (lambda v: {"value": v}), "a.norm()"


def case_tiny_round(inp):
    a = _mps(inp.cores("tiny__a"))
    cut = _cutoff(1e-10, a.L)

    def fn():
        s = a.add_MPS(a)
        s.compress(cutoff=cut, cutoff_mode="rsum2")
        return s

    return fn, (lambda m: {"cores": _mps_cores(m)}), \
        "a.add_MPS(a).compress(cutoff=eps^2/(d-1), cutoff_mode='rsum2')"


def case_tiny_from_dense(inp):
    A = inp["tiny__T"]
    return (lambda: qtn.MatrixProductState.from_dense(A, dims=A.shape, max_bond=2, cutoff=0.0)), \
        (lambda m: {"cores": _mps_cores(m)}), \
        "MatrixProductState.from_dense(T, max_bond=2, cutoff=0)"

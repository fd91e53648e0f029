"""TensorLy (NumPy backend) for the decompositions, TensorLy-Torch for the TT-matrix products.

API used: ``tensorly.decomposition.tensor_train(tensor, rank)`` and
``tensor_train_matrix(tensor, rank)`` (TensorLy 0.9/0.10 docs: TT-SVD to prescribed ranks;
there is no accuracy/eps argument), and ``tltorch.FactorizedLinear(in_tensorized_features,
out_tensorized_features, factorization='blocktt', rank=..., implementation='factorized')``,
whose weight is a ``BlockTT`` (a TT-matrix, cores ``(r, m_k, n_k, r')``) and whose forward
contracts the input with the cores in one ``einsum``.  The matvec rows call that layer under
``torch.no_grad()``, the layer rows with autograd.

TensorLy-Torch switches TensorLy's global backend to PyTorch when it is imported, so it is
imported only by the cases that need it, and each case sets the backend it uses before it is
timed.
"""

from __future__ import annotations

import warnings

import numpy as np
import tensorly as tl
from spec import NotAvailable
from tensorly.decomposition import tensor_train, tensor_train_matrix

NOT_AVAILABLE = {
    "round_sum": "no TT addition or rounding (a TTTensor is a list of factors; TensorLy has "
                 "no TT algebra)",
    "norm": "TTTensor.norm() reconstructs the dense tensor (8^20 entries here)",
    "tiny_dot": "no TT inner product (only through the dense tensors)",
    "tiny_norm": "TTTensor.norm() reconstructs the dense tensor; no TT norm",
    "tiny_round": "no TT addition or rounding",
}

_THREADS = 2


def setup(threads):
    global _THREADS
    _THREADS = threads
    tl.set_backend("numpy")
    return {"tensorly_backend_for_decompositions": "numpy"}


def versions():
    from importlib.metadata import PackageNotFoundError, version  # noqa: PLC0415

    out = {"tensorly": tl.__version__, "numpy": np.__version__}
    for dist in ("tensorly-torch", "torch"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = None
    return out


def _torch():
    """Import torch and TensorLy-Torch, or say why the case is not available."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import tltorch  # noqa: PLC0415
            import torch  # noqa: PLC0415
    except ImportError as exc:
        raise NotAvailable(f"needs tensorly-torch and torch ({exc})") from None
    torch.set_num_threads(_THREADS)
    tl.set_backend("pytorch")
    return torch, tltorch


def _factors_out(f):
    return {"cores": list(f.factors)}


def case_svd_tensor(inp):
    tl.set_backend("numpy")
    A = inp["svd_tensor__A"]
    return (lambda: tensor_train(A, rank=8)), _factors_out, \
        "tensor_train(A, rank=8): no eps option, the true TT-rank is given"


def case_svd_matrix(inp):
    tl.set_backend("numpy")
    M = inp["svd_matrix__M"]
    modes = (4, 8, 8, 4)
    return (lambda: tensor_train_matrix(M.reshape(modes + modes), rank=[1, 16, 16, 16, 1])), \
        _factors_out, "tensor_train_matrix(M.reshape(rows + cols), rank=[1,16,16,16,1])"


def _layer_obj(torch, tltorch, cores):
    out_modes = tuple(c.shape[1] for c in cores)
    in_modes = tuple(c.shape[2] for c in cores)
    ranks = [1] + [c.shape[3] for c in cores]
    layer = tltorch.FactorizedLinear(in_modes, out_modes, bias=False, factorization="blocktt",
                                     rank=ranks, implementation="factorized",
                                     dtype=torch.from_numpy(cores[0]).dtype)
    with torch.no_grad():
        for f, c in zip(layer.weight.factors, cores):
            f.copy_(torch.from_numpy(c))
    return layer


def matvec(inp, w, x):
    torch, tltorch = _torch()
    layer = _layer_obj(torch, tltorch, inp.cores(w))
    X = torch.from_numpy(inp[x])

    def fn():
        with torch.no_grad():
            return layer(X)

    return fn, (lambda y: {"y": y}), \
        "tensorly-torch FactorizedLinear(blocktt, factorized) under torch.no_grad()"


def layer(inp, w, x, g):
    torch, tltorch = _torch()
    layer = _layer_obj(torch, tltorch, inp.cores(w))
    X = torch.from_numpy(inp[x]).clone().requires_grad_(True)
    G = torch.from_numpy(inp[g])

    def fn():
        X.grad = None
        layer.zero_grad(set_to_none=True)
        y = layer(X)
        (y * G).sum().backward()
        return y, X.grad, [f.grad for f in layer.weight.factors]

    return fn, (lambda o: {"y": o[0], "dx": o[1], "dcores": o[2]}), \
        "tensorly-torch FactorizedLinear(factorization='blocktt', implementation='factorized')"


def case_tiny_from_dense(inp):
    tl.set_backend("numpy")
    A = inp["tiny__T"]
    return (lambda: tensor_train(A, rank=2)), _factors_out, "tensor_train(T, rank=2)"


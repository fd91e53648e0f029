"""torchTT (``import torchtt``), PyTorch backend on the CPU.

API used (torchtt 0.5 docs and docstrings): ``torchtt.TT(full, eps=, rmax=)`` (TT-SVD),
``torchtt.TT(matrix, shape=[(m1, n1), ...], eps=, rmax=)`` (TT-matrix SVD), ``torchtt.TT(cores)``,
``+``, ``.round(eps)``, ``.norm()``, ``torchtt.dot``, ``TT-matrix @ torch.Tensor`` (the dense
operand has the column modes as its trailing axes) and ``torchtt.nn.LinearLayerTT``.
Its C++ extension (``torchttcpp``) is only used by the AMEn/DMRG solvers, none of which is
timed here.
"""

from __future__ import annotations

import warnings

import numpy as np

with warnings.catch_warnings():          # "C++ implementation not available" (see above)
    warnings.simplefilter("ignore")
    import torch
    import torchtt

NOT_AVAILABLE = {}


def setup(threads):
    torch.set_num_threads(threads)
    return {"torch_num_threads": torch.get_num_threads(),
            "torch_interop_threads": torch.get_num_interop_threads(),
            "torchtt_cpp": bool(torchtt.cpp_enabled())}


def versions():
    from importlib.metadata import version  # noqa: PLC0415

    return {"torchTT": version("torchTT"), "torch": torch.__version__, "numpy": np.__version__}


def T(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def _tt(cores):
    return torchtt.TT([T(c) for c in cores])


def _tensor_out(x):
    return {"cores": x.cores}


def case_svd_tensor(inp):
    A = T(inp["svd_tensor__A"])
    return (lambda: torchtt.TT(A, eps=1e-8)), _tensor_out, "torchtt.TT(A, eps=1e-8)"


def case_svd_matrix(inp):
    M = T(inp["svd_matrix__M"])
    shape = [(4, 4), (8, 8), (8, 8), (4, 4)]
    return (lambda: torchtt.TT(M, shape=shape, eps=0.0, rmax=16)), _tensor_out, \
        "torchtt.TT(M, shape=[(4,4),(8,8),(8,8),(4,4)], eps=0, rmax=16)"


def case_round_sum(inp):
    x, y = _tt(inp.cores("round_sum__x")), _tt(inp.cores("round_sum__y"))
    return (lambda: (x + y).round(1e-8)), _tensor_out, "(x + y).round(1e-8)"


def case_norm(inp):
    a = _tt(inp.cores("norm__a"))
    return (lambda: a.norm()), (lambda v: {"value": v}), "a.norm() (QR sweep)"


def matvec(inp, w, x):
    W = _tt(inp.cores(w))
    X = T(inp[x])
    shape = (X.shape[0],) + tuple(W.N)

    def fn():
        return (W @ X.reshape(shape)).reshape(X.shape[0], -1)

    return fn, (lambda y: {"y": y}), "TT-matrix @ X.reshape(B, *col_modes)"


def layer(inp, w, x, g):
    cores = inp.cores(w)
    out_modes = [c.shape[1] for c in cores]
    in_modes = [c.shape[2] for c in cores]
    ranks = [1] + [c.shape[3] for c in cores]
    layer = torchtt.nn.LinearLayerTT(in_modes, out_modes, ranks, dtype=torch.float32)
    with torch.no_grad():
        for p, c in zip(layer.cores, cores):
            p.copy_(T(c))
        layer.bias.zero_()
    layer.bias.requires_grad_(False)      # the layer always adds a bias; kept at 0, no grad
    X = T(inp[x]).clone().requires_grad_(True)
    G = T(inp[g])
    batch = X.shape[0]

    def fn():
        X.grad = None
        layer.zero_grad(set_to_none=True)
        y = layer(X.reshape((batch,) + tuple(in_modes))).reshape(batch, -1)
        (y * G).sum().backward()
        return y, X.grad, [p.grad for p in layer.cores]

    return fn, (lambda o: {"y": o[0], "dx": o[1], "dcores": o[2]}), \
        "torchtt.nn.LinearLayerTT (its bias frozen at 0), torch autograd"


def case_tiny_dot(inp):
    a, b = _tt(inp.cores("tiny__a")), _tt(inp.cores("tiny__b"))
    return (lambda: torchtt.dot(a, b)), (lambda v: {"value": v}), "torchtt.dot(a, b)"


def case_tiny_norm(inp):
    a = _tt(inp.cores("tiny__a"))
    return (lambda: a.norm()), (lambda v: {"value": v}), "a.norm()"


def case_tiny_round(inp):
    a = _tt(inp.cores("tiny__a"))
    return (lambda: (a + a).round(1e-10)), _tensor_out, "(a + a).round(1e-10)"


def case_tiny_from_dense(inp):
    A = T(inp["tiny__T"])
    return (lambda: torchtt.TT(A, eps=0.0, rmax=2)), _tensor_out, "torchtt.TT(T, eps=0, rmax=2)"

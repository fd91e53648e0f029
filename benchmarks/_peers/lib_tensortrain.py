"""tensortrain (this repository), NumPy backend: the baseline of every row."""

from __future__ import annotations

import math

import numpy as np
from _common import import_tensortrain

tt = import_tensortrain()
from tensortrain.nn import TTLinear  # noqa: E402

NOT_AVAILABLE = {}


def setup(threads):
    return {}


def versions():
    import opt_einsum  # noqa: PLC0415
    import scipy  # noqa: PLC0415

    return {"tensortrain": tt.__version__, "numpy": np.__version__, "scipy": scipy.__version__,
            "opt_einsum": opt_einsum.__version__}


def _tensor_out(x):
    return {"cores": x.cores}


# ---- decompositions and reductions (float64) -----------------------------------------------
def case_svd_tensor(inp):
    A = inp["svd_tensor__A"]
    return (lambda: tt.TTTensor.from_dense(A, eps=1e-8)), _tensor_out, \
        "TTTensor.from_dense(A, eps=1e-8)"


def case_svd_matrix(inp):
    M = inp["svd_matrix__M"]
    modes = (4, 8, 8, 4)
    return (lambda: tt.TTMatrix.from_dense(M, row_modes=modes, col_modes=modes, max_rank=16)), \
        _tensor_out, "TTMatrix.from_dense(M, row_modes, col_modes, max_rank=16)"


def case_round_sum(inp):
    x = tt.TTTensor(inp.cores("round_sum__x"))
    y = tt.TTTensor(inp.cores("round_sum__y"))
    return (lambda: (x + y).round(eps=1e-8)), _tensor_out, "(x + y).round(eps=1e-8)"


def case_norm(inp):
    a = tt.TTTensor(inp.cores("norm__a"))
    return (lambda: a.norm()), (lambda v: {"value": v}), "a.norm() (Gram sweep)"


# ---- TT-matrix x dense (float32) -------------------------------------------------------------
def matvec(inp, w, x):
    W = tt.TTMatrix(inp.cores(w))
    X = inp[x]
    return (lambda: X @ W.T), (lambda y: {"y": y}), "X @ W.T (contraction plan)"


def layer(inp, w, x, g):
    cores = inp.cores(w)
    X, G = inp[x], inp[g]
    out_modes = [c.shape[1] for c in cores]
    in_modes = [c.shape[2] for c in cores]
    ranks = [1] + [c.shape[3] for c in cores]
    layer = TTLinear(math.prod(in_modes), math.prod(out_modes), ranks, in_modes=in_modes,
                     out_modes=out_modes, bias=False, dtype=np.float32)
    for p, c in zip(layer.cores, cores):
        p.data = c.copy()

    def fn():
        layer.zero_grad()
        y = layer(X)
        dx = layer.backward(G)
        return y, dx, [p.grad for p in layer.cores]

    return fn, (lambda o: {"y": o[0], "dx": o[1], "dcores": o[2]}), \
        "tensortrain.nn.TTLinear (bias=False): forward, backward(G) (hand-written VJP)"


# ---- per-call cost on tiny objects (float64) ---------------------------------------------------
def case_tiny_dot(inp):
    a, b = tt.TTTensor(inp.cores("tiny__a")), tt.TTTensor(inp.cores("tiny__b"))
    return (lambda: tt.dot(a, b)), (lambda v: {"value": v}), "tt.dot(a, b)"


def case_tiny_norm(inp):
    a = tt.TTTensor(inp.cores("tiny__a"))
    return (lambda: a.norm()), (lambda v: {"value": v}), "a.norm()"


def case_tiny_round(inp):
    a = tt.TTTensor(inp.cores("tiny__a"))
    return (lambda: (a + a).round(eps=1e-10)), _tensor_out, "(a + a).round(eps=1e-10)"


def case_tiny_from_dense(inp):
    T = inp["tiny__T"]
    return (lambda: tt.TTTensor.from_dense(T, max_rank=2)), _tensor_out, \
        "TTTensor.from_dense(T, max_rank=2)"

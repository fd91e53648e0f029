"""tntorch, PyTorch backend on the CPU.

API used (tntorch 1.1 docs and docstrings): ``tn.Tensor(full, eps=)`` (its TT-SVD: a
full-rank TT, then ``round``, which is ``round_tt`` followed by Tucker rounding with what is
left of the error budget), ``tn.Tensor(cores)``, ``+``, ``Tensor.round_tt(eps)``, ``tn.norm``,
``tn.dot``, ``tn.TTMatrix(matrix, ranks, input_dims, output_dims)`` and ``tn.tt_multiply``.
tntorch's ``TTMatrix`` is stored as (input x output), i.e. ``W.T``: cores
``(r, n_k, m_k, r')``.  tntorch has no layer class; the layer rows run torch autograd through
``tn.tt_multiply`` with the cores as leaf tensors.
"""

from __future__ import annotations

import warnings

import numpy as np

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import tntorch as tn
    import torch

NOT_AVAILABLE = {}


def setup(threads):
    torch.set_num_threads(threads)
    return {"torch_num_threads": torch.get_num_threads(),
            "torch_interop_threads": torch.get_num_interop_threads()}


def versions():
    from importlib.metadata import version  # noqa: PLC0415

    return {"tntorch": version("tntorch"), "torch": torch.__version__, "numpy": np.__version__}


def T(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def _tn(cores):
    return tn.Tensor([T(c) for c in cores])


def _tensor_out(t):
    return {"cores": t.tt().cores}      # absorbs Tucker factors, if any, into the cores


def _ttm_out(W):
    return {"cores": W.cores}


def case_svd_tensor(inp):
    A = T(inp["svd_tensor__A"])
    return (lambda: tn.Tensor(A, eps=1e-8)), _tensor_out, \
        "tn.Tensor(A, eps=1e-8) (round_tt, then Tucker rounding of the remaining budget)"


def case_svd_matrix(inp):
    M = T(inp["svd_matrix__M"])
    modes = [4, 8, 8, 4]
    return (lambda: tn.TTMatrix(M, ranks=[16, 16, 16], input_dims=modes, output_dims=modes)), \
        _ttm_out, "tn.TTMatrix(M, ranks=[16]*3, input_dims, output_dims) (ranks only, no eps)"


def case_round_sum(inp):
    x, y = _tn(inp.cores("round_sum__x")), _tn(inp.cores("round_sum__y"))

    def fn():
        s = x + y
        s.round_tt(eps=1e-8)          # in place, on the new sum
        return s

    return fn, _tensor_out, "s = x + y; s.round_tt(eps=1e-8)"


def case_norm(inp):
    a = _tn(inp.cores("norm__a"))
    return (lambda: tn.norm(a)), (lambda v: {"value": v}), "tn.norm(a) (sqrt of a Gram sweep)"


def _ttm_transposed(cores, requires_grad=False):
    """``W.T`` as tntorch stores a TT-matrix (input x output), and its leaf cores."""
    leaves = [T(c).permute(0, 2, 1, 3).contiguous().requires_grad_(requires_grad)
              for c in cores]
    return leaves, [c.shape[2] for c in cores], [c.shape[1] for c in cores], \
        [c.shape[3] for c in cores[:-1]]


def matvec(inp, w, x):
    leaves, in_modes, out_modes, ranks = _ttm_transposed(inp.cores(w))
    Wt = tn.TTMatrix(leaves, ranks=ranks, input_dims=in_modes, output_dims=out_modes)
    X = T(inp[x])
    return (lambda: tn.tt_multiply(Wt, X)), (lambda y: {"y": y}), \
        "tn.tt_multiply(TTMatrix of W.T, X)"


def layer(inp, w, x, g):
    leaves, in_modes, out_modes, ranks = _ttm_transposed(inp.cores(w), requires_grad=True)
    X = T(inp[x]).clone().requires_grad_(True)
    G = T(inp[g])

    def fn():
        X.grad = None
        for c in leaves:
            c.grad = None
        Wt = tn.TTMatrix(leaves, ranks=ranks, input_dims=in_modes, output_dims=out_modes)
        y = tn.tt_multiply(Wt, X)
        (y * G).sum().backward()
        return y, X.grad, [c.grad.permute(0, 2, 1, 3) for c in leaves]

    return fn, (lambda o: {"y": o[0], "dx": o[1], "dcores": o[2]}), \
        "no layer class: torch autograd through tn.tt_multiply with leaf cores"


def case_tiny_dot(inp):
    a, b = _tn(inp.cores("tiny__a")), _tn(inp.cores("tiny__b"))
    return (lambda: tn.dot(a, b)), (lambda v: {"value": v}), "tn.dot(a, b)"


def case_tiny_norm(inp):
    a = _tn(inp.cores("tiny__a"))
    return (lambda: tn.norm(a)), (lambda v: {"value": v}), "tn.norm(a)"


def case_tiny_round(inp):
    a = _tn(inp.cores("tiny__a"))

    def fn():
        s = a + a
        s.round_tt(eps=1e-10)
        return s

    return fn, _tensor_out, "s = a + a; s.round_tt(eps=1e-10)"


def case_tiny_from_dense(inp):
    A = T(inp["tiny__T"])
    return (lambda: tn.Tensor(A, ranks_tt=2)), _tensor_out, "tn.Tensor(T, ranks_tt=2)"

"""TTLinear: a fully-connected layer whose weight matrix is a TT-matrix."""

from __future__ import annotations

import math

import numpy as np

from .._backend import asarray, get_xp, resolve_xp
from .._validation import as_float_array, check_eps, check_ranks
from ..construct import gaussian_cores
from ..contraction import Workspace, default_objective
from ..errors import ShapeError
from ..gradients import matmul_backward, matmul_forward
from ..matrix import TTMatrix
from ..shapes import choose_matrix_modes
from .init import check_features, check_init, check_nn_dtype, make_rng, target_variance
from .layers import check_input
from .module import Module, Parameter

__all__ = ["TTLinear"]


class TTLinear(Module):
    """``y = x @ W.T + b`` with ``W`` (``out_features x in_features``) in the TT-matrix format.

    Parameters
    ----------
    in_features, out_features : int
        ``N`` and ``M``: the layer maps ``(B, N) -> (B, M)``.
    ranks : int or sequence of int
        TT-ranks (an int for every inner bond or ``[1, r_1, ..., 1]``); capped at the largest
        useful value.
    in_modes, out_modes : sequence of int, optional
        Factorizations of ``N`` and ``M`` (their products may exceed the sizes: padding).
        When omitted, balanced modes are chosen and awkward sizes (784, 1000, 10, primes)
        are padded invisibly.
    bias : bool
    init : {'glorot', 'he'}
        Targets the variance of the *full* matrix: ``2 / (N + M)`` or ``2 / N``.  Each core
        is Gaussian with the same standard deviation ``sigma`` chosen so that
        ``sigma^(2d) * r_1 * ... * r_{d-1}`` equals the target.
    dtype, xp, rng
        Floating dtype (float32 by default), backend, and a seed or Generator (the cores are
        drawn on the host and moved once).

    Notes
    -----
    The forward pass runs a contraction plan chosen for training (on NumPy: the least
    modelled time of the forward and backward passes together, see
    :func:`tensortrain.contraction.plan_matmat`, and once ``backward`` has been called with
    ``need_input_grad=False``, as :func:`tensortrain.nn.fit` does for a network's first
    layer, of those passes without the input gradient; after ``eval()``, of the product
    alone)
    and keeps each step's input for the backward pass (:mod:`tensortrain.gradients`): the dense ``W`` is
    never formed.  The layer keeps those intermediate arrays, and the gradients of them, in a
    :class:`tensortrain.contraction.Workspace` that the next call reuses (about the memory
    of one forward and backward pass, held between calls; ``release_workspace()`` frees it),
    because allocating them afresh on every call is a large share of the time on a CPU (see
    docs/performance.md, "Layer gradients").
    """

    def __init__(self, in_features, out_features, ranks, in_modes=None, out_modes=None,
                 bias=True, init="glorot", dtype=np.float32, xp=None, rng=None):
        super().__init__()
        self.in_features = check_features(in_features, "in_features")
        self.out_features = check_features(out_features, "out_features")
        self.init = check_init(init)
        xp = resolve_xp(xp)
        dtype = check_nn_dtype(dtype, "TTLinear dtype")
        out_modes, in_modes = choose_matrix_modes((self.out_features, self.in_features),
                                                  out_modes, in_modes)
        d = len(in_modes)
        r = list(check_ranks(ranks, d))
        sizes = [m * n for m, n in zip(out_modes, in_modes)]
        for k in range(1, d):
            r[k] = min(r[k], math.prod(sizes[:k]), math.prod(sizes[k:]))
        target = target_variance(self.init, self.in_features, self.out_features)
        # in logs: the product of the ranks leaves the float range for long trains
        # (rank 8 at d >= ~340), while sigma itself stays near 1
        sigma = math.exp((math.log(target) - sum(math.log(v) for v in r[1:d])) / (2 * d))
        shapes = [(r[k], out_modes[k], in_modes[k], r[k + 1]) for k in range(d)]
        self.cores = [Parameter(c) for c in
                      gaussian_cores(shapes, [sigma] * d, make_rng(rng), dtype, xp)]
        self.bias = Parameter(xp.zeros(self.out_features, dtype=dtype)) if bias else None

    # ---- construction from a trained dense layer ----------------------------------------
    @classmethod
    def from_dense(cls, weight, bias=None, eps=0.0, max_rank=None, in_modes=None,
                   out_modes=None):
        """Compress a dense ``(out_features, in_features)`` weight (and optional bias).

        ``eps`` bounds the relative Frobenius error of the weight,
        ``||W - W_tt||_F <= eps ||W||_F``; ``max_rank`` caps the ranks (stricter wins).
        """
        weight = as_float_array(weight, "weight")
        check_nn_dtype(weight.dtype, "TTLinear.from_dense weight dtype")
        if weight.ndim != 2:
            raise ShapeError(f"weight must be 2-D (out_features, in_features), got {weight.shape}")
        eps = check_eps(eps)
        out_f, in_f = weight.shape
        if bias is not None:
            bias = as_float_array(bias, "bias")
            if bias.shape != (out_f,):
                raise ShapeError(f"bias must have shape ({out_f},), got {bias.shape}")
        W = TTMatrix.from_dense(weight, row_modes=out_modes, col_modes=in_modes, eps=eps,
                                max_rank=max_rank)
        layer = cls.__new__(cls)
        Module.__init__(layer)
        layer.in_features, layer.out_features = int(in_f), int(out_f)
        layer.init = None  # compressed from a trained weight, not initialized
        layer.cores = [Parameter(c.copy()) for c in W.cores]
        layer.bias = (None if bias is None
                      else Parameter(asarray(bias, get_xp(weight)).astype(weight.dtype)))
        return layer

    # ---- structure ------------------------------------------------------------------------
    @property
    def weight(self) -> TTMatrix:
        """The current weight as a TTMatrix (sharing the parameter arrays).

        The TTMatrix is kept while the parameters hold the same arrays (optimizers update
        them in place), so its cores are validated, and its plans looked up, once rather than
        on every forward pass.
        """
        datas = [p.data for p in self.cores]
        W = self.__dict__.get("_weight")
        if W is None or len(W.cores) != len(datas) or any(
                a is not b for a, b in zip(W.cores, datas)):
            W = TTMatrix(datas, (self.out_features, self.in_features))
            self._weight = W
        return W

    @property
    def ranks(self):
        """TT-ranks of the weight, ``(1, r_1, ..., r_{d-1}, 1)``."""
        return self.weight.ranks

    @property
    def in_modes(self):
        """Modes ``n_k`` of the input features (their product covers ``in_features``)."""
        return tuple(int(p.data.shape[2]) for p in self.cores)

    @property
    def out_modes(self):
        """Modes ``m_k`` of the output features (their product covers ``out_features``)."""
        return tuple(int(p.data.shape[1]) for p in self.cores)

    @property
    def compression(self) -> float:
        """Dense weight size over the TT cores' size, ``M N / sum(core sizes)``."""
        return self.out_features * self.in_features / sum(p.size for p in self.cores)

    def flops(self, batch=1) -> int:
        """FLOPs of one forward pass at ``batch`` (the plan's, plus the bias), with the plan
        the layer's next forward pass runs for inputs of its own dtype: that depends on the
        mode (training or evaluation) and, in training, on whether the last ``backward``
        asked for the input gradient (see the class notes)."""
        W = self.weight
        plan = W.matmul_plan(batch, objective=self._objective(W))
        return plan.flops + (batch * self.out_features if self.bias is not None else 0)

    @property
    def flops_per_sample(self) -> float:
        """Forward FLOPs per sample at batch 1."""
        return float(self.flops(1))

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"in_modes={self.in_modes}, out_modes={self.out_modes}, ranks={self.ranks}, "
                f"bias={self.bias is not None}, compression={self.compression:.1f}x")

    def release_workspace(self):
        """Free the arrays kept for reuse between calls (they are allocated again when
        needed)."""
        self.__dict__.pop("_workspace", None)

    # ---- computation --------------------------------------------------------------------
    def _objective(self, W):
        """The plan objective of the next forward pass: in training, for a backward pass that
        computes the input gradient unless the last one did not (a network's first layer)."""
        return default_objective(W.cores[0], train=self.training,
                                 input_grad=self.__dict__.get("_input_grad", True))

    def forward(self, x):
        x = check_input(x, "TTLinear", self.in_features)
        ws = self.__dict__.get("_workspace")
        if ws is None:
            ws = self._workspace = Workspace()
        W = self.weight
        # training: the plan with the least modelled time of forward and backward together
        # (without the input gradient once a backward pass has been called without it);
        # evaluation: that of the product alone (a backward pass still works after any plan)
        objective = self._objective(W)
        if self.__dict__.get("_ws_objective") != objective:
            ws.clear()          # another plan: the old one's arrays would only be kept alive
            self.__dict__["_ws_objective"] = objective
        y, ctx = matmul_forward(W, x, workspace=ws, objective=objective)
        if self.bias is not None:
            y += self.bias.data     # y is a new array (never the input or workspace memory)
        self._cache = ctx
        return y

    def backward(self, grad_out, need_input_grad=True):
        """Accumulate the gradients of the cores (and bias) and return that of the input
        (``None`` with ``need_input_grad=False``, which skips its products)."""
        ctx = self._take_cache()
        grad_out = as_float_array(grad_out, "grad_out")
        if grad_out.shape != (ctx.batch, self.out_features):
            raise ShapeError(f"TTLinear.backward expects grad_out of shape "
                             f"{(ctx.batch, self.out_features)}, got {grad_out.shape}")
        need_input_grad = bool(need_input_grad)
        dx, dcores = matmul_backward(ctx, grad_out, need_input_grad)
        self.__dict__["_input_grad"] = need_input_grad   # the next forward plans for it
        for p, g in zip(self.cores, dcores):
            p.accumulate(g)
        if self.bias is not None:
            self.bias.accumulate(grad_out.sum(axis=0))
        return dx

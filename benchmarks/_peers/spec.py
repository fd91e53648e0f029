"""The cases and libraries of ``bench_peers.py``, shared by the parent and the workers.

Only the standard library is imported here, so the parent can list the cases and check which
libraries are installed without importing any of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class NotAvailable(Exception):
    """Raised by an adapter when its library lacks what a case needs (the message says why)."""


@dataclass(frozen=True)
class Case:
    id: str
    group: str
    title: str       # the operation column of the tables
    dtype: str
    detail: str      # one line: what exactly is computed
    #: for the product and layer cases: the adapter function that runs them (``matvec`` or
    #: ``layer``) and the input arrays it is given (weight, input, output gradient)
    kind: str = ""
    inputs: tuple = ()


CASES = [
    Case("svd_tensor", "svd", "TT-SVD (4,)^10", "float64",
         "tensor of TT-rank 8 + 1e-10 relative Gaussian noise, eps=1e-8; error vs the input"),
    Case("svd_matrix", "svd", "TT-SVD 1024x1024 matrix", "float64",
         "random matrix, modes (4,8,8,4)x(4,8,8,4), max_rank=16; error vs the input"),
    Case("round_sum", "round", "round(x + y) (8,)^12", "float64",
         "random TTs of ranks 20 and 20, eps=1e-8; error vs the exact sum"),
    Case("norm", "norm", "norm (8,)^20 r30", "float64",
         "random TT of rank 30; error vs an extended-precision Gram sweep"),
    Case("matvec_fc6_b1", "matvec", "X @ W.T fc6, batch 1", "float32",
         "25088 -> 4096, modes (4,)^6 x (2,7,8,8,7,4), ranks 4; error vs float64",
         kind="matvec", inputs=('fc6__W', 'fc6__X1')),
    Case("matvec_fc6_b100", "matvec", "X @ W.T fc6, batch 100", "float32",
         "as above, batch 100",
         kind="matvec", inputs=('fc6__W', 'fc6__X100')),
    Case("matvec_1024_b256", "matvec", "X @ W.T 1024^2 r8, batch 256", "float32",
         "1024 -> 1024, modes (4,8,8,4)^2, ranks 8; error vs float64",
         kind="matvec", inputs=('m1024__W', 'm1024__X256')),
    Case("layer_fc6_b100", "layer", "TT layer fwd+bwd fc6, batch 100", "float32",
         "y = X @ W.T, grads of sum(y * G) w.r.t. the cores and X; max error of y, dX, dcores",
         kind="layer", inputs=('fc6__W', 'fc6__X100', 'fc6__G100')),
    Case("layer_1024_b256", "layer", "TT layer fwd+bwd 1024^2 r8, b 256", "float32",
         "as above for the 1024x1024 rank-8 layer, batch 256",
         kind="layer", inputs=('m1024__W', 'm1024__X256', 'm1024__G256')),
    Case("tiny_matvec", "tiny", "tiny: X @ W.T (batch 1)", "float64",
         "64x64 TT-matrix, modes (2,)^6 x (2,)^6, ranks 2",
         kind="matvec", inputs=('tiny__W', 'tiny__X')),
    Case("tiny_dot", "tiny", "tiny: dot(a, b)", "float64", "(2,)^6, ranks 2"),
    Case("tiny_norm", "tiny", "tiny: norm(a)", "float64", "(2,)^6, ranks 2"),
    Case("tiny_round", "tiny", "tiny: (a + a).round()", "float64",
         "(2,)^6, ranks 2 -> 4 -> 2, eps=1e-10"),
    Case("tiny_from_dense", "tiny", "tiny: from_dense 2^6", "float64",
         "(2,)^6 tensor of TT-rank 2, max_rank=2"),
]
CASE_BY_ID = {c.id: c for c in CASES}
GROUPS = {}
for _c in CASES:
    GROUPS.setdefault(_c.group, []).append(_c.id)


@dataclass(frozen=True)
class Library:
    name: str
    modules: tuple             # top-level modules that must be importable
    dists: tuple               # distributions whose versions are recorded
    install: str               # how to install it into the scratch environment
    optional: tuple = field(default=())   # modules that enable some cases only


LIBRARIES = [
    Library("tensortrain", ("tensortrain", "numpy"), ("tensortrain", "numpy", "scipy",
                                                       "opt_einsum"),
            "pip install -e /path/to/this/repo"),
    Library("t3f", ("t3f", "tensorflow"), ("t3f", "tensorflow-cpu", "tensorflow", "keras",
                                          "numpy"),
            "pip install tensorflow-cpu t3f"),
    Library("torchtt", ("torchtt", "torch"), ("torchTT", "torch", "numpy", "opt_einsum"),
            "pip install torch==2.13.0 torchTT"),
    Library("tntorch", ("tntorch", "torch"), ("tntorch", "torch", "numpy"),
            "pip install torch==2.13.0 tntorch"),
    Library("tensorly", ("tensorly",), ("tensorly", "tensorly-torch", "torch", "numpy"),
            "pip install tensorly (and torch==2.13.0 tensorly-torch for the layers)",
            optional=("tltorch", "torch")),
    Library("quimb", ("quimb",), ("quimb", "cotengra", "autoray", "numba", "numpy"),
            "pip install quimb"),
    Library("teneva", ("teneva",), ("teneva", "numpy"), "pip install teneva"),
]
LIBRARY_BY_NAME = {lib.name: lib for lib in LIBRARIES}
PEERS = [lib.name for lib in LIBRARIES if lib.name != "tensortrain"]

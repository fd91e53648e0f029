"""tensortrain: tensor-train algebra on NumPy and CuPy.

``import tensortrain as tt``; the core objects are :class:`TTTensor` and :class:`TTMatrix`.
This module never imports CuPy: the backend is decided by the arrays you pass.
"""

from . import contraction, errors, qtt, riemannian, shapes
from .completion import CompletionInfo, complete
from .construct import eye, ones, random_matrix, random_tensor, zeros
from .contraction import ContractionPlan
from .cross import CrossInfo, apply, cross, quadrature
from .errors import (
    BackendError,
    ConvergenceWarning,
    ModeError,
    RankError,
    ShapeError,
    TTError,
    TTFileError,
    TTIndexError,
)
from .interop import as_linear_operator
from .io import load, save
from .matrix import TTMatrix
from .ops import dot, kron, log_dot, log_norm, norm, orthogonalize, round
from .shapes import balanced_modes, factorize
from .solvers import EigInfo, SolveInfo, eigsh, solve
from .solvers.products import ProductInfo, hadamard, matmul, matvec
from .tensor import TTTensor

__version__ = "0.1.0"  # the only place of the version: pyproject.toml reads it from here

__all__ = [
    "TTTensor",
    "TTMatrix",
    "ContractionPlan",
    "dot",
    "log_dot",
    "norm",
    "log_norm",
    "round",
    "orthogonalize",
    "kron",
    "zeros",
    "ones",
    "eye",
    "random_tensor",
    "random_matrix",
    "save",
    "load",
    "as_linear_operator",
    "balanced_modes",
    "factorize",
    "cross",
    "apply",
    "quadrature",
    "CrossInfo",
    "matvec",
    "matmul",
    "hadamard",
    "ProductInfo",
    "solve",
    "eigsh",
    "SolveInfo",
    "EigInfo",
    "complete",
    "CompletionInfo",
    "qtt",
    "riemannian",
    "TTError",
    "ShapeError",
    "RankError",
    "ModeError",
    "TTIndexError",
    "TTFileError",
    "BackendError",
    "ConvergenceWarning",
    "contraction",
    "errors",
    "shapes",
    "__version__",
]

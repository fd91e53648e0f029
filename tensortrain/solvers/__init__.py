"""Solvers in TT format built on the shared sweep skeleton (:mod:`tensortrain._sweep`).

:func:`solve` (AMEn for ``A x = b``) and :func:`eigsh` (block DMRG with residual subspace
expansion for the extreme eigenpairs of a Hermitian ``A``), with their diagnostics
:class:`SolveInfo` and :class:`EigInfo`.
"""

from .amen import SolveInfo, solve
from .eig import EigInfo, eigsh

__all__ = ["EigInfo", "SolveInfo", "eigsh", "solve"]

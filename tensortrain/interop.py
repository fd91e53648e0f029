"""Interoperability: a TTMatrix as a SciPy (or CuPy) LinearOperator."""

from __future__ import annotations

from typing import Any

from ._backend import backend_name
from .matrix import TTMatrix

__all__ = ["as_linear_operator"]


def as_linear_operator(W: TTMatrix) -> Any:
    """Wrap ``W`` as a ``scipy.sparse.linalg.LinearOperator`` (``cupyx``'s on CuPy).

    ``matvec``/``matmat`` use :meth:`TTMatrix.__matmul__` and ``rmatvec``/``rmatmat`` use the
    conjugate transpose, so iterative solvers (``cg``, ``gmres``, ``svds``, ``eigsh``) work on
    the TT-matrix without forming it.
    """
    if not isinstance(W, TTMatrix):
        raise TypeError(f"as_linear_operator needs a TTMatrix, got {type(W).__name__}")
    if backend_name(W.xp) == "cupy":
        from cupyx.scipy.sparse.linalg import LinearOperator  # noqa: PLC0415
    else:
        from scipy.sparse.linalg import LinearOperator  # noqa: PLC0415
    WH = W.H
    return LinearOperator(
        shape=W.shape,
        dtype=W.dtype,
        matvec=lambda x: W @ x.reshape(-1),
        rmatvec=lambda x: WH @ x.reshape(-1),
        matmat=lambda X: W @ X,
        rmatmat=lambda X: WH @ X,
    )

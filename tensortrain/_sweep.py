"""The one skeleton of the algorithms built from sweeps over the cores of a TT.

Cross approximation, AMEn and DMRG, and the Riemannian tools share a pattern: a TT whose cores
left of a position are left-orthogonal and right of it right-orthogonal, a sweep that moves
that position core by core (or bond by bond), a small local problem at each stop, and the
*interfaces* (environments) of the fixed cores on either side, updated incrementally as the
sweep moves.  This module holds that pattern once:

* :func:`core_order` / :func:`bond_order`: the positions visited by a half sweep;
* :func:`run_sweeps`: the outer loop (alternating half sweeps, a tolerance, a hard cap that
  warns with :class:`~tensortrain.errors.ConvergenceWarning` and says what was achieved);
* :class:`Environments`: the left and right interfaces of a *sandwich* of layers,
  ``<bra | ket>`` or ``<bra | A | ket>``, each stored scaled by an exact power of two with
  its exponent kept on the side, so that no interface overflows or underflows for any ``d``
  or any magnitude of the operands (see :mod:`tensortrain._scaling`).

Each algorithm supplies only its local step.

Conventions (those of the whole package): a TT core has shape ``(r_prev, n, r_next)``, an
operator core ``(r_prev, m, n, r_next)`` with ``m`` the row (output) mode.  The left
interface ``L[k]`` contracts cores ``0 .. k-1`` of every layer: shape ``(rb, rk)`` for two
layers, ``(rb, ra, rk)`` for three (bra rank, operator rank, ket rank).  The right interface
``R[k]`` contracts cores ``k .. d-1``; ``L[0]`` and ``R[d]`` are ones.  The bra is
conjugated.  ``L[k]`` is stored as ``left(k) * 2**left_exp(k)``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

from . import _scaling
from ._backend import get_xp
from .errors import ConvergenceWarning, TTError

__all__ = ["core_order", "bond_order", "run_sweeps", "SweepResult", "Environments",
           "contract_left", "contract_right"]


def core_order(d: int, direction: str) -> range:
    """Cores visited by a half sweep: ``0 .. d-1`` (``'right'``) or ``d-1 .. 0`` (``'left'``)."""
    if direction == "right":
        return range(d)
    if direction == "left":
        return range(d - 1, -1, -1)
    raise TTError(f"direction must be 'right' or 'left', got {direction!r}")


def bond_order(d: int, direction: str) -> range:
    """Bonds ``(k, k+1)`` visited by a half sweep, as ``k``: ``0 .. d-2`` or ``d-2 .. 0``."""
    if direction == "right":
        return range(d - 1)
    if direction == "left":
        return range(d - 2, -1, -1)
    raise TTError(f"direction must be 'right' or 'left', got {direction!r}")


class SweepResult:
    """What :func:`run_sweeps` did: ``sweeps`` (half sweeps run), ``history`` (the value each
    half sweep returned), ``converged`` and ``reason`` (``'tolerance'``, ``'cap'`` or
    ``'stopped'`` when the step asked to stop)."""

    __slots__ = ("sweeps", "history", "converged", "reason")

    def __init__(self, sweeps: int, history: list, converged: bool, reason: str):
        self.sweeps = sweeps
        self.history = history
        self.converged = converged
        self.reason = reason

    def __repr__(self) -> str:
        return (f"SweepResult(sweeps={self.sweeps}, converged={self.converged}, "
                f"reason={self.reason!r}, last={self.history[-1] if self.history else None})")


def run_sweeps(half_sweep: Callable[[str, int], float | None], *, max_half_sweeps: int,
               tol: float, name: str, what: str = "change", first: str = "right",
               min_half_sweeps: int = 1, warn: bool = True) -> SweepResult:
    """Run ``half_sweep(direction, i)`` alternately to the right and to the left.

    ``half_sweep`` returns the quantity the stopping rule watches (a residual, a relative
    change, a validation error) or ``None`` to stop at once (e.g. an evaluation budget met).
    The loop stops after the first half sweep (at least ``min_half_sweeps``) whose value is
    ``<= tol``, or at the hard cap ``max_half_sweeps``; hitting the cap warns with
    :class:`~tensortrain.errors.ConvergenceWarning` naming ``name``, ``what`` and the value
    achieved (unless ``warn`` is false).  A NaN value is never ``<= tol``.
    """
    if max_half_sweeps < 1:
        raise TTError(f"{name}: the number of sweeps must be at least 1, got {max_half_sweeps}")
    other = {"right": "left", "left": "right"}
    if first not in other:
        raise TTError(f"direction must be 'right' or 'left', got {first!r}")
    direction = first
    history: list = []
    for i in range(max_half_sweeps):
        value = half_sweep(direction, i)
        if value is None:
            return SweepResult(i + 1, history, False, "stopped")
        history.append(float(value))
        if i + 1 >= min_half_sweeps and float(value) <= tol:
            return SweepResult(i + 1, history, True, "tolerance")
        direction = other[direction]
    if warn:
        last = history[-1] if history else math.nan
        warnings.warn(f"{name} stopped at its cap of {max_half_sweeps} half sweeps with "
                      f"{what} {last:.3g} > tolerance {tol:.3g}",
                      ConvergenceWarning, stacklevel=3)
    return SweepResult(max_half_sweeps, history, False, "cap")


def contract_left(env, bra, ket, op=None):
    """One step of a left interface: cores ``k`` of the layers absorbed into ``L[k]``.

    ``env`` ``(rb, rk)`` or ``(rb, ra, rk)``; ``bra`` and ``ket`` 3-D cores; ``op`` a 4-D
    core or None.  The bra is conjugated.  Returns ``L[k+1]`` (unscaled).
    """
    xp = get_xp(env)
    bc = xp.conj(bra) if bra.dtype.kind == "c" else bra
    if op is None:
        t = xp.tensordot(env, ket, axes=(1, 0))                    # (a, i, b2)
        return xp.tensordot(bc, t, axes=([0, 1], [0, 1]))          # (a2, b2)
    t = xp.tensordot(env, ket, axes=(2, 0))                        # (a, c, j, b2)
    t = xp.tensordot(t, op, axes=([1, 2], [0, 2]))                 # (a, b2, i, c2)
    t = xp.tensordot(bc, t, axes=([0, 1], [0, 2]))                 # (a2, b2, c2)
    return t.transpose(0, 2, 1)


def contract_right(env, bra, ket, op=None):
    """One step of a right interface: cores ``k`` of the layers absorbed into ``R[k+1]``,
    giving ``R[k]`` (unscaled); shapes as in :func:`contract_left`."""
    xp = get_xp(env)
    bc = xp.conj(bra) if bra.dtype.kind == "c" else bra
    if op is None:
        t = xp.tensordot(ket, env, axes=(2, 1))                    # (b, i, a2)
        return xp.tensordot(bc, t, axes=([1, 2], [1, 2]))          # (a, b)
    t = xp.tensordot(ket, env, axes=(2, 2))                        # (b, j, a2, c2)
    t = xp.tensordot(op, t, axes=([2, 3], [1, 3]))                 # (c, i, b, a2)
    t = xp.tensordot(bc, t, axes=([1, 2], [1, 3]))                 # (a, c, b)
    return t


class Environments:
    """Left and right interfaces of ``<bra | ket>`` or ``<bra | op | ket>``, kept scaled.

    ``bra``, ``ket`` (and ``op``) are *lists* of cores that the algorithm owns and updates in
    place (``ket[k] = new_core``); after changing core ``k`` it calls :meth:`update_left`
    ``(k)`` (moving right) or :meth:`update_right` ``(k)`` (moving left).  Pass the same list
    as ``bra`` and ``ket`` for a norm-like sandwich.

    Storage: ``L[k] = left(k) * 2**left_exp(k)`` with ``max |left(k)|`` in ``[0.5, 1)`` (an
    exact power-of-two rescaling after every step), likewise for the right side.  Exponents
    are Python ints on NumPy (0-d device integers on CuPy until :meth:`left_exp` is asked).
    """

    def __init__(self, bra: list, ket: list, op: list | None = None):
        d = len(ket)
        if len(bra) != d or (op is not None and len(op) != d):
            raise TTError(f"layers of different lengths: bra {len(bra)}, ket {d}"
                          + ("" if op is None else f", op {len(op)}"))
        if d == 0:
            raise TTError("a sandwich needs at least one core")
        self.bra, self.ket, self.op = bra, ket, op
        self.d = d
        xp = get_xp(ket[0])
        dtype = ket[0].dtype
        shape = (1, 1) if op is None else (1, 1, 1)
        one = xp.ones(shape, dtype=dtype)
        self._left: list = [None] * (d + 1)
        self._right: list = [None] * (d + 1)
        self._lexp: list = [0] * (d + 1)
        self._rexp: list = [0] * (d + 1)
        self._left[0], self._right[d] = one, one.copy()

    def _layer(self, k):
        return self.bra[k], self.ket[k], (None if self.op is None else self.op[k])

    def left(self, k: int):
        """``L[k]`` scaled (see the class docstring); computed interfaces only."""
        if self._left[k] is None:
            raise TTError(f"left interface {k} has not been computed")
        return self._left[k]

    def right(self, k: int):
        """``R[k]`` scaled; computed interfaces only."""
        if self._right[k] is None:
            raise TTError(f"right interface {k} has not been computed")
        return self._right[k]

    def left_exp(self, k: int) -> int:
        """The power of two of ``L[k]`` (a host int)."""
        return int(self._lexp[k])

    def right_exp(self, k: int) -> int:
        """The power of two of ``R[k]`` (a host int)."""
        return int(self._rexp[k])

    def update_left(self, k: int) -> None:
        """``L[k+1]`` from ``L[k]`` and cores ``k`` (after core ``k`` changed)."""
        b, x, a = self._layer(k)
        raw = contract_left(self.left(k), b, x, a)
        self._left[k + 1], e = _scaling.normalize(raw)
        self._lexp[k + 1] = self._lexp[k] + e

    def update_right(self, k: int) -> None:
        """``R[k]`` from ``R[k+1]`` and cores ``k`` (after core ``k`` changed)."""
        b, x, a = self._layer(k)
        raw = contract_right(self.right(k + 1), b, x, a)
        self._right[k], e = _scaling.normalize(raw)
        self._rexp[k] = self._rexp[k + 1] + e

    def build_left(self, upto: int) -> None:
        """All left interfaces ``L[1] .. L[upto]``."""
        for k in range(upto):
            self.update_left(k)

    def build_right(self, downto: int) -> None:
        """All right interfaces ``R[d-1] .. R[downto]``."""
        for k in range(self.d - 1, downto - 1, -1):
            self.update_right(k)

    def value(self, k: int) -> tuple:
        """The whole sandwich, split at ``k``: ``(s, e)`` with ``<bra|op|ket> = s * 2**e``,
        ``s`` a 0-d array (``L[k]`` and ``R[k]`` must be computed)."""
        xp = get_xp(self.left(k))
        s = xp.sum(self.left(k) * self.right(k))
        return s, self.left_exp(k) + self.right_exp(k)


def check_layers(layers: Sequence[list]) -> None:
    """Raise :class:`TTError` unless the layers' neighbouring ranks agree (a cheap guard for
    algorithms that build their own layers)."""
    for layer in layers:
        for k in range(len(layer) - 1):
            if layer[k].shape[-1] != layer[k + 1].shape[0]:
                raise TTError(f"core {k} has right rank {layer[k].shape[-1]} but core {k + 1} "
                              f"has left rank {layer[k + 1].shape[0]}")

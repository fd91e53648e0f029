"""Exception types raised by tensortrain.

Every bad value or shape raises a subclass of :class:`TTError`, which is itself a
``ValueError`` so that ``except ValueError`` keeps working.  Wrong *types* (an integer
array where floats are needed, NumPy mixed with CuPy) raise ``TypeError``.

This holds for the whole package, :mod:`tensortrain.nn` and :mod:`tensortrain.datasets`
included: a bad layer width, learning rate, batch size or model file raises a ``TTError``
(a :class:`ShapeError` for a wrong input shape, a :class:`TTFileError` for a bad file), so
one ``except tt.TTError`` catches every refused value, and code written against plain
``ValueError`` keeps working.  Operations that are valid but not implemented raise
``NotImplementedError``; misuse of an object's state (``backward`` before ``forward``) raises
``RuntimeError``.
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "ConvergenceWarning",
    "ModeError",
    "RankError",
    "ShapeError",
    "TTError",
    "TTFileError",
    "TTIndexError",
]


class TTError(ValueError):
    """Base class of tensortrain's value errors."""


class ShapeError(TTError):
    """An array or TT object has the wrong shape, or two operands' shapes disagree."""


class RankError(TTError):
    """Ranks of TT cores are inconsistent, or a rank option is invalid."""


class ModeError(TTError):
    """Modes (the factors of a size) are invalid or do not match."""


class TTIndexError(TTError, IndexError):
    """An index into a TT object is out of range or of an unsupported kind."""


class TTFileError(TTError):
    """A file given to :func:`tensortrain.load` is truncated, foreign or of an unknown version."""


class BackendError(TypeError):
    """Operands live on different array backends (NumPy and CuPy)."""


class ConvergenceWarning(RuntimeWarning):
    """An iterative algorithm (cross, AMEn, DMRG, completion) stopped at its sweep, iteration
    or evaluation cap before meeting its tolerance; the message says what was achieved."""

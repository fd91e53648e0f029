"""The sweep driver of :func:`tensortrain.cross.cross` (the algorithm is described in that
module's docstring): option checks, :class:`CrossInfo`, the half sweeps with their stopping
tests, and the maxvol refinement.  The index sets and cores live in :mod:`._cross_core`.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import sys
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import _sweep
from ._backend import resolve_xp
from ._cross_core import (
    _BudgetExhausted,
    _check_arity,
    _Cross,
    _default_start,
    _Evaluator,
    _line_search,
    _random_indices,
    _rel_err,
    _tt_entries,
)
from ._validation import check_eps, check_float_dtype, check_max_rank, check_modes, make_rng
from .errors import ConvergenceWarning, ModeError, TTError
from .tensor import TTTensor

__all__ = ["CrossInfo", "cross"]


# ---- diagnostics ------------------------------------------------------------------------------
@dataclass(frozen=True)
class CrossInfo:
    """What :func:`cross` did (returned with ``return_info=True``).

    Attributes
    ----------
    evaluations : int
        Entries sent to ``f`` (with ``cache=True`` each distinct entry at most once).
    unique_evaluations : int
        Distinct multi-indices among them.
    sweeps : int
        Half sweeps run (a full sweep is a half sweep to the right and one to the left).
    ranks : list of tuple
        The TT-ranks after the start and after every half sweep.
    validation_errors : list of float
        Relative error ``||f - x||_2 / ||f||_2`` on the validation entries, same points in time
        (NaN without a validation set).
    changes : list of float
        Relative change ``||x_new - x_old||_F / ||x_new||_F`` of every half sweep.
    evaluations_per_sweep : list of int
        The value of ``evaluations`` at the same points in time.
    converged : bool
        Whether both stopping tests were met.
    reason : str
        ``'converged'``, ``'max_evals'`` (budget spent), ``'nswp'`` (sweep cap),
        ``'max_rank'`` (every bond at its cap) or ``'exact'`` (nothing left to sample).
    validation_error : float
        The last validation error (the achieved accuracy estimate).
    refined : bool
        Whether the maxvol refinement (option ``refine``) replaced the converged TT; the
        histories then end with one more entry (its ranks, validation error, change and
        evaluations), which ``sweeps`` does not count.
    """

    evaluations: int
    unique_evaluations: int
    sweeps: int
    ranks: list = field(default_factory=list)
    validation_errors: list = field(default_factory=list)
    changes: list = field(default_factory=list)
    evaluations_per_sweep: list = field(default_factory=list)
    converged: bool = False
    reason: str = ""
    validation_error: float = math.nan
    refined: bool = False


def _check_options(modes, eps, max_rank, max_evals, nswp, validation, kick, dtype):
    modes = _modes_or_raise(modes)
    eps = check_eps(eps)
    caps = check_max_rank(max_rank, len(modes)) if len(modes) > 1 else None
    for name, v, low in (("max_evals", max_evals, 1), ("nswp", nswp, 1)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Integral)):
            raise TypeError(f"{name} must be an int or None, got {type(v).__name__} {v!r}")
        if v is not None and v < low:
            raise TTError(f"{name} must be >= {low}, got {v}")
    if isinstance(validation, bool) or not isinstance(validation, numbers.Integral):
        raise TypeError(f"validation must be an int (number of random entries), got "
                        f"{type(validation).__name__} {validation!r}")
    if validation < 0:
        raise TTError(f"validation must be >= 0, got {validation}")
    if isinstance(kick, bool) or not isinstance(kick, numbers.Integral) or kick < 1:
        raise TTError(f"kick must be an int >= 1, got {kick!r}")
    dtype = check_float_dtype(dtype, "dtype")
    return modes, eps, caps, dtype


def _check_chunks(chunks, executor):
    if chunks is not None and (isinstance(chunks, bool) or not isinstance(chunks, numbers.Integral)
                               or chunks < 1):
        raise TTError(f"chunks must be an int >= 1 or None, got {chunks!r}")
    if executor is not None and not (hasattr(executor, "submit") or hasattr(executor, "map")):
        raise TypeError(f"executor must have a submit(fn, arg) or map(fn, args) method, got "
                        f"{type(executor).__name__}")


def _modes_or_raise(modes):
    try:
        items = tuple(modes) if not isinstance(modes, numbers.Integral) else (modes,)
    except TypeError:
        raise TypeError(f"modes must be a sequence of positive ints, got {modes!r}") from None
    for k, m in enumerate(items):
        if isinstance(m, numbers.Integral) and not isinstance(m, bool) and m < 1:
            raise ModeError(f"modes[{k}] must be a positive integer (a mode of size {m} has no "
                            f"entries to sample), got modes {items}")
    return check_modes(items)


def cross(f, modes, *, eps=1e-10, max_rank=None, max_evals=None, nswp=None, rng=None, x0=None,
          cache=True, validation=1000, executor=None, progress=False, dtype=np.float64,
          xp=None, kick=3, chunks=None, refine=None, return_info=False):
    """TT cross approximation of a tensor given by a function of its multi-indices.

    ``f(idx)`` receives an integer array of shape ``(k, d)`` (NumPy, or CuPy with
    ``xp='cupy'``), each row a multi-index ``(i_1, ..., i_d)``, and returns ``k`` values.
    Only a few fibres are sampled: about ``sum_k r_{k-1} n_k r_k`` entries plus the
    candidates and the validation set, never the ``prod n_k`` of the full tensor.

    Complexity: ``O(d n r^2)`` evaluations of ``f`` and ``O(d n r^3)`` flops per half sweep
    (``n``, ``r`` the largest mode and rank).

    Parameters
    ----------
    f : callable
        ``f(idx) -> values``; must be deterministic.  Values must be finite.
    modes : sequence of int
        The shape ``(n_1, ..., n_d)``.
    eps : float
        Target relative accuracy in the Frobenius norm, as in ``from_dense``; here it is
        *estimated* on the validation set.  It is also the pivot tolerance, relative to the
        RMS of the validation values (never below the round-off of the values involved).
    max_rank : int or sequence of int, optional
        Cap on each bond's rank.
    max_evals : int, optional
        Budget of evaluations of ``f`` (validation entries included).  When the next batch
        would pass it, the last complete TT is returned with a ``ConvergenceWarning``.
    nswp : int, optional
        Cap on full sweeps (two half sweeps each); default 20.
    rng : int or numpy.random.Generator, optional
        The only source of randomness (validation set, candidate fibres).
    x0 : int array (k, d), optional
        Candidate starting multi-indices; the cross starts at the one where ``|f|`` is
        largest (default: the largest validation sample), moved along the fibres through it
        to larger ``|f|`` when that gains more than a factor 16 (every interpolation core
        divides by the first pivot; ``sum n_k`` evaluations per pass, at most two passes).
    cache : bool
        Keep every value and never ask ``f`` twice for the same entry.
    validation : int
        Number of random entries on which the error is measured after every half sweep
        (0: stop on the relative change alone, which can stop early with a large error).
    executor : object, optional
        ``submit(fn, arg) -> future`` or ``map(fn, args)``: each batch is split into
        ``chunks`` pieces evaluated in parallel.  ``f`` (and the index chunks) must be
        picklable for process-based executors.  Results equal the serial ones for the same
        ``rng``.
    progress : bool
        A tqdm progress bar with the sweep, ranks, evaluations and validation error.
    dtype : dtype
        Floating dtype of the values and cores (complex allowed).
    xp : None, 'numpy', 'cupy' or module
        Backend of the cores returned and of the index arrays passed to ``f``.  The small
        pivot computations run on the host.
    kick : int
        Candidate fibres per bond and half sweep (the largest rank increase per half sweep).
    chunks : int, optional
        Pieces per batch for the executor (default 16).
    refine : bool or None
        After convergence, replace the greedy pivots by maxvol ones: a half sweep to the left
        and one to the right in which each bond's pivots become a locally maximal-volume
        square submatrix of its fibre matrix (row swaps while an entry of ``C C[piv]^{-1}``
        exceeds ``1.01`` in modulus, at most ``4 r + 16`` swaps per bond), then the
        interpolation cores of the new sets.  Ranks are kept; it costs the fibres of the new
        index sets (at most ``sum_k r_{k-1} n_k r_k`` evaluations, less what the cache
        holds).  It pays only where the ranks are already exact and the error is set by the
        conditioning of the greedy pivots: ``None`` (default) refines when the converged
        validation error is at most ``1000`` times the machine epsilon of ``dtype`` (never
        without a validation set), ``True`` after every converged run, ``False`` never.
        The refined TT is kept unless its validation error is above both ``eps`` and the
        converged one, or the budget runs out first (the converged TT is returned).
    return_info : bool
        Also return a :class:`CrossInfo`.

    Returns
    -------
    TTTensor, or (TTTensor, CrossInfo)

    Raises
    ------
    ModeError
        A mode is not a positive integer.
    TTError
        ``eps < 0``, ``f`` returned NaN/Inf (the message names the multi-indices), or a
        budget too small for even the starting fibres.
    ShapeError
        ``f`` returned a wrong number of values.
    TypeError
        ``f`` is not callable or takes a different number of arguments.

    Examples
    --------
    >>> import numpy as np, tensortrain as tt
    >>> from tensortrain.cross import cross
    >>> x = cross(lambda i: 1.0 / (1.0 + i.sum(axis=1)), (8,) * 4, eps=1e-8, rng=0)
    >>> i = np.indices((8,) * 4).sum(axis=0)
    >>> bool(np.linalg.norm(x.full() - 1 / (1 + i)) < 1e-7 * np.linalg.norm(1 / (1 + i)))
    True
    """
    modes, eps, caps, dtype = _check_options(modes, eps, max_rank, max_evals, nswp, validation,
                                             kick, dtype)
    _check_arity(f, 1, "f", "an integer array (k, d) of multi-indices")
    _check_chunks(chunks, executor)
    if refine is not None and not isinstance(refine, (bool, np.bool_)):
        raise TypeError(f"refine must be None, True or False, got {type(refine).__name__} "
                        f"{refine!r}")
    xp = resolve_xp(xp)
    rng = make_rng(rng)
    nswp = 20 if nswp is None else int(nswp)
    ev = _Evaluator(f, len(modes), dtype, xp, cache=cache, max_evals=max_evals,
                    executor=executor, chunks=chunks)
    tt, info = _run(ev, modes, eps, caps, nswp, rng, x0, validation, progress, kick, dtype,
                    refine)
    tt = tt if xp is np else tt.to(xp)
    return (tt, info) if return_info else tt


def _run(ev, modes, eps, caps, nswp, rng, x0, validation, progress, kick, dtype, refine):
    d = len(modes)
    try:
        total = math.prod(modes)
        vidx = None
        vvals = None
        if validation:
            k = min(validation, total)
            vidx = _random_indices(rng, modes, k)
            vvals = ev(vidx)
        start, best = _default_start(ev, modes, rng, x0, vidx, vvals)
    except _BudgetExhausted:
        raise TTError(f"max_evals={ev.max_evals} is too small: the validation set and the "
                      f"search for a nonzero starting entry need more evaluations") from None
    if d == 1 or best <= 0:
        # d == 1: one fibre is the whole tensor; an all-zero sample: the zero tensor
        try:
            if d == 1:
                cores = [ev(np.arange(modes[0])[:, None]).reshape(1, modes[0], 1)]
                reason = "exact"
            else:
                cores = [np.zeros((1, n, 1), dtype=dtype) for n in modes]
                reason = "exact"
                warnings.warn("cross: every sampled entry is zero; returning the zero tensor",
                              ConvergenceWarning, stacklevel=_caller_level())
        except _BudgetExhausted:
            raise TTError(f"max_evals={ev.max_evals} is too small for the {modes[0]} entries "
                          f"of a one-dimensional tensor") from None
        x = TTTensor(cores)
        verr = _rel_err(_tt_entries(cores, vidx), vvals) if vidx is not None else math.nan
        info = CrossInfo(ev.total, ev.unique, 0, [x.ranks], [verr], [], [ev.total],
                         converged=True, reason=reason, validation_error=verr)
        return x, info

    with contextlib.suppress(_BudgetExhausted):  # keep the start; the next step reports it
        start = _line_search(ev, modes, start)
    cx = _Cross(ev, modes, eps, caps, rng, kick, dtype)
    cx.start(start)
    cx.scale = float(np.sqrt(np.mean(np.abs(vvals) ** 2))) if vvals is not None else 0.0
    try:
        cores = cx.cores("left")
    except _BudgetExhausted:
        raise TTError(f"max_evals={ev.max_evals} is too small for the first fibres "
                      f"(about {sum(modes)} evaluations after the validation set)") from None
    state = {"x": TTTensor._trusted(cores), "cores": cores, "reason": None}

    def verr_of(cs):
        return _rel_err(_tt_entries(cs, vidx), vvals) if vidx is not None else math.nan

    ranks = [state["x"].ranks]
    verrs = [verr_of(cores)]
    changes: list = []
    evals = [ev.total]
    bar = _progress_bar(progress, 2 * nswp)

    def half_sweep(direction, i):
        bonds = _sweep.bond_order(d, direction)
        added = 0
        try:
            for k in bonds:
                added += cx.bond(k, direction)
            cs = cx.cores("left" if direction == "right" else "right")
        except _BudgetExhausted:
            state["reason"] = "max_evals"
            return None
        x_new = TTTensor._trusted(cs)
        if added == 0:
            change = 0.0
        else:
            nx = x_new.norm()
            change = (x_new - state["x"]).norm() / nx if nx > 0 else 0.0
        verr = verr_of(cs)
        state["x"], state["cores"] = x_new, cs
        ranks.append(x_new.ranks)
        verrs.append(verr)
        changes.append(float(change))
        evals.append(ev.total)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(sweep=i + 1, rank=max(x_new.ranks), evals=ev.total,
                            error=f"{verr:.2e}")
        value = change if math.isnan(verr) else max(change, verr)
        if added == 0 and value > eps:
            if caps is not None and all(len(cx.I[k + 1]) >= caps[k] for k in range(d - 1)):
                state["reason"] = "max_rank"
                return None
            # the candidates saw nothing above the pivot tolerance, yet the error is too large:
            # look for smaller corrections
            cx.pivot_tol = cx.pivot_tol / 8
        return value

    res = _sweep.run_sweeps(half_sweep, max_half_sweeps=2 * nswp, tol=eps, name="cross",
                            what="validation error / change", min_half_sweeps=1, warn=False)
    if bar is not None:
        bar.close()
    refined = False
    if refine is None:  # auto: only in the round-off regime, where the pivots set the error
        refine = bool(verrs[-1] <= 1000 * np.finfo(dtype).eps)
    if refine and res.reason == "tolerance":
        refined = _refine(cx, state, eps, verr_of, (ranks, verrs, changes, evals), ev)
    x = state["x"]
    verr = verrs[-1]
    if res.reason == "tolerance":
        reason = "converged"
    elif res.reason == "cap":
        reason = "nswp"
    else:
        reason = state["reason"]
    if reason != "converged":
        what = {"nswp": f"its cap of nswp={nswp} sweeps",
                "max_evals": f"its budget of max_evals={ev.max_evals} evaluations",
                "max_rank": "max_rank on every bond"}[reason]
        warnings.warn(f"cross stopped at {what} with validation error {verr:.3g} "
                      f"(eps={eps:.3g}), ranks {x.ranks}, {ev.total} evaluations",
                      ConvergenceWarning, stacklevel=_caller_level())
    info = CrossInfo(ev.total, ev.unique, res.sweeps, ranks, verrs, changes, evals,
                     converged=reason == "converged", reason=reason, validation_error=verr,
                     refined=refined)
    return x, info


def _refine(cx, state, eps, verr_of, histories, ev):
    """The maxvol refinement after convergence: a half sweep to the left that replaces every
    ``J[k+1]`` by a maxvol set of its bond's fibre matrix (given ``I[k+1]``), one to the right
    that does the same for ``I[k+1]`` (given the new ``J``), then the left interpolation cores
    of the new sets.  Ranks are kept.  The result replaces the converged one unless its
    validation error is above both ``eps`` and the converged error; a budget that runs out
    keeps the converged TT.  Returns whether it replaced it (and appends to the histories)."""
    ranks, verrs, changes, evals = histories
    try:
        moved = cx.refine("left")
        moved += cx.refine("right")
        if not moved:
            return False
        cs = cx.cores("left")
    except _BudgetExhausted:
        return False
    x_new = TTTensor._trusted(cs)
    verr = verr_of(cs)
    if verr > max(eps, verrs[-1]):
        return False
    nx = x_new.norm()
    changes.append(float((x_new - state["x"]).norm() / nx) if nx > 0 else 0.0)
    state["x"], state["cores"] = x_new, cs
    ranks.append(x_new.ranks)
    verrs.append(verr)
    evals.append(ev.total)
    return True


def _caller_level():
    """The ``stacklevel`` that points a warning issued by this module's caller of
    ``_caller_level`` at the first frame outside the package (the user's call, also through
    the front ends)."""
    pkg = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == pkg:
        frame, level = frame.f_back, level + 1
    return level


def _progress_bar(progress, total):
    if not progress:
        return None
    from tqdm.auto import tqdm  # noqa: PLC0415  (only when asked for)

    return tqdm(total=total, desc="cross", unit="half sweep")

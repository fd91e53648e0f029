"""The machinery of :mod:`tensortrain.cross`: the evaluator (cache, budget, executor, checks
of what ``f`` returns), the nested index sets with their greedy pivot search, and the
interpolating cores.  Private: the public functions validate, these trust.
"""

from __future__ import annotations

import inspect

import numpy as np

from . import _sweep
from ._backend import to_host
from .errors import ShapeError, TTError


class _BudgetExhausted(Exception):
    """Raised inside a sweep when the next batch would pass ``max_evals``."""


# ---- evaluation ------------------------------------------------------------------------------
def _call_count(f, what):
    """Check that ``f`` can be called with one positional argument (when inspectable)."""
    if not callable(f):
        raise TypeError(f"{what} must be callable, got {type(f).__name__} {f!r}")
    try:
        sig = inspect.signature(f)
    except (TypeError, ValueError):  # builtins and C functions: nothing to check
        return
    params = list(sig.parameters.values())
    if any(p.kind == p.VAR_POSITIONAL for p in params):
        return
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in positional if p.default is p.empty]
    return len(required), len(positional)


def _check_arity(f, nargs, what, expected):
    counts = _call_count(f, what)
    if counts is None:
        return
    required, positional = counts
    if not (required <= nargs <= positional):
        raise TypeError(f"{what} must take {nargs} positional argument(s) ({expected}), but its "
                        f"signature {inspect.signature(f)} takes {required}")


def _index_keys(idx):
    """Hashable keys (bytes) of the rows of a C-contiguous int64 ``(k, d)`` array."""
    idx = np.ascontiguousarray(idx, dtype=np.int64)
    if idx.shape[1] == 0:
        return [b""] * idx.shape[0]
    return idx.view(np.dtype((np.void, 8 * idx.shape[1]))).ravel().tolist()


class _Evaluator:
    """``f`` with a cache, an evaluation count, a budget and an optional executor."""

    def __init__(self, f, d, dtype, xp, *, cache=True, max_evals=None, executor=None,
                 chunks=None, describe=None):
        self.f = f
        self.d = d
        self.dtype = dtype
        self.xp = xp
        self.cache = {} if cache else None
        self.seen = set() if not cache else None
        self.max_evals = max_evals
        self.executor = executor
        self.chunks = chunks
        self.describe = describe or (lambda rows: rows.tolist())
        self.total = 0
        self.scale = 0.0  # max |value| seen

    @property
    def unique(self):
        return len(self.cache) if self.cache is not None else len(self.seen)

    def __call__(self, idx):
        """Values at the rows of ``idx`` (host array of ``dtype``)."""
        idx = np.ascontiguousarray(idx, dtype=np.int64)
        if idx.shape[0] == 0:
            return np.zeros(0, dtype=self.dtype)
        keys = _index_keys(idx)
        if self.cache is None:
            vals = self._evaluate(idx)
            self.seen.update(keys)
            return vals
        cache = self.cache
        missing = {}
        for p, key in enumerate(keys):
            if key not in cache and key not in missing:
                missing[key] = p
        if missing:
            rows = idx[np.fromiter(missing.values(), dtype=np.int64, count=len(missing))]
            vals = self._evaluate(rows)
            cache.update(zip(missing.keys(), vals.tolist(), strict=True))
        return np.array([cache[k] for k in keys], dtype=self.dtype)

    def _evaluate(self, rows):
        k = rows.shape[0]
        if self.max_evals is not None and self.total + k > self.max_evals:
            raise _BudgetExhausted
        self.total += k
        if self.executor is None:
            vals = self._checked(self.f(self._to_xp(rows)), rows)
        else:
            vals = self._parallel(rows)
        if vals.size:
            self.scale = max(self.scale, float(np.abs(vals).max()))
        return vals

    def _to_xp(self, rows):
        return rows if self.xp is np else self.xp.asarray(rows)

    def _parallel(self, rows):
        k = rows.shape[0]
        n = self.chunks if self.chunks is not None else 16
        n = max(1, min(n, k))
        bounds = np.linspace(0, k, n + 1).astype(np.int64)
        parts = [rows[bounds[i]:bounds[i + 1]] for i in range(n) if bounds[i + 1] > bounds[i]]
        ex = self.executor
        args = [self._to_xp(p) for p in parts]
        if hasattr(ex, "submit"):
            futures = [ex.submit(self.f, a) for a in args]
            results = [fu.result() for fu in futures]
        else:
            results = list(ex.map(self.f, args))
        return np.concatenate([self._checked(r, p) for r, p in zip(results, parts, strict=True)])

    def _checked(self, vals, rows):
        k = rows.shape[0]
        try:
            vals = to_host(vals)
        except Exception as exc:  # an object that is not array-like
            raise TypeError(f"f must return an array of {k} values, got "
                            f"{type(vals).__name__}") from exc
        if vals.dtype == object or vals.dtype.kind not in "biufc":
            raise TypeError(f"f must return {k} numbers, got an array of dtype {vals.dtype}")
        if vals.shape != (k,):
            if vals.size == k and vals.ndim == 2 and 1 in vals.shape:
                vals = vals.reshape(k)
            else:
                raise ShapeError(
                    f"f must return {k} values (shape ({k},)) for the {k} multi-indices it "
                    f"was given, got shape {vals.shape}; first indices: "
                    f"{self.describe(rows[:3])}")
        if vals.dtype.kind == "c" and np.dtype(self.dtype).kind != "c":
            if np.any(vals.imag != 0):
                raise TypeError(f"f returned complex values but dtype is {np.dtype(self.dtype)}; "
                                f"pass dtype=np.complex128")
            vals = vals.real
        bad = ~np.isfinite(vals)
        if bad.any():
            where = np.flatnonzero(bad)
            raise TTError(f"f returned {where.size} non-finite value(s) (NaN or Inf), e.g. "
                          f"{vals[where[0]]} at {self.describe(rows[where[:5]])}")
        return vals.astype(self.dtype, copy=False)


# ---- the TT of the current index sets ---------------------------------------------------------
def _interp_cores(t_list, piv_list, side):
    """Cores from fibre matrices: ``C C[piv]^{-1}`` (``side='left'``) for all but the last
    core, or the mirror image (``'right'``) for all but the first."""
    d = len(t_list)
    cores = []
    for k, t in enumerate(t_list):
        if (side == "left" and k == d - 1) or (side == "right" and k == 0):
            cores.append(t)
            continue
        r0, n, r1 = t.shape
        if side == "left":
            cores.append(_interp_matrix(t.reshape(r0 * n, r1), piv_list[k]).reshape(r0, n, r1))
        else:
            b = _interp_matrix(t.reshape(r0, n * r1).T, piv_list[k])
            cores.append(b.T.reshape(r0, n, r1))
    return cores


def _interp_matrix(c, piv):
    """``C C[piv]^{-1}`` for a tall ``C`` whose rows ``piv`` are a nonsingular square block.

    Computed as ``Q Q[piv]^{-1}`` from ``C = Q R`` (stable where ``C[piv]`` is nearly
    singular), then one step of residual correction ``B += (C - B C[piv]) C[piv]^{-1}``, kept
    only when it does not increase the residual.  The QR form alone carries the round-off of
    ``Q`` (its error is ``eps`` relative to ``C``'s largest singular value in every direction);
    the correction brings ``B C[piv]`` back to ``C`` at the round-off of ``C`` itself: with
    maxvol pivots it lowers the full-tensor error of the Rosenbrock anchor from up to
    ``1.9e-15`` to ``6e-16``.
    """
    q = np.linalg.qr(c)[0]
    b = _solve(q[piv].T, q.T).T
    p = c[piv]
    res = c - b @ p
    b2 = b + _solve(p.T, res.T).T
    if np.all(np.isfinite(b2)) and np.linalg.norm(c - b2 @ p) <= np.linalg.norm(res):
        return b2
    return b


def _solve(a, b):
    """``a^{-1} b``; the least-squares solution where ``a`` is singular to working precision
    (pivots accepted at the round-off level can make it so)."""
    try:
        return np.linalg.solve(a, b)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(a, b, rcond=None)[0]


def _tt_entries(cores, idx):
    """Entries of the TT with host cores ``cores`` at the rows of ``idx`` (scaled: no overflow
    for any ``d``)."""
    m = idx.shape[0]
    v = np.ones((m, 1), dtype=cores[0].dtype)
    exps = np.zeros(m, dtype=np.int64)
    for k, c in enumerate(cores):
        g = c[:, idx[:, k], :]                    # (r0, m, r1)
        v = np.einsum("mr,rms->ms", v, g)
        amax = np.abs(v).max(axis=1)
        e = np.frexp(np.where(amax > 0, amax, 1.0))[1]
        v = np.ldexp(v.real, -e[:, None]) if v.dtype.kind != "c" else (
            np.ldexp(v.real, -e[:, None]) + 1j * np.ldexp(v.imag, -e[:, None]))
        exps += e
    out = v[:, 0]
    if out.dtype.kind == "c":
        return np.ldexp(out.real, exps) + 1j * np.ldexp(out.imag, exps)
    return np.ldexp(out, exps)


def _rel_err(a, b):
    nb = np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / nb) if nb > 0 else float(np.linalg.norm(a - b))


# ---- the algorithm -----------------------------------------------------------------------------
class _Cross:
    """Nested, growing index sets and the greedy pivot search of :func:`cross`."""

    def __init__(self, ev, modes, eps, caps, rng, kick, dtype):
        self.ev = ev
        self.n = modes
        self.d = len(modes)
        self.eps = eps
        self.caps = caps
        self.rng = rng
        self.kick = kick
        self.dtype = dtype
        self.pivot_tol = eps

    def start(self, x):
        """Rank-1 index sets through the multi-index ``x``."""
        d = self.d
        x = np.asarray(x, dtype=np.int64)
        # I[k]: (r_k, k) multi-indices; Ipar[k]: (a, i) parents in I[k-1] x range(n_{k-1})
        self.I = [x[None, :k].copy() for k in range(d + 1)]
        self.J = [x[None, k:].copy() for k in range(d + 1)]
        self.Ipar = [None] + [np.array([[0, x[k - 1]]]) for k in range(1, d + 1)]
        self.Jpar = [np.array([[x[k], 0]]) for k in range(d)] + [None]

    def ranks(self):
        return (1, *(len(self.I[k]) for k in range(1, self.d)), 1)

    # multi-indices of rows / columns of the bond matrix Pi_k ------------------------------------
    def _rows(self, k, pos):
        """Rows ``(a, i)`` of ``I[k] x range(n_k)`` at flat positions ``a * n_k + i``."""
        a, i = np.divmod(np.asarray(pos, dtype=np.int64), self.n[k])
        return np.concatenate([self.I[k][a], i[:, None]], axis=1)

    def _cols(self, k, pos):
        """Columns ``(j, b)`` of bond ``k``, ``range(n_{k+1}) x J[k+2]``, at flat positions
        ``j * |J[k+2]| + b``."""
        j, b = np.divmod(np.asarray(pos, dtype=np.int64), len(self.J[k + 2]))
        return np.concatenate([j[:, None], self.J[k + 2][b]], axis=1)

    def _block(self, left_rows, right_cols):
        """Values on all pairs (outer product) of left and right partial multi-indices."""
        p, q = left_rows.shape[0], right_cols.shape[0]
        idx = np.concatenate([np.repeat(left_rows, q, axis=0), np.tile(right_cols, (p, 1))],
                             axis=1)
        return self.ev(idx).reshape(p, q)

    def row_pivots(self, k):
        """Flat positions of ``I[k+1]`` among the rows of bond ``k``."""
        par = self.Ipar[k + 1]
        return par[:, 0] * self.n[k] + par[:, 1]

    def col_pivots(self, k):
        """Flat positions of ``J[k+1]`` among the columns of bond ``k``."""
        par = self.Jpar[k + 1]
        return par[:, 0] * len(self.J[k + 2]) + par[:, 1]

    # one bond ---------------------------------------------------------------------------------
    def bond(self, k, direction):
        """Sample candidates at bond ``k`` and add pivots; returns how many were added."""
        cap = self.caps[k] if self.caps is not None else None
        r = len(self.I[k + 1])
        if cap is not None and r >= cap:
            return 0
        nrows = len(self.I[k]) * self.n[k]
        ncols = self.n[k + 1] * len(self.J[k + 2])
        prow, pcol = self.row_pivots(k), self.col_pivots(k)
        if direction == "right":
            free = np.setdiff1d(np.arange(ncols), pcol)
        else:
            free = np.setdiff1d(np.arange(nrows), prow)
        if free.size == 0:
            return 0
        c = min(self.kick, free.size)
        cand = np.sort(self.rng.choice(free, size=c, replace=False))
        # never below the round-off of the largest value seen: such pivots are noise and
        # would make the pivot matrices singular
        tol = max(self.pivot_tol * self._scale(),
                  64 * np.finfo(self.dtype).eps * self.ev.scale)
        n_other = nrows if direction == "right" else ncols
        piv_other = prow if direction == "right" else pcol
        extra = max(2 * r, 16)
        if n_other > 2 * (r + extra):
            # screening: the candidates' error on the pivots and a few random other entries;
            # only the candidates that show an error above the tolerance are sampled in full
            # (the screened entries are part of those fibres, so nothing is sampled twice)
            rest = np.setdiff1d(np.arange(n_other), piv_other)
            sub = np.concatenate([piv_other, np.sort(self.rng.choice(rest, size=extra,
                                                                     replace=False))])
            known, new = self._pieces(k, direction, sub, cand)
            coef = np.linalg.lstsq(known[:r], new[:r], rcond=None)[0]
            keep = np.abs(new - known @ coef).max(axis=0) > tol
            if not keep.any():
                return 0
            cand = cand[keep]
            c = cand.size
        known, new = self._pieces(k, direction, np.arange(n_other), cand)
        piv_known = piv_other
        # residual of the candidates: new - known @ known[piv]^{-1} @ new[piv]
        coef = np.linalg.lstsq(known[piv_known], new[piv_known], rcond=None)[0]
        approx = known @ coef
        res = new - approx
        res[piv_known] = 0
        # the residual is a difference of values of size up to max|approx|: below its
        # round-off it is noise, and taking it as a pivot would make the pivot matrix singular
        if approx.size:
            tol = max(tol, 64 * np.finfo(self.dtype).eps * float(np.abs(approx).max()))
        added = 0
        limit = c if cap is None else min(c, cap - r)
        while added < limit:
            flat = int(np.argmax(np.abs(res)))
            i_star, c_star = divmod(flat, c)
            pivot = res[i_star, c_star]
            if not abs(pivot) > tol:
                break
            res = res - np.outer(res[:, c_star], res[i_star]) / pivot
            res[:, c_star] = 0
            res[i_star] = 0
            if direction == "right":
                self._add(k, i_star, int(cand[c_star]))
            else:
                self._add(k, int(cand[c_star]), i_star)
            added += 1
        return added

    def _pieces(self, k, direction, other, cand):
        """Bond ``k``'s values on the pivots' fibres (``known``, ``(len(other), r)``) and the
        candidates' (``new``, ``(len(other), c)``), restricted to the positions ``other`` of
        the other side (rows on a sweep to the right, columns on one to the left)."""
        r = len(self.I[k + 1])
        if direction == "right":
            block = self._block(self._rows(k, other),
                                self._cols(k, np.concatenate([self.col_pivots(k), cand])))
            return block[:, :r], block[:, r:]
        block = self._block(self._rows(k, np.concatenate([self.row_pivots(k), cand])),
                            self._cols(k, other))
        return block[:r].T, block[r:].T

    def _add(self, k, row_pos, col_pos):
        a, i = divmod(row_pos, self.n[k])
        j, b = divmod(col_pos, len(self.J[k + 2]))
        self.Ipar[k + 1] = np.concatenate([self.Ipar[k + 1], [[a, i]]])
        self.I[k + 1] = np.concatenate([self.I[k + 1], np.concatenate(
            [self.I[k][a], [i]])[None]])
        self.Jpar[k + 1] = np.concatenate([self.Jpar[k + 1], [[j, b]]])
        self.J[k + 1] = np.concatenate([self.J[k + 1], np.concatenate(
            [[j], self.J[k + 2][b]])[None]])

    def _scale(self):
        return self.scale if self.scale > 0 else max(self.ev.scale, np.finfo(float).tiny)

    # maxvol refinement ---------------------------------------------------------------------
    def refine(self, direction):
        """Replace the pivots of every bond by a maxvol set of its fibre matrix, keeping the
        ranks: on a half sweep to the right ``I[k+1]`` among the rows ``I[k] x range(n_k)``
        (given ``J[k+1]``), on one to the left ``J[k+1]`` among the columns
        ``range(n_{k+1}) x J[k+2]`` (given ``I[k+1]``).  The sets are rebuilt in the order of
        the half sweep, so they are nested again at its end.  Returns the number of bonds
        whose pivots changed."""
        changed = 0
        for k in _sweep.bond_order(self.d, direction):
            if direction == "right":
                nrows = len(self.I[k]) * self.n[k]
                t = self._block(self._rows(k, np.arange(nrows)), self.J[k + 1])
                old = _match_rows(self._rows(k, np.arange(nrows)), self.I[k + 1])
            else:
                ncols = self.n[k + 1] * len(self.J[k + 2])
                t = self._block(self.I[k + 1], self._cols(k, np.arange(ncols))).T
                old = _match_rows(self._cols(k, np.arange(ncols)), self.J[k + 1])
            piv = _maxvol(np.linalg.qr(t)[0], old)
            if old is None or not np.array_equal(np.sort(piv), np.sort(old)):
                changed += 1
            if direction == "right":
                a, i = np.divmod(piv, self.n[k])
                self.Ipar[k + 1] = np.stack([a, i], axis=1)
                self.I[k + 1] = self._rows(k, piv)
            else:
                j, b = np.divmod(piv, len(self.J[k + 2]))
                self.Jpar[k + 1] = np.stack([j, b], axis=1)
                self.J[k + 1] = self._cols(k, piv)
        return changed

    # the TT -----------------------------------------------------------------------------------
    def cores(self, side):
        """The interpolating cores of the current index sets (evaluating missing fibres)."""
        d, n = self.d, self.n
        t_list, piv = [], []
        for k in range(d):
            left = self._rows(k, np.arange(len(self.I[k]) * n[k]))
            right = self.J[k + 1]
            t = self._block(left, right).reshape(len(self.I[k]), n[k], len(right))
            t_list.append(t)
            if side == "left":
                piv.append(self.row_pivots(k) if k < d - 1 else None)
            else:
                # positions of J[k] among the (j, b) columns of core k, in its C order
                piv.append(None if k == 0 else
                           self.Jpar[k][:, 0] * len(self.J[k + 1]) + self.Jpar[k][:, 1])
        return _interp_cores(t_list, piv, side)


def _default_start(ev, modes, rng, x0, validation_idx, validation_vals):
    cands = []
    if x0 is not None:
        x0 = np.atleast_2d(np.asarray(x0))
        if x0.ndim != 2 or x0.shape[1] != len(modes) or x0.dtype.kind not in "iu":
            raise ShapeError(f"x0 must be integer multi-indices of shape (k, {len(modes)}), got "
                             f"{x0.dtype} array of shape {x0.shape}")
        if np.any(x0 < 0) or np.any(x0 >= np.asarray(modes)):
            raise TTError(f"x0 has multi-indices outside the modes {modes}")
        cands.append((x0.astype(np.int64), ev(x0)))
    if validation_idx is not None and len(validation_idx):
        cands.append((validation_idx, validation_vals))
    best, best_val = None, -1.0
    for idx, vals in cands:
        p = int(np.argmax(np.abs(vals)))
        if abs(vals[p]) > best_val:
            best, best_val = idx[p], abs(vals[p])
    tries = 0
    while best_val <= 0 and tries < 8:  # all zero so far: look a little further
        idx = _random_indices(rng, modes, 256)
        vals = ev(idx)
        p = int(np.argmax(np.abs(vals)))
        best, best_val = idx[p], abs(vals[p])
        tries += 1
    return best, best_val


def _line_search(ev, modes, x, rounds=2, gain=16.0):
    """Move the start to a maximum of ``|f|`` along every fibre through it, when that gains a
    factor above ``gain`` (at most ``rounds`` passes over the dimensions, ``sum n_k``
    evaluations each).

    The first pivot is never replaced, and every interpolation core divides by it: started at
    a small value of a fibre whose values span many orders of magnitude, the cores would hold
    the ratio (``1e15`` for ``(1 + sum_k x_k / k)^-51``) and amplify round-off through ``d``
    cores.  When one pass gains less than ``gain`` the original start is kept (its fibres are
    then the first cores, partly already sampled).
    """
    x0 = np.array(x, dtype=np.int64)
    x = x0.copy()
    first = None
    for _ in range(rounds):
        moved = False
        for k, n in enumerate(modes):
            idx = np.repeat(x[None], n, axis=0)
            idx[:, k] = np.arange(n)
            vals = np.abs(ev(idx))
            if first is None:
                first = vals[x[k]]
            p = int(np.argmax(vals))
            if vals[p] > vals[x[k]]:
                x[k] = p
                moved = True
            best = vals[p]
        if not moved:
            break
        if not best > gain * first:
            return x0
    return x


def _random_indices(rng, modes, k):
    return np.stack([rng.integers(0, n, size=k) for n in modes], axis=1).astype(np.int64)


def _match_rows(rows, wanted):
    """Positions of the multi-indices ``wanted`` among ``rows``, or None if one is missing."""
    pos = {key: p for p, key in enumerate(_index_keys(rows))}
    out = [pos.get(key) for key in _index_keys(wanted)]
    return None if any(p is None for p in out) else np.array(out, dtype=np.int64)


def _maxvol(q, start=None, tol=1e-2, max_swaps=None):
    """Rows of the tall ``q`` (``(m, r)``, full column rank) whose square submatrix has a
    locally maximal volume: no entry of ``q q[piv]^{-1}`` above ``1 + tol`` in modulus.

    Starts at ``start`` when it gives a nonsingular submatrix, otherwise at the rows chosen by
    Gaussian elimination with partial pivoting; then swaps one row at a time (each swap
    multiplies the volume by more than ``1 + tol``), at most ``max_swaps`` times
    (default ``4 r + 16``).
    """
    r = q.shape[1]
    if r == 0:
        return np.zeros(0, dtype=np.int64)
    piv = None
    if start is not None and len(np.unique(start)) == r:
        sub = q[start]
        if np.linalg.cond(sub) < 1 / np.finfo(float).eps:
            piv = np.array(start, dtype=np.int64)
    if piv is None:
        res = q.copy()
        piv = np.zeros(r, dtype=np.int64)
        for j in range(r):
            i = int(np.argmax(np.abs(res[:, j])))
            piv[j] = i
            if res[i, j] != 0:
                res = res - np.outer(res[:, j], res[i]) / res[i, j]
            res[i] = 0
    cap = 4 * r + 16 if max_swaps is None else max_swaps
    for _ in range(cap):
        try:
            b = np.linalg.solve(q[piv].T, q.T).T          # q q[piv]^{-1}, (m, r)
        except np.linalg.LinAlgError:
            break
        flat = int(np.argmax(np.abs(b)))
        i, j = divmod(flat, r)
        if not abs(b[i, j]) > 1 + tol:
            break
        piv[j] = i
    return piv

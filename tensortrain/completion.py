"""Tensor completion: a low-rank TT from some of its entries.

Given samples ``a[i_s] = v_s`` on an index set ``Omega``, find the TT ``x`` of (at most) the
given ranks minimizing ``f(x) = 1/2 sum_{s in Omega} (x[i_s] - v_s)^2``.

* ``method='rcg'`` (default): Riemannian conjugate gradients on the manifold of TTs of fixed
  rank (Steinlechner, *Riemannian optimization for high-dimensional tensor completion*,
  SIAM J. Sci. Comput. 38(5), 2016): the Riemannian gradient is the projection of the sparse
  residual onto the tangent space, the direction is Polak-Ribiere+ with the previous direction
  transported by projection, the step is the exact minimizer of the quadratic loss along the
  direction (linearized at ``x``), and the retraction rounds back to the ranks.  Every
  iteration costs ``O(|Omega| d r^2 + d n r^3)``: linear in the number of samples, and no
  dense tensor is ever formed.
* ``method='als'``: alternating least squares over the cores (each core's slices solve small
  normal equations of size ``r^2``), the usual baseline; ``O(|Omega| d r^4 + d n r^6)`` per
  half sweep.

**The start** (``init='spectral'``, the default) is the TT-SVD of the zero-filled samples
times ``N / |Omega|`` (an unbiased estimate of the tensor), computed from the samples alone:
the ``k``-th unfolding, projected on the left frames found so far, is a sparse matrix with at
most ``r |Omega|`` non-zeros, and the leading eigenvectors of its small ``(r n) x (r n)`` Gram
matrix give the next core.  From a random start (``init='random'``) both methods often stall in
a wrong basin on tensors whose large entries are few (e.g. random TTs with Gaussian cores, whose
top 1% of entries carry about 40% of the squared norm at ``d = 6``).

**Rank adaptation.**  A part of the samples (``validation``, 10% by default) is held out.
Both methods start at rank 1 on every bond, run to convergence or stagnation (the training
error less than 0.1% lower over 10 iterations), then raise every bond's rank by one and go on
while the error on the held-out samples falls (by 1%; ``patience`` steps without a fall are
allowed, 1 by default); the best TT seen is returned.  Each new rank starts from the spectral
start at the new ranks; with ``init='random'`` or ``x0`` it starts warm instead, from the
previous TT plus a random rank-one TT of relative norm ``1e-8`` rounded to the new ranks
(Steinlechner's scheme, which suits tensors whose unfolding spectra decay).  ``ranks`` is the
largest rank allowed.  With ``validation=0`` (or ``adapt=False``) the ranks are fixed at
``ranks`` from the start.

**Duplicate indices** are separate observations: each is a term of the loss.  Repeating every
sample leaves the minimizer unchanged; two samples of the same entry with different values are
fitted by their mean (weighted by how often each occurs).
"""

from __future__ import annotations

import math
import numbers
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import _scaling
from ._backend import get_xp, to_host
from ._sweep import run_sweeps
from ._validation import as_float_array, check_modes, make_rng
from .construct import random_tensor
from .decompositions import orthogonal_sweep
from .errors import ConvergenceWarning, ShapeError, TTError
from .riemannian import (
    TangentSpace,
    _check_count,
    _check_indices,
    _check_ranks_fit,
    _check_tol,
    _check_values,
    _gather,
    _right_rows,
    _row_normalize,
    _SampleFrame,
    _segment_sum,
    retract,
    transport,
)
from .tensor import TTTensor

__all__ = ["CompletionInfo", "complete"]

_METHODS = ("rcg", "als")


@dataclass(frozen=True)
class CompletionInfo:
    """What :func:`complete` did, one entry per iteration (index 0: the start).

    An iteration is one RCG step, or one ALS half sweep (every core updated once).

    Attributes
    ----------
    method : str
    train_error : list of float
        ``||x - a||`` on the training samples relative to ``||a||`` there.
    validation_error : list of float
        The same on the held-out samples (empty when ``validation=0``).
    ranks : list of tuple
        The TT-ranks at every iteration.
    seconds : list of float
        Wall-clock time since the start at every iteration.
    stages : list of tuple
        ``(ranks, first_iteration, last_iteration, validation_error)`` of every rank stage.
    iterations : int
    converged : bool
        The training error reached ``tol``.
    reason : str
        ``'tolerance'``, ``'validation'`` (a larger rank did not lower the held-out error),
        ``'max rank'``, ``'stagnation'`` (at fixed ranks, the training error stopped falling:
        warns) or ``'cap'`` (warns).
    n_train, n_validation : int
    """

    method: str
    train_error: list = field(default_factory=list)
    validation_error: list = field(default_factory=list)
    ranks: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    stages: list = field(default_factory=list)
    iterations: int = 0
    converged: bool = False
    reason: str = ""
    n_train: int = 0
    n_validation: int = 0


# ---- data and bookkeeping -----------------------------------------------------------------------
class _Samples:
    """Indices and values of one part of the data, and the norm of the values."""

    def __init__(self, idx, vals):
        self.idx = idx
        self.vals = vals
        self.n = int(idx.shape[0])
        nrm = _norm(vals)
        self.norm = nrm if nrm > 0 else 1.0


def _norm(v) -> float:
    """``||v||_2`` as a host float, without overflow (exact power-of-two scaling)."""
    if v.shape[0] == 0:
        return 0.0
    b, e = _scaling.normalize(v.astype(_scaling.wide_dtype(v.dtype), copy=False))
    xp = get_xp(b)
    return _scaling.scalar_ldexp(float(to_host(xp.sqrt(xp.sum(abs(b) ** 2)))), e)


class _Track:
    """The per-iteration record, the progress bar and the iteration budget."""

    def __init__(self, method, max_iter, train_norm, validation, progress):
        self.method = method
        self._train_norm = train_norm
        self.max_iter = max_iter
        self.validation = validation
        self.train, self.val, self.ranks, self.seconds = [], [], [], []
        self.stages = []
        self.t0 = time.perf_counter()
        self.bar = None
        if progress:
            from tqdm.auto import tqdm  # noqa: PLC0415  (only on request)

            self.bar = tqdm(total=max_iter, desc=f"complete ({method})", leave=False)

    @property
    def iterations(self):
        return max(len(self.train) - 1, 0)

    def watched(self):
        """The error the stopping rules watch: held-out if there is a held-out set."""
        return self.val if self.validation is not None else self.train

    def record(self, x, train_res):
        self.train.append(_norm(train_res) / self._train_norm)
        if self.validation is not None:
            pred = _gather(x.cores, self.validation.idx)
            self.val.append(_norm(pred - self.validation.vals) / self.validation.norm)
        self.ranks.append(tuple(x.ranks))
        self.seconds.append(time.perf_counter() - self.t0)
        if self.bar is not None and len(self.train) > 1:
            self.bar.update(1)
            post = {"train": f"{self.train[-1]:.2e}", "rank": max(x.ranks)}
            if self.val:
                post["valid"] = f"{self.val[-1]:.2e}"
            self.bar.set_postfix(post)

    def close(self):
        if self.bar is not None:
            self.bar.close()


def _stagnated(hist, start, window=10, factor=1e-3):
    """No relative decrease of at least ``factor`` over the last ``window`` iterations of the
    current stage (which began at ``start``), or a rise over them."""
    if len(hist) - 1 - start <= window:     # compare iterations of this stage only
        return False
    old, new = hist[-1 - window], hist[-1]
    return not new < (1.0 - factor) * old


# ---- Riemannian CG ------------------------------------------------------------------------------
def _rcg_stage(x, caps, train, track, tol, budget):
    """RCG at fixed ranks ``caps`` from ``x``; returns ``(x, SweepResult)``."""
    st = {"x": x, "g": None, "eta": None}

    def setup(x):
        sp = TangentSpace(x)
        frame = _SampleFrame(sp, train.idx)
        st.update(x=x, sp=sp, frame=frame, res=frame.point_values() - train.vals)

    setup(x)
    start = len(track.train) - 1

    def step(direction, i):
        sp, frame, res = st["sp"], st["frame"], st["res"]
        xp = get_xp(res)
        g = frame.project(res)               # the Euclidean gradient is the sparse residual
        eta = -g
        if st["g"] is not None:
            gp = st["g"].norm() ** 2
            if gp > 0:
                tg = transport(st["g"], sp)
                beta = max(0.0, float(np.real(g.dot(g - tg))) / gp)
                if beta > 0:
                    eta = eta + beta * transport(st["eta"], sp)
                    if float(np.real(g.dot(eta))) >= 0:
                        eta = -g             # not a descent direction: restart
        ev = frame.tangent_values(eta.deltas)
        den = float(np.real(to_host(xp.vdot(ev, ev))))
        if not den > 0:
            return None                       # zero gradient on the samples
        alpha = -float(np.real(to_host(xp.vdot(ev, res)))) / den
        x_new = retract(sp, alpha * eta, caps)
        st["g"], st["eta"] = g, eta
        setup(x_new)
        track.record(x_new, st["res"])
        err = track.train[-1]
        if err > tol and _stagnated(track.train, start):
            return None
        return err

    result = run_sweeps(step, max_half_sweeps=budget, tol=tol, name="complete(method='rcg')",
                        what="relative training error", warn=False)
    return st["x"], result


# ---- ALS ----------------------------------------------------------------------------------------
def _left_step(row, e, core, keys):
    xp = get_xp(core)
    g = core[:, keys, :].transpose(1, 0, 2)
    return _row_normalize(xp.matmul(row[:, None, :], g)[:, 0, :], e)


def _right_step(row, e, core, keys):
    xp = get_xp(core)
    g = core[:, keys, :].transpose(1, 2, 0)
    return _row_normalize(xp.matmul(row[:, None, :], g)[:, 0, :], e)


def _als_solve(left, right, keys, vals, n):
    """Least-squares slices of one core given the per-sample interfaces."""
    xp = get_xp(vals)
    (lrow, le), (rrow, re) = left, right
    n_s, r0, r1 = lrow.shape[0], lrow.shape[1], rrow.shape[1]
    c = r0 * r1
    phi = (lrow[:, :, None] * rrow[:, None, :]).reshape(n_s, c)
    with np.errstate(over="ignore", under="ignore"):
        phi = _scaling.ldexp(phi, (le + re)[:, None])
    pc = xp.conj(phi) if phi.dtype.kind == "c" else phi
    a = _segment_sum(keys, (pc[:, :, None] * phi[:, None, :]).reshape(n_s, c * c), n)
    a = a.reshape(n, c, c)
    b = _segment_sum(keys, pc * vals[:, None], n)
    scale = float(to_host(xp.max(xp.abs(xp.trace(a, axis1=1, axis2=2))))) / c
    lam = 1e-13 * scale + np.finfo(np.float64).tiny
    a = a + lam * xp.eye(c, dtype=a.dtype)[None]
    sol = xp.linalg.solve(a, b[:, :, None])[:, :, 0]
    return sol.reshape(n, r0, r1).transpose(1, 0, 2)


def _als_stage(x, caps, train, track, tol, budget):
    """ALS half sweeps at the ranks of ``x``; returns ``(x, SweepResult)``."""
    from ._backend import qr  # noqa: PLC0415

    d = x.d
    idx, vals = train.idx, train.vals
    xp = get_xp(vals)
    cores, e, _ = orthogonal_sweep(list(x.cores), "right")
    with np.errstate(over="ignore", under="ignore"):
        cores[0] = _scaling.ldexp(cores[0], e)
    cores = [c.astype(np.result_type(c.dtype, vals.dtype), copy=False) for c in cores]
    right = _right_rows(cores, idx, 1)
    left = [None] * (d + 1)
    left[0] = (xp.ones((train.n, 1), dtype=cores[0].dtype), xp.zeros(train.n, dtype=np.int64))
    start = len(track.train) - 1
    st = {"x": x}

    def half(direction, i):
        order = range(d) if direction == "right" else range(d - 1, -1, -1)
        for k in order:
            n = cores[k].shape[1]
            g = _als_solve(left[k], right[k + 1], idx[:, k], vals, n)
            r0, _, r1 = g.shape
            if direction == "right" and k < d - 1:
                q, r = qr(g.reshape(r0 * n, r1))
                cores[k] = q.reshape(r0, n, q.shape[1])
                nxt = cores[k + 1]
                cores[k + 1] = (r @ nxt.reshape(nxt.shape[0], -1)).reshape(r.shape[0],
                                                                             *nxt.shape[1:])
                left[k + 1] = _left_step(*left[k], cores[k], idx[:, k])
            elif direction == "left" and k > 0:
                q, r = qr(g.reshape(r0, n * r1).T)
                cores[k] = q.T.reshape(q.shape[1], n, r1)
                prv = cores[k - 1]
                cores[k - 1] = (prv.reshape(-1, prv.shape[2]) @ r.T).reshape(
                    *prv.shape[:2], r.shape[0])
                right[k] = _right_step(*right[k + 1], cores[k], idx[:, k])
            else:
                cores[k] = g
        x_new = TTTensor._trusted(cores)
        st["x"] = x_new
        track.record(x_new, _gather(cores, idx) - vals)
        err = track.train[-1]
        if err > tol and _stagnated(track.train, start):
            return None
        return err

    result = run_sweeps(half, max_half_sweeps=budget, tol=tol, name="complete(method='als')",
                        what="relative training error", warn=False)
    return st["x"], result


# ---- the start ----------------------------------------------------------------------------------
def _spectral_start(idx, vals, shape, caps, xp):
    """A TT-SVD of the zero-filled samples scaled by ``N / n_samples`` (the unbiased estimate of
    the tensor), computed from the samples alone: every unfolding is a sparse matrix with at
    most ``r n_samples`` non-zeros (the samples projected on the left frames so far), whose
    leading left singular vectors (from its small Gram matrix) give the next core.

    Computed on the host with SciPy's sparse matrices (a one-time cost, ``O(n_samples d r^2 +
    d (r n)^3)`` plus sorting the samples once per mode) and moved to ``xp``.
    """
    import scipy.sparse as sp  # noqa: PLC0415  (only for this start)

    hidx = np.asarray(to_host(idx))
    w = np.asarray(to_host(vals))
    d = len(shape)
    n_s = hidx.shape[0]
    left = np.ones((n_s, 1), dtype=w.dtype)          # the samples' rows of U_1 ... U_{k-1}
    cores = []
    for k in range(d - 1):
        r0, n = left.shape[1], shape[k]
        _, cols = np.unique(hidx[:, k + 1:], axis=0, return_inverse=True)
        cols = cols.reshape(-1)
        rows = (np.arange(r0)[None, :] * n + hidx[:, k][:, None]).ravel()
        data = (left * w[:, None]).ravel()
        m = sp.csr_matrix((data, (rows, np.repeat(cols, r0))), shape=(r0 * n, cols.max() + 1))
        gram = (m @ m.conj().T).toarray()
        r1 = min(caps[k], r0 * n)
        evecs = np.linalg.eigh(gram)[1]
        u = evecs[:, ::-1][:, :r1]
        core = u.reshape(r0, n, r1)
        cores.append(core)
        g = core[:, hidx[:, k], :].transpose(1, 0, 2)
        left = np.matmul(left[:, None, :], g)[:, 0, :]
    r0, n = left.shape[1], shape[-1]
    last = np.zeros((n, r0), dtype=np.result_type(left.dtype, w.dtype))
    np.add.at(last, hidx[:, -1], left * w[:, None])
    cores.append(last.T.reshape(r0, n, 1))
    log_scale = sum(math.log(q) for q in shape) - math.log(n_s)
    cores[-1] = cores[-1] * math.exp(min(log_scale, 700.0))
    return TTTensor([xp.asarray(c) for c in cores])


def _scaled(x, log_target):
    """``x`` scaled to the norm ``exp(log_target)`` (unchanged when that is not possible)."""
    ln = x.log_norm()
    if not math.isfinite(ln):
        return x
    return x * math.exp(log_target - ln)


# ---- the driver ---------------------------------------------------------------------------------
def _grow(x, ranks, rng, xp):
    """``x`` plus a random rank-one TT of relative norm 1e-8, rounded to ``ranks``: every bond
    below its new cap gains one rank."""
    w = random_tensor(x.shape, 1, rng=rng, dtype=x.dtype, xp=xp)
    scale = math.exp(x.log_norm() - w.log_norm()) * 1e-8
    return (x + scale * w).round(max_rank=list(ranks))


def complete(indices, values, shape, ranks, *, method="rcg", max_iter=500, tol=1e-10,
             validation=0.1, rng=None, progress=False, return_info=False, adapt=True,
             patience=1, init="spectral", x0=None):
    """Complete a tensor from samples of its entries by a low-rank TT.

    Parameters
    ----------
    indices : int array, shape (n_samples, d)
        The sampled multi-indices (NumPy, or on the backend of ``values``).  Not wrapped:
        every entry must lie in ``0 .. shape[k] - 1``.  Duplicate rows are separate
        observations (see the module notes).
    values : float array, shape (n_samples,)
        The sampled entries; their backend (NumPy or CuPy) and dtype are the result's.
    shape : tuple of int
        The shape of the tensor.
    ranks : int or sequence of int
        The largest TT-rank allowed, an int or one value per bond (``d - 1``, or ``d + 1`` with
        the boundary 1s); at most the largest useful rank of the shape.
    method : {'rcg', 'als'}
        Riemannian conjugate gradients (default) or alternating least squares.
    max_iter : int
        Hard cap on the iterations of all rank stages together (an RCG step or an ALS half
        sweep each).  Hitting it warns with :class:`~tensortrain.errors.ConvergenceWarning`, and
        so does stagnation at fixed ranks (``adapt=False`` or ``validation=0``).
    tol : float
        Stop when the relative error on the training samples is ``<= tol``.
    validation : float
        Fraction of the samples held out (drawn with ``rng``) to steer the rank adaptation,
        in ``[0, 1)``; ``0`` fixes the ranks at ``ranks``.
    rng : None, int, SeedSequence or Generator
        The split and the random starting point.
    progress : bool
        Show a progress bar (tqdm).
    return_info : bool
        Also return a :class:`CompletionInfo`.
    adapt : bool
        Rank adaptation (start at rank 1, raise while the held-out error falls); ``False``
        runs at ``ranks`` from the start.
    patience : int
        How many rank steps in a row may fail to lower the held-out error (by 1%) before the
        adaptation stops; the best TT seen is returned.  Low ranks of a random tensor can fit
        no better than zero, so the default 1 lets the adaptation pass one such step.
    init : {'spectral', 'random'}
        The starting point when ``x0`` is not given.  ``'spectral'`` (default): the TT-SVD, at
        the starting ranks, of the zero-filled samples times ``N / n_samples`` (an unbiased
        estimate of the tensor), computed from the samples alone without forming a dense
        tensor (see the module notes).  ``'random'``: a random TT from ``rng``.  Either is then
        scaled to the norm the samples suggest.
    x0 : TTTensor, optional
        The starting point (rounded to ``ranks`` if it exceeds them); rank adaptation then
        starts at its ranks.

    Returns
    -------
    TTTensor, or (TTTensor, CompletionInfo)

    Complexity: RCG ``O(n_samples d r^2 + d n r^3)`` per iteration; ALS
    ``O(n_samples d r^4 + d n r^6)`` per half sweep; memory ``O(n_samples d r)``.

    Examples
    --------
    >>> import numpy as np, tensortrain as tt
    >>> from tensortrain.completion import complete
    >>> shape = (7, 7, 7, 7)
    >>> a = tt.TTTensor.from_dense(np.sin(0.7 * np.indices(shape).sum(axis=0)), eps=1e-13)
    >>> rng = np.random.default_rng(1)
    >>> idx = np.stack(np.unravel_index(rng.choice(7 ** 4, 500, replace=False), shape), axis=1)
    >>> x = complete(idx, tt.riemannian.gather(a, idx), shape, ranks=4, rng=2)
    >>> x.ranks
    (1, 2, 2, 2, 1)
    >>> bool(abs(x[1, 2, 3, 4] - np.sin(0.7 * 10)) < 1e-8)
    True
    """
    shape = check_modes(shape, "shape")
    values = as_float_array(values, "values")
    xp = get_xp(values)
    idx = _check_indices(indices, shape, xp)
    vals = _check_values(values, idx.shape[0])
    if method not in _METHODS:
        raise TTError(f"complete: method must be one of {_METHODS}, got {method!r}")
    max_iter = _check_count(max_iter, "max_iter")
    tol = _check_tol(tol)
    if isinstance(validation, bool) or not isinstance(validation, numbers.Real):
        raise TypeError(f"validation must be a fraction in [0, 1), got "
                        f"{type(validation).__name__} {validation!r}")
    if not 0 <= validation < 1:
        raise TTError(f"validation must be a fraction in [0, 1), got {validation!r}")
    if not isinstance(adapt, bool):
        raise TypeError(f"adapt must be True or False, got {adapt!r}")
    if isinstance(patience, bool) or not isinstance(patience, numbers.Integral) or patience < 0:
        raise TypeError(f"patience must be an int >= 0, got {patience!r}")
    caps = _check_ranks_fit(ranks, shape)
    if init not in ("spectral", "random"):
        raise TTError(f"complete: init must be 'spectral' or 'random', got {init!r}")
    if x0 is not None:
        if not isinstance(x0, TTTensor):
            raise TypeError(f"x0 must be a TTTensor or None, got {type(x0).__name__}")
        if x0.shape != shape:
            raise ShapeError(f"x0 has shape {x0.shape}, expected {shape}")
        get_xp(x0.cores[0], vals)
    gen = make_rng(rng)
    n_all = int(idx.shape[0])
    n_val = round(validation * n_all) if validation > 0 else 0
    if n_val >= n_all:
        raise TTError(f"validation={validation} leaves no training sample out of {n_all}")
    if n_val > 0:
        perm = xp.asarray(gen.permutation(n_all))
        train = _Samples(idx[perm[n_val:]], vals[perm[n_val:]])
        held = _Samples(idx[perm[:n_val]], vals[perm[:n_val]])
    else:
        train, held = _Samples(idx, vals), None
    adapting = adapt and held is not None
    # the norm the samples suggest for the whole tensor
    log_target = (math.log(train.norm) + 0.5 * (sum(math.log(n) for n in shape)
                                                - math.log(train.n)))
    spectral = x0 is None and init == "spectral" and len(shape) > 1
    if x0 is None:
        cur = tuple(1 for _ in caps) if adapting else caps
        if spectral:
            x = _spectral_start(train.idx, train.vals, shape, cur, xp)
        if not spectral or x.norm() == 0 or not math.isfinite(x.log_norm()):
            x = random_tensor(shape, list(cur) if cur else 1, rng=gen, dtype=vals.dtype, xp=xp)
        x = _scaled(x, log_target)
    else:
        x = x0 if x0.d == 1 else x0.round(max_rank=list(caps))
        cur = tuple(x.ranks[1:-1])
    track = _Track(method, max_iter, train.norm, held, progress)
    track.record(x, _gather(x.cores, train.idx) - train.vals)
    stage_fn = _rcg_stage if method == "rcg" else _als_stage
    best = None
    misses = 0
    reason = "cap"
    try:
        for _ in range(max(caps, default=1) + 1):         # at most one stage per rank step
            budget = max_iter - track.iterations
            if budget < 1:
                reason = "cap"
                break
            first = track.iterations
            x, res = stage_fn(x, cur, train, track, tol, budget)
            score = track.watched()[-1]
            track.stages.append((tuple(x.ranks), first, track.iterations, score))
            if best is None or score < (1 - 1e-2) * best[1]:
                best = (x, score)
                misses = 0
            else:
                misses += 1
                if misses > patience:
                    x = best[0]
                    reason = "validation"
                    break
            if res.reason == "tolerance":
                reason = "tolerance"
                break
            if res.reason == "cap":
                reason = "cap"
                break
            if not adapting or cur == caps:
                reason = "max rank" if adapting else "stagnation"
                x = best[0]
                break
            cur = tuple(min(c + 1, m) for c, m in zip(cur, caps, strict=True))
            if spectral:
                # a fresh spectral start at the new ranks: a warm start from a poor low-rank
                # fit can sit in the wrong basin when the spectrum does not decay
                x = _scaled(_spectral_start(train.idx, train.vals, shape, cur, xp), log_target)
            else:
                x = _grow(x, cur, gen, xp)
    finally:
        track.close()
    if reason == "cap":
        warnings.warn(f"complete(method={method!r}) stopped at its cap of {max_iter} iterations "
                      f"with relative training error {track.train[-1]:.3g} > tol {tol:.3g} "
                      f"(ranks {tuple(x.ranks)})", ConvergenceWarning, stacklevel=2)
    elif reason == "stagnation":
        warnings.warn(f"complete(method={method!r}) stagnated after {track.iterations} iterations "
                      f"at relative training error {track.train[-1]:.3g} > tol {tol:.3g} (ranks "
                      f"{tuple(x.ranks)}): the best fit of noisy data, or a local minimum or too "
                      f"few samples for these ranks (then try another rng, more samples or rank "
                      f"adaptation)",
                      ConvergenceWarning, stacklevel=2)
    if not return_info:
        return x
    info = CompletionInfo(method, track.train, track.val, track.ranks, track.seconds,
                          track.stages, track.iterations, reason == "tolerance", reason,
                          train.n, 0 if held is None else held.n)
    return x, info

"""Contraction plans for a TT-matrix times a dense batch.

``Y = X @ W.T`` with ``W`` given by cores ``(r_{k-1}, m_k, n_k, r_k)`` and ``X`` of shape
``(B, n_1 * ... * n_d)``.  The input is absorbed core block by core block; a *block* is a run
of neighbouring cores merged into one before it meets the data.  The state after absorbing the
cores ``i..j`` holds the indices ``(b, n_1..n_{i-1}, r_{i-1}, m_i..m_j, r_j, n_{j+1}..n_d)``, so
its size, and the cost of every next step, depend only on ``(i, j)``.  A plan minimizes the
sum of its steps' prices for an *objective*: ``'flops'`` (FLOPs, merging the cores of a block
included, ties broken by peak temporary memory), ``'time'`` (the modelled CPU time of the
product, :mod:`tensortrain._plan_model`), ``'train'`` (of the product and its backward
pass) or ``'train_no_input_grad'`` (the same, the backward pass computing no gradient of the
input: the first step is priced without it).  NumPy products use ``'time'``, layers in
training ``'train'`` (``'train_no_input_grad'`` as a network's first layer), CuPy
``'flops'`` (:func:`default_objective`).

**The search.**  Every candidate step costs ``O(1)``: the sizes it needs are read from prefix
products of the modes, never recomputed over the cores.

* ``d <= EXACT_MAX_CORES`` (32): a dynamic program over all intervals ``(i, j)`` finds the
  cheapest plan among *all* orders (left-to-right, right-to-left, middle-out) and *all*
  groupings of neighbouring cores, including the extreme of merging every core into the dense
  matrix.  It evaluates ``O(d^3)`` candidate steps (about 1,500 at ``d = 16``, 11,000 at
  ``d = 32``).
* ``d > EXACT_MAX_CORES``: the search is restricted to *block sweeps from either end*: the
  absorbed interval always contains the first or the last core (states ``(0, j)`` and
  ``(i, d - 1)``) and each step absorbs a block of at most ``SWEEP_MAX_BLOCK`` (16)
  neighbouring cores.  A dynamic program over these ``2 d`` states finds the cheapest such
  plan in ``O(d * SWEEP_MAX_BLOCK)`` candidate steps, so planning time grows about linearly
  with ``d``.

Guarantees (for every objective, in its own measure): both searches contain the two
one-core-at-a-time sweeps (:func:`fixed_sweep_plan`), so a plan never costs more than the
better of them (with ``'flops'``: never has more FLOPs); every plan the restricted search can
return is also a candidate of the exact one, so where both apply the exact plan is never more
expensive.  Middle-out orders and blocks wider than
``SWEEP_MAX_BLOCK`` are only found for ``d <= EXACT_MAX_CORES``.

**Blocks of any width.**  A merged block is built core by core as a 4-D array
``(r, M, N, r')`` (``M``, ``N`` the products of its row and column modes, in C order), never
with one axis per mode, so blocks of any number of cores stay within NumPy's limit of 64
dimensions.  Each step is one (batched) GEMM on a view of the state, never a transposing copy
of the data (see :func:`execute`).  Plans are cached per ``(row modes, column modes, ranks,
batch, itemsize, objective, batch layout)`` (the layout only for the time objectives).

**Execution.**  :class:`Gemm` gives the sizes of a step as the GEMM
``out[p, n, q] = sum_k block[n, k] state[p, k, q]``; the planner's cost model, :func:`execute`
and the backward pass (:mod:`tensortrain.gradients`) all take them from :func:`_gemm`.  The
:class:`StepCode` of every step (sizes, axis orders, the shapes of each merge) is worked out
once per plan, batch and orientation and kept on the plan; :func:`execute` can leave one
:class:`StepRecord` per step for the backward pass and write its intermediate states to a
:class:`Workspace` that a layer reuses from call to call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from itertools import accumulate
from operator import mul
from typing import NamedTuple

import numpy as np

from . import _plan_model
from ._backend import get_xp

__all__ = ["ContractionPlan", "Step", "plan_matmat", "plan_from_blocks", "fixed_sweep_plan",
           "execute", "Gemm", "StepCode", "StepRecord", "Workspace", "OBJECTIVES",
           "default_objective", "modeled_seconds"]

#: Trains of at most this many cores are planned by the exact search over all intervals.
EXACT_MAX_CORES = 32
#: Above :data:`EXACT_MAX_CORES`, the most cores one block of a block sweep may merge.
SWEEP_MAX_BLOCK = 16


@dataclass(frozen=True)
class Step:
    """Absorb the merged cores ``lo..hi`` (inclusive) into the state."""

    lo: int
    hi: int
    flops: int          # of the GEMM with the data
    merge_flops: int    # of merging the block's cores into one
    state_size: int     # elements of the state after the step


def _ratio_str(num, den, fmt):
    """``num / den`` formatted; counts beyond ``1e15`` (plans of very long trains, even
    beyond the range of a float) in scientific notation."""
    if num < 10**15 * den:
        return format(num / den, fmt)
    return format(Decimal(num) / Decimal(den), ".3e")


@dataclass(frozen=True)
class ContractionPlan:
    """How to compute ``X @ W.T`` for one shape, with its cost.

    Attributes
    ----------
    steps : tuple of Step
        Blocks in the order they are absorbed.
    flops : int
        Total floating-point operations (multiply and add counted separately).
    peak_elements : int
        Largest number of elements held in temporaries at once (state before and after a
        step, plus the merged core), not counting the input and the final output.
    itemsize : int
        Bytes per element the plan was made for.
    dense_flops : int
        FLOPs of the same product with the dense matrix of the (padded) sizes the modes
        cover, ``2 * B * prod(row_modes) * prod(col_modes)``.
    objective : str
        What the plan was chosen for (:data:`OBJECTIVES`, or ``'given'`` for
        :func:`plan_from_blocks`); not part of equality.
    """

    row_modes: tuple
    col_modes: tuple
    ranks: tuple
    batch: int
    steps: tuple
    flops: int
    peak_elements: int
    itemsize: int
    dense_flops: int
    objective: str = field(default="flops", compare=False)

    @property
    def peak_bytes(self) -> int:
        """Peak temporary memory in bytes."""
        return self.peak_elements * self.itemsize

    @property
    def order(self) -> tuple:
        """The blocks ``(lo, hi)`` in the order they are absorbed."""
        return tuple((s.lo, s.hi) for s in self.steps)

    def describe(self) -> str:
        """A one-line human-readable summary of the plan."""
        blocks = " -> ".join(
            f"[{s.lo + 1}]" if s.lo == s.hi else f"[{s.lo + 1}..{s.hi + 1}]" for s in self.steps
        )
        return (f"{blocks}: {_ratio_str(self.flops, 10**6, '.3f')} MFLOP "
                f"({_ratio_str(self.dense_flops, max(self.flops, 1), '.1f')}x fewer than dense), "
                f"peak {_ratio_str(self.peak_bytes, 2**20, '.3f')} MiB")


# ---- sizes -------------------------------------------------------------------------------------
def _prefix(v):
    """``[1, v0, v0 v1, ..., prod(v)]``: ``d + 1`` prefix products."""
    return [1] + list(accumulate(v, mul))


def _suffix(v):
    """``s[k] = prod(v[k:])`` for ``k = 0..d``."""
    return list(reversed(_prefix(reversed(v))))


def _ints(v):
    """A tuple of Python ints (exact sizes: NumPy integers would overflow on long trains)."""
    return tuple(int(x) for x in v)


def _check_shape(m, n, r):
    d = len(m)
    if d < 1 or len(n) != d or len(r) != d + 1:
        raise ValueError(f"need d >= 1 row and column modes and d + 1 ranks, got {len(m)} "
                         f"row modes, {len(n)} column modes and {len(r)} ranks")
    if min(m) < 1 or min(n) < 1 or min(r) < 1:
        raise ValueError(f"modes and ranks must be >= 1, got row modes {m}, column modes {n}, "
                         f"ranks {r}")


class Gemm(NamedTuple):
    """One step as a (batched) GEMM: ``out[p, n, q] = sum_k block[n, k] * state[p, k, q]``.

    ``side`` is the kind of step (``'first'``, ``'right'`` or ``'left'``), ``P`` and ``Q`` the
    free sizes of the state in front of and behind the contracted ``K``, and ``rows`` the new
    indices the block brings (its row count as a ``(rows, K)`` matrix).  The planner's cost
    model, the executor and the backward pass all read their sizes from here.
    """

    side: str
    P: int
    K: int
    Q: int
    rows: int

    @property
    def flops(self) -> int:
        """Floating-point operations of the product (multiply and add counted)."""
        return 2 * self.P * self.K * self.Q * self.rows

    @property
    def size_in(self) -> int:
        """Elements of the state the step reads."""
        return self.P * self.K * self.Q

    @property
    def size_out(self) -> int:
        """Elements of the state the step writes."""
        return self.P * self.rows * self.Q


def _gemm(mpre, npre, nsuf, r, interval, lo, hi, bf, bb):
    """The GEMM that absorbs block ``lo..hi`` into the state of ``interval`` (None: the raw
    input), with the batch ``bf`` in front and ``bb`` behind (one of them 1).

    Returns ``(Gemm, new_interval)``.  The state after absorbing ``i..j`` is laid out as
    ``(bf, n_1..n_{i-1}, r_{i-1}, m_i..m_j, r_j, n_{j+1}..n_d, bb)``, so the contracted
    indices are contiguous and ``P``, ``K``, ``Q`` are products of neighbouring sizes.
    """
    nseg = npre[hi + 1] // npre[lo]
    if interval is None:
        return (Gemm("first", bf * npre[lo], nseg, nsuf[hi + 1] * bb,
                     r[lo] * (mpre[hi + 1] // mpre[lo]) * r[hi + 1]), (lo, hi))
    i, j = interval
    mmid = mpre[j + 1] // mpre[i]
    if lo == j + 1:      # block on the right
        return (Gemm("right", bf * npre[i] * r[i] * mmid, r[lo] * nseg, nsuf[hi + 1] * bb,
                     (mpre[hi + 1] // mpre[lo]) * r[hi + 1]), (i, hi))
    if hi == i - 1:      # block on the left
        return (Gemm("left", bf * npre[lo], nseg * r[hi + 1], mmid * r[j + 1] * nsuf[j + 1] * bb,
                     r[lo] * (mpre[hi + 1] // mpre[lo])), (lo, j))
    raise ValueError(f"block {lo}..{hi} is not next to the absorbed cores {i}..{j}")


class _Costs:
    """Sizes and FLOPs of the interval states for one shape, each in ``O(1)``."""

    def __init__(self, m, n, r, B):
        self.m, self.n, self.r, self.B = m, n, r, B
        d = len(m)
        self.mpre, self.npre, self.nsuf = _prefix(m), _prefix(n), _suffix(n)
        # merging lo..hi left to right costs 2 r_lo sum_{t=lo+1}^{hi} P[t+1]/P[lo] r_t r_{t+1}
        # with P the prefix products of m_k n_k; S holds the prefix sums of P[t+1] r_t r_{t+1}
        self.P = _prefix([m[k] * n[k] for k in range(d)])
        self.S = [0] + list(accumulate(self.P[t + 1] * r[t] * r[t + 1] for t in range(d)))

    def merge(self, lo, hi):
        """FLOPs of merging cores lo..hi left to right (0 for one core)."""
        return 2 * self.r[lo] * ((self.S[hi + 1] - self.S[lo + 1]) // self.P[lo])

    def core_size(self, lo, hi):
        r = self.r
        if hi == lo:
            return 0
        return (r[lo] * (self.mpre[hi + 1] // self.mpre[lo])
                * (self.npre[hi + 1] // self.npre[lo]) * r[hi + 1])

    def step(self, interval, lo, hi):
        """Absorb block lo..hi into the state of ``interval`` (None: the raw input).

        Returns ``(Step, new_interval, elements_held)``.
        """
        d = len(self.m)
        if not 0 <= lo <= hi < d:
            raise ValueError(f"block {lo}..{hi} is not a run of the {d} cores")
        g, new = _gemm(self.mpre, self.npre, self.nsuf, self.r, interval, lo, hi, self.B, 1)
        held = (0 if interval is None else g.size_in) + g.size_out + self.core_size(lo, hi)
        return Step(lo, hi, g.flops, self.merge(lo, hi), g.size_out), new, held


# ---- the two searches ----------------------------------------------------------------------------
def _blocks_from(table, end):
    """Follow the ``prev`` links of a DP table back from ``end``; blocks in absorbing order."""
    blocks = []
    key = end
    while key is not None:
        entry = table[key]
        blocks.append((entry[3], entry[4]))
        key = entry[2]
    return blocks[::-1]


def _solve_exact(m, n, r, B, cost=None, batch_last=False, first_cost=None):
    """Cheapest plan over all orders and groupings: ``O(d^3)`` steps of ``O(1)`` each.

    ``cost(P, K, Q, rows, merge_flops, merges, merged_elements)`` prices a step (``None``:
    its FLOPs, merging included, as exact integers), ``first_cost`` (default ``cost``) the
    plan's first step, the one that reads the input; ``batch_last`` puts the batch behind
    the state instead of in front (it changes ``P`` and ``Q``, not the FLOPs).
    """
    d = len(m)
    first_cost = cost if first_cost is None else first_cost
    bf, bb = (1, B) if batch_last else (B, 1)
    npre, nsuf = _prefix(n), _suffix(n)
    # per-block tables, filled incrementally: products of the modes and merge FLOPs
    mseg = [[0] * d for _ in range(d)]
    nseg = [[0] * d for _ in range(d)]
    merge = [[0] * d for _ in range(d)]
    for i in range(d):
        pm = pn = 1
        mf = 0
        rows = r[i] * m[i] * n[i]
        for j in range(i, d):
            pm *= m[j]
            pn *= n[j]
            if j > i:
                mf += 2 * rows * r[j] * m[j] * n[j] * r[j + 1]
                rows *= m[j] * n[j]
            mseg[i][j], nseg[i][j], merge[i][j] = pm, pn, mf
    state = [[B * npre[i] * r[i] * mseg[i][j] * r[j + 1] * nsuf[j + 1] if j >= i else 0
              for j in range(d)] for i in range(d)]
    core = [[r[i] * mseg[i][j] * nseg[i][j] * r[j + 1] if j > i else 0 for j in range(d)]
            for i in range(d)]
    # best[(i, j)] = (flops, peak, previous interval, lo, hi of the last block)
    best = {}

    def offer(key, c, p, prev, lo, hi):
        cur = best.get(key)
        if cur is None or c < cur[0] or (c == cur[0] and p < cur[1]):
            best[key] = (c, p, prev, lo, hi)

    for i in range(d):
        for j in range(i, d):
            if cost is None:
                c = 2 * (B * npre[i] * nsuf[j + 1]) * nseg[i][j] * (r[i] * mseg[i][j] * r[j + 1])
                c += merge[i][j]
            else:
                c = first_cost(bf * npre[i], nseg[i][j], nsuf[j + 1] * bb,
                               r[i] * mseg[i][j] * r[j + 1], merge[i][j], j - i, core[i][j])
            offer((i, j), c, state[i][j] + core[i][j], None, i, j)
    for length in range(1, d):
        for i in range(0, d - length + 1):
            j = i + length - 1
            total, peak = best[(i, j)][:2]
            before = state[i][j]
            lo = j + 1
            left_part = B * npre[i] * r[i] * mseg[i][j]
            for hi in range(lo, d):        # a block on the right
                if cost is None:
                    c = 2 * (left_part * nsuf[hi + 1]) * (r[lo] * nseg[lo][hi]) * (
                        mseg[lo][hi] * r[hi + 1]) + merge[lo][hi]
                else:
                    c = cost(bf * npre[i] * r[i] * mseg[i][j], r[lo] * nseg[lo][hi], nsuf[hi + 1] * bb,
                             mseg[lo][hi] * r[hi + 1], merge[lo][hi], hi - lo, core[lo][hi])
                held = before + state[i][hi] + core[lo][hi]
                offer((i, hi), total + c, max(peak, held), (i, j), lo, hi)
            hi = i - 1
            right_part = mseg[i][j] * r[j + 1] * nsuf[j + 1]
            for lo in range(i):            # a block on the left
                if cost is None:
                    c = 2 * (B * npre[lo] * right_part) * (r[i] * nseg[lo][hi]) * (
                        mseg[lo][hi] * r[lo]) + merge[lo][hi]
                else:
                    c = cost(bf * npre[lo], r[i] * nseg[lo][hi], right_part * bb,
                             mseg[lo][hi] * r[lo], merge[lo][hi], hi - lo, core[lo][hi])
                held = before + state[lo][j] + core[lo][hi]
                offer((lo, j), total + c, max(peak, held), (i, j), lo, hi)
    return _blocks_from(best, (0, d - 1))


def _solve_sweeps(m, n, r, B, max_block, cost=None, batch_last=False, first_cost=None):
    """Cheapest block sweep from either end with blocks of at most ``max_block`` cores.

    States are the intervals ``(0, j)`` (grown to the right) and ``(i, d - 1)`` (grown to the
    left): ``O(d * max_block)`` steps of ``O(1)`` each.  ``cost``, ``batch_last`` and
    ``first_cost`` as in :func:`_solve_exact`.
    """
    d = len(m)
    first_cost = cost if first_cost is None else first_cost
    bf, bb = (1, B) if batch_last else (B, 1)
    w = max(1, int(max_block))
    npre, nsuf = _prefix(n), _suffix(n)
    mpre, msuf = _prefix(m), _suffix(m)
    rd = r[d]

    def offer(table, key, c, p, prev, lo, hi):
        cur = table.get(key)
        if cur is None or c < cur[0] or (c == cur[0] and p < cur[1]):
            table[key] = (c, p, prev, lo, hi)

    # -- from the left: state (0, j) has B r_0 (m_1..m_{j+1}) r_{j+1} (n_{j+2}..n_d) elements
    left = {}
    for j in range(-1, d - 1):      # j = -1: the raw input
        lo = j + 1
        if j < 0:
            total = peak = before = 0
        else:
            total, peak = left[j][:2]
            before = B * r[0] * mpre[j + 1] * r[j + 1] * nsuf[j + 1]
        prev = None if j < 0 else j
        rin = 1 if j < 0 else r[lo]     # the bond the step contracts (none for the raw input)
        pm = pn = 1
        mf = 0
        rows = r[lo] * m[lo] * n[lo]
        for hi in range(lo, min(lo + w, d)):
            pm *= m[hi]
            pn *= n[hi]
            if hi > lo:
                mf += 2 * rows * r[hi] * m[hi] * n[hi] * r[hi + 1]
                rows *= m[hi] * n[hi]
            core = r[lo] * pm * pn * r[hi + 1] if hi > lo else 0
            if cost is None:
                # free (B, r_0, m of the absorbed cores, n after the block) x contracted x new
                c = 2 * (B * r[0] * mpre[lo] * nsuf[hi + 1]) * (rin * pn) * (pm * r[hi + 1]) + mf
            elif j < 0:
                c = first_cost(bf, pn, nsuf[hi + 1] * bb, r[0] * pm * r[hi + 1], mf, hi - lo, core)
            else:
                c = cost(bf * r[0] * mpre[lo], rin * pn, nsuf[hi + 1] * bb, pm * r[hi + 1], mf,
                         hi - lo, core)
            after = B * r[0] * mpre[hi + 1] * r[hi + 1] * nsuf[hi + 1]
            offer(left, hi, total + c, max(peak, before + after + core), prev, lo, hi)
    # -- from the right: state (i, d-1) has B (n_1..n_i) r_i (m_{i+1}..m_d) r_d elements
    right = {}
    for i in range(d, 0, -1):       # i = d: the raw input
        hi = i - 1
        if i == d:
            total = peak = before = 0
        else:
            total, peak = right[i][:2]
            before = B * npre[i] * r[i] * msuf[i] * rd
        prev = None if i == d else i
        rin = 1 if i == d else r[i]
        pm = pn = 1
        acc = 0     # merging lo..hi costs 2 r_lo acc (acc updated as lo moves left)
        for lo in range(hi, max(hi - w, -1), -1):
            if lo < hi:
                acc = m[lo] * n[lo] * (r[lo + 1] * m[lo + 1] * n[lo + 1] * r[lo + 2] + acc)
            pm *= m[lo]
            pn *= n[lo]
            core = r[lo] * pm * pn * r[i] if hi > lo else 0
            if cost is None:
                c = 2 * (B * npre[lo] * msuf[i] * rd) * (rin * pn) * (pm * r[lo]) + 2 * r[lo] * acc
            elif i == d:
                c = first_cost(bf * npre[lo], pn, bb, r[lo] * pm * rd, 2 * r[lo] * acc, hi - lo, core)
            else:
                c = cost(bf * npre[lo], pn * rin, msuf[i] * rd * bb, r[lo] * pm,
                         2 * r[lo] * acc, hi - lo, core)
            after = B * npre[lo] * r[lo] * msuf[lo] * rd
            offer(right, lo, total + c, max(peak, before + after + core), prev, lo, hi)
    a, b = left[d - 1], right[0]
    if (b[0], b[1]) < (a[0], a[1]):
        return _blocks_from(right, 0)
    return _blocks_from(left, d - 1)


def _solve(m, n, r, B, exact_max_cores=None, max_block=None, cost=None, batch_last=False,
           first_cost=None):
    """The block order of the plan: exact search for short trains, block sweeps beyond."""
    exact_max_cores = EXACT_MAX_CORES if exact_max_cores is None else exact_max_cores
    if len(m) <= exact_max_cores:
        return _solve_exact(m, n, r, B, cost, batch_last, first_cost)
    return _solve_sweeps(m, n, r, B, SWEEP_MAX_BLOCK if max_block is None else max_block,
                         cost, batch_last, first_cost)


def _make_plan(row_modes, col_modes, ranks, batch, itemsize, steps, flops, peak,
               objective="flops"):
    dense = 2 * batch * math.prod(row_modes) * math.prod(col_modes)
    return ContractionPlan(tuple(row_modes), tuple(col_modes), tuple(ranks), int(batch),
                           tuple(steps), int(flops), int(peak), int(itemsize), dense, objective)


#: What a plan can be chosen for: ``'flops'`` (fewest FLOPs, then least memory), ``'time'``
#: (least modelled CPU time of the product, :mod:`tensortrain._plan_model`), ``'train'``
#: (least modelled CPU time of the product and its backward pass, for layers) and
#: ``'train_no_input_grad'`` (the same without the gradient of the input: a network's first
#: layer, whose backward is called with ``need_input_grad=False``).
OBJECTIVES = ("flops", "time", "train", "train_no_input_grad")

_TRAIN = ("train", "train_no_input_grad")


def check_objective(objective):
    """``objective`` if it is one of :data:`OBJECTIVES`, else a ``ValueError``."""
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    return objective


def default_objective(array, train=False, input_grad=True):
    """The objective products on ``array``'s backend use: ``'time'`` (for a forward pass that
    a backward pass follows ``'train'``, or ``'train_no_input_grad'`` when that backward
    pass needs no input gradient) for NumPy arrays, whose stacked products run one small
    BLAS call at a time, so that FLOPs misjudge them; ``'flops'`` elsewhere (CuPy runs a
    stack as one batched kernel)."""
    if isinstance(array, np.ndarray):
        if not train:
            return "time"
        return "train" if input_grad else "train_no_input_grad"
    return "flops"


def modeled_seconds(plan: ContractionPlan, batch_last=False, train=False,
                    input_grad=True) -> float:
    """The modelled CPU time of ``plan`` (:mod:`tensortrain._plan_model`): of the product
    ``X @ W.T`` (``W @ X`` with ``batch_last``), plus its backward pass with ``train``
    (without the input's gradient with ``input_grad=False``).

    The number the ``'time'``, ``'train'`` and ``'train_no_input_grad'`` objectives minimize;
    rough in absolute terms, meant for comparing plans of one shape.  Raises
    ``OverflowError`` when sizes or the total leave the float range.
    """
    B = plan.batch
    costs = _Costs(plan.row_modes, plan.col_modes, plan.ranks, B)
    bf, bb = (1, B) if batch_last else (B, 1)
    interval, total = None, 0.0
    for step in plan.steps:
        first = interval is None
        g, interval = _gemm(costs.mpre, costs.npre, costs.nsuf, costs.r, interval, step.lo,
                            step.hi, bf, bb)
        total += _plan_model.step_seconds(g.P, g.K, g.Q, g.rows, step.merge_flops,
                                          step.hi - step.lo, costs.core_size(step.lo, step.hi),
                                          plan.itemsize, train, input_grad or not first)
    return _plan_model._finite(total)


def _plan_search(row_modes, col_modes, ranks, batch, itemsize=8, exact_max_cores=None,
                 max_block=None, objective="flops", batch_last=False):
    """Uncached :func:`plan_matmat` with the search limits as arguments (for tests)."""
    m, n, r = _ints(row_modes), _ints(col_modes), _ints(ranks)
    _check_shape(m, n, r)
    check_objective(objective)
    if objective != "flops":
        train, input_grad = objective in _TRAIN, objective != "train_no_input_grad"
        # the step that reads the input has a price of its own only without its gradient
        first = None if input_grad else _plan_model.step_pricer(int(itemsize), train, False)
        try:
            blocks = _solve(m, n, r, int(batch), exact_max_cores, max_block,
                            _plan_model.step_pricer(int(itemsize), train), bool(batch_last),
                            first)
            plan = plan_from_blocks(m, n, r, batch, blocks, itemsize, objective)
            modeled_seconds(plan, bool(batch_last), train, input_grad)   # finite, or raise
            return plan
        except OverflowError:       # sizes or times beyond the float range: exact FLOPs
            pass
    blocks = _solve(m, n, r, int(batch), exact_max_cores, max_block)
    return plan_from_blocks(m, n, r, batch, blocks, itemsize, "flops")


@lru_cache(maxsize=512)
def _cached_plan(row_modes, col_modes, ranks, batch, itemsize, objective, batch_last):
    return _plan_search(row_modes, col_modes, ranks, batch, itemsize, objective=objective,
                        batch_last=batch_last)


def plan_matmat(row_modes, col_modes, ranks, batch, itemsize=8, objective="flops",
                batch_last=False) -> ContractionPlan:
    """The best plan for ``X @ W.T`` with ``B = batch`` (or ``W @ X`` with ``batch_last``).

    ``objective='flops'`` (the default): fewest FLOPs, then least memory; exact over all
    orders and groupings for up to :data:`EXACT_MAX_CORES` cores, over block sweeps from
    either end beyond (see the module docstring); never more FLOPs than the better
    one-core-at-a-time sweep.  ``'time'``, ``'train'`` and ``'train_no_input_grad'`` search
    the same candidates for the least modelled CPU time of the product (``'train'``: with its
    backward pass; ``'train_no_input_grad'``: with a backward pass that skips the input's
    gradient; see :mod:`tensortrain._plan_model`); the batch orientation matters to them, not
    to FLOPs.
    Sizes beyond the float range fall back to ``'flops'`` (``plan.objective`` says which).
    """
    objective = check_objective(objective)
    batch_last = bool(batch_last) and objective != "flops"
    return _cached_plan(tuple(row_modes), tuple(col_modes), tuple(ranks), int(batch),
                        int(itemsize), objective, batch_last)


def plan_from_blocks(row_modes, col_modes, ranks, batch, blocks, itemsize=8,
                     objective="given") -> ContractionPlan:
    """A plan that absorbs the given blocks ``[(lo, hi), ...]`` in order (0-based, inclusive).

    ``objective`` is only recorded on the plan (what it was chosen for)."""
    m, n, r = _ints(row_modes), _ints(col_modes), _ints(ranks)
    _check_shape(m, n, r)
    costs = _Costs(m, n, r, int(batch))
    interval, steps, flops, peak = None, [], 0, 0
    for lo, hi in blocks:
        step, interval, held = costs.step(interval, lo, hi)
        steps.append(step)
        flops += step.flops + step.merge_flops
        peak = max(peak, held)
    if interval != (0, len(m) - 1):
        raise ValueError(f"blocks {blocks} do not cover all {len(m)} cores")
    return _make_plan(m, n, r, batch, itemsize, steps, flops, peak, objective)


def fixed_sweep_plan(row_modes, col_modes, ranks, batch, direction="left", itemsize=8):
    """The textbook one-core-at-a-time sweep, for comparison with :func:`plan_matmat`."""
    d = len(row_modes)
    order = range(d) if direction == "left" else range(d - 1, -1, -1)
    return plan_from_blocks(row_modes, col_modes, ranks, batch, [(k, k) for k in order], itemsize)


# ---- merged blocks -------------------------------------------------------------------------------
def _merge_pair(a, b):
    """Merge two 4-D blocks ``(r, M, N, s)`` and ``(s, M2, N2, s')`` into
    ``(r, M M2, N N2, s')`` (row and column indices in C order, ``a``'s slower)."""
    xp = get_xp(a, b)
    r, M, N, s = a.shape
    _, M2, N2, s2 = b.shape
    six = xp.matmul(a.reshape(r * M * N, s), b.reshape(s, M2 * N2 * s2))
    six = six.reshape(r, M, N, M2, N2, s2)
    return xp.transpose(six, (0, 1, 3, 2, 4, 5)).reshape(r, M * M2, N * N2, s2)


def merge_block(cores, lo, hi):
    """Merge 4-D cores ``lo..hi`` into one 4-D array ``(r_lo, M, N, r_{hi+1})``.

    ``M = m_lo ... m_hi`` and ``N = n_lo ... n_hi`` are the row and column indices of the block
    in C order (``m_lo`` slowest).  Built core by core, so the number of axes stays 4 for any
    number of cores.
    """
    c = cores[lo]
    for t in range(lo + 1, hi + 1):
        c = _merge_pair(c, cores[t])
    return c


# axis orders (new..., contracted...) of a 4-D block (r, M, N, r') for each kind of step
_LAYOUTS = {
    "first": ((0, 1, 3, 2), 3),   # new (r, M, r'), contracted (N)
    "right": ((1, 3, 0, 2), 2),   # new (M, r'), contracted (r, N)
    "left": ((0, 1, 2, 3), 2),    # new (r, M), contracted (N, r')
}
# the same for the 6-D (r, M_a, N_a, m, n, r') left by merging the last core of a block
_LAYOUTS6 = {
    "first": (0, 1, 3, 5, 2, 4),
    "right": (1, 3, 5, 0, 2, 4),
    "left": (0, 1, 3, 2, 4, 5),
}
# a merge's 6-D (r, M, N, m, n, r') to the 4-D block order (r, M, m, N, n, r')
_MERGE6 = (0, 1, 3, 2, 4, 5)


class StepCode(NamedTuple):
    """Everything :func:`execute` and the backward pass need to know about one step, sizes
    and axis orders computed once per ``(plan, batch, batch_last)``.

    ``merges`` holds, for each core ``t = lo+1..hi`` merged into the block, the shapes
    ``(a2, b2, six, four)``: ``a.reshape(a2) @ cores[t].reshape(b2)`` reshaped to the 6-D
    ``six`` is the merge, ``four`` its 4-D form.  ``perm`` is the axis order that lays the
    block (the 4-D core, or the 6-D last merge) out as the ``(rows, K)`` matrix of the step
    (``None``: none needed).  A gradient of that matrix goes back to the 4-D block
    ``merged_shape`` as ``grad.reshape(grad_shape).transpose(grad_axes)``.  ``in_shape`` is
    the shape of the state as the GEMM reads it (``(K, Q)`` when ``P`` is 1, ``(P, K)`` when
    ``Q`` is 1, else ``(P, K, Q)``) and ``right`` says whether the block multiplies it from
    the right (``Q`` is 1 and ``P`` is not).
    """

    step: Step
    gemm: Gemm
    merges: tuple
    perm: tuple
    merged_shape: tuple
    grad_shape: tuple
    grad_axes: tuple
    in_shape: tuple
    right: bool


class StepRecord(NamedTuple):
    """What one executed step leaves for the backward pass (see ``record`` in :func:`execute`).

    ``block`` is the merged block as the ``(rows, K)`` matrix the step multiplied with,
    ``state`` the state it read (a ``(P, K, Q)`` array in C order, possibly of another shape),
    ``merged`` the 4-D merges of the cores ``lo..t`` for ``t = lo..hi-1`` (empty for a block of
    one core; the backward pass splits a block's gradient with them), and ``code`` the step's
    :class:`StepCode`.
    """

    step: Step
    side: str
    P: int
    K: int
    Q: int
    block: object
    state: object
    merged: tuple
    code: StepCode


def _argsort(perm):
    inv = [0] * len(perm)
    for k, a in enumerate(perm):
        inv[a] = k
    return tuple(inv)


def _build_program(plan, B, batch_last):
    """The :class:`StepCode` of every step of ``plan`` for ``B`` columns, and the output shape."""
    m, n, r = plan.row_modes, plan.col_modes, plan.ranks
    mpre, npre, nsuf = _prefix(m), _prefix(n), _suffix(n)
    bf, bb = (1, B) if batch_last else (B, 1)
    interval, codes = None, []
    for step in plan.steps:
        lo, hi = step.lo, step.hi
        g, interval = _gemm(mpre, npre, nsuf, r, interval, lo, hi, bf, bb)
        perm4 = _LAYOUTS[g.side][0]
        shape4 = (r[lo], mpre[hi + 1] // mpre[lo], npre[hi + 1] // npre[lo], r[hi + 1])
        merges = []
        R, M, N = r[lo], m[lo], n[lo]
        for t in range(lo + 1, hi + 1):
            s, mt, nt, s2 = r[t], m[t], n[t], r[t + 1]
            merges.append(((R * M * N, s), (s, mt * nt * s2), (R, M, N, mt, nt, s2),
                           (R, M * mt, N * nt, s2)))
            M, N = M * mt, N * nt
        if hi > lo:
            perm = _LAYOUTS6[g.side]
        else:
            perm = None if perm4 == (0, 1, 2, 3) else perm4
        if g.P == 1:
            in_shape, right = (g.K, g.Q), False
        elif g.Q == 1:
            in_shape, right = (g.P, g.K), True
        else:
            in_shape, right = (g.P, g.K, g.Q), False
        codes.append(StepCode(step, g, tuple(merges), perm, shape4,
                              tuple(shape4[a] for a in perm4), _argsort(perm4), in_shape, right))
    return tuple(codes), ((mpre[-1], B) if batch_last else (B, mpre[-1]))


def _program(plan, B, batch_last):
    """:func:`_build_program`, cached on the (immutable, shared) plan object."""
    cache = plan.__dict__.get("_programs")
    if cache is None:
        cache = {}
        object.__setattr__(plan, "_programs", cache)     # not a field: eq, hash, repr ignore it
    key = (B, batch_last)
    prog = cache.get(key)
    if prog is None:
        prog = cache[key] = _build_program(plan, B, batch_last)
    return prog


def _block(code, cores, keep=False):
    """The merged block of one step as its ``(rows, K)`` matrix, and (if ``keep``) the 4-D
    merges of the cores ``lo..t`` for ``t < hi`` made on the way.

    A block of several cores is merged core by core (one GEMM and one interleaving copy per
    core, 4 to 6 axes whatever the number of cores); the last merge is laid out for the step
    directly, so the block is copied once more only for a single core that needs transposing.
    """
    g = code.gemm
    lo = code.step.lo
    a = cores[lo]
    if not code.merges:
        if code.perm is not None:
            a = a.transpose(code.perm)
        return a.reshape(g.rows, g.K), ()
    merged = [a] if keep else None
    last = len(code.merges) - 1
    for idx, (a2, b2, six, four) in enumerate(code.merges):
        prod = (a.reshape(a2) @ cores[lo + 1 + idx].reshape(b2)).reshape(six)
        if idx == last:
            return prod.transpose(code.perm).reshape(g.rows, g.K), (tuple(merged) if keep else ())
        a = prod.transpose(_MERGE6).reshape(four)
        if keep:
            merged.append(a)


def _apply(block, state, code, xp=None, out=None):
    """``out[p, n, q] = sum_k block[n, k] * state[p, k, q]``: one GEMM when ``P`` or ``Q`` is
    1, else one batched GEMM over ``p`` on a view of the state (no copy of the data).  With
    ``out`` (a flat array of at least ``P * rows * Q`` elements) the result is written there."""
    s = state.reshape(code.in_shape)
    if out is None:
        return s @ block.T if code.right else block @ s
    g = code.gemm
    if code.right:
        return xp.matmul(s, block.T, out=out.reshape(g.P, g.rows))
    if g.P == 1:
        return xp.matmul(block, s, out=out.reshape(g.rows, g.Q))
    return xp.matmul(block, s, out=out.reshape(g.P, g.rows, g.Q))


class Workspace:
    """Arrays reused from one product to the next, instead of allocated afresh each time.

    :func:`execute` writes the intermediate states of a plan here (never its result), and
    :func:`tensortrain.gradients.matmul_backward` the gradients of those states; a layer that
    keeps one workspace (``TTLinear``) therefore allocates its temporaries once.  Large fresh
    arrays are expensive on a CPU: the operating system maps and zeroes their pages on first
    touch (measured in docs/performance.md, "Layer gradients").

    Arrays are kept per role, grown when a larger one is needed, and handed out as
    contiguous views of their leading elements.  Whatever a workspace handed out before is
    overwritten by the next call that uses it: a context that holds such arrays
    (:class:`tensortrain.gradients.MatmulContext`) is only valid until the next forward pass
    with the same workspace.  :meth:`clear` releases the memory.
    """

    __slots__ = ("_arrays",)

    #: Arrays of fewer elements are left to the allocator (small blocks are recycled by
    #: ``malloc`` without touching the operating system, so keeping them gains nothing).
    MIN_SIZE = 1 << 15

    def __init__(self):
        self._arrays = {}

    def take(self, key, size, dtype, xp):
        """A flat, contiguous ``xp`` array of ``size`` elements of ``dtype`` for ``key``."""
        a = self._arrays.get((key, xp))
        if a is None or a.size < size or a.dtype != dtype:
            a = xp.empty(size, dtype=dtype)
            self._arrays[(key, xp)] = a
        return a[:size]

    def clear(self):
        """Drop every array held."""
        self._arrays.clear()

    def __getstate__(self):
        # a cache of scratch memory (keyed by array module, which cannot be pickled): a copy
        # or an unpickled object starts empty
        return {}

    def __setstate__(self, state):
        self._arrays = {}

    @property
    def nbytes(self) -> int:
        """Bytes held."""
        return sum(int(a.nbytes) for a in self._arrays.values())


def _array_module(x, cores):
    """``get_xp(x, *cores)``; plain NumPy operands are recognised without the general scan."""
    if type(x) is np.ndarray:
        for c in cores:
            if type(c) is not np.ndarray:
                return get_xp(x, *cores)
        return np
    return get_xp(x, *cores)


# ---- execution -----------------------------------------------------------------------------------
def execute(plan: ContractionPlan, cores, x, batch_last=False, record=None, workspace=None):
    """Apply a plan: ``x @ W.T`` for ``x`` of shape ``(B, N)``, or ``W @ x`` for ``(N, B)``
    with ``batch_last=True``.

    The state keeps the layout ``(n_1..n_{i-1}, r_{i-1}, m_i..m_j, r_j, n_{j+1}..n_d)`` with
    the batch in front (or at the back).  The indices contracted by every step are then
    contiguous, so each step is a single (batched) matrix product of the merged block with a
    *view* of the state: no transposing copies of the data, and the final state is already
    the output ``(B, M)`` (or ``(M, B)``).  The sizes and axis orders of the steps are worked
    out once per plan, batch and orientation and cached on the plan.

    ``record``, if a list, receives one :class:`StepRecord` per step: what the backward pass
    (:mod:`tensortrain.gradients`) needs.  ``workspace``, a :class:`Workspace`, receives the
    intermediate states (the result is always a new array).
    """
    xp = _array_module(x, cores)
    codes, out_shape = _program(plan, x.shape[1] if batch_last else x.shape[0], batch_last)
    state = x
    if record is None and workspace is None:          # the plain product: the short loop
        for code in codes:
            if code.merges:
                block = _block(code, cores)[0]
            else:
                block = cores[code.step.lo]
                if code.perm is not None:
                    block = block.transpose(code.perm)
                block = block.reshape(code.gemm.rows, code.gemm.K)
            s = state.reshape(code.in_shape)
            state = s @ block.T if code.right else block @ s
        return state.reshape(out_shape)
    last = len(codes) - 1
    dtype = None if workspace is None else _result_dtype(cores[0].dtype, x.dtype)
    for idx, code in enumerate(codes):
        block, merged = _block(code, cores, keep=record is not None)
        if record is not None:
            g = code.gemm
            record.append(StepRecord(code.step, g.side, g.P, g.K, g.Q, block, state, merged,
                                     code))
        if workspace is None or idx == last or code.gemm.size_out < Workspace.MIN_SIZE:
            state = _apply(block, state, code)
        else:
            state = _apply(block, state, code, xp,
                           workspace.take(("state", idx), code.gemm.size_out, dtype, xp))
    return state.reshape(out_shape)


_RESULT_TYPES = {}


def _result_dtype(a, b):
    """``np.result_type(a, b)`` of two dtypes, memoized (it is asked on every product)."""
    key = (a, b)
    dt = _RESULT_TYPES.get(key)
    if dt is None:
        dt = _RESULT_TYPES[key] = np.result_type(a, b)
    return dt

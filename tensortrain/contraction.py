"""Contraction plans for a TT-matrix times a dense batch.

``Y = X @ W.T`` with ``W`` given by cores ``(r_{k-1}, m_k, n_k, r_k)`` and ``X`` of shape
``(B, n_1 * ... * n_d)``.  The input is absorbed core block by core block; a *block* is a run
of neighbouring cores merged into one before it meets the data.  The state after absorbing the
cores ``i..j`` holds the indices ``(b, n_1..n_{i-1}, r_{i-1}, m_i..m_j, r_j, n_{j+1}..n_d)``, so
its size, and the cost of every next step, depend only on ``(i, j)``.  A dynamic program over
these intervals finds the plan with the fewest FLOPs among all orders (left-to-right,
right-to-left, middle-out) and all groupings of neighbouring cores, including the extreme of
merging every core into the dense matrix.  Ties are broken by peak temporary memory.

Plans are cached per ``(row modes, column modes, ranks, batch, itemsize)``.  Each step is one
(batched) GEMM on a view of the state, never a transposing copy of the data (see
:func:`execute`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from ._backend import get_xp

__all__ = ["ContractionPlan", "Step", "plan_matmat", "plan_from_blocks", "fixed_sweep_plan", "execute"]


@dataclass(frozen=True)
class Step:
    """Absorb the merged cores ``lo..hi`` (inclusive) into the state."""

    lo: int
    hi: int
    flops: int          # of the GEMM with the data
    merge_flops: int    # of merging the block's cores into one
    state_size: int     # elements of the state after the step


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
        return (f"{blocks}: {self.flops / 1e6:.3f} MFLOP "
                f"({self.dense_flops / max(self.flops, 1):.1f}x fewer than dense), "
                f"peak {self.peak_bytes / 2**20:.3f} MiB")


def _merge_flops(m, n, r, lo, hi):
    """FLOPs of merging cores lo..hi left to right."""
    total = 0
    rows = r[lo] * m[lo] * n[lo]  # (r_lo, m n) grows as cores are merged
    for t in range(lo + 1, hi + 1):
        total += 2 * rows * r[t] * m[t] * n[t] * r[t + 1]
        rows *= m[t] * n[t]
    return total


class _Costs:
    """Sizes and FLOPs of the interval states for one shape."""

    def __init__(self, m, n, r, B):
        self.m, self.n, self.r, self.B = m, n, r, B
        d = len(m)
        self.npre = [math.prod(n[:i]) for i in range(d + 1)]
        self.nsuf = [math.prod(n[i:]) for i in range(d + 1)]

    def mseg(self, i, j):
        return math.prod(self.m[i:j + 1])

    def nseg(self, i, j):
        return math.prod(self.n[i:j + 1])

    def state(self, i, j):
        """Elements of the state after absorbing cores i..j."""
        r = self.r
        return self.B * self.npre[i] * r[i] * self.mseg(i, j) * r[j + 1] * self.nsuf[j + 1]

    def core_size(self, lo, hi):
        r = self.r
        return r[lo] * self.mseg(lo, hi) * self.nseg(lo, hi) * r[hi + 1] if hi > lo else 0

    def step(self, interval, lo, hi):
        """Absorb block lo..hi into the state of ``interval`` (None: the raw input).

        Returns ``(Step, new_interval, elements_held)``.
        """
        r, B = self.r, self.B
        merge = _merge_flops(self.m, self.n, r, lo, hi)
        if interval is None:
            i, j = lo, hi
            before = B * self.npre[-1]
            free = B * self.npre[lo] * self.nsuf[hi + 1]
            contracted = self.nseg(lo, hi)
            new = r[lo] * self.mseg(lo, hi) * r[hi + 1]
        else:
            i, j = interval
            before = self.state(i, j)
            if lo == j + 1:      # block on the right
                free = B * self.npre[i] * r[i] * self.mseg(i, j) * self.nsuf[hi + 1]
                contracted = r[j + 1] * self.nseg(lo, hi)
                new = self.mseg(lo, hi) * r[hi + 1]
                j = hi
            elif hi == i - 1:    # block on the left
                free = B * self.npre[lo] * self.mseg(i, j) * r[j + 1] * self.nsuf[j + 1]
                contracted = r[i] * self.nseg(lo, hi)
                new = self.mseg(lo, hi) * r[lo]
                i = lo
            else:  # pragma: no cover - internal misuse
                raise ValueError(f"block {lo}..{hi} is not next to {interval}")
        fl = 2 * free * contracted * new
        after = self.state(i, j)
        held = (0 if interval is None else before) + after + self.core_size(lo, hi)
        return Step(lo, hi, fl, merge, after), (i, j), held


def _solve(m, n, r, B):
    d = len(m)
    costs = _Costs(m, n, r, B)
    best = {}

    def offer(key, value):
        if key not in best or value[0] < best[key][0]:
            best[key] = value

    for i in range(d):
        for j in range(i, d):
            step, key, held = costs.step(None, i, j)
            offer(key, ((step.flops + step.merge_flops, held), None, step))
    for length in range(1, d + 1):
        for i in range(0, d - length + 1):
            j = i + length - 1
            if (i, j) not in best:
                continue
            (cost, peak), _, _ = best[(i, j)]
            blocks = [(j + 1, hi) for hi in range(j + 1, d)] + [(lo, i - 1) for lo in range(i)]
            for lo, hi in blocks:
                step, key, held = costs.step((i, j), lo, hi)
                offer(key, ((cost + step.flops + step.merge_flops, max(peak, held)), (i, j), step))
    steps = []
    (cost, peak), prev, step = best[(0, d - 1)]
    while True:
        steps.append(step)
        if prev is None:
            break
        _, prev, step = best[prev]
    return tuple(reversed(steps)), int(cost), int(peak)


def _make_plan(row_modes, col_modes, ranks, batch, itemsize, steps, flops, peak):
    dense = 2 * batch * math.prod(row_modes) * math.prod(col_modes)
    return ContractionPlan(tuple(row_modes), tuple(col_modes), tuple(ranks), int(batch),
                           tuple(steps), int(flops), int(peak), int(itemsize), dense)


@lru_cache(maxsize=512)
def _cached_plan(row_modes, col_modes, ranks, batch, itemsize):
    steps, flops, peak = _solve(row_modes, col_modes, ranks, batch)
    return _make_plan(row_modes, col_modes, ranks, batch, itemsize, steps, flops, peak)


def plan_matmat(row_modes, col_modes, ranks, batch, itemsize=8) -> ContractionPlan:
    """The cheapest plan (fewest FLOPs, then least memory) for ``X @ W.T`` with ``B = batch``."""
    return _cached_plan(tuple(row_modes), tuple(col_modes), tuple(ranks), int(batch), int(itemsize))


def plan_from_blocks(row_modes, col_modes, ranks, batch, blocks, itemsize=8) -> ContractionPlan:
    """A plan that absorbs the given blocks ``[(lo, hi), ...]`` in order (0-based, inclusive)."""
    costs = _Costs(tuple(row_modes), tuple(col_modes), tuple(ranks), int(batch))
    interval, steps, flops, peak = None, [], 0, 0
    for lo, hi in blocks:
        step, interval, held = costs.step(interval, lo, hi)
        steps.append(step)
        flops += step.flops + step.merge_flops
        peak = max(peak, held)
    if interval != (0, len(row_modes) - 1):
        raise ValueError(f"blocks {blocks} do not cover all {len(row_modes)} cores")
    return _make_plan(row_modes, col_modes, ranks, batch, itemsize, steps, flops, peak)


def fixed_sweep_plan(row_modes, col_modes, ranks, batch, direction="left", itemsize=8):
    """The textbook one-core-at-a-time sweep, for comparison with :func:`plan_matmat`."""
    d = len(row_modes)
    order = range(d) if direction == "left" else range(d - 1, -1, -1)
    return plan_from_blocks(row_modes, col_modes, ranks, batch, [(k, k) for k in order], itemsize)


def merge_block(cores, lo, hi):
    """Merge 4-D cores ``lo..hi`` into one array ``(r_lo, m_lo, n_lo, ..., m_hi, n_hi, r_hi+1)``."""
    xp = get_xp(*cores)
    c = cores[lo]
    for t in range(lo + 1, hi + 1):
        c = xp.tensordot(c, cores[t], axes=([c.ndim - 1], [0]))
    return c


def _block_layout(k, side):
    """Axis order ``(new..., contracted...)`` of a merged block of ``k`` cores for one step.

    ``side`` is ``'first'`` (new ``(r, m.., r')``, contracted ``(n..)``), ``'right'`` (new
    ``(m.., r')``, contracted ``(r, n..)``) or ``'left'`` (new ``(r, m..)``, contracted
    ``(n.., r')``).  Returns ``(perm, n_new)``.
    """
    r_ax, r2_ax = 0, 2 * k + 1
    m_ax = [1 + 2 * t for t in range(k)]
    n_ax = [2 + 2 * t for t in range(k)]
    if side == "first":
        new, con = [r_ax] + m_ax + [r2_ax], n_ax
    elif side == "right":
        new, con = m_ax + [r2_ax], [r_ax] + n_ax
    else:
        new, con = [r_ax] + m_ax, n_ax + [r2_ax]
    return new + con, len(new)


def _block_matrix(cores, lo, hi, side):
    """The merged block as a 2-D ``(new, contracted)`` matrix for one kind of step."""
    xp = get_xp(*cores)
    c = merge_block(cores, lo, hi)
    perm, n_new = _block_layout(hi - lo + 1, side)
    rows = math.prod(c.shape[a] for a in perm[:n_new])
    return xp.transpose(c, perm).reshape(rows, -1)


def _step_sizes(plan, interval, lo, hi, bf, bb):
    """``(side, P, K, Q, new_interval)`` of absorbing block lo..hi after ``interval``."""
    m, n, r = plan.row_modes, plan.col_modes, plan.ranks
    prod = math.prod
    nseg = prod(n[lo:hi + 1])
    if interval is None:
        return "first", bf * prod(n[:lo]), nseg, prod(n[hi + 1:]) * bb, (lo, hi)
    i, j = interval
    if lo == j + 1:
        return ("right", bf * prod(n[:i]) * r[i] * prod(m[i:j + 1]), r[lo] * nseg,
                prod(n[hi + 1:]) * bb, (i, hi))
    return ("left", bf * prod(n[:lo]), nseg * r[hi + 1],
            prod(m[i:j + 1]) * r[j + 1] * prod(n[j + 1:]) * bb, (lo, j))


def _apply_block(xp, core, state, P, K, Q):
    """``out[p, new, q] = sum_k core[new, k] * state[p, k, q]`` as one (batched) GEMM."""
    if P == 1:
        return xp.matmul(core, state.reshape(K, Q))
    if Q == 1:
        return xp.matmul(state.reshape(P, K), core.T)
    return xp.matmul(core, state.reshape(P, K, Q))


def execute(plan: ContractionPlan, cores, x, batch_last=False, record=None):
    """Apply a plan: ``x @ W.T`` for ``x`` of shape ``(B, N)``, or ``W @ x`` for ``(N, B)``
    with ``batch_last=True``.

    The state keeps the layout ``(n_1..n_{i-1}, r_{i-1}, m_i..m_j, r_j, n_{j+1}..n_d)`` with
    the batch in front (or at the back).  The indices contracted by every step are then
    contiguous, so each step is a single (batched) matrix product of the merged block with a
    *view* of the state: no transposing copies of the data, and the final state is already
    the output ``(B, M)`` (or ``(M, B)``).

    ``record``, if a list, receives one ``(step, side, P, K, Q, block_matrix, state_in)``
    tuple per step: what the backward pass (:mod:`tensortrain.gradients`) needs.
    """
    xp = get_xp(x, *cores)
    B = x.shape[1] if batch_last else x.shape[0]
    bf, bb = (1, B) if batch_last else (B, 1)
    state = x
    interval = None
    for step in plan.steps:
        side, P, K, Q, interval = _step_sizes(plan, interval, step.lo, step.hi, bf, bb)
        core = _block_matrix(cores, step.lo, step.hi, side)
        if record is not None:
            record.append((step, side, P, K, Q, core, state))
        state = _apply_block(xp, core, state, P, K, Q)
    M = math.prod(plan.row_modes)
    return state.reshape(M, B) if batch_last else state.reshape(B, M)

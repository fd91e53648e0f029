"""A model of the run time of a contraction step on a CPU, for choosing plans by time.

FLOPs alone choose badly on a CPU: one large GEMM runs at several times the rate of a stack of
small ones (NumPy issues a stacked product one small BLAS call at a time, on one thread), a
GEMM with a short side streams its operands at memory speed, and a plan with more, but larger,
products can be the faster one.  Measured on a 2-core machine (docs/performance.md, "Plans
chosen by time"): fc6 at batch 100 trains 28% faster with a plan of 2.2x the FLOPs, and a
rank-2 1024 x 1024 layer runs its product 2.7x faster with a plan of fewer steps.

The model is linear in a few features of each step ``out[p, n, q] = sum_k block[n, k]
state[p, k, q]`` (sizes ``P, K, Q`` and ``rows``, as in :class:`tensortrain.contraction.Gemm`):

* a *single GEMM* (``P == 1`` or ``Q == 1``): a fixed cost per call, the FLOPs, the elements
  read and written, and the FLOPs again when the block is small (``rows * K <= 4096``: such a
  product, or its gradient with a long inner dimension, is not spread over threads well);
* a *stack* of ``P`` products: a cost per product, the FLOPs (at a lower rate when each
  product is small, ``rows * K * Q < 2^18``, so that BLAS runs it on one thread), the
  elements read and written, the ``P * rows * K`` partial products of the block gradient, the
  FLOPs over ``min(Q, 64)`` (a short inner dimension), and the FLOPs of large products with a
  small output (``rows * Q <= 4096``);
* and per step: a fixed cost (Python and the block's reshape), the FLOPs of merging the
  block's cores, the number of merges, and the elements of the merged block.

Coefficients for the forward product, and for the backward pass of the same step (its
block gradient and its state gradient, and splitting a merged block's gradient over its
cores; when the first step's state gradient, the input's, is not wanted, that product is
taken off as described at :data:`NO_INPUT_MIN_SHARE`); the per-step terms of the plain
product (``product_step``, fresh arrays, nothing kept) differ from those of a forward pass
that keeps its states.  They were fitted by non-negative least squares on relative error to the measured
times of every step of every plan within 8x of the fewest FLOPs, for thirteen layer shapes
(float32, OpenBLAS with 2 threads, AVX-512; ``benchmarks/fit_plan_model.py`` measures and
fits them again on another machine).  Other item sizes scale the FLOP and element terms by
``itemsize / 4``.  The absolute times are rough (median error about 25% per step); what the
planner needs is their order, and the plans it picks were checked against measured times
(``benchmarks/bench_layer.py`` and the fitting script's report).

The model describes NumPy on a CPU; on a GPU (CuPy runs a stack of products as one batched
kernel) plans stay chosen by FLOPs.
"""

from __future__ import annotations

__all__ = ["COEFFICIENTS", "NO_INPUT_MIN_SHARE", "step_pricer", "step_seconds"]

#: ``single``: (per call, per FLOP, per element read, per element written, per FLOP of a
#: small block); ``stack``: (per product, per FLOP of small products, per element read, per
#: element written, per partial product of the block gradient, per FLOP / min(Q, 64), per
#: FLOP of large products, per FLOP of large products with a small output); ``step``: (per
#: step, per merge FLOP, per merge, per element of a merged block), for a forward pass that
#: keeps its states and for the backward pass; ``product_step``: the same four and per
#: element written, for the plain product (which allocates its states afresh).  Seconds,
#: float32, from ``benchmarks/fit_plan_model.py --max-plans 120`` (2026-12-02, 2 threads).
COEFFICIENTS = {
    "forward": {
        "single": (9.9510e-07, 3.4014e-12, 1.5608e-10, 1.2009e-10, 6.8719e-13),
        "stack": (2.5967e-08, 3.6217e-12, 1.2821e-10, 1.5908e-10, 6.5211e-11, 0.0,
                  3.8833e-12, 1.1497e-12),
        "step": (3.1754e-06, 4.9783e-11, 7.8006e-07, 9.4468e-10),
        "product_step": (0.0, 3.8404e-11, 0.0, 9.8746e-10, 1.7727e-10),
    },
    "backward": {
        "single": (1.9520e-06, 7.2748e-12, 2.9153e-10, 2.1981e-10, 3.6372e-12),
        "stack": (1.1159e-07, 9.2798e-12, 3.8292e-10, 3.1286e-10, 3.6352e-10, 4.0690e-11,
                  1.3563e-11, 0.0),
        "step": (2.1852e-06, 8.7626e-11, 4.6951e-06, 5.7503e-10),
    },
}

_SMALL_BLOCK = 4096
_SMALL_PRODUCT = 1 << 18


def _features(P, K, Q, rows, merge_flops, merges, merged, itemsize):
    """The (single, stack, step) feature vectors of one step; floats, may raise
    ``OverflowError`` for sizes beyond the float range."""
    s = itemsize / 4.0
    fl = 2.0 * P * K * Q * rows * s
    read = float(P) * K * Q * s
    written = float(P) * rows * Q * s
    step = (1.0, float(merge_flops) * s, float(merges), float(merged) * s)
    if P == 0 or Q == 0:                    # an empty batch: nothing but the step itself
        return (0.0,) * 5, None, step
    if P == 1 or Q == 1:
        small = fl if rows * K <= _SMALL_BLOCK else 0.0
        return (1.0, fl, read, written, small), None, step
    big = rows * K * Q >= _SMALL_PRODUCT
    stack = (float(P), 0.0 if big else fl, read, written, float(P) * rows * K * s,
             fl / min(Q, 64), fl if big else 0.0,
             fl if big and rows * Q <= _SMALL_BLOCK else 0.0)
    return None, stack, step


def step_pricer(itemsize=4, train=False, input_grad=True):
    """A fast ``price(P, K, Q, rows, merge_flops, merges, merged)`` equal to
    :func:`step_seconds` with these ``itemsize``, ``train`` and ``input_grad`` (for the
    planner, which prices thousands of candidate steps): the coefficients are combined once,
    and the forward and backward terms of each feature summed before the call.  (With
    ``input_grad=False``, for a plan's first step only, the price is :func:`step_seconds`
    itself.)"""
    if train and not input_grad:
        def first_price(P, K, Q, rows, merge_flops, merges, merged):
            return step_seconds(P, K, Q, rows, merge_flops, merges, merged, itemsize, True,
                                False)
        return first_price
    parts = ("forward", "backward") if train else ("forward",)
    single = [sum(COEFFICIENTS[p]["single"][i] for p in parts) for i in range(5)]
    stack = [sum(COEFFICIENTS[p]["stack"][i] for p in parts) for i in range(8)]
    if train:
        step = [sum(COEFFICIENTS[p]["step"][i] for p in parts) for i in range(4)] + [0.0]
    else:
        step = list(COEFFICIENTS["forward"]["product_step"])
    s = itemsize / 4.0
    # per-FLOP terms take 2 s (they multiply mult = FLOPs / 2 / s), per-element terms s
    a0, a1, a2, a3 = single[0], single[1] * 2 * s, single[2] * s, single[3] * s
    a4 = single[4] * 2 * s
    b0, b1, b2, b3 = stack[0], stack[1] * 2 * s, stack[2] * s, stack[3] * s
    b4, b5, b6, b7 = stack[4] * s, stack[5] * 2 * s, stack[6] * 2 * s, stack[7] * 2 * s
    c0, c1, c2, c3, c4 = step[0], step[1] * s, step[2], step[3] * s, step[4] * s

    def price(P, K, Q, rows, merge_flops, merges, merged):
        t = c0 + c1 * merge_flops + c2 * merges + c3 * merged
        if P == 0 or Q == 0:
            return _finite(t)
        pq = float(P) * Q
        pkq = pq * K
        written = pq * rows
        mult = pkq * rows                      # FLOPs / 2 / s
        t += c4 * written
        if P == 1 or Q == 1:
            t += a0 + a1 * mult + a2 * pkq + a3 * written
            if rows * K <= _SMALL_BLOCK:
                t += a4 * mult
            return _finite(t)
        t += b0 * P + b2 * pkq + b3 * written + b4 * (float(P) * rows * K) + b5 * mult / min(Q, 64)
        if rows * K * Q >= _SMALL_PRODUCT:
            t += b6 * mult
            if rows * Q <= _SMALL_BLOCK:
                t += b7 * mult
        else:
            t += b1 * mult
        return _finite(t)

    return price


def _finite(t):
    """``t``, or ``OverflowError`` when sizes near the float range made it ``inf`` or NaN
    (the planner then falls back to FLOPs, counted exactly)."""
    if t - t != 0.0:                         # inf - inf and NaN - NaN are NaN
        raise OverflowError(f"a modelled time is not finite ({t}): sizes beyond the model")
    return t


def _dot(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True))


def _products(part, single, stack):
    """Modelled seconds of a step's products (``part``: 'forward' or 'backward')."""
    c = COEFFICIENTS[part]
    return _dot(c["single"], single) if single is not None else _dot(c["stack"], stack)


#: Without the input gradient, the first step's backward products are modelled as the full
#: backward's less a product shaped like that gradient (``rows`` and ``K`` swapped, priced as
#: a forward product), and never as less than this share of the full backward's.
NO_INPUT_MIN_SHARE = 0.25


def step_seconds(P, K, Q, rows, merge_flops=0, merges=0, merged=0, itemsize=4, train=False,
                 input_grad=True):
    """Modelled seconds of one step on a CPU: of the plain product (``x @ W.T``, fresh arrays,
    nothing kept), or with ``train`` of the forward pass that keeps its states for the
    backward pass plus that backward pass.  ``input_grad=False`` (with ``train``; meant for a
    plan's first step, whose input is the data) leaves out the gradient of the step's input
    state: the backward is then the block gradient alone, modelled as described at
    :data:`NO_INPUT_MIN_SHARE` (not fitted on its own).

    ``merge_flops``, ``merges`` and ``merged`` describe the merging of the block's cores (0 for
    a block of one core).  Raises ``OverflowError`` when the sizes, or the time, leave the
    float range.
    """
    single, stack, step = _features(P, K, Q, rows, merge_flops, merges, merged, itemsize)
    total = 0.0
    for part in (("forward", "backward") if train else ("forward",)):
        c = COEFFICIENTS[part]
        products = _products(part, single, stack)
        if part == "backward" and not input_grad:
            t_single, t_stack, _ = _features(P, rows, Q, K, 0, 0, 0, itemsize)
            products = max(products - _products("forward", t_single, t_stack),
                           NO_INPUT_MIN_SHARE * products)
        total += products
        if train:
            total += _dot(c["step"], step)
    if not train:
        written = (single or stack)[3]
        total += _dot(COEFFICIENTS["forward"]["product_step"], (*step, written))
    return _finite(total)

"""Plans chosen by modelled time ('time', 'train') beside those chosen by FLOPs ('flops').

The exactness of the search for every objective (against all block orders for d <= 4) and the
results of every chosen plan are in tests/test_properties.py and tests/test_matrix.py; the
gradients of 'train' plans against finite differences in tests/test_gradients.py.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

import tensortrain as tt
from tensortrain import _plan_model, contraction, gradients
from tensortrain.nn import TTLinear


def test_objective_is_checked():
    with pytest.raises(ValueError, match=r"objective must be one of .*'fast'"):
        contraction.plan_matmat((2, 2), (2, 2), (1, 2, 1), 3, 8, "fast")
    W = tt.random_matrix((2, 2), (2, 2), 2, rng=0)
    with pytest.raises(ValueError, match="objective must be one of"):
        W.matmul_plan(3, objective="FLOPS")
    with pytest.raises(ValueError, match="objective must be one of"):
        gradients.matmul_forward(W, np.ones((3, 4)), objective="speed")


def test_default_objective_by_backend():
    assert contraction.default_objective(np.ones(2)) == "time"
    assert contraction.default_objective(np.ones(2), train=True) == "train"
    assert (contraction.default_objective(np.ones(2), train=True, input_grad=False)
            == "train_no_input_grad")
    assert contraction.default_objective(np.ones(2), input_grad=False) == "time"
    assert contraction.default_objective(object(), train=True, input_grad=False) == "flops"
    assert contraction.default_objective(object()) == "flops"           # not a NumPy array
    W = tt.random_matrix((4, 8, 8, 4), (4, 8, 8, 4), 2, rng=0, dtype=np.float32)
    assert W.matmul_plan(100).objective == "time"
    assert W.matmul_plan(100, objective="flops").objective == "flops"


def test_products_run_the_time_plan_and_agree_with_the_flop_plan(monkeypatch):
    """``x @ W.T`` and ``W @ x`` execute the plan ``matmul_plan`` reports for their layout,
    and give the FLOP plan's result to rounding."""
    W = tt.random_matrix((4, 8, 8, 4), (4, 8, 8, 4), 2, rng=0)   # time and FLOP plans differ
    B = 100
    assert W.matmul_plan(B).order != W.matmul_plan(B, objective="flops").order
    seen = []
    real = contraction.execute

    def spy(plan, cores, x, batch_last=False, record=None, workspace=None):
        seen.append((plan, batch_last))
        return real(plan, cores, x, batch_last, record, workspace)

    monkeypatch.setattr(contraction, "execute", spy)
    rng = np.random.default_rng(1)
    X = rng.standard_normal((B, 1024))
    Y = X @ W.T
    Yt = W @ X.T
    assert seen == [(W.matmul_plan(B), False), (W.matmul_plan(B, batch_last=True), True)]
    ref = real(W.matmul_plan(B, objective="flops"), W.cores, X)
    np.testing.assert_allclose(Y, ref, rtol=1e-12, atol=1e-12 * np.abs(ref).max())
    np.testing.assert_allclose(Yt, ref.T, rtol=1e-12, atol=1e-12 * np.abs(ref).max())


def test_sizes_beyond_the_float_range_fall_back_to_flops():
    d = 1100                         # 2**1100 columns: the state sizes pass the float range
    rows, cols, ranks = (2,) * d, (2,) * d, (1,) * (d + 1)
    plan = contraction.plan_matmat(rows, cols, ranks, 1, 8, "time")
    assert plan.objective == "flops"
    assert plan.order == contraction.plan_matmat(rows, cols, ranks, 1, 8, "flops").order
    with pytest.raises(OverflowError):
        contraction.modeled_seconds(plan)


def test_empty_batch_is_priced_and_runs():
    W = tt.random_matrix((2, 3), (3, 2), 2, rng=0)
    for objective in ("time", "train", "train_no_input_grad"):
        plan = W.matmul_plan(1, objective=objective)
        assert contraction.modeled_seconds(plan, train=objective != "time",
                                           input_grad=objective != "train_no_input_grad") > 0
    assert _plan_model.step_seconds(0, 4, 5, 6) >= 0
    assert (W @ np.ones((6, 0))).shape == (6, 0)
    assert (np.ones((0, 6)) @ W.T).shape == (0, 6)


@pytest.mark.parametrize("itemsize", [4, 8, 16])
@pytest.mark.parametrize("train", [False, True])
def test_fast_pricer_equals_the_model(itemsize, train):
    price = _plan_model.step_pricer(itemsize, train)
    rnd = random.Random(itemsize + train)
    for _ in range(3000):
        P = rnd.choice([0, 1, rnd.randint(2, 10**7)])
        Q = rnd.choice([0, 1, rnd.randint(2, 10**4)])
        K, rows = rnd.randint(1, 5000), rnd.randint(1, 5000)
        extra = (rnd.randint(0, 10**8), rnd.randint(0, 30), rnd.randint(0, 10**6))
        a = price(P, K, Q, rows, *extra)
        b = _plan_model.step_seconds(P, K, Q, rows, *extra, itemsize=itemsize, train=train)
        assert a == pytest.approx(b, rel=1e-13, abs=0)
        assert a > 0


def test_no_input_gradient_prices_less_but_not_less_than_the_forward():
    """Leaving out the input gradient of a step makes its training price smaller, but never
    below the forward pass plus the floor share of its backward products."""
    rnd = random.Random(5)
    for _ in range(2000):
        P = rnd.choice([1, rnd.randint(2, 10**6)])
        Q = rnd.choice([1, rnd.randint(2, 10**3)])
        K, rows = rnd.randint(1, 3000), rnd.randint(1, 3000)
        extra = (rnd.randint(0, 10**7), rnd.randint(0, 5), rnd.randint(0, 10**5))
        full = _plan_model.step_seconds(P, K, Q, rows, *extra, train=True)
        part = _plan_model.step_seconds(P, K, Q, rows, *extra, train=True, input_grad=False)
        assert _plan_model.NO_INPUT_MIN_SHARE * full <= part < full
    # the plain product's own price does not depend on a gradient it never computes
    assert (_plan_model.step_seconds(100, 32, 32, 64, input_grad=False)
            == _plan_model.step_seconds(100, 32, 32, 64))


def test_the_no_input_price_is_the_backward_less_the_input_gradient_product():
    """The first step's price without the input gradient: forward and per-step terms as for
    'train', the backward products less a forward product with ``rows`` and ``K`` swapped
    (the shape of the input gradient), floored at NO_INPUT_MIN_SHARE of them."""
    M = _plan_model
    for P, K, Q, rows in ((3200, 32, 1, 64), (100, 32, 32, 64), (100, 64, 32, 32),
                          (1, 40, 500, 7)):
        single, stack, step = M._features(P, K, Q, rows, 1000, 2, 300, 4)
        t_single, t_stack, _ = M._features(P, rows, Q, K, 0, 0, 0, 4)
        back = M._products("backward", single, stack)
        expected = (M._products("forward", single, stack)
                    + M._dot(M.COEFFICIENTS["forward"]["step"], step)
                    + M._dot(M.COEFFICIENTS["backward"]["step"], step)
                    + max(back - M._products("forward", t_single, t_stack),
                          M.NO_INPUT_MIN_SHARE * back))
        got = M.step_seconds(P, K, Q, rows, 1000, 2, 300, 4, train=True, input_grad=False)
        assert got == pytest.approx(expected, rel=1e-14)
        assert M.step_pricer(4, True, False)(P, K, Q, rows, 1000, 2, 300) == got
        # swapping rows and K matters here, so a model that forgot the swap would differ
        assert (M._products("forward", *M._features(P, K, Q, rows, 0, 0, 0, 4)[:2])
                != M._products("forward", t_single, t_stack))


@pytest.mark.parametrize("batch_last", [False, True])
def test_the_first_layer_search_is_exact_on_fixed_shapes(batch_last):
    """Against every block order (d <= 4): the 'train_no_input_grad' plan has the least
    modelled time of that objective (a search that priced every step without the input
    gradient, instead of the first only, fails this on these shapes)."""
    from itertools import permutations  # noqa: PLC0415

    def orders(d):
        out = []
        for cut in range(1 << (d - 1)):                  # groupings into runs
            runs, lo = [], 0
            for k in range(d - 1):
                if cut >> k & 1:
                    runs.append((lo, k))
                    lo = k + 1
            runs.append((lo, d - 1))
            for perm in permutations(runs):              # keep the absorbable orders
                iv = None
                for a, b in perm:
                    if iv is not None and a != iv[1] + 1 and b != iv[0] - 1:
                        break
                    iv = (a, b) if iv is None else (min(a, iv[0]), max(b, iv[1]))
                else:
                    out.append(list(perm))
        return out

    shapes = [((4, 8, 4), (8, 8, 16), (1, 4, 4, 1), 100),
              ((4, 4, 4), (7, 4, 28), (1, 2, 2, 1), 256),
              ((4, 8, 8, 4), (4, 8, 8, 4), (1, 2, 2, 2, 1), 100),
              ((2, 3, 5, 2), (5, 2, 3, 4), (1, 3, 6, 2, 1), 7)]
    for rows, cols, ranks, batch in shapes:
        plan = contraction.plan_matmat(rows, cols, ranks, batch, 4, "train_no_input_grad",
                                       batch_last)
        cost = contraction.modeled_seconds(plan, batch_last, True, False)
        candidates = [contraction.plan_from_blocks(rows, cols, ranks, batch, b, 4)
                      for b in orders(len(rows))]
        best = min(contraction.modeled_seconds(c, batch_last, True, False) for c in candidates)
        assert cost == pytest.approx(best, rel=1e-12), (rows, plan.order)


def test_a_first_layer_plans_without_the_input_gradient():
    """Once its backward is called with ``need_input_grad=False`` (as ``fit`` does for the
    first layer), the layer's next forward runs the ``'train_no_input_grad'`` plan (for this
    1024 -> 128 layer another block order than ``'train'``, measured 1.2x to 1.3x faster as
    a first layer in docs/performance.md); results and
    gradients stay those of the dense float64 layer to float32 rounding, and a later
    backward that asks for the input gradient gets it and switches back."""
    layer = TTLinear(1024, 128, 4, in_modes=(8, 8, 16), out_modes=(4, 8, 4),
                     dtype=np.float32, rng=0)
    W = layer.weight
    x = np.random.default_rng(2).standard_normal((100, 1024)).astype(np.float32)
    g = np.random.default_rng(3).standard_normal((100, 128)).astype(np.float32)
    train_order = W.matmul_plan(100, objective="train").order
    first_order = W.matmul_plan(100, objective="train_no_input_grad").order
    assert first_order != train_order                     # the case this test is about
    Wd = W.full().astype(np.float64)
    x64, g64 = x.astype(np.float64), g.astype(np.float64)

    def order():
        return tuple((r.step.lo, r.step.hi) for r in layer._cache.record)

    def close(a, b):
        np.testing.assert_allclose(a, b, rtol=0, atol=2e-5 * np.abs(b).max())

    layer.forward(x)
    assert order() == train_order
    assert layer.backward(g, need_input_grad=False) is None
    ref_grads = [p.grad.astype(np.float64) for p in layer.cores]
    layer.zero_grad()
    y = layer.forward(x)
    assert order() == first_order
    assert layer.flops(100) == (W.matmul_plan(100, objective="train_no_input_grad").flops
                                + 100 * 128)
    close(y - layer.bias.data, x64 @ Wd.T)
    assert layer.backward(g, need_input_grad=False) is None
    for a, b in zip((p.grad for p in layer.cores), ref_grads, strict=True):
        close(a, b)
    layer.zero_grad()
    layer.forward(x)
    close(layer.backward(g), g64 @ Wd)                   # works after the first-layer plan
    layer.forward(x)
    assert order() == train_order                         # and plans for dx again
    layer.backward(g, need_input_grad=False)
    layer.eval()                                          # evaluation: the product's plan
    layer.forward(x)
    assert order() == W.matmul_plan(100, objective="time").order


def test_model_grows_with_every_size():
    """Monotone in each size: a larger step is never priced cheaper (the planner relies on the
    prices meaning time)."""
    base = dict(P=1000, K=32, Q=16, rows=16)
    for train in (False, True):
        t0 = _plan_model.step_seconds(**base, train=train)
        for key in base:
            bigger = dict(base, **{key: base[key] * 2})
            assert _plan_model.step_seconds(**bigger, train=train) > t0, key


def test_layer_trains_with_the_train_plan_and_evaluates_with_the_time_plan():
    layer = TTLinear(1024, 1024, 2, in_modes=(4, 8, 8, 4), out_modes=(4, 8, 8, 4),
                     dtype=np.float64, rng=0)
    W = layer.weight
    x = np.random.default_rng(2).standard_normal((100, 1024))
    g = np.random.default_rng(3).standard_normal((100, 1024))
    train_order = W.matmul_plan(100, objective="train").order
    time_order = W.matmul_plan(100, objective="time").order

    y_train = layer.forward(x)
    assert tuple((r.step.lo, r.step.hi) for r in layer._cache.record) == train_order
    dx_train = layer.backward(g)
    grads_train = [p.grad.copy() for p in layer.cores]
    layer.zero_grad()

    layer.eval()
    y_eval = layer.forward(x)
    assert tuple((r.step.lo, r.step.hi) for r in layer._cache.record) == time_order
    dx_eval = layer.backward(g)                       # a backward pass works after either
    grads_eval = [p.grad.copy() for p in layer.cores]
    assert layer.flops(100) == W.matmul_plan(100).flops + 100 * 1024

    ref = x @ W.full().T
    np.testing.assert_allclose(y_train - layer.bias.data, ref, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(y_eval, y_train, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx_eval, dx_train, rtol=1e-12, atol=1e-12)
    for a, b in zip(grads_eval, grads_train, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11 * np.abs(b).max())


def test_the_time_objectives_keep_their_lead_on_the_calibration_shapes():
    """On the shapes the model was fitted on, where measured times showed the FLOP plan
    clearly slower (docs/performance.md, "Plans chosen by time"), the model still prefers
    the measured-faster plan: a guard against a refit that loses what it was for."""
    cases = [   # rows, cols, rank, batch, objective, batch_last, measured-faster blocks
        ((4, 8, 8, 4), (4, 8, 8, 4), 2, 100, "time", False, ((2, 3), (0, 1))),
        ((4, 8, 8, 4), (4, 8, 8, 4), 2, 100, "train", False, ((2, 3), (0, 1))),
        ((4,) * 6, (2, 7, 8, 8, 7, 4), 4, 100, "train", False, ((3, 5), (2, 2), (0, 1))),
        ((8, 8, 8, 8), (8, 8, 8, 8), 4, 512, "time", True, ((0, 1), (2, 3))),
        ((4, 8, 4), (8, 8, 16), 4, 100, "train_no_input_grad", False, ((1, 2), (0, 0))),
    ]
    for rows, cols, rank, B, objective, batch_last, blocks in cases:
        r = (1,) + (rank,) * (len(rows) - 1) + (1,)
        plan = contraction.plan_matmat(rows, cols, r, B, 4, objective, batch_last)
        assert plan.order == blocks, (rows, objective, plan.describe())


def test_backend_decides_the_default_objective(xp):
    """NumPy products and layers choose plans by modelled CPU time; CuPy keeps the fewest
    FLOPs (a stack of products is one batched kernel there, which the model does not
    describe), for products and for training alike."""
    W = tt.random_matrix((4, 8, 8, 4), (4, 8, 8, 4), 2, rng=0, dtype=np.float32, xp=xp)
    on_cpu = xp is np
    assert W.matmul_plan(100).objective == ("time" if on_cpu else "flops")
    x = xp.asarray(np.random.default_rng(0).standard_normal((100, 1024)).astype(np.float32))
    _, ctx = gradients.matmul_forward(W, x)
    expected = W.matmul_plan(100, objective="train" if on_cpu else "flops").order
    assert tuple((r.step.lo, r.step.hi) for r in ctx.record) == expected


def _sweep_orders(d, width):
    """Every block sweep from the left or from the right with blocks of at most ``width``."""
    def compositions(n):
        if n == 0:
            yield []
            return
        for w in range(1, min(width, n) + 1):
            for rest in compositions(n - w):
                yield [w, *rest]
    for widths in compositions(d):
        lo, left = 0, []
        for w in widths:
            left.append((lo, lo + w - 1))
            lo += w
        yield left
        hi, right = d - 1, []
        for w in widths:
            right.append((hi - w + 1, hi))
            hi -= w
        yield right


@pytest.mark.parametrize("seed", range(12))
def test_the_sweep_search_is_exact_for_the_time_objectives(seed):
    """The search used beyond EXACT_MAX_CORES cores, forced on short trains: for every
    objective and batch layout it finds the least modelled time among all block sweeps
    (which checks the sizes it prices against those ``execute`` runs)."""
    rng = np.random.default_rng(seed)
    d = int(rng.integers(2, 6))
    rows = tuple(int(v) for v in rng.integers(1, 6, size=d))
    cols = tuple(int(v) for v in rng.integers(1, 6, size=d))
    ranks = (1, *(int(v) for v in rng.integers(1, 7, size=d - 1)), 1)
    batch, width = int(rng.integers(1, 40)), int(rng.integers(1, 4))
    for objective, batch_last in (("time", False), ("time", True), ("train", False),
                                  ("train_no_input_grad", False)):
        train, dx = objective != "time", objective != "train_no_input_grad"
        plan = contraction._plan_search(rows, cols, ranks, batch, 8, exact_max_cores=0,
                                        max_block=width, objective=objective,
                                        batch_last=batch_last)
        assert all(s.hi - s.lo < width for s in plan.steps)
        cost = contraction.modeled_seconds(plan, batch_last, train, dx)
        best = min(contraction.modeled_seconds(
            contraction.plan_from_blocks(rows, cols, ranks, batch, blocks, 8), batch_last, train,
            dx) for blocks in _sweep_orders(d, width))
        assert cost == pytest.approx(best, rel=1e-12), (objective, batch_last, plan.order)


@pytest.mark.parametrize("d", [1010, 1020, 1023])
def test_times_that_overflow_without_a_size_overflowing_fall_back_to_flops(d):
    """Each size fits a float but a product of them does not: the price would be inf or NaN
    (and NaN never loses a comparison), so the planner must fall back to exact FLOPs."""
    rows, cols, ranks = (2,) * d, (2,) * d, (1,) + (4,) * (d - 1) + (1,)
    plan = contraction.plan_matmat(rows, cols, ranks, 1, 4, "time")
    flops = contraction.plan_matmat(rows, cols, ranks, 1, 4, "flops")
    assert plan.objective == "flops"
    assert plan.order == flops.order
    with pytest.raises(OverflowError):
        _plan_model.step_seconds(2**1000, 4, 2, 2**30)
    price = _plan_model.step_pricer(4, True)
    with pytest.raises(OverflowError):
        price(2**1000, 4, 2, 2**30, 0, 0, 0)

"""Tensor completion (RCG and ALS): exact recovery, rank adaptation, duplicates, bad input."""

import warnings

import numpy as np
import pytest

import tensortrain as tt
from tensortrain import riemannian as R
from tensortrain.completion import CompletionInfo, complete
from tensortrain.errors import ConvergenceWarning, RankError, ShapeError, TTError, TTIndexError


def _host(a):
    return a.get() if type(a).__module__.split(".")[0] == "cupy" else np.asarray(a)


def _split(shape, n_train, n_test, seed):
    """Distinct random multi-indices: a training set and a disjoint test set."""
    rng = np.random.default_rng(seed)
    lin = rng.choice(int(np.prod(shape)), n_train + n_test, replace=False)
    idx = np.stack(np.unravel_index(lin, shape), axis=1)
    return idx[:n_train], idx[n_train:]


def _test_error(x, a, idx):
    want = _host(R.gather(a, idx))
    got = _host(R.gather(x, idx))
    return np.linalg.norm(got - want) / np.linalg.norm(want)


@pytest.mark.parametrize("method", ["rcg", "als"])
def test_exact_recovery_at_fixed_rank(xp, method):
    shape = (6, 6, 6, 6)
    a = tt.random_tensor(shape, ranks=2, rng=0, xp=xp)
    tr, te = _split(shape, 700, 300, seed=1)
    x, info = complete(tr, R.gather(a, tr), shape, ranks=2, method=method, rng=2,
                       adapt=False, validation=0.1, max_iter=400, tol=1e-11,
                       return_info=True)
    assert isinstance(info, CompletionInfo)
    assert info.converged and info.reason == "tolerance"
    assert info.method == method
    assert _test_error(x, a, te) < 1e-8
    assert x.ranks == (1, 2, 2, 2, 1)
    assert x.backend == a.backend
    n = info.iterations + 1
    assert len(info.train_error) == len(info.validation_error) == len(info.ranks) == n
    assert len(info.seconds) == n and info.n_train == 630 and info.n_validation == 70
    assert info.train_error[-1] <= 1e-11


def _decaying_rank2(shape, seed):
    """u1 x ... x ud + 0.2 v1 x ... x vd: an exact rank-2 tensor with a decaying spectrum."""
    rng = np.random.default_rng(seed)
    u = tt.TTTensor([rng.standard_normal((1, n, 1)) for n in shape])
    v = tt.TTTensor([rng.standard_normal((1, n, 1)) for n in shape])
    return u + 0.2 * v


def _sin_sum(shape):
    """sin(0.7 (i_1 + ... + i_d) + 0.3): TT-rank 2, smooth (no entry dominates)."""
    return tt.TTTensor.from_dense(np.sin(0.7 * np.indices(shape).sum(axis=0) + 0.3), eps=1e-13)


@pytest.mark.parametrize("method", ["rcg", "als"])
@pytest.mark.parametrize("seed", [2, 3])
def test_rank_adaptation_starts_at_one_and_stops_at_the_right_rank(method, seed):
    shape = (7, 7, 7, 7)
    a = _sin_sum(shape)
    assert a.ranks == (1, 2, 2, 2, 1)
    tr, te = _split(shape, 500, 300, seed=1)
    x, info = complete(tr, R.gather(a, tr), shape, ranks=4, method=method, rng=seed,
                       max_iter=400, tol=1e-11, return_info=True)
    assert info.stages[0][0] == (1, 1, 1, 1, 1)          # started at rank 1
    assert [s[0][1] for s in info.stages] == [1, 2]       # and increased once
    assert info.ranks[0] == (1, 1, 1, 1, 1)
    assert _test_error(x, a, te) < 1e-8
    assert x.ranks == (1, 2, 2, 2, 1)
    assert info.reason == "tolerance"


def test_rank_adaptation_keeps_the_best_when_the_validation_error_rises():
    # noisy data: larger ranks fit the noise, the held-out error stops falling
    shape = (6, 6, 6)
    a = _decaying_rank2(shape, 0)
    tr, _ = _split(shape, 150, 0, seed=1)
    rng = np.random.default_rng(2)
    vals = R.gather(a, tr) + 0.3 * rng.standard_normal(len(tr))
    x, info = complete(tr, vals, shape, ranks=6, rng=3, max_iter=300, return_info=True)
    assert info.reason in ("validation", "max rank")
    scores = [s[3] for s in info.stages]
    best = scores.index(min(scores))
    assert x.ranks == info.stages[best][0]


def test_duplicate_samples_are_repeated_observations():
    shape = (5, 6, 4)
    a = tt.random_tensor(shape, ranks=2, rng=0)
    tr, te = _split(shape, 90, 30, seed=1)
    vals = R.gather(a, tr)
    kw = {"ranks": 2, "rng": 2, "adapt": False, "validation": 0, "max_iter": 40, "tol": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        once = complete(tr, vals, shape, **kw)
        twice = complete(np.concatenate([tr, tr]), np.concatenate([vals, vals]), shape, **kw)
    # the loss only doubles: the same iterates
    assert _test_error(twice, once, te) < 1e-8
    # two observations of one entry with different values are fitted by their mean
    m = tt.random_tensor((5, 6), ranks=2, rng=3)
    full = np.stack(np.unravel_index(np.arange(30), (5, 6)), axis=1)
    noise = np.random.default_rng(4).standard_normal(30)
    mv = R.gather(m, full)
    with pytest.warns(ConvergenceWarning, match="stagnated"):   # the noise stays unfitted
        x = complete(np.concatenate([full, full]), np.concatenate([mv + noise, mv - noise]),
                     (5, 6), ranks=2, rng=5, adapt=False, validation=0, tol=1e-13, max_iter=300)
    assert np.abs(x.full() - m.full()).max() < 1e-8 * np.abs(m.full()).max()


def test_spectral_start_is_the_tt_svd_of_the_zero_filled_samples():
    from tensortrain.completion import _spectral_start  # noqa: PLC0415

    shape = (5, 6, 4, 5)
    a = tt.random_tensor(shape, ranks=2, rng=0)
    rng = np.random.default_rng(1)
    idx = np.stack([rng.integers(0, n, 300) for n in shape], axis=1)   # with duplicates
    vals = R.gather(a, idx)
    x = _spectral_start(idx, vals, shape, (2, 3, 2), np)
    dense = np.zeros(shape)
    np.add.at(dense, tuple(idx.T), vals * np.prod(shape) / 300)
    want = tt.TTTensor.from_dense(dense, max_rank=[2, 3, 2])
    assert x.ranks == want.ranks == (1, 2, 3, 2, 1)
    assert np.linalg.norm(x.full() - want.full()) < 1e-12 * np.linalg.norm(want.full())


def test_random_start_and_x0():
    shape = (6, 6, 6, 6)
    a = tt.random_tensor(shape, ranks=2, rng=0)
    tr, te = _split(shape, 700, 300, seed=1)
    x = complete(tr, R.gather(a, tr), shape, ranks=2, init="random", rng=2, adapt=False,
                 max_iter=400, tol=1e-11)
    assert _test_error(x, a, te) < 1e-8
    # a start next to the solution (ranks above the cap are rounded away)
    near = a + 1e-3 * tt.random_tensor(shape, ranks=1, rng=3)
    x, info = complete(tr, R.gather(a, tr), shape, ranks=2, x0=near, rng=2, max_iter=100,
                       tol=1e-11, return_info=True)
    assert info.ranks[0] == (1, 2, 2, 2, 1) and info.reason == "tolerance"
    assert _test_error(x, a, te) < 1e-8
    with pytest.raises(TTError, match="init must be 'spectral' or 'random'"):
        complete(tr, R.gather(a, tr), shape, 2, init="svd")
    with pytest.raises(ShapeError, match="x0 has shape"):
        complete(tr, R.gather(a, tr), shape, 2, x0=tt.random_tensor((6, 6, 6), 2, rng=0))
    with pytest.raises(TypeError, match="x0 must be a TTTensor"):
        complete(tr, R.gather(a, tr), shape, 2, x0=a.full())


def test_cap_warns_and_says_what_was_achieved():
    shape = (5, 5, 5)
    a = tt.random_tensor(shape, ranks=2, rng=0)
    tr, _ = _split(shape, 80, 0, seed=1)
    with pytest.warns(ConvergenceWarning, match=r"cap of 2 iterations.*relative training error"):
        _, info = complete(tr, R.gather(a, tr), shape, ranks=2, max_iter=2, rng=0,
                           return_info=True)
    assert info.reason == "cap" and info.iterations == 2 and not info.converged


def test_stagnation_at_fixed_rank_warns():
    # noise has no rank-1 structure: the training error stops falling far above tol
    rng = np.random.default_rng(0)
    tr, _ = _split((6, 6, 6), 150, 0, seed=1)
    with pytest.warns(ConvergenceWarning, match="stagnated after .* iterations at relative"):
        _, info = complete(tr, rng.standard_normal(150), (6, 6, 6), ranks=1, adapt=False,
                           rng=0, return_info=True)
    assert info.reason == "stagnation" and not info.converged
    assert info.train_error[-1] > 0.1


def test_progress_bar_and_float32():
    shape = (4, 5, 4)
    a = tt.random_tensor(shape, ranks=2, rng=0, dtype=np.float32)
    tr, _ = _split(shape, 60, 0, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        x = complete(tr, R.gather(a, tr), shape, ranks=2, max_iter=3, rng=0, progress=True)
    assert x.dtype == np.float32


def test_bad_input_is_refused_with_clear_errors():
    shape = (4, 5, 6)
    idx = np.array([[0, 1, 2], [3, 4, 5], [1, 1, 1]])
    vals = np.array([1.0, 2.0, 3.0])
    with pytest.raises(TTIndexError, match=r"indices\[:, 2\] holds 6, out of range for mode 2"):
        complete(np.array([[0, 0, 6]]), vals[:1], shape, 2)
    with pytest.raises(TTIndexError, match="holds -1"):
        complete(np.array([[0, -1, 0]]), vals[:1], shape, 2)
    with pytest.raises(ShapeError, match=r"shape \(n_samples, 3\).*got shape \(3, 2\)"):
        complete(idx[:, :2], vals, shape, 2)
    with pytest.raises(ShapeError, match=r"one value per row of indices \(3\), got shape \(2,\)"):
        complete(idx, vals[:2], shape, 2)
    with pytest.raises(RankError, match="bond 1 asks for rank 5, but a tensor of shape"):
        complete(idx, vals, shape, 5)
    with pytest.raises(RankError, match="bond 2 asks for rank 7"):
        complete(idx, vals, shape, [2, 7])
    with pytest.raises(RankError, match="max_rank"):
        complete(idx, vals, shape, [2, 2, 2])
    with pytest.raises(TTError, match="method must be one of"):
        complete(idx, vals, shape, 2, method="sgd")
    with pytest.raises(TTError, match=r"validation must be a fraction in \[0, 1\)"):
        complete(idx, vals, shape, 2, validation=1.0)
    with pytest.raises(TTError, match="leaves no training sample"):
        complete(idx[:1], vals[:1], shape, 1, validation=0.9)
    with pytest.raises(TypeError, match="validation"):
        complete(idx, vals, shape, 2, validation="10%")
    with pytest.raises(TypeError, match="integer dtype"):
        complete(idx.astype(float), vals, shape, 2)
    with pytest.raises(TypeError, match="floating-point"):
        complete(idx, np.array([1, 2, 3]), shape, 2)
    with pytest.raises(TTError, match="NaN or Inf"):
        complete(idx, np.array([1.0, np.inf, 2.0]), shape, 2)
    with pytest.raises(TTError, match="max_iter must be >= 1, got 0"):
        complete(idx, vals, shape, 2, max_iter=0)
    with pytest.raises(TypeError, match="adapt"):
        complete(idx, vals, shape, 2, adapt=1)
    with pytest.raises(TypeError, match="patience"):
        complete(idx, vals, shape, 2, patience=-1)
    with pytest.raises(TypeError, match="rng"):
        complete(idx, vals, shape, 2, rng=1.5)

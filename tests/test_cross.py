"""TT cross: accuracy against dense oracles, evaluation counts, stopping rules, bad input."""

import importlib
import warnings

import numpy as np
import pytest
from scipy.integrate import quad

import tensortrain as tt
from tensortrain.errors import ConvergenceWarning, ModeError, ShapeError, TTError

# tt.cross is the function; the module is reached through importlib (as with opt_einsum.contract)
cr = importlib.import_module("tensortrain.cross")


def _hilbert(i):
    return 1.0 / (1.0 + i.sum(axis=1))


def _dense(f, modes):
    idx = np.indices(modes).reshape(len(modes), -1).T
    return f(idx).reshape(modes)


def _relerr(x, y):
    return np.linalg.norm(np.asarray(x) - y) / np.linalg.norm(y)


def test_cross_reaches_eps_on_a_smooth_tensor(xp):
    modes = (6, 7, 8, 5)
    x, info = cr.cross(_hilbert, modes, eps=1e-9, rng=0, return_info=True, xp=xp)
    assert x.backend == xp.__name__
    a = _dense(_hilbert, modes)
    full = x.to("numpy").full()
    assert _relerr(full, a) <= 1e-8
    assert info.converged and info.reason == "converged"
    assert info.validation_error <= 1e-9
    # far fewer evaluations than entries, and counts consistent with the cache
    assert info.evaluations == info.unique_evaluations < a.size
    assert info.ranks[-1] == x.ranks
    assert len(info.validation_errors) == len(info.ranks) == info.sweeps + 1 + info.refined


def test_exact_low_rank_tensor_is_recovered():
    rng = np.random.default_rng(3)
    y = tt.random_tensor((5, 6, 4, 7, 3), ranks=3, rng=rng)
    full = y.full()
    f = lambda idx: full[tuple(idx.T)]  # noqa: E731
    x, info = cr.cross(f, y.shape, eps=1e-12, rng=1, return_info=True)
    assert _relerr(x.full(), full) < 1e-10
    assert max(x.ranks) <= 4
    assert info.converged


def test_same_seed_same_result_and_rng_matters():
    a = cr.cross(_hilbert, (9, 9, 9), eps=1e-8, rng=5)
    b = cr.cross(_hilbert, (9, 9, 9), eps=1e-8, rng=np.random.default_rng(5))
    assert all(np.array_equal(p, q) for p, q in zip(a.cores, b.cores, strict=True))


def test_cache_counts_each_entry_once():
    calls = []

    def f(idx):
        calls.append(idx.copy())
        return _hilbert(idx)

    _, info = cr.cross(f, (8, 8, 8, 8), eps=1e-8, rng=0, return_info=True)
    seen = np.concatenate(calls)
    assert len(np.unique(seen, axis=0)) == len(seen) == info.evaluations
    _, info2 = cr.cross(_hilbert, (8, 8, 8, 8), eps=1e-8, rng=0, cache=False,
                        return_info=True)
    assert info2.evaluations > info2.unique_evaluations
    assert info2.unique_evaluations == info.unique_evaluations


def test_max_rank_caps_every_bond():
    with pytest.warns(ConvergenceWarning, match="max_rank"):
        x, info = cr.cross(_hilbert, (10,) * 4, eps=1e-14, max_rank=[2, 3, 2], rng=0,
                           return_info=True)
    assert x.ranks == (1, 2, 3, 2, 1)
    assert info.reason == "max_rank" and not info.converged


def test_budget_too_small_returns_what_it_has_with_a_warning():
    with pytest.warns(ConvergenceWarning, match="budget of max_evals=1500") as rec:
        x, info = cr.cross(_hilbert, (16,) * 5, eps=1e-12, max_evals=1500, rng=0,
                           return_info=True)
    assert "validation error" in str(rec[0].message)
    assert info.reason == "max_evals" and not info.converged
    assert info.evaluations <= 1500
    # the achieved error is reported, and it is the error of what was returned
    a = _dense(_hilbert, (16,) * 5)
    assert info.validation_error > 1e-12
    assert _relerr(x.full(), a) < 10 * info.validation_error + 1e-3


def test_budget_below_the_start_raises():
    with pytest.raises(TTError, match="max_evals=50 is too small"):
        cr.cross(_hilbert, (16,) * 5, max_evals=50, rng=0)


def test_sweep_cap_warns():
    with pytest.warns(ConvergenceWarning, match="nswp=1"):
        _, info = cr.cross(_hilbert, (12,) * 6, eps=1e-13, nswp=1, rng=0, kick=1,
                           return_info=True)
    assert info.reason == "nswp" and info.sweeps == 2


def test_validation_catches_what_the_change_misses():
    # a spike the first candidates do not see: the validation error keeps the loop going
    modes = (8, 8, 8)

    def f(idx):
        return _hilbert(idx) + 1.0 * np.all(idx == 5, axis=1)

    x = cr.cross(f, modes, eps=1e-10, rng=0, validation=512)
    assert _relerr(x.full(), _dense(f, modes)) < 1e-8


def test_d1_and_zero_tensor():
    x = cr.cross(lambda i: np.cos(i[:, 0]), (7,), rng=0)
    assert np.allclose(x.full(), np.cos(np.arange(7)))
    with pytest.warns(ConvergenceWarning, match="zero"):
        z = cr.cross(lambda i: np.zeros(len(i)), (4, 5, 6), rng=0)
    assert z.norm() == 0 and z.shape == (4, 5, 6)


def test_complex_values():
    f = lambda i: np.exp(1j * 0.3 * i.sum(axis=1))  # noqa: E731
    x = cr.cross(f, (6, 6, 6), rng=0, dtype=np.complex128)
    assert x.dtype == np.complex128
    assert _relerr(x.full(), _dense(f, (6, 6, 6))) < 1e-10


def test_large_d_does_not_overflow():
    d = 1000
    # product of (1.5 + cos) factors: entries span far beyond float64 at d = 1000 in the
    # middle cores, so only the scaled evaluations stay finite.  Use a sum instead so that
    # values themselves are representable: rank 2.
    f = lambda i: np.sum(np.cos(0.1 * i), axis=1)  # noqa: E731
    x, info = cr.cross(f, (3,) * d, eps=1e-10, rng=0, validation=100, return_info=True)
    assert info.converged and max(x.ranks) == 2
    pts = np.random.default_rng(0).integers(0, 3, size=(50, d))
    assert np.allclose(cr._tt_entries(list(x.cores), pts), f(pts), rtol=1e-10)


def test_progress_bar_runs(capsys):
    cr.cross(_hilbert, (5, 5, 5), rng=0, progress=True)
    assert "cross" in capsys.readouterr().err


# ---- bad input ----------------------------------------------------------------------------
def test_modes_with_zero():
    with pytest.raises(ModeError, match=r"modes\[1\] must be a positive integer.*size 0"):
        cr.cross(_hilbert, (3, 0, 3))


def test_wrong_arity():
    with pytest.raises(TypeError, match=r"must take 1 positional argument.*takes 3"):
        cr.cross(lambda i, j, k: i, (3, 3, 3))
    with pytest.raises(TypeError, match="must take 2 positional"):
        cr.matrix_from_function(lambda i: i, (10, 10))
    with pytest.raises(TypeError, match="callable"):
        cr.cross(3.0, (3, 3))


def test_non_finite_values_name_the_indices():
    def f(idx):
        v = _hilbert(idx)
        v[np.all(idx == 1, axis=1)] = np.nan
        return v

    with pytest.raises(TTError, match=r"non-finite.*\[\[1, 1, 1\]\]"):
        cr.cross(f, (3, 3, 3), rng=0, validation=0, x0=np.array([[1, 1, 1]]))


def test_wrong_count_and_shape():
    with pytest.raises(ShapeError, match=r"must return \d+ values"):
        cr.cross(lambda i: _hilbert(i)[:-1], (4, 4), rng=0)
    with pytest.raises(ShapeError, match=r"got shape \(\d+, 2\)"):
        cr.cross(lambda i: np.ones((len(i), 2)), (4, 4), rng=0)
    with pytest.raises(TypeError, match="dtype"):
        cr.cross(lambda i: np.array(["a"] * len(i)), (4, 4), rng=0)
    with pytest.raises(TypeError, match="complex"):
        cr.cross(lambda i: 1j * np.ones(len(i)), (4, 4), rng=0)


def test_bad_options():
    with pytest.raises(TTError, match="eps must be a number >= 0"):
        cr.cross(_hilbert, (3, 3), eps=-1e-3)
    with pytest.raises(TTError, match="max_evals must be >= 1"):
        cr.cross(_hilbert, (3, 3), max_evals=0)
    with pytest.raises(TypeError, match="nswp must be an int"):
        cr.cross(_hilbert, (3, 3), nswp=1.5)
    with pytest.raises(TTError, match="validation must be >= 0"):
        cr.cross(_hilbert, (3, 3), validation=-1)
    with pytest.raises(TTError, match="kick must be an int >= 1"):
        cr.cross(_hilbert, (3, 3), kick=0)
    with pytest.raises(ShapeError, match="x0 must be integer multi-indices"):
        cr.cross(_hilbert, (3, 3), x0=np.zeros((1, 3), dtype=int))
    with pytest.raises(TTError, match="outside the modes"):
        cr.cross(_hilbert, (3, 3), x0=np.array([[0, 3]]))
    with pytest.raises(TypeError, match="dtype"):
        cr.cross(_hilbert, (3, 3), dtype=np.int64)


# ---- front ends -----------------------------------------------------------------------------
def test_tensor_from_function_on_grids():
    grids = [np.linspace(0, 1, 9), np.linspace(-1, 1, 7), np.cos(np.linspace(0, np.pi, 8))]
    f = lambda X: np.sin(X[:, 0] + 2 * X[:, 1] * X[:, 2])  # noqa: E731
    x = cr.tensor_from_function(f, grids, rng=0)
    G = np.meshgrid(*grids, indexing="ij")
    want = np.sin(G[0] + 2 * G[1] * G[2])
    assert _relerr(x.full(), want) < 1e-9
    # integer modes: indices, as in cross
    y = cr.tensor_from_function(_hilbert, (4, 5), rng=0)
    assert y.shape == (4, 5)
    with pytest.raises(ShapeError, match=r"grids\[1\] must be a non-empty 1-D array"):
        cr.tensor_from_function(f, [np.ones(3), np.ones((2, 2))])


def test_matrix_from_function_pads_without_evaluating_padding():
    M, N = 997, 120
    asked = []

    def f(i, j):
        asked.append((i.max(), j.max()))
        return 1.0 / (1.0 + i + 2.0 * j)

    W = cr.matrix_from_function(f, (M, N), rng=0, eps=1e-10)
    ref = tt.TTMatrix.from_dense(np.zeros((M, N)))
    assert (W.shape, W.row_modes, W.col_modes) == ((M, N), ref.row_modes, ref.col_modes)
    assert W.is_padded
    assert max(a for a, _ in asked) < M and max(b for _, b in asked) < N
    i, j = np.ogrid[:M, :N]
    assert _relerr(W.full(), 1.0 / (1.0 + i + 2.0 * j)) < 1e-9
    W2 = cr.matrix_from_function(f, (M, N), row_modes=(10, 100), col_modes=(10, 12), rng=0)
    assert W2.row_modes == (10, 100)


def test_tensor_from_array_reads_only_samples(tmp_path):
    a = _dense(_hilbert, (12, 13, 14, 15))
    mm = np.lib.format.open_memmap(tmp_path / "a.npy", mode="w+", dtype=np.float64,
                                   shape=a.shape)
    mm[...] = a
    mm.flush()
    ro = np.load(tmp_path / "a.npy", mmap_mode="r")
    x, info = cr.tensor_from_array(ro, eps=1e-10, rng=0, validation=300, return_info=True)
    assert _relerr(x.full(), a) < 1e-9
    assert info.evaluations < a.size / 4


def test_matrix_from_array_sparse_never_densified():
    sp = pytest.importorskip("scipy.sparse")

    class NoDense(sp.csr_matrix):
        def toarray(self, *a, **k):
            raise AssertionError("densified")

        todense = toarray

    # a sparse matrix whose stored entries sample a smooth kernel (1 in 3 rows kept): cross
    # reads them one by one through A[i, j], never through a dense copy
    n = 900
    i, j = np.ogrid[:n, :n]
    K = np.exp(-np.abs(i - j) / 300.0) * (i % 3 == 0)
    A = sp.csr_matrix(K)
    W, info = cr.matrix_from_array(NoDense(A), rng=0, eps=1e-12, return_info=True)
    rows = np.random.default_rng(0).integers(0, n, 5)
    v = np.random.default_rng(1).standard_normal(n)
    assert np.allclose((W @ v)[rows], (A @ v)[rows], atol=1e-8)
    assert info.evaluations < n * n / 10


def test_matrix_from_array_dense_like():
    A = np.fromfunction(lambda i, j: np.exp(-((i - j) / 50.0) ** 2), (300, 200))
    W = cr.matrix_from_array(A, rng=0, eps=1e-10)
    assert _relerr(W.full(), A) < 1e-9


def test_apply_elementwise_functions():
    modes = (5, 6, 7)
    base = _dense(lambda i: 1.0 + i.sum(axis=1) / 3.0, modes)
    x = tt.TTTensor.from_dense(base)
    y = tt.TTTensor.from_dense(np.cos(base))
    ex = cr.apply(np.exp, x, rng=0)
    assert _relerr(ex.full(), np.exp(base)) < 1e-9
    inv = cr.apply(lambda a: 1 / a, x, rng=0)
    assert _relerr(inv.full(), 1 / base) < 1e-9
    hyp = cr.apply(lambda a, b: np.sqrt(a ** 2 + b ** 2), x, y, rng=0)
    assert _relerr(hyp.full(), np.sqrt(base ** 2 + np.cos(base) ** 2)) < 1e-9
    W = tt.TTMatrix.from_dense(np.add.outer(np.arange(1.0, 11), np.arange(7.0)))
    iw = cr.apply(lambda a: 1 / a, W, rng=0)
    assert iw.shape == W.shape and _relerr(iw.full(), 1 / W.full()) < 1e-9
    with pytest.raises(ShapeError, match="equal shapes"):
        cr.apply(np.add, x, tt.TTTensor.from_dense(np.ones((5, 6, 8))))
    with pytest.raises(TypeError, match="must take 2 positional"):
        cr.apply(lambda a: a, x, y)


def test_apply_does_not_see_later_mutation_of_operands():
    base = 1.0 + np.arange(24.0).reshape(2, 3, 4)
    core = [c.copy() for c in tt.TTTensor.from_dense(base).cores]
    x = tt.TTTensor(core)
    r = cr.apply(np.log, x, rng=0)
    core[0][...] = 0.0  # the caller mutates its arrays afterwards
    assert _relerr(r.full(), np.log(base)) < 1e-9


def test_quadrature_separable_and_genz_corner_peak():
    val = cr.quadrature(lambda X: np.exp(X.sum(axis=1)), [(0, 1)] * 4, rng=0)
    assert abs(val - (np.e - 1) ** 4) < 1e-12 * (np.e - 1) ** 4
    # Genz oscillatory, d = 6: closed form Re(exp(2 pi i u) prod (exp(i a) - 1) / (i a))
    a = np.linspace(0.5, 1.5, 6)
    u = 0.3
    exact = np.real(np.exp(2j * np.pi * u) * np.prod((np.exp(1j * a) - 1) / (1j * a)))
    val = cr.quadrature(lambda X: np.cos(2 * np.pi * u + X @ a), [(0, 1)] * 6, n=12, rng=0)
    assert abs(val - exact) <= 1e-10 * abs(exact)
    with pytest.raises(TTError, match=r"domain\[1\] must be a finite interval"):
        cr.quadrature(lambda X: X[:, 0], [(0, 1), (1, 1)])
    with pytest.raises(TTError, match="unknown rule"):
        cr.quadrature(lambda X: X[:, 0], [(0, 1)], rule="simpson")


def test_quadrature_rules_integrate_polynomials():
    for rule, n in (("gauss", 4), ("clenshaw-curtis", 9), ("midpoint", 400)):
        val = cr.quadrature(lambda X: X[:, 0] ** 3 * X[:, 1], [(0, 2), (1, 3)], n=n,
                            rule=rule, rng=0)
        tol = 1e-12 if rule != "midpoint" else 1e-4
        assert abs(val - 4 * 4) < tol * 16


def test_no_warning_when_converged():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cr.cross(_hilbert, (6, 6, 6), eps=1e-8, rng=0)


def test_genz_corner_peak_with_a_wide_range_of_values():
    # (1 + sum_k x_k / k)^-(d+1): values from 1 down to 1e-13 on [0, 1]^d at d = 12; the
    # integral against its one-dimensional representation
    d = 12
    a = 1.0 / np.arange(1, d + 1)
    g = lambda s: np.exp(d * np.log(s) - s - np.sum(np.log(np.arange(1, d + 1)))) * np.prod(  # noqa: E731
        -np.expm1(-a * s) / (a * s))
    exact = quad(g, 0, np.inf, limit=200, epsabs=0, epsrel=1e-13)[0]
    val, info = cr.quadrature(lambda X: (1.0 + X @ a) ** (-(d + 1)), [(0, 1)] * d, n=10,
                              eps=1e-11, rng=0, return_info=True)
    assert abs(val - exact) <= 1e-10 * exact
    assert info.converged


def test_start_moves_to_large_values_so_cores_stay_bounded():
    # (1 + sum_k x_k / k)^-51 on a grid of [0, 1]^50 spans 1 .. 1e-38.  Started at the largest
    # *validation* sample (about 1e-20) the interpolation cores would divide by it and the
    # error would explode through 50 cores (1e23 measured without the line search); after
    # the line search the error stays bounded and the cores moderate
    d = 50
    a = 1.0 / np.arange(1, d + 1)
    with pytest.warns(ConvergenceWarning, match="nswp=2"):
        x, info = cr.tensor_from_function(lambda X: (1.0 + X @ a) ** (-(d + 1)),
                                          [np.linspace(0, 1, 6)] * d, eps=1e-10, rng=0,
                                          nswp=2, return_info=True)
    assert max(info.validation_errors) <= 1.0
    assert max(float(np.abs(c).max()) for c in x.cores) < 1e4


def test_apply_on_a_padded_matrix_never_sees_padding():
    M, N = 7, 11                                   # primes: padded modes
    A = 1.0 + np.add.outer(np.arange(M), np.arange(N)) / 4.0
    W = tt.TTMatrix.from_dense(A, row_modes=(2, 4), col_modes=(3, 4))
    assert W.is_padded
    seen = []

    def inv(a):
        seen.append(a.copy())
        return 1.0 / a                             # padded entries of W are 0: 1/0 would be inf

    R = cr.apply(inv, W, rng=0)
    assert R.shape == (M, N) and R.row_modes == (2, 4)
    assert _relerr(R.full(), 1.0 / A) < 1e-10
    assert np.all(np.concatenate(seen) >= 1.0)     # only logical entries reached fn


def test_executor_and_chunks_are_checked():
    with pytest.raises(TTError, match="chunks must be an int >= 1"):
        cr.cross(_hilbert, (3, 3), chunks=0)
    with pytest.raises(TypeError, match="executor must have a submit"):
        cr.cross(_hilbert, (3, 3), executor=object())


def test_warnings_raised_by_f_reach_the_caller():
    def f(idx):
        warnings.warn("from f", UserWarning, stacklevel=2)
        return _hilbert(idx)

    with pytest.warns(UserWarning, match="from f"):
        cr.cross(f, (4, 4, 4), rng=0)


def test_padded_hilbert_matrix_to_high_accuracy():
    # a case whose late pivots sit at the round-off of the largest entry: they must not make
    # the pivot matrices singular (they did before the noise floor on the residual)
    W, info = cr.matrix_from_function(lambda i, j: 1.0 / (1.0 + i + j), (1000, 997), rng=0,
                                      return_info=True)
    i, j = np.ogrid[:1000, :997]
    assert info.converged and W.is_padded
    assert _relerr(W.full(), 1.0 / (1.0 + i + j)) < 1e-10


def test_without_validation_the_change_alone_stops():
    x, info = cr.cross(_hilbert, (7, 8, 9), eps=1e-9, rng=0, validation=0, return_info=True)
    assert info.converged and all(np.isnan(v) for v in info.validation_errors)
    assert _relerr(x.full(), _dense(_hilbert, (7, 8, 9))) < 1e-7


def test_warnings_point_at_the_callers_line():
    with pytest.warns(ConvergenceWarning) as rec:
        cr.tensor_from_function(lambda X: np.cos(X.sum(axis=1) * 40), [np.linspace(0, 1, 30)] * 4,
                                eps=1e-14, nswp=1, rng=0)
    assert rec[0].filename == __file__


# ---- maxvol refinement (refine=) and the corrected interpolation cores -------------------------
_ROSEN_N = np.array([20, 18, 16, 14, 12])


def _rosen(i):
    x = -2.048 + 4.096 * i / (_ROSEN_N - 1)
    return np.sum(100 * (x[:, 1:] - x[:, :-1] ** 2) ** 2 + (x[:, :-1] - 1) ** 2, axis=1)


@pytest.mark.parametrize("seed", range(5))
def test_rosenbrock_reaches_round_off_like_teneva(seed):
    # teneva's demo: test error 6.4e-16 with 3,614 evaluations; the TT-SVD of the full tensor
    # at the same ranks gives 1.6e-15 here.  Greedy pivots alone gave up to 3.2e-14.
    modes = tuple(int(v) for v in _ROSEN_N)
    full = _dense(_rosen, modes)
    x, info = cr.cross(_rosen, modes, eps=1e-10, rng=seed, kick=2, validation=300,
                       return_info=True)
    assert info.converged and info.refined  # auto: the converged error is at round-off
    assert x.ranks == (1, 3, 3, 3, 3, 1)
    assert info.evaluations <= 3614
    assert _relerr(x.full(), full) <= 1e-15
    assert len(info.validation_errors) == len(info.ranks) == info.sweeps + 2
    assert info.ranks[-1] == x.ranks


def test_refine_off_keeps_the_greedy_result_and_costs_nothing_more():
    modes = tuple(int(v) for v in _ROSEN_N)
    x0, i0 = cr.cross(_rosen, modes, eps=1e-10, rng=1, kick=2, validation=300,
                      refine=False, return_info=True)
    x1, i1 = cr.cross(_rosen, modes, eps=1e-10, rng=1, kick=2, validation=300,
                      refine=True, return_info=True)
    assert not i0.refined and i1.refined
    assert i0.evaluations < i1.evaluations
    # the refined run is the greedy run plus the refinement: same greedy history
    assert i1.validation_errors[:-1] == i0.validation_errors
    assert i1.evaluations_per_sweep[:-1] == i0.evaluations_per_sweep
    full = _dense(_rosen, modes)
    assert _relerr(x1.full(), full) < _relerr(x0.full(), full)


def test_refine_auto_skips_runs_limited_by_rank():
    # eps = 1e-8: the error is set by the ranks, refining would only spend evaluations
    _, info = cr.cross(_hilbert, (8, 9, 10, 7), eps=1e-8, rng=0, return_info=True)
    assert info.converged and not info.refined
    _, forced = cr.cross(_hilbert, (8, 9, 10, 7), eps=1e-8, rng=0, refine=True,
                         return_info=True)
    assert forced.evaluations >= info.evaluations
    # no validation set: auto cannot tell, so it does not refine
    _, nov = cr.cross(_rosen, tuple(int(v) for v in _ROSEN_N), eps=1e-10, rng=0,
                      validation=0, return_info=True)
    assert not nov.refined


def test_refine_keeps_index_sets_nested_and_interpolating():
    modes = (7, 6, 8, 5, 6)
    rng = np.random.default_rng(11)
    y = tt.random_tensor(modes, ranks=3, rng=rng)
    full = y.full()
    f = lambda idx: full[tuple(idx.T)]  # noqa: E731
    ev = cr_core()._Evaluator(f, len(modes), np.float64, np)
    cx = cr_core()._Cross(ev, modes, 1e-12, None, np.random.default_rng(0), 3, np.float64)
    cx.start(np.unravel_index(int(np.argmax(np.abs(full))), modes))
    cx.scale = float(np.abs(full).max())
    for direction in ("right", "left", "right"):
        for k in range(len(modes) - 1) if direction == "right" else range(len(modes) - 2, -1, -1):
            cx.bond(k, direction)
    before = cx.ranks()
    for direction in ("left", "right"):
        cx.refine(direction)
    assert cx.ranks() == before
    d = len(modes)
    for k in range(d - 1):
        left = {tuple(r) for r in cx._rows(k, np.arange(len(cx.I[k]) * modes[k]))}
        assert {tuple(r) for r in cx.I[k + 1]} <= left
        assert np.array_equal(cx._rows(k, cx.row_pivots(k)), cx.I[k + 1])
        right = {tuple(c) for c in cx._cols(k, np.arange(modes[k + 1] * len(cx.J[k + 2])))}
        assert {tuple(c) for c in cx.J[k + 1]} <= right
        assert np.array_equal(cx._cols(k, cx.col_pivots(k)), cx.J[k + 1])
    for side in ("left", "right"):
        assert _relerr(tt.TTTensor(cx.cores(side)).full(), full) < 1e-12


def test_maxvol_is_a_local_maximum_close_to_the_global_one():
    import itertools  # noqa: PLC0415

    rng = np.random.default_rng(2)
    for trial in range(5):
        a = rng.standard_normal((12, 3)) * np.array([1.0, 1e-3, 1e3])
        q = np.linalg.qr(a)[0]
        piv = cr_core()._maxvol(q, None if trial % 2 else [0, 1, 2])
        assert len(set(piv.tolist())) == 3
        b = q @ np.linalg.inv(q[piv])
        assert np.abs(b).max() <= 1.01 + 1e-12
        best = max(abs(np.linalg.det(q[list(s)])) for s in itertools.combinations(range(12), 3))
        # a dominant submatrix has at least 1 / r^(r/2) of the largest volume
        assert abs(np.linalg.det(q[piv])) >= best / (1.01 ** 3 * 3 ** 1.5)


def cr_core():
    return importlib.import_module("tensortrain._cross_core")


def test_interpolation_cores_reproduce_the_fibres_to_round_off():
    rng = np.random.default_rng(4)
    u = np.linalg.qr(rng.standard_normal((60, 4)))[0]
    c = (u * np.array([1e4, 1e2, 1.0, 1e-2])) @ np.linalg.qr(rng.standard_normal((4, 4)))[0]
    piv = cr_core()._maxvol(np.linalg.qr(c)[0])
    b = cr_core()._interp_matrix(c, piv)
    assert np.allclose(b[piv], np.eye(4), rtol=0, atol=1e-13)
    # B C[piv] = C to the round-off of C (the QR form alone leaves about 10x more)
    assert np.linalg.norm(b @ c[piv] - c) <= 4 * np.finfo(float).eps * np.linalg.norm(c)


def test_refine_skipped_when_the_budget_runs_out():
    modes = tuple(int(v) for v in _ROSEN_N)
    _, plain = cr.cross(_rosen, modes, eps=1e-10, rng=0, kick=2, validation=300,
                        refine=False, return_info=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        _, info = cr.cross(_rosen, modes, eps=1e-10, rng=0, kick=2, validation=300,
                           max_evals=plain.evaluations + 20, return_info=True)
    assert info.converged and not info.refined
    assert info.evaluations <= plain.evaluations + 20
    assert info.validation_errors == plain.validation_errors


def test_refine_identical_with_an_executor_and_checked():
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    modes = tuple(int(v) for v in _ROSEN_N)
    a = cr.cross(_rosen, modes, eps=1e-10, rng=3, kick=2, validation=300)
    with ThreadPoolExecutor(2) as ex:
        b = cr.cross(_rosen, modes, eps=1e-10, rng=3, kick=2, validation=300, executor=ex,
                     chunks=3)
    assert all(np.array_equal(p, q) for p, q in zip(a.cores, b.cores, strict=True))
    with pytest.raises(TypeError, match="refine must be None, True or False"):
        cr.cross(_hilbert, (3, 3), refine="yes")


def test_refine_at_large_d():
    d = 300
    f = lambda i: np.sin(1.0 + i).sum(axis=1) * 1e-150  # noqa: E731  rank 2, tiny values
    x, info = cr.cross(f, (3,) * d, eps=1e-12, rng=0, return_info=True)
    assert info.converged and info.refined
    assert max(x.ranks) <= 3
    pts = np.random.default_rng(5).integers(0, 3, (500, d))
    got = cr._tt_entries([np.asarray(c) for c in x.cores], pts)
    assert np.all(np.isfinite(got))
    assert _relerr(got, f(pts)) < 1e-13

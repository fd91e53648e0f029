"""Mode factorization at extreme sizes: huge primes and semiprimes, many modes, bad max_pad.

These sizes used to hang (trial division up to sqrt(n), a padding scan over 10% of n) or
overflow the stack (one recursion level per mode).  The tests run them and check the
result; they assert no times.
"""

from __future__ import annotations

import heapq
import math
import random
from fractions import Fraction

import numpy as np
import pytest

import tensortrain as tt
from tensortrain import shapes
from tensortrain.nn import TTLinear

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError:  # the GPU image may lack it; the CPU suite installs it
    given = None

P1, P2 = 999_999_937, 1_000_000_007          # the largest prime below 1e9 and the first above
BIG_SEMIPRIME = P1 * P2


# ---- independent helpers ---------------------------------------------------------------------
def _ceil_root(n, d):
    """Smallest integer r with r ** d >= n, by bisection."""
    lo, hi = 1, 1 << (n.bit_length() // d + 1)      # lo ** d <= n <= hi ** d
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if mid ** d >= n:
            hi = mid
        else:
            lo = mid
    return lo if lo ** d >= n else hi


def _trial_factor(n):
    out, p = [], 2
    while p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    if n > 1:
        out.append(n)
    return out


def _greedy_sum(n, d):
    heap = [1] * d
    for p in sorted(_trial_factor(n), reverse=True):
        heapq.heapreplace(heap, heap[0] * p)
    return sum(heap)


def _brute_exact(n, d):
    """Non-decreasing d-tuple of product n minimising (sum, max, tuple), by enumeration."""
    small = [k for k in range(1, math.isqrt(n) + 1) if n % k == 0]
    divisors = sorted(set(small + [n // k for k in small]))
    best = None

    def rec(rem, k, lo, parts):
        nonlocal best
        if k == 1:
            if rem >= lo:
                cand = (*parts, rem)
                key = (sum(cand), cand[-1], cand)
                if best is None or key < best:
                    best = key
            return
        for f in divisors:
            if f < lo or f ** k > rem:
                continue
            if rem % f == 0:
                rec(rem // f, k - 1, f, (*parts, f))

    rec(n, d, 1, ())
    return best[2]


def _sieve(limit):
    flags = bytearray([1]) * limit
    flags[0:2] = b"\x00\x00"
    for p in range(2, math.isqrt(limit - 1) + 1):
        if flags[p]:
            flags[p * p::p] = bytearray(len(range(p * p, limit, p)))
    return flags


def _check_padded(n, modes, d, max_pad=0.1):
    assert len(modes) == d
    assert all(isinstance(m, int) and m >= 1 for m in modes)
    size = math.prod(modes)
    assert n <= size <= n + math.floor(Fraction(max_pad) * n)
    assert max(modes) <= 2 * _ceil_root(n, d)
    return size


# ---- sizes that used to hang -----------------------------------------------------------------
@pytest.mark.parametrize(
    "n",
    [10**10 + 19, 2**61 - 1, 2**89 - 1, 10**30 + 57, BIG_SEMIPRIME, 2**127 - 1],
    ids=["1e10+19", "M61", "M89", "1e30+57", "semiprime-1e9x1e9", "M127"],
)
def test_lopsided_large_sizes_are_padded_and_balanced(n):
    modes = tt.balanced_modes(n)
    d = shapes.default_ndim(n)
    size = _check_padded(n, modes, d)
    assert size > n                              # prime or semiprime: padding was needed
    # The organ pipe: non-decreasing up to the middle, non-increasing after it.
    mid = modes.index(max(modes))
    assert list(modes[:mid + 1]) == sorted(modes[:mid + 1])
    assert list(modes[mid:]) == sorted(modes[mid:], reverse=True)


@pytest.mark.parametrize("d", [2, 3, 5, 8])
def test_large_prime_with_few_modes(d):
    n = 2**61 - 1
    _check_padded(n, tt.balanced_modes(n, d), d)
    assert tt.factorize(n, d).count(1) == d - 1 and max(tt.factorize(n, d)) == n


def test_large_prime_max_pad_zero_keeps_exact():
    n = 2**89 - 1
    assert tt.balanced_modes(n, 3, max_pad=0) == (1, n, 1)


@pytest.mark.parametrize("max_pad", [0.01, 0.5, 2])
def test_large_prime_respects_max_pad(max_pad):
    n = 10**30 + 57
    _check_padded(n, tt.balanced_modes(n, 10, max_pad=max_pad), 10, max_pad)


def test_huge_size_beyond_float_range():
    n = 2**1279 - 1                               # a Mersenne prime, about 1e385
    d = 20
    _check_padded(n, tt.balanced_modes(n, d), d)
    assert tt.balanced_modes(n, 1) == (n,)


def test_semiprime_is_split_exactly():
    assert shapes._factor(BIG_SEMIPRIME) == (P1, P2)
    assert tt.factorize(BIG_SEMIPRIME, 2) == (P1, P2)
    assert tt.factorize(BIG_SEMIPRIME, 4) == (1, P1, P2, 1)


def test_mersenne_67_is_split():
    assert shapes._factor(2**67 - 1) == (193707721, 761838257287)


def test_square_of_large_prime_is_split():
    p = 10**12 + 39
    assert shapes._factor(p * p) == (p, p)
    assert tt.factorize(p * p * 12, 3) == (12, p, p)


def test_hard_cofactor_is_kept_whole_and_exact():
    # Two 13-digit primes: beyond the rho budget.  The factor is kept indivisible (or split,
    # if the budget ever allows); either way the modes multiply to n exactly.
    p, q = 10**12 + 39, 10**12 + 61
    n = p * q * 2**10
    assert shapes._factor(p * q) in {(p * q,), (p, q)}
    modes = tt.factorize(n, 6)
    assert len(modes) == 6 and math.prod(modes) == n
    _check_padded(n, tt.balanced_modes(n, 6), 6)


def test_balanced_modes_1e18_with_40_modes():
    modes = tt.balanced_modes(10**18, 40)
    assert math.prod(modes) == 10**18
    assert sorted(modes) == [1] * 4 + [2] * 18 + [5] * 18


def test_factorize_power_of_two_into_many_modes():
    modes = tt.factorize(2**200, 150)
    assert math.prod(modes) == 2**200
    assert sorted(modes) == [2] * 100 + [4] * 50


def test_factorize_many_modes_does_not_recurse():
    modes = tt.factorize(2, 1000)
    assert sorted(modes) == [1] * 999 + [2]
    # organ-pipe order, as for every size: the one mode > 1 sits in the middle
    assert modes == (1,) * 500 + (2,) + (1,) * 499
    assert tt.balanced_modes(2, 1000) == modes
    assert tt.factorize(1, 5000) == (1,) * 5000


def test_eye_of_a_large_prime_size():
    n = 10**10 + 19
    E = tt.eye(n)
    assert E.shape == (n, n)
    assert E.row_modes == E.col_modes
    size = _check_padded(n, E.row_modes, len(E.row_modes))
    assert E.padded_shape == (size, size)
    assert max(c.size for c in E.cores) <= 12**2


def test_ttlinear_with_a_large_prime_input():
    n = 10**10 + 19
    layer = TTLinear(n, 2, ranks=2, rng=0)
    assert layer.weight.shape == (2, n)
    assert math.prod(layer.in_modes) >= n
    assert math.prod(layer.out_modes) == 2
    assert len(layer.in_modes) == len(layer.out_modes) == shapes.default_ndim(n)


def test_matrix_modes_for_many_cores():
    rows, cols = shapes.choose_matrix_modes((2, 2), d=1000)
    assert rows == cols == tt.factorize(2, 1000)


def test_from_dense_with_many_cores_within_numpy_limits():
    W = tt.TTMatrix.from_dense(np.ones((2, 2)), d=32)
    assert W.shape == (2, 2) and len(W.cores) == 32
    np.testing.assert_allclose(W.full(), np.ones((2, 2)))


def test_from_dense_with_1000_cores():
    # modes of 1 are left out of every reshape, so 2 * d axes never reach NumPy's 64
    W = tt.TTMatrix.from_dense(np.ones((2, 2)), d=1000)
    assert W.d == 1000
    np.testing.assert_array_equal(W.full(), np.ones((2, 2)))
    np.testing.assert_array_equal(W @ np.arange(2.0), np.ones((2, 2)) @ np.arange(2.0))
    a = np.random.default_rng(0).standard_normal((6, 10))
    V = tt.TTMatrix.from_dense(a, row_modes=(1,) * 40 + (2, 3) + (1,) * 40,
                               col_modes=(1,) * 41 + (5, 2) + (1,) * 39)
    np.testing.assert_allclose(V.full(), a, atol=1e-13)


def test_full_of_tensor_beyond_64_modes_is_a_clear_error():
    x = tt.ones((1,) * 65)
    with pytest.raises(tt.ShapeError, match="d=65 modes cannot be an ndarray"):
        x.full()
    assert x.sum() == 1.0 and x[(0,) * 65] == 1.0


# ---- validation ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "max_pad, match",
    [
        ("x", r"max_pad must be a real number >= 0, got str 'x'"),
        (None, r"max_pad must be a real number >= 0, got NoneType None"),
        (True, r"max_pad must be a real number >= 0, got bool True"),
        (np.bool_(False), r"max_pad must be a real number >= 0, got bool"),
        (1j, r"max_pad must be a real number >= 0, got complex 1j"),
        ([0.1], r"max_pad must be a real number >= 0, got list \[0\.1\]"),
    ],
    ids=["str", "None", "bool", "numpy-bool", "complex", "list"],
)
def test_max_pad_type_errors(max_pad, match):
    with pytest.raises(TypeError, match=match):
        tt.balanced_modes(10, 2, max_pad=max_pad)


@pytest.mark.parametrize(
    "max_pad, match",
    [
        (-0.5, r"max_pad must be >= 0, got -0\.5"),
        (-1, r"max_pad must be >= 0, got -1"),
        (float("nan"), r"max_pad must be >= 0, got nan"),
        (float("inf"), r"max_pad must be a finite number >= 0, got inf"),
        (10**400, r"max_pad must be a finite number >= 0, got 1000"),
    ],
    ids=["negative", "negative-int", "nan", "inf", "int-beyond-float"],
)
def test_max_pad_value_errors(max_pad, match):
    with pytest.raises(tt.ModeError, match=match):
        tt.balanced_modes(10, 2, max_pad=max_pad)


@pytest.mark.parametrize("max_pad", [0, 0.25, np.float32(0.25), Fraction(1, 4), 1])
def test_max_pad_accepts_real_numbers(max_pad):
    modes = tt.balanced_modes(997, 4, max_pad=max_pad)
    assert math.prod(modes) >= 997
    assert modes == ((1, 1, 997, 1) if max_pad == 0 else (5, 5, 8, 5))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: tt.factorize(True, 2), r"n must be an integer, got bool True"),
        (lambda: tt.factorize(12, True), r"d must be an integer, got bool True"),
        (lambda: tt.balanced_modes(False), r"n must be an integer, got bool False"),
        (lambda: tt.balanced_modes(12, True), r"d must be an integer, got bool True"),
        (lambda: tt.balanced_modes(12, np.bool_(True)), r"d must be an integer, got bool"),
    ],
    ids=["factorize-n", "factorize-d", "balanced_modes-n", "balanced_modes-d", "numpy-bool-d"],
)
def test_bools_are_refused(call, match):
    with pytest.raises(TypeError, match=match):
        call()


def test_numpy_integers_are_accepted():
    assert tt.factorize(np.int64(1024), np.int32(4)) == (4, 8, 8, 4)
    assert tt.balanced_modes(np.uint64(997), np.int8(4)) == (5, 5, 8, 5)


# ---- exact factorization against oracles -----------------------------------------------------
def test_factorize_matches_brute_force():
    rng = random.Random(7)
    sizes = list(range(1, 400)) + [rng.randrange(400, 10**4) for _ in range(150)]
    sizes += [720, 5040, 7560, 9240, 4096, 6561, 8192, 9973, 2 * 4999]
    for n in sizes:
        for d in (1, 2, 3, 4, 5):
            want = _brute_exact(n, d)
            assert shapes._best_exact(n, d) == want, (n, d)
            assert tt.factorize(n, d) == shapes._organ_pipe(want)


def test_old_padding_rule_is_kept_for_ordinary_sizes():
    """The padding scan, re-implemented without caps, gives the same modes below 10**5."""
    def old_rule(n, d, max_pad=0.1):
        exact = shapes._best_exact(n, d)   # checked against brute force above
        if max(exact) <= 2 * math.ceil(n ** (1.0 / d)):
            return shapes._organ_pipe(exact)
        best_key, best, found = (sum(exact), n), exact, 0
        for size in range(n + 1, n + int(n * max_pad) + 1):
            if not shapes._is_smooth(size):
                continue
            found += 1
            if found > 64:
                break
            modes = shapes._best_exact(size, d)
            key = (1.25 * sum(modes) * size / n, size)
            if key < best_key:
                best_key, best = key, modes
        return shapes._organ_pipe(best)

    rng = random.Random(3)
    sizes = [997, 1021, 1000, 784, 4999, 7919, 65537] + [rng.randrange(2, 10**5) for _ in range(40)]
    for n in sizes:
        for d in (2, 3, 4):
            assert tt.balanced_modes(n, d) == old_rule(n, d), (n, d)


if given is not None:
    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(n=st.integers(1, 10**6), d=st.integers(1, 12))
    def test_factorize_properties(n, d):
        modes = tt.factorize(n, d)
        assert len(modes) == d
        assert math.prod(modes) == n
        assert all(m >= 1 for m in modes)
        assert sum(modes) <= _greedy_sum(n, d)
        # at most d prime factors: exactly the primes, plus ones
        primes = _trial_factor(n)
        if len(primes) <= d:
            assert sorted(modes) == [1] * (d - len(primes)) + primes

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(n=st.integers(1, 10**12), d=st.integers(1, 12),
           max_pad=st.sampled_from([0.0, 0.01, 0.1, 0.5]))
    def test_balanced_modes_cover_within_max_pad(n, d, max_pad):
        modes = tt.balanced_modes(n, d, max_pad=max_pad)
        assert len(modes) == d
        assert n <= math.prod(modes) <= n + int(n * max_pad)
else:
    @pytest.mark.skip(reason="hypothesis is not installed")
    def test_factorize_properties():
        pass


# ---- primality ------------------------------------------------------------------------------
def test_primality_matches_a_sieve():
    limit = 10**5
    flags = _sieve(limit)
    got = [k for k in range(limit) if shapes._is_probable_prime(k)]
    assert got == [k for k in range(limit) if flags[k]]


@pytest.mark.parametrize(
    "n",
    [2**31 - 1, 2**61 - 1, 2**89 - 1, 2**107 - 1, 2**127 - 1, 2**521 - 1, P1, P2,
     10**12 + 39, 10**12 + 61, 10**10 + 19],
)
def test_known_primes(n):
    assert shapes._is_probable_prime(n)
    assert shapes._factor(n) == (n,)


@pytest.mark.parametrize(
    "n",
    [
        # Carmichael numbers (Fermat pseudoprimes to every coprime base)
        561, 1105, 1729, 2465, 2821, 6601, 8911, 41041, 825265, 321197185, 5394826801,
        232250619601, 9746347772161,
        # strong pseudoprimes to base 2, and to the first several prime bases
        2047, 3277, 4033, 4681, 8321, 3215031751, 2152302898747, 3474749660383,
        341550071728321, 3825123056546413051,
        # strong pseudoprimes to the first 12 and 13 prime bases (the exact-test limit)
        318665857834031151167461, 3317044064679887385961981,
        # products of large primes, and composite Mersenne numbers
        BIG_SEMIPRIME, (2**61 - 1) * (2**89 - 1), 2**67 - 1, 2**101 - 1, 2**128 + 1,
    ],
)
def test_known_composites(n):
    assert not shapes._is_probable_prime(n)
    factors = shapes._factor(n)
    assert math.prod(factors) == n
    assert list(factors) == sorted(factors)


def test_small_carmichael_numbers_are_factored_completely():
    assert shapes._factor(9746347772161) == (7, 11, 13, 17, 19, 31, 37, 41, 641)
    assert shapes._factor(3825123056546413051) == (149491, 747451, 34233211)

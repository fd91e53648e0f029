"""Factorizing sizes into TT modes, and padding awkward sizes.

A size ``n`` is split into ``d`` modes whose product is ``n`` when ``n`` has a balanced
factorization, or a slightly larger *padded* size when it does not (a prime such as 997, or
1000 and 10 when ``d`` is large).  The choice minimises the sum of the modes (a proxy for the
parameter count ``sum_k m_k n_k r^2``) times the padding overhead ``prod(modes) / n``.

Every step below has a fixed work limit, so a call costs time polynomial in the number of
digits of ``n`` (and linear in ``d``), whatever the size.

Prime factors
    Trial division by the primes below 1000, then a Miller-Rabin test for each cofactor:
    with the first 13 prime bases it is exact below ``3.3e24``; above that it is a strong
    probable-prime test to 20 fixed prime bases.  A composite cofactor is split with
    Pollard's rho method (Brent's variant) under a fixed budget of steps; a cofactor that is
    not split within that budget (it needs two prime factors of about 12 digits or more) is
    kept as **one indivisible factor**.  The modes still multiply to ``n`` exactly; they may
    only be less balanced than with a complete factorization.

Exact modes (:func:`factorize`)
    The non-decreasing ``d``-tuple of product ``n`` with the smallest sum of modes, then the
    smallest largest mode, then the lexicographically smallest.  When ``n`` has at most ``d``
    prime factors (counted with multiplicity) these are the primes plus modes of 1: merging
    two modes ``a, b >= 2`` into ``a * b`` (and freeing a 1) always increases the sum.
    Otherwise no mode is 1 in the optimum, and a depth-first search over the divisors of
    ``n``, seeded with a greedy answer (prime factors taken largest first, each onto the
    mode with the smallest product so far), prunes with the bounds ``sum >= k * lo`` and
    ``sum >= k * rest ** (1 / k)`` for the ``k`` modes still to choose.  The search is
    skipped when ``n`` has more than 20,000 divisors and stopped after a fixed number of
    steps; the best answer found so far (at least the greedy one) is then returned.

Padding (:func:`balanced_modes`)
    The exact modes are kept when their largest mode is at most ``2 * ceil(n ** (1 / d))``.
    Otherwise the sizes ``n + 1, n + 2, ...`` up to ``n + max_pad * n`` whose prime factors
    are all at most 31 are tried (the first 64 of them, among at most 20,000 sizes scanned).
    When that cap cuts the scan short (only for large ``n``), candidates built around
    ``t = n ** (1 / d)`` join in: ``d`` modes drawn from ``a - 1 .. a + 2`` with
    ``a = floor(t)`` (modes of at least 2, or 1 when ``t < 2``) whose product lies in
    ``[n, n + max_pad * n]``.  A padded size ``p`` with modes ``m`` scores
    ``1.25 * sum(m) * p / n`` and replaces the exact modes when that is below their sum.
"""

from __future__ import annotations

import heapq
import math
import numbers
from collections import Counter
from fractions import Fraction
from functools import lru_cache
from typing import Any

from ._validation import _as_int, check_modes
from .errors import ModeError

__all__ = ["balanced_modes", "choose_matrix_modes", "default_ndim", "factorize"]

_SMALL_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31)
_TARGET_MODE = 6.0

# ---- work limits ---------------------------------------------------------------------------
_TRIAL_BOUND = 1000            # trial division by the primes below this
_MR_EXACT_BELOW = 3317044064679887385961981  # the first 13 prime bases are exact below this
_MR_BASES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41)
_MR_EXTRA_BASES = (43, 47, 53, 59, 61, 67, 71)
_RHO_BUDGET = 120_000          # Pollard-rho steps (modular squarings) per factorization,
_RHO_FULL_BITS = 128           # scaled down by bits / 128 for larger numbers (dearer steps)
_RHO_BATCH = 64                # differences multiplied together between two gcds
_MAX_DIVISORS = 20_000         # no exhaustive divisor search above this many divisors
_SEARCH_STEPS = 200_000        # divisor trials in one exhaustive search
_SCAN_SIZES = 20_000           # padded sizes tried one by one
_SCAN_SMOOTH = 64              # smooth padded sizes evaluated by the scan
_WINDOW_PAIRS = 20_000         # mode-count pairs tried by the constructive padding
_FLOAT_BITS = 1000             # below this many bits, sizes are converted to float as before


def _primes_below(limit: int) -> tuple[int, ...]:
    sieve = bytearray([1]) * limit
    sieve[0:2] = b"\x00\x00"
    for p in range(2, math.isqrt(limit - 1) + 1):
        if sieve[p]:
            sieve[p * p::p] = bytearray(len(range(p * p, limit, p)))
    return tuple(i for i in range(limit) if sieve[i])


_TRIAL_PRIMES = _primes_below(_TRIAL_BOUND)


# ---- integer helpers ------------------------------------------------------------------------
def _iroot(n: int, k: int) -> int:
    """``floor(n ** (1 / k))`` for ``n >= 0`` and ``k >= 1``, in exact integer arithmetic."""
    if k == 1 or n < 2:
        return n
    if k == 2:
        return math.isqrt(n)
    if k >= n.bit_length():
        return 1
    x = 1 << -(-n.bit_length() // k)          # 2 ** ceil(bits / k) > the root
    lg = math.log(n) / k
    if lg < 700.0:                             # a float start just above the root, if it is
        guess = int(math.exp(lg) * (1.0 + 1e-9)) + 1
        if guess < x and guess ** k > n:
            x = guess
    # Newton's iteration decreases monotonically from above and stops at the floor of the
    # root; from the float start it takes a few steps, from 2 ** ceil(bits / k) at most about
    # k < bits steps, so the cap is never reached.
    for _ in range(n.bit_length() + 64):
        y = ((k - 1) * x + n // x ** (k - 1)) // k
        if y >= x:
            break
        x = y
    return x


def _ceil_root(n: int, d: int):
    """``ceil(n ** (1 / d))``: in floating point as it always was, exactly for huge ``n``."""
    if n.bit_length() <= _FLOAT_BITS:
        return math.ceil(n ** (1.0 / d))
    r = _iroot(n, d)
    return r if r ** d == n else r + 1


def _is_probable_prime(n: int) -> bool:
    """Miller-Rabin: exact for ``n < 3.3e24``, a strong probable-prime test above."""
    if n < 2:
        return False
    for p in _TRIAL_PRIMES:
        if n % p == 0:
            return n == p
    if n < _TRIAL_BOUND * _TRIAL_BOUND:
        return True
    s = (n - 1 & -(n - 1)).bit_length() - 1    # n - 1 = q * 2**s with q odd
    q = (n - 1) >> s
    bases = _MR_BASES if n < _MR_EXACT_BELOW else _MR_BASES + _MR_EXTRA_BASES
    for a in bases:
        x = pow(a, q, n)
        if x == 1 or x == n - 1:
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def _rho_factor(n: int, budget: int) -> tuple[int | None, int]:
    """A proper factor of the odd composite ``n`` by Pollard-Brent rho, or None.

    Returns ``(factor or None, steps used)``; never uses more than about ``budget`` steps.
    """
    used = 0
    for c in (1, 3, 5, 7, 11, 13):
        y, x, ys, r, q, g = 2, 2, 2, 1, 1, 1
        while g == 1 and used + 2 * r <= budget:
            x = y
            for _ in range(r):
                y = (y * y + c) % n
            k = 0
            while k < r and g == 1:
                ys = y
                for _ in range(min(_RHO_BATCH, r - k)):
                    y = (y * y + c) % n
                    q = q * abs(x - y) % n
                g = math.gcd(q, n)
                k += _RHO_BATCH
            used += 2 * r
            r *= 2
        if g == n:                              # the batch overshot: redo it one step at a time
            g = 1
            for _ in range(_RHO_BATCH):
                ys = (ys * ys + c) % n
                g = math.gcd(abs(x - ys), n)
                if g != 1:
                    break
            used += _RHO_BATCH
        if 1 < g < n:
            return g, used
        if used + 2 >= budget:
            break
    return None, used


def _perfect_power(n: int) -> tuple[int, int]:
    """``(r, k)`` with ``r ** k == n`` and ``k`` largest among small prime exponents."""
    for k in _TRIAL_PRIMES:
        if _TRIAL_BOUND ** k > n:               # every prime factor of n is above the bound
            break
        r = _iroot(n, k)
        if r ** k == n:
            return r, k
    return n, 1


@lru_cache(maxsize=4096)
def _factor(n: int) -> tuple[int, ...]:
    """Prime factors of ``n`` with multiplicity, ascending (see the module docstring).

    A composite cofactor that Pollard's rho does not split within the budget is returned as
    one factor.
    """
    out = []
    for p in _TRIAL_PRIMES:
        if p * p > n:
            break
        while n % p == 0:
            out.append(p)
            n //= p
    if n == 1:
        return tuple(out)
    budget = _RHO_BUDGET * _RHO_FULL_BITS // max(_RHO_FULL_BITS, n.bit_length())
    stack = [(n, 1)]
    # Every pass either settles an entry or replaces it by two entries whose product it is,
    # so there are fewer than 2 * log2(n) passes.
    for _ in range(2 * n.bit_length() + 2):
        if not stack:
            break
        m, mult = stack.pop()
        if m < _TRIAL_BOUND * _TRIAL_BOUND or _is_probable_prime(m):
            out.extend([m] * mult)
            continue
        r, k = _perfect_power(m)
        if k > 1:
            stack.append((r, mult * k))
            continue
        f, used = _rho_factor(m, budget)
        budget -= used
        if f is None:
            out.extend([m] * mult)              # not split within the budget: indivisible
        else:
            stack.extend([(f, mult), (m // f, mult)])
    for m, mult in stack:                       # unreachable in practice; kept for safety
        out.extend([m] * mult)
    return tuple(sorted(out))


def _is_smooth(n: int, bound: int = 31) -> bool:
    for p in _SMALL_PRIMES:
        if p > bound:
            break
        while n % p == 0:
            n //= p
    return n == 1


# ---- exact modes ----------------------------------------------------------------------------
def _greedy_modes(primes, d: int) -> tuple[int, ...]:
    """Prime factors largest first, each onto the mode with the smallest product so far."""
    heap = [(1, i) for i in range(d)]
    for p in sorted(primes, reverse=True):
        v, i = heapq.heappop(heap)
        heapq.heappush(heap, (v * p, i))
    return tuple(sorted(v for v, _ in heap))


def _divisors(primes) -> tuple[list[int], list[int]]:
    """Divisors of the product of ``primes`` ascending, and their numbers of prime factors."""
    pairs = [(1, 0)]
    for p, e in Counter(primes).items():
        pairs = [(v * p ** j, w + j) for v, w in pairs for j in range(e + 1)]
    pairs.sort()
    return [v for v, _ in pairs], [w for _, w in pairs]


def _mean_bound_exceeds(base: int, rest: int, k: int, best_sum: int) -> bool:
    """Whether ``base`` plus ``k`` modes of product ``rest`` must sum to more than ``best_sum``.

    Uses the AM-GM bound ``k * rest ** (1 / k)``, shrunk slightly against rounding.
    """
    lg = math.log(rest) / k
    if lg > 700.0:                              # out of float range: do not prune
        return False
    return base + k * math.exp(lg) * (1.0 - 1e-9) > best_sum


def _search_exact(n: int, d: int, primes, best: tuple[int, ...]) -> tuple[int, ...]:
    """Depth-first search for the exact optimum with ``len(primes) > d >= 2``, from ``best``.

    Visits non-decreasing tuples of modes >= 2 in lexicographic order; keeps the tuple with
    the smallest ``(sum, max, tuple)``.  Stops after ``_SEARCH_STEPS`` divisor trials.
    """
    divs, omega = _divisors(primes)
    where = {v: i for i, v in enumerate(divs)}
    best_key = (sum(best), best[-1], best)
    ndiv = len(divs)
    # frame: [remaining product, modes still to choose, chosen modes, their sum,
    #         index of the next divisor to try, largest divisor worth trying]
    stack: list[list[Any]] = [[n, d, (), 0, 1, _iroot(n, d)]]
    steps = 0
    while stack and steps < _SEARCH_STEPS:
        frame = stack[-1]
        rem, k, parts, psum, i, fmax = frame
        if i >= ndiv or divs[i] > fmax:
            stack.pop()
            continue
        f = divs[i]
        frame[4] = i + 1
        steps += 1
        if psum + f * k > best_key[0]:          # every later mode is >= f
            stack.pop()
            continue
        if rem % f:
            continue
        rest = rem // f
        if omega[where[rest]] < k - 1:          # too few primes left for k - 1 modes >= 2
            continue
        if k == 2:
            cand = (*parts, f, rest)
            best_key = min(best_key, (psum + f + rest, rest, cand))
            continue
        if _mean_bound_exceeds(psum + f, rest, k - 1, best_key[0]):
            continue
        stack.append([rest, k - 1, (*parts, f), psum + f, i, _iroot(rest, k - 1)])
    return best_key[2]


@lru_cache(maxsize=4096)
def _best_exact(n: int, d: int) -> tuple[int, ...]:
    """Non-decreasing d-tuple with product ``n`` minimising (sum, max), then lexicographic."""
    primes = _factor(n)
    if len(primes) <= d:
        return (1,) * (d - len(primes)) + primes
    if d == 1:
        return (n,)
    best = _greedy_modes(primes, d)
    if math.prod(e + 1 for e in Counter(primes).values()) <= _MAX_DIVISORS:
        best = _search_exact(n, d, primes, best)
    return best


def _organ_pipe(modes: tuple[int, ...]) -> tuple[int, ...]:
    """Arrange modes small at both ends and large in the middle: (4, 4, 8, 8) -> (4, 8, 8, 4).

    Small boundary modes keep the boundary ranks (capped by the products of the outer modes)
    small, which is where TT formats store the fewest parameters.
    """
    s = sorted(modes)
    left: list[int] = []
    right: list[int] = []
    for i, m in enumerate(s):
        (left if i % 2 == 0 else right).append(m)
    return tuple(left + right[::-1])


def factorize(n: int, d: int) -> tuple[int, ...]:
    """The most balanced exact factorization of ``n`` into ``d`` modes (modes of 1 allowed).

    Prime factors that cannot be found within a fixed budget (two of 12 digits or more in one
    cofactor) stay together as one factor; see the module documentation.

    Examples
    --------
    >>> factorize(1024, 4)
    (4, 8, 8, 4)
    """
    n = _as_int(n, "n")
    d = _as_int(d, "d")
    if n < 1 or d < 1:
        raise ModeError(f"factorize needs n >= 1 and d >= 1, got n={n}, d={d}")
    return _organ_pipe(_best_exact(n, d))


def default_ndim(n: int) -> int:
    """A default number of modes for size ``n``: modes of about 6 (1024 -> 4, 25088 -> 6)."""
    if n <= 1:
        return 1
    return max(1, round(math.log(n) / math.log(_TARGET_MODE)))


# ---- padding --------------------------------------------------------------------------------
def _pad_extra(n: int, max_pad: float) -> int:
    """``floor(n * max_pad)``, in floating point as before unless that overflows."""
    try:
        return int(n * max_pad)
    except OverflowError:
        return math.floor(Fraction(max_pad) * n)


def _pad_score(total: int, size: int, n: int):
    """``1.25 * total * size / n``: a float as before, an exact fraction for huge values."""
    if size.bit_length() <= _FLOAT_BITS and total.bit_length() <= _FLOAT_BITS:
        return 1.25 * total * size / n
    return Fraction(5 * total * size, 4 * n)


def _window_modes(n: int, d: int, limit: int):
    """The best ``(key, modes)``: ``d`` modes near ``n ** (1 / d)``, product in ``[n, limit]``.

    Returns None when no such product exists.
    """
    a = _iroot(n, d)
    if a == 1:
        return _window_below_two(n, d, limit)
    # Modes a - 1 (when >= 2), a, a + 1 and a + 2: x of a - 1 and z of a + 2, then of the
    # r = d - x - z others the fewest j of a + 1 that reach n (more would raise both the sum
    # and the product).  Pairs (x, z) go by x + z, so the balanced ones come first; float
    # logs rule out most pairs and guess j before any big-int work.
    precise = a < 1 << 40                    # below this, float logs tell a from a + 1 well
    log_n, log_limit = math.log(n), math.log(limit)
    tol = 1e-9 * max(1.0, log_limit)
    la, la1, la2 = math.log(a), math.log(a + 1), math.log(a + 2)
    lm = math.log(a - 1) if a >= 3 else 0.0
    step = math.log1p(1.0 / a)
    best = None
    pairs = 0
    for s in range(d + 1):
        if pairs >= _WINDOW_PAIRS:
            break
        for x in range(s + 1) if a >= 3 else (0,):
            pairs += 1
            if pairs > _WINDOW_PAIRS:
                break
            z, r = s - x, d - s
            guess = None
            if precise:
                fixed = x * lm + z * la2
                if fixed + r * la1 < log_n - tol:        # even all a + 1 falls short of n
                    continue
                if fixed + r * la > log_limit + tol:     # even all a overshoots the limit
                    continue
                need = (log_n - fixed - r * la) / step
                j_low = min(r, max(0, math.floor((log_n - tol - fixed - r * la) / step)))
                if best is not None and _lower_score(d * a - x + 2 * z + j_low) > best[0][0]:
                    continue                             # cannot beat the best score
                guess = min(r, max(0, math.ceil(need - 1e-6)))
            found = _fewest_steps(n, r, guess, (a - 1) ** x * (a + 2) ** z, a)
            if found is None:
                continue
            j, size = found
            if size > limit:
                continue
            key = (_pad_score(d * a - x + 2 * z + j, size, n), size)
            if best is None or key < best[0]:
                best = (key, (x, r - j, j, z))
    if best is None:
        return None
    x, ca, ca1, z = best[1]
    return best[0], (a - 1,) * x + (a,) * ca + (a + 1,) * ca1 + (a + 2,) * z


def _lower_score(total: int):
    """``1.25 * total``: the score of a sum of modes ``total`` without padding."""
    return 1.25 * total if total.bit_length() <= _FLOAT_BITS else Fraction(5 * total, 4)


def _fewest_steps(n: int, r: int, guess, base: int, a: int):
    """Smallest ``j`` in ``[0, r]`` with ``base * a**(r-j) * (a+1)**j >= n``, and that product.

    Starts from ``guess`` (a float estimate, usually exact) and falls back to bisection.
    Returns None when even ``j = r`` falls short of ``n``.
    """
    def product(k):
        return base * a ** (r - k) * (a + 1) ** k

    if guess is not None:
        size = product(guess)
        if size >= n and (guess == 0 or product(guess - 1) < n):
            return guess, size
    if product(r) < n:
        return None
    lo, hi = 0, r                                # bisection: at most log2(d) + 1 passes
    while lo < hi:
        mid = (lo + hi) // 2
        if product(mid) >= n:
            hi = mid
        else:
            lo = mid + 1
    return lo, product(lo)


def _window_below_two(n: int, d: int, limit: int):
    """Padding candidates when ``n ** (1 / d) < 2``: modes 3, 2 and the rest 1.

    The modes of 1 cost one each whatever their number, so only the counts of 3 and 2
    matter: for each count of 3s (at most ``log3(limit)``), the fewest 2s that reach ``n``.
    """
    best = None
    three = 1
    for c3 in range(min(d, limit.bit_length()) + 1):
        if three > limit:
            break
        c2 = (-(-n // three) - 1).bit_length()   # smallest c2 with 3**c3 * 2**c2 >= n
        size = three << c2
        if c2 + c3 <= d and size <= limit:
            key = (_pad_score(d + c2 + 2 * c3, size, n), size)
            if best is None or key < best[0]:
                best = (key, (c2, c3))
        three *= 3
    if best is None:
        return None
    c2, c3 = best[1]
    return best[0], (1,) * (d - c2 - c3) + (2,) * c2 + (3,) * c3


@lru_cache(maxsize=1024)
def _balanced_modes(n: int, d: int, max_pad: float) -> tuple[int, ...]:
    exact = _best_exact(n, d)
    if max_pad == 0 or max(exact) <= 2 * _ceil_root(n, d):
        return _organ_pipe(exact)
    # The exact factorization is lopsided (a prime, or too few small factors): look for a
    # slightly larger size with a balanced factorization.  Padding costs FLOPs and a mask in
    # norms and products, so it must buy a clearly better balance (sum of modes 25% smaller).
    best_key, best = (sum(exact), n), exact
    limit = n + _pad_extra(n, max_pad)
    stop = min(limit, n + _SCAN_SIZES)
    scanned = 0
    for size in range(n + 1, stop + 1):
        if not _is_smooth(size):
            continue
        scanned += 1
        if scanned > _SCAN_SMOOTH:
            break
        modes = _best_exact(size, d)
        key = (_pad_score(sum(modes), size, n), size)
        if key < best_key:
            best_key, best = key, modes
    else:
        if stop < limit:
            # The scan stopped at its cap (large n, where smooth sizes are rare): add the
            # balanced candidates built around n ** (1 / d).
            found = _window_modes(n, d, limit)
            if found is not None and found[0] < best_key:
                best = found[1]
    return _organ_pipe(best)


def _check_max_pad(max_pad) -> float:
    if isinstance(max_pad, bool) or not isinstance(max_pad, numbers.Real):
        raise TypeError(f"max_pad must be a real number >= 0, got {type(max_pad).__name__} "
                        f"{max_pad!r}")
    try:
        value = float(max_pad)
    except OverflowError:
        value = math.inf
    if math.isnan(value) or value < 0:
        raise ModeError(f"max_pad must be >= 0, got {max_pad}")
    if math.isinf(value):
        raise ModeError(f"max_pad must be a finite number >= 0, got {max_pad}")
    return value


def balanced_modes(n: int, d: int | None = None, *, max_pad: float = 0.1) -> tuple[int, ...]:
    """Choose ``d`` balanced modes covering ``n``, padding by at most ``max_pad`` when that helps.

    ``max_pad`` is a real number >= 0: the padded size is at most ``n + max_pad * n``.

    Examples
    --------
    >>> balanced_modes(1024, 4)
    (4, 8, 8, 4)
    >>> balanced_modes(997, 4)      # a prime: padded to 1000
    (5, 5, 8, 5)
    """
    n = _as_int(n, "n")
    if n < 1:
        raise ModeError(f"a size must be >= 1, got {n}")
    d = default_ndim(n) if d is None else _as_int(d, "d")
    if d < 1:
        raise ModeError(f"the number of modes must be >= 1, got {d}")
    return _balanced_modes(n, d, _check_max_pad(max_pad))


def choose_matrix_modes(shape, row_modes=None, col_modes=None, d=None):
    """Row and column modes for a matrix of logical ``shape == (M, N)``.

    Given modes are validated (their product must cover the size); missing ones are chosen
    with :func:`balanced_modes` using the same number of modes ``d`` for rows and columns.
    """
    M, N = shape
    if row_modes is not None:
        row_modes = check_modes(row_modes, "row_modes")
    if col_modes is not None:
        col_modes = check_modes(col_modes, "col_modes")
    if d is None:
        if row_modes is not None:
            d = len(row_modes)
        elif col_modes is not None:
            d = len(col_modes)
        else:
            d = max(default_ndim(M), default_ndim(N))
    if row_modes is None:
        row_modes = balanced_modes(M, d)
    if col_modes is None:
        col_modes = balanced_modes(N, d)
    if len(row_modes) != len(col_modes):
        raise ModeError(
            f"row_modes and col_modes must have the same length, got {len(row_modes)} "
            f"({row_modes}) and {len(col_modes)} ({col_modes})"
        )
    check_cover(row_modes, M, "row_modes", "rows")
    check_cover(col_modes, N, "col_modes", "columns")
    return row_modes, col_modes


def check_cover(modes, n, what, dim):
    if math.prod(modes) < n:
        raise ModeError(
            f"{what} {tuple(modes)} multiply to {math.prod(modes)}, which does not cover "
            f"the {n} {dim}"
        )

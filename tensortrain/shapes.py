"""Factorizing sizes into TT modes, and padding awkward sizes.

A size ``n`` is split into ``d`` modes whose product is ``n`` when ``n`` has a balanced
factorization, or a slightly larger *padded* size when it does not (a prime such as 997, or
1000 and 10 when ``d`` is large).  The choice minimises the sum of the modes (a proxy for the
parameter count ``sum_k m_k n_k r^2``) times the padding overhead ``prod(modes) / n``.
"""

from __future__ import annotations

import math
from functools import lru_cache

from ._validation import _as_int, check_modes
from .errors import ModeError

__all__ = ["factorize", "balanced_modes", "choose_matrix_modes", "default_ndim"]

_SMALL_PRIMES = (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31)
_TARGET_MODE = 6.0


def _prime_factors(n: int) -> list[int]:
    out, p = [], 2
    while p * p <= n:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    if n > 1:
        out.append(n)
    return out


def _is_smooth(n: int, bound: int = 31) -> bool:
    for p in _SMALL_PRIMES:
        if p > bound:
            break
        while n % p == 0:
            n //= p
    return n == 1


def _divisors(n: int) -> list[int]:
    small, large = [], []
    i = 1
    while i * i <= n:
        if n % i == 0:
            small.append(i)
            if i != n // i:
                large.append(n // i)
        i += 1
    return small + large[::-1]


@lru_cache(maxsize=4096)
def _best_exact(n: int, d: int) -> tuple[int, ...]:
    """Non-decreasing d-tuple with product ``n`` minimising (sum, max)."""
    best: list = [None, None]  # key, tuple
    divs = _divisors(n)

    def rec(rem, parts, lo):
        k = d - len(parts)
        if k == 1:
            if rem >= lo:
                cand = tuple(parts) + (rem,)
                key = (sum(cand), max(cand))
                if best[0] is None or key < best[0]:
                    best[0], best[1] = key, cand
            return
        for f in divs:
            if f < lo:
                continue
            if f ** k > rem:
                break
            if rem % f == 0:
                # lower bound on the sum: each remaining factor is >= f
                if best[0] is not None and sum(parts) + f * k > best[0][0]:
                    break
                rec(rem // f, parts + [f], f)

    rec(n, [], 1)
    return best[1]


def _organ_pipe(modes: tuple[int, ...]) -> tuple[int, ...]:
    """Arrange modes small at both ends and large in the middle: (4, 4, 8, 8) -> (4, 8, 8, 4).

    Small boundary modes keep the boundary ranks (capped by the products of the outer modes)
    small, which is where TT formats store the fewest parameters.
    """
    s = sorted(modes)
    left, right = [], []
    for i, m in enumerate(s):
        (left if i % 2 == 0 else right).append(m)
    return tuple(left + right[::-1])


def factorize(n, d) -> tuple[int, ...]:
    """The most balanced exact factorization of ``n`` into ``d`` modes (modes of 1 allowed).

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
    return max(1, int(round(math.log(n) / math.log(_TARGET_MODE))))


@lru_cache(maxsize=1024)
def _balanced_modes(n: int, d: int, max_pad: float) -> tuple[int, ...]:
    exact = _best_exact(n, d)
    ideal = n ** (1.0 / d)
    if max(exact) <= 2.0 * math.ceil(ideal) or max_pad == 0:
        return _organ_pipe(exact)
    # The exact factorization is lopsided (a prime, or too few small factors): look for a
    # slightly larger size with a balanced factorization.  Padding costs FLOPs and a mask in
    # norms and products, so it must buy a clearly better balance (sum of modes 25% smaller).
    best_key, best = (sum(exact), n), exact
    limit = n + int(n * max_pad)
    scanned = 0
    for size in range(n + 1, limit + 1):
        if not _is_smooth(size):
            continue
        scanned += 1
        if scanned > 64:
            break
        modes = _best_exact(size, d)
        key = (1.25 * sum(modes) * size / n, size)
        if key < best_key:
            best_key, best = key, modes
    return _organ_pipe(best)


def balanced_modes(n, d=None, *, max_pad=0.1) -> tuple[int, ...]:
    """Choose ``d`` balanced modes covering ``n``, padding by at most ``max_pad`` when that helps.

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
    if not (max_pad >= 0):
        raise ModeError(f"max_pad must be >= 0, got {max_pad}")
    return _balanced_modes(n, d, float(max_pad))


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

"""Weight initialization targets shared by the dense and the TT layers.

An initialization scheme is named by a string and fixes the *variance of the full weight
matrix* ``W`` of shape ``(fan_out, fan_in)``:

=========  ==========================  =========================================
name       variance of ``W[i, j]``     use
=========  ==========================  =========================================
'glorot'   ``2 / (fan_in + fan_out)``  tanh / linear layers (Glorot & Bengio 2010)
'he'       ``2 / fan_in``              ReLU layers (He et al. 2015)
=========  ==========================  =========================================

Dense layers draw ``W`` from a normal distribution with that variance; TT layers choose their
core scales so that the *reconstructed* matrix has it (see ``tensortrain.nn.tt_layer``).

Random numbers for initialization are drawn on the host from a NumPy ``Generator`` (see
:func:`make_rng`) and then moved to the target backend once, so a seed gives the same weights
on NumPy and CuPy.
"""

from __future__ import annotations

import math

import numpy as np

from .._backend import asarray, resolve_xp
from .._validation import check_features, check_nn_dtype, check_positive_int
from .._validation import make_rng as _make_rng
from ..errors import TTError

__all__ = [
    "INITS",
    "check_features",
    "check_init",
    "check_nn_dtype",
    "glorot_std",
    "he_std",
    "init_std",
    "make_rng",
    "normal",
    "target_variance",
]

#: The valid initialization names, in the order error messages list them.
INITS = ("glorot", "he")


def check_init(name) -> str:
    """Return the normalized init name (``'glorot'`` or ``'he'``).

    Case and surrounding whitespace are ignored.  Anything else raises ``ValueError``
    (``TypeError`` for a non-string), naming the valid choices.

    Examples
    --------
    >>> check_init(" He ")
    'he'
    """
    if not isinstance(name, str):
        raise TypeError(f"init must be a string, one of {_choices()}; got "
                        f"{type(name).__name__} {name!r}")
    key = name.strip().lower()
    if key not in INITS:
        raise TTError(f"unknown init {name!r}; expected one of {_choices()}")
    return key


def _choices() -> str:
    return ", ".join(repr(n) for n in INITS)


def target_variance(init, fan_in, fan_out) -> float:
    """Variance of every entry of the full ``(fan_out, fan_in)`` weight matrix for ``init``.

    ``'glorot'``: ``2 / (fan_in + fan_out)``; ``'he'``: ``2 / fan_in``.

    Examples
    --------
    >>> target_variance('glorot', 784, 256) == 2 / (784 + 256)
    True
    """
    init = check_init(init)
    fan_in = check_positive_int(fan_in, "fan_in")
    fan_out = check_positive_int(fan_out, "fan_out")
    if init == "glorot":
        return 2.0 / (fan_in + fan_out)
    return 2.0 / fan_in


def init_std(init, fan_in, fan_out) -> float:
    """Standard deviation ``sqrt(target_variance(init, fan_in, fan_out))``."""
    return math.sqrt(target_variance(init, fan_in, fan_out))


def glorot_std(fan_in, fan_out) -> float:
    """Glorot (Xavier) normal standard deviation ``sqrt(2 / (fan_in + fan_out))``."""
    return init_std("glorot", fan_in, fan_out)


def he_std(fan_in) -> float:
    """He (Kaiming) normal standard deviation ``sqrt(2 / fan_in)``."""
    return math.sqrt(2.0 / check_positive_int(fan_in, "fan_in"))


def make_rng(rng=None) -> np.random.Generator:
    """A NumPy ``Generator`` from ``None`` (fresh entropy), an int seed, a ``SeedSequence`` or
    a ``Generator`` (see :func:`tensortrain._validation.make_rng`, the one helper the whole
    package uses).

    A ``Generator`` is returned as is (the caller's stream advances); a legacy
    ``RandomState`` or anything else raises ``TypeError``, a negative seed a ``ValueError``.
    """
    return _make_rng(rng)


def normal(shape, std, dtype=np.float32, xp=None, rng=None):
    """Draw ``N(0, std^2)`` entries of ``shape`` on the host and move them to backend ``xp``."""
    gen = make_rng(rng)
    host = gen.standard_normal(shape) * float(std)
    return asarray(host.astype(dtype, copy=False), resolve_xp(xp))

"""Shared fixtures: every test that takes ``xp`` runs on NumPy and, where CuPy and a CUDA
device exist, on CuPy (marked ``gpu``; skipped cleanly elsewhere)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

# helpers (host copies, tolerances, random data, finite differences) live in tests/_helpers.py
from _helpers import HAS_CUPY


@pytest.fixture(
    params=[
        pytest.param("numpy", id="numpy"),
        pytest.param("cupy", id="cupy", marks=pytest.mark.gpu),
    ]
)
def xp(request):
    """The array module under test."""
    if request.param == "cupy":
        if not HAS_CUPY:
            pytest.skip("CuPy with a CUDA device is not available")
        return importlib.import_module("cupy")
    return np


@pytest.fixture
def rng():
    return np.random.default_rng(1234)

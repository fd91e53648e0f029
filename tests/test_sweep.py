"""The shared sweep skeleton: interfaces against dense contractions, the outer loop's cap."""

import warnings

import numpy as np
import pytest
from _helpers import host_random

import tensortrain as tt
from tensortrain import _sweep
from tensortrain.errors import ConvergenceWarning, TTError


@pytest.mark.parametrize("dtype", [np.float64, np.complex128])
@pytest.mark.parametrize("with_op", [False, True])
def test_interfaces_give_the_sandwich_at_every_split(dtype, with_op):
    rng = np.random.default_rng(1)
    x = tt.TTTensor([host_random(rng, s, dtype) for s in [(1, 3, 2), (2, 4, 3), (3, 2, 1)]])
    y = tt.TTTensor([host_random(rng, s, dtype) for s in [(1, 3, 3), (3, 4, 2), (2, 2, 1)]])
    a = tt.TTMatrix([host_random(rng, s, dtype) for s in [(1, 3, 3, 2), (2, 4, 4, 2), (2, 2, 2, 1)]])
    bra, ket = list(x.cores), list(y.cores)
    op = list(a.cores) if with_op else None
    if with_op:
        want = np.vdot(x.full().ravel(), a.full() @ y.full().ravel())
    else:
        want = np.vdot(x.full().ravel(), y.full().ravel())
    env = _sweep.Environments(bra, ket, op)
    env.build_left(3)
    env.build_right(0)
    for k in range(4):
        s, e = env.value(k)
        np.testing.assert_allclose(complex(s) * 2.0 ** e, want, rtol=1e-12)


def test_interfaces_stay_in_range_at_d_2000():
    # every core 2 * identity-like: the sandwich is 4**2000, far outside float64
    d = 2000
    core = np.full((1, 2, 1), 2.0)
    bra = [core] * d
    env = _sweep.Environments(bra, bra)
    env.build_left(d)
    s, e = env.value(d)
    # <x, x> = (2^2 + 2^2)^d = 8^d = 2^(3d)
    assert float(s) * 2.0 ** (e - 3 * d) == pytest.approx(1.0, rel=1e-12)
    env.build_right(0)
    s, e = env.value(0)
    assert np.isfinite(float(s)) and float(s) * 2.0 ** (e - 3 * d) == pytest.approx(1.0)


def test_run_sweeps_stops_on_tolerance_and_warns_at_cap():
    seen = []

    def step(direction, i):
        seen.append(direction)
        return 10.0 ** -i

    res = _sweep.run_sweeps(step, max_half_sweeps=10, tol=1e-3, name="test")
    assert res.converged and res.sweeps == 4 and res.reason == "tolerance"
    assert seen == ["right", "left", "right", "left"]
    with pytest.warns(ConvergenceWarning, match="cap of 3 half sweeps"):
        res = _sweep.run_sweeps(lambda d, i: float("nan"), max_half_sweeps=3, tol=1.0,
                                name="test")
    assert not res.converged and res.reason == "cap" and res.sweeps == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = _sweep.run_sweeps(lambda d, i: None, max_half_sweeps=3, tol=1.0, name="t")
    assert res.reason == "stopped" and res.sweeps == 1


def test_bad_arguments_are_typed_errors():
    with pytest.raises(TTError, match="at least 1"):
        _sweep.run_sweeps(lambda d, i: 0.0, max_half_sweeps=0, tol=1.0, name="t")
    with pytest.raises(TTError, match="direction"):
        list(_sweep.core_order(3, "up"))
    with pytest.raises(TTError, match="different lengths"):
        _sweep.Environments([np.ones((1, 2, 1))], [np.ones((1, 2, 1))] * 2)
    assert list(_sweep.bond_order(4, "left")) == [2, 1, 0]

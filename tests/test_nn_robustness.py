"""Edge cases of training found in review: divergence recovery, tiny last batches, state
loading that fails halfway, non-finite activations and huge gradients."""

from __future__ import annotations

import numpy as np
import pytest

from tensortrain import nn
from tensortrain.errors import ShapeError


def _model(seed=0):
    rng = np.random.default_rng(seed)
    return nn.Sequential(nn.Linear(4, 8, rng=rng), nn.BatchNorm1d(8), nn.ReLU(),
                         nn.Linear(8, 3, rng=rng))


def _data(n=40, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)


def test_divergence_restores_parameters_optimizer_state_and_buffers():
    model = _model()
    opt = nn.Adam(model.parameters(), lr=1e-2)
    x, y = _data()
    nn.fit(model, opt, x, y, epochs=1, batch_size=10, progress=False, rng=0)
    before = model.state_dict()
    moments = {i: {k: np.array(v, copy=True) for k, v in st.items()}
               for i, st in opt.state.items()}
    bad = x.copy()
    bad[3, 0] = np.nan
    with pytest.raises(FloatingPointError, match="training diverged at epoch 1: loss is nan"):
        nn.fit(model, opt, bad, y, epochs=1, batch_size=10, progress=False, rng=0)
    after = model.state_dict()
    for k in before:
        np.testing.assert_array_equal(after[k], before[k])      # incl. BatchNorm running stats
    for i, st in moments.items():
        for k, v in st.items():
            np.testing.assert_array_equal(np.asarray(opt.state[i][k]), v)
    hist = nn.fit(model, opt, x, y, epochs=1, batch_size=10, progress=False, rng=0)
    assert np.isfinite(hist.loss[-1])                             # training goes on


def test_last_batch_of_one_sample_joins_the_previous_one():
    model = _model()
    opt = nn.SGD(model.parameters(), lr=0.01)
    x, y = _data(n=21)
    hist = nn.fit(model, opt, x, y, epochs=2, batch_size=10, progress=False, rng=0)
    assert len(hist.loss) == 2 and np.isfinite(hist.loss[-1])


def test_load_state_dict_changes_nothing_when_an_entry_is_bad():
    model = _model()
    before = model.state_dict()
    state = dict(before)
    last = list(state)[-1]
    state[last] = np.full(state[last].shape, "x")
    with pytest.raises(TypeError, match=f"state_dict entry '{last}'"):
        model.load_state_dict(state)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])
    state[last] = np.zeros((7, 7))
    with pytest.raises(ShapeError, match=f"state_dict entry '{last}' has shape"):
        model.load_state_dict(state)


def test_relu_of_minus_infinity_is_zero():
    relu = nn.ReLU()
    y = relu.forward(np.array([[-np.inf, 1.0]]))
    np.testing.assert_array_equal(y, [[0.0, 1.0]])
    np.testing.assert_array_equal(relu.backward(np.array([[np.inf, 2.0]])), [[0.0, 2.0]])


def test_clipping_survives_float32_overflow_of_the_squared_norm():
    p = nn.Parameter(np.zeros(4, np.float32))
    p.grad = np.full(4, 3e19, np.float32)           # squares overflow float32
    opt = nn.SGD([p], lr=1.0, max_grad_norm=1.0)
    opt.step()
    assert np.all(np.isfinite(p.data))
    np.testing.assert_allclose(np.linalg.norm(p.data), 1.0, rtol=1e-5)


def test_relu_propagates_nan():
    assert np.isnan(nn.ReLU().forward(np.array([[np.nan, 1.0]]))[0, 0])

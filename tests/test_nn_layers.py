"""Dense layers, activations, dropout and batch norm: backward against central finite
differences (float64), validation messages, initialization variance and state round trips."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import central_diff, to_numpy

from tensortrain.errors import ShapeError, TTError
from tensortrain.nn.init import (
    INITS,
    check_init,
    glorot_std,
    he_std,
    init_std,
    make_rng,
    target_variance,
)
from tensortrain.nn.layers import BatchNorm1d, Dropout, Linear, ReLU, Tanh
from tensortrain.nn.module import Sequential

F64 = np.float64


# ---- finite differences ----------------------------------------------------------------------
def _fd_check(module, x, xp, reset=None, h=1e-6, rtol=1e-6, atol=1e-8):
    """Compare backward with central differences of L = sum(forward(x) * G) for the input
    and every parameter.  ``reset`` runs before every forward (e.g. to replay a dropout mask)."""
    def forward(xin):
        if reset is not None:
            reset()
        return module.forward(xin)

    y = forward(x)
    G = xp.asarray(np.random.default_rng(99).standard_normal(y.shape))
    module.zero_grad()
    dx = to_numpy(module.backward(G))

    def loss(xin):
        out = forward(xin)
        return float(to_numpy(xp.sum(out * G)))

    analytic_params = [to_numpy(p.grad).copy() for p in module.parameters()]

    xh = to_numpy(x).astype(F64)
    num_dx = central_diff(lambda: loss(xp.asarray(xh)), xh, h)
    np.testing.assert_allclose(dx, num_dx, rtol=rtol, atol=atol, err_msg="input gradient")

    for (name, p), analytic in zip(module.named_parameters(), analytic_params, strict=True):
        num = central_diff(lambda: loss(x), p.data, h)
        np.testing.assert_allclose(analytic, num, rtol=rtol, atol=atol,
                                   err_msg=f"gradient of {name}")
    return dx


def _data(xp, shape, seed=0, away_from_zero=False):
    a = np.random.default_rng(seed).standard_normal(shape)
    if away_from_zero:
        a = np.sign(a) * (0.2 + np.abs(a))
    return xp.asarray(a)


# ---- gradients -------------------------------------------------------------------------------
@pytest.mark.parametrize("bias", [True, False])
def test_linear_backward_matches_finite_differences(xp, bias):
    layer = Linear(5, 3, bias=bias, dtype=F64, xp=xp, rng=0)
    _fd_check(layer, _data(xp, (4, 5)), xp)
    assert len(layer.parameters()) == (2 if bias else 1)


def test_relu_backward_away_from_zero(xp):
    x = _data(xp, (4, 6), away_from_zero=True)
    dx = _fd_check(ReLU(), x, xp)
    assert (dx[to_numpy(x) < 0] == 0).all() and (dx != 0).any()


def test_tanh_backward(xp):
    _fd_check(Tanh(), _data(xp, (3, 7)), xp)


def test_dropout_backward_with_replayed_mask(xp):
    drop = Dropout(0.4, rng=7)
    x = _data(xp, (6, 5), away_from_zero=True)
    _fd_check(drop, x, xp, reset=lambda: drop.reseed(7))
    drop.reseed(7)
    y = to_numpy(drop.forward(x))
    xh = to_numpy(x)
    kept = y != 0
    assert 0 < kept.sum() < kept.size
    np.testing.assert_allclose(y[kept], xh[kept] / 0.6)


def test_batchnorm_backward_training_mode(xp):
    bn = BatchNorm1d(4, dtype=F64, xp=xp)
    bn.weight.data[...] = xp.asarray([0.5, -1.5, 2.0, 1.0])
    bn.bias.data[...] = xp.asarray([0.1, 0.2, -0.3, 0.0])
    _fd_check(bn, _data(xp, (6, 4)) * 3 + 1, xp)


def test_batchnorm_backward_eval_mode(xp):
    bn = BatchNorm1d(4, dtype=F64, xp=xp)
    bn.running_mean[...] = xp.asarray([0.3, -0.2, 1.0, 0.0])
    bn.running_var[...] = xp.asarray([0.5, 2.0, 1.5, 0.9])
    bn.weight.data[...] = xp.asarray([0.5, -1.5, 2.0, 1.0])
    bn.eval()
    _fd_check(bn, _data(xp, (5, 4)), xp)


@pytest.mark.parametrize("training", [True, False])
def test_batchnorm_without_affine_backward(xp, training):
    bn = BatchNorm1d(3, affine=False, dtype=F64, xp=xp).train(training)
    assert bn.parameters() == []
    _fd_check(bn, _data(xp, (5, 3)), xp)


@pytest.mark.parametrize("training", [True, False])
def test_sequential_backward(xp, training):
    drop = Dropout(0.3, rng=3)
    model = Sequential(
        Linear(5, 6, dtype=F64, xp=xp, rng=1), BatchNorm1d(6, dtype=F64, xp=xp), Tanh(),
        Linear(6, 4, init="he", dtype=F64, xp=xp, rng=2), ReLU(), drop,
        Linear(4, 3, dtype=F64, xp=xp, rng=4),
    ).train(training)
    _fd_check(model, _data(xp, (7, 5)), xp, reset=lambda: drop.reseed(3))


def test_gradients_accumulate_over_backward_calls(xp):
    layer = Linear(3, 2, dtype=F64, xp=xp, rng=0)
    x = _data(xp, (4, 3))
    g = _data(xp, (4, 2), seed=1)
    layer.forward(x)
    layer.backward(g)
    first = to_numpy(layer.weight.grad).copy()
    layer.forward(x)
    layer.backward(g)
    np.testing.assert_allclose(to_numpy(layer.weight.grad), 2 * first)


# ---- forward semantics -----------------------------------------------------------------------
def test_linear_forward_is_affine_map(xp):
    layer = Linear(4, 3, dtype=F64, xp=xp, rng=0)
    layer.bias.data[...] = xp.asarray([1.0, 2.0, 3.0])
    x = _data(xp, (2, 4))
    expected = to_numpy(x) @ to_numpy(layer.weight.data).T + np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(to_numpy(layer(x)), expected, rtol=1e-12)


def test_float32_layers_keep_float32(xp):
    model = Sequential(Linear(4, 3, xp=xp, rng=0), BatchNorm1d(3, xp=xp), ReLU(), Dropout(0.5),
                       Tanh())
    x = xp.asarray(np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32))
    y = model(x)
    assert y.dtype == np.float32
    assert model.backward(xp.ones_like(y)).dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in model.parameters())
    assert type(y) is type(x)


def test_dropout_eval_and_p0_are_identity(xp):
    x = _data(xp, (4, 5))
    for drop in (Dropout(0.5, rng=0).eval(), Dropout(0.0, rng=0)):
        y = drop(x)
        np.testing.assert_array_equal(to_numpy(y), to_numpy(x))
        g = _data(xp, (4, 5), seed=3)
        np.testing.assert_array_equal(to_numpy(drop.backward(g)), to_numpy(g))


def test_dropout_statistics_and_seeding(xp):
    x = xp.ones((200, 250), dtype=np.float32)
    y = to_numpy(Dropout(0.3, rng=5)(x))
    assert abs((y == 0).mean() - 0.3) < 0.01
    assert abs(y.mean() - 1.0) < 0.02          # inverted dropout keeps the mean
    same = to_numpy(Dropout(0.3, rng=5)(x))
    np.testing.assert_array_equal(y, same)      # a seed fixes the masks
    drop = Dropout(0.3, rng=5)
    a, b = to_numpy(drop(x)), to_numpy(drop(x))
    assert not np.array_equal(a, b)             # successive masks differ
    gen_drop = Dropout(0.3, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(to_numpy(gen_drop(x)), y)


def test_batchnorm_running_statistics(xp):
    bn = BatchNorm1d(3, momentum=0.25, dtype=F64, xp=xp)
    x = _data(xp, (8, 3)) * 2 + 5
    out = to_numpy(bn(x))
    xh = to_numpy(x)
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(out.var(axis=0), xh.var(axis=0) / (xh.var(axis=0) + 1e-5),
                               rtol=1e-10)
    np.testing.assert_allclose(to_numpy(bn.running_mean), 0.25 * xh.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(bn.running_var),
                               0.75 + 0.25 * xh.var(axis=0, ddof=1), rtol=1e-12)
    bn.eval()
    rm, rv = to_numpy(bn.running_mean), to_numpy(bn.running_var)
    np.testing.assert_allclose(to_numpy(bn(x)), (xh - rm) / np.sqrt(rv + 1e-5), rtol=1e-12)
    np.testing.assert_array_equal(to_numpy(bn.running_mean), rm)  # eval leaves them alone


def test_batchnorm_training_needs_two_samples(xp):
    bn = BatchNorm1d(3, xp=xp)
    x = xp.ones((1, 3), dtype=np.float32)
    with pytest.raises(ShapeError, match="more than one sample per batch in training mode"):
        bn(x)
    assert bn.eval()(x).shape == (1, 3)


# ---- errors ----------------------------------------------------------------------------------
LAYERS = {
    "Linear": lambda: Linear(4, 3, rng=0),
    "ReLU": ReLU,
    "Tanh": Tanh,
    "Dropout": lambda: Dropout(0.5, rng=0),
    "BatchNorm1d": lambda: BatchNorm1d(4),
    "Sequential": lambda: Sequential(Linear(4, 4, rng=0), ReLU()),
}


@pytest.mark.parametrize("name", list(LAYERS))
def test_backward_without_forward_raises(name):
    layer = LAYERS[name]()
    g = np.ones((2, 4 if name != "Linear" else 3), np.float32)
    with pytest.raises(RuntimeError, match=r"backward\(\) called without a cached forward pass"):
        layer.backward(g)
    layer.forward(np.ones((2, 4), np.float32))
    layer.backward(g)
    with pytest.raises(RuntimeError, match="without a cached forward pass"):
        layer.backward(g)  # the cache is consumed


@pytest.mark.parametrize("name", list(LAYERS))
def test_integer_inputs_raise_type_error(name):
    with pytest.raises(TypeError, match="expects floating-point inputs, got dtype int64"):
        LAYERS[name]().forward(np.ones((2, 4), np.int64))


@pytest.mark.parametrize("name", list(LAYERS))
def test_non_array_inputs_raise_type_error(name):
    with pytest.raises(TypeError, match="expects a NumPy or CuPy array, got list"):
        LAYERS[name]().forward([[1.0, 2.0, 3.0, 4.0]])


def test_wrong_input_width_raises_shape_error(xp):
    x = xp.zeros((2, 100), dtype=np.float32)
    with pytest.raises(ShapeError, match="Linear expects inputs of width 784, got 100"):
        Linear(784, 10, xp=xp, rng=0)(x)
    with pytest.raises(ShapeError, match="BatchNorm1d expects inputs of width 64, got 100"):
        BatchNorm1d(64, xp=xp)(x)
    with pytest.raises(ShapeError, match=r"expects inputs of shape \(batch, 100\), got an array "
                                         r"of shape \(100,\)"):
        Linear(100, 10, xp=xp, rng=0)(x[0])


def test_wrong_grad_shape_raises(xp):
    layer = Linear(4, 3, xp=xp, rng=0)
    layer(xp.zeros((2, 4), dtype=np.float32))
    with pytest.raises(ShapeError, match=r"grad_out of shape \(2, 3\).*got \(2, 4\)"):
        layer.backward(xp.zeros((2, 4), dtype=np.float32))
    relu = ReLU()
    relu(xp.zeros((2, 4), dtype=np.float32))
    with pytest.raises(ShapeError, match=r"ReLU.backward expects grad_out of shape \(2, 4\)"):
        relu.backward(xp.zeros((4, 2), dtype=np.float32))


@pytest.mark.parametrize("make, exc, match", [
    (lambda: Linear(0, 3), TTError, "in_features must be a positive integer, got 0"),
    (lambda: Linear(3, 2.5), TypeError, "out_features must be a positive integer, got float"),
    (lambda: Linear(3, 2, init="xavier"), TTError,
     "unknown init 'xavier'; expected one of 'glorot', 'he'"),
    (lambda: Linear(3, 2, init=None), TypeError, "init must be a string"),
    (lambda: Linear(3, 2, dtype=np.int32), TypeError, "dtype must be float32 or float64, got int32"),
    (lambda: Linear(3, 2, rng="seed"), TypeError, "rng must be None, a non-negative int seed, .*got str"),
    (lambda: Linear(3, 2, xp="torch"), TTError, "unknown backend 'torch'"),
    (lambda: Dropout(1.0), TTError, r"Dropout p must be in \[0, 1\), got 1.0"),
    (lambda: Dropout(-0.1), TTError, r"Dropout p must be in \[0, 1\), got -0.1"),
    (lambda: Dropout("0.5"), TypeError, "Dropout p must be a real number"),
    (lambda: BatchNorm1d(3, eps=0), TTError, "BatchNorm1d eps must be > 0, got 0"),
    (lambda: BatchNorm1d(3, eps="a"), TypeError, "BatchNorm1d eps must be a real number"),
    (lambda: BatchNorm1d(3, momentum=1.5), TTError,
     r"BatchNorm1d momentum must be in \[0, 1\], got 1.5"),
    (lambda: BatchNorm1d(-1), TTError, "num_features must be a positive integer, got -1"),
])
def test_constructor_validation(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


# ---- initialization --------------------------------------------------------------------------
def test_init_helpers():
    assert INITS == ("glorot", "he")
    assert check_init(" Glorot ") == "glorot"
    assert check_init("HE") == "he"
    with pytest.raises(TTError, match="unknown init 'xavier'; expected one of 'glorot', 'he'"):
        check_init("xavier")
    assert target_variance("glorot", 784, 256) == pytest.approx(2 / (784 + 256))
    assert target_variance("he", 784, 256) == pytest.approx(2 / 784)
    assert glorot_std(30, 20) == pytest.approx(np.sqrt(2 / 50))
    assert he_std(30) == pytest.approx(np.sqrt(2 / 30))
    assert init_std("he", 8, 1) == pytest.approx(0.5)
    with pytest.raises(TTError, match="fan_in must be a positive integer, got 0"):
        target_variance("he", 0, 3)
    with pytest.raises(TTError, match="rng seed must be a non-negative integer, got -1"):
        make_rng(-1)
    g = np.random.default_rng(0)
    assert make_rng(g) is g


@pytest.mark.parametrize("init, expected", [("glorot", 2 / (1000 + 600)), ("he", 2 / 1000)])
def test_linear_init_variance(xp, init, expected):
    layer = Linear(1000, 600, init=init, xp=xp, rng=11)
    w = to_numpy(layer.weight.data).astype(F64)
    assert w.shape == (600, 1000)
    assert abs(w.var() / expected - 1) < 0.02     # 600k samples: sd of the ratio ~0.002
    assert abs(w.mean()) < 0.01 * np.sqrt(expected)
    np.testing.assert_array_equal(to_numpy(layer.bias.data), 0)


def test_linear_init_variance_over_many_small_layers():
    draws = np.stack([Linear(6, 4, init="glorot", rng=s).weight.data for s in range(2000)])
    assert abs(draws.var() / (2 / 10) - 1) < 0.05
    assert abs(draws.var(axis=0).mean() / (2 / 10) - 1) < 0.05


def test_linear_seed_is_reproducible_and_backend_independent(xp):
    a = Linear(7, 5, xp=xp, rng=3)
    b = Linear(7, 5, rng=3)
    np.testing.assert_array_equal(to_numpy(a.weight.data), b.weight.data)
    assert type(a.weight.data) is type(xp.zeros(1))


# ---- state, modes, display -------------------------------------------------------------------
def _model(xp, seed):
    return Sequential(Linear(4, 5, xp=xp, rng=seed), BatchNorm1d(5, xp=xp), Tanh(),
                      Dropout(0.5, rng=seed), Linear(5, 2, xp=xp, rng=seed + 1))


def test_state_dict_round_trip_with_running_stats(xp):
    a = _model(xp, 0)
    x = xp.asarray(np.random.default_rng(1).standard_normal((16, 4)).astype(np.float32))
    for _ in range(3):
        a(x)  # training passes move the running statistics
    state = a.state_dict()
    assert list(state) == ["layers.0.weight", "layers.0.bias", "layers.1.weight",
                           "layers.1.bias", "layers.4.weight", "layers.4.bias",
                           "layers.1.running_mean", "layers.1.running_var"]
    assert all(isinstance(v, np.ndarray) for v in state.values())
    assert not np.allclose(state["layers.1.running_mean"], 0)
    b = _model(xp, 10)
    b.load_state_dict(state)
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert na == nb
        np.testing.assert_array_equal(to_numpy(pa.data), to_numpy(pb.data))
    np.testing.assert_array_equal(to_numpy(b[1].running_var), state["layers.1.running_var"])
    assert type(b[1].running_var) is type(x)
    np.testing.assert_array_equal(to_numpy(a.eval()(x)), to_numpy(b.eval()(x)))
    state["layers.1.running_mean"][:] = 7  # the state dict holds copies
    assert not np.allclose(to_numpy(a[1].running_mean), 7)


def test_load_state_dict_rejects_wrong_shapes_and_keys():
    model = _model(np, 0)
    good = model.state_dict()
    bad = dict(good, **{"layers.0.weight": np.zeros((4, 4), np.float32)})
    with pytest.raises(ShapeError, match=r"'layers.0.weight' has shape \(4, 4\), but the "
                                         r"parameter has shape \(5, 4\)"):
        model.load_state_dict(bad)
    bad = dict(good, **{"layers.1.running_var": np.zeros(3, np.float32)})
    with pytest.raises(ShapeError, match=r"'layers.1.running_var' has shape \(3,\), but the "
                                         r"buffer has shape \(5,\)"):
        model.load_state_dict(bad)
    missing = {k: v for k, v in good.items() if k != "layers.1.running_mean"}
    with pytest.raises(KeyError, match=r"missing \['layers.1.running_mean'\]"):
        model.load_state_dict(missing)
    with pytest.raises(KeyError, match=r"unexpected \['extra'\]"):
        model.load_state_dict(dict(good, extra=np.zeros(1)))
    np.testing.assert_array_equal(model.state_dict()["layers.0.weight"], good["layers.0.weight"])


def test_train_eval_propagate():
    model = _model(np, 0)
    assert all(m.training for m in model.modules())
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    x = np.ones((3, 4), np.float32)
    np.testing.assert_array_equal(model(x), model(x))   # eval: deterministic
    model.train()
    assert all(m.training for m in model.modules())


def test_extra_repr():
    assert repr(Linear(784, 100, init="he", rng=0)) == (
        "Linear(in_features=784, out_features=100, bias=True, init='he', dtype=float32)")
    assert repr(Linear(3, 2, bias=False, dtype=F64, rng=0)) == (
        "Linear(in_features=3, out_features=2, bias=False, init='glorot', dtype=float64)")
    assert repr(Dropout(0.25)) == "Dropout(p=0.25)"
    assert repr(BatchNorm1d(64)) == (
        "BatchNorm1d(64, eps=1e-05, momentum=0.1, affine=True, dtype=float32)")
    assert repr(ReLU()) == "ReLU()" and repr(Tanh()) == "Tanh()"
    assert "(layers.1): BatchNorm1d(5" in repr(_model(np, 0))

"""TTLinear: gradients vs finite differences, initialization variance, compression, errors."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import central_diff, to_numpy

import tensortrain as tt
from tensortrain.errors import ShapeError
from tensortrain.nn.tt_layer import TTLinear


def _loss_grads(layer, x, dy):
    layer.zero_grad()
    y = layer.forward(x)
    dx = layer.backward(dy)
    return y, dx, [to_numpy(p.grad) for p in layer.parameters()]


@pytest.mark.parametrize("n_in,n_out,ranks,modes", [
    (12, 6, 2, ((3, 4), (2, 3))),
    (13, 7, 3, (None, None)),        # primes: padded on both sides
    (8, 10, [1, 2, 3, 1], ((2, 2, 2), (2, 5, 1))),
    (5, 3, 1, (None, None)),
])
def test_backward_matches_finite_differences(xp, n_in, n_out, ranks, modes):
    rng = np.random.default_rng(3)
    layer = TTLinear(n_in, n_out, ranks, in_modes=modes[0], out_modes=modes[1],
                     dtype=np.float64, xp=xp, rng=0)
    layer.bias.data[...] = xp.asarray(rng.standard_normal(n_out))
    x = rng.standard_normal((4, n_in))
    dy = rng.standard_normal((4, n_out))
    y, dx, grads = _loss_grads(layer, xp.asarray(x), xp.asarray(dy))
    W = to_numpy(layer.weight.full())
    np.testing.assert_allclose(to_numpy(y), x @ W.T + to_numpy(layer.bias.data), atol=1e-12)
    np.testing.assert_allclose(to_numpy(dx), dy @ W, atol=1e-10)

    h = 1e-6
    params = layer.parameters()
    def loss():
        layer._cache = None
        return np.sum(dy * to_numpy(layer.forward(xp.asarray(x))))

    for p, g in zip(params, grads):
        host = to_numpy(p.data).copy()
        num = central_diff(loss, p.data, h=h)
        np.testing.assert_array_equal(to_numpy(p.data), host)     # restored exactly
        np.testing.assert_allclose(g, num, atol=1e-7 * max(1, np.abs(num).max()))


@pytest.mark.parametrize("init,target", [("glorot", lambda n, m: 2 / (n + m)),
                                         ("he", lambda n, m: 2 / n)])
def test_init_variance_of_full_matrix(init, target):
    n_in, n_out = 64, 32
    samples = [TTLinear(n_in, n_out, 4, in_modes=(4, 4, 4), out_modes=(2, 4, 4), init=init,
                        dtype=np.float64, rng=s).weight.full() for s in range(200)]
    var = float(np.var(np.stack(samples)))
    assert var == pytest.approx(target(n_in, n_out), rel=0.1)


def test_structure_and_compression():
    layer = TTLinear(1024, 1024, 8, in_modes=(4, 8, 8, 4), out_modes=(4, 8, 8, 4), rng=0)
    assert layer.ranks == (1, 8, 8, 8, 1)
    assert sum(p.size for p in layer.cores) == 8448
    assert layer.compression == pytest.approx(1024 * 1024 / 8448)   # 124x
    assert layer.num_params == 8448 + 1024
    train_plan = layer.weight.matmul_plan(100, objective="train")
    assert layer.flops(100) == train_plan.flops + 100 * 1024
    layer.eval()
    assert layer.flops(100) == layer.weight.matmul_plan(100).flops + 100 * 1024
    layer.train()
    assert "compression=124.1x" in repr(layer)
    auto = TTLinear(784, 10, 4, rng=0)
    assert auto.weight.shape == (10, 784)
    assert auto.forward(np.ones((3, 784), np.float32)).shape == (3, 10)


def test_from_dense():
    rng = np.random.default_rng(0)
    u, v = rng.standard_normal((40, 3)), rng.standard_normal((3, 30))
    weight = (u @ v).astype(np.float64)
    bias = rng.standard_normal(40)
    layer = TTLinear.from_dense(weight, bias, eps=1e-10)
    assert layer.weight.shape == (40, 30)
    x = rng.standard_normal((5, 30))
    np.testing.assert_allclose(layer.forward(x), x @ weight.T + bias, atol=1e-9)
    coarse = TTLinear.from_dense(weight, None, eps=0.3)
    err = np.linalg.norm(coarse.weight.full() - weight) / np.linalg.norm(weight)
    assert err <= 0.3 and coarse.bias is None
    capped = TTLinear.from_dense(weight, max_rank=1)
    assert max(capped.ranks) == 1


def test_errors():
    layer = TTLinear(12, 6, 2, rng=0)
    with pytest.raises(ShapeError, match=r"TTLinear expects inputs of width 12, got 11"):
        layer.forward(np.ones((2, 11), np.float32))
    with pytest.raises(RuntimeError, match="backward\\(\\) called without a cached forward"):
        layer.backward(np.ones((2, 6), np.float32))
    layer.forward(np.ones((2, 12), np.float32))
    with pytest.raises(ShapeError, match=r"grad_out of shape \(2, 6\), got \(3, 6\)"):
        layer.backward(np.ones((3, 6), np.float32))
    with pytest.raises(ValueError, match="unknown init 'xavier'"):
        TTLinear(12, 6, 2, init="xavier")
    with pytest.raises(ValueError, match="in_features must be a positive integer, got 0"):
        TTLinear(0, 6, 2)
    with pytest.raises(TypeError, match="TTLinear dtype must be float32 or float64, got complex128"):
        TTLinear(12, 6, 2, dtype=np.complex128)
    with pytest.raises(TypeError, match="weight dtype must be float32 or float64, got complex128"):
        TTLinear.from_dense(np.ones((6, 12), np.complex128))
    with pytest.raises(TypeError, match="expects floating-point inputs, got dtype int64"):
        layer.forward(np.ones((2, 12), np.int64))
    with pytest.raises(ShapeError, match="bias must have shape"):
        TTLinear.from_dense(np.ones((6, 12)), np.ones(5))
    two = TTLinear(12, 6, 2, in_modes=(3, 4), out_modes=(2, 3), rng=0)
    three = TTLinear(12, 6, 3, in_modes=(3, 4), out_modes=(2, 3), rng=0)
    with pytest.raises(ShapeError, match=r"state_dict entry 'cores.0' has shape \(1, 2, 3, 3\), "
                                         r"but the parameter has shape \(1, 2, 3, 2\)"):
        two.load_state_dict(three.state_dict())


def test_state_dict_round_trip():
    a = TTLinear(12, 6, 2, rng=0)
    b = TTLinear(12, 6, 2, rng=1)
    b.load_state_dict(a.state_dict())
    x = np.random.default_rng(0).standard_normal((3, 12)).astype(np.float32)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    assert isinstance(a.weight, tt.TTMatrix)


def test_init_long_train_does_not_overflow():
    # d = 400 at rank 8: the product of the ranks (about 8^399) is beyond the float range, so
    # the per-core standard deviation has to be worked out in logs
    d = 400
    layer = TTLinear(2**d, 2**d, 8, in_modes=(2,) * d, out_modes=(2,) * d, bias=False,
                     dtype=np.float64, rng=0)
    r = layer.ranks
    assert r[0] == r[-1] == 1 and max(r) == 8 and len(r) == d + 1
    entries = np.concatenate([to_numpy(p.data).ravel() for p in layer.cores])
    assert np.all(np.isfinite(entries))
    # sigma^(2d) * prod(r) == target, i.e. log sigma^2 = (log target - sum log r) / d
    log_var = (np.log(2.0 / (2**d + 2**d)) - sum(np.log(v) for v in r[1:d])) / d
    np.testing.assert_allclose(entries.var(), np.exp(log_var), rtol=0.03)


@pytest.mark.parametrize("n_in,n_out,modes", [(64, 32, ((4, 4, 4), (2, 4, 4))),
                                              (13, 7, (None, None))])     # padded
def test_forward_output_owns_its_memory(n_in, n_out, modes):
    # the bias is added in place: the output must be a new array every call, never the
    # input, a workspace array or the previous call's output
    rng = np.random.default_rng(5)
    layer = TTLinear(n_in, n_out, 3, in_modes=modes[0], out_modes=modes[1], dtype=np.float64,
                     rng=0)
    layer.bias.data[...] = rng.standard_normal(n_out)
    x = rng.standard_normal((5, n_in))
    x0 = x.copy()
    y1 = layer.forward(x)
    y1_copy = y1.copy()
    y2 = layer.forward(x)
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(y1, y1_copy)
    np.testing.assert_array_equal(y1, y2)
    assert not np.shares_memory(y1, y2)
    W = layer.weight.full()
    np.testing.assert_allclose(y2, x @ W.T + layer.bias.data, atol=1e-12)


# ---- skipping the input gradient (a network's first layer) ---------------------------------
def _first_layer_cases():
    from tensortrain.nn import Linear  # noqa: PLC0415
    return [TTLinear(60, 12, 3, in_modes=(3, 4, 5), out_modes=(2, 2, 3), dtype=np.float64,
                     rng=0),
            TTLinear(1024, 1024, 2, in_modes=(4, 8, 8, 4), out_modes=(4, 8, 8, 4),
                     dtype=np.float64, rng=0),
            Linear(60, 12, dtype=np.float64, rng=0)]


@pytest.mark.parametrize("case", range(3))
def test_backward_without_input_grad_gives_the_same_parameter_gradients(case):
    layer = _first_layer_cases()[case]
    rng = np.random.default_rng(4)
    x = rng.standard_normal((7, layer.in_features))
    g = rng.standard_normal((7, layer.out_features))
    layer.forward(x)
    dx = layer.backward(g)
    full = [p.grad.copy() for p in layer.parameters()]
    layer.zero_grad()
    layer.forward(x)
    assert layer.backward(g, need_input_grad=False) is None
    for a, b in zip(full, (p.grad for p in layer.parameters()), strict=True):
        np.testing.assert_array_equal(a, b)
    assert dx.shape == x.shape
    with pytest.raises(RuntimeError, match="without a cached forward pass"):
        layer.backward(g, need_input_grad=False)      # the cache was consumed


def test_sequential_and_fit_skip_the_first_input_gradient(monkeypatch):
    from tensortrain.nn import Linear, ReLU, Sequential, fit  # noqa: PLC0415
    from tensortrain.nn.optim import SGD  # noqa: PLC0415
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 60))
    g = rng.standard_normal((6, 4))

    def model():
        return Sequential(TTLinear(60, 12, 3, in_modes=(3, 4, 5), out_modes=(2, 2, 3),
                                   dtype=np.float64, rng=0), ReLU(),
                          Linear(12, 4, dtype=np.float64, rng=1))

    a, b = model(), model()
    a.forward(x)
    dx = a.backward(g)
    b.forward(x)
    assert b.backward(g, need_input_grad=False) is None
    assert dx.shape == x.shape
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_allclose(q.grad, p.grad, rtol=1e-13, atol=1e-13)
    # a first module without the option still runs its backward (for its parameters)
    class Plain(Linear):
        def backward(self, grad_out):
            return super().backward(grad_out)

    c = Sequential(Plain(60, 4, dtype=np.float64, rng=1), ReLU())
    c.forward(x)
    assert c.backward(g, need_input_grad=False) is None
    assert c.layers[0].weight.grad is not None
    # modules without parameters in front of the first one with parameters are not run
    # backward, and the TT layer behind them is asked for no input gradient
    relu_calls = []
    real_relu = ReLU.backward
    monkeypatch.setattr(ReLU, "backward",
                        lambda self, go: relu_calls.append(1) or real_relu(self, go))
    e = Sequential(ReLU(), model())
    e.forward(x)
    assert e.backward(g, need_input_grad=False) is None
    assert len(relu_calls) == 1                          # only the ReLU inside model()
    assert e.layers[1].layers[0].__dict__["_input_grad"] is False
    ref = model()
    ref.forward(np.maximum(x, 0))
    ref.backward(g)
    for p, q in zip(ref.parameters(), e.parameters(), strict=True):
        np.testing.assert_allclose(q.grad, p.grad, rtol=1e-13, atol=1e-13)
    monkeypatch.setattr(ReLU, "backward", real_relu)
    # fit asks for no input gradient
    seen = []
    real = TTLinear.backward

    def spy(self, grad_out, need_input_grad=True):
        seen.append(need_input_grad)
        return real(self, grad_out, need_input_grad)

    monkeypatch.setattr(TTLinear, "backward", spy)
    net = model()
    y = rng.integers(0, 4, size=6)
    fit(net, SGD(net.parameters(), lr=0.1), x.astype(np.float64), y, epochs=1, batch_size=3,
        progress=False)
    assert seen == [False, False]


def test_subclasses_that_override_backward_without_the_flag_still_work():
    """Support for ``need_input_grad`` is read from the class's own ``backward``: a subclass
    with the plain ``backward(grad_out)`` is called without the keyword."""
    from tensortrain.nn import Linear, Sequential  # noqa: PLC0415

    class Plain(Linear):
        def backward(self, grad_out):
            return super().backward(grad_out)

    class PlainSequential(Sequential):
        def backward(self, grad_out):
            return super().backward(grad_out)

    rng = np.random.default_rng(6)
    x, g = rng.standard_normal((5, 16)), rng.standard_normal((5, 4))
    assert Linear(16, 4).skips_input_grad and not Plain(16, 4).skips_input_grad
    seq = Sequential(Plain(16, 4, dtype=np.float64, rng=0))
    seq.forward(x)
    assert seq.backward(g, need_input_grad=False) is None
    assert seq.layers[0].weight.grad is not None
    outer = PlainSequential(Linear(16, 4, dtype=np.float64, rng=0))
    assert not outer.skips_input_grad
    outer.forward(x)
    assert outer.backward(g).shape == x.shape


def test_a_layer_with_a_filled_workspace_pickles_and_copies():
    """The workspace is scratch memory: it pickles and copies as empty, and the copy computes
    the same results (a workspace keyed by array module once made pickling fail)."""
    import copy  # noqa: PLC0415
    import pickle  # noqa: PLC0415
    layer = TTLinear(1024, 1024, 4, in_modes=(4, 8, 8, 4), out_modes=(4, 8, 8, 4), rng=0)
    x = np.random.default_rng(0).standard_normal((100, 1024)).astype(np.float32)
    g = np.ones((100, 1024), np.float32)
    layer.forward(x)
    layer.backward(g)
    y = layer.forward(x)
    assert layer._workspace.nbytes > 0
    for other in (pickle.loads(pickle.dumps(layer)), copy.deepcopy(layer)):
        assert other._workspace.nbytes == 0
        np.testing.assert_array_equal(other.forward(x), y)
        other.backward(g)
        assert other.cores[0].grad is not None

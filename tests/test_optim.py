"""Optimizers against hand-written reference updates, gradient ownership, clipping, state,
schedules and option validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _helpers import to_numpy

from tensortrain.errors import ShapeError, TTError
from tensortrain.nn.layers import Linear
from tensortrain.nn.losses import softmax_cross_entropy
from tensortrain.nn.module import Parameter
from tensortrain.nn.optim import (
    SGD,
    Adam,
    AdamW,
    CosineLR,
    Optimizer,
    StepLR,
    grad_norm,
    make_optimizer,
)

SHAPES = [(3, 4), (5,)]


def _params(xp, seed=0):
    rng = np.random.default_rng(seed)
    return [Parameter(xp.asarray(rng.standard_normal(s))) for s in SHAPES]


def _grads(step, seed=100):
    rng = np.random.default_rng(seed + step)
    return [rng.standard_normal(s) for s in SHAPES]


def _run(opt, params, xp, steps=3):
    for t in range(steps):
        for p, g in zip(params, _grads(t), strict=True):
            p.grad = xp.asarray(g)
        opt.step()
    return [to_numpy(p.data) for p in params]


def _reference(rule, steps=3, **kw):
    """Apply ``rule(w, g, state, t, **kw) -> w`` to host copies of the same parameters."""
    ws = [to_numpy(p.data).copy() for p in _params(np)]
    states = [{} for _ in ws]
    for t in range(steps):
        for i, g in enumerate(_grads(t)):
            ws[i] = rule(ws[i], g, states[i], t + 1, **kw)
    return ws


def _sgd_ref(w, g, s, t, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
    g = g + weight_decay * w
    if momentum:
        s["buf"] = g.copy() if "buf" not in s else momentum * s["buf"] + g
        d = g + momentum * s["buf"] if nesterov else s["buf"]
    else:
        d = g
    return w - lr * d


def _adam_ref(w, g, s, t, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
              decoupled=False):
    b1, b2 = betas
    if weight_decay and not decoupled:
        g = g + weight_decay * w
    s["m"] = b1 * s.get("m", 0) + (1 - b1) * g
    s["v"] = b2 * s.get("v", 0) + (1 - b2) * g * g
    if decoupled:
        w = w * (1 - lr * weight_decay)
    mhat = s["m"] / (1 - b1 ** t)
    vhat = s["v"] / (1 - b2 ** t)
    return w - lr * mhat / (np.sqrt(vhat) + eps)


CASES = {
    "sgd": (SGD, dict(lr=0.1), _sgd_ref, dict(lr=0.1)),
    "sgd-momentum": (SGD, dict(lr=0.1, momentum=0.9), _sgd_ref, dict(lr=0.1, momentum=0.9)),
    "sgd-nesterov": (SGD, dict(lr=0.05, momentum=0.8, nesterov=True), _sgd_ref,
                     dict(lr=0.05, momentum=0.8, nesterov=True)),
    "sgd-wd": (SGD, dict(lr=0.1, momentum=0.5, weight_decay=0.01), _sgd_ref,
               dict(lr=0.1, momentum=0.5, weight_decay=0.01)),
    "adam": (Adam, dict(lr=0.01), _adam_ref, dict(lr=0.01)),
    "adam-l2": (Adam, dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1), _adam_ref,
                dict(lr=0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    "adamw": (AdamW, dict(lr=0.01), _adam_ref, dict(lr=0.01, weight_decay=1e-2, decoupled=True)),
    "adamw-wd": (AdamW, dict(lr=0.02, weight_decay=0.3), _adam_ref,
                 dict(lr=0.02, weight_decay=0.3, decoupled=True)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_updates_match_reference(xp, case):
    cls, opts, rule, ref_kw = CASES[case]
    params = _params(xp)
    got = _run(cls(params, **opts), params, xp)
    for g, r in zip(got, _reference(rule, **ref_kw), strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("clip", [None, 0.5])
def test_step_never_writes_into_grad_and_updates_in_place(xp, case, clip):
    cls, opts, _, _ = CASES[case]
    params = _params(xp)
    opt = cls(params, **opts, max_grad_norm=clip)
    data_ids = [id(p.data) for p in params]
    for t in range(2):
        grads = [xp.asarray(g) for g in _grads(t)]
        copies = [to_numpy(g).copy() for g in grads]
        for p, g in zip(params, grads, strict=True):
            p.grad = g
        opt.step()
        for p, g, c in zip(params, grads, copies, strict=True):
            assert p.grad is g
            np.testing.assert_array_equal(to_numpy(p.grad), c)
    assert [id(p.data) for p in params] == data_ids


def test_clipping_equals_update_with_scaled_gradient(xp):
    max_norm = 0.5
    grads = _grads(0)
    norm = math.sqrt(sum(float((g ** 2).sum()) for g in grads))
    assert norm > max_norm
    for cls, opts in [(SGD, dict(lr=0.1, momentum=0.9)), (Adam, dict(lr=0.01))]:
        clipped, plain = _params(xp), _params(xp)
        opt_c = cls(clipped, **opts, max_grad_norm=max_norm)
        opt_p = cls(plain, **opts)
        for p, q, g in zip(clipped, plain, grads, strict=True):
            p.grad = xp.asarray(g)
            q.grad = xp.asarray(g * (max_norm / norm))
        opt_c.step()
        opt_p.step()
        for p, q, g in zip(clipped, plain, grads, strict=True):
            np.testing.assert_allclose(to_numpy(p.data), to_numpy(q.data), rtol=1e-10)
            np.testing.assert_array_equal(to_numpy(p.grad), g)


def test_clipping_leaves_small_gradients_alone(xp):
    a, b = _params(xp), _params(xp)
    opt_a, opt_b = SGD(a, lr=0.1, max_grad_norm=1e6), SGD(b, lr=0.1)
    for p, q, g in zip(a, b, _grads(0), strict=True):
        p.grad, q.grad = xp.asarray(g), xp.asarray(g)
    opt_a.step()
    opt_b.step()
    for p, q in zip(a, b, strict=True):
        np.testing.assert_allclose(to_numpy(p.data), to_numpy(q.data), rtol=1e-14)


def test_grad_norm(xp):
    params = _params(xp)
    assert float(grad_norm(params)) == 0.0
    grads = _grads(0)
    for p, g in zip(params, grads, strict=True):
        p.grad = xp.asarray(g)
    n = grad_norm(params)
    assert n.ndim == 0 and isinstance(n, type(params[0].data))
    assert float(n) == pytest.approx(np.linalg.norm(np.concatenate([g.ravel() for g in grads])))
    params[1].grad = None
    assert float(grad_norm(params)) == pytest.approx(np.linalg.norm(grads[0]))


def test_parameters_without_grad_are_skipped(xp):
    params = _params(xp)
    before = to_numpy(params[1].data).copy()
    opt = Adam(params, lr=0.1)
    params[0].grad = xp.asarray(_grads(0)[0])
    opt.step()
    np.testing.assert_array_equal(to_numpy(params[1].data), before)
    assert list(opt.state) == [0] and opt.state[0]["step"] == 1
    opt.zero_grad()
    assert all(p.grad is None for p in params)
    opt.step()  # nothing to do
    assert opt.state[0]["step"] == 1


def test_float32_parameters_stay_float32(xp):
    p = Parameter(xp.ones(4, dtype=np.float32))
    for cls in (SGD, Adam, AdamW):
        opt = cls([p], lr=0.1, max_grad_norm=0.5, weight_decay=0.1)
        p.grad = xp.ones(4, dtype=np.float32)
        opt.step()
        assert p.data.dtype == np.float32


def test_state_dict_round_trip(xp):
    a = _params(xp)
    opt_a = Adam(a, lr=0.05, weight_decay=0.01)
    _run(opt_a, a, xp, steps=2)
    sd = opt_a.state_dict()
    assert sd["optimizer"] == "Adam" and sd["options"]["lr"] == 0.05
    assert isinstance(sd["state"][0]["exp_avg"], np.ndarray)
    b = [Parameter(xp.asarray(to_numpy(p.data).copy())) for p in a]
    opt_b = Adam(b, lr=1.0).load_state_dict(sd)
    assert opt_b.lr == 0.05 and opt_b.weight_decay == 0.01
    assert type(opt_b.state[0]["exp_avg"]) is type(a[0].data)
    for params, opt in ((a, opt_a), (b, opt_b)):
        for p, g in zip(params, _grads(7), strict=True):
            p.grad = xp.asarray(g)
        opt.step()
    for p, q in zip(a, b, strict=True):
        np.testing.assert_array_equal(to_numpy(p.data), to_numpy(q.data))


def test_load_state_dict_errors():
    params = _params(np)
    opt = SGD(params, lr=0.1, momentum=0.9)
    _run(opt, params, np, steps=1)
    sd = opt.state_dict()
    with pytest.raises(TTError, match="state_dict is for SGD, not Adam"):
        Adam(params).load_state_dict(sd)
    bad = {"optimizer": "SGD", "options": {}, "state": {0: {"momentum_buffer": np.zeros(3)}}}
    with pytest.raises(ShapeError, match=r"state\[0\]\['momentum_buffer'\] has shape \(3,\), "
                                         r"but parameter 0 has shape \(3, 4\)"):
        SGD(params, lr=0.1).load_state_dict(bad)
    with pytest.raises(KeyError, match="state for parameter 5, but SGD has 2 parameters"):
        SGD(params, lr=0.1).load_state_dict(dict(sd, state={5: {}}))
    with pytest.raises(KeyError, match=r"unknown SGD options \['betas'\]"):
        SGD(params, lr=0.1).load_state_dict(dict(sd, options={"betas": (0.9, 0.9)}))
    with pytest.raises(TypeError, match="expects a dict from state_dict"):
        SGD(params, lr=0.1).load_state_dict({"state": {}})


def test_minimizes_a_quadratic(xp):
    target = np.array([1.0, -2.0, 3.0, 0.5])
    scale = np.array([1.0, 4.0, 0.5, 2.0])
    for cls, opts, steps in [(SGD, dict(lr=0.1), 300), (SGD, dict(lr=0.05, momentum=0.9), 300),
                             (SGD, dict(lr=0.05, momentum=0.9, nesterov=True), 300),
                             (Adam, dict(lr=0.1), 500), (AdamW, dict(lr=0.1, weight_decay=0.0),
                                                         500)]:
        p = Parameter(xp.zeros(4))
        opt = cls([p], **opts)
        t, s = xp.asarray(target), xp.asarray(scale)
        for _ in range(steps):
            opt.zero_grad()
            p.grad = s * (p.data - t)   # gradient of 0.5 * sum(s * (p - t)^2)
            opt.step()
        np.testing.assert_allclose(to_numpy(p.data), target, atol=1e-3, err_msg=cls.__name__)


def test_trains_a_small_classifier():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 5)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64)
    model = Linear(5, 2, rng=0)
    opt = make_optimizer("adam", model, lr=0.05)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss, d = softmax_cross_entropy(model(x), y)
        model.backward(d)
        opt.step()
        losses.append(float(loss))
    assert losses[-1] < 0.5 * losses[0]


# ---- options -----------------------------------------------------------------------------
def test_unknown_option_names_the_valid_ones():
    params = _params(np)
    with pytest.raises(TypeError, match=r"^unknown option 'momentun' for SGD; valid options: lr, "
                                        "momentum, nesterov, weight_decay, max_grad_norm$"):
        SGD(params, lr=0.1, momentun=0.9)
    with pytest.raises(TypeError, match="unknown option 'momentum' for Adam; valid options: lr, "
                                        "betas, eps, weight_decay, max_grad_norm"):
        Adam(params, momentum=0.9)
    with pytest.raises(TypeError, match="unknown option 'nesterov' for AdamW"):
        make_optimizer("adamw", params, nesterov=True)


@pytest.mark.parametrize("cls, kwargs, exc, match", [
    (SGD, dict(lr=0.0), TTError, "SGD option lr must be a finite number > 0, got 0.0"),
    (SGD, dict(lr=-0.1), TTError, "SGD option lr must be a finite number > 0, got -0.1"),
    (SGD, dict(lr=float("nan")), TTError, "SGD option lr must be a finite number > 0, got nan"),
    (SGD, dict(lr="0.1"), TypeError, "SGD option lr must be a real number, got str"),
    (SGD, dict(), TypeError, r"SGD requires a learning rate: SGD\(params, lr=...\)"),
    (SGD, dict(lr=0.1, momentum=1.0), TTError,
     r"SGD option momentum must be in \[0, 1\), got 1.0"),
    (SGD, dict(lr=0.1, momentum=-0.5), TTError,
     r"SGD option momentum must be in \[0, 1\), got -0.5"),
    (SGD, dict(lr=0.1, nesterov=True), TTError,
     "SGD option nesterov=True needs momentum > 0, got momentum=0.0"),
    (SGD, dict(lr=0.1, nesterov="yes"), TypeError, "SGD option nesterov must be True or False"),
    (SGD, dict(lr=0.1, weight_decay=-1e-4), TTError,
     "SGD option weight_decay must be a finite number >= 0, got -0.0001"),
    (SGD, dict(lr=0.1, max_grad_norm=0), TTError,
     "SGD option max_grad_norm must be None or a finite number > 0, got 0"),
    (Adam, dict(betas=(0.9, 1.0)), TTError, r"Adam option betas\[1\] must be in \[0, 1\), "
                                               r"got 1.0"),
    (Adam, dict(betas=(-0.1, 0.9)), TTError, r"Adam option betas\[0\] must be in \[0, 1\)"),
    (Adam, dict(betas=0.9), TypeError, r"Adam option betas must be a pair \(beta1, beta2\)"),
    (Adam, dict(eps=-1e-8), TTError, "Adam option eps must be a finite number >= 0, got -1e-08"),
    (AdamW, dict(weight_decay=-0.01), TTError,
     "AdamW option weight_decay must be a finite number >= 0, got -0.01"),
])
def test_bad_options(cls, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        cls(_params(np), **kwargs)


def test_parameter_list_validation():
    with pytest.raises(TTError, match="SGD got an empty parameter list"):
        SGD([], lr=0.1)
    with pytest.raises(TypeError, match="Adam expects Parameters, got ndarray at position 0"):
        Adam([np.zeros(3)])
    p = Parameter(np.zeros(3))
    with pytest.raises(TTError, match=r"Adam got the same Parameter twice \(position 1\)"):
        Adam([p, p])
    with pytest.raises(TypeError, match="expects an iterable of Parameters"):
        Adam(3)
    assert len(Adam(Linear(3, 2, rng=0)).params) == 2   # a Module is accepted


def test_defaults_options_and_lr_setter():
    params = _params(np)
    adam = Adam(params)
    assert adam.options == {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8,
                            "weight_decay": 0.0, "max_grad_norm": None}
    assert AdamW(params).weight_decay == 1e-2
    sgd = SGD(params, 0.3)
    assert sgd.lr == 0.3 and sgd.momentum == 0.0 and sgd.nesterov is False
    assert repr(sgd) == ("SGD(2 parameters, lr=0.3, momentum=0.0, nesterov=False, "
                         "weight_decay=0.0, max_grad_norm=None)")
    sgd.lr = 0.0   # a schedule may anneal to zero
    with pytest.raises(TTError, match="SGD option lr must be a finite number >= 0, got -1"):
        sgd.lr = -1
    assert isinstance(sgd, Optimizer)


def test_make_optimizer():
    params = _params(np)
    assert type(make_optimizer("sgd", params, lr=0.1, momentum=0.9)) is SGD
    assert type(make_optimizer(" Adam ", params)) is Adam
    assert type(make_optimizer("ADAMW", params, lr=0.01)).__name__ == "AdamW"
    with pytest.raises(TTError, match="unknown optimizer 'rmsprop'; expected one of 'sgd', "
                                         "'adam', 'adamw'"):
        make_optimizer("rmsprop", params)
    with pytest.raises(TypeError, match="optimizer name must be a string"):
        make_optimizer(None, params)


# ---- schedules ---------------------------------------------------------------------------
def test_step_lr_sequence():
    opt = SGD(_params(np), lr=1.0)
    sched = StepLR(opt, step_size=3, gamma=0.5)
    assert sched.get_lr() == 1.0
    lrs = [sched.step() for _ in range(7)]
    assert lrs == [1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]
    assert opt.lr == 0.25


def test_cosine_lr_sequence():
    opt = Adam(_params(np), lr=0.1)
    sched = CosineLR(opt, t_max=4, eta_min=0.01)
    lrs = [sched.step() for _ in range(6)]
    expected = [0.01 + 0.09 * (1 + math.cos(math.pi * t / 4)) / 2 for t in (1, 2, 3, 4, 4, 4)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-12)
    assert lrs[1] == pytest.approx(0.055) and lrs[3] == pytest.approx(0.01)
    assert opt.lr == pytest.approx(0.01)
    sched0 = CosineLR(SGD(_params(np), lr=1.0), t_max=2)
    assert [sched0.step() for _ in range(2)] == [pytest.approx(0.5), pytest.approx(0.0)]


def test_schedule_state_round_trip():
    opt = SGD(_params(np), lr=1.0)
    sched = StepLR(opt, step_size=2, gamma=0.1)
    for _ in range(3):
        sched.step()
    opt2 = SGD(_params(np), lr=1.0)
    sched2 = StepLR(opt2, step_size=2, gamma=0.1).load_state_dict(sched.state_dict())
    assert opt2.lr == pytest.approx(opt.lr) and sched2.step() == pytest.approx(sched.step())


@pytest.mark.parametrize("make, exc, match", [
    (lambda o: StepLR(o, step_size=0), TTError, "StepLR step_size must be a positive integer"),
    (lambda o: StepLR(o, step_size=1.5), TypeError, "StepLR step_size must be a positive integer"),
    (lambda o: StepLR(o, step_size=2, gamma=0), TTError, "StepLR gamma must be a finite "
                                                            "number > 0, got 0.0"),
    (lambda o: CosineLR(o, t_max=0), TTError, "CosineLR t_max must be a positive integer"),
    (lambda o: CosineLR(o, t_max=5, eta_min=-1), TTError,
     "CosineLR eta_min must be a finite number >= 0, got -1"),
    (lambda o: StepLR("opt", 2), TypeError, "StepLR expects an Optimizer, got str"),
])
def test_schedule_validation(make, exc, match):
    with pytest.raises(exc, match=match):
        make(SGD(_params(np), lr=0.1))

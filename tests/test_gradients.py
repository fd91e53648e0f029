"""Gradients against central finite differences in float64 (the independent oracle)."""

from __future__ import annotations

import numpy as np
import pytest
from _helpers import central_diff, to_numpy

import tensortrain as tt
from tensortrain import gradients as G
from tensortrain.errors import ShapeError

H = 1e-6


def _fd(f, arrays, k):
    """Central differences of the scalar f(arrays) with respect to arrays[k]."""
    arrays = [a.copy() for a in arrays]
    return central_diff(lambda: f(arrays), arrays[k], h=H)


def _close(a, b, tol=1e-7):
    a, b = to_numpy(a), to_numpy(b)
    scale = max(1.0, float(np.abs(b).max()))
    assert np.abs(a - b).max() <= tol * scale, (np.abs(a - b).max(), scale)


CASES = [
    # row modes, col modes, ranks, batch, logical shape (None: unpadded)
    ((3,), (4,), 1, 2, None),                    # d = 1
    ((2, 3), (3, 2), 2, 4, None),
    ((2, 3, 2), (2, 2, 3), 3, 3, None),
    ((1, 2, 1), (2, 1, 3), 2, 2, None),          # modes of size 1
    ((2, 3, 2), (2, 2, 3), 3, 3, (10, 11)),      # padded rows and columns
    ((2, 2, 2, 2), (3, 1, 2, 4), [1, 2, 4, 3, 1], 5, (13, 20)),
    ((4, 2), (2, 4), 6, 1, None),                # ranks above the useful maximum (capped)
]


@pytest.mark.parametrize("objective", ["flops", "train", "train_no_input_grad"])
@pytest.mark.parametrize("rm,cm,ranks,batch,shape", CASES)
def test_matmul_vjp_matches_finite_differences(xp, rm, cm, ranks, batch, shape, objective):
    rng = np.random.default_rng(7)
    W = tt.random_matrix(rm, cm, ranks, rng=1)
    if shape is not None:
        W = tt.TTMatrix(W.cores, shape)
    M, N = W.shape
    x = rng.standard_normal((batch, N))
    dy = rng.standard_normal((batch, M))
    Wx = W.to(xp)
    y, dx, dcores = G.matmul_vjp(Wx, xp.asarray(x), xp.asarray(dy), objective)
    _close(y, x @ W.full().T, 1e-12)

    def loss(arrays):
        cores, xx = arrays[:-1], arrays[-1]
        return float(np.sum(dy * (xx @ tt.TTMatrix(cores, W.shape).full().T)))

    arrays = [c.copy() for c in W.cores] + [x]
    _close(dx, _fd(loss, arrays, len(arrays) - 1))
    for k in range(W.d):
        assert dcores[k].shape == W.cores[k].shape
        _close(dcores[k], _fd(loss, arrays, k))


def test_matmul_backward_uses_every_plan_shape():
    """Plans with merged blocks, left and right steps all appear in the cases above."""
    sides = set()
    for rm, cm, ranks, batch, _ in CASES:
        W = tt.random_matrix(rm, cm, ranks, rng=1)
        _, ctx = G.matmul_forward(W, np.ones((batch, W.shape[1])), objective="flops")
        sides |= {rec[1] for rec in ctx.record}
        sides |= {"merged" for rec in ctx.record if rec[0].hi > rec[0].lo}
    assert {"first", "left", "merged"} <= sides or {"first", "right", "merged"} <= sides


def test_matmul_backward_without_input_grad():
    W = tt.random_matrix((2, 3), (3, 2), 2, rng=1)
    _, ctx = G.matmul_forward(W, np.ones((2, 6)))
    dx, dcores = G.matmul_backward(ctx, np.ones((2, 6)), need_input_grad=False)
    assert dx is None and len(dcores) == 2


def test_matmul_forward_errors():
    W = tt.random_matrix((2, 3), (3, 2), 2, rng=1)
    with pytest.raises(ShapeError, match=r"expected x of shape \(batch, 6\), got \(2, 5\)"):
        G.matmul_forward(W, np.ones((2, 5)))
    with pytest.raises(TypeError, match="matmul_forward needs a TTMatrix"):
        G.matmul_forward(np.ones((6, 6)), np.ones((2, 6)))
    _, ctx = G.matmul_forward(W, np.ones((2, 6)))
    with pytest.raises(ShapeError, match=r"expected dy of shape \(2, 6\), got \(3, 6\)"):
        G.matmul_backward(ctx, np.ones((3, 6)))
    Wc = W.astype(np.complex128)
    with pytest.raises(NotImplementedError, match="real dtypes only"):
        G.matmul_forward(Wc, np.ones((2, 6)))


@pytest.mark.parametrize("modes,ra,rb", [((2, 3, 2), 2, 3), ((4,), 1, 1), ((1, 3, 1, 2), 2, 2)])
def test_dot_and_norm_grad(xp, modes, ra, rb):
    a = tt.random_tensor(modes, ra, rng=2)
    b = tt.random_tensor(modes, rb, rng=3)
    value, da, db = G.dot_grad(a.to(xp), b.to(xp))
    assert value == pytest.approx(tt.dot(a, b), rel=1e-12)
    d = a.d

    def f(arrays):
        return tt.dot(tt.TTTensor(arrays[:d]), tt.TTTensor(arrays[d:]))

    arrays = [c.copy() for c in a.cores + b.cores]
    for k in range(d):
        _close(da[k], _fd(f, arrays, k))
        _close(db[k], _fd(f, arrays, d + k))
    nrm, dn = G.norm_grad(a.to(xp))
    assert nrm == pytest.approx(a.norm(), rel=1e-12)

    def g(arrays):
        return tt.TTTensor(arrays).norm()

    arrays = [c.copy() for c in a.cores]
    for k in range(d):
        _close(dn[k], _fd(g, arrays, k))


def test_dot_grad_of_matrices():
    a = tt.random_matrix((2, 3), (2, 2), 2, rng=4)
    b = tt.random_matrix((2, 3), (2, 2), 3, rng=5)
    value, da, db = G.dot_grad(a, b)
    assert value == pytest.approx(tt.dot(a, b), rel=1e-12)

    def f(arrays):
        return tt.dot(tt.TTMatrix(arrays[:2]), tt.TTMatrix(arrays[2:]))

    arrays = [c.copy() for c in a.cores + b.cores]
    for k in range(2):
        _close(da[k], _fd(f, arrays, k))
        _close(db[k], _fd(f, arrays, 2 + k))


def test_grad_errors():
    a = tt.random_tensor((2, 3), 2, rng=0)
    with pytest.raises(TypeError, match="dot_grad needs two TTTensors"):
        G.dot_grad(a, tt.random_matrix((2,), (3,), 1, rng=0))
    with pytest.raises(ZeroDivisionError, match="not differentiable at the zero tensor"):
        G.norm_grad(tt.zeros((2, 3)))
    with pytest.raises(NotImplementedError, match="real dtypes only"):
        G.dot_grad(a.astype(np.complex128), a.astype(np.complex128))


@pytest.mark.parametrize("batched", [False, True])
def test_bilinear_grad(xp, batched):
    rng = np.random.default_rng(9)
    W = tt.TTMatrix(tt.random_matrix((2, 3), (3, 2), 2, rng=6).cores, (5, 6))
    shape_x, shape_y = ((3, 5), (3, 6)) if batched else ((5,), (6,))
    x, y = rng.standard_normal(shape_x), rng.standard_normal(shape_y)
    value, dx, dcores, dy = G.bilinear_grad(xp.asarray(x), W.to(xp), xp.asarray(y))
    Wd = W.full()
    expected = float(np.sum(x * (y @ Wd.T))) if batched else float(x @ Wd @ y)
    assert value == pytest.approx(expected, rel=1e-12)

    def f(arrays):
        cores, xx, yy = arrays[:2], arrays[2], arrays[3]
        Wf = tt.TTMatrix(cores, (5, 6)).full()
        return float(np.sum(xx * (yy @ Wf.T))) if batched else float(xx @ Wf @ yy)

    arrays = [c.copy() for c in W.cores] + [x, y]
    _close(dx, _fd(f, arrays, 2))
    _close(dy, _fd(f, arrays, 3))
    for k in range(2):
        _close(dcores[k], _fd(f, arrays, k))

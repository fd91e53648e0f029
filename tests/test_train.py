"""tensortrain.nn.train (fit / evaluate / predict / History), model files, and the
``train-mnist`` command line."""

from __future__ import annotations

import gzip
import io
import json
import re
import struct
import sys
import urllib.error
import urllib.request

import numpy as np
import pytest

from tensortrain.__main__ import main
from tensortrain.datasets import load_mnist, preprocess
from tensortrain.errors import ShapeError, TTError, TTFileError
from tensortrain.nn import optim
from tensortrain.nn.layers import Linear, ReLU
from tensortrain.nn.mnist_example import mnist_model_config, train_mnist
from tensortrain.nn.module import Module, Parameter, Sequential
from tensortrain.nn.serialization import build_model, load_model, read_model_config, save_model
from tensortrain.nn.train import History, evaluate, fit, format_epoch, predict


# ---- stand-ins: the loop must not depend on the real layers, losses and optimizers ----------
class Affine(Module):
    def __init__(self, n_in, n_out, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.weight = Parameter(rng.normal(0, 0.1, (n_out, n_in)))
        self.bias = Parameter(np.zeros(n_out))
        self.modes_seen = []

    def forward(self, x):
        self.modes_seen.append(self.training)
        self._cache = x
        return x @ self.weight.data.T + self.bias.data

    def backward(self, g):
        x = self._take_cache()
        self.weight.accumulate(g.T @ x)
        self.bias.accumulate(g.sum(axis=0))
        return g @ self.weight.data


class PlainSGD:
    def __init__(self, params, lr):
        self.params, self.lr, self.steps = list(params), lr, 0

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        self.steps += 1
        for p in self.params:
            p.data -= self.lr * p.grad


class CountingScheduler:
    def __init__(self, opt):
        self.opt, self.calls = opt, 0

    def step(self):
        self.calls += 1
        self.opt.lr *= 0.5


def ce(logits, labels):
    z = logits - logits.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    b = len(labels)
    g = np.exp(logp)
    g[np.arange(b), labels] -= 1
    return np.asarray(-logp[np.arange(b), labels].mean()), g / b


def blobs(n=300, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    y = rng.integers(0, 3, n)
    return centers[y] + rng.normal(0, 0.5, (n, 2)), y


# ---- fit ------------------------------------------------------------------------------------
def test_fit_separable_problem_with_stand_ins():
    x, y = blobs(300)
    xv, yv = blobs(90, seed=1)
    model = Affine(2, 3)
    opt = PlainSGD(model.parameters(), lr=0.5)
    sched = CountingScheduler(opt)
    seen = []
    hist = fit(model, opt, x, y, epochs=8, batch_size=32, loss=ce, val=(xv, yv),
               scheduler=sched, rng=0, progress=False,
               callbacks=[lambda e, h: seen.append((e, h.epochs))])
    assert isinstance(hist, History) and hist.epochs == len(hist) == 8
    for key in ("loss", "acc", "val_loss", "val_acc", "epoch_time", "lr"):
        assert len(getattr(hist, key)) == 8
    assert hist.acc[-1] > 0.97 and hist.val_acc[-1] > 0.97
    assert hist.loss[-1] < hist.loss[0]
    assert hist.lr == [0.5 * 0.5 ** k for k in range(8)] and sched.calls == 8
    assert opt.steps == 8 * 10  # ceil(300 / 32) batches per epoch, the last one smaller
    assert all(t > 0 for t in hist.epoch_time)
    assert seen == [(e, e) for e in range(1, 9)]
    d = hist.to_dict()
    assert json.loads(json.dumps(d)) == d and set(d) == {"loss", "acc", "val_loss", "val_acc",
                                                         "epoch_time", "lr"}
    assert all(isinstance(v, float) for v in d["loss"] + d["acc"])
    assert re.match(r"epoch 8/8  loss \d\.\d{4}  acc \d\.\d{4}  val_loss .* lr .* time ",
                    format_epoch(hist, 8, 8))
    # the evaluation after each epoch ran in eval mode; training batches in train mode
    assert False in model.modes_seen and model.modes_seen[0] is True
    assert evaluate(model, xv, yv, loss=ce)[1] == pytest.approx(hist.val_acc[-1])


def test_fit_is_reproducible_and_shuffles_with_the_rng():
    x, y = blobs(120)
    runs = []
    for seed in (3, 3, 4):
        model = Affine(2, 3)
        hist = fit(model, PlainSGD(model.parameters(), 0.1), x, y, epochs=2, batch_size=16,
                   loss=ce, rng=np.random.default_rng(seed), progress=False)
        runs.append((hist.loss, model.weight.data.copy()))
    assert runs[0][0] == runs[1][0] and np.array_equal(runs[0][1], runs[1][1])
    assert not np.array_equal(runs[0][1], runs[2][1])


def test_callback_returning_true_stops_early_and_no_val():
    x, y = blobs(60)
    model = Affine(2, 3)
    hist = fit(model, PlainSGD(model.parameters(), 0.1), x, y, epochs=10, loss=ce,
               progress=False, callbacks=[lambda e, h: e == 3])
    assert hist.epochs == 3 and hist.val_loss == [] and hist.val_acc == []
    assert "val_loss" not in format_epoch(hist)


def test_fit_without_accuracy_for_regression_targets():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3))
    t = x @ np.array([[1.0], [-2.0], [0.5]])

    def mse(pred, target):
        d = pred - target
        return np.asarray((d ** 2).mean()), 2 * d / d.size

    model = Affine(3, 1)
    hist = fit(model, PlainSGD(model.parameters(), 0.1), x, t, epochs=30, batch_size=16,
               loss=mse, val=(x, t), progress=False)
    assert hist.acc == [None] * 30 and hist.val_acc == [None] * 30
    assert hist.loss[-1] < 1e-3 * hist.loss[0]
    assert evaluate(model, x, t, loss=mse)[1] is None
    assert "acc -" in format_epoch(hist)


def test_nan_loss_raises_floating_point_error_and_restores_parameters():
    x, y = blobs(50)
    model = Affine(2, 3)
    opt = PlainSGD(model.parameters(), 0.1)
    calls = {"n": 0}

    def poisoned(logits, labels):
        calls["n"] += 1
        loss, g = ce(logits, labels)
        if calls["n"] > 4:  # epoch 3 (two batches per epoch) diverges
            return np.asarray(np.nan), g * np.nan
        return loss, g

    before = {}

    def remember(epoch, hist):
        before["w"] = model.weight.data.copy()

    with pytest.raises(FloatingPointError,
                       match=r"training diverged at epoch 3: loss is nan; lower the learning "
                             r"rate") as info:
        fit(model, opt, x, y, epochs=5, batch_size=25, loss=poisoned, progress=False,
            callbacks=[remember])
    assert info.value.history.epochs == 2
    assert np.array_equal(model.weight.data, before["w"])  # restored to the start of epoch 3
    assert np.isfinite(model.weight.data).all()


def test_inf_loss_raises_too():
    x, y = blobs(20)
    model = Affine(2, 3)
    with pytest.raises(FloatingPointError, match="epoch 1: loss is inf"):
        fit(model, PlainSGD(model.parameters(), 0.1), x, y, epochs=2, progress=False,
            loss=lambda o, t: (np.asarray(np.inf), np.zeros_like(o)),
            restore_on_divergence=False)


def test_fit_argument_errors():
    x, y = blobs(20)
    model = Affine(2, 3)
    opt = PlainSGD(model.parameters(), 0.1)
    with pytest.raises(TTError, match="batch_size must be a positive integer, got 0"):
        fit(model, opt, x, y, epochs=1, batch_size=0, loss=ce)
    with pytest.raises(TypeError, match="batch_size must be a positive integer, got float"):
        fit(model, opt, x, y, epochs=1, batch_size=2.0, loss=ce)
    with pytest.raises(ShapeError, match="different lengths"):
        fit(model, opt, x, y[:5], epochs=1, loss=ce)
    # names that exist in tensortrain.nn.losses but are not losses are refused too
    for name in ("hinge", "accuracy", "ShapeError", "check_input", "_check_logits"):
        with pytest.raises(TTError, match="unknown loss"):
            fit(model, opt, x, y, epochs=1, loss=name)
    with pytest.raises(TTError, match="epochs"):
        fit(model, opt, x, y, epochs=-1, loss=ce)
    with pytest.raises(TypeError, match="Module"):
        fit(lambda v: v, opt, x, y, epochs=1, loss=ce)
    with pytest.raises(TypeError, match="val"):
        fit(model, opt, x, y, epochs=1, loss=ce, val=x)
    assert fit(model, opt, x, y, epochs=0, loss=ce).epochs == 0


def test_progress_bar_goes_to_stderr(capsys):
    x, y = blobs(40)
    model = Affine(2, 3)
    fit(model, PlainSGD(model.parameters(), 0.1), x, y, epochs=1, batch_size=10, loss=ce,
        progress=True)
    captured = capsys.readouterr()
    assert captured.out == "" and "epoch 1/1" in captured.err


# ---- evaluate / predict ---------------------------------------------------------------------
def test_evaluate_uses_eval_mode_and_restores_each_previous_mode():
    x, y = blobs(30)
    inner = Affine(2, 3)
    model = Sequential(inner)
    model.train()
    inner.training = False  # a mixed state must come back exactly
    inner.modes_seen.clear()
    loss, acc = evaluate(model, x, y, batch_size=7, loss=ce)
    assert isinstance(loss, float) and isinstance(acc, float) and 0 <= acc <= 1
    assert inner.modes_seen == [False] * 5
    assert model.training is True and inner.training is False
    assert inner._cache is None  # no forward cache left behind
    ref_loss, _ = ce(x @ inner.weight.data.T + inner.bias.data, y)
    assert loss == pytest.approx(float(ref_loss))
    model.eval()
    evaluate(model, x, y, loss=ce)
    assert model.training is False


def test_predict_batches_and_restores_mode():
    x, _ = blobs(25)
    model = Affine(2, 3)
    model.train()
    out = predict(model, x, batch_size=4)
    np.testing.assert_allclose(out, x @ model.weight.data.T + model.bias.data)
    assert model.training is True and model.modes_seen[-1] is False
    with pytest.raises(TTError, match="batch_size"):
        predict(model, x, batch_size=0)


# ---- History.plot ---------------------------------------------------------------------------
def _history():
    return History(loss=[1.0, 0.5], acc=[0.6, 0.8], val_loss=[0.9, 0.6], val_acc=[0.7, 0.75],
                   epoch_time=[0.1, 0.1], lr=[1e-3, 1e-3])


def test_history_plot_writes_an_image(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "curves.png"
    assert _history().plot(path) == path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_history_plot_without_matplotlib_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"'plot' extra"):
        _history().plot(tmp_path / "x.png")


# ---- the real layers, losses and optimizers -------------------------------------------------
def test_fit_with_real_modules():
    x, y = blobs(300)
    model = Sequential(Linear(2, 16, rng=0, dtype=np.float64), ReLU(),
                       Linear(16, 3, rng=1, dtype=np.float64))
    opt = optim.make_optimizer("adam", model.parameters(), lr=0.05)
    hist = fit(model, opt, x, y, epochs=10, batch_size=50, val=blobs(90, seed=1),
               scheduler=optim.CosineLR(opt, t_max=10), rng=0, progress=False)
    assert hist.val_acc[-1] > 0.97
    assert hist.lr[0] == pytest.approx(0.05) and hist.lr[-1] < 0.05
    loss, acc = evaluate(model, x, y.astype(np.uint8))  # uint8 labels are fine
    assert acc > 0.97 and loss < 0.2


# ---- model files ----------------------------------------------------------------------------
def test_save_and_load_model_give_identical_predictions(tmp_path):
    x = np.random.default_rng(0).random((6, 1024), dtype=np.float32)
    for kind in ("tt", "dense", "mr"):
        config = mnist_model_config(kind, modes=(4, 8, 8, 4), rank=3, matrix_rank=5)
        model = build_model(config, rng=7)
        path = tmp_path / f"{kind}.npz"
        save_model(path, model, config)
        again = load_model(path)
        assert np.array_equal(predict(again, x), predict(model, x))
        assert read_model_config(path)["meta"]["kind"] == kind
        with np.load(path, allow_pickle=False) as z:  # plain arrays and a JSON string
            assert all(z[k].dtype != object for k in z.files)
    with pytest.raises(TTError, match="does not describe"):
        save_model(tmp_path / "bad.npz", model, mnist_model_config("dense"))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(TTFileError):
        load_model(tmp_path / "junk.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    with pytest.raises(TTFileError, match="not a tensortrain model"):
        load_model(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "absent.npz")


# ---- the command line -----------------------------------------------------------------------
def _idx(arr):
    head = struct.pack(">HBB", 0, 8, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return gzip.compress(head + arr.tobytes())


def _run(argv, capsys):
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_cli_train_mnist_save_and_reload(tmp_path, capsys):
    path = tmp_path / "model.npz"
    rc, out, err = _run(["train-mnist", "--epochs", "1", "--limit", "700", "--val", "200",
                         "--rank", "4", "--no-progress", "--save", str(path)], capsys)
    assert rc == 0, err
    assert re.search(r"^epoch 1/1  loss \d\.\d{4}  acc \d\.\d{4}  val_loss", out, re.M)
    assert re.search(r"^final validation accuracy: 0\.\d{4}$", out, re.M)
    assert "first layer: 3,200 parameters (2,176 weights + 1,024 biases); compression 481.9x" \
        in out
    assert re.search(r"^mean time per epoch: \d+\.\d{3} s$", out, re.M)
    assert "test accuracy" not in out and path.is_file()
    x = preprocess(load_mnist().train_images[:50])
    assert predict(load_model(path), x).shape == (50, 10)

    # the trained model itself against its reloaded copy
    res = train_mnist(epochs=1, limit=400, val=100, rank=2, progress=False,
                      save=tmp_path / "m2.npz", out=io.StringIO())
    assert np.array_equal(predict(res["model"], x), predict(load_model(tmp_path / "m2.npz"), x))


def test_cli_data_dir_with_test_files(tmp_path, capsys):
    ds = load_mnist()
    for prefix, sl in (("train", slice(0, 300)), ("t10k", slice(300, 400))):
        (tmp_path / f"{prefix}-images-idx3-ubyte.gz").write_bytes(_idx(ds.train_images[sl]))
        (tmp_path / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(_idx(ds.train_labels[sl]))
    rc, out, err = _run(["train-mnist", "--data", str(tmp_path), "--epochs", "2", "--val", "50",
                         "--rank", "2", "--no-progress", "--optimizer", "sgd", "--lr", "0.1"],
                        capsys)
    assert rc == 0, err
    assert "250 training, 50 validation, 100 test digits" in out
    assert re.search(r"^test accuracy: 0\.\d{4}$", out, re.M)
    assert len(re.findall(r"^epoch \d/2 ", out, re.M)) == 2


def test_cli_dense_and_matrix_rank_baselines(capsys):
    rc, out, err = _run(["train-mnist", "--dense", "--epochs", "1", "--limit", "300", "--val",
                         "0", "--no-progress"], capsys)
    assert rc == 0, err
    assert "dense Linear 1024 -> 1024" in out and "compression 1.0x" in out
    assert "final validation accuracy" not in out
    rc, out, err = _run(["train-mnist", "--matrix-rank", "16", "--epochs", "1", "--limit", "300",
                         "--val", "100", "--no-progress"], capsys)
    assert rc == 0, err
    assert "low-rank (MR) Linear 1024 -> 16 -> 1024" in out
    assert "first layer: 33,792 parameters (32,768 weights + 1,024 biases); compression 32.0x" \
        in out


@pytest.mark.parametrize("argv, match", [
    (["--modes", "4,8,8"], "multiply to 256"),
    (["--modes", "4,x"], "comma-separated integers"),
    (["--rank", "0"], "positive integer"),
    (["--dense", "--matrix-rank", "4"], "not allowed with"),
    (["--device", "tpu"], "invalid choice"),
    (["--lr", "-1"], "positive number"),
])
def test_cli_parse_errors(argv, match, capsys):
    with pytest.raises(SystemExit) as info:
        _run(["train-mnist", *argv], capsys)
    assert info.value.code == 2
    assert match in capsys.readouterr().err


def test_cli_runtime_errors_return_1(tmp_path, capsys, monkeypatch):
    rc, _, err = _run(["train-mnist", "--limit", "100", "--val", "100", "--epochs", "1",
                       "--no-progress"], capsys)
    assert rc == 1 and "--val 100 must be smaller than the 100 training digits" in err
    rc, _, err = _run(["train-mnist", "--data", str(tmp_path), "--no-progress"], capsys)
    assert rc == 1 and "no MNIST training files" in err

    def urlopen(url, timeout=None):
        raise urllib.error.URLError("[Errno 101] Network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    monkeypatch.setenv("HOME", str(tmp_path))
    rc, _, err = _run(["train-mnist", "--download", "--no-progress"], capsys)
    assert rc == 1 and "network is unreachable" in err

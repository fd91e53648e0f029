"""Extreme and malformed inputs: ``train-mnist --save``/``--plot`` paths (checked before
training, a fallback file when saving fails afterwards), model files that are not plain JSON
or are crafted, and ``demo`` sizes that would not fit in memory."""

from __future__ import annotations

import errno
import io
import json
import os
import re
import tempfile
import tracemalloc
import zipfile

import numpy as np
import pytest

import tensortrain.demo as demo
import tensortrain.nn.train as train_module
from tensortrain.__main__ import main
from tensortrain.datasets import load_mnist, preprocess
from tensortrain.errors import TTError, TTFileError
from tensortrain.nn.mnist_example import mnist_model_config, train_mnist
from tensortrain.nn.serialization import build_model, load_model, read_model_config, save_model
from tensortrain.nn.train import predict

QUICK = ["--epochs", "1", "--limit", "200", "--val", "50", "--rank", "2", "--no-progress"]
FORMAT = {"format": "tensortrain.nn.Sequential", "version": 1}
REAL_SAVEZ = np.savez


def _run(argv, capsys):
    rc = main(argv)
    out = capsys.readouterr()
    return rc, out.out, out.err


def _one_line(err):
    assert err.endswith("\n") and err.count("\n") == 1, err
    return err.rstrip("\n")


@pytest.fixture
def fallback_dir(tmp_path, monkeypatch):
    """The system temporary directory, redirected into the test's own directory."""
    d = tmp_path / "systemp"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d


def _disk_full(monkeypatch, failures):
    """Make ``np.savez`` write a few bytes and fail with ENOSPC, ``failures`` times."""
    calls = []

    def savez(file, *args, **kwargs):
        calls.append(file)
        if len(calls) <= failures:
            file.write(b"PK\x03\x04 half an archive")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return REAL_SAVEZ(file, *args, **kwargs)

    monkeypatch.setattr(np, "savez", savez)
    return calls


def _digits(n=40):
    return preprocess(load_mnist().train_images[:n])


# ---- train-mnist --save: checked before training ----------------------------------------------
@pytest.mark.parametrize("make, match", [
    (lambda d: d, r"it is a directory; name a file, e\.g\. '.*model\.npz'"),
    (lambda d: d / "absent" / "m.npz", r"the directory '.*absent' does not exist"),
    (lambda d: d / "file.txt" / "m.npz", r"'.*file\.txt' is not a directory"),
    (lambda d: str(d / "newdir") + os.sep, r"names a directory"),
    (lambda d: "", r"empty path"),
])
def test_save_path_is_checked_before_training(tmp_path, capsys, make, match):
    (tmp_path / "file.txt").write_text("x")
    before = sorted(os.listdir(tmp_path))
    rc, out, err = _run(["train-mnist", *QUICK, "--save", str(make(tmp_path))], capsys)
    line = _one_line(err)
    assert rc == 1
    assert line.startswith("train-mnist: error: cannot save the model to")
    assert re.search(match, line), line
    assert out == ""  # no data loaded, no epoch run
    assert sorted(os.listdir(tmp_path)) == before  # the probe file is gone


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root may write into read-only directories")
def test_save_into_read_only_directory(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        rc, out, err = _run(["train-mnist", *QUICK, "--save", str(ro / "m.npz")], capsys)
    finally:
        ro.chmod(0o755)
    assert rc == 1 and out == ""
    assert re.search(r"cannot create files in '.*ro'", _one_line(err))


def test_save_directory_refusing_new_files(tmp_path, capsys, monkeypatch):
    # what a read-only file system or a missing permission looks like, also for root
    real = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and os.path.samefile(dir, tmp_path):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return real(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    rc, out, err = _run(["train-mnist", *QUICK, "--save", str(tmp_path / "m.npz")], capsys)
    assert rc == 1 and out == ""
    assert re.fullmatch(r"train-mnist: error: cannot save the model to '.*m\.npz': cannot "
                        r"create files in '.*' \(Permission denied\)", _one_line(err))


# ---- train-mnist --save: fails after training -------------------------------------------------
def test_directory_removed_during_training_saves_to_fallback(tmp_path, fallback_dir,
                                                             monkeypatch):
    target_dir = tmp_path / "out"
    target_dir.mkdir()
    real_fit = train_module.fit

    def fit_then_remove(*args, **kwargs):
        history = real_fit(*args, **kwargs)
        target_dir.rmdir()
        return history

    monkeypatch.setattr(train_module, "fit", fit_then_remove)
    out, err = io.StringIO(), io.StringIO()
    res = train_mnist(epochs=1, limit=200, val=50, rank=2, progress=False,
                      save=target_dir / "model.npz", out=out, err=err)
    warning = _one_line(err.getvalue())
    assert warning.startswith("train-mnist: warning: could not save the model to '")
    assert "No such file or directory" in res["save_error"]
    saved = res["saved"]
    assert os.path.dirname(saved) == str(fallback_dir) and saved.endswith(".npz")
    assert f"saved it to {saved!r} instead" in warning
    assert f"saved model to {saved}" in out.getvalue()
    x = _digits()
    assert np.array_equal(predict(load_model(saved), x), predict(res["model"], x))


def test_cli_disk_full_after_training_saves_to_fallback(tmp_path, fallback_dir, capsys,
                                                        monkeypatch):
    target = tmp_path / "out" / "model.npz"
    target.parent.mkdir()
    calls = _disk_full(monkeypatch, failures=1)
    rc, out, err = _run(["train-mnist", *QUICK, "--save", str(target)], capsys)
    line = _one_line(err)
    assert rc == 1  # the model is safe, but not where it was asked for
    assert len(calls) == 2
    m = re.fullmatch(r"train-mnist: warning: could not save the model to '.*model\.npz' "
                     r"\(\[Errno 28\] No space left on device: '.*model\.npz'\); saved it to "
                     r"'(.*)' instead", line)
    assert m, line
    fallback = m.group(1)
    assert os.path.dirname(fallback) == str(fallback_dir)
    assert re.search(r"^epoch 1/1 ", out, re.M) and f"saved model to {fallback}\n" in out
    assert os.listdir(target.parent) == []  # no half-written file, no temporary left behind
    model = load_model(fallback)
    assert read_model_config(fallback)["meta"]["trained"]["epochs"] == 1
    assert predict(model, _digits()).shape == (40, 10)


def test_cli_fallback_failing_too_is_one_error_line(tmp_path, fallback_dir, capsys,
                                                    monkeypatch):
    target = tmp_path / "out" / "model.npz"
    target.parent.mkdir()
    _disk_full(monkeypatch, failures=2)
    rc, out, err = _run(["train-mnist", *QUICK, "--save", str(target)], capsys)
    line = _one_line(err)
    assert rc == 1
    assert re.fullmatch(r"train-mnist: error: could not save the model to '.*model\.npz' "
                        r"\(.*No space left on device.*\), nor to the fallback '.*\.npz' "
                        r"\(.*No space left on device.*\); the trained model was not saved",
                        line), line
    assert "saved model" not in out
    assert os.listdir(target.parent) == [] and os.listdir(fallback_dir) == []


# ---- train-mnist: other arguments -------------------------------------------------------------
@pytest.mark.parametrize("argv, match", [
    (["--lr", "inf"], "expected a finite positive number, got inf"),
    (["--lr", "nan"], "expected a finite positive number, got nan"),
    (["--lr", "0"], "expected a finite positive number, got 0"),
    (["--seed", "-1"], "expected an integer >= 0, got -1"),
    (["--batch-size", "0"], "expected a positive integer, got 0"),
    (["--val", "-5"], "expected an integer >= 0, got -5"),
])
def test_train_mnist_parse_errors(argv, match, capsys):
    with pytest.raises(SystemExit) as info:
        _run(["train-mnist", *argv], capsys)
    assert info.value.code == 2
    assert match in capsys.readouterr().err


def test_val_larger_than_the_data_is_one_line(capsys):
    rc, _out, err = _run(["train-mnist", "--limit", "200", "--val", "5000", "--epochs", "1",
                         "--no-progress"], capsys)
    assert rc == 1
    assert _one_line(err) == ("train-mnist: error: --val 5000 must be smaller than the 200 "
                              "training digits available")


def test_batch_size_larger_than_the_data_trains_one_batch(capsys):
    rc, out, err = _run(["train-mnist", *QUICK, "--batch-size", "100000"], capsys)
    assert rc == 0, err
    assert "batch 100000" in out and re.search(r"^epoch 1/1 ", out, re.M)


@pytest.mark.parametrize("make, match", [
    (lambda d: d / "absent" / "c.png", r"cannot draw the curves into '.*c\.png': the directory "
                                       r"'.*absent' does not exist"),
    (lambda d: d, r"cannot draw the curves into '.*': it is a directory"),
    (lambda d: d / "c.xyz", r"matplotlib does not write \.xyz files; use one of .*png"),
])
def test_plot_path_is_checked_before_training(tmp_path, capsys, make, match):
    pytest.importorskip("matplotlib")
    rc, out, err = _run(["train-mnist", *QUICK, "--plot", str(make(tmp_path))], capsys)
    assert rc == 1 and out == ""
    assert re.search(match, _one_line(err))


def test_plot_and_save_to_the_same_file(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    same = str(tmp_path / "x.png")
    rc, out, err = _run(["train-mnist", *QUICK, "--save", same, "--plot", same], capsys)
    assert rc == 1 and out == ""
    assert "would both be written to" in _one_line(err)


def test_plot_without_extension_reports_the_file_written(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)
    rc, out, err = _run(["train-mnist", *QUICK, "--plot", "curves"], capsys)
    assert rc == 0, err
    assert "saved curves to curves.png\n" in out
    assert os.listdir(tmp_path) == ["curves.png"]


def test_plot_directory_removed_during_training(tmp_path, capsys, monkeypatch):
    pytest.importorskip("matplotlib")
    plots = tmp_path / "plots"
    plots.mkdir()
    real_fit = train_module.fit

    def fit_then_remove(*args, **kwargs):
        history = real_fit(*args, **kwargs)
        plots.rmdir()
        return history

    monkeypatch.setattr(train_module, "fit", fit_then_remove)
    model = tmp_path / "m.npz"
    rc, _out, err = _run(["train-mnist", *QUICK, "--save", str(model), "--plot",
                         str(plots / "c.png")], capsys)
    assert rc == 1
    line = _one_line(err)
    assert line.startswith("train-mnist: error: could not draw the curves into")
    assert line.endswith(f"(the model was saved to {model})")
    assert load_model(model) is not None


# ---- save_model: plain JSON only, nothing half-written ----------------------------------------
def _tt_model():
    config = mnist_model_config("tt", rank=2)
    return build_model(config, rng=0), config


@pytest.mark.parametrize("spoil, match", [
    (lambda c: c["meta"].update(weights=np.zeros(3)),
     r"config\['meta'\]\['weights'\] has type numpy\.ndarray, which JSON cannot store"),
    (lambda c: c["meta"].update(thing=object()),
     r"config\['meta'\]\['thing'\] has type object, which JSON cannot store"),
    (lambda c: c["layers"][0].update(ranks=np.int64(2)),
     r"config\['layers'\]\[0\]\['ranks'\] has type numpy\.int64"),
    (lambda c: c["meta"].update(lr=float("nan")), r"config\['meta'\]\['lr'\] is nan"),
    (lambda c: c["meta"].update({3: "x"}), r"config\['meta'\] has the key 3 \(int\)"),
    (lambda c: c["meta"].update(loop=c["meta"]), r"config\['meta'\]\['loop'\] contains itself"),
])
def test_save_model_non_json_config_names_the_key(tmp_path, spoil, match):
    model, config = _tt_model()
    spoil(config)
    path = tmp_path / "m.npz"
    with pytest.raises(TTError, match=r"^the model config is not plain JSON: " + match):
        save_model(path, model, config)
    assert not path.exists()


@pytest.mark.parametrize("config, match", [
    (np.zeros(3), r"must be a dict with a 'layers' list, got a value of type numpy\.ndarray"),
    ([{"type": "ReLU"}], r"must be a dict with a 'layers' list, got a list of 1 item$"),
    ({"layers": [{"type": "ReLU"}], "format": "other"}, r"'format' entry is reserved"),
    ({"layers": [{"type": "Linear", "in_features": 1024, "out_features": 10, "xp": "numpy"}]},
     r"layer 0 \(Linear\) has the unknown option 'xp'"),
    ({"layers": [{"type": "Linear", "in_features": 1024, "out_features": -10}]},
     r"'out_features' must be a positive integer, got the number -10"),
])
def test_save_model_rejects_malformed_configs(tmp_path, config, match):
    model = build_model({"layers": [{"type": "Linear", "in_features": 1024,
                                     "out_features": 10}]})
    with pytest.raises(TTError, match=match):
        save_model(tmp_path / "m.npz", model, config)
    assert os.listdir(tmp_path) == []


def test_save_model_checks_layer_types_and_shapes(tmp_path):
    model, config = _tt_model()
    config["layers"][1]["type"] = "Tanh"
    with pytest.raises(TTError, match="does not describe the model: layer 1 is a ReLU, the "
                                      "config says Tanh"):
        save_model(tmp_path / "m.npz", model, config)
    _, config = _tt_model()
    config["layers"][2]["out_features"] = 11
    with pytest.raises(TTError, match=r"does not describe the model: .*array 'layers\.2\.weight' "
                                      r"has shape \(10, 1024\), the config asks for \(11, 1024\)"):
        save_model(tmp_path / "m.npz", model, config)
    assert os.listdir(tmp_path) == []


def test_failed_write_keeps_the_older_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    model, config = _tt_model()
    path = tmp_path / "m.npz"
    save_model(path, model, config)
    before = path.read_bytes()
    other = build_model(config, rng=1)
    _disk_full(monkeypatch, failures=1)
    with pytest.raises(OSError, match=r"No space left on device: '.*m\.npz'") as info:
        save_model(path, other, config)
    assert info.value.errno == errno.ENOSPC
    assert os.listdir(tmp_path) == ["m.npz"] and path.read_bytes() == before
    x = _digits(10)
    assert np.array_equal(predict(load_model(path), x), predict(model, x))


def test_save_model_into_missing_directory_names_the_target(tmp_path):
    model, config = _tt_model()
    with pytest.raises(FileNotFoundError, match=r"No such file or directory: '.*absent.m\.npz'"):
        save_model(tmp_path / "absent" / "m.npz", model, config)


@pytest.mark.parametrize("config", [
    {"layers": [{"type": "TTLinear", "in_features": 30, "out_features": 20, "ranks": [1, 3, 1],
                 "bias": False}, {"type": "BatchNorm1d", "num_features": 20},
                {"type": "Dropout", "p": 0.25}, {"type": "Tanh"},
                {"type": "Linear", "in_features": 20, "out_features": 5, "init": "he"},
                {"type": "BatchNorm1d", "num_features": 5, "affine": False, "momentum": 0.2}]},
    {"layers": [{"type": "TTLinear", "in_features": 97, "out_features": 10, "ranks": 50,
                 "in_modes": [10, 10]}], "dtype": "float64", "meta": {"note": [1, 2.5, None]}},
    {"layers": []},
])
def test_round_trip_of_varied_configs(tmp_path, config):
    model = build_model(config, rng=3)
    path = tmp_path / "m.npz"
    save_model(path, model, config)
    again = load_model(path)
    width = config["layers"][0]["in_features"] if config["layers"] else 4
    x = np.random.default_rng(0).standard_normal((7, width)).astype(np.float32)
    if config["layers"]:
        assert np.array_equal(predict(again, x), predict(model, x))
    stored = read_model_config(path)
    assert {k: v for k, v in stored.items() if k not in FORMAT} == json.loads(json.dumps(config))
    save_model(tmp_path / "again.npz", again, stored)  # format and version may come back in


# ---- load_model: crafted files ----------------------------------------------------------------
def _craft(path, config=None, arrays=None, raw=None):
    entries = {"__model_config__": np.array(raw if raw is not None
                                            else json.dumps({**FORMAT, **config}))}
    entries.update({"state/" + k: v for k, v in (arrays or {}).items()})
    np.savez(path, **entries)
    return path


def _f32(*shape):
    return np.zeros(shape, np.float32)


@pytest.mark.parametrize("raw, got", [
    ("[1, 2, 3]", "a list of 3 items"),
    ('"a model"', "the string 'a model'"),
    ("42", "the number 42"),
    ("null", "null"),
])
def test_config_that_is_not_an_object(tmp_path, raw, got):
    path = _craft(tmp_path / "m.npz", raw=raw)
    with pytest.raises(TTFileError, match=r"the model config must be a JSON object with "
                                          r"'format', 'version' and 'layers' entries, got "
                                          + re.escape(got)):
        load_model(path)
    with pytest.raises(TTFileError, match="must be a JSON object"):
        read_model_config(path)


LINEAR = {"type": "Linear", "in_features": 3, "out_features": 2}


@pytest.mark.parametrize("config, arrays, match", [
    ({}, {}, r"the model config has no 'layers' entry"),
    ({"layers": {"0": LINEAR}}, {}, r"'layers' must be a list, got an object"),
    ({"layers": [LINEAR], "dtype": "int8"}, {}, r"'dtype' must be 'float32' or 'float64'"),
    ({"layers": ["ReLU"]}, {}, r"layer 0 of the model config must be an object with a 'type'"),
    ({"layers": [{"in_features": 3}]}, {}, r"layer 0 of the model config has no 'type'"),
    ({"layers": [{"type": "Conv2d"}]}, {}, r"unknown type 'Conv2d'; known types: TTLinear"),
    ({"layers": [{"type": 7}]}, {}, r"unknown type the number 7"),
    ({"layers": [{"type": "Linear", "in_features": 3}]}, {},
     r"layer 0 \(Linear\) is missing 'out_features'"),
    ({"layers": [dict(LINEAR, in_features=-3)]}, {},
     r"option 'in_features' must be a positive integer, got the number -3"),
    ({"layers": [dict(LINEAR, in_features=0)]}, {}, r"got the number 0"),
    ({"layers": [dict(LINEAR, out_features=True)]}, {},
     r"option 'out_features' must be a positive integer, got a boolean \(true\)"),
    ({"layers": [dict(LINEAR, out_features=2.0)]}, {}, r"got the number 2\.0"),
    ({"layers": [dict(LINEAR, out_features="2")]}, {}, r"got the string '2'"),
    ({"layers": [dict(LINEAR, bias="yes")]}, {}, r"option 'bias' must be true or false"),
    ({"layers": [dict(LINEAR, init="xavier")]}, {}, r"option 'init': unknown init 'xavier'"),
    ({"layers": [dict(LINEAR, xp="cupy")]}, {}, r"has the unknown option 'xp'"),
    ({"layers": [{"type": "ReLU", "inplace": True}]}, {}, r"ReLU takes no options"),
    ({"layers": [{"type": "Dropout", "p": 1.5}]}, {}, r"option 'p' must be a number in \[0, 1\)"),
    ({"layers": [{"type": "BatchNorm1d", "num_features": 4, "eps": -1}]}, {},
     r"option 'eps' must be a number > 0"),
    ({"layers": [{"type": "TTLinear", "in_features": 4, "out_features": 4, "ranks": -2}]}, {},
     r"option 'ranks' must be a positive integer or a list of them"),
    ({"layers": [{"type": "TTLinear", "in_features": 4, "out_features": 4, "ranks": 2,
                  "in_modes": [2, 0]}]}, {}, r"option 'in_modes' must be null or a non-empty"),
    ({"layers": [{"type": "TTLinear", "in_features": 4, "out_features": 4, "ranks": 2,
                  "in_modes": [2, 2], "out_modes": [4]}]}, {}, r"2 in_modes but 1 out_modes"),
    ({"layers": [{"type": "TTLinear", "in_features": 9, "out_features": 4, "ranks": 2,
                  "in_modes": [2, 2], "out_modes": [2, 2]}]}, {},
     r"in_modes \[2, 2\] multiply to 4, fewer than its 9 in_features"),
    ({"layers": [{"type": "TTLinear", "in_features": 4, "out_features": 4, "ranks": [2, 2, 1]}]},
     {"layers.0.cores.0": _f32(1, 2, 2, 2), "layers.0.cores.1": _f32(2, 2, 2, 1)},
     r"option 'ranks': boundary ranks must be 1"),
    ({"layers": [{"type": "TTLinear", "in_features": 4, "out_features": 4, "ranks": [1, 2]}]},
     {"layers.0.cores.0": _f32(1, 2, 2, 2), "layers.0.cores.1": _f32(2, 2, 2, 1)},
     r"option 'ranks': ranks must be an int or a list of 3 values"),
    ({"layers": [{"type": "TTLinear", "in_features": 2**61 - 1, "out_features": 2**61 - 1,
                  "ranks": 10**6, "bias": False}]}, {},
     r"gives no modes and the file does not store its cores"),
])
def test_malformed_configs_are_file_errors(tmp_path, config, arrays, match):
    path = _craft(tmp_path / "m.npz", config, arrays)
    with pytest.raises(TTFileError, match=match):
        load_model(path)


@pytest.mark.parametrize("arrays, match", [
    ({"layers.0.weight": _f32(3, 2), "layers.0.bias": _f32(2)},
     r"array 'layers\.0\.weight' has shape \(3, 2\), the config asks for \(2, 3\)"),
    ({"layers.0.weight": _f32(2, 3)}, r"missing arrays \['layers\.0\.bias'\]"),
    ({"layers.0.weight": _f32(2, 3), "layers.0.bias": _f32(2), "layers.1.weight": _f32(1)},
     r"unexpected arrays \['layers\.1\.weight'\]"),
    ({"layers.0.weight": np.zeros((2, 3), complex), "layers.0.bias": _f32(2)},
     r"array 'layers\.0\.weight' has dtype complex128; model arrays are real numbers"),
])
def test_arrays_that_disagree_with_the_config(tmp_path, arrays, match):
    path = _craft(tmp_path / "m.npz", {"layers": [LINEAR]}, arrays)
    with pytest.raises(TTFileError, match=match):
        load_model(path)


def test_tt_cores_that_disagree_with_the_ranks(tmp_path):
    good = build_model({"layers": [{"type": "TTLinear", "in_features": 16, "out_features": 16,
                                    "ranks": 2}]}, rng=0).state_dict()
    config = {"layers": [{"type": "TTLinear", "in_features": 16, "out_features": 16,
                          "ranks": 3}]}
    path = _craft(tmp_path / "m.npz", config, good)
    with pytest.raises(TTFileError, match=r"array 'layers\.0\.cores\.0' has shape \(1, 4, 4, 2\)"
                                          r", the config asks for \(1, 4, 4, 3\)"):
        load_model(path)


def test_huge_layer_is_refused_before_any_allocation(tmp_path):
    config = {"layers": [{"type": "Linear", "in_features": 10**6, "out_features": 10**6}]}
    path = _craft(tmp_path / "huge.npz", config,
                  {"layers.0.weight": _f32(2, 2), "layers.0.bias": _f32(2)})
    with pytest.raises(TTFileError, match=r"the config implies 1,000,001,000,000 parameters in 2 "
                                          r"arrays, the stored arrays hold 6 in 2"):
        load_model(path)
    # a size that could be allocated must not be either: the check comes first
    config = {"layers": [{"type": "Linear", "in_features": 4096, "out_features": 4096}]}
    path = _craft(tmp_path / "big.npz", config,
                  {"layers.0.weight": _f32(2, 2), "layers.0.bias": _f32(2)})
    tracemalloc.start()
    try:
        with pytest.raises(TTFileError, match="do not fit the stored config"):
            load_model(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20  # a 4096 x 4096 float32 weight alone is 64 MiB


def test_forged_array_header_is_refused_before_reading(tmp_path):
    config = {"layers": [{"type": "Linear", "in_features": 10**6, "out_features": 10**6,
                          "bias": False}]}
    path = tmp_path / "forged.npz"
    _craft(path, config)
    with zipfile.ZipFile(path, "a") as z, z.open("state/layers.0.weight.npy", "w") as f:
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)})
        f.write(b"\0" * 64)
    with pytest.raises(TTFileError, match=r"member 'state/layers\.0\.weight\.npy' declares shape "
                                          r"\(1000000, 1000000\) \(float32\), "
                                          r"4,000,000,000,000 bytes, .*truncated or forged"):
        load_model(path)


@pytest.mark.parametrize("raw, match", [
    ('{"format": ', r"has a damaged model config"),
    ("[" * 100000 + "]" * 100000, r"has a damaged model config"),
])
def test_damaged_json(tmp_path, raw, match):
    with pytest.raises(TTFileError, match=match):
        load_model(_craft(tmp_path / "m.npz", raw=raw))


def test_config_entry_that_is_not_a_string(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, __model_config__=np.arange(3.0))
    with pytest.raises(TTFileError, match=r"'__model_config__' entry must be a single string, "
                                          r"got an array of shape \(3,\)"):
        load_model(path)


def test_other_foreign_files(tmp_path):
    with pytest.raises(TTFileError, match="is a directory, not a tensortrain model file"):
        load_model(tmp_path)
    path = _craft(tmp_path / "v2.npz", {"layers": [], "version": 2})
    with pytest.raises(TTFileError, match="has model format version 2; this tensortrain reads "
                                          "version 1"):
        load_model(path)
    with pytest.raises(FileNotFoundError):
        read_model_config(tmp_path / "absent.npz")


# ---- demo: memory ------------------------------------------------------------------------------
def test_demo_too_large_for_memory_is_one_line(capsys, monkeypatch):
    monkeypatch.setattr(demo, "available_memory", lambda: 8 * 2**30)
    rc, out, err = _run(["demo", "--size", "1000000"], capsys)
    assert rc == 1 and out == ""
    assert _one_line(err) == (
        "demo: error: --size 1000000 --batch 64 needs about 36.4 TiB of memory (the dense "
        "1000000 x 1000000 matrix alone is 7.3 TiB), more than the 8.0 GiB available; use "
        "--size 14464 or smaller")
    assert demo.memory_needed(14464) <= 8 * 2**30 < demo.memory_needed(14464 + 64)


def test_demo_batch_too_large(capsys, monkeypatch):
    monkeypatch.setattr(demo, "available_memory", lambda: 8 * 2**30)
    rc, out, err = _run(["demo", "--size", "256", "--batch", "100000000"], capsys)
    assert rc == 1 and out == ""
    line = _one_line(err)
    fit = int(re.search(r"use --batch (\d+) or smaller at this size$", line).group(1))
    assert demo.memory_needed(256, fit) <= 8 * 2**30 < demo.memory_needed(256, fit + 1)
    rc, out, err = _run(["demo", "--size", "1000000", "--batch", "100000000"], capsys)
    assert rc == 1
    assert _one_line(err).endswith("use a smaller --size and --batch (e.g. --size 14464 "
                                   "--batch 64)")


def test_demo_unknown_memory_uses_the_fixed_cap(monkeypatch):
    monkeypatch.setattr(demo, "available_memory", lambda: None)
    with pytest.raises(MemoryError, match=r"more than the 8\.0 GiB available; use --size 14464"):
        demo.check_memory(10**6)
    assert demo.check_memory(4096) == demo.memory_needed(4096)


def test_demo_run_checks_before_allocating():
    with pytest.raises(MemoryError, match=r"^--size 1000000 --batch 64 needs about"):
        demo.run(n=10**6, out=lambda *a: None)


def test_available_memory_is_positive_or_unknown():
    free = demo.available_memory()
    assert free is None or (isinstance(free, int) and free > 0)


@pytest.mark.parametrize("argv, match", [
    (["--eps", "inf"], "--eps must be a finite number >= 0, got inf"),
    (["--eps", "nan"], "--eps must be a finite number >= 0, got nan"),
    (["--size", "0"], "--size and --batch must be >= 1"),
    (["--max-rank", "0"], "--max-rank must be >= 1, got 0"),
])
def test_demo_parse_errors(argv, match, capsys):
    with pytest.raises(SystemExit) as info:
        _run(["demo", *argv], capsys)
    assert info.value.code == 2
    assert match in capsys.readouterr().err


def test_demo_batch_of_one_prints_one_product(capsys):
    rc, out, err = _run(["demo", "--size", "16", "--batch", "1"], capsys)
    assert rc == 0, err
    assert out.count("W @ x (vector)") == 1 and "W @ X (batch" not in out

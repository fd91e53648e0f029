"""tensortrain.datasets: IDX parsing, the embedded MNIST subset, directories, download, helpers."""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import urllib.error
import urllib.request
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

from tensortrain.datasets import (
    MNIST,
    MNISTDownloadError,
    load_mnist,
    parse_idx,
    preprocess,
    read_idx,
    train_val_split,
)
from tensortrain.datasets import mnist as mnist_mod
from tensortrain.errors import TTError, TTFileError

CODES = {np.uint8: 0x08, np.int8: 0x09, np.int16: 0x0B, np.int32: 0x0C, np.float32: 0x0D,
         np.float64: 0x0E}


def idx_bytes(arr, code=None):
    arr = np.asarray(arr)
    code = CODES[arr.dtype.type] if code is None else code
    head = struct.pack(">HBB", 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    return head + arr.astype(arr.dtype.newbyteorder(">")).tobytes()


def write_mnist_dir(directory, n_train=20, n_test=None, gz=True, dot=False, seed=0):
    """Small MNIST-like IDX files; returns the arrays written."""
    rng = np.random.default_rng(seed)
    out = {}
    splits = [("train", n_train)] + ([("t10k", n_test)] if n_test else [])
    for prefix, n in splits:
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n, dtype=np.uint8)
        for kind, idx, arr in (("images", "idx3", images), ("labels", "idx1", labels)):
            name = f"{prefix}-{kind}.{idx}-ubyte" if dot else f"{prefix}-{kind}-{idx}-ubyte"
            data = idx_bytes(arr)
            if gz:
                name, data = name + ".gz", gzip.compress(data)
            (directory / name).write_bytes(data)
        out[prefix] = (images, labels)
    return out


# ---- IDX parsing ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", list(CODES))
def test_idx_round_trip_every_dtype(tmp_path, dtype):
    arr = (np.arange(2 * 3 * 4) - 7).reshape(2, 3, 4).astype(dtype)
    if np.dtype(dtype).kind == "u":
        arr = np.arange(24, dtype=dtype).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(idx_bytes(arr))
    got = read_idx(tmp_path / "a")
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, arr)


def test_gzip_detected_by_magic_bytes_not_by_extension(tmp_path):
    arr = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    (tmp_path / "plain.gz").write_bytes(idx_bytes(arr))             # plain, misleading name
    (tmp_path / "zipped.idx").write_bytes(gzip.compress(idx_bytes(arr)))  # gzip, no .gz
    np.testing.assert_array_equal(read_idx(tmp_path / "plain.gz"), arr)
    np.testing.assert_array_equal(read_idx(str(tmp_path / "zipped.idx")), arr)
    np.testing.assert_array_equal(parse_idx(gzip.compress(idx_bytes(arr))), arr)


def test_one_dimensional_labels():
    lab = np.array([3, 1, 4, 1, 5], dtype=np.uint8)
    np.testing.assert_array_equal(parse_idx(idx_bytes(lab)), lab)


@pytest.mark.parametrize("data, match", [
    (b"", "not an IDX file"),
    (b"\x00\x00", "not an IDX file"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "two zero bytes"),
    (b"hello world, this is text\n", "two zero bytes"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x00", "unknown data type code 0x07"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (b"\x00\x00\x08\x03\x00\x00\x00\x02\x00\x00", "header alone"),
    (idx_bytes(np.zeros((4, 28, 28), np.uint8))[:-1], "truncated"),
    (idx_bytes(np.zeros(5, np.uint8)) + b"\x00\x00", "2 bytes follow"),
    (gzip.compress(idx_bytes(np.zeros((4, 28, 28), np.uint8)))[:-12], "gzip"),
    (b"\x1f\x8b" + b"garbage" * 5, "gzip"),
])
def test_truncated_and_foreign_data_raise_ttfileerror(tmp_path, data, match):
    (tmp_path / "f").write_bytes(data)
    with pytest.raises(TTFileError, match=match):
        read_idx(tmp_path / "f")
    with pytest.raises(TTError):  # TTFileError is a TTError
        parse_idx(data)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_idx(tmp_path / "nope")


# ---- the embedded subset --------------------------------------------------------------------
def test_embedded_mnist():
    ds = load_mnist()
    assert isinstance(ds, MNIST)
    assert ds.train_images.shape == (8000, 28, 28) and ds.train_images.dtype == np.uint8
    assert ds.train_labels.shape == (8000,) and ds.train_labels.dtype == np.uint8
    assert ds.test_images is None and ds.test_labels is None and not ds.has_test
    assert set(np.unique(ds.train_labels)) == set(range(10))
    np.testing.assert_array_equal(np.bincount(ds.train_labels),
                                  [796, 880, 787, 806, 789, 699, 814, 860, 766, 803])
    assert ds.train_images.max() == 255 and ds.train_images.min() == 0
    assert "embedded" in ds.source and "8000" in repr(ds)


def test_embedded_files_and_attribution_ship_as_package_data():
    root = files("tensortrain.datasets") / "data"
    readme = (root / "README.md").read_text()
    for words in ("LeCun", "Cortes", "Burges", "NIST", "CC BY-SA 3.0", "8,000"):
        assert words in readme
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        assert (root / name).read_bytes()[:2] == b"\x1f\x8b"
    text = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert '"datasets/data/*.gz"' in text and "tqdm" in text


# ---- directories ----------------------------------------------------------------------------
@pytest.mark.parametrize("gz, dot", [(True, False), (False, False), (True, True), (False, True)])
def test_directory_variants(tmp_path, gz, dot):
    written = write_mnist_dir(tmp_path, n_train=12, n_test=5, gz=gz, dot=dot)
    ds = load_mnist(tmp_path)
    np.testing.assert_array_equal(ds.train_images, written["train"][0])
    np.testing.assert_array_equal(ds.train_labels, written["train"][1])
    np.testing.assert_array_equal(ds.test_images, written["t10k"][0])
    np.testing.assert_array_equal(ds.test_labels, written["t10k"][1])
    assert ds.source == str(tmp_path)


def test_directory_without_test_files(tmp_path):
    write_mnist_dir(tmp_path, n_train=7)
    ds = load_mnist(str(tmp_path))
    assert len(ds.train_images) == 7 and ds.test_images is None and ds.test_labels is None


def test_directory_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_mnist(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="train-labels-idx1-ubyte"):
        (tmp_path / "train-images-idx3-ubyte").write_bytes(
            idx_bytes(np.zeros((2, 28, 28), np.uint8)))
        load_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(TTFileError, match="2 images but 3 labels"):
        load_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(idx_bytes(np.array([1, 12], np.uint8)))
    with pytest.raises(TTFileError, match=r"0\.\.9"):
        load_mnist(tmp_path)
    with pytest.raises(TTFileError, match="expects a directory"):
        load_mnist(tmp_path / "train-images-idx3-ubyte")
    with pytest.raises(TTError, match="not both"):
        load_mnist(tmp_path, download=True)


# ---- download (no network here: urlopen is replaced) ----------------------------------------
class _Response(io.BytesIO):
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _fake_server(files, fail_hosts=()):
    calls = []

    def urlopen(url, timeout=None):
        calls.append(url)
        if any(h in url for h in fail_hosts):
            raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
        return _Response(files[url.rsplit("/", 1)[1]])

    return urlopen, calls


def _served_files(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    write_mnist_dir(src, n_train=9, n_test=4, gz=True)
    return {p.name: p.read_bytes() for p in src.iterdir()}


def test_download_without_network_raises_clear_connection_error(tmp_path, monkeypatch):
    def urlopen(url, timeout=None):
        raise urllib.error.URLError("[Errno 101] Network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    with pytest.raises(MNISTDownloadError) as info:
        load_mnist(download=True, cache_dir=tmp_path / "cache")
    assert isinstance(info.value, ConnectionError)
    msg = str(info.value)
    assert "network is unreachable" in msg and "load_mnist(path=DIR)" in msg
    assert "--data DIR" in msg and "ossci-datasets" in msg
    assert not list((tmp_path / "cache").iterdir())  # nothing half-written


def test_download_serves_local_bytes_into_cache_dir(tmp_path, monkeypatch):
    files = _served_files(tmp_path)
    monkeypatch.setattr(mnist_mod, "_MNIST_MD5",
                        {k: hashlib.md5(v).hexdigest() for k, v in files.items()})
    urlopen, calls = _fake_server(files, fail_hosts=("ossci-datasets",))  # 1st mirror down
    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    cache = tmp_path / "cache"
    ds = load_mnist(download=True, cache_dir=cache)
    assert sorted(p.name for p in cache.iterdir()) == sorted(files)
    assert ds.train_images.shape == (9, 28, 28) and ds.test_images.shape == (4, 28, 28)
    assert "downloaded" in ds.source
    assert len(calls) == 8 and all("cvdf-datasets" in c for c in calls[1::2])

    # a second call reads the cache and does not touch the network
    def offline(url, timeout=None):
        raise AssertionError("network used although the files are cached")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    again = load_mnist(download=True, cache_dir=str(cache))
    np.testing.assert_array_equal(again.train_labels, ds.train_labels)


def test_download_with_wrong_checksum_keeps_nothing(tmp_path, monkeypatch):
    files = _served_files(tmp_path)
    urlopen, _ = _fake_server(files)  # the real MD5 table: these small files do not match it
    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    with pytest.raises(TTFileError, match="MD5"):
        load_mnist(download=True, cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").iterdir())


def test_default_cache_dir_is_under_home(tmp_path, monkeypatch):
    files = _served_files(tmp_path)
    monkeypatch.setattr(mnist_mod, "_MNIST_MD5", {k: None for k in files})  # parse check only
    monkeypatch.setattr(urllib.request, "urlopen", _fake_server(files)[0])
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    load_mnist(download=True)
    assert (tmp_path / "home" / ".cache" / "tensortrain" / "mnist"
            / "train-images-idx3-ubyte.gz").is_file()


# ---- helpers --------------------------------------------------------------------------------
def test_preprocess_pads_centered_and_scales():
    images = np.zeros((3, 28, 28), np.uint8)
    images[:, 0, 0] = 255
    images[1, 27, 27] = 51
    x = preprocess(images)
    assert x.shape == (3, 1024) and x.dtype == np.float32
    grid = x.reshape(3, 32, 32)
    assert grid[0, 2, 2] == 1.0 and grid[1, 29, 29] == pytest.approx(0.2)
    assert grid[:, :2].sum() == 0 and grid[:, 30:].sum() == 0 and grid[:, :, :2].sum() == 0
    assert x.sum() == pytest.approx(3 + 0.2)
    assert preprocess(images, pad_to=None).shape == (3, 784)
    assert preprocess(images, pad_to=28, dtype=np.float64).dtype == np.float64
    assert preprocess(images, flatten=False).shape == (3, 32, 32)
    real = preprocess(load_mnist().train_images[:10])
    assert real.min() >= 0.0 and real.max() <= 1.0
    with pytest.raises(TTError, match="smaller than the images"):
        preprocess(images, pad_to=20)
    with pytest.raises(TTError, match=r"\(N, H, W\)"):
        preprocess(images[0])
    with pytest.raises(TypeError, match="floating"):
        preprocess(images, dtype=np.int32)


def test_train_val_split():
    tr, va = train_val_split(100, 30, seed=1)
    assert len(tr) == 70 and len(va) == 30
    assert np.array_equal(np.sort(np.concatenate([tr, va])), np.arange(100))
    tr2, va2 = train_val_split(100, 30, seed=1)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    assert not np.array_equal(va, train_val_split(100, 30, seed=2)[1])
    assert len(train_val_split(5, 0, seed=0)[1]) == 0
    for bad in (-1, 100):
        with pytest.raises(TTError):
            train_val_split(100, bad)

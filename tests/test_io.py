"""save / load round trips: cores, structure, dtype and the dense values survive exactly."""

from __future__ import annotations

import os
import pathlib

import numpy as np
import pytest
from _helpers import host_random

import tensortrain as tt
from tensortrain.io import FORMAT_VERSION


def to_numpy(a):
    """Host copy of a NumPy or CuPy array."""
    return a.get() if type(a).__module__.split(".")[0] == "cupy" else np.asarray(a)


def _rng(seed):
    return np.random.default_rng(seed)


TENSORS = {
    "float64": lambda: tt.random_tensor((2, 3, 4, 5), 3, rng=_rng(0)),
    "float32": lambda: tt.random_tensor((4, 3, 2), [1, 2, 2, 1], rng=_rng(1), dtype=np.float32),
    "complex128": lambda: tt.random_tensor((3, 3, 3), 2, rng=_rng(2), dtype=np.complex128),
    "complex64": lambda: tt.random_tensor((2, 5), 2, rng=_rng(3), dtype=np.complex64),
    "d=1": lambda: tt.TTTensor([_rng(4).standard_normal((1, 7, 1))]),
    "modes-of-1": lambda: tt.random_tensor((1, 4, 1, 3), 2, rng=_rng(5)),
    "from_dense": lambda: tt.TTTensor.from_dense(_rng(6).standard_normal((4, 5, 6))),
}

MATRICES = {
    "float64": lambda: tt.random_matrix((2, 3), (4, 5), 3, rng=_rng(10)),
    "float32": lambda: tt.random_matrix((2, 2, 2), (3, 1, 3), 2, rng=_rng(11), dtype=np.float32),
    "complex128": lambda: tt.random_matrix((3, 2), (2, 3), 2, rng=_rng(12), dtype=np.complex128),
    "padded-997x10": lambda: tt.TTMatrix.from_dense(_rng(13).standard_normal((997, 10))),
    "padded-997x10-float32": lambda: tt.TTMatrix.from_dense(
        _rng(14).standard_normal((997, 10)).astype(np.float32)),
    "padded-997x10-complex128": lambda: tt.TTMatrix.from_dense(
        host_random(_rng(15), (997, 10), np.complex128), max_rank=4),
    "padded-transposed": lambda: tt.TTMatrix.from_dense(_rng(16).standard_normal((997, 10))).T,
    "padded-both-sides": lambda: tt.TTMatrix.from_dense(_rng(17).standard_normal((13, 11)),
                                                        row_modes=(4, 4), col_modes=(3, 4)),
    "eye-padded": lambda: tt.eye(997),
}


def _assert_same_cores(loaded, original):
    assert len(loaded.cores) == len(original.cores)
    for k, (c_new, c_old) in enumerate(zip(loaded.cores, original.cores, strict=True)):
        assert isinstance(c_new, np.ndarray), f"core {k} is {type(c_new)}"
        assert c_new.dtype == c_old.dtype, f"core {k}: {c_new.dtype} != {c_old.dtype}"
        assert c_new.shape == c_old.shape, f"core {k}: {c_new.shape} != {c_old.shape}"
        np.testing.assert_array_equal(c_new, to_numpy(c_old), err_msg=f"core {k}")


def _assert_same_tensor(loaded, original):
    assert type(loaded) is tt.TTTensor
    assert loaded.shape == original.shape
    assert loaded.ranks == original.ranks
    assert loaded.dtype == original.dtype
    _assert_same_cores(loaded, original)
    full_new, full_old = loaded.full(), to_numpy(original.full())
    assert full_new.dtype == full_old.dtype
    np.testing.assert_array_equal(full_new, full_old)


def _assert_same_matrix(loaded, original):
    assert type(loaded) is tt.TTMatrix
    assert loaded.shape == original.shape
    assert loaded.row_modes == original.row_modes
    assert loaded.col_modes == original.col_modes
    assert loaded.padded_shape == original.padded_shape
    assert loaded.is_padded == original.is_padded
    assert loaded.ranks == original.ranks
    assert loaded.dtype == original.dtype
    _assert_same_cores(loaded, original)
    full_new, full_old = loaded.full(), to_numpy(original.full())
    assert full_new.shape == original.shape
    assert full_new.dtype == full_old.dtype
    np.testing.assert_array_equal(full_new, full_old)


@pytest.mark.parametrize("name", list(TENSORS))
def test_tttensor_round_trip(tmp_path, name):
    x = TENSORS[name]()
    path = tmp_path / "x.npz"
    tt.save(path, x)
    _assert_same_tensor(tt.load(path), x)


@pytest.mark.parametrize("name", list(MATRICES))
def test_ttmatrix_round_trip(tmp_path, name):
    w = MATRICES[name]()
    path = tmp_path / "w.npz"
    tt.save(path, w)
    _assert_same_matrix(tt.load(path), w)


def test_padded_ttmatrix_round_trip_keeps_logical_shape_and_products(tmp_path):
    rng = _rng(20)
    a = rng.standard_normal((997, 10))
    w = tt.TTMatrix.from_dense(a)
    assert w.is_padded and w.shape == (997, 10) and w.padded_shape[0] > 997
    path = tmp_path / "padded.npz"
    tt.save(path, w)
    v = tt.load(path)
    assert v.shape == (997, 10)
    assert v.padded_shape == w.padded_shape
    np.testing.assert_array_equal(v.full(), w.full())
    np.testing.assert_allclose(v.full(), a, rtol=0, atol=1e-10)
    x = rng.standard_normal(10)
    y = rng.standard_normal(997)
    np.testing.assert_array_equal(v @ x, w @ x)
    np.testing.assert_array_equal(y @ v, y @ w)
    assert v.norm() == w.norm()


def test_round_trip_twice_is_stable(tmp_path):
    w = MATRICES["padded-997x10"]()
    p1, p2 = tmp_path / "one.npz", tmp_path / "two.npz"
    tt.save(p1, w)
    tt.save(p2, tt.load(p1))
    _assert_same_matrix(tt.load(p2), w)


def test_file_is_readable_without_pickle(tmp_path):
    w = MATRICES["padded-997x10-complex128"]()
    path = tmp_path / "w.npz"
    tt.save(path, w)
    with np.load(path, allow_pickle=False) as z:
        entries = {k: z[k] for k in z.files}          # any object array would raise here
    assert set(entries) == {"format", "version", "kind", "d", "shape"} | {
        f"core_{k}" for k in range(w.d)}
    assert all(v.dtype.kind != "O" for v in entries.values())
    assert str(entries["format"]) == "tensortrain"
    assert int(entries["version"]) == FORMAT_VERSION
    assert str(entries["kind"]) == "TTMatrix"
    assert int(entries["d"]) == w.d
    assert tuple(int(s) for s in entries["shape"]) == (997, 10)
    for k, c in enumerate(w.cores):
        np.testing.assert_array_equal(entries[f"core_{k}"], c)


def test_tensor_file_is_readable_without_pickle_and_has_no_shape_entry(tmp_path):
    x = TENSORS["float32"]()
    path = tmp_path / "x.npz"
    tt.save(path, x)
    with np.load(path, allow_pickle=False) as z:
        entries = {k: z[k] for k in z.files}
    assert set(entries) == {"format", "version", "kind", "d"} | {f"core_{k}" for k in range(x.d)}
    assert str(entries["kind"]) == "TTTensor"
    assert entries["core_0"].dtype == np.float32


@pytest.mark.parametrize(
    "obj, shown",
    [
        (np.ones((2, 3)), "ndarray"),
        (None, "NoneType"),
        ([np.ones((1, 2, 1))], "list"),
        ({"core_0": np.ones((1, 2, 1))}, "dict"),
        (3.0, "float"),
    ],
    ids=["ndarray", "None", "list-of-cores", "dict", "float"],
)
def test_saving_a_non_tt_object_is_a_type_error(tmp_path, obj, shown):
    path = tmp_path / "bad.npz"
    with pytest.raises(TypeError, match=f"save\\(\\) writes a TTTensor or TTMatrix, got {shown}"):
        tt.save(path, obj)
    assert not path.exists()


@pytest.mark.parametrize("xp_arg", ["numpy", np, None], ids=["str", "module", "default"])
def test_load_returns_numpy_cores(tmp_path, xp_arg):
    w = MATRICES["padded-997x10"]()
    path = tmp_path / "w.npz"
    tt.save(path, w)
    v = tt.load(path) if xp_arg is None else tt.load(path, xp=xp_arg)
    assert v.backend == "numpy"
    assert v.xp is np
    assert all(type(c) is np.ndarray for c in v.cores)
    _assert_same_matrix(v, w)


def test_save_from_any_backend_and_load_to_it(tmp_path, xp):
    """Objects on CuPy are copied to the host by save; load(xp=...) puts them back."""
    x = TENSORS["float64"]().to(xp)
    w = MATRICES["padded-997x10"]().to(xp)
    tt.save(tmp_path / "x.npz", x)
    tt.save(tmp_path / "w.npz", w)
    x_host, w_host = tt.load(tmp_path / "x.npz"), tt.load(tmp_path / "w.npz")
    _assert_same_tensor(x_host, x)
    _assert_same_matrix(w_host, w)
    x_back = tt.load(tmp_path / "x.npz", xp=xp)
    w_back = tt.load(tmp_path / "w.npz", xp=xp)
    assert x_back.xp is xp and w_back.xp is xp
    assert w_back.shape == (997, 10)
    np.testing.assert_array_equal(to_numpy(x_back.full()), to_numpy(x.full()))
    np.testing.assert_array_equal(to_numpy(w_back.full()), to_numpy(w.full()))


def test_pathlib_paths(tmp_path):
    x = TENSORS["complex128"]()
    path = pathlib.Path(tmp_path) / "sub" / "x.npz"
    path.parent.mkdir()
    tt.save(path, x)
    assert path.is_file()
    _assert_same_tensor(tt.load(path), x)


def test_str_paths(tmp_path):
    w = MATRICES["float32"]()
    path = os.path.join(str(tmp_path), "w.npz")
    tt.save(path, w)
    _assert_same_matrix(tt.load(path), w)


def test_save_writes_exactly_the_given_path(tmp_path):
    """No '.npz' is appended: what you name is what you load."""
    x = TENSORS["d=1"]()
    path = tmp_path / "model.tt"
    tt.save(path, x)
    assert path.is_file()
    assert not (tmp_path / "model.tt.npz").exists()
    _assert_same_tensor(tt.load(path), x)


def test_save_overwrites_an_existing_file(tmp_path):
    path = tmp_path / "x.npz"
    tt.save(path, MATRICES["padded-997x10"]())
    x = TENSORS["float32"]()
    tt.save(path, x)
    _assert_same_tensor(tt.load(path), x)

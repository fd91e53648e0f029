"""MNIST in the IDX format: parsing, the embedded 8,000-digit subset, and optional download.

``load_mnist()`` without arguments reads the 8,000 MNIST digits that ship with the
package (see ``tensortrain/datasets/data/README.md`` for the attribution).  ``load_mnist(path)``
reads the IDX files of a directory, and ``load_mnist(download=True)`` fetches the full data
set from public mirrors into a cache directory.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

import numpy as np

from .._backend import get_xp
from ..errors import ShapeError, TTError, TTFileError

__all__ = [
    "DEFAULT_CACHE_DIR",
    "MIRRORS",
    "MNIST",
    "MNISTDownloadError",
    "download_mnist",
    "load_mnist",
    "parse_idx",
    "preprocess",
    "read_idx",
    "train_val_split",
]

# IDX type codes (third byte of the magic number) -> big-endian dtype
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

#: Public mirrors of the original MNIST files, tried in order.
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)

#: MD5 digests of the original gzipped files (the values used by torchvision and others).
_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}

DEFAULT_CACHE_DIR = os.path.join("~", ".cache", "tensortrain", "mnist")

_EMBEDDED_SOURCE = "embedded: 8,000 MNIST digits (tensortrain/datasets/data)"


class MNISTDownloadError(ConnectionError):
    """MNIST could not be downloaded because no mirror could be reached."""


@dataclass(eq=False)
class MNIST:
    """Images and labels of MNIST (or of a subset of it).

    ``train_images`` is ``uint8`` of shape ``(N, 28, 28)``, ``train_labels`` ``uint8`` of shape
    ``(N,)`` with digits 0..9; the test arrays are ``None`` when no ``t10k-*`` files were found.
    ``source`` says where the data came from.
    """

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray | None
    test_labels: np.ndarray | None
    source: str

    @property
    def has_test(self) -> bool:
        """Whether the test split was loaded (``test_images`` is not ``None``)."""
        return self.test_images is not None

    def __repr__(self):
        test = "none" if self.test_images is None else f"{len(self.test_images)}"
        return (f"MNIST(train={len(self.train_images)}, test={test}, "
                f"image_shape={tuple(self.train_images.shape[1:])}, source={self.source!r})")


# ---- IDX parsing ----------------------------------------------------------------------------
def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse the bytes of an IDX file (gzipped or not, detected by the magic bytes ``1f 8b``).

    Returns a NumPy array in native byte order.  Raises
    :class:`~tensortrain.errors.TTFileError` for truncated, damaged or foreign data.
    """
    data = bytes(data)
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as exc:
            raise TTFileError(f"{name} is a damaged or truncated gzip file: {exc}") from exc
    if len(data) < 4:
        raise TTFileError(f"{name} is not an IDX file: only {len(data)} bytes, shorter than "
                          f"the 4-byte magic number")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0:
        raise TTFileError(f"{name} is not an IDX file: its magic number {data[:4].hex()} does "
                          f"not start with two zero bytes")
    if code not in _IDX_DTYPES:
        raise TTFileError(f"{name} is not an IDX file: unknown data type code 0x{code:02x} "
                          f"(known: {', '.join(f'0x{c:02x}' for c in _IDX_DTYPES)})")
    if ndim == 0:
        raise TTFileError(f"{name} is not an IDX file: it declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise TTFileError(f"{name} is truncated: {len(data)} bytes, but its header alone needs "
                          f"{header}")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _IDX_DTYPES[code]
    expected = math.prod(int(v) for v in dims) * dtype.itemsize
    got = len(data) - header
    if got < expected:
        raise TTFileError(f"{name} is truncated: dimensions {dims} of {dtype.name} need "
                          f"{expected} data bytes, but only {got} are present")
    if got > expected:
        raise TTFileError(f"{name} is not a valid IDX file: {got - expected} bytes follow the "
                          f"{expected} data bytes that its dimensions {dims} describe")
    arr = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header)
    return arr.reshape(dims).astype(dtype.newbyteorder("="), copy=True)


def read_idx(path) -> np.ndarray:
    """Read an IDX file (``.gz`` or plain, decided by its first bytes, not its name).

    ``path`` is a path or an ``importlib.resources`` traversable.  A missing file raises
    ``FileNotFoundError``; truncated or foreign content raises
    :class:`~tensortrain.errors.TTFileError`.
    """
    if hasattr(path, "read_bytes") and not isinstance(path, (str, bytes, os.PathLike)):
        data, name = path.read_bytes(), str(path)  # importlib.resources Traversable
    else:
        name = os.fspath(path)
        with open(name, "rb") as f:
            data = f.read()
    return parse_idx(data, name=repr(str(name)))


# ---- locating and loading -------------------------------------------------------------------
def _candidates(prefix, kind, idx):
    for stem in (f"{prefix}-{kind}-{idx}-ubyte", f"{prefix}-{kind}.{idx}-ubyte"):
        yield stem + ".gz"
        yield stem


def _find(directory: Path, prefix, kind, idx):
    for name in _candidates(prefix, kind, idx):
        p = directory / name
        if p.is_file():
            return p
    return None


def _check_pair(images, labels, what):
    if images.ndim != 3 or images.dtype != np.uint8:
        raise TTFileError(f"{what} images must be a 3-dimensional uint8 IDX array, got "
                          f"{images.ndim} dimensions of {images.dtype}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise TTFileError(f"{what} labels must be a 1-dimensional uint8 IDX array, got "
                          f"{labels.ndim} dimensions of {labels.dtype}")
    if len(images) != len(labels):
        raise TTFileError(f"{what} images and labels disagree: {len(images)} images but "
                          f"{len(labels)} labels")
    if labels.size and labels.max() > 9:
        raise TTFileError(f"{what} labels must be digits 0..9, found {int(labels.max())}")


def _load_directory(directory: Path, source: str) -> MNIST:
    tr_img = _find(directory, "train", "images", "idx3")
    tr_lab = _find(directory, "train", "labels", "idx1")
    if tr_img is None or tr_lab is None:
        missing = [f"train-{k}-{i}-ubyte[.gz]" for k, i, p in
                   (("images", "idx3", tr_img), ("labels", "idx1", tr_lab)) if p is None]
        raise FileNotFoundError(
            f"no MNIST training files in {str(directory)!r}: missing {', '.join(missing)} "
            f"(the 'train-images.idx3-ubyte' spelling is accepted too)")
    train_images, train_labels = read_idx(tr_img), read_idx(tr_lab)
    _check_pair(train_images, train_labels, "training")
    te_img = _find(directory, "t10k", "images", "idx3")
    te_lab = _find(directory, "t10k", "labels", "idx1")
    test_images = test_labels = None
    if te_img is not None and te_lab is not None:
        test_images, test_labels = read_idx(te_img), read_idx(te_lab)
        _check_pair(test_images, test_labels, "test")
    return MNIST(train_images, train_labels, test_images, test_labels, source)


def _load_embedded() -> MNIST:
    root = files("tensortrain.datasets") / "data"
    images = read_idx(root / "train-images-idx3-ubyte.gz")
    labels = read_idx(root / "train-labels-idx1-ubyte.gz")
    _check_pair(images, labels, "embedded training")
    return MNIST(images, labels, None, None, _EMBEDDED_SOURCE)


def load_mnist(path=None, download=False, cache_dir=None) -> MNIST:
    """Load MNIST as an :class:`MNIST` record of uint8 arrays.

    - ``load_mnist()``: the 8,000 digits embedded in the package (no test set; see
      ``tensortrain/datasets/data/README.md`` for their origin and licence).
    - ``load_mnist(path=DIR)``: ``train-images-idx3-ubyte[.gz]`` and
      ``train-labels-idx1-ubyte[.gz]`` from ``DIR`` (the ``train-images.idx3-ubyte`` spelling
      works too), plus ``t10k-*`` test files when both are present.
    - ``load_mnist(download=True, cache_dir=None)``: the full 60,000 + 10,000 digits, fetched
      from public mirrors into ``cache_dir`` (default ``~/.cache/tensortrain/mnist``) unless
      already there.  Without a network this raises :class:`MNISTDownloadError` (a
      ``ConnectionError``).
    """
    if download:
        if path is not None:
            raise TTError("pass either path=DIR (local files) or download=True, not both")
        directory = download_mnist(cache_dir)
        return _load_directory(directory, f"downloaded: {directory}")
    if cache_dir is not None:
        raise TTError("cache_dir is used only with download=True")
    if path is None:
        return _load_embedded()
    directory = Path(os.fspath(path)).expanduser()
    if not directory.exists():
        raise FileNotFoundError(f"MNIST directory {str(directory)!r} does not exist")
    if not directory.is_dir():
        raise TTFileError(f"load_mnist(path=...) expects a directory holding the IDX files, "
                          f"got the file {str(directory)!r}")
    return _load_directory(directory, str(directory))


# ---- download -------------------------------------------------------------------------------
def _md5_ok(data: bytes, name: str) -> bool:
    want = _MNIST_MD5.get(name)
    return want is None or hashlib.md5(data).hexdigest() == want


def _fetch(url, timeout):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read()


def download_mnist(cache_dir=None, mirrors=None, timeout=30.0) -> Path:
    """Download the four MNIST files into ``cache_dir`` (skipping those already valid there).

    Each file is checked against its known MD5 digest and parsed before it is kept, and is
    written atomically (no partial files).  Returns the directory.  Raises
    :class:`MNISTDownloadError` when no mirror can be reached, and
    :class:`~tensortrain.errors.TTFileError` when mirrors answer with wrong content.
    """
    directory = Path(os.fspath(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR)
    directory = directory.expanduser()
    mirrors = tuple(MIRRORS if mirrors is None else mirrors)
    directory.mkdir(parents=True, exist_ok=True)
    for name in _MNIST_MD5:
        target = directory / name
        if target.is_file():
            data = target.read_bytes()
            if _md5_ok(data, name):
                continue
        network_errors, content_errors = [], []
        for base in mirrors:
            url = base.rstrip("/") + "/" + name
            try:
                data = _fetch(url, timeout)
            except (urllib.error.URLError, OSError) as exc:  # URLError, timeouts, resets
                network_errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
                continue
            if not _md5_ok(data, name):
                content_errors.append(f"{url}: MD5 {hashlib.md5(data).hexdigest()} "
                                      f"differs from the expected {_MNIST_MD5[name]}")
                continue
            try:
                parse_idx(data, name=url)
            except TTFileError as exc:
                content_errors.append(str(exc))
                continue
            fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                os.replace(tmp, target)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise
            break
        else:
            if content_errors:
                raise TTFileError(f"could not download a valid copy of MNIST file {name}: "
                                  + "; ".join(content_errors + network_errors))
            raise MNISTDownloadError(
                f"could not download MNIST file {name}: the network is unreachable (every "
                f"mirror failed: {'; '.join(network_errors) or 'no mirrors given'}). "
                f"Download train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                f"t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz by hand into a "
                f"directory and pass it as load_mnist(path=DIR) (or --data DIR on the command "
                f"line), or call load_mnist() without arguments to use the 8,000 embedded "
                f"digits.")
    return directory


# ---- helpers --------------------------------------------------------------------------------
def preprocess(images, pad_to=32, dtype=np.float32, flatten=True):
    """Scale uint8 images ``(N, H, W)`` to ``[0, 1]``, zero-pad them to ``pad_to x pad_to``.

    The padding is centered (28 x 28 -> 32 x 32 adds 2 pixels on each side, as in Novikov et
    al.); ``pad_to=None`` keeps the size.  With ``flatten`` the result has shape
    ``(N, pad_to**2)``.  Works on NumPy or CuPy arrays (the result stays on that backend).
    """
    xp = get_xp(images)
    images = xp.asarray(images)
    if images.ndim != 3:
        raise ShapeError(f"preprocess expects images of shape (N, H, W), got {images.shape}")
    n, h, w = images.shape
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"preprocess needs a floating dtype, got {dt}")
    dtype = dt.type
    out = images.astype(dt) / dt.type(255)
    if pad_to is not None:
        pad_to = int(pad_to)
        if pad_to < h or pad_to < w:
            raise TTError(f"pad_to={pad_to} is smaller than the images ({h} x {w})")
        if (pad_to, pad_to) != (h, w):
            top, left = (pad_to - h) // 2, (pad_to - w) // 2
            padded = xp.zeros((n, pad_to, pad_to), dtype=dtype)
            padded[:, top:top + h, left:left + w] = out
            out = padded
    return out.reshape(n, -1) if flatten else out


def train_val_split(n, n_val, seed=0):
    """Random disjoint index arrays ``(train_idx, val_idx)`` covering ``range(n)``.

    ``val_idx`` has ``n_val`` entries; both are sorted host ``int64`` arrays.
    """
    n, n_val = int(n), int(n_val)
    if not 0 <= n_val < n:
        raise TTError(f"n_val must be in [0, n) = [0, {n}), got {n_val}")
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])

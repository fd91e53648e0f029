"""Saving and loading TT objects as ``.npz`` files (never pickled)."""

from __future__ import annotations

import os
import zipfile
from typing import Any

import numpy as np

from ._backend import resolve_xp, to_host
from ._validation import ArrayModule
from .errors import TTFileError
from .matrix import TTMatrix
from .tensor import TTTensor

__all__ = ["FORMAT_VERSION", "load", "save"]

FORMAT_NAME = "tensortrain"
FORMAT_VERSION = 1


def save(path: str | os.PathLike[str], obj: TTTensor | TTMatrix) -> None:
    """Write a TTTensor or TTMatrix to ``path`` (a ``.npz`` archive, uncompressed).

    The archive holds ``format``, ``version``, ``kind``, the cores ``core_0 ... core_{d-1}``
    (copied to the host) and, for a TTMatrix, its logical ``shape``.

    Complexity: time and disk space linear in the total size of the cores.
    """
    if not isinstance(obj, (TTTensor, TTMatrix)):
        raise TypeError(f"save() writes a TTTensor or TTMatrix, got {type(obj).__name__}")
    arrays: dict[str, Any] = {
        "format": np.array(FORMAT_NAME),
        "version": np.array(FORMAT_VERSION),
        "kind": np.array(type(obj).__name__),
        "d": np.array(obj.d),
    }
    for k, c in enumerate(obj.cores):
        arrays[f"core_{k}"] = to_host(c)
    if isinstance(obj, TTMatrix):
        arrays["shape"] = np.array(obj.shape, dtype=np.int64)
    with open(os.fspath(path), "wb") as f:
        np.savez(f, **arrays)


def load(path: str | os.PathLike[str], *, xp: ArrayModule = None) -> TTTensor | TTMatrix:
    """Read a TT object written by :func:`save`; cores go to backend ``xp`` (NumPy default).

    Raises ``FileNotFoundError`` for a missing file and :class:`~tensortrain.errors.TTFileError`
    for a truncated or foreign file, or one of another format version.  Object arrays are never unpickled.

    Complexity: time and memory linear in the total size of the cores.
    """
    xp = resolve_xp(xp)
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic[:2] != b"PK":
            raise TTFileError(f"{path!r} is not a readable tensortrain .npz file (truncated or "
                              f"foreign): it is not a zip archive")
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except TTFileError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise TTFileError(
            f"{path!r} is not a readable tensortrain .npz file (truncated or foreign): {exc}"
        ) from exc
    except Exception as exc:  # zlib/struct errors of damaged members
        raise TTFileError(f"{path!r} could not be read (damaged archive): {exc}") from exc
    if str(data.get("format", "")) != FORMAT_NAME:
        raise TTFileError(f"{path!r} is not a tensortrain file (no 'format={FORMAT_NAME}' entry)")
    version = _scalar_int(data, "version", path)
    if version != FORMAT_VERSION:
        raise TTFileError(
            f"{path!r} has format version {version}; this tensortrain reads version "
            f"{FORMAT_VERSION}")
    kind = str(data.get("kind", ""))
    d = _scalar_int(data, "d", path)
    try:
        cores = [xp.asarray(data[f"core_{k}"]) for k in range(d)]
    except KeyError as exc:
        raise TTFileError(f"{path!r} is missing the entry {exc.args[0]!r}") from None
    try:
        if kind == "TTTensor":
            return TTTensor(cores)
        if kind == "TTMatrix":
            if "shape" not in data:
                raise TTFileError(f"{path!r} is missing the entry 'shape'")
            shape = data["shape"]
            if shape.shape != (2,) or shape.dtype.kind not in "iu":
                raise TTFileError(f"{path!r} has a malformed 'shape' entry: expected two "
                                  f"integers, got {shape.dtype} with shape {shape.shape}")
            return TTMatrix(cores, (int(shape[0]), int(shape[1])))
    except (TypeError, ValueError) as exc:
        if isinstance(exc, TTFileError):
            raise
        raise TTFileError(f"{path!r} holds an invalid {kind}: {exc}") from exc
    raise TTFileError(f"{path!r} holds an unknown kind {kind!r}; expected TTTensor or TTMatrix")


def _scalar_int(data, key, path):
    """An integer scalar entry of the archive, or TTFileError."""
    if key not in data:
        raise TTFileError(f"{path!r} is missing the entry {key!r}")
    value = data[key]
    if value.shape != () or value.dtype.kind not in "iu":
        raise TTFileError(f"{path!r} has a malformed {key!r} entry: expected an integer "
                          f"scalar, got {value.dtype} with shape {value.shape}")
    return int(value)

"""Saving a :class:`~tensortrain.nn.module.Sequential` model with its architecture, never pickled.

A model is described by a small JSON *config*::

    {"layers": [{"type": "TTLinear", "in_features": 1024, "out_features": 1024, "ranks": 8,
                 "in_modes": [4, 8, 8, 4], "out_modes": [4, 8, 8, 4]},
                {"type": "ReLU"},
                {"type": "Linear", "in_features": 1024, "out_features": 10}],
     "dtype": "float32", "meta": {...}}

:func:`build_model` turns it into a ``Sequential``; :func:`save_model` writes the config (as a
JSON string entry ``__model_config__``) and the ``state_dict`` (entries ``state/<name>``) to an
``.npz`` archive with ``np.savez``; :func:`load_model` rebuilds the model and loads the arrays,
so its predictions are identical.

Files are read defensively: :func:`load_model` reads the array *headers* of the archive first,
checks the config (types, sizes, layer options) and the shapes it implies against the arrays
the file actually stores, and only then builds the layers, so a crafted config cannot make it
allocate more than the file holds.  Every malformed file raises
:class:`~tensortrain.errors.TTFileError`.  :func:`save_model` checks that the config is plain
JSON and describes the model before it writes anything, and writes through a temporary file in
the same directory that replaces the target only when complete.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import json
import math
import numbers
import os
import secrets
import stat
import zipfile

import numpy as np

from .._backend import resolve_xp
from .._validation import check_ranks
from ..errors import TTError, TTFileError
from ..shapes import choose_matrix_modes
from .init import check_init, make_rng
from .module import Module, Sequential

__all__ = ["LAYER_TYPES", "build_model", "load_model", "read_model_config", "save_model"]

FORMAT_NAME = "tensortrain.nn.Sequential"
FORMAT_VERSION = 1
_CONFIG_KEY = "__model_config__"
_PARAM_PREFIX = "state/"
_NPY = ".npy"

#: layer type name -> (module, class name, whether the constructor takes dtype/xp/rng)
LAYER_TYPES = {
    "TTLinear": ("tt_layer", "TTLinear", ("dtype", "xp", "rng")),
    "Linear": ("layers", "Linear", ("dtype", "xp", "rng")),
    "ReLU": ("layers", "ReLU", ()),
    "Tanh": ("layers", "Tanh", ()),
    "Dropout": ("layers", "Dropout", ("rng",)),
    "BatchNorm1d": ("layers", "BatchNorm1d", ("dtype", "xp")),
}

# The options a layer spec may carry in a saved config, and what each must be.  The backend
# ("xp") is not among them: the caller of load_model chooses it.
_OPTIONS = {
    "TTLinear": {"in_features": "size", "out_features": "size", "ranks": "ranks",
                 "in_modes": "modes", "out_modes": "modes", "bias": "bool", "init": "init",
                 "dtype": "dtype", "rng": "seed"},
    "Linear": {"in_features": "size", "out_features": "size", "bias": "bool", "init": "init",
               "dtype": "dtype", "rng": "seed"},
    "ReLU": {},
    "Tanh": {},
    "Dropout": {"p": "probability", "rng": "seed"},
    "BatchNorm1d": {"num_features": "size", "eps": "positive", "momentum": "fraction",
                    "affine": "bool", "dtype": "dtype"},
}
_REQUIRED = {"TTLinear": ("in_features", "out_features", "ranks"),
             "Linear": ("in_features", "out_features"),
             "BatchNorm1d": ("num_features",)}
_DTYPES = ("float32", "float64")


def _layer_class(name):
    if name not in LAYER_TYPES:
        raise TTError(f"unknown layer type {name!r} in the model config; known: "
                      f"{', '.join(LAYER_TYPES)}")
    module, cls, takes = LAYER_TYPES[name]
    return getattr(importlib.import_module(f"{__package__}.{module}"), cls), takes


def build_model(config, xp=None, rng=None):
    """A ``Sequential`` built from ``config`` (see the module docstring) on backend ``xp``.

    ``rng`` (seed or numpy Generator) initializes the parameters.
    """
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise TTError("a model config is a dict with a 'layers' list")
    xp = resolve_xp(xp)
    rng = make_rng(rng)
    dtype = np.dtype(config.get("dtype", "float32"))
    layers = []
    for i, spec in enumerate(config["layers"]):
        if not isinstance(spec, dict) or "type" not in spec:
            raise TTError(f"layer {i} of the model config needs a 'type': {spec!r}")
        cls, takes = _layer_class(spec["type"])
        kwargs = {k: v for k, v in spec.items() if k != "type"}
        extra = {"dtype": dtype, "xp": xp, "rng": rng}
        kwargs.update({k: extra[k] for k in takes if k not in kwargs})
        try:
            layers.append(cls(**kwargs))
        except TypeError as exc:
            raise TTError(f"layer {i} ({spec['type']}) of the model config: {exc}") from exc
    return Sequential(*layers)


# ---- checking a config ----------------------------------------------------------------------
def _kind(value):
    """What a value is, in JSON words (for messages)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({'true' if value else 'false'})"
    if isinstance(value, numbers.Number):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value!r}" if len(value) <= 40 else "a string"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, dict):
        return "an object"
    return f"a value of type {_type_name(value)}"


def _type_name(value):
    cls = type(value)
    if cls.__module__ == "builtins":
        return cls.__qualname__
    return f"{cls.__module__}.{cls.__qualname__}"


def _json_problem(value, where, active):
    """A sentence saying where ``value`` is not plain JSON, or None when it is."""
    if value is None or isinstance(value, (str, int)):  # bool is an int
        return None
    if isinstance(value, float):  # also numpy.float64, a float subclass
        if math.isfinite(value):
            return None
        return f"{where} is {value!r}, which JSON cannot store"
    if isinstance(value, (list, tuple, dict)):
        if id(value) in active:
            return f"{where} contains itself"
        active.add(id(value))
        try:
            if isinstance(value, dict):
                for key, item in value.items():
                    if not isinstance(key, str):
                        return (f"{where} has the key {key!r} ({type(key).__name__}); JSON "
                                f"object keys are strings")
                    problem = _json_problem(item, f"{where}[{key!r}]", active)
                    if problem:
                        return problem
            else:
                for i, item in enumerate(value):
                    problem = _json_problem(item, f"{where}[{i}]", active)
                    if problem:
                        return problem
        finally:
            active.discard(id(value))
        return None
    hint = " (convert it first, e.g. with .tolist())" if hasattr(value, "tolist") else ""
    return (f"{where} has type {_type_name(value)}, which JSON cannot store{hint}; a model "
            f"config holds only dicts, lists, strings, numbers, booleans and None")


def _check_json(config):
    try:
        problem = _json_problem(config, "config", set())
    except RecursionError:
        problem = "config is nested too deeply"
    if problem:
        raise TTError(f"the model config is not plain JSON: {problem}")


def _is_positive_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


def _real(value):
    return (isinstance(value, numbers.Real) and not isinstance(value, bool)
            and math.isfinite(value))


def _check_option(value, kind, where, error):
    """Raise ``error(message)`` unless ``value`` is valid for an option of this kind."""
    if kind == "size":
        if not _is_positive_int(value):
            raise error(f"{where} must be a positive integer, got {_kind(value)}")
    elif kind == "bool":
        if not isinstance(value, bool):
            raise error(f"{where} must be true or false, got {_kind(value)}")
    elif kind == "dtype":
        if value not in _DTYPES:
            raise error(f"{where} must be 'float32' or 'float64', got {_kind(value)}")
    elif kind == "init":
        try:
            check_init(value)
        except (TypeError, ValueError) as exc:
            raise error(f"{where}: {exc}") from None
    elif kind == "ranks":
        ok = _is_positive_int(value) or (isinstance(value, (list, tuple)) and len(value) > 0
                                      and all(_is_positive_int(r) for r in value))
        if not ok:
            raise error(f"{where} must be a positive integer or a list of them, got "
                        f"{_kind(value)}")
    elif kind == "modes":
        ok = value is None or (isinstance(value, (list, tuple)) and len(value) > 0
                               and all(_is_positive_int(m) for m in value))
        if not ok:
            raise error(f"{where} must be null or a non-empty list of positive integers, got "
                        f"{_kind(value)}")
    elif kind == "seed":
        ok = value is None or (isinstance(value, numbers.Integral)
                               and not isinstance(value, bool) and value >= 0)
        if not ok:
            raise error(f"{where} must be null or an integer >= 0, got {_kind(value)}")
    elif kind == "probability":
        if not (_real(value) and 0 <= value < 1):
            raise error(f"{where} must be a number in [0, 1), got {_kind(value)}")
    elif kind == "fraction":
        if not (_real(value) and 0 <= value <= 1):
            raise error(f"{where} must be a number in [0, 1], got {_kind(value)}")
    elif kind == "positive":
        if not (_real(value) and value > 0):
            raise error(f"{where} must be a number > 0, got {_kind(value)}")
    else:  # pragma: no cover - a typo in _OPTIONS
        raise AssertionError(kind)


def _check_config(config, error):
    """Check the structure, types and values of ``config``; ``error(msg)`` makes the exception.

    Nothing is allocated here: sizes are only checked to be positive integers.
    """
    if not isinstance(config, dict):
        raise error(f"the model config must be a JSON object (a dict) with a 'layers' list, "
                    f"got {_kind(config)}")
    if "layers" not in config:
        raise error("the model config has no 'layers' entry")
    layers = config["layers"]
    if not isinstance(layers, (list, tuple)):
        raise error(f"the model config's 'layers' must be a list, got {_kind(layers)}")
    if "dtype" in config:
        _check_option(config["dtype"], "dtype", "the model config's 'dtype'", error)
    known = ", ".join(_OPTIONS)
    for i, spec in enumerate(layers):
        if not isinstance(spec, dict):
            raise error(f"layer {i} of the model config must be an object with a 'type', got "
                        f"{_kind(spec)}")
        if "type" not in spec:
            raise error(f"layer {i} of the model config has no 'type'; known types: {known}")
        name = spec["type"]
        if not isinstance(name, str) or name not in _OPTIONS:
            got = repr(name) if isinstance(name, str) else _kind(name)
            raise error(f"layer {i} of the model config has the unknown type {got}; known "
                        f"types: {known}")
        options = _OPTIONS[name]
        where = f"layer {i} ({name})"
        for key, value in spec.items():
            if key == "type":
                continue
            if key not in options:
                takes = ", ".join(repr(k) for k in options) or "no options"
                raise error(f"{where} has the unknown option {key!r}; {name} takes {takes}")
            _check_option(value, options[key], f"{where} option {key!r}", error)
        missing = [k for k in _REQUIRED.get(name, ()) if k not in spec]
        if missing:
            raise error(f"{where} is missing {', '.join(repr(k) for k in missing)}")


def _prefix_products(sizes):
    """``left[k] = prod(sizes[:k])`` and ``right[k] = prod(sizes[k:])`` for k = 0..d."""
    d = len(sizes)
    left, right = [1] * (d + 1), [1] * (d + 1)
    for k in range(d):
        left[k + 1] = left[k] * sizes[k]
    for k in range(d - 1, -1, -1):
        right[k] = right[k + 1] * sizes[k]
    return left, right


def _tt_shapes(i, spec, prefix, shapes, error, default_modes):
    """Core and bias shapes of TTLinear layer ``i``, and its spec with the modes filled in.

    Modes missing from the spec are taken from the stored cores (``default_modes=False``, used
    when loading: no factorization of a possibly huge size is attempted, and files stay
    loadable if the default choice of modes changes) or chosen as ``TTLinear`` chooses them
    (``default_modes=True``, used when saving a model that exists).
    """
    where = f"layer {i} (TTLinear)"
    n_in, n_out = spec["in_features"], spec["out_features"]
    in_modes, out_modes = spec.get("in_modes"), spec.get("out_modes")
    if in_modes is not None and out_modes is not None and len(in_modes) != len(out_modes):
        raise error(f"{where} has {len(in_modes)} in_modes but {len(out_modes)} out_modes")
    if in_modes is None or out_modes is None:
        if default_modes:
            try:
                out_modes, in_modes = choose_matrix_modes((n_out, n_in), out_modes, in_modes)
            except (TypeError, ValueError) as exc:
                raise error(f"{where}: {exc}") from None
        else:
            d = len(in_modes if in_modes is not None else out_modes or ())
            if d == 0:
                while f"{prefix}cores.{d}" in shapes:
                    d += 1
            cores = [shapes.get(f"{prefix}cores.{k}") for k in range(d)]
            if d == 0 or any(s is None or len(s) != 4 or min(s) < 1 for s in cores):
                raise error(f"{where} gives no modes and the file does not store its cores "
                            f"as 4-D arrays cores.0, cores.1, ...")
            out_modes = out_modes if out_modes is not None else [s[1] for s in cores]
            in_modes = in_modes if in_modes is not None else [s[2] for s in cores]
    out_modes, in_modes = [int(m) for m in out_modes], [int(m) for m in in_modes]
    d = len(in_modes)
    for modes, n, what in ((out_modes, n_out, "out"), (in_modes, n_in, "in")):
        if math.prod(modes) < n:
            raise error(f"{where}: {what}_modes {modes} multiply to {math.prod(modes)}, fewer "
                        f"than its {n} {what}_features")
    try:
        ranks = list(check_ranks(spec["ranks"], d))
    except (TypeError, ValueError) as exc:
        raise error(f"{where} option 'ranks': {exc}") from None
    left, right = _prefix_products([m * n for m, n in zip(out_modes, in_modes, strict=True)])
    for k in range(1, d):  # TTLinear caps every rank at the largest useful value
        ranks[k] = min(ranks[k], left[k], right[k])
    out = {f"{prefix}cores.{k}": (ranks[k], out_modes[k], in_modes[k], ranks[k + 1])
           for k in range(d)}
    if spec.get("bias", True):
        out[f"{prefix}bias"] = (n_out,)
    filled = dict(spec, in_modes=in_modes, out_modes=out_modes)
    return out, filled


def _expected_shapes(config, shapes, error, default_modes):
    """The arrays (name -> shape) that a model built from ``config`` holds, and the layer specs
    to build it from.  ``shapes`` are the arrays at hand (those of the file or of the model).
    """
    expected, specs = {}, []
    for i, spec in enumerate(config["layers"]):
        prefix = f"layers.{i}."
        name = spec["type"]
        if name == "Linear":
            n_in, n_out = spec["in_features"], spec["out_features"]
            expected[f"{prefix}weight"] = (n_out, n_in)
            if spec.get("bias", True):
                expected[f"{prefix}bias"] = (n_out,)
        elif name == "BatchNorm1d":
            c = spec["num_features"]
            if spec.get("affine", True):
                expected[f"{prefix}weight"] = (c,)
                expected[f"{prefix}bias"] = (c,)
            expected[f"{prefix}running_mean"] = (c,)
            expected[f"{prefix}running_var"] = (c,)
        elif name == "TTLinear":
            tt, spec = _tt_shapes(i, spec, prefix, shapes, error, default_modes)
            expected.update(tt)
        specs.append(spec)
    return expected, specs


def _count(shape):
    return math.prod(int(n) for n in shape)


def _shape_mismatch(expected, shapes):
    """A sentence describing how ``shapes`` differ from ``expected``, or None."""
    parts = []
    want, have = sum(map(_count, expected.values())), sum(map(_count, shapes.values()))
    if want != have:
        parts.append(f"the config implies {want:,} parameters in {len(expected)} arrays, the "
                     f"stored arrays hold {have:,} in {len(shapes)}")
    missing = [k for k in expected if k not in shapes]
    unexpected = [k for k in shapes if k not in expected]
    if missing:
        parts.append(f"missing arrays {missing[:5]}" + (" ..." if len(missing) > 5 else ""))
    if unexpected:
        parts.append(f"unexpected arrays {unexpected[:5]}"
                     + (" ..." if len(unexpected) > 5 else ""))
    wrong = [k for k in expected if k in shapes and tuple(shapes[k]) != tuple(expected[k])]
    for k in wrong[:3]:
        parts.append(f"array {k!r} has shape {tuple(shapes[k])}, the config asks for "
                     f"{tuple(expected[k])}")
    return "; ".join(parts) or None


# ---- writing --------------------------------------------------------------------------------
def _write_atomic(path, arrays):
    """``np.savez`` into a temporary file next to ``path`` that then replaces ``path``.

    A failure (disk full, interrupted) leaves no partial file and keeps an existing ``path``.
    Existing non-regular targets (``/dev/null``, a FIFO) are written directly.
    """
    target = os.fspath(path)
    if isinstance(target, bytes):
        target = os.fsdecode(target)
    if os.path.isdir(target):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), target)
    if os.path.exists(target) and not os.path.isfile(target):
        with open(target, "wb") as f:
            np.savez(f, **arrays)
        return
    real = os.path.realpath(target)  # write through a symbolic link, not over it
    if os.path.exists(real) and not os.access(real, os.W_OK):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), target)
    tmp = os.path.join(os.path.dirname(real),
                       f".{os.path.basename(real)}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                     0o666)
    except OSError as exc:
        if exc.errno is None:
            raise
        raise OSError(exc.errno, exc.strerror, target) from exc
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(OSError):  # keep the permissions of a file it replaces
            os.chmod(tmp, stat.S_IMODE(os.stat(real).st_mode))
        os.replace(tmp, real)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and exc.errno is not None:
            raise OSError(exc.errno, exc.strerror, target) from exc
        raise


def save_model(path, model, config):
    """Write ``model`` (its ``state_dict``) and its ``config`` to ``path`` with ``np.savez``.

    ``config`` must be plain JSON (dicts, lists, strings, finite numbers, booleans, None) and
    describe ``model``: its layer options are checked and the arrays it implies are compared
    with the model's, by name and shape, before anything is written.  The file is written
    to a temporary file in the same directory that replaces ``path`` only once complete, so a
    failed save leaves neither a partial file nor a damaged older one.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write (conventionally ``.npz``).
    model : Module
        Usually a ``Sequential`` built with :func:`build_model` from ``config``.
    config : dict
        The description of the model (see the module docstring).

    Returns
    -------
    path
        The ``path`` given.

    Raises
    ------
    TypeError
        When ``model`` is not a ``Module``.
    tensortrain.errors.TTError
        When ``config`` is not plain JSON (the message names the offending key), is malformed,
        or does not describe ``model``.
    OSError
        When the file cannot be written; ``path`` is then left as it was.
    """
    if not isinstance(model, Module):
        raise TypeError(f"save_model writes a Module, got {type(model).__name__}")
    if not isinstance(config, dict):
        raise TTError(f"the model config must be a dict with a 'layers' list, got "
                      f"{_kind(config)}")
    _check_json(config)
    for key, value in (("format", FORMAT_NAME), ("version", FORMAT_VERSION)):
        if key in config and config[key] != value:
            raise TTError(f"the model config's {key!r} entry is reserved; it must be absent or "
                          f"{value!r}, got {config[key]!r}")
    _check_config(config, TTError)
    state = model.state_dict()
    shapes = {k: tuple(v.shape) for k, v in state.items()}

    def mismatch(message):
        return TTError(f"the config does not describe the model: {message}")

    expected, _ = _expected_shapes(config, shapes, mismatch, default_modes=True)
    problem = _shape_mismatch(expected, shapes)
    if problem:
        raise mismatch(f"{problem} (the config's arrays are {expected}, the model's are "
                       f"{shapes})" if len(expected) + len(shapes) <= 20 else problem)
    if isinstance(model, Sequential):
        layers = config["layers"]
        if len(model.layers) != len(layers):
            raise mismatch(f"the config has {len(layers)} layers, the model {len(model.layers)}")
        for i, (layer, spec) in enumerate(zip(model.layers, layers, strict=True)):
            cls, _ = _layer_class(spec["type"])
            if not isinstance(layer, cls):
                raise mismatch(f"layer {i} is a {type(layer).__name__}, the config says "
                               f"{spec['type']}")
    text = json.dumps({"format": FORMAT_NAME, "version": FORMAT_VERSION, **config},
                      allow_nan=False)
    arrays = {_CONFIG_KEY: np.array(text)}
    arrays.update({_PARAM_PREFIX + k: v for k, v in state.items()})
    _write_atomic(path, arrays)
    return path


# ---- reading --------------------------------------------------------------------------------
class _Archive:
    """A model file opened as a zip archive; arrays are read only when asked for."""

    def __init__(self, path):
        self.path = os.fspath(path)
        self.name = repr(self.path)
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"no such file: {self.path!r}")
        if os.path.isdir(self.path):
            raise TTFileError(f"{self.name} is a directory, not a tensortrain model file")
        try:
            self.zip = zipfile.ZipFile(self.path)
            self.members = {info.filename: info for info in self.zip.infolist()}
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError) as exc:
            raise TTFileError(f"{self.name} is not a readable tensortrain model file "
                              f"(truncated or foreign): {exc}") from exc

    def close(self):
        self.zip.close()

    def error(self, message):
        return TTFileError(f"{self.name}: {message}")

    def _damaged(self, member, exc):
        return TTFileError(f"{self.name} could not be read (damaged archive member "
                           f"{member!r}): {exc}")

    def header(self, member):
        """``(shape, dtype)`` from the header of an ``.npy`` member; reads no data."""
        info = self.members[member]
        try:
            with self.zip.open(info) as fp:
                version = np.lib.format.read_magic(fp)
                if version == (1, 0):
                    shape, _fortran, dtype = np.lib.format.read_array_header_1_0(fp)
                elif version == (2, 0):
                    shape, _fortran, dtype = np.lib.format.read_array_header_2_0(fp)
                else:
                    raise TTError(f"unsupported .npy format version {version}")
                offset = fp.tell()
        except TTFileError:
            raise
        except Exception as exc:  # bad magic, header, zlib stream or zip entry
            raise self._damaged(member, exc) from exc
        if dtype.hasobject:
            raise self.error(f"member {member!r} holds Python objects, which are never loaded")
        nbytes = _count(shape) * dtype.itemsize
        # zip stops reading a member at its declared size, and DEFLATE expands at most about
        # 1032-fold: a header that promises more than the member can hold is a forgery
        if info.file_size != offset + nbytes or (
                info.compress_type != zipfile.ZIP_STORED
                and info.file_size > 1100 * info.compress_size + 1024):
            raise self.error(f"member {member!r} declares shape {tuple(shape)} ({dtype}), "
                             f"{nbytes:,} bytes, which its {info.file_size:,} stored bytes do "
                             f"not match (truncated or forged)")
        return tuple(int(n) for n in shape), dtype

    def array(self, member):
        """The array of an ``.npy`` member (whose header :meth:`header` has checked)."""
        try:
            with self.zip.open(self.members[member]) as fp:
                return np.lib.format.read_array(fp, allow_pickle=False)
        except Exception as exc:
            raise self._damaged(member, exc) from exc

    def config(self):
        """The stored config, checked to be a dict of this format and version."""
        member = _CONFIG_KEY + _NPY
        if member not in self.members:
            raise TTFileError(f"{self.name} is not a tensortrain model file (no {_CONFIG_KEY!r} "
                              f"entry)")
        shape, dtype = self.header(member)
        if shape != () or dtype.kind != "U":
            raise self.error(f"its {_CONFIG_KEY!r} entry must be a single string, got an array "
                             f"of shape {shape} and dtype {dtype}")
        text = str(self.array(member))
        try:
            config = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise TTFileError(f"{self.name} has a damaged model config: {exc}") from exc
        if not isinstance(config, dict):
            raise self.error(f"the model config must be a JSON object with 'format', 'version' "
                             f"and 'layers' entries, got {_kind(config)}")
        if config.get("format") != FORMAT_NAME:
            raise TTFileError(f"{self.name} is not a tensortrain model file (format "
                              f"{config.get('format')!r})")
        if config.get("version") != FORMAT_VERSION:
            raise TTFileError(f"{self.name} has model format version {config.get('version')!r}; "
                              f"this tensortrain reads version {FORMAT_VERSION}")
        return config

    def state_headers(self):
        """name -> (shape, dtype) of every stored array, from the headers only."""
        out = {}
        for member in self.members:
            if not member.startswith(_PARAM_PREFIX):
                continue
            if not member.endswith(_NPY):
                raise self.error(f"unexpected member {member!r} (arrays are .npy entries)")
            name = member[len(_PARAM_PREFIX):-len(_NPY)]
            shape, dtype = self.header(member)
            if dtype.kind not in "fiu":
                raise self.error(f"array {name!r} has dtype {dtype}; model arrays are real "
                                 f"numbers")
            out[name] = (shape, dtype)
        return out


def read_model_config(path) -> dict:
    """The config stored in a model file (with its ``format`` and ``version`` entries).

    Only the config entry is read, not the arrays.  Raises ``FileNotFoundError`` for a missing
    file and :class:`~tensortrain.errors.TTFileError` when the file is not a model file of this
    format.
    """
    archive = _Archive(path)
    try:
        return archive.config()
    finally:
        archive.close()


def load_model(path, xp=None):
    """Rebuild the model saved by :func:`save_model` on backend ``xp`` (NumPy by default).

    The file is checked before any layer is built: the config must be a JSON object whose
    layers have known types and valid options (positive integer sizes, booleans, ...), and
    the arrays it implies must be exactly those stored, by name and shape (so the model
    never takes more memory than the file's arrays).  Only then are the arrays read and
    the layers built.

    Parameters
    ----------
    path : str or os.PathLike
        A file written by :func:`save_model`.
    xp : None, 'numpy', 'cupy' or the module
        Backend of the rebuilt model's parameters.

    Returns
    -------
    Sequential
        The model, with the stored parameters and buffers.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    tensortrain.errors.TTFileError
        For a foreign, truncated, damaged or forged file, a malformed config (not an object,
        missing keys, wrong types, negative or boolean sizes, unknown layer types or
        options), or stored arrays that disagree with the config.
    """
    xp = resolve_xp(xp)  # a missing backend is not the file's fault: raise its own error
    archive = _Archive(path)
    try:
        config = archive.config()
        _check_config(config, archive.error)
        headers = archive.state_headers()
        shapes = {k: shape for k, (shape, _) in headers.items()}
        expected, specs = _expected_shapes(config, shapes, archive.error, default_modes=False)
        problem = _shape_mismatch(expected, shapes)
        if problem:
            raise archive.error(f"the stored arrays do not fit the stored config: {problem}")
        state = {k: archive.array(_PARAM_PREFIX + k + _NPY) for k in expected}
    finally:
        archive.close()
    try:
        model = build_model({**config, "layers": specs}, xp=xp)
    except (KeyError, ValueError, TypeError, AttributeError, ImportError) as exc:
        raise TTFileError(f"{archive.name} holds a model description that cannot be "
                          f"built: {exc}") from exc
    try:
        model.load_state_dict(state)
    except (KeyError, ValueError, TypeError) as exc:
        raise TTFileError(f"{archive.name}: the stored arrays do not fit the stored "
                          f"config: {exc}") from exc
    return model

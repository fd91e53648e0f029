"""Saving a :class:`~tensortrain.nn.module.Sequential` model with its architecture, never pickled.

A model is described by a small JSON *config*::

    {"layers": [{"type": "TTLinear", "in_features": 1024, "out_features": 1024, "ranks": 8,
                 "in_modes": [4, 8, 8, 4], "out_modes": [4, 8, 8, 4]},
                {"type": "ReLU"},
                {"type": "Linear", "in_features": 1024, "out_features": 10}],
     "dtype": "float32", "meta": {...}}

:func:`build_model` turns it into a ``Sequential``; :func:`save_model` writes the config (as a
JSON string entry) and the ``state_dict`` to an ``.npz`` archive with ``np.savez``;
:func:`load_model` rebuilds the model and loads the arrays, so its predictions are identical.
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np

from .._backend import resolve_xp
from ..errors import TTFileError
from .module import Module, Sequential

__all__ = ["build_model", "save_model", "load_model", "read_model_config", "LAYER_TYPES"]

FORMAT_NAME = "tensortrain.nn.Sequential"
FORMAT_VERSION = 1
_CONFIG_KEY = "__model_config__"
_PARAM_PREFIX = "state/"

#: layer type name -> (module, class name, whether the constructor takes dtype/xp/rng)
LAYER_TYPES = {
    "TTLinear": ("tt_layer", "TTLinear", ("dtype", "xp", "rng")),
    "Linear": ("layers", "Linear", ("dtype", "xp", "rng")),
    "ReLU": ("layers", "ReLU", ()),
    "Tanh": ("layers", "Tanh", ()),
    "Dropout": ("layers", "Dropout", ("rng",)),
    "BatchNorm1d": ("layers", "BatchNorm1d", ("dtype", "xp")),
}


def _layer_class(name):
    import importlib  # noqa: PLC0415

    if name not in LAYER_TYPES:
        raise ValueError(f"unknown layer type {name!r} in the model config; known: "
                         f"{', '.join(LAYER_TYPES)}")
    module, cls, takes = LAYER_TYPES[name]
    return getattr(importlib.import_module(f"{__package__}.{module}"), cls), takes


def build_model(config, xp=None, rng=None):
    """A ``Sequential`` built from ``config`` (see the module docstring) on backend ``xp``.

    ``rng`` (seed or numpy Generator) initializes the parameters.
    """
    if not isinstance(config, dict) or not isinstance(config.get("layers"), list):
        raise ValueError("a model config is a dict with a 'layers' list")
    xp = resolve_xp(xp)
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    dtype = np.dtype(config.get("dtype", "float32"))
    layers = []
    for i, spec in enumerate(config["layers"]):
        if not isinstance(spec, dict) or "type" not in spec:
            raise ValueError(f"layer {i} of the model config needs a 'type': {spec!r}")
        cls, takes = _layer_class(spec["type"])
        kwargs = {k: v for k, v in spec.items() if k != "type"}
        extra = {"dtype": dtype, "xp": xp, "rng": rng}
        kwargs.update({k: extra[k] for k in takes if k not in kwargs})
        try:
            layers.append(cls(**kwargs))
        except TypeError as exc:
            raise ValueError(f"layer {i} ({spec['type']}) of the model config: {exc}") from exc
    return Sequential(*layers)


def save_model(path, model, config):
    """Write ``model`` (its ``state_dict``) and its ``config`` to ``path`` with ``np.savez``.

    ``config`` must describe ``model``: it is checked by building a model from it and
    comparing the names and shapes of the arrays.
    """
    if not isinstance(model, Module):
        raise TypeError(f"save_model writes a Module, got {type(model).__name__}")
    text = json.dumps({"format": FORMAT_NAME, "version": FORMAT_VERSION, **config})
    state = model.state_dict()
    reference = build_model(config).state_dict()
    got = {k: tuple(v.shape) for k, v in state.items()}
    want = {k: tuple(v.shape) for k, v in reference.items()}
    if got != want:
        raise ValueError(f"the config does not describe the model: its arrays are {want}, the "
                         f"model's are {got}")
    arrays = {_CONFIG_KEY: np.array(text)}
    arrays.update({_PARAM_PREFIX + k: v for k, v in state.items()})
    with open(os.fspath(path), "wb") as f:
        np.savez(f, **arrays)
    return path


def _read(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such file: {path!r}")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise TTFileError(f"{path!r} is not a readable tensortrain model file (truncated or "
                          f"foreign): {exc}") from exc
    except Exception as exc:  # damaged members (zlib, struct)
        raise TTFileError(f"{path!r} could not be read (damaged archive): {exc}") from exc
    if _CONFIG_KEY not in data:
        raise TTFileError(f"{path!r} is not a tensortrain model file (no {_CONFIG_KEY!r} entry)")
    try:
        config = json.loads(str(data[_CONFIG_KEY]))
    except json.JSONDecodeError as exc:
        raise TTFileError(f"{path!r} has a damaged model config: {exc}") from exc
    if config.get("format") != FORMAT_NAME:
        raise TTFileError(f"{path!r} is not a tensortrain model file (format "
                          f"{config.get('format')!r})")
    if config.get("version") != FORMAT_VERSION:
        raise TTFileError(f"{path!r} has model format version {config.get('version')}; this "
                          f"tensortrain reads version {FORMAT_VERSION}")
    state = {k[len(_PARAM_PREFIX):]: v for k, v in data.items() if k.startswith(_PARAM_PREFIX)}
    return config, state


def read_model_config(path) -> dict:
    """The config stored in a model file (with its ``format`` and ``version`` entries)."""
    return _read(path)[0]


def load_model(path, xp=None):
    """Rebuild the model saved by :func:`save_model` on backend ``xp`` (NumPy by default).

    Raises ``FileNotFoundError`` for a missing file and
    :class:`~tensortrain.errors.TTFileError` for a foreign, truncated or mismatched one.
    """
    config, state = _read(path)
    try:
        model = build_model(config, xp=xp)
    except (KeyError, ValueError, TypeError, AttributeError, ImportError) as exc:
        raise TTFileError(f"{os.fspath(path)!r} holds a model description that cannot be "
                          f"built: {exc}") from exc
    try:
        model.load_state_dict(state)
    except (KeyError, ValueError) as exc:
        raise TTFileError(f"{os.fspath(path)!r}: the stored arrays do not fit the stored "
                          f"config: {exc}") from exc
    return model

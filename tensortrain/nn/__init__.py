"""tensortrain.nn: train small (TT) networks in plain Python on NumPy or CuPy.

Layers cache what their hand-written ``backward`` needs; optimizers update parameters in
place; nothing depends on a deep-learning framework.
"""

from .init import INITS
from .layers import BatchNorm1d, Dropout, Linear, ReLU, Tanh
from .losses import accuracy, mse, softmax_cross_entropy
from .module import Module, Parameter, Sequential
from .optim import SGD, Adam, AdamW, CosineLR, Optimizer, StepLR, grad_norm, make_optimizer
from .serialization import build_model, load_model, save_model
from .train import History, evaluate, fit, predict
from .tt_layer import TTLinear

__all__ = [
    "INITS",
    "SGD",
    "Adam",
    "AdamW",
    "BatchNorm1d",
    "CosineLR",
    "Dropout",
    "History",
    "Linear",
    "Module",
    "Optimizer",
    "Parameter",
    "ReLU",
    "Sequential",
    "StepLR",
    "TTLinear",
    "Tanh",
    "accuracy",
    "build_model",
    "evaluate",
    "fit",
    "grad_norm",
    "load_model",
    "make_optimizer",
    "mse",
    "predict",
    "save_model",
    "softmax_cross_entropy",
]

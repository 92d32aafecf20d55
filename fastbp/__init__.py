"""fastbp: fast feed-forward neural networks on CPUs (Numba kernels, one parameter arena)."""
from . import _jit  # noqa: F401  (configures Numba before anything imports it)
from ._jit import get_flush_denormal, get_num_threads, set_flush_denormal, set_num_threads
from .layers import (ELU, GELU, BatchNorm1d, Dropout, Identity, LeakyReLU, Linear, ReLU, Sigmoid, SiLU,
                     Softplus, Tanh)
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MSELoss
from .model import MLP, Sequential, load
from . import autograd, checkpoint, data, diagnostics, optim  # noqa: E402
from .autograd import no_grad, tensor

__version__ = "0.1.0"

__all__ = [
    "Sequential", "MLP", "load", "Linear", "BatchNorm1d", "Dropout", "Identity", "ReLU", "LeakyReLU",
    "ELU", "GELU", "SiLU", "Sigmoid", "Tanh", "Softplus",
    "MSELoss", "L1Loss", "HuberLoss", "CrossEntropyLoss", "BCEWithLogitsLoss",
    "optim", "data", "autograd", "checkpoint", "diagnostics", "tensor", "no_grad",
    "set_num_threads", "get_num_threads", "set_flush_denormal", "get_flush_denormal",
]

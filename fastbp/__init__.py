"""fastbp: fast feed-forward neural networks on CPUs (Numba kernels, one parameter arena)."""
from . import _jit  # noqa: F401  (configures Numba before anything imports it)
from ._jit import get_flush_denormal, get_num_threads, set_flush_denormal, set_num_threads
from .layers import (ELU, GELU, BatchNorm1d, Dropout, Identity, LeakyReLU, Linear, ReLU, Sigmoid, SiLU,
                     Softplus, Tanh)
from .losses import BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, L1Loss, MSELoss
from .model import MLP, Sequential, load
from . import optim  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Sequential", "MLP", "load", "Linear", "BatchNorm1d", "Dropout", "Identity", "ReLU", "LeakyReLU",
    "ELU", "GELU", "SiLU", "Sigmoid", "Tanh", "Softplus",
    "MSELoss", "L1Loss", "HuberLoss", "CrossEntropyLoss", "BCEWithLogitsLoss",
    "optim", "data", "autograd", "checkpoint", "diagnostics", "tensor", "no_grad",
    "set_num_threads", "get_num_threads", "set_flush_denormal", "get_flush_denormal",
]


# Imported on first use (PEP 562), so that a job that only trains and predicts does not
# pay for them at start-up (autograd, psutil, the datasets: ~27 ms of import here, NOTES 27).
_LAZY_MODULES = ("autograd", "checkpoint", "data", "diagnostics")
_FROM_AUTOGRAD = ("tensor", "no_grad")


def __getattr__(name):
    if name in _LAZY_MODULES:
        import importlib
        return importlib.import_module(f"{__name__}.{name}")
    if name in _FROM_AUTOGRAD:
        from . import autograd
        return getattr(autograd, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))

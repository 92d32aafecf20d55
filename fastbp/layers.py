"""Layers: descriptions of a network's pieces (shapes, init, parameters).

Layers do not run anything.  A model places them in its parameter arena
(``bind``), after which ``Linear.weight`` and friends are views into the
arena's flat buffers, and compiles them into a layer program that the Numba
kernels execute.
"""
import math

import numpy as np

from .kernels import codes
from .validation import check_float, check_positive_int

INITS = ("default", "kaiming_uniform", "kaiming_normal", "xavier_uniform", "xavier_normal")


class Module:
    """Base class: a layer with a config (for save/load) and optional parameters."""

    def output_features(self, in_features):
        return in_features

    def reserve(self, arena, in_features, state=None):
        """Reserve this layer's slots in the parameter ``arena`` and the ``state`` arena (none by default)."""

    def bind(self, arena, state=None):
        """Take views into the allocated arenas."""

    def initialize(self, rng):
        """Write initial values into the bound views."""

    @property
    def num_parameters(self):
        """Trainable values this layer reserves in the arena."""
        return 0

    def config(self):
        return {"type": type(self).__name__}

    def extra_repr(self):
        return ""

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"


class Linear(Module):
    """y = x Wᵀ + b, with ``weight`` of shape (out_features, in_features) as torch.nn.Linear.

    Args:
        in_features, out_features: sizes of each input and output sample.
        bias: learn an additive bias (default True).
        init: ``"default"`` is PyTorch's (weight and bias ~ U(-1/√in, 1/√in));
            ``"kaiming_uniform"``/``"kaiming_normal"`` (gain √2, fan_in) and
            ``"xavier_uniform"``/``"xavier_normal"`` (gain 1) set the weight and zero the bias.

    Shape: input (B, in_features), output (B, out_features).

    Example:
        >>> model = fb.Sequential(fb.Linear(4, 3), dtype=np.float64, seed=0)
        >>> model.layers[0].weight.shape
        (3, 4)
    """

    def __init__(self, in_features, out_features, bias=True, init="default"):
        self.in_features = check_positive_int("in_features", in_features)
        self.out_features = check_positive_int("out_features", out_features)
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias must be a bool, got {type(bias).__name__}")
        bias = bool(bias)
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        self.has_bias = bias
        self.init = init
        self.weight_offset = self.bias_offset = -1
        self._arena = None

    def output_features(self, in_features):
        if in_features != self.in_features:
            raise ValueError(f"Linear({self.in_features}, {self.out_features}) receives "
                             f"{in_features} features from the layer before it")
        return self.out_features

    def reserve(self, arena, in_features, state=None):
        self.output_features(in_features)
        self.weight_offset = arena.reserve("weight", (self.out_features, self.in_features))
        if self.has_bias:
            self.bias_offset = arena.reserve("bias", (self.out_features,))

    def bind(self, arena, state=None):
        self._arena = arena

    def _view(self, offset, shape, buffer):
        if self._arena is None:
            raise RuntimeError("this Linear is not part of a model yet; its parameters live in the "
                               "model's arena (build fb.Sequential(...) first)")
        if offset < 0:
            return None
        return self._arena.view(offset, shape, buffer)

    @property
    def weight(self):
        return self._view(self.weight_offset, (self.out_features, self.in_features), "params")

    @property
    def bias(self):
        return self._view(self.bias_offset, (self.out_features,), "params")

    @property
    def weight_grad(self):
        return self._view(self.weight_offset, (self.out_features, self.in_features), "grads")

    @property
    def bias_grad(self):
        return self._view(self.bias_offset, (self.out_features,), "grads")

    def initialize(self, rng):
        fan_in, fan_out = self.in_features, self.out_features
        shape = (fan_out, fan_in)
        if self.init == "default":
            bound = 1.0 / math.sqrt(fan_in)
            w = rng.uniform(-bound, bound, size=shape)
            b = rng.uniform(-bound, bound, size=fan_out)
        else:
            if self.init == "kaiming_uniform":
                w = rng.uniform(-1, 1, size=shape) * math.sqrt(6.0 / fan_in)
            elif self.init == "kaiming_normal":
                w = rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)
            elif self.init == "xavier_uniform":
                w = rng.uniform(-1, 1, size=shape) * math.sqrt(6.0 / (fan_in + fan_out))
            else:
                w = rng.standard_normal(shape) * math.sqrt(2.0 / (fan_in + fan_out))
            b = np.zeros(fan_out)
        self.weight[...] = w
        if self.has_bias:
            self.bias[...] = b

    @property
    def num_parameters(self):
        return self.in_features * self.out_features + (self.out_features if self.has_bias else 0)

    def config(self):
        return {"type": "Linear", "in_features": self.in_features, "out_features": self.out_features,
                "bias": self.has_bias, "init": self.init}

    def extra_repr(self):
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.has_bias}"


class Activation(Module):
    """An elementwise activation; ``code`` selects the kernel, ``alpha`` its parameter."""

    code = codes.IDENTITY
    alpha = 0.0


class Identity(Activation):
    code = codes.IDENTITY


class ReLU(Activation):
    code = codes.RELU


class LeakyReLU(Activation):
    """max(0, x) + negative_slope · min(0, x)."""

    code = codes.LEAKY_RELU

    def __init__(self, negative_slope=0.01):
        self.alpha = check_float("negative_slope", negative_slope)

    @property
    def negative_slope(self):
        return self.alpha

    def config(self):
        return {"type": "LeakyReLU", "negative_slope": self.alpha}

    def extra_repr(self):
        return f"negative_slope={self.alpha}"


class ELU(Activation):
    """x if x > 0 else alpha · (exp(x) − 1)."""

    code = codes.ELU

    def __init__(self, alpha=1.0):
        self.alpha = check_float("alpha", alpha)

    def config(self):
        return {"type": "ELU", "alpha": self.alpha}

    def extra_repr(self):
        return f"alpha={self.alpha}"


class GELU(Activation):
    """x · Φ(x) (``approximate="none"``) or its tanh approximation (``"tanh"``)."""

    def __init__(self, approximate="none"):
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate
        self.code = codes.GELU if approximate == "none" else codes.GELU_TANH

    def config(self):
        return {"type": "GELU", "approximate": self.approximate}

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(Activation):
    code = codes.SILU


class Sigmoid(Activation):
    code = codes.SIGMOID


class Tanh(Activation):
    code = codes.TANH


class Softplus(Activation):
    """log(1 + exp(x)), with torch's beta=1 and threshold=20."""

    code = codes.SOFTPLUS


class BatchNorm1d(Module):
    """Batch normalisation over the batch of (B, num_features) inputs, as torch.nn.BatchNorm1d.

    Training mode normalises with the batch mean and biased variance and updates
    ``running_mean``/``running_var`` (the unbiased variance) with ``momentum``;
    eval mode uses the running statistics.  γ (``weight``) and β (``bias``) live
    in the parameter arena, so every optimizer updates them; the running
    statistics are model state that ``save``/``load`` keep.
    """

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, track_running_stats=True):
        self.num_features = check_positive_int("num_features", num_features)
        self.eps = check_float("eps", eps, low=0.0, low_open=True)
        self.momentum = check_float("momentum", momentum, low=0.0, high=1.0)
        for name, flag in (("affine", affine), ("track_running_stats", track_running_stats)):
            if not isinstance(flag, bool):
                raise TypeError(f"{name} must be a bool, got {type(flag).__name__}")
        self.affine = affine
        self.track_running_stats = track_running_stats
        self.weight_offset = self.bias_offset = self.state_offset = -1
        self._arena = self._state = None

    def output_features(self, in_features):
        if in_features != self.num_features:
            raise ValueError(f"BatchNorm1d({self.num_features}) receives {in_features} features "
                             f"from the layer before it")
        return in_features

    def reserve(self, arena, in_features, state=None):
        self.output_features(in_features)
        n = self.num_features
        if self.affine:
            self.weight_offset = arena.reserve("bn.weight", (n,))
            self.bias_offset = arena.reserve("bn.bias", (n,))
        # state: running mean, running var (if tracked), then the last batch's mean and 1/std
        self.state_offset = state.reserve("bn.state", (4 * n,))

    def bind(self, arena, state=None):
        self._arena, self._state = arena, state

    def _param(self, offset, buffer):
        if self._arena is None:
            raise RuntimeError("this BatchNorm1d is not part of a model yet")
        return None if offset < 0 else self._arena.view(offset, (self.num_features,), buffer)

    weight = property(lambda self: self._param(self.weight_offset, "params"))
    bias = property(lambda self: self._param(self.bias_offset, "params"))
    weight_grad = property(lambda self: self._param(self.weight_offset, "grads"))
    bias_grad = property(lambda self: self._param(self.bias_offset, "grads"))

    def _stat(self, k):
        if self._state is None:
            raise RuntimeError("this BatchNorm1d is not part of a model yet")
        if k < 2 and not self.track_running_stats:
            return None
        return self._state.view(self.state_offset + k * self.num_features, (self.num_features,))

    running_mean = property(lambda self: self._stat(0))
    running_var = property(lambda self: self._stat(1))

    def initialize(self, rng):
        if self.affine:
            self.weight[...] = 1
            self.bias[...] = 0
        state = self._state.view(self.state_offset, (4, self.num_features))
        state[...] = 0
        state[1] = 1

    @property
    def num_parameters(self):
        return 2 * self.num_features if self.affine else 0

    def config(self):
        return {"type": "BatchNorm1d", "num_features": self.num_features, "eps": self.eps,
                "momentum": self.momentum, "affine": self.affine,
                "track_running_stats": self.track_running_stats}

    def extra_repr(self):
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"


class Dropout(Module):
    """Inverted dropout: zero each element with probability ``p`` and scale the rest by 1/(1-p).

    The mask is a pure function of the model's seed, the training step and the
    layer, so training is reproducible bit for bit and a recomputation
    (checkpointing) sees the same mask.  Identity in eval mode.
    """

    def __init__(self, p=0.5):
        self.p = check_float("p", p, low=0.0)
        if self.p >= 1.0:
            raise ValueError(f"p must be in [0, 1), got {p}")

    def config(self):
        return {"type": "Dropout", "p": self.p}

    def extra_repr(self):
        return f"p={self.p}"


ACTIVATIONS = {
    "identity": Identity, "relu": ReLU, "leaky_relu": LeakyReLU, "elu": ELU, "gelu": GELU,
    "silu": SiLU, "sigmoid": Sigmoid, "tanh": Tanh, "softplus": Softplus,
}

LAYER_TYPES = {cls.__name__: cls for cls in
               (Linear, BatchNorm1d, Dropout, Identity, ReLU, LeakyReLU, ELU, GELU, SiLU, Sigmoid, Tanh,
                Softplus)}


def activation_from_name(name):
    """``"relu"`` → ``ReLU()``; also accepts ``"gelu_tanh"``."""
    if isinstance(name, Activation):
        return name
    if name == "gelu_tanh":
        return GELU(approximate="tanh")
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS) + ['gelu_tanh']}, got {name!r}")
    return ACTIVATIONS[name]()


def layer_from_config(cfg):
    """Rebuild a layer from ``Module.config()`` output (save/load; no pickle)."""
    cfg = dict(cfg)
    kind = cfg.pop("type", None)
    if kind not in LAYER_TYPES:
        raise ValueError(f"unknown layer type {kind!r} in the model file")
    if kind == "Linear":
        return Linear(cfg["in_features"], cfg["out_features"], bias=cfg.get("bias", True),
                      init=cfg.get("init", "default"))
    return LAYER_TYPES[kind](**cfg)

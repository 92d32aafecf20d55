"""Array formulas and index helpers shared by the tape (``ops.py``, ``losses.py``) and ``dual.py``.

Each activation has a value and a derivative with torch's conventions
(relu'(0) = 0, elu'(0) = alpha, softplus linear above ``threshold``); each
loss returns its 'mean' value with its gradients with respect to input and
target, so the tape multiplies them by the incoming gradient and forward
mode contracts them with the tangents.  Constants are Python floats so
float32 arrays stay float32 (NumPy 2 promotion rules).
"""
import math

import numpy as np

from .._jit import jit

SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
INV_SQRT_2 = 1.0 / math.sqrt(2.0)
INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
GELU_TANH_C = 0.044715


def as_float(x):
    """``x`` as a floating array (ints and bools become float64)."""
    x = np.asarray(x)
    return x if x.dtype.kind == "f" else x.astype(np.float64)


@jit
def _erf_flat(x, out):
    for i in range(x.size):
        out[i] = math.erf(x[i])


def erf(x):
    """Elementwise error function (numpy has none; Numba's ``math.erf``)."""
    x = np.ascontiguousarray(as_float(x))
    out = np.empty_like(x)
    _erf_flat(x.reshape(-1), out.reshape(-1))
    return out


def sigmoid(x):
    """Logistic function without overflow: only ``exp(-|x|)`` is evaluated."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0, e) / (1.0 + e)


# --------------------------------------------------------------------------- shapes and masks

def unbroadcast(g, shape):
    """Sum ``g`` over the axes along which an input of ``shape`` was broadcast."""
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, s in enumerate(shape) if s == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def norm_axes(axis, ndim):
    """``axis`` (None, int or tuple) as a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if isinstance(axis, (int, np.integer)):
        axis = (axis,)
    return tuple(sorted(int(a) % ndim if ndim else int(a) for a in axis))


def expand_reduced(g, ndim, axis, keepdims):
    """Re-insert the reduced axes into ``g`` (the inverse of ``keepdims=False``)."""
    if keepdims:
        return g
    return np.expand_dims(g, norm_axes(axis, ndim)) if ndim else g


def scalar_pow(x, b):
    """``x ** b`` for a number ``b``, through torch's special cases: squares and cubes by
    multiplication, ``b = +-0.5`` by sqrt and 1 / sqrt, ``b = -1, -2`` by reciprocals.  They
    decide signed zeros and last bits: torch's ``(-0.0) ** 0.5`` is sqrt's -0.0 (C's pow gives
    +0.0), so the derivative there, ``0.5 * (-0.0) ** -0.5``, is -inf, not +inf."""
    if b == 2:
        return x * x
    if b == 3:
        return x * x * x
    if b == 0.5:
        return np.sqrt(x)
    if b == -0.5:
        return 1.0 / np.sqrt(x)
    if b == -1:
        return 1.0 / x
    if b == -2:
        return 1.0 / (x * x)
    return x ** b


def pow_grads(a, b, y):
    """Local derivatives of ``y = a ** b`` (torch's conventions: 0 where b == 0, or a == 0 and b >= 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        da = np.where(b == 0, 0.0, b * a ** (b - 1)).astype(y.dtype, copy=False)
        db = np.where((a == 0) & (b >= 0), 0.0, y * np.log(a)).astype(y.dtype, copy=False)
    return da, db


def extreme_mask(x, y, axis, keepdims):
    """Weights of the elements equal to the reduced extreme ``y``: 1/(number of ties)."""
    mask = (x == expand_reduced(y, x.ndim, axis, keepdims)).astype(x.dtype)
    return mask / mask.sum(axis=norm_axes(axis, x.ndim), keepdims=True)


def shape_arg(shape):
    """``reshape(2, 3)`` and ``reshape((2, 3))`` alike."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def transpose_dims(ndim, dim0, dim1):
    """The permutation for ``transpose(dim0, dim1)``: swap two axes, or reverse all when both are None."""
    if dim0 is None and dim1 is None:
        return tuple(range(ndim))[::-1]
    if dim0 is None or dim1 is None:
        raise TypeError("transpose takes two axes to swap, or none to reverse all axes")
    dims = list(range(ndim))
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return tuple(dims)


def index_arg(index):
    """An index with Tensor parts replaced by their arrays."""
    from .tensor import Tensor
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


# --------------------------------------------------------------------------- activations
# name -> (value(x, p), derivative(x, y, p)); p is the activation's parameter
# (negative_slope, alpha, or (beta, threshold) for softplus).

def _gelu(x, p):
    return x * (0.5 * (1.0 + erf(x * INV_SQRT_2)))


def _gelu_d(x, y, p):
    return 0.5 * (1.0 + erf(x * INV_SQRT_2)) + x * (INV_SQRT_2PI * np.exp(-0.5 * x * x))


def _gelu_tanh(x, p):
    return 0.5 * x * (1.0 + np.tanh(SQRT_2_OVER_PI * (x + GELU_TANH_C * x * x * x)))


def _gelu_tanh_d(x, y, p):
    t = np.tanh(SQRT_2_OVER_PI * (x + GELU_TANH_C * x * x * x))
    return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_TANH_C * x * x)


def _softplus(x, p):
    beta, threshold = p
    bx = x * beta
    with np.errstate(over="ignore"):
        soft = np.log1p(np.exp(np.minimum(bx, threshold))) / beta
    return np.where(bx > threshold, x, soft)


def _softplus_d(x, y, p):
    beta, threshold = p
    bx = x * beta
    return np.where(bx > threshold, 1.0, sigmoid(bx)).astype(x.dtype, copy=False)


def _silu_d(x, y, p):
    s = sigmoid(x)
    return s * (1.0 + x * (1.0 - s))


ACTIVATIONS = {
    "identity": (lambda x, p: x, lambda x, y, p: np.ones_like(x)),
    "relu": (lambda x, p: np.maximum(x, 0.0), lambda x, y, p: (x > 0).astype(x.dtype)),
    "leaky_relu": (lambda x, p: np.where(x > 0, x, x * p),
                   lambda x, y, p: np.where(x > 0, 1.0, p).astype(x.dtype, copy=False)),
    "elu": (lambda x, p: np.where(x > 0, x, p * np.expm1(np.minimum(x, 0.0))),
            lambda x, y, p: np.where(x > 0, 1.0, p * np.exp(np.minimum(x, 0.0))).astype(x.dtype, copy=False)),
    "gelu": (_gelu, _gelu_d),
    "gelu_tanh": (_gelu_tanh, _gelu_tanh_d),
    "silu": (lambda x, p: x * sigmoid(x), _silu_d),
    "sigmoid": (lambda x, p: sigmoid(x), lambda x, y, p: y * (1.0 - y)),
    "tanh": (lambda x, p: np.tanh(x), lambda x, y, p: 1.0 - y * y),
    "softplus": (_softplus, _softplus_d),
}


def activation(name, x, p=None):
    """``(y, dy/dx)`` of activation ``name`` at ``x`` (numpy; any shape, float dtype)."""
    value, deriv = ACTIVATIONS[name]
    y = value(x, p)
    return y, deriv(x, y, p)


# --------------------------------------------------------------------------- softmax

# the max starts at -inf so that an empty axis gives an empty result, as torch's does
# (np.max has no identity and raised); any real entry replaces it, NaN still propagates

def log_softmax(x, axis):
    m = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    z = x - m
    with np.errstate(divide="ignore"):      # log(0) only for an empty axis: nothing to warn about
        return z - np.log(np.sum(np.exp(z), axis=axis, keepdims=True))


def softmax(x, axis):
    m = np.max(x, axis=axis, keepdims=True, initial=-np.inf)
    e = np.exp(x - m)
    return e / np.sum(e, axis=axis, keepdims=True)


# --------------------------------------------------------------------------- losses
# each returns (value as a 0-d array, d value / d input, d value / d target or None),
# the gradients on the broadcast shape of input and target.

def mse(x, t):
    d = x - t
    n = d.size
    return np.asarray(np.sum(d * d) / n), d * (2.0 / n), d * (-2.0 / n)


def l1(x, t):
    d = x - t
    n = d.size
    s = np.sign(d)
    return np.asarray(np.sum(np.abs(d)) / n), s / n, -s / n


def huber(x, t, delta):
    d = x - t
    n = d.size
    a = np.abs(d)
    values = np.where(a < delta, 0.5 * d * d, delta * (a - 0.5 * delta))
    gx = np.clip(d, -delta, delta) / n
    return np.asarray(np.sum(values) / n), gx, -gx


def bce_with_logits(x, t):
    x, t = np.broadcast_arrays(x, t)
    n = x.size
    values = np.maximum(x, 0.0) - x * t + np.log1p(np.exp(-np.abs(x)))
    return np.asarray(np.sum(values) / n), (sigmoid(x) - t) / n, -x / n


def ce_args(logits, labels, smoothing):
    """Validated (N, C) logits and (N,) int64 labels; (C,) logits take one scalar label."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy takes integer class labels, got dtype {labels.dtype}")
    if logits.ndim == 1:
        if labels.ndim != 0:
            raise ValueError(f"1-D logits take a scalar label, got labels of shape {labels.shape}")
        logits, labels = logits[None, :], labels[None]
    elif logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(f"cross_entropy takes (N, C) logits and (N,) labels, got {logits.shape} and "
                         f"{labels.shape}")
    c = logits.shape[1]
    if labels.size and (labels.min() < 0 or labels.max() >= c):
        raise IndexError(f"label out of range [0, {c}): min {labels.min()}, max {labels.max()}")
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {smoothing}")
    return logits, labels.astype(np.int64, copy=False)


def cross_entropy(logits, labels, smoothing):
    """Mean over rows of -sum_c q_c log softmax(logits)_c, q = (1-s) onehot(label) + s / C."""
    n, c = logits.shape
    z = log_softmax(logits, axis=1)
    q = np.full_like(logits, smoothing / c)
    q[np.arange(n), labels] += 1.0 - smoothing
    value = -np.sum(q * z) / n
    return np.asarray(value, dtype=logits.dtype), (np.exp(z) - q) / n, None

"""Forward mode: ``Dual`` numbers carry a primal array and its tangent through the same op set.

A ``Dual`` holds ``primal`` (a value) and ``tangent`` (its directional
derivative along the seed direction, same shape).  Each op below maps
``(x, dx)`` to ``(f(x), f'(x) dx)`` with the same formulas and conventions as
the tape's backward (``_math``), so ``jvp`` and ``vjp`` agree.  The public
functions of ``fastbp.autograd`` (``exp``, ``matmul``, ``mse_loss``, ...)
dispatch here when given a Dual, so a function written once with them runs
in both modes.  Arrays, Python numbers and Tensors that do not require grad
mix in as constants (zero tangent).
"""
import numbers

import numpy as np

from . import _math
from ._math import extreme_mask, index_arg, norm_axes, pow_grads, shape_arg, transpose_dims

__all__ = ["Dual"]


class Dual:
    """A primal array and its tangent (same shape, float dtype)."""

    __array_ufunc__ = None        # ``ndarray (op) Dual`` defers to Dual's reflected operator
    __array_priority__ = 1000

    def __init__(self, primal, tangent=None):
        p = _math.as_float(_constant_data(primal))
        if tangent is None:
            t = np.zeros_like(p)
        else:
            t = np.asarray(_constant_data(tangent), dtype=p.dtype)
            if t.shape != p.shape:
                raise ValueError(f"tangent shape {t.shape} differs from primal shape {p.shape}")
        self.primal = p
        self.tangent = t

    @property
    def shape(self):
        return self.primal.shape

    @property
    def ndim(self):
        return self.primal.ndim

    @property
    def dtype(self):
        return self.primal.dtype

    def numel(self):
        return self.primal.size

    def __len__(self):
        return len(self.primal)

    def __repr__(self):
        return f"Dual(primal={self.primal!r}, tangent={self.tangent!r})"

    # comparisons give plain boolean arrays (constants)
    def __lt__(self, other):
        return self.primal < _primal(other)

    def __le__(self, other):
        return self.primal <= _primal(other)

    def __gt__(self, other):
        return self.primal > _primal(other)

    def __ge__(self, other):
        return self.primal >= _primal(other)

    __hash__ = object.__hash__

    def __eq__(self, other):
        return self.primal == _primal(other)

    def __ne__(self, other):
        return self.primal != _primal(other)

    def __add__(self, other):
        return add(self, other)

    def __radd__(self, other):
        return add(other, self)

    def __sub__(self, other):
        return sub(self, other)

    def __rsub__(self, other):
        return sub(other, self)

    def __mul__(self, other):
        return mul(self, other)

    def __rmul__(self, other):
        return mul(other, self)

    def __truediv__(self, other):
        return div(self, other)

    def __rtruediv__(self, other):
        return div(other, self)

    def __pow__(self, other):
        return pow(self, other)

    def __rpow__(self, other):
        return pow(other, self)

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    def __neg__(self):
        return neg(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return abs(self)

    def __getitem__(self, index):
        return getitem(self, index)

    @property
    def T(self):
        return permute(self, tuple(range(self.ndim))[::-1])

    def sum(self, axis=None, keepdims=False):
        return sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False):
        return mean(self, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        return max(self, axis, keepdims)

    def min(self, axis=None, keepdims=False):
        return min(self, axis, keepdims)

    def exp(self):
        return exp(self)

    def log(self):
        return log(self)

    def sqrt(self):
        return sqrt(self)

    def abs(self):
        return abs(self)

    def tanh(self):
        return tanh(self)

    def sigmoid(self):
        return sigmoid(self)

    def relu(self):
        return relu(self)

    def leaky_relu(self, negative_slope=0.01):
        return leaky_relu(self, negative_slope)

    def elu(self, alpha=1.0):
        return elu(self, alpha)

    def gelu(self, approximate="none"):
        return gelu(self, approximate)

    def silu(self):
        return silu(self)

    def softplus(self, beta=1.0, threshold=20.0):
        return softplus(self, beta, threshold)

    def softmax(self, axis=-1):
        return softmax(self, axis)

    def log_softmax(self, axis=-1):
        return log_softmax(self, axis)

    def reshape(self, *shape):
        return reshape(self, *shape)

    view = reshape

    def flatten(self):
        return reshape(self, -1)

    def transpose(self, dim0=None, dim1=None):
        return transpose(self, dim0, dim1)

    def permute(self, *dims):
        return permute(self, *dims)

    def astype(self, dtype):
        return astype(self, dtype)


# --------------------------------------------------------------------------- helpers

def _constant_data(x):
    from .tensor import Tensor
    if isinstance(x, Tensor):
        if x.requires_grad:
            raise TypeError("cannot mix a Tensor that requires grad with Dual numbers; forward mode "
                            "treats Tensors only as constants (detach() it)")
        return x.data
    return x


def _primal(x):
    return x.primal if isinstance(x, Dual) else np.asarray(_constant_data(x))


def _make(p, t):
    d = Dual.__new__(Dual)
    d.primal, d.tangent = p, t
    return d


def lift(x, like=None):
    """``x`` as a Dual; constants get a zero tangent, Python numbers ``like``'s dtype."""
    if isinstance(x, Dual):
        return x
    if isinstance(x, numbers.Number) and not isinstance(x, np.generic) and like is not None:
        p = np.asarray(x, dtype=like.dtype)
    else:
        p = _math.as_float(_constant_data(x))
    return _make(p, np.broadcast_to(np.zeros((), dtype=p.dtype), p.shape))


def _pair(a, b):
    a = lift(a, b if isinstance(b, Dual) else None)
    return a, lift(b, a)


# --------------------------------------------------------------------------- arithmetic

def add(a, b):
    a, b = _pair(a, b)
    return _make(a.primal + b.primal, a.tangent + b.tangent)


def sub(a, b):
    a, b = _pair(a, b)
    return _make(a.primal - b.primal, a.tangent - b.tangent)


def mul(a, b):
    a, b = _pair(a, b)
    return _make(a.primal * b.primal, a.tangent * b.primal + a.primal * b.tangent)


def div(a, b):
    a, b = _pair(a, b)
    y = a.primal / b.primal
    return _make(y, (a.tangent - y * b.tangent) / b.primal)


def pow(a, b):
    if isinstance(b, numbers.Number) and not isinstance(a, numbers.Number):
        a = lift(a)
        y = _math.scalar_pow(a.primal, b)
        if b == 0:
            return _make(y, np.zeros_like(y))
        return _make(y, a.tangent * (b * _math.scalar_pow(a.primal, b - 1)))
    a, b = _pair(a, b)
    y = a.primal ** b.primal
    da, db = pow_grads(a.primal, b.primal, y)
    return _make(y, da * a.tangent + db * b.tangent)


def neg(a):
    a = lift(a)
    return _make(-a.primal, -a.tangent)


def matmul(a, b):
    a, b = _pair(a, b)
    return _make(a.primal @ b.primal, a.tangent @ b.primal + a.primal @ b.tangent)


# --------------------------------------------------------------------------- reductions

def sum(x, axis=None, keepdims=False):
    x = lift(x)
    return _make(np.asarray(x.primal.sum(axis=axis, keepdims=keepdims)),
                 np.asarray(x.tangent.sum(axis=axis, keepdims=keepdims)))


def mean(x, axis=None, keepdims=False):
    x = lift(x)
    return _make(np.asarray(x.primal.mean(axis=axis, keepdims=keepdims)),
                 np.asarray(x.tangent.mean(axis=axis, keepdims=keepdims)))


def _extreme(x, axis, keepdims, reduce):
    x = lift(x)
    y = np.asarray(reduce(x.primal, axis=axis, keepdims=keepdims))
    w = extreme_mask(x.primal, y, axis, keepdims)
    return _make(y, np.asarray((x.tangent * w).sum(axis=norm_axes(axis, x.ndim), keepdims=keepdims)))


def max(x, axis=None, keepdims=False):
    """Maximum; the tangent averages the tangents of tied maximal elements (as the tape)."""
    return _extreme(x, axis, keepdims, np.max)


def min(x, axis=None, keepdims=False):
    """Minimum; the tangent averages the tangents of tied minimal elements (as the tape)."""
    return _extreme(x, axis, keepdims, np.min)


# --------------------------------------------------------------------------- elementwise

def exp(x):
    x = lift(x)
    y = np.exp(x.primal)
    return _make(y, x.tangent * y)


def log(x):
    x = lift(x)
    return _make(np.log(x.primal), x.tangent / x.primal)


def sqrt(x):
    x = lift(x)
    y = np.sqrt(x.primal)
    return _make(y, x.tangent / (2.0 * y))


def abs(x):
    x = lift(x)
    return _make(np.abs(x.primal), np.sign(x.primal) * x.tangent)


def _activation(x, name, p=None):
    x = lift(x)
    y, d = _math.activation(name, x.primal, p)
    return _make(y, d * x.tangent)


def tanh(x):
    return _activation(x, "tanh")


def sigmoid(x):
    return _activation(x, "sigmoid")


def relu(x):
    return _activation(x, "relu")


def leaky_relu(x, negative_slope=0.01):
    return _activation(x, "leaky_relu", float(negative_slope))


def elu(x, alpha=1.0):
    return _activation(x, "elu", float(alpha))


def gelu(x, approximate="none"):
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return _activation(x, "gelu" if approximate == "none" else "gelu_tanh")


def silu(x):
    return _activation(x, "silu")


def softplus(x, beta=1.0, threshold=20.0):
    return _activation(x, "softplus", (float(beta), float(threshold)))


def maximum(a, b):
    """Elementwise maximum; at ties the tangent is the mean of both (as the tape)."""
    a, b = _pair(a, b)
    w = np.where(a.primal > b.primal, 1.0, np.where(a.primal < b.primal, 0.0, 0.5))
    return _make(np.maximum(a.primal, b.primal), w * a.tangent + (1.0 - w) * b.tangent)


def minimum(a, b):
    """Elementwise minimum; at ties the tangent is the mean of both (as the tape)."""
    a, b = _pair(a, b)
    w = np.where(a.primal < b.primal, 1.0, np.where(a.primal > b.primal, 0.0, 0.5))
    return _make(np.minimum(a.primal, b.primal), w * a.tangent + (1.0 - w) * b.tangent)


def astype(x, dtype):
    x = lift(x)
    return _make(x.primal.astype(dtype), x.tangent.astype(dtype))


# --------------------------------------------------------------------------- shapes

def reshape(x, *shape):
    x = lift(x)
    shape = shape_arg(shape)
    return _make(x.primal.reshape(shape), x.tangent.reshape(shape))


def permute(x, *dims):
    x = lift(x)
    dims = shape_arg(dims)
    return _make(x.primal.transpose(dims), x.tangent.transpose(dims))


def transpose(x, dim0=None, dim1=None):
    x = lift(x)
    return permute(x, transpose_dims(x.ndim, dim0, dim1))


def getitem(x, index):
    x = lift(x)
    index = index_arg(index)
    return _make(np.asarray(x.primal[index]), np.asarray(x.tangent[index]))


def concatenate(duals, axis=0):
    first = next((d for d in duals if isinstance(d, Dual)), None)
    duals = [lift(d, first) for d in duals]
    return _make(np.concatenate([d.primal for d in duals], axis=axis),
                 np.concatenate([d.tangent for d in duals], axis=axis))


def stack(duals, axis=0):
    first = next((d for d in duals if isinstance(d, Dual)), None)
    duals = [lift(d, first) for d in duals]
    return _make(np.stack([d.primal for d in duals], axis=axis),
                 np.stack([d.tangent for d in duals], axis=axis))


# --------------------------------------------------------------------------- softmax

def softmax(x, axis=-1):
    x = lift(x)
    s = _math.softmax(x.primal, axis)
    return _make(s, s * (x.tangent - np.sum(s * x.tangent, axis=axis, keepdims=True)))


def log_softmax(x, axis=-1):
    x = lift(x)
    z = _math.log_softmax(x.primal, axis)
    return _make(z, x.tangent - np.sum(np.exp(z) * x.tangent, axis=axis, keepdims=True))


# --------------------------------------------------------------------------- losses

def _loss(value, gx, gt, x, t):
    tangent = np.sum(gx * x.tangent)
    if gt is not None and t is not None:
        tangent = tangent + np.sum(gt * t.tangent)
    return _make(value, np.asarray(tangent, dtype=value.dtype))


def mse_loss(input, target):
    x, t = _pair(input, target)
    return _loss(*_math.mse(x.primal, t.primal), x, t)


def l1_loss(input, target):
    x, t = _pair(input, target)
    return _loss(*_math.l1(x.primal, t.primal), x, t)


def huber_loss(input, target, delta=1.0):
    x, t = _pair(input, target)
    return _loss(*_math.huber(x.primal, t.primal, float(delta)), x, t)


def binary_cross_entropy_with_logits(input, target):
    x, t = _pair(input, target)
    return _loss(*_math.bce_with_logits(x.primal, t.primal), x, t)


def cross_entropy(input, target, label_smoothing=0.0):
    x = lift(input)
    logits, labels = _math.ce_args(x.primal, _primal(target), label_smoothing)
    value, gx, _ = _math.cross_entropy(logits, labels, float(label_smoothing))
    return _make(value, np.asarray(np.sum(gx.reshape(x.shape) * x.tangent), dtype=value.dtype))

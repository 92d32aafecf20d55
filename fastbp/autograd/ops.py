"""Differentiable ops on ``Tensor``: each computes its output and defines its local backward beside it.

A backward receives ``g`` (the gradient of the output) and returns one
gradient per input, reduced back to that input's shape where the op
broadcast (``unbroadcast``).  Every public function here also accepts
``Dual`` arguments and then runs the forward-mode version in ``dual.py``, so
one function written with these ops serves ``grad``/``vjp`` and ``jvp``.

Semantics follow PyTorch: relu'(0) = 0, abs'(0) = 0; ``max``/``min`` send the
gradient to the extreme elements, split equally among ties (torch's
``amax``/``amin`` and full ``max()``); ``maximum``/``minimum`` split a tie in
half; ``transpose(d0, d1)`` swaps two axes (no arguments: reverse all).
"""
import builtins
import functools
import numbers

import numpy as np

from . import _kernels
from . import _math
from . import dual as _dual
from .dual import Dual
from ._math import (
    expand_reduced, extreme_mask, index_arg, pow_grads, shape_arg, transpose_dims, unbroadcast,
)
from .tensor import Tensor, _node

__all__ = [
    "add", "sub", "mul", "div", "pow", "neg", "matmul",
    "sum", "mean", "max", "min", "argmax", "argmin",
    "exp", "log", "sqrt", "abs", "tanh", "sigmoid",
    "relu", "leaky_relu", "elu", "gelu", "silu", "softplus",
    "maximum", "minimum", "reshape", "transpose", "permute", "getitem",
    "concatenate", "stack", "softmax", "log_softmax", "astype",
]


# --------------------------------------------------------------------------- helpers

def _has_dual(args):
    for a in args:
        if isinstance(a, Dual):
            return True
        if isinstance(a, (list, tuple)) and builtins.any(isinstance(b, Dual) for b in a):
            return True
    return False


def _dispatch(fn):
    """Route calls with a ``Dual`` argument to the forward-mode function of the same name."""
    forward = getattr(_dual, fn.__name__)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if _has_dual(args):
            return forward(*args, **kwargs)
        return fn(*args, **kwargs)
    return wrapper


def lift(x, like=None):
    """``x`` as a Tensor; a Python number takes ``like``'s float dtype (so float32 stays float32)."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, numbers.Number) and not isinstance(x, np.generic) and like is not None \
            and like.dtype.kind == "f":
        return Tensor(np.asarray(x, dtype=like.dtype))
    return Tensor(np.asarray(x))


def _pair(a, b):
    a = lift(a, b if isinstance(b, Tensor) else None)
    return a, lift(b, a)


def compare(ufunc, a, b):
    """Elementwise comparison: a boolean tensor, outside the graph."""
    a, b = _pair(_value(a), _value(b))
    return Tensor(ufunc(a.data, b.data))


def _value(x):
    return Tensor(x.primal) if isinstance(x, Dual) else x


# --------------------------------------------------------------------------- arithmetic

@_dispatch
def add(a, b):
    a, b = _pair(a, b)

    def _backward(g):
        return unbroadcast(g, a.shape), unbroadcast(g, b.shape)
    return _node(a.data + b.data, (a, b), _backward, "add")


@_dispatch
def sub(a, b):
    a, b = _pair(a, b)

    def _backward(g):
        return unbroadcast(g, a.shape), unbroadcast(-g, b.shape)
    return _node(a.data - b.data, (a, b), _backward, "sub")


@_dispatch
def mul(a, b):
    a, b = _pair(a, b)

    def _backward(g):
        return (unbroadcast(g * b.data, a.shape) if a.requires_grad else None,
                unbroadcast(g * a.data, b.shape) if b.requires_grad else None)
    return _node(a.data * b.data, (a, b), _backward, "mul")


@_dispatch
def div(a, b):
    a, b = _pair(a, b)
    y = a.data / b.data

    def _backward(g):
        gb = g / b.data
        return unbroadcast(gb, a.shape), unbroadcast(-gb * y, b.shape) if b.requires_grad else None
    return _node(y, (a, b), _backward, "div")


@_dispatch
def pow(a, b):
    if isinstance(b, numbers.Number) and not isinstance(a, numbers.Number):
        a = lift(a)
        y = _math.scalar_pow(a.data, b)

        def _backward_scalar(g):
            if b == 0:
                return (np.zeros_like(g),)
            return (g * (b * _math.scalar_pow(a.data, b - 1)),)
        return _node(y, (a,), _backward_scalar, "pow")
    a, b = _pair(a, b)
    y = a.data ** b.data

    def _backward(g):
        da, db = pow_grads(a.data, b.data, y)
        return unbroadcast(g * da, a.shape), unbroadcast(g * db, b.shape) if b.requires_grad else None
    return _node(y, (a, b), _backward, "pow")


@_dispatch
def neg(a):
    a = lift(a)

    def _backward(g):
        return (-g,)
    return _node(-a.data, (a,), _backward, "neg")


@_dispatch
def matmul(a, b):
    """numpy ``@``: 1-D operands are promoted (and the added axis dropped), batch axes broadcast."""
    a, b = _pair(a, b)
    y = a.data @ b.data

    def _backward(g):
        a2 = a.data[None, :] if a.ndim == 1 else a.data
        b2 = b.data[:, None] if b.ndim == 1 else b.data
        g2 = g
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -1 if b.ndim == 1 else -2)
        if b.ndim == 1:
            g2 = np.expand_dims(g2, -1)
        ga = gb = None
        if a.requires_grad:
            ga = unbroadcast(g2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if b.requires_grad:
            gb = unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)
        return ga, gb
    return _node(y, (a, b), _backward, "matmul")


# --------------------------------------------------------------------------- reductions

@_dispatch
def sum(x, axis=None, keepdims=False):
    x = lift(x)

    def _backward(g):
        return (np.broadcast_to(expand_reduced(g, x.ndim, axis, keepdims), x.shape),)
    return _node(np.asarray(x.data.sum(axis=axis, keepdims=keepdims)), (x,), _backward, "sum")


@_dispatch
def mean(x, axis=None, keepdims=False):
    x = lift(x)
    y = np.asarray(x.data.mean(axis=axis, keepdims=keepdims))
    n = x.data.size // builtins.max(y.size, 1) if x.data.size else 1

    def _backward(g):
        return (np.broadcast_to(expand_reduced(g, x.ndim, axis, keepdims) / n, x.shape),)
    return _node(y, (x,), _backward, "mean")


def _extreme(x, axis, keepdims, reduce, name):
    x = lift(x)
    y = np.asarray(reduce(x.data, axis=axis, keepdims=keepdims))

    def _backward(g):
        return (expand_reduced(g, x.ndim, axis, keepdims) * extreme_mask(x.data, y, axis, keepdims),)
    return _node(y, (x,), _backward, name)


@_dispatch
def max(x, axis=None, keepdims=False):
    """Maximum over ``axis``; the gradient goes to the maximal elements, split equally among ties."""
    return _extreme(x, axis, keepdims, np.max, "max")


@_dispatch
def min(x, axis=None, keepdims=False):
    """Minimum over ``axis``; the gradient goes to the minimal elements, split equally among ties."""
    return _extreme(x, axis, keepdims, np.min, "min")


def argmax(x, axis=None, keepdims=False):
    """Index of the maximum (an int64 tensor, not differentiable)."""
    return Tensor(np.argmax(lift(_value(x)).data, axis=axis, keepdims=keepdims))


def argmin(x, axis=None, keepdims=False):
    """Index of the minimum (an int64 tensor, not differentiable)."""
    return Tensor(np.argmin(lift(_value(x)).data, axis=axis, keepdims=keepdims))


# --------------------------------------------------------------------------- elementwise

@_dispatch
def exp(x):
    x = lift(x)
    y = np.exp(x.data)

    def _backward(g):
        return (g * y,)
    return _node(y, (x,), _backward, "exp")


@_dispatch
def log(x):
    x = lift(x)

    def _backward(g):
        return (g / x.data,)
    return _node(np.log(x.data), (x,), _backward, "log")


@_dispatch
def sqrt(x):
    x = lift(x)
    y = np.sqrt(x.data)

    def _backward(g):
        return (g / (2.0 * y),)
    return _node(y, (x,), _backward, "sqrt")


@_dispatch
def abs(x):
    """|x|, with derivative sign(x) (0 at 0, as torch)."""
    x = lift(x)

    def _backward(g):
        return (g * np.sign(x.data),)
    return _node(np.abs(x.data), (x,), _backward, "abs")


def _activation(x, name, p=None):
    """Activation ``name`` with torch's derivative; engine kernels for 2-D float arrays when available."""
    x = lift(x)
    data = _math.as_float(x.data)
    y = _kernels.act_forward(name, data, p)
    if y is not None:
        def _backward_kernel(g):
            return (_kernels.act_backward(name, g, data, y, p),)
        return _node(y, (x,), _backward_kernel, name)
    y, dydx = _math.activation(name, data, p)

    def _backward(g):
        return (g * dydx,)
    return _node(y, (x,), _backward, name)


@_dispatch
def tanh(x):
    return _activation(x, "tanh")


@_dispatch
def sigmoid(x):
    return _activation(x, "sigmoid")


@_dispatch
def relu(x):
    """max(x, 0); derivative 0 at 0 (torch)."""
    return _activation(x, "relu")


@_dispatch
def leaky_relu(x, negative_slope=0.01):
    return _activation(x, "leaky_relu", float(negative_slope))


@_dispatch
def elu(x, alpha=1.0):
    return _activation(x, "elu", float(alpha))


@_dispatch
def gelu(x, approximate="none"):
    """x * Phi(x) (``approximate="none"``, erf form) or its tanh approximation (``"tanh"``)."""
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate must be 'none' or 'tanh', got {approximate!r}")
    return _activation(x, "gelu" if approximate == "none" else "gelu_tanh")


@_dispatch
def silu(x):
    return _activation(x, "silu")


@_dispatch
def softplus(x, beta=1.0, threshold=20.0):
    """log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (torch)."""
    return _activation(x, "softplus", (float(beta), float(threshold)))


@_dispatch
def maximum(a, b):
    """Elementwise maximum; at ties each input gets half the gradient (torch)."""
    a, b = _pair(a, b)

    def _backward(g):
        w = np.where(a.data > b.data, 1.0, np.where(a.data < b.data, 0.0, 0.5))
        return unbroadcast(g * w, a.shape), unbroadcast(g * (1.0 - w), b.shape)
    return _node(np.maximum(a.data, b.data), (a, b), _backward, "maximum")


@_dispatch
def minimum(a, b):
    """Elementwise minimum; at ties each input gets half the gradient (torch)."""
    a, b = _pair(a, b)

    def _backward(g):
        w = np.where(a.data < b.data, 1.0, np.where(a.data > b.data, 0.0, 0.5))
        return unbroadcast(g * w, a.shape), unbroadcast(g * (1.0 - w), b.shape)
    return _node(np.minimum(a.data, b.data), (a, b), _backward, "minimum")


@_dispatch
def astype(x, dtype):
    """Cast to ``dtype``; the gradient is cast back."""
    x = lift(x)

    def _backward(g):
        return (g.astype(x.dtype),)
    return _node(x.data.astype(dtype), (x,), _backward, "astype")


# --------------------------------------------------------------------------- shapes

@_dispatch
def reshape(x, *shape):
    x = lift(x)

    def _backward(g):
        return (g.reshape(x.shape),)
    return _node(x.data.reshape(shape_arg(shape)), (x,), _backward, "reshape")


@_dispatch
def permute(x, *dims):
    """Reorder the axes (numpy's ``transpose(axes)``)."""
    x = lift(x)
    dims = shape_arg(dims)
    inverse = tuple(np.argsort(dims)) if dims else ()

    def _backward(g):
        return (g.transpose(inverse),)
    return _node(x.data.transpose(dims), (x,), _backward, "permute")


@_dispatch
def transpose(x, dim0=None, dim1=None):
    """Swap axes ``dim0`` and ``dim1`` (torch); with no axes, reverse them all (``.T``)."""
    x = lift(x)
    return permute(x, transpose_dims(x.ndim, dim0, dim1))


@_dispatch
def getitem(x, index):
    """``x[index]``: ints, slices, None, Ellipsis, integer and boolean arrays; backward by ``np.add.at``."""
    x = lift(x)
    index = index_arg(index)

    def _backward(g):
        z = np.zeros(x.shape, dtype=g.dtype)
        np.add.at(z, index, g)
        return (z,)
    return _node(np.asarray(x.data[index]), (x,), _backward, "getitem")


@_dispatch
def concatenate(tensors, axis=0):
    first = next((t for t in tensors if isinstance(t, Tensor)), None)
    tensors = [lift(t, first) for t in tensors]
    ends = np.cumsum([t.shape[axis] for t in tensors])[:-1]

    def _backward(g):
        return tuple(np.split(g, ends, axis=axis))
    return _node(np.concatenate([t.data for t in tensors], axis=axis), tuple(tensors), _backward,
                 "concatenate")


@_dispatch
def stack(tensors, axis=0):
    first = next((t for t in tensors if isinstance(t, Tensor)), None)
    tensors = [lift(t, first) for t in tensors]
    y = np.stack([t.data for t in tensors], axis=axis)

    def _backward(g):
        return tuple(np.take(g, i, axis=axis) for i in range(len(tensors)))
    return _node(y, tuple(tensors), _backward, "stack")


# --------------------------------------------------------------------------- softmax

@_dispatch
def softmax(x, axis=-1):
    """exp(x) / sum(exp(x)) along ``axis``, computed after subtracting the max (stable)."""
    x = lift(x)
    s = _math.softmax(_math.as_float(x.data), axis)

    def _backward(g):
        return (s * (g - np.sum(g * s, axis=axis, keepdims=True)),)
    return _node(s, (x,), _backward, "softmax")


@_dispatch
def log_softmax(x, axis=-1):
    """x - logsumexp(x) along ``axis`` (stable)."""
    x = lift(x)
    z = _math.log_softmax(_math.as_float(x.data), axis)

    def _backward(g):
        return (g - np.exp(z) * np.sum(g, axis=axis, keepdims=True),)
    return _node(z, (x,), _backward, "log_softmax")

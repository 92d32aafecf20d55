"""The engine's losses as differentiable functions, torch semantics, 'mean' reduction.

Each loss computes its value and its gradient in one pass (the engine's
``loss_value_and_grad`` kernel for 2-D float inputs of matching shape and
dtype, numpy otherwise); backward scales the saved gradient by the incoming
one.  Targets of the regression losses may require grad too.
"""
import numpy as np

from . import _kernels
from . import _math
from .ops import _dispatch, _pair, lift
from ._math import unbroadcast
from .tensor import Tensor, _node

__all__ = ["mse_loss", "l1_loss", "huber_loss", "cross_entropy", "binary_cross_entropy_with_logits"]


def _loss_node(name, x, t, value, gx, gt):
    """The 0-d loss tensor; ``gt`` may be a callable computing the target gradient on demand."""
    def _backward(g):
        ga = unbroadcast(g * gx, x.shape) if x.requires_grad else None
        gb = None
        if t is not None and t.requires_grad:
            gb = unbroadcast(g * (gt() if callable(gt) else gt), t.shape)
        return (ga,) if t is None else (ga, gb)
    parents = (x,) if t is None else (x, t)
    return _node(np.asarray(value), parents, _backward, name)


def _regression(name, input, target, param, formula):
    x, t = _pair(input, target)
    xd, td = _math.as_float(x.data), _math.as_float(t.data)
    fused = _kernels.loss(name, xd, td, None, param)
    if fused is not None:
        value, gx = fused
        return _loss_node(name, x, t, value, gx, lambda: -gx)
    return _loss_node(name, x, t, *formula(xd, td))


@_dispatch
def mse_loss(input, target):
    """mean((input - target) ** 2)."""
    return _regression("mse", input, target, 0.0, _math.mse)


@_dispatch
def l1_loss(input, target):
    """mean(|input - target|); derivative sign(input - target), 0 at ties."""
    return _regression("l1", input, target, 0.0, _math.l1)


@_dispatch
def huber_loss(input, target, delta=1.0):
    """mean of 0.5 d**2 where |d| < delta, else delta (|d| - delta / 2); d = input - target."""
    delta = float(delta)
    if not delta > 0:                   # NaN too
        raise ValueError(f"huber_loss needs delta > 0, got {delta}")
    return _regression("huber", input, target, delta, lambda x, t: _math.huber(x, t, delta))


@_dispatch
def binary_cross_entropy_with_logits(input, target):
    """mean(max(x, 0) - x t + log(1 + exp(-|x|))): binary cross-entropy of sigmoid(x), computed stably."""
    x, t = _pair(input, target)
    xd, td = _math.as_float(x.data), _math.as_float(t.data)
    fused = _kernels.loss("bce_with_logits", xd, td, None, 0.0)
    if fused is not None:
        value, gx = fused
        return _loss_node("bce_with_logits", x, t, value, gx, lambda: -xd / xd.size)
    return _loss_node("bce_with_logits", x, t, *_math.bce_with_logits(xd, td))


@_dispatch
def cross_entropy(input, target, label_smoothing=0.0):
    """Softmax cross-entropy of (N, C) logits against (N,) integer labels, averaged over rows.

    With ``label_smoothing`` s the target distribution is (1 - s) onehot + s / C (torch).
    (C,) logits with a scalar label are one row.
    """
    x = lift(input)
    labels = target.data if isinstance(target, Tensor) else target
    logits, labels = _math.ce_args(_math.as_float(x.data), labels, float(label_smoothing))
    fused = _kernels.loss("cross_entropy", logits, None, labels, float(label_smoothing))
    if fused is not None:
        value, gx = fused
    else:
        value, gx, _ = _math.cross_entropy(logits, labels, float(label_smoothing))
    return _loss_node("cross_entropy", x, None, value, gx.reshape(x.shape), None)

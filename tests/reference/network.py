"""A plain-numpy Sequential: forward and the textbook backpropagation equations, float64.

δ(L) = ∂L/∂a(L) ⊙ σ'(z(L));  δ(l) = (δ(l+1) W(l+1)) ⊙ σ'(z(l))  (row-major batches);
∂L/∂W(l) = δ(l)ᵀ a(l−1);  ∂L/∂b(l) = Σ_batch δ(l).
"""
import numpy as np

from fastbp.layers import Activation, Linear
from tests.reference.activations import derivative as act_derivative
from tests.reference.activations import forward as act_forward


def dense_ops(model):
    """(W, b, act_code, alpha) per Linear, with the activation that follows it (float64 copies)."""
    ops, layers, i = [], model.layers, 0
    while i < len(layers):
        layer = layers[i]
        if isinstance(layer, Linear):
            nxt = layers[i + 1] if i + 1 < len(layers) else None
            act = nxt if isinstance(nxt, Activation) else None
            b = None if layer.bias is None else layer.bias.astype(np.float64)
            ops.append((layer.weight.astype(np.float64), b, act.code if act else 0, act.alpha if act else 0.0))
            i += 2 if act else 1
        else:
            ops.append((None, None, layer.code, layer.alpha))
            i += 1
    return ops


def forward(ops, x):
    """Returns the output and the per-op cache (input, pre-activation)."""
    cache, a = [], np.asarray(x, dtype=np.float64)
    for W, b, act, alpha in ops:
        z = a @ W.T + (0 if b is None else b) if W is not None else a
        cache.append((a, z))
        a = act_forward(z, act, alpha)
    return a, cache


def backward(ops, cache, dout):
    """Returns ([(dW, db) per op], dx) by the backpropagation equations."""
    grads, g = [None] * len(ops), np.asarray(dout, dtype=np.float64)
    for i in range(len(ops) - 1, -1, -1):
        W, b, act, alpha = ops[i]
        a_prev, z = cache[i]
        delta = g * act_derivative(z, act, alpha)
        if W is None:
            grads[i] = (None, None)
            g = delta
            continue
        grads[i] = (delta.T @ a_prev, None if b is None else delta.sum(axis=0))
        g = delta @ W
    return grads, g

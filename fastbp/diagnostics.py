"""Diagnostics of gradient flow: per-layer gradient norms (vanishing and exploding gradients)."""
import numpy as np

from .losses import CrossEntropyLoss, get_loss
from .validation import as_matrix


def gradient_norms(model, X, y, loss=None):
    """‖∂L/∂θ‖₂ of every parameterized layer for one batch (X, y), in training mode.

    Runs forward, loss and backward once, so it overwrites the model's gradients
    (parameters and optimizer state are untouched; BatchNorm running statistics
    see this batch).  Returns ``{layer name: norm}`` in layer order.
    """
    loss = CrossEntropyLoss() if loss is None else get_loss(loss)
    X = as_matrix("X", X, model.dtype, model.in_features)
    T, labels = loss.prepare_target(y, model.out_features, model.dtype, n_rows=X.shape[0], name="y")
    was_training = model.training
    model.train()
    try:
        out = model.forward(X)
        _, dout = loss(out, labels if labels.size else T)
        model.backward(dout)
    finally:
        model.train(was_training)
    from .kernels.program import layer_grad_norms
    norms = np.zeros(len(model._ops))
    layer_grad_norms(model._program, model.arena.grads, norms)
    return {name: float(norms[i]) for i, name in model._parameterized_ops()}

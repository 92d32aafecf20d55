"""Reverse-mode autograd (a tape of ``Tensor`` ops) and forward mode (``Dual`` numbers).

    >>> from fastbp.autograd import tensor
    >>> x = tensor([2.0], requires_grad=True)
    >>> y = x ** 3 + 2 * x
    >>> y.backward()
    >>> x.grad
    array([14.])

Semantics follow PyTorch: gradients accumulate in ``.grad`` until
``zero_grad()``; the graph is freed after ``backward`` unless
``retain_graph=True``; ``no_grad()`` stops recording.  ``grad``, ``vjp``,
``jvp`` and ``jacobian`` are function transforms; ``gradcheck`` verifies
gradients by central differences.  The ops and losses below accept Tensors
(tape) and Duals (forward mode) alike; ``sum``, ``max``, ``min`` and ``abs``
are here too but left out of ``__all__`` so a star-import keeps the builtins.
"""
from .dual import Dual
from .functional import grad, jacobian, jvp, value_and_grad, vjp
from .gradcheck import GradcheckError, gradcheck
from .losses import binary_cross_entropy_with_logits, cross_entropy, huber_loss, l1_loss, mse_loss
from .ops import (  # noqa: F401  (abs, max, min, sum: fastbp.autograd.sum etc., kept out of __all__)
    abs, argmax, argmin, concatenate, elu, exp, gelu, leaky_relu, log, log_softmax, matmul, max, maximum,
    mean, min, minimum, permute, relu, reshape, sigmoid, silu, softmax, softplus, sqrt, stack, sum, tanh,
    transpose,
)
from .tensor import Tensor, custom_op, enable_grad, is_grad_enabled, no_grad, set_grad_enabled, tensor

__all__ = [
    "Tensor", "tensor", "custom_op", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
    "Dual", "grad", "value_and_grad", "vjp", "jvp", "jacobian", "gradcheck", "GradcheckError",
    "matmul", "mean", "argmax", "argmin",
    "exp", "log", "sqrt", "tanh", "sigmoid", "relu", "leaky_relu", "elu", "gelu", "silu", "softplus",
    "maximum", "minimum", "reshape", "transpose", "permute", "concatenate", "stack",
    "softmax", "log_softmax",
    "mse_loss", "l1_loss", "huber_loss", "cross_entropy", "binary_cross_entropy_with_logits",
]

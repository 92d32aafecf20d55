"""Plain numpy (float64) activations and the derivatives torch's autograd uses.

Written from the torch.nn documentation formulas, one whole-array expression
each, with stable forms (``logaddexp``) where the textbook form overflows, so
that ±1e4 raises no warning.  Branch conventions follow autograd:
relu'(0) = 0, leaky_relu'(0) = negative_slope, elu'(x <= 0) = alpha exp(x),
softplus (beta 1, threshold 20) is the identity above 20 with derivative 1.
"""
import math

import numpy as np

from fastbp.kernels import codes

_erf = np.frompyfunc(math.erf, 1, 1)


def erf(x):
    return _erf(x).astype(np.float64)


def sigmoid(x):
    return np.exp(-np.logaddexp(0.0, -x))        # 1 / (1 + exp(-x)) without overflow


def normal_cdf(x):
    return 0.5 * (1.0 + erf(x / math.sqrt(2.0)))


def normal_pdf(x):
    return np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


GELU_TANH_BETA = math.sqrt(2.0 / math.pi)
GELU_TANH_KAPPA = 0.044715


def forward(x, act, alpha=0.0):
    """act(x) for an activation code."""
    x = np.asarray(x, dtype=np.float64)
    if act == codes.IDENTITY:
        return x.copy()
    if act == codes.RELU:
        return np.where(x <= 0, 0.0, x)
    if act == codes.LEAKY_RELU:
        return np.where(x > 0, x, alpha * x)
    if act == codes.ELU:
        return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0.0)))
    if act == codes.GELU:
        return x * normal_cdf(x)
    if act == codes.GELU_TANH:
        return 0.5 * x * (1.0 + np.tanh(GELU_TANH_BETA * (x + GELU_TANH_KAPPA * x ** 3)))
    if act == codes.SILU:
        return x * sigmoid(x)
    if act == codes.SIGMOID:
        return sigmoid(x)
    if act == codes.TANH:
        return np.tanh(x)
    if act == codes.SOFTPLUS:
        return np.where(x > 20.0, x, np.logaddexp(0.0, x))
    raise ValueError(f"unknown activation code {act}")


def derivative(x, act, alpha=0.0):
    """d act / dx at x, with autograd's choice at the kinks."""
    x = np.asarray(x, dtype=np.float64)
    if act == codes.IDENTITY:
        return np.ones_like(x)
    if act == codes.RELU:
        return np.where(x > 0, 1.0, 0.0)
    if act == codes.LEAKY_RELU:
        return np.where(x > 0, 1.0, alpha)
    if act == codes.ELU:
        return np.where(x > 0, 1.0, alpha * np.exp(np.minimum(x, 0.0)))
    if act == codes.GELU:
        return normal_cdf(x) + x * normal_pdf(x)
    if act == codes.GELU_TANH:
        t = np.tanh(GELU_TANH_BETA * (x + GELU_TANH_KAPPA * x ** 3))
        dinner = GELU_TANH_BETA * (1.0 + 3.0 * GELU_TANH_KAPPA * x ** 2)
        return 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t ** 2) * dinner
    if act == codes.SILU:
        s = sigmoid(x)
        return s * (1.0 + x * (1.0 - s))
    if act == codes.SIGMOID:
        s = sigmoid(x)
        return s * (1.0 - s)
    if act == codes.TANH:
        return 1.0 - np.tanh(x) ** 2
    if act == codes.SOFTPLUS:
        return np.where(x > 20.0, 1.0, sigmoid(x))
    raise ValueError(f"unknown activation code {act}")

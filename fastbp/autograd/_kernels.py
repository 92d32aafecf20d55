"""Optional use of the engine's Numba kernels for 2-D float32/float64 arrays.

The numpy formulas in ``_math`` are correct for every shape; for the common
(batch, features) case the tape calls the same kernels as the engine, so the
two agree to rounding.  Every function returns None when the kernel does not
apply (other shapes or dtypes, non-default parameters),
and the caller falls back to numpy.  ``ENABLED = False`` forces numpy.
"""
import numpy as np

from ..kernels import codes as _codes
from ..kernels.activations import act_backward as _act_backward
from ..kernels.activations import bias_act_forward as _bias_act_forward
from ..kernels.losses import loss_value_and_grad as _loss_value_and_grad

ENABLED = True


def _fits(x):
    return x.ndim == 2 and x.dtype in (np.float32, np.float64) and x.size > 0


def _act_code(name, p):
    """The kernel's (code, alpha) for activation ``name``, or None where the kernel differs."""
    if name == "softplus":
        if p != (1.0, 20.0):
            return None
        p = None
    code = _codes.ACTIVATION_CODES.get(name)
    if code is None:
        return None
    return code, 0.0 if p is None else float(p)


def act_forward(name, x, p):
    """act(x) by ``bias_act_forward`` (no bias), or None."""
    if not (ENABLED and _fits(x)):
        return None
    spec = _act_code(name, p)
    if spec is None:
        return None
    z = np.ascontiguousarray(x)
    out = np.empty_like(z)
    _bias_act_forward(z, np.empty(0, dtype=z.dtype), spec[0], z.dtype.type(spec[1]), out)
    return out


def act_backward(name, g, x, y, p):
    """g * act'(x) by ``act_backward`` (x, y as used by ``act_forward``)."""
    code, alpha = _act_code(name, p)
    z = np.ascontiguousarray(x)
    g = np.ascontiguousarray(g, dtype=z.dtype)
    out = np.empty_like(z)
    _act_backward(g, z, y, code, z.dtype.type(alpha), out)
    return out


def loss(name, x, t, labels, param):
    """(value, d value / d x) by ``loss_value_and_grad`` for 2-D inputs, or None."""
    if not (ENABLED and _fits(x)):
        return None
    if t is not None and (t.shape != x.shape or t.dtype != x.dtype):
        return None
    code = getattr(_codes, {"mse": "MSE", "l1": "L1", "huber": "HUBER", "cross_entropy": "CROSS_ENTROPY",
                            "bce_with_logits": "BCE_WITH_LOGITS"}[name])
    P = np.ascontiguousarray(x)
    T = np.ascontiguousarray(t) if t is not None else np.empty((0, 0), dtype=P.dtype)
    L = np.ascontiguousarray(labels, dtype=np.int64) if labels is not None else np.empty(0, dtype=np.int64)
    dP = np.empty_like(P)
    value = _loss_value_and_grad(code, P, T, L, P.dtype.type(param), dP)
    return np.asarray(value, dtype=P.dtype), dP

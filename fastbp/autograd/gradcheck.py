"""``gradcheck``: compare the tape's Jacobian (and optionally forward mode's) with central differences.

Like ``torch.autograd.gradcheck``: every differentiable input is copied to
float64, each of its elements is perturbed by +-eps, and the resulting
numerical Jacobian must match the analytical one elementwise within
``atol + rtol * |numerical|``; on failure the error names the worst element.
"""
import numpy as np

from .functional import jacobian
from .tensor import Tensor, no_grad

__all__ = ["gradcheck", "GradcheckError"]


class GradcheckError(RuntimeError):
    """An analytical Jacobian disagrees with the numerical one."""


def _prepare(inputs):
    """(float64 copies or constants, differentiable flags) for gradcheck's inputs."""
    arrays, diff = [], []
    for x in inputs:
        if isinstance(x, Tensor):
            data, d = x.data, x.requires_grad
        else:
            data = np.asarray(x)
            d = data.dtype.kind == "f"
        arrays.append(np.array(data, dtype=np.float64) if d else data)
        diff.append(d)
    return arrays, diff


def _output(out):
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: f must return a Tensor, got {type(out).__name__}")
    return np.asarray(out.data, dtype=np.float64)


def _numerical(call, xs, k, eps, out_size):
    """Central-difference Jacobian of ``call`` w.r.t. ``xs[k]``, shape (out.size, xs[k].size)."""
    x = xs[k]
    columns = []
    for i in range(x.size):
        plus, minus = x.copy(), x.copy()
        plus.flat[i] += eps
        minus.flat[i] -= eps
        with no_grad():
            fp = _output(call(*[Tensor(plus if j == k else a) for j, a in enumerate(xs)]))
            fm = _output(call(*[Tensor(minus if j == k else a) for j, a in enumerate(xs)]))
        columns.append(((fp - fm) / (2.0 * eps)).reshape(-1))
    return np.stack(columns, axis=1) if columns else np.zeros((out_size, 0))


def _compare(analytical, numerical, out_shape, in_shape, which, mode, atol, rtol):
    """None if the Jacobians agree, else a message naming the worst element."""
    err = np.abs(analytical - numerical)
    tol = atol + rtol * np.abs(numerical)
    bad = ~(err <= tol)                   # NaN counts as bad
    if not bad.any():
        return None
    excess = np.where(np.isnan(err), np.inf, err - tol)
    row, col = np.unravel_index(int(np.argmax(excess)), excess.shape)
    out_idx = np.unravel_index(row, out_shape) if out_shape else ()
    in_idx = np.unravel_index(col, in_shape) if in_shape else ()
    lines = [
        f"Jacobian mismatch for output 0 with respect to input {which} ({mode} mode):",
        f"  worst element: d out{tuple(int(i) for i in out_idx)} / d input{which}"
        f"{tuple(int(i) for i in in_idx)}: analytical {float(analytical[row, col])!r}, "
        f"numerical {float(numerical[row, col])!r}, |difference| {err[row, col]:.3g} "
        f"> atol + rtol * |numerical| = {tol[row, col]:.3g}",
        f"  {int(bad.sum())} of {bad.size} Jacobian entries out of tolerance",
    ]
    if analytical.size <= 64:
        lines += ["  numerical:", np.array2string(numerical, prefix="  "),
                  "  analytical:", np.array2string(analytical, prefix="  ")]
    return "\n".join(lines)


def gradcheck(f, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, check_forward_ad=False):
    """Check the gradients of ``f`` at ``inputs`` against central differences in float64.

    ``inputs`` is a tuple (or one array): float arrays and Tensors with
    ``requires_grad`` are checked; other Tensors and integer arrays (labels)
    are passed as constants.  ``f`` receives Tensors and returns a Tensor.
    ``check_forward_ad=True`` also checks forward mode (``f`` then also runs
    on Duals).  Returns True, or raises ``GradcheckError`` (returns False
    when ``raise_exception=False``).
    """
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    arrays, diff = _prepare(inputs)
    which = [i for i, d in enumerate(diff) if d]
    if not which:
        raise ValueError("gradcheck: no differentiable inputs (float arrays or tensors requiring grad)")
    constants = [None if d else Tensor(a) for a, d in zip(arrays, diff)]

    def call(*xs):
        args = list(constants)
        for i, x in zip(which, xs):
            args[i] = x
        return f(*args)

    xs = [arrays[i] for i in which]
    with no_grad():
        out_shape = _output(call(*[Tensor(a) for a in xs])).shape
    modes = ["reverse"] + (["forward"] if check_forward_ad else [])
    jacobians = {mode: jacobian(call, tuple(xs), mode=mode) for mode in modes}
    for k, i in enumerate(which):
        numerical = _numerical(call, xs, k, eps, int(np.prod(out_shape)))
        for mode in modes:
            analytical = jacobians[mode][k]
            analytical = np.asarray(analytical, dtype=np.float64).reshape(numerical.shape)
            message = _compare(analytical, numerical, out_shape, xs[k].shape, i, mode, atol, rtol)
            if message is not None:
                if raise_exception:
                    raise GradcheckError(message)
                return False
    return True

"""Function transforms: ``grad``, ``value_and_grad``, ``vjp`` (tape), ``jvp`` (dual numbers), ``jacobian``.

``f`` is written with Tensor operators and methods or the functions of
``fastbp.autograd`` (which accept Duals too), and is called with fresh leaf
Tensors (reverse mode) or Duals (forward mode).  Inputs may be arrays,
Python numbers or Tensors (only their data is used); results are numpy
arrays.  None of these touch any tensor's ``.grad``.
"""
import functools

import numpy as np

from . import _math
from .dual import Dual
from .tensor import Tensor, enable_grad, run_backward

__all__ = ["grad", "value_and_grad", "vjp", "jvp", "jacobian"]


def _data(x):
    return _math.as_float(x.data if isinstance(x, Tensor) else np.asarray(x))


def _leaf(x):
    """A fresh leaf Tensor requiring grad, over a private copy of ``x``'s data."""
    return Tensor(np.array(_data(x)), requires_grad=True)


def _check_tensor(out, what):
    if not isinstance(out, Tensor):
        raise TypeError(f"{what}: f must return a Tensor (built from its arguments with fastbp.autograd "
                        f"ops), got {type(out).__name__}")
    return out


def _zeros_for_none(grads, leaves):
    return tuple(np.zeros_like(leaf.data) if g is None else g for g, leaf in zip(grads, leaves))


def value_and_grad(f, argnums=0):
    """``f`` -> a function returning ``(f(*args), d f / d args[argnums])``; f must return one element.

    ``argnums`` is an int (one gradient) or a tuple (a tuple of gradients).
    """
    @functools.wraps(f)
    def value_and_grad_f(*args, **kwargs):
        nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
        args = list(args)
        for i in nums:
            if not -len(args) <= i < len(args):
                raise IndexError(f"argnums {i} out of range for {len(args)} positional arguments")
            args[i] = _leaf(args[i])
        leaves = [args[i] for i in nums]
        with enable_grad():
            out = _check_tensor(f(*args, **kwargs), "grad")
        if out.data.size != 1:
            raise ValueError(f"grad: f must return a one-element Tensor, got shape {out.shape}; "
                             f"use vjp or jacobian for non-scalar outputs")
        grads = [None] * len(leaves)
        if out.requires_grad:
            grads = run_backward([out], [np.ones_like(out.data)], inputs=leaves)
        grads = _zeros_for_none(grads, leaves)
        return out.data, grads[0] if isinstance(argnums, int) else grads
    return value_and_grad_f


def grad(f, argnums=0):
    """``f`` -> a function returning the gradient of scalar ``f`` with respect to ``args[argnums]``.

    >>> grad(lambda x: (x ** 3).sum())(np.array([1.0, 2.0]))
    array([ 3., 12.])
    """
    vg = value_and_grad(f, argnums)

    @functools.wraps(f)
    def grad_f(*args, **kwargs):
        return vg(*args, **kwargs)[1]
    return grad_f


def vjp(f, *primals):
    """``(f(*primals), vjp_fn)``; ``vjp_fn(cotangent)`` gives one array per primal: cotangent^T J.

    ``f`` may return a Tensor or a tuple of Tensors (then the cotangent is a
    tuple too).  The graph is kept, so ``vjp_fn`` may be called many times.
    """
    leaves = [_leaf(p) for p in primals]
    with enable_grad():
        out = f(*leaves)
    multi = isinstance(out, (tuple, list))
    outs = tuple(_check_tensor(o, "vjp") for o in (out if multi else (out,)))

    def vjp_fn(cotangent):
        cts = tuple(cotangent) if multi else (cotangent,)
        if len(cts) != len(outs):
            raise ValueError(f"vjp_fn: {len(cts)} cotangents for {len(outs)} outputs")
        roots, seeds = [], []
        for o, c in zip(outs, cts):
            c = np.asarray(c.data if isinstance(c, Tensor) else c, dtype=o.dtype)
            if c.shape != o.shape:
                raise ValueError(f"vjp_fn: cotangent shape {c.shape} differs from output shape {o.shape}")
            if o.requires_grad:
                roots.append(o)
                seeds.append(c)
        grads = [None] * len(leaves)
        if roots:
            grads = run_backward(roots, seeds, inputs=leaves, retain_graph=True)
        return _zeros_for_none(grads, leaves)

    values = tuple(o.data for o in outs)
    return (values if multi else values[0]), vjp_fn


def _split_dual(o):
    if isinstance(o, Dual):
        return o.primal, o.tangent
    p = _data(o)
    return p, np.zeros_like(p)


def jvp(f, primals, tangents):
    """``(f(*primals), J tangents)`` by forward mode: ``f`` runs once on Dual numbers.

    ``primals`` and ``tangents`` are tuples of matching arrays (a single array
    is one argument).  ``f`` may return a Dual or a tuple of Duals.
    """
    single = not isinstance(primals, (tuple, list))
    primals = (primals,) if single else tuple(primals)
    tangents = (tangents,) if not isinstance(tangents, (tuple, list)) else tuple(tangents)
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    duals = [Dual(_data(p), _data(t)) for p, t in zip(primals, tangents)]
    out = f(*duals)
    if isinstance(out, (tuple, list)):
        pairs = [_split_dual(o) for o in out]
        return tuple(p for p, _ in pairs), tuple(t for _, t in pairs)
    return _split_dual(out)


def jacobian(f, x, mode="forward"):
    """d f(x) / d x as an array of shape ``f(x).shape + x.shape``.

    ``mode="forward"``: one ``jvp`` per input element; ``"reverse"``: one
    ``vjp`` per output element.  ``x`` may be a tuple of arrays (arguments of
    ``f``); the result is then a tuple of Jacobians.  ``f`` returns one array.
    """
    multi = isinstance(x, (tuple, list))
    xs = [_data(a) for a in (x if multi else (x,))]
    if mode == "reverse":
        out, vjp_fn = vjp(f, *xs)
        if isinstance(out, tuple):
            raise ValueError("jacobian: f must return a single Tensor")
        jac = [np.zeros(out.shape + a.shape, dtype=np.result_type(out, a)) for a in xs]
        for j in np.ndindex(out.shape):
            ct = np.zeros(out.shape, dtype=out.dtype)
            ct[j] = 1
            for J, g in zip(jac, vjp_fn(ct)):
                J[j] = g
    elif mode == "forward":
        zeros = [np.zeros_like(a) for a in xs]
        out, _ = jvp(f, tuple(xs), tuple(zeros))
        if isinstance(out, tuple):
            raise ValueError("jacobian: f must return a single Dual")
        jac = [np.zeros(out.shape + a.shape, dtype=np.result_type(out, a)) for a in xs]
        for k, a in enumerate(xs):
            flat = jac[k].reshape(out.size, a.size)
            for i in range(a.size):
                t = np.zeros(a.size, dtype=a.dtype)
                t[i] = 1
                tangents = list(zeros)
                tangents[k] = t.reshape(a.shape)
                flat[:, i] = jvp(f, tuple(xs), tuple(tangents))[1].reshape(-1)
    else:
        raise ValueError(f"mode must be 'forward' or 'reverse', got {mode!r}")
    return tuple(jac) if multi else jac[0]

"""Inverted dropout whose mask is a pure function of (seed, stream, element): nothing is stored.

The mask comes from a counter-based hash, so the backward pass (and any
recomputation of a forward segment, e.g. gradient checkpointing) regenerates
exactly the forward's mask from the same ``(seed, stream)``:

* ``mix64(z)`` is splitmix64's output function (Stafford's "Mix13" finalizer):
  ``z ^= z >> 30; z *= 0xBF58476D1CE4E5B9; z ^= z >> 27; z *= 0x94D049BB133111EB;
  z ^= z >> 31`` over uint64 -- a bijection of 64-bit words.
* ``stream_key(seed, stream) = mix64(mix64(seed + G) ^ stream)`` with
  ``G = 0x9E3779B97F4A7C15`` (seed and stream are int64, taken mod 2**64).
  For a fixed seed, distinct streams give distinct keys.
* element ``index`` draws ``x = mix64(key + (index + 1) * G)`` -- the
  ``index``-th output of a splitmix64 generator seeded with ``key`` -- and
  ``uniform = (x >> 11) * 2**-53`` in [0, 1).
* An element is kept iff ``uniform >= p``, evaluated exactly in integers as
  ``(x >> 11) >= ceil(p * 2**53)``; it is kept with probability ``1 - p``
  (to within 2**-53).

Element ``(i, j)`` of a C-contiguous (B, n) batch has ``index = i * n + j``,
its flat position: the mask of row ``i`` depends on ``(seed, stream, i, n)``
only, not on the batch size, so the first ``B'`` rows of a larger batch get
the same mask as a batch of ``B'`` rows.  The caller derives ``stream`` from
(step, layer) (``program.py`` uses ``step * MAX_OPS + op``), so every step and
layer draws a fresh mask.

Kept elements are scaled by ``1 / (1 - p)`` computed in the array dtype
(``one / (one - p)``); dropped elements are written as 0 (also where the input
is NaN or Inf -- torch's ``input * mask`` would give NaN there).  ``p == 0``
is a copy; ``p == 1`` is rejected by the layer.  Every element is
independent, so results do not depend on the thread count; rows run under
``prange`` from ``PARALLEL_MIN_ELEMENTS`` elements on.

The masking loop (``_mask_rows``) runs as a ``linked.LazyTable`` callback, compiled only by
``link(dtype)``, which ``compiler.assign_slots`` calls for every program with a dropout op:
a model without one carries none of its code (NOTES 59).  The kernels raise
``RuntimeError`` if called before ``link``.
"""
import numpy as np
from numba import carray, types
from numba.extending import overload

from .._jit import jit, jit_parallel, prange
from . import fpenv, linked

PARALLEL_MIN_ELEMENTS = 1 << 15
"""Kernels ``prange`` over rows only from this many elements (B * n) on."""

GOLDEN = 0x9E3779B97F4A7C15
MIX_M1 = 0xBF58476D1CE4E5B9
MIX_M2 = 0x94D049BB133111EB

_G = np.uint64(GOLDEN)
_M1 = np.uint64(MIX_M1)
_M2 = np.uint64(MIX_M2)
_S11 = np.uint64(11)
_S27 = np.uint64(27)
_S30 = np.uint64(30)
_S31 = np.uint64(31)
_ONE = np.uint64(1)
_TWO53 = 9007199254740992.0   # 2**53
_INV_TWO53 = 1.0 / _TWO53

_KW = {"error_model": "numpy"}


@jit(**_KW)
def mix64(z):
    """splitmix64's finalizer of a uint64 (a bijection)."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@jit(**_KW)
def stream_key(seed, stream):
    """The uint64 key of (seed, stream); both int64 (any value, taken mod 2**64)."""
    return mix64(mix64(np.uint64(seed) + _G) ^ np.uint64(stream))


@jit(**_KW)
def uniform(seed, stream, index):
    """The float64 in [0, 1) that element ``index`` of stream ``(seed, stream)`` draws."""
    x = mix64(stream_key(seed, stream) + (np.uint64(index) + _ONE) * _G)
    return np.float64(x >> _S11) * _INV_TWO53


@jit(**_KW)
def keep_threshold(p):
    """uint64 ``t`` with ``(x >> 11) >= t``  <=>  ``uniform >= p`` (p in [0, 1])."""
    return np.uint64(np.ceil(np.float64(p) * _TWO53))


@jit(**_KW)
def _mask_rows(X, scale, key, thr, Y, r0, r1):
    """Y[r0:r1] = X * scale where kept, 0 elsewhere (elementwise, so Y may be X)."""
    n = X.shape[1]
    zero = Y.dtype.type(0.0)
    for i in range(r0, r1):
        base = key + (np.uint64(i) * np.uint64(n) + _ONE) * _G
        for j in range(n):
            x = mix64(base + np.uint64(j) * _G)
            v = X[i, j] * scale
            Y[i, j] = v if (x >> _S11) >= thr else zero


@jit_parallel(**_KW)
def _apply(X, p, seed, stream, Y):
    B = X.shape[0]
    n = X.shape[1]
    t = Y.dtype.type
    pp = t(p)
    _check_linked(Y)
    if pp == t(0.0):
        for i in range(B):
            for j in range(n):
                Y[i, j] = X[i, j]
        return
    one = t(1.0)
    scale = one / (one - pp)
    key = stream_key(seed, stream)
    thr = keep_threshold(pp)
    if B * n >= PARALLEL_MIN_ELEMENTS:
        bits = fpenv.current()
        for r in prange(B):
            old = fpenv.adopt(bits)
            i = np.int64(r)
            _mask_rows_linked(X, scale, key, thr, Y, i, i + 1)
            fpenv.leave(old)
    else:
        _mask_rows_linked(X, scale, key, thr, Y, np.int64(0), np.int64(B))


@jit(**_KW)
def dropout_forward(X, p, seed, stream, Y):
    """Y = X / (1 - p) where kept, 0 elsewhere; X, Y (B, n), p in [0, 1) in X's dtype,
    seed and stream int64.  Y may be X."""
    _apply(X, p, seed, stream, Y)


@jit(**_KW)
def dropout_backward(G, p, seed, stream, out):
    """out = G / (1 - p) where the forward kept the element, 0 elsewhere (the same mask,
    regenerated from seed and stream).  out may be G."""
    _apply(G, p, seed, stream, out)


# ------------------------------------------------------------- linked leaf
def _mask_leaf(x, rows, n, scale, key, thr, y, r0, r1):
    _mask_rows(carray(x, (rows, n)), scale, key, thr, carray(y, (rows, n)), r0, r1)


def _leaves(dtype):
    i, u, p = types.int64, types.uint64, types.CPointer(dtype)
    return (("mask_rows", (p, i, i, dtype, u, u, p, i, i), _mask_leaf),)


_LINKED = linked.DtypeTables("dropout", _leaves, "dropout's kernels are not linked for this dtype: "
                             "call fastbp.kernels.dropout.link(dtype) first")
_check_linked = _LINKED.check
link = _LINKED.link


def _mask_rows_linked(X, scale, key, thr, Y, r0, r1):
    raise NotImplementedError("only available inside Numba-compiled code")


@overload(_mask_rows_linked, inline="always")
def _mask_rows_linked_overload(X, scale, key, thr, Y, r0, r1):
    if not linked.same_dtype(X, Y):
        return None
    call = _LINKED.calls(X.dtype)[0]

    def impl(X, scale, key, thr, Y, r0, r1):
        call(linked.data_address(X), X.shape[0], X.shape[1], scale, key, thr, linked.data_address(Y), r0, r1)
    return impl

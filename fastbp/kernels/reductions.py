"""Reductions whose results never depend on the thread count.

* ``column_sums`` (bias gradients): each column summed in row order, the row
  loop outermost so the adds vectorize across columns without reassociation.
  Always serial: it streams D once at ~0.1 ns an element, and on this 2-core
  machine every threaded version measured (column blocks, with and without
  task-local accumulators) was 2-10x slower than the serial loop at every
  size from 2^15 to 2^19 elements; a layer's weight-gradient GEMM over the
  same rows costs far more anyway.
* ``sum_of_squares`` (global gradient norm): fixed chunks of ``SSQ_CHUNK``
  elements, each summed in float64 by one compiled loop (``reassoc`` lets it
  vectorize; its order is fixed by the compiled code, the same in both
  paths), then the chunk sums are added serially in chunk order.  ``prange``
  over chunks from ``SSQ_PARALLEL_MIN`` elements on.
* ``int_range``: (min, max) of int64 labels in one pass (validation).
* ``row_argmax`` (accuracy): first maximum, NaN counts as the maximum (torch
  and NumPy agree).
"""
import math

import numpy as np

from fastbp._jit import FASTMATH_REDUCE, jit, jit_parallel, prange
from fastbp.kernels import fpenv

SSQ_CHUNK = 4096
"""Elements per partial sum in ``sum_of_squares``; part of the result's definition."""

SSQ_PARALLEL_MIN = 1 << 20
"""``sum_of_squares`` uses ``prange`` over its chunks from this many elements (256 chunks) on:
below that the serial loop (~0.2-0.5 ms a million elements) beat two threads in every
measurement on this shared 2-core machine."""

_KW = {"error_model": "numpy"}


@jit(**_KW)
def column_sums(D, out):
    """out[j] = sum_i D[i, j], in row order, in D's dtype (bias gradients)."""
    n = D.shape[1]
    for j in range(n):
        out[j] = 0
    for i in range(D.shape[0]):
        for j in range(n):
            out[j] += D[i, j]


@jit(fastmath=set(FASTMATH_REDUCE), **_KW)
def _ssq_chunk(x, k0, k1):
    s = 0.0
    for k in range(k0, k1):
        v = np.float64(x[k])
        s += v * v
    return s


@jit_parallel(**_KW)
def sum_of_squares(x):
    """sum(x**2) of a 1-D buffer as a float64: fixed chunks, chunk sums added in order."""
    n = x.shape[0]
    nchunks = (n + SSQ_CHUNK - 1) // SSQ_CHUNK
    total = 0.0
    if n >= SSQ_PARALLEL_MIN:
        partial = np.empty(nchunks, dtype=np.float64)
        bits = fpenv.current()
        for p in prange(nchunks):
            old = fpenv.adopt(bits)
            c = np.int64(p)
            partial[c] = _ssq_chunk(x, c * SSQ_CHUNK, min((c + 1) * SSQ_CHUNK, n))
            fpenv.leave(old)
        for c in range(nchunks):
            total += partial[c]
    else:
        for c in range(nchunks):
            total += _ssq_chunk(x, c * SSQ_CHUNK, min((c + 1) * SSQ_CHUNK, n))
    return total


@jit(**_KW)
def row_argmax(P, out):
    """out[i] = index of the first maximum of row i (a NaN is the maximum)."""
    B, C = P.shape
    for i in range(B):
        best = P[i, 0]
        k = 0
        if not math.isnan(best):
            for j in range(1, C):
                v = P[i, j]
                if v > best:
                    best = v
                    k = j
                elif math.isnan(v):
                    k = j
                    break
        out[i] = k


@jit(fastmath=set(FASTMATH_REDUCE), error_model="numpy")
def all_finite(x):
    """True when no element of the 1-D array ``x`` is NaN or ±Inf (input validation, no allocation).

    Sums ``x[i] * 0``: 0 for finite values, NaN as soon as one is NaN or infinite
    (``reassoc`` lets the sum vectorize; ``nnan``/``ninf`` stay off).
    """
    acc = x.dtype.type(0)
    for i in range(x.shape[0]):
        acc += x[i] * x.dtype.type(0)
    return acc == 0


@jit(fastmath=set(FASTMATH_REDUCE), error_model="numpy")
def copy_finite(src, dst):
    """``dst[:] = src`` for 1-D arrays, returning whether every element is finite: one pass
    instead of ``all_finite`` and a copy (staging a training batch, NOTES section 23)."""
    acc = src.dtype.type(0)
    for i in range(src.shape[0]):
        v = src[i]
        dst[i] = v
        acc += v * src.dtype.type(0)
    return acc == 0


@jit
def int_range(x):
    """(min, max) of a non-empty 1-D int64 array in one pass (label validation without two numpy calls)."""
    lo = x[0]
    hi = x[0]
    for i in range(1, x.shape[0]):
        v = x[i]
        lo = min(lo, v)
        hi = max(hi, v)
    return lo, hi

"""W1 at batch 1 (784-256-256-10, float32) as a chain of matrix-vector products:
which layers run in parallel.  Per call, µs, interleaved, same process.  "pair12": one
region, each thread its half of layer 1 and then layer 2's partial product over those
columns (on contiguous copies of W2's column halves; "pair12 strided": on W2 in place).

    PYTHONPATH=. python benchmarks/probes/gemv_chain.py THREADS
"""
import sys

import numba
import numpy as np

from fastbp._jit import FASTMATH_REDUCE, jit
from fastbp.kernels import gemm
from timing import median_us  # benchmarks/probes/timing.py (the script folder is on sys.path)


@jit
def _relu_bias(z, b):
    zero = z.dtype.type(0)
    for j in range(z.shape[0]):
        v = z[j] + b[j]
        z[j] = v if v > zero else zero


@jit
def chain(x, W1, b1, W2, b2, W3, b3, h1, h2, out, par1, par2, par3):
    for W, b, a, z, par in ((W1, b1, x, h1, par1), (W2, b2, h1, h2, par2), (W3, b3, h2, out, par3)):
        k = a.shape[0]
        if par:
            gemm._dots_parallel(a, k, 1, W, k, k, z, z.shape[0])
        else:
            gemm._dots_serial(a, k, 1, W, k, k, z, z.shape[0])
        _relu_bias(z, b)


@jit
def _pair_tail(parts, b2, W3, b3, h2, out):
    """Layer 2's partials summed in part order, its bias and ReLU, then layer 3."""
    for j in range(h2.shape[0]):
        h2[j] = parts[0, j] + parts[1, j]
    _relu_bias(h2, b2)
    gemm._dots_serial(h2, h2.shape[0], 1, W3, h2.shape[0], h2.shape[0], out, out.shape[0])
    _relu_bias(out, b3)


@jit(fastmath=set(FASTMATH_REDUCE))
def _gemv_rows_ld(a, B, ld, c0, k, C, j0, j1):
    """C[j] = sum_p a[p] * B[j*ld + c0 + p] for j in [j0, j1) (a multiple of 4 rows), four rows
    per pass: gemm._dots_rows over a column block of a row-major B."""
    zero = C.dtype.type(0)
    for j in range(j0, j1, 4):
        b0 = B[j * ld + c0:j * ld + c0 + k]
        b1 = B[(j + 1) * ld + c0:(j + 1) * ld + c0 + k]
        b2 = B[(j + 2) * ld + c0:(j + 2) * ld + c0 + k]
        b3 = B[(j + 3) * ld + c0:(j + 3) * ld + c0 + k]
        s0 = zero
        s1 = zero
        s2 = zero
        s3 = zero
        for p in range(k):
            x = a[p]
            s0 += x * b0[p]
            s1 += x * b1[p]
            s2 += x * b2[p]
            s3 += x * b3[p]
        C[j] = s0
        C[j + 1] = s1
        C[j + 2] = s2
        C[j + 3] = s3


@numba.njit(parallel=True, cache=False)
def _pair_region(x, W1, b1, W2s, ld, in_place, h1, parts):
    """Each part: its half of layer 1, then layer 2's partial product over those columns of
    W2: from ``W2s[t]``, a contiguous copy of them (``ld`` = half), or from W2 in place
    (``W2s`` = W2 as one row, ``ld`` = its width, ``in_place``)."""
    half = h1.shape[0] // 2
    for t in numba.prange(2):
        r0 = t * half
        gemm._dots_rows(x, x.shape[0], 1, W1, x.shape[0], x.shape[0], h1, 0, r0, r0 + half)
        _relu_bias(h1[r0:r0 + half], b1[r0:r0 + half])
        row, c0 = (np.int64(0), np.int64(r0)) if in_place else (np.int64(t), np.int64(0))
        _gemv_rows_ld(h1[r0:r0 + half], W2s[row], ld, c0, half, parts[t], 0, parts.shape[1])


@jit
def pair(x, W1, b1, W2s, b2, W3, b3, h1, h2, out, parts, ld, in_place):
    _pair_region(x, W1, b1, W2s, ld, in_place, h1, parts)
    _pair_tail(parts, b2, W3, b3, h2, out)


def w1_operands():
    """Random W1 weights (flat, row-major), biases, an input row and the three outputs."""
    rng = np.random.default_rng(0)
    sizes = [784, 256, 256, 10]
    Ws = [rng.standard_normal(o * i).astype(np.float32) / 30 for i, o in zip(sizes[:-1], sizes[1:])]
    bs = [rng.standard_normal(o).astype(np.float32) for o in sizes[1:]]
    x = rng.standard_normal(784).astype(np.float32)
    h1, h2, out = (np.empty(n, np.float32) for n in sizes[1:])
    return Ws, bs, x, h1, h2, out


def main():
    numba.set_num_threads(int(sys.argv[1]))
    Ws, bs, x, h1, h2, out = w1_operands()
    variants = {"par,ser,ser": (True, False, False), "par,par,ser": (True, True, False),
                "par,par,par": (True, True, True), "ser,ser,ser": (False, False, False)}
    res = {}
    for flags in variants.values():
        chain(x, Ws[0], bs[0], Ws[1], bs[1], Ws[2], bs[2], h1, h2, out, *flags)
    ref = None
    for name, flags in variants.items():
        chain(x, Ws[0], bs[0], Ws[1], bs[1], Ws[2], bs[2], h1, h2, out, *flags)
        ref = out.copy() if ref is None else ref
        assert out.tobytes() == ref.tobytes(), name
    W2 = Ws[1].reshape(256, 256)
    W2_halves = np.stack([np.ascontiguousarray(W2[:, :128]).reshape(-1), np.ascontiguousarray(W2[:, 128:]).reshape(-1)])
    parts = np.empty((2, 256), np.float32)
    pair(x, Ws[0], bs[0], W2_halves, bs[1], Ws[2], bs[2], h1, h2, out, parts, 128, False)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    copy_bits = out.tobytes()
    W2_row = Ws[1].reshape(1, -1)
    pair(x, Ws[0], bs[0], W2_row, bs[1], Ws[2], bs[2], h1, h2, out, parts, 256, True)
    assert out.tobytes() == copy_bits, "the strided pair must give the copies' bits"
    for _ in range(3):
        res.setdefault("pair12 strided", []).append(median_us(
            lambda: pair(x, Ws[0], bs[0], W2_row, bs[1], Ws[2], bs[2], h1, h2, out, parts, 256, True), 2000, 5))
        res.setdefault("pair12", []).append(median_us(
            lambda: pair(x, Ws[0], bs[0], W2_halves, bs[1], Ws[2], bs[2], h1, h2, out, parts, 128, False), 2000, 5))
        for name, flags in variants.items():
            res.setdefault(name, []).append(median_us(
                lambda: chain(x, Ws[0], bs[0], Ws[1], bs[1], Ws[2], bs[2], h1, h2, out, *flags), 2000, 5))
    for name, ts in res.items():
        print(f"{sys.argv[1]} thr  {name:20s} " + " ".join(f"{t:6.2f}" for t in ts))


if __name__ == "__main__":
    main()

"""W1 at batch 1 (784-256-256-10, float32) as a chain of matrix-vector products:
which layers run in parallel.  Per call, µs, interleaved, same process.

    PYTHONPATH=. python benchmarks/probes/gemv_chain.py THREADS
"""
import sys

import numba
import numpy as np

from fastbp._jit import jit
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
            gemm._gemv_t_parallel(a, W, k, z)
        else:
            gemm._gemv_t_serial(a, W, k, z)
        _relu_bias(z, b)


@numba.njit(parallel=True, cache=False)
def _pair_region(x, W1, b1, W2_halves, h1, parts):
    half = h1.shape[0] // 2
    for t in numba.prange(2):
        r0 = t * half
        gemm._gemv_t_rows(x, W1, x.shape[0], h1, r0, r0 + half)
        _relu_bias(h1[r0:r0 + half], b1[r0:r0 + half])
        # partial layer 2 over this part's columns of W2 (a contiguous copy of them)
        gemm._gemv_t_rows(h1[r0:r0 + half], W2_halves[t], half, parts[t], 0, parts.shape[1])


@jit
def pair(x, W1, b1, W2_halves, b2, W3, b3, h1, h2, out, parts):
    _pair_region(x, W1, b1, W2_halves, h1, parts)
    for j in range(h2.shape[0]):
        h2[j] = parts[0, j] + parts[1, j]
    _relu_bias(h2, b2)
    gemm._gemv_t_serial(h2, W3, h2.shape[0], out)
    _relu_bias(out, b3)


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
    pair(x, Ws[0], bs[0], W2_halves, bs[1], Ws[2], bs[2], h1, h2, out, parts)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    for _ in range(3):
        res.setdefault("pair12", []).append(median_us(
            lambda: pair(x, Ws[0], bs[0], W2_halves, bs[1], Ws[2], bs[2], h1, h2, out, parts), 2000, 5))
        for name, flags in variants.items():
            res.setdefault(name, []).append(median_us(
                lambda: chain(x, Ws[0], bs[0], Ws[1], bs[1], Ws[2], bs[2], h1, h2, out, *flags), 2000, 5))
    for name, ts in res.items():
        print(f"{sys.argv[1]} thr  {name:20s} " + " ".join(f"{t:6.2f}" for t in ts))


if __name__ == "__main__":
    main()

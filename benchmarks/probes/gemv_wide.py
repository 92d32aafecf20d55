"""Batch-1 dot kernel (``gemm._dots_rows``) with LLVM's 256-bit preference (as built)
against copies that allow 512-bit vectors (``_wide_vectors``), 4 and 8 rows a pass.
Serial, W1's layer shapes, weights resident in cache; ns per call from a compiled loop,
and GB/s of weights read.  PYTHONPATH=. python benchmarks/probes/gemv_wide.py
"""
import os
import sys

import numpy as np

from fastbp._jit import jit, FASTMATH_REDUCE
from fastbp.kernels import gemm
from fastbp.kernels.microkernels import _wide_vectors

sys.path.insert(0, os.path.dirname(__file__))
from timing import median_us  # noqa: E402


@jit(fastmath=set(FASTMATH_REDUCE))
def rows4_wide(a, B, k, C, j0, j1):
    _wide_vectors()
    zero = C.dtype.type(0)
    j = j0
    while j + 4 <= j1:
        b0 = B[j * k:(j + 1) * k]
        b1 = B[(j + 1) * k:(j + 2) * k]
        b2 = B[(j + 2) * k:(j + 3) * k]
        b3 = B[(j + 3) * k:(j + 4) * k]
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
        j += 4
    while j < j1:
        b0 = B[j * k:(j + 1) * k]
        s0 = zero
        for p in range(k):
            s0 += a[p] * b0[p]
        C[j] = s0
        j += 1


@jit(fastmath=set(FASTMATH_REDUCE))
def rows8_wide(a, B, k, C, j0, j1):
    _wide_vectors()
    zero = C.dtype.type(0)
    j = j0
    while j + 8 <= j1:
        b0 = B[j * k:(j + 1) * k]
        b1 = B[(j + 1) * k:(j + 2) * k]
        b2 = B[(j + 2) * k:(j + 3) * k]
        b3 = B[(j + 3) * k:(j + 4) * k]
        b4 = B[(j + 4) * k:(j + 5) * k]
        b5 = B[(j + 5) * k:(j + 6) * k]
        b6 = B[(j + 6) * k:(j + 7) * k]
        b7 = B[(j + 7) * k:(j + 8) * k]
        s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = zero
        for p in range(k):
            x = a[p]
            s0 += x * b0[p]
            s1 += x * b1[p]
            s2 += x * b2[p]
            s3 += x * b3[p]
            s4 += x * b4[p]
            s5 += x * b5[p]
            s6 += x * b6[p]
            s7 += x * b7[p]
        C[j] = s0
        C[j + 1] = s1
        C[j + 2] = s2
        C[j + 3] = s3
        C[j + 4] = s4
        C[j + 5] = s5
        C[j + 6] = s6
        C[j + 7] = s7
        j += 8
    rows4_wide(a, B, k, C, j, j1)


@jit
def loop(variant, reps, a, B, k, C):
    for _ in range(reps):
        if variant == 0:
            gemm._dots_rows(a, k, 1, B, k, k, C, 0, np.int64(0), C.shape[0])
        elif variant == 1:
            rows4_wide(a, B, k, C, np.int64(0), C.shape[0])
        else:
            rows8_wide(a, B, k, C, np.int64(0), C.shape[0])


def main():
    rng = np.random.default_rng(0)
    names = ["rows4 (built)", "rows4 wide", "rows8 wide"]
    for n, k in ((256, 784), (256, 256), (32, 256), (10, 256)):
        a = rng.standard_normal(k).astype(np.float32)
        B = rng.standard_normal(n * k).astype(np.float32)
        ref = (B.reshape(n, k).astype(np.float64) @ a).astype(np.float32)
        C = np.empty(n, np.float32)
        reps = max(1, 2_000_000 // (n * k))
        for v in range(3):
            loop(v, 1, a, B, k, C)
            np.testing.assert_allclose(C, ref, rtol=1e-4, atol=1e-3)
        res = {v: [] for v in range(3)}
        for _ in range(5):
            for v in range(3):
                res[v].append(median_us(lambda: loop(v, reps, a, B, k, C), 20, 5) / reps)
        for v in range(3):
            t = np.median(res[v])
            print(f"{n:4d}x{k:<4d} {names[v]:14s} {t * 1e3:9.0f} ns  {4 * n * k / t / 1e3:6.1f} GB/s  "
                  + " ".join(f"{x * 1e3:.0f}" for x in res[v]))


if __name__ == "__main__":
    main()

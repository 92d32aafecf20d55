"""Where a two-thread product's time goes beyond its halves: each thread's start, work and
end inside the parallel region, read with the time-stamp counter, over 2,000 back-to-back
W4-shaped products (64x256x256 halves; NOTES section 44).

    PYTHONPATH=. python benchmarks/probes/region_imbalance.py [M N K]
"""
import sys
import time

import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic

import fastbp as fb
from fastbp.kernels import gemm as g


@intrinsic
def rdtsc(typingctx):
    def codegen(context, builder, signature, args):
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ir.IntType(64), []),
                                            "llvm.readcyclecounter")
        return builder.call(fn, [])
    return types.int64(), codegen


@numba.njit
def now():
    return rdtsc()


@numba.njit
def half(m, n, k, A, B, C, ldc, work):
    one = np.int64(1)
    g._gemm_serial(m, n, k, A, k, one, B, one, k, C, ldc, work, g._no_epilogue(C[:m * n].reshape(m, n)))


@numba.njit(parallel=True)
def halves(m, n, k, A, B, C, work, rec, r):
    """``gemm._gemm_halves`` without the flush bits, stamping each thread's start and end."""
    n0 = g._split_at(n)
    second = g._serial_size(m, n0, k)
    t00 = rdtsc()
    for t in prange(2):
        s = rdtsc()
        if t == 0:
            half(m, n0, k, A, B, C, n, work[:second])
        else:
            half(m, n - n0, k, A, B[n0 * k:], C[n0:], n, work[second:])
        rec[r, t, 0] = s - t00
        rec[r, t, 1] = rdtsc() - t00
    rec[r, 2, 1] = rdtsc() - t00


@numba.njit
def loop(reps, m, n, k, A, B, C, work, rec):
    for r in range(reps):
        halves(m, n, k, A, B, C, work, rec, r)


def main():
    m, n, k = (int(v) for v in sys.argv[1:4]) if len(sys.argv) > 3 else (64, 256, 256)
    fb.set_num_threads(2)
    rng = np.random.default_rng(0)
    A = rng.standard_normal(m * k).astype(np.float32)
    B = rng.standard_normal(n * k).astype(np.float32)
    C = np.zeros(m * n, np.float32)
    work = np.zeros(g.work_size(m, n, k), np.float32)
    reps = 2000
    rec = np.zeros((reps, 3, 2), np.int64)
    loop(10, m, n, k, A, B, C, work, rec)
    t = time.perf_counter()
    loop(reps, m, n, k, A, B, C, work, rec)
    wall = (time.perf_counter() - t) / reps * 1e6
    a, t0 = now(), time.perf_counter()
    time.sleep(0.2)
    per_us = (now() - a) / (time.perf_counter() - t0) / 1e6
    r = rec[100:] / per_us
    print(f"{m}x{n}x{k} halves: {wall:.1f} µs a product (wall); µs from the region's start:")
    rows = (("thread 0 starts", r[:, 0, 0]), ("thread 1 starts", r[:, 1, 0]),
            ("thread 0 works", r[:, 0, 1] - r[:, 0, 0]), ("thread 1 works", r[:, 1, 1] - r[:, 1, 0]),
            ("region ends", r[:, 2, 1]))
    for name, v in rows:
        print(f"  {name:16s} p10 {np.percentile(v, 10):6.1f}  p50 {np.median(v):6.1f}  "
              f"p90 {np.percentile(v, 90):6.1f}  mean {v.mean():6.1f}")


if __name__ == "__main__":
    main()

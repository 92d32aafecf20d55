"""Does a second thread double the GEMM's throughput, and what does one two-thread product
lose against its halves?  (NOTES section 44.)

1. Each thread runs the serial path on its own operands, many products in one parallel
   region, against one thread doing the same per-thread work: GF/s and the ratio.
2. One product of W4's shape (or m n k given) per parallel region: the halves path, two
   independent halves (A shared) in one region, and one half on one thread.

    PYTHONPATH=. python benchmarks/probes/thread_scaling.py [M N K]
"""
import sys
import time

import numba
import numpy as np
from numba import prange

import fastbp as fb
from fastbp._jit import jit
from fastbp.kernels import gemm as g


@jit
def serial(m, n, k, A, B, C, ldc, work):
    one = np.int64(1)
    g._gemm_serial(m, n, k, A, k, one, B, one, k, C, ldc, work, g._no_epilogue(C[:m * n].reshape(m, n)))


@jit
def serial_loop(reps, m, n, k, A, B, C, ldc, work):
    for _ in range(reps):
        serial(m, n, k, A, B, C, ldc, work)


@numba.njit(parallel=True)
def both_long(reps, m, n, k, A2, B2, C2, W2):
    for t in prange(2):
        serial_loop(reps, m, n, k, A2[t], B2[t], C2[t], n, W2[t])


@numba.njit(parallel=True)
def both_once(m, n, k, A, B2, C2, W2):
    for t in prange(2):
        serial(m, n, k, A, B2[t], C2[t], n, W2[t])


@jit
def both_once_loop(reps, m, n, k, A, B2, C2, W2):
    for _ in range(reps):
        both_once(m, n, k, A, B2, C2, W2)


@jit
def halves_loop(reps, A, W, work, Z):
    for _ in range(reps):
        g.own_nt(A, W, work, Z, g._no_epilogue(Z), np.int64(g.PATH_HALVES))


def timed(cases, reps, rounds=7):
    for f in cases.values():
        f(1)
    res = {c: [] for c in cases}
    for _ in range(rounds):
        for c, f in cases.items():
            t = time.perf_counter()
            f(reps)
            res[c].append((time.perf_counter() - t) / reps)
    return {c: float(np.median(v)) for c, v in res.items()}


def main():
    fb.set_num_threads(2)
    rng = np.random.default_rng(0)
    print("1. many products per region, per-thread operands")
    for m, n, k in ((32, 64, 128), (64, 128, 256), (64, 256, 256)):
        A2 = rng.standard_normal((2, m * k)).astype(np.float32)
        B2 = rng.standard_normal((2, n * k)).astype(np.float32)
        C2 = np.zeros((2, m * n), np.float32)
        W2 = np.zeros((2, g.work_size(m, n, k)), np.float32)
        reps = max(1, int(2e8 / (2 * m * n * k)))
        t = timed({"one": lambda r: serial_loop(r * reps, m, n, k, A2[0], B2[0], C2[0], n, W2[0]),
                   "two": lambda r: both_long(r * reps, m, n, k, A2, B2, C2, W2)}, 1)
        f = 2.0 * m * n * k * reps
        print(f"  {m}x{n}x{k}: 1 thread {f / t['one'] / 1e9:.0f} GF/s; 2 threads {2 * f / t['two'] / 1e9:.0f} "
              f"GF/s ({2 * t['one'] / t['two']:.2f}x)")
    m, n, k = (int(v) for v in sys.argv[1:4]) if len(sys.argv) > 3 else (64, 256, 256)
    h = g._split_at(n)
    A = rng.standard_normal((m, k)).astype(np.float32)
    W = rng.standard_normal((n, k)).astype(np.float32)
    Z = np.zeros((m, n), np.float32)
    work = np.zeros(g.work_size(m, n, k), np.float32)
    B2 = W[:2 * h].reshape(2, h * k) if n == 2 * h else None
    C2 = np.zeros((2, m * h), np.float32)
    W2 = np.zeros((2, g.work_size(m, h, k)), np.float32)
    reps = max(20, int(2.5e9 / (2 * m * n * k)))
    cases = {"halves path": lambda r: halves_loop(r, A, W, work, Z),
             "one half on one thread": lambda r: serial_loop(r, m, h, k, A.ravel(), W.ravel(), Z.ravel(), h,
                                                             work)}
    if B2 is not None:
        cases["two halves, one region"] = lambda r: both_once_loop(r, m, h, k, A.ravel(), B2, C2, W2)
    print(f"2. one {m}x{n}x{k} product per region, µs (median of 7 rounds of {reps})")
    for c, v in timed(cases, reps).items():
        print(f"  {c:24s} {v * 1e6:8.1f}")


if __name__ == "__main__":
    main()

"""A forward product C = X·Wᵀ (m x k -> n) on the library's path against the packed halves
(each thread ``gemm._gemm_packed`` on its half of the columns, as ``_gemm_halves`` ran it
before the transposed form took several k blocks and ragged rows were sent back to the packed
paths: NOTES section 70), interleaved in one process, same bits checked.

    PYTHONPATH=. python benchmarks/probes/transposed_kblocks.py [ROUNDS] [THREADS] [f32|f64] [MxKxN ...]

µs a product (median, min-max over ROUNDS rounds of 50), and packed/library per round (above
1: the library's path faster).  Default shapes: W1's first layer 128x784x256, 128x1024x1024,
40x256x256 (rows padding a 32-row panel: back on the packed path).  The shapes are arguments
of the compiled loops, not constants: a loop compiled with the shapes as globals specializes
on them and read ~4% faster than the library's leaves (this section's first numbers).
"""
import sys
import time

import numba
import numpy as np

import fastbp as fb
from fastbp import bench
from fastbp.kernels import gemm as g

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 11
threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
dtype = np.float64 if len(sys.argv) > 3 and sys.argv[3] == "f64" else np.float32
shapes = [tuple(int(a) for a in s.split("x")) for s in sys.argv[4:]] or [(128, 784, 256), (128, 1024, 1024),
                                                                           (40, 256, 256)]
fb.set_num_threads(threads)


@numba.njit(parallel=True)
def packed_halves(m, n, k, A, B, C, work, ep):
    n0 = g._split_at(n)
    second = g._serial_size(m, n0, k)
    one = np.int64(1)
    for t in numba.prange(2):
        if t == 0:
            g._gemm_packed(m, n0, k, A, k, one, B, one, k, C, n, work[:second], ep)
        elif n > n0:
            g._gemm_packed(m, n - n0, k, A, k, one, B[n0 * k:], one, k, C[n0:], n, work[second:], ep)


@numba.njit
def loop(reps, packed, m, n, k, X, W, C, work):
    one = np.int64(1)
    for _ in range(reps):
        if packed:
            packed_halves(m, n, k, X.reshape(m * k), W.reshape(n * k), C.reshape(m * n), work, g._no_epilogue(C))
        else:
            g._gemm(m, n, k, X.reshape(m * k), k, one, W.reshape(n * k), one, k, C.reshape(m * n), work,
                    g._no_epilogue(C), g.PATH_AUTO)


rng = np.random.default_rng(0)
for m, k, n in shapes:
    X = rng.standard_normal((m, k)).astype(dtype)
    W = (rng.standard_normal((n, k)) / 30).astype(dtype)
    C = [np.empty((m, n), dtype), np.empty((m, n), dtype)]
    work = np.empty(g.work_size(m, n, k), dtype)
    for p in (0, 1):
        loop(1, p == 1, m, n, k, X, W, C[p], work)
    times = [[], []]
    for r in range(rounds):
        for p in ((0, 1) if r % 2 else (1, 0)):
            t0 = time.perf_counter()
            loop(50, p == 1, m, n, k, X, W, C[p], work)
            times[p].append((time.perf_counter() - t0) / 50 * 1e6)
    ratio = np.median(np.array(times[1]) / np.array(times[0]))
    print(f"{m}x{k}x{n} {np.dtype(dtype).name}, {threads} thread(s), transposed form: "
          f"{g._transposed(m, k, 1, k)}, same bits: {np.array_equal(C[0], C[1])}")
    for p, name in ((0, "library"), (1, "packed halves")):
        print(f"  {name:14s} {np.median(times[p]):8.1f} µs ({min(times[p]):.1f}-{max(times[p]):.1f})")
    print(f"  packed/library per round: {ratio:.3f}")
print("placement (sharing, region µs):", bench.placement() if threads > 1 else "one thread")

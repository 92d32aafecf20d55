"""A BLAS-sized forward product two ways (NOTES section 42): ``np.dot(A, W.T)`` against
W transposed into scratch (``gemm._pack_transpose``) then ``np.dot(A, Wt)``, each 2,000
times in one compiled loop, one thread.

    PYTHONPATH=. python benchmarks/probes/blas_nt_layouts.py [float32|float64]

Prints µs per product (medians of 7) and the speed ratio of the transposed form.
"""
import sys
import time

import numpy as np
import scipy.linalg  # noqa: F401  (loads SciPy's OpenBLAS before its threads are limited)
from numba import njit
from threadpoolctl import threadpool_limits

from fastbp import arena
from fastbp.kernels import gemm

threadpool_limits(1, user_api="blas")
dtype = np.dtype(sys.argv[1] if len(sys.argv) > 1 else "float32")


@njit
def loop_nt(A, W, Z, n):
    for _ in range(n):
        np.dot(A, W.T, Z)


@njit
def loop_transposed(A, W, work, Z, n):
    N, K = W.shape
    for _ in range(n):
        gemm._pack_transpose(W.reshape(-1), K, 0, N, K, work, 0, N)
        np.dot(A, work[:K * N].reshape(K, N), Z)


rng = np.random.default_rng(0)
shapes = ([(32, 64, 64), (64, 64, 64), (32, 64, 200), (32, 128, 64)] + [(32, n, 64) for n in (10, 12, 16, 24, 33)]
          + [(m, 64, 64) for m in (4, 8, 12, 16, 24)])
print(f"{dtype}, 1 thread, µs per product: A·Wᵀ / Wᵀ copied then A·Wt / speed ratio")
for M, N, K in shapes:
    A = rng.standard_normal((M, K)).astype(dtype)
    W = rng.standard_normal((N, K)).astype(dtype)
    work = arena.aligned_zeros(gemm.work_size(M, N, K), dtype)
    Z1, Z2 = np.empty((M, N), dtype), np.empty((M, N), dtype)
    loop_nt(A, W, Z1, 1)
    loop_transposed(A, W, work, Z2, 1)
    n = 2000
    a, b = [], []
    for _ in range(7):
        t = time.perf_counter()
        loop_nt(A, W, Z1, n)
        a.append((time.perf_counter() - t) / n * 1e6)
        t = time.perf_counter()
        loop_transposed(A, W, work, Z2, n)
        b.append((time.perf_counter() - t) / n * 1e6)
    same = "same bits" if np.array_equal(Z1, Z2) else "bits differ"
    ta, tb = np.median(a), np.median(b)
    print(f"  M{M:3d} N{N:4d} K{K:4d}: {ta:7.2f} / {tb:7.2f} / {ta / tb:.2f}  ({same})")

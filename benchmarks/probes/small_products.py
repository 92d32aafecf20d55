"""W3-sized products at one thread inside compiled loops: own GEMM, its packing alone, BLAS.

    PYTHONPATH=. python benchmarks/probes/small_products.py

Per shape (M x N x K, a forward product Z = X Wᵀ): the own GEMM with the bias + ReLU
epilogue, without it, only its packing of X and W, ``np.dot`` (SciPy's OpenBLAS) and
``np.dot`` then the bias + ReLU pass; median µs of 11 rounds of 2,000 calls from a
compiled loop, so no Python dispatch is included (NOTES section 35).
"""
import numpy as np
from numba import njit

import fastbp as fb
from fastbp.kernels import activations, gemm

from timing import median_us

fb.set_num_threads(1)
rng = np.random.default_rng(0)


def run(M, N, K):
    X = rng.standard_normal((M, K)).astype(np.float32)
    W = rng.standard_normal((N, K)).astype(np.float32)
    b = np.zeros(N, np.float32)
    Z = np.empty((M, N), np.float32)
    A = np.empty_like(Z)
    work = np.zeros(gemm.work_size(M, N, K), np.float32)

    @njit
    def own_epilogue(n, X, W, b, work, Z, A):
        for _ in range(n):
            gemm.own_nt(X, W, work, Z, (Z, b, A, np.int64(1), np.float32(0), np.int64(0)), np.int64(gemm.PATH_AUTO))

    @njit
    def own(n, X, W, b, work, Z, A):
        for _ in range(n):
            gemm.own_nt(X, W, work, Z, gemm._no_epilogue(Z), np.int64(gemm.PATH_AUTO))

    @njit
    def own_packs(n, X, W, b, work, Z, A):
        mp = (M + gemm.MR - 1) // gemm.MR
        np_ = (N + gemm.NR - 1) // gemm.NR
        a_off, b_off, _ = gemm._offsets(work, M, N, K)
        for _ in range(n):
            for t in range(mp + np_):
                gemm._pack_task(t, mp, M, N, 0, K, X.reshape(M * K), K, 1, W.reshape(N * K), 1, K, work,
                                a_off, b_off)

    @njit
    def blas(n, X, W, b, work, Z, A):
        for _ in range(n):
            np.dot(X, W.T, Z)

    @njit
    def blas_epilogue(n, X, W, b, work, Z, A):
        for _ in range(n):
            np.dot(X, W.T, Z)
            activations.bias_act_forward(Z, b, 1, np.float32(0), A)

    fs = (own_epilogue, own, own_packs, blas, blas_epilogue)
    res = {}
    for f in fs:
        f(2, X, W, b, work, Z, A)
    for _ in range(11):
        for f in fs:
            res.setdefault(f.__name__, []).append(median_us(lambda: f(2000, X, W, b, work, Z, A), 1, rounds=1) / 2000)
    print(f"{M}x{N}x{K}: " + "  ".join(f"{k} {np.median(v):.2f}" for k, v in res.items()))


for shape in ((16, 64, 64), (32, 64, 64), (16, 10, 64), (32, 10, 64)):
    run(*shape)

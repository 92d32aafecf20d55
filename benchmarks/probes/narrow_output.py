"""A layer with few outputs (a classifier's last), hot, float32, at two threads (NOTES section 72).

Forward: ``matmul_nt_bias_act`` (which runs such shapes swapped, W·Aᵀ: ``gemm._nt_swapped``)
against the unswapped form (``own_nt`` with the same bias + ReLU epilogue).  Backward: the two
products side by side (``_grads_pair``) against one after the other (``matmul_tn`` then
``matmul_nn``: on the calling thread below ``PAR_FLOPS``, each on the parallel path from
there).  µs, medians of 9 rounds of 1,000 calls, and their ratio.

    PYTHONPATH=. python benchmarks/probes/narrow_output.py [MxNxK ...]
"""
import statistics
import sys
import time

import numpy as np

import fastbp as fb
from fastbp import bench
from fastbp.kernels import gemm
from fastbp.kernels.codes import RELU
from fastbp.kernels.views import c_view

SHAPES = ["128x10x256", "200x10x784", "512x10x1024", "129x1x600", "257x19x1000", "64x64x128", "100x30x200"]


def per_call_us(fn, calls=1000):
    t = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - t) / calls * 1e6


def side_by_side(first, second, rounds=9):
    """Medians of ``first``'s and ``second``'s µs, and of second/first per round."""
    first(), second()
    a, b = [], []
    for _ in range(rounds):
        a.append(per_call_us(first))
        b.append(per_call_us(second))
    return statistics.median(a), statistics.median(b), statistics.median(y / x for x, y in zip(a, b))


def main():
    fb.set_num_threads(2)
    rng = np.random.default_rng(0)
    for shape in sys.argv[1:] or SHAPES:
        M, N, K = (int(v) for v in shape.split("x"))
        A = rng.standard_normal((M, K)).astype(np.float32)
        W = rng.standard_normal((N, K)).astype(np.float32)
        D = rng.standard_normal((M, N)).astype(np.float32)
        bias = rng.standard_normal(N).astype(np.float32)
        Z, dW, dA = np.empty((M, N), np.float32), np.empty((N, K), np.float32), np.empty((M, K), np.float32)
        work = np.zeros(gemm.work_size(M, N, K), np.float32)
        zero = np.float32(0)

        def forward():
            gemm.matmul_nt_bias_act(A, W, bias, RELU, zero, work, Z, Z)

        def unswapped():
            gemm.own_nt(A, W, work, Z, (Z, bias, Z, np.int64(RELU), zero, np.int64(0)), np.int64(gemm.PATH_AUTO))

        def pair():
            gemm._grads_pair(M, N, K, c_view(D, (M * N,)), c_view(A, (M * K,)), c_view(W, (N * K,)),
                             c_view(dW, (N * K,)), c_view(dA, (M * K,)), work)

        def in_turn():
            gemm.matmul_tn(D, A, work, dW)
            gemm.matmul_nn(D, W, work, dA)

        print(f"{shape:12s} swapped forward: {bool(gemm._swapped_nt(M, N))}")
        if gemm._swapped_nt(M, N):
            new, old, ratio = side_by_side(forward, unswapped)
            print(f"  forward   swapped {new:7.2f} µs  unswapped {old:7.2f} µs  unswapped/swapped {ratio:.2f}")
        new, old, ratio = side_by_side(pair, in_turn)
        print(f"  backward  pair    {new:7.2f} µs  in turn {old:7.2f} µs  in turn/pair {ratio:.2f}"
              f"  (BLAS-sized: {bool(gemm._blas_small(M, N, K))})")
    print("placement (core sharing, empty region µs):", bench.placement())


if __name__ == "__main__":
    main()

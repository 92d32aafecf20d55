"""W4's two two-thread regions hot, in the checkout on PYTHONPATH: ``backward_grads`` (the
tn/nn pair) and the forward ``matmul_nt`` (the column halves) at 64x256x256, float32, µs a
call (median and best of 15 blocks of 200 calls).  Run it for two checkouts in alternating
processes to compare them (NOTES section 65: ``claimed_panels.patch``).

    PYTHONPATH=TREE python benchmarks/probes/w4_pair_forward.py LABEL
"""
import sys
import time

import numpy as np
from numba import njit

import fastbp as fb
from fastbp.kernels import gemm

fb.set_num_threads(2)


@njit
def pair(D, A, W, work, dW, dA, reps):
    for _ in range(reps):
        gemm.backward_grads(D, A, W, work, dW, dA)


@njit
def forward(A, W, work, Z, reps):
    for _ in range(reps):
        gemm.matmul_nt(A, W, work, Z)


def main():
    rng = np.random.default_rng(0)
    M, N, K = 64, 256, 256
    D = rng.standard_normal((M, N), dtype=np.float32)
    A = rng.standard_normal((M, K), dtype=np.float32)
    W = rng.standard_normal((N, K), dtype=np.float32)
    work = np.zeros(gemm.work_size(M, N, K), np.float32)
    dW, dA, Z = np.empty((N, K), np.float32), np.empty((M, K), np.float32), np.empty((M, N), np.float32)
    pair(D, A, W, work, dW, dA, 1)
    forward(A, W, work, Z, 1)
    res = {"pair": [], "forward": []}
    for _ in range(15):
        t = time.perf_counter()
        pair(D, A, W, work, dW, dA, 200)
        res["pair"].append((time.perf_counter() - t) / 200 * 1e6)
        t = time.perf_counter()
        forward(A, W, work, Z, 200)
        res["forward"].append((time.perf_counter() - t) / 200 * 1e6)
    label = sys.argv[1] if len(sys.argv) > 1 else "tree"
    print(label, "  ".join(f"{k} {np.median(v):.1f} µs (best {min(v):.1f})" for k, v in res.items()))


if __name__ == "__main__":
    main()

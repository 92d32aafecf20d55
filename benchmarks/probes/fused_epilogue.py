"""NOTES section 25: the forward product with bias + activation fused as its epilogue
(gemm.matmul_nt_bias_act) against the product then the separate pass
(matmul_nt, then activations.bias_act_forward), interleaved in one process.

    PYTHONPATH=. python benchmarks/probes/fused_epilogue.py [threads]
"""
import sys

import numpy as np
from timing import median_us  # benchmarks/probes/timing.py (the script folder is on sys.path)

import fastbp as fb
from fastbp.kernels import activations, codes, gemm

SHAPES = [("W4 256->256 b64", 64, 256, 256), ("W1 784->256 b128", 128, 784, 256), ("W1 256->256 b128", 128, 256, 256),
          ("W2 1024->1024 b256", 256, 1024, 1024)]


def main():
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    fb.set_num_threads(threads)
    rng = np.random.default_rng(0)
    dt = np.float32
    alpha = dt(0)
    print(f"{threads} thread(s); µs per call, median of 9 interleaved rounds; ReLU, with bias")
    print(f"{'shape':22} {'unfused':>9} {'fused':>9} {'unfused/fused':>14}")
    for label, M, K, N in SHAPES:
        X = rng.standard_normal((M, K)).astype(dt)
        W = rng.standard_normal((N, K)).astype(dt)
        b = rng.standard_normal(N).astype(dt)
        work = np.empty(gemm.work_size(M, N, K), dt)
        Z, A = np.empty((M, N), dt), np.empty((M, N), dt)
        Z2, A2 = np.empty((M, N), dt), np.empty((M, N), dt)

        def unfused():
            gemm.matmul_nt(X, W, work, Z)
            activations.bias_act_forward(Z, b, codes.RELU, alpha, A)

        def fused():
            gemm.matmul_nt_bias_act(X, W, b, codes.RELU, alpha, work, Z2, A2)
        unfused()
        fused()
        assert A.tobytes() == A2.tobytes() and Z.tobytes() == Z2.tobytes()
        reps = max(5, int(3e7 / (2 * M * N * K)))
        u, f = [], []
        for _ in range(9):
            u.append(median_us(unfused, reps, 1))
            f.append(median_us(fused, reps, 1))
        mu, mf = float(np.median(u)), float(np.median(f))
        print(f"{label:22} {mu:9.1f} {mf:9.1f} {mu / mf:14.2f}", flush=True)


if __name__ == "__main__":
    main()

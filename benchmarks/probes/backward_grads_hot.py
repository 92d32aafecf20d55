"""``gemm.backward_grads`` hot at three shapes of a 256-wide layer (8, 64 and 128 rows), µs a
call (median of 7 rounds of 300), in the checkout on PYTHONPATH, and the empty region's µs
(the vCPUs' placement, NOTES section 66).  W is never updated between calls, so a product
that reads the other core's rows of W pays nothing for it here, unlike in a training step.

    PYTHONPATH=. python benchmarks/probes/backward_grads_hot.py [THREADS]
"""
import sys
import time

import numpy as np

import fastbp as fb
from fastbp import bench
from fastbp.kernels import gemm

fb.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
out = []
for M, N, K in [(8, 256, 256), (64, 256, 256), (128, 256, 256)]:
    rng = np.random.default_rng(0)
    D = rng.standard_normal((M, N)).astype(np.float32)
    A = rng.standard_normal((M, K)).astype(np.float32)
    W = rng.standard_normal((N, K)).astype(np.float32)
    dW = np.empty((N, K), np.float32)
    dA = np.empty((M, K), np.float32)
    work = np.empty(gemm.work_size(M, N, K), np.float32)
    for _ in range(50):
        gemm.backward_grads(D, A, W, work, dW, dA)
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(300):
            gemm.backward_grads(D, A, W, work, dW, dA)
        times.append((time.perf_counter() - t0) / 300)
    out.append(f"{M}x{N}x{K}: {np.median(times) * 1e6:.2f}")
print("  ".join(out), f"  empty region {bench.region_us():.2f}")

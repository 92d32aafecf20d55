"""A dense layer's two backward products at 2 threads: one after the other, each on the
parallel path (matmul_tn then matmul_nn), against backward_grads, which runs them side
by side, each on one thread through the serial path (NOTES section 19).  Checks that both
give the same bits.  PYTHONPATH=. python benchmarks/probes/grads_pair.py"""
import numpy as np
from numba import njit

import fastbp as fb
from fastbp.kernels import gemm
from timing import median_us  # benchmarks/probes/timing.py (the script folder is on sys.path)

fb.set_num_threads(2)


@njit
def one_after_other(D, A, W, work, dW, dA):
    gemm.matmul_tn(D, A, work, dW)
    gemm.matmul_nn(D, W, work, dA)


@njit
def side_by_side(D, A, W, work, dW, dA):
    gemm.backward_grads(D, A, W, work, dW, dA)


rng = np.random.default_rng(0)
print(f"{'M x N x K':>16} {'seq µs':>8} {'pair µs':>8} {'seq/pair':>9}")
for M, N, K in [(64, 256, 256), (128, 256, 256), (128, 256, 784), (256, 1024, 1024), (32, 64, 64)]:
    D = rng.standard_normal((M, N), dtype=np.float32)
    A = rng.standard_normal((M, K), dtype=np.float32)
    W = rng.standard_normal((N, K), dtype=np.float32)
    work = np.empty(gemm.work_size(M, N, K), np.float32)
    outs = [(np.empty((N, K), np.float32), np.empty((M, K), np.float32)) for _ in range(2)]
    one_after_other(D, A, W, work, *outs[0])
    side_by_side(D, A, W, work, *outs[1])
    assert all(a.tobytes() == b.tobytes() for a, b in zip(*outs)), (M, N, K)
    n = max(3, int(2e8 / (4 * M * N * K)))
    ratios, seqs, pairs = [], [], []
    for _ in range(5):   # alternate the two, median of the per-round ratios
        seqs.append(median_us(lambda: one_after_other(D, A, W, work, *outs[0]), n, rounds=3))
        pairs.append(median_us(lambda: side_by_side(D, A, W, work, *outs[1]), n, rounds=3))
        ratios.append(seqs[-1] / pairs[-1])
    print(f"{f'{M}x{N}x{K}':>16} {np.median(seqs):8.1f} {np.median(pairs):8.1f} {np.median(ratios):9.2f}")

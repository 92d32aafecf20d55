"""W1's layer-1 products (``nt`` then ``tn``, 128x256x784) on operands that start 0, 16 and
32 bytes past a 64-byte cache line, in one process, alternating rounds (NOTES section 41).

    PYTHONPATH=. python benchmarks/probes/operand_alignment.py [THREADS]
"""
import statistics
import sys
import time

import numpy as np

import fastbp as fb
from fastbp.kernels import gemm

M, N, K = 128, 256, 784


def operand(rng, shape, offset):
    """Random values in an array that starts ``offset`` bytes past a cache line."""
    n = int(np.prod(shape))
    raw = np.empty(n + 64, np.float32)
    base = (-raw.ctypes.data % 64) // 4 + offset // 4
    a = raw[base:base + n].reshape(shape)
    a[...] = rng.standard_normal(shape)
    return a


def main():
    fb.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)
    rng = np.random.default_rng(0)
    work = np.zeros(gemm.work_size(M, max(N, K), max(N, K)), np.float32)
    sets = {off: [operand(rng, shape, off) for shape in ((M, N), (M, K), (N, K), (N, K), (M, N))]
            for off in (0, 16, 32)}

    def run(off):
        G, X, W, dW, Z = sets[off]
        gemm.matmul_nt(X, W, work, Z)
        gemm.matmul_tn(G, X, work, dW)

    for off in sets:
        run(off)
    ts = {off: [] for off in sets}
    for _ in range(21):
        for off in sets:
            t = time.perf_counter()
            for _ in range(50):
                run(off)
            ts[off].append((time.perf_counter() - t) / 50 * 1e6)
    base = statistics.median(ts[0])
    for off in sets:
        med = statistics.median(ts[off])
        print(f"operands {off:2d} bytes past a line: {med:7.1f} us (nt + tn, {M}x{N}x{K}), "
              f"aligned is x{med / base:.3f} faster")


if __name__ == "__main__":
    main()

"""Two threads writing the column halves of the same rows, against each writing its own
array (NOTES section 67): ReLU's mask and bias gradient over a 64x256 float32 block, as the
owned backward pair (``owned_pair.patch``) folded it into its region.  64-byte aligned
arrays, 512-byte halves: no cache line is shared.  µs per region, medians.

    PYTHONPATH=. python benchmarks/probes/halves_interference.py
"""
import time

import numba
import numpy as np
from numba import prange

import fastbp as fb
from fastbp import arena, bench
from fastbp.kernels import activations

fb.set_num_threads(2)
M, K = 64, 256


@numba.njit(error_model="numpy")
def relu_cols(G, Z, db, c0, c1):
    """activations.relu_backward_bias_grad on columns [c0, c1), row slices looped from 0."""
    d = db[c0:c1]
    d[:] = 0
    for i in range(G.shape[0]):
        g = G[i, c0:c1]
        z = Z[i, c0:c1]
        for j in range(d.shape[0]):
            v = g[j] * (np.float32(1) if z[j] > 0 else np.float32(0))
            g[j] = v
            d[j] += v


@numba.njit(parallel=True)
def region(G0, Z0, d0, G1, Z1, d1, mode):
    for t in prange(2):
        if mode == 0:       # the halves of one array
            if t == 0:
                relu_cols(G0, Z0, d0, np.int64(0), np.int64(K // 2))
            else:
                relu_cols(G0, Z0, d0, np.int64(K // 2), np.int64(K))
        elif mode == 1:     # each thread its own array, the same columns
            if t == 0:
                relu_cols(G0, Z0, d0, np.int64(0), np.int64(K // 2))
            else:
                relu_cols(G1, Z1, d1, np.int64(K // 2), np.int64(K))
        elif mode == 2 and t == 0:    # one thread, the whole array
            activations.relu_backward_bias_grad(G0, Z0, d0)
        elif mode == 3:
            d1[t * 16] += 1


def aligned(shape, rng):
    a = arena.aligned_zeros(int(np.prod(shape)), np.float32).reshape(shape)
    a[...] = rng.standard_normal(shape)
    return a


rng = np.random.default_rng(0)
G0, Z0, G1, Z1 = (aligned((M, K), rng) for _ in range(4))
d0, d1 = aligned((K,), rng), aligned((K,), rng)
print("placement (sharing, region µs):", bench.placement())
for mode, name in ((0, "halves of one array"), (1, "separate arrays"), (2, "one thread, whole"),
                   (3, "empty region")):
    region(G0, Z0, d0, G1, Z1, d1, mode)
    ts = []
    for _ in range(11):
        t = time.perf_counter()
        for _ in range(500):
            region(G0, Z0, d0, G1, Z1, d1, mode)
        ts.append((time.perf_counter() - t) / 500 * 1e6)
    print(f"{name:22s} {np.median(ts):6.2f}")

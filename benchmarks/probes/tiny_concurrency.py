"""Two independent tiny forward passes at once: does a second core double W3's throughput?

Section 35's batch split ran W3's two 16-row halves on two threads.  This probe strips
that to its core: two models with nothing shared (own parameters, workspace, scratch),
each running its 16-row forward pass ``n`` times, first one model alone, then both
side by side in one parallel region (no synchronisation inside).  Perfect scaling
would leave the per-pass time unchanged.

    PYTHONPATH=. python benchmarks/probes/tiny_concurrency.py [ROWS]    (FASTBP_GEMM=own: own GEMM)
"""
import sys

import numpy as np
from numba import njit, prange

import fastbp as fb
from fastbp import bench
from fastbp.kernels import program as P

from timing import median_us

rows = int(sys.argv[1]) if len(sys.argv) > 1 else 16
fb.set_num_threads(2)
widths = bench.WORKLOADS["W3"][1]
models = [fb.MLP(widths, activation="relu", dtype=np.float32, seed=s) for s in (0, 1)]
x = np.random.default_rng(0).standard_normal((rows, widths[0])).astype(np.float32)
for m in models:
    m.train()
    m.forward(x)
args = [(m._program, m._consts, m.arena.params, m.state.params, m._ws, m.capacity, m._work, m._segments)
        for m in models]


@njit
def _passes(n, prog, consts, params, state, ws, cap, work, segments):
    for _ in range(n):
        P.forward(prog, consts, params, state, ws, cap, rows, work, True, 1, 1, segments, True)


@njit
def alone(n, a):
    _passes(n, *a)


@njit(parallel=True)
def side_by_side(n, a, b):
    for t in prange(2):
        if t == 0:
            _passes(n, *a)
        else:
            _passes(n, *b)


alone(2, args[0])
side_by_side(2, args[0], args[1])
n, times = 400, {"alone": [], "side by side": []}
for _ in range(21):
    times["alone"].append(median_us(lambda: alone(n, args[0]), 1, rounds=1) / n)
    times["side by side"].append(median_us(lambda: side_by_side(n, args[0], args[1]), 1, rounds=1) / n)
for k, v in times.items():
    print(f"{rows}-row forward, {k:13s}: median {np.median(v):6.2f} µs, min {min(v):6.2f} µs per pass")
print(f"median ratio side by side / alone: {np.median(np.array(times['side by side']) / np.array(times['alone'])):.2f}")

"""The GEMM's register tile per call (NOTES section 42): ``gemm._ukr`` (how the GEMM calls
it, through the dtype overload) against the tile function called directly, and with the
move of its result into C (``gemm._tile_out``); 128 calls in a compiled loop, one thread.

    PYTHONPATH=. python benchmarks/probes/tile_call_cost.py

Prints ns a tile for a few k lengths.  Before 9a5c82a the overload's inlined wrapper left
four NRT incref/decref pairs around each call (~60 ns a tile).
"""
import time

import numpy as np
from numba import njit

from fastbp import arena
from fastbp.kernels import gemm, microkernels

direct_tile = microkernels.ukr_8x32 if gemm.MR == 8 else microkernels.ukr_6x16


@njit
def through_overload(kc, work, ao, bo, ts, n):
    for _ in range(n):
        for _ in range(128):
            gemm._ukr(kc, work, ao, work, bo, work, ts)


@njit
def direct(kc, work, ao, bo, ts, n):
    for _ in range(n):
        for _ in range(128):
            direct_tile(kc, work, ao, work, bo, work, ts)


@njit
def with_output(kc, work, ao, bo, ts, C, n):
    for _ in range(n):
        for t in range(128):
            gemm._ukr(kc, work, ao, work, bo, work, ts)
            gemm._tile_out(work, ts, C, (t % 16) * gemm.MR * 256 + (t // 16) * gemm.NR, 256, False)


work = arena.aligned_zeros(200000, np.float32)
work[:] = np.random.default_rng(0).standard_normal(work.size).astype(np.float32) * 0.01
C = np.zeros(128 * 256, np.float32)
print(f"tile {gemm.MR}x{gemm.NR}, float32, 1 thread, ns a tile (median of 5 rounds of 300 x 128 calls)")
print("   kc   _ukr   direct   _ukr + _tile_out")
for kc in (1, 10, 64, 256):
    args = (kc, work, 0, 20000, 100000)
    fns = {"ukr": lambda: through_overload(*args, 300), "direct": lambda: direct(*args, 300),
           "out": lambda: with_output(*args, C, 300)}
    for f in fns.values():
        f()
    res = {k: [] for k in fns}
    for _ in range(5):
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            res[k].append((time.perf_counter() - t) / 300 / 128 * 1e9)
    print(f"  {kc:3d} {np.median(res['ukr']):7.1f} {np.median(res['direct']):8.1f} {np.median(res['out']):10.1f}")

"""The cost of one empty two-iteration parallel region, called from compiled code.

    PYTHONPATH=. python benchmarks/probes/forkjoin.py THREADS

Measured 1.35 µs at 2 threads and ~1 µs at 1 thread on the Zen 3 VM (NOTES section 35).
"""
import sys

import numba
import numpy as np
from numba import njit, prange

from timing import median_us

numba.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 2)


@njit(parallel=True)
def region(a):
    for t in prange(2):
        a[t * 16] += 1.0


@njit
def regions(a, n):
    for _ in range(n):
        region(a)


a = np.zeros(64)
regions(a, 10)
print(f"one region: {median_us(lambda: regions(a, 20000), 1, rounds=3) / 20000:.2f} µs (median of 3 x 20,000)")

"""The probes' one timing loop: median over rounds of the mean time of ``n`` calls."""
import time

import numpy as np


def median_us(f, n, rounds=9):
    """Median (over ``rounds``) of the mean µs per call of ``f`` over ``n`` calls."""
    ts = []
    for _r in range(rounds):
        t = time.perf_counter()
        for _ in range(n):
            f()
        ts.append((time.perf_counter() - t) / n)
    return np.median(ts) * 1e6

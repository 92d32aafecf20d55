"""The probes' timing loops: median over rounds of the mean time of ``n`` calls, alone or
several cases interleaved round by round."""
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


def interleaved_us(calls, reps, rounds=7):
    """``{name: median µs per rep}`` of ``calls`` (``{name: f}``, each call running ``reps``
    reps), after one warm-up call each, the calls interleaved round by round."""
    for f in calls.values():
        f()
    ts = {name: [] for name in calls}
    for _ in range(rounds):
        for name, f in calls.items():
            ts[name].append(median_us(f, 1, 1) / reps)
    return {name: float(np.median(t)) for name, t in ts.items()}

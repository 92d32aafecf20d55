"""Each vCPU's single-thread speed over time: an L1-resident multiply-add loop pinned to
CPU 0, then CPU 1, best of 5 short runs each, every half second (NOTES section 64: for
seconds at a time one vCPU runs at about half the other's speed).

    python benchmarks/probes/vcpu_speed.py [SECONDS]

At full speed here a reading is ~0.08 ms; a slow vCPU reads ~1.7-2x that.
"""
import os
import sys
import time

import numpy as np

from vcpu_contention import _kernels    # benchmarks/probes: the same L1 multiply-add kernel

fma = _kernels()["fma"]


def best_time(cpu, reps, tries, a):
    """Seconds of the fastest of ``tries`` runs of ``fma(a, reps)`` with this process
    pinned to ``cpu`` (then back on every CPU it had)."""
    everywhere = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    ts = []
    for _ in range(tries):
        t = time.perf_counter()
        fma(a, reps)
        ts.append(time.perf_counter() - t)
    os.sched_setaffinity(0, everywhere)
    return min(ts)


def main():
    a = np.ones(4096, np.float32)
    fma(a, 1)
    t_end = time.time() + (float(sys.argv[1]) if len(sys.argv) > 1 else 60)
    while time.time() < t_end:
        row = [best_time(cpu, 500, 5, a) * 1e3 for cpu in (0, 1)]
        print(time.strftime("%H:%M:%S"), f"cpu0 {row[0]:.2f} ms  cpu1 {row[1]:.2f} ms  ratio {row[1] / row[0]:.2f}",
              flush=True)
        time.sleep(0.5)


if __name__ == "__main__":
    main()

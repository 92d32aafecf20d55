"""W2 samples/s per 0.3 s window from the first step on the fixed benchmark batch (NOTES 16, 17).

Usage: w2_over_time.py THREADS [on|off] [WORKLOAD]   (on/off: fb.set_flush_denormal, default on)
"""
import sys
import time

import fastbp as fb
from fastbp import bench

threads = int(sys.argv[1])
flush = (sys.argv[2] if len(sys.argv) > 2 else "on") == "on"
workload = sys.argv[3] if len(sys.argv) > 3 else "W2"
fb.set_num_threads(threads)
fb.set_flush_denormal(flush)
_, widths, batch = bench.WORKLOADS[workload]
step = bench.fastbp_step(widths, batch)
for _ in range(3):
    step()
out = []
for _r in range(12):
    t = time.perf_counter()
    n = 0
    while time.perf_counter() - t < 0.3:
        step()
        n += 1
    out.append(f"{batch * n / (time.perf_counter() - t):,.0f}")
print(workload, threads, "threads, flush", "on" if flush else "off", "samples/s per 0.3 s:", " ".join(out))

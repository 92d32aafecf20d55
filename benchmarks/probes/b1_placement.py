"""W1's batch-1 ``model.predict`` block by block, each block followed at once by the placement
probe (``bench.placement``): whether the slow batch-1 readings are the vCPUs sitting far apart
(NOTES section 74).  Each block is timed as the table's worker times one (``table.rate(f, 0.3)``,
CPUs 0-1 as there); prints one line a block, then the median per state.

    PYTHONPATH=. python benchmarks/probes/b1_placement.py [BLOCKS]
"""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.sched_setaffinity(0, {0, 1})

import fastbp as fb  # noqa: E402
from fastbp import bench  # noqa: E402

import table  # noqa: E402  (benchmarks/table.py)

blocks = int(sys.argv[1]) if len(sys.argv) > 1 else 200
fb.set_num_threads(2)
bench._limit_threads(2)
infer = bench.fastbp_infer([784, 256, 256, 10], 1)
for _ in range(bench.WARMUP_STEPS):
    infer()
readings = []
for _ in range(blocks):
    us = 1e6 / table.rate(infer, 0.3)
    sharing, region = bench.placement()
    readings.append((us, sharing, region))
    print(f"{time.strftime('%T')}  batch 1 {us:6.2f} µs   sharing {sharing:4.2f}  region {region:4.2f} µs", flush=True)
fastest = min(r for _, _, r in readings)
for state, far in (("near", False), ("far", True)):
    times = [us for us, s, r in readings if bench.badly_placed((s, r), fastest) == far]
    if times:
        print(f"{state}: {len(times)} blocks, batch 1 median {statistics.median(times):.2f} µs "
              f"({min(times):.2f}-{max(times):.2f})")

import time
import sys
import fastbp as fb
from fastbp import bench

fb.set_num_threads(int(sys.argv[1]))
_, widths, batch = bench.WORKLOADS["W2"]
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
print(sys.argv[1], "threads W2 samples/s per 0.3 s:", " ".join(out))

"""Staging a batch: copy_finite (one pass) against all_finite then a numpy copy, float32, µs
(NOTES section 23).  PYTHONPATH=. python benchmarks/probes/copy_finite.py"""
import numpy as np

from fastbp.kernels.reductions import all_finite, copy_finite
from timing import median_us  # benchmarks/probes/timing.py (the script folder is on sys.path)

for n in (32 * 64, 128 * 784, 256 * 784):
    s = np.random.default_rng(0).standard_normal(n).astype(np.float32)
    d = np.empty_like(s)
    copy_finite(s, d)
    all_finite(s)

    def old():
        all_finite(s)
        d[...] = s
    for _ in range(2):
        print(n, f"copy_finite {median_us(lambda: copy_finite(s, d), 3000):.2f}",
              f"all_finite + numpy copy {median_us(old, 3000):.2f}")

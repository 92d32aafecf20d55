"""The memory floor of batch-1 inference: a float32 sum over n KB at 1 and 2 threads
(W1's weights are 1,075 KB).  PYTHONPATH=. python benchmarks/probes/stream_floor.py"""
import sys

import numpy as np
from numba import njit, prange  # noqa: E402
sys.path.insert(0, __import__("os").path.dirname(__file__))
from timing import median_us  # noqa: E402
FR = {"contract", "nsz", "reassoc", "arcp"}
@njit(fastmath=FR)
def ssum(a):
    s = np.float32(0)
    for i in range(a.shape[0]):
        s += a[i]
    return s
@njit(fastmath=FR, parallel=True)
def psum(a, out):
    n = a.shape[0] // 2
    for t in prange(2):
        s = np.float32(0)
        b = a[t*n:(t+1)*n]
        for i in range(n):
            s += b[i]
        out[t] = s
out = np.zeros(2, np.float32)
for kb in (64, 256, 512, 800, 1075, 4096):
    a = np.ones(kb * 256, np.float32)
    ssum(a)
    psum(a, out)
    t1 = median_us(lambda: ssum(a), 2000, 5)
    t2 = median_us(lambda: psum(a, out), 2000, 5)
    print(f"{kb:5d} KB  serial {t1:6.2f} us {kb * 1024 / t1 / 1e3:6.1f} GB/s   "
          f"2-thread {t2:6.2f} us {kb * 1024 / t2 / 1e3:6.1f} GB/s")

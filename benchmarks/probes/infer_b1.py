import numpy as np
import sys
import fastbp as fb
from fastbp import bench
from fastbp.kernels import program as P
from timing import median_us  # benchmarks/probes/timing.py (the script folder is on sys.path)

fb.set_num_threads(int(sys.argv[1]))
f = bench.fastbp_infer([784, 256, 256, 10], 1)
g = bench.numpy_infer([784, 256, 256, 10], 1)
m = fb.MLP([784, 256, 256, 10], activation="relu", dtype=np.float32, seed=0).eval()
x = np.random.default_rng(0).standard_normal((1, 784)).astype(np.float32)
out = np.empty((1, 10), np.float32)
m.predict(x, batch_size=1, out=out)
def raw():
    return P.predict(
    m._program, m._consts, m.arena.params, m.state.params, m._ws, m.capacity, m._layout, m._work, m._segments, x, out,
    True,
)
f()
g()
raw()


def tm(f, n=3000):
    return median_us(f, n)


for _ in range(2):
    print(sys.argv[1], f"predict {tm(f):.2f} us  raw compiled {tm(raw):.2f}  numpy {tm(g):.2f}")

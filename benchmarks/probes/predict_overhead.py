"""W1 batch-1 `model.predict` against its raw compiled call (`program.predict`), in one
process: 150 interleaved blocks of 200 calls each, 2 threads; prints the medians and the
median per-block difference, the Python in front of the compiled call (NOTES section 37).

    python benchmarks/probes/predict_overhead.py TREE     (TREE: a checkout, for A/Bs)
"""
import sys
import time

import numpy as np

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else ".")
import fastbp as fb  # noqa: E402
from fastbp.kernels import program as P  # noqa: E402

fb.set_num_threads(2)
m = fb.MLP([784, 256, 256, 10], activation="relu", dtype=np.float32, seed=0).eval()
x = np.random.default_rng(0).standard_normal((1, 784)).astype(np.float32)
out = np.empty((1, 10), np.float32)
m.predict(x, batch_size=1, out=out)


def raw():
    P.predict(m._program, m._consts, m.arena.params, m.state.params, m._ws, m.capacity, m._layout, m._work,
              m._segments, x, out, True)


def pred():
    m.predict(x, batch_size=1, out=out)


def block(f, n=200):
    t = time.perf_counter()
    for _ in range(n):
        f()
    return (time.perf_counter() - t) / n * 1e6


a, b = [], []
for _ in range(150):
    a.append(block(pred))
    b.append(block(raw))
a, b = np.array(a), np.array(b)
print(f"{sys.argv[1:] or '.'}: predict {np.median(a):.2f} µs, raw {np.median(b):.2f}, "
      f"Python overhead (median per block) {np.median(a - b):.2f}")

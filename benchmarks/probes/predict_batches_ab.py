"""W1's ``model.predict`` at a few batch sizes, two checkouts in ONE process, rounds
alternating (NOTES section 60).

    python benchmarks/probes/predict_batches_ab.py BASE_TREE NEW_TREE [1,2,4,8] [float32|float64]

Each tree's ``fastbp`` is loaded under its own name (``ab.install_renamed``); 2 threads;
prints the median µs a call of 15 rounds of 200 calls and base/new (above 1: new faster).
"""
import importlib
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from ab import install_renamed  # noqa: E402  (benchmarks/ab.py)


def main():
    trees = sys.argv[1:3]
    batches = [int(b) for b in sys.argv[3].split(",")] if len(sys.argv) > 3 else [1, 2, 4, 8]
    dtype = np.dtype(sys.argv[4] if len(sys.argv) > 4 else "float32").type
    rng = np.random.default_rng(0)
    xs = {b: rng.standard_normal((b, 784)).astype(dtype) for b in batches}
    calls = {}
    for i, tree in enumerate(trees):
        name = f"fastbp_{i}"
        install_renamed(tree, name)
        fb = importlib.import_module(name)
        fb.set_num_threads(2)
        model = fb.MLP([784, 256, 256, 10], activation="relu", dtype=dtype, seed=0)
        model.eval()
        for b in batches:
            model.predict(xs[b])
            calls[(i, b)] = (lambda model=model, x=xs[b]: model.predict(x))
    res = {k: [] for k in calls}
    for r in range(15):
        for b in batches:
            for i in ((0, 1) if r % 2 == 0 else (1, 0)):
                f = calls[(i, b)]
                t = time.perf_counter()
                for _ in range(200):
                    f()
                res[(i, b)].append((time.perf_counter() - t) / 200 * 1e6)
    for b in batches:
        base, new = statistics.median(res[(0, b)]), statistics.median(res[(1, b)])
        print(f"batch {b} ({np.dtype(dtype).name}): base {base:.1f} µs, new {new:.1f} µs, base/new {base / new:.2f}")


if __name__ == "__main__":
    main()

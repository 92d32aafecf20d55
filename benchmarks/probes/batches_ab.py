"""W1's ``model.predict`` or ``train_step`` (Adam) at a few batch sizes, two checkouts in ONE
process, rounds alternating (NOTES section 60).

    python benchmarks/probes/batches_ab.py BASE_TREE NEW_TREE predict|train [1,2,4,8] [float32|float64]

Each tree's ``fastbp`` is loaded under its own name (``ab.install_renamed``); 2 threads;
prints the median µs a call over 15 rounds (200 predictions or 50 steps a round) and
base/new (above 1: new faster).
"""
import importlib
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir))
from ab import install_renamed  # noqa: E402  (benchmarks/ab.py)


def make_call(fb, kind, dtype, x, y):
    model = fb.MLP([784, 256, 256, 10], activation="relu", dtype=dtype, seed=0)
    if kind == "predict":
        model.eval()
        return lambda: model.predict(x)
    opt = fb.optim.Adam(model.parameters(), lr=1e-3)
    loss = fb.CrossEntropyLoss()
    return lambda: model.train_step(x, y, loss, opt)


def main():
    trees, kind = sys.argv[1:3], sys.argv[3]
    if kind not in ("predict", "train"):
        raise SystemExit("the third argument is predict or train")
    batches = [int(b) for b in sys.argv[4].split(",")] if len(sys.argv) > 4 else [1, 2, 4, 8]
    dtype = np.dtype(sys.argv[5] if len(sys.argv) > 5 else "float32").type
    calls_a_round = 200 if kind == "predict" else 50
    rng = np.random.default_rng(0)
    data = {b: (rng.standard_normal((b, 784)).astype(dtype), rng.integers(0, 10, b)) for b in batches}
    calls = {}
    for i, tree in enumerate(trees):
        name = f"fastbp_{i}"
        install_renamed(tree, name)
        fb = importlib.import_module(name)
        fb.set_num_threads(2)
        for b in batches:
            calls[(i, b)] = call = make_call(fb, kind, dtype, *data[b])
            for _ in range(5):
                call()
    res = {k: [] for k in calls}
    for r in range(15):
        for b in batches:
            for i in ((0, 1) if r % 2 == 0 else (1, 0)):
                call = calls[(i, b)]
                t = time.perf_counter()
                for _ in range(calls_a_round):
                    call()
                res[(i, b)].append((time.perf_counter() - t) / calls_a_round * 1e6)
    for b in batches:
        base, new = statistics.median(res[(0, b)]), statistics.median(res[(1, b)])
        print(f"{kind} batch {b} ({np.dtype(dtype).name}): base {base:.1f} µs, new {new:.1f} µs, "
              f"base/new {base / new:.2f}")


if __name__ == "__main__":
    main()
